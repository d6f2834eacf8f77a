//! End-to-end tests over real HTTP, each on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod api_clients;
mod audit;
mod availability;
mod calls;
mod client_relations;
mod clients;
mod consent;
mod data_subject_requests;
mod errors;
mod idempotency;
mod identity;
mod inactivity;
mod integration_guide;
mod isolation;
mod isolation_matrix;
mod key_rotation;
mod lifecycle;
mod platform;
mod regressions;
mod throttle;
mod vtj;
