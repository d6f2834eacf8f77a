DROP TABLE care_team_members;
DROP TABLE proxies;
