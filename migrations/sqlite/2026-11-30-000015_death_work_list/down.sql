DROP TABLE client_death_closures;
