//! Clients (CL-1..CL-3, CL-8, CL-9, CL-11): the stored row and opening it (`row`), checks of
//! what callers send (`validation`), reads (`reads`) and writes (`writes`).

mod reads;
mod row;
mod validation;
mod writes;

pub use reads::{ClientPage, get_client, list_clients, search_by_identity_code};
pub(crate) use reads::{deny, reachable_client};
pub(crate) use row::{
    ClientRow, client_by_subject, client_columns, ensure_not_restricted, load_client, load_services_of, open_client,
};
pub(crate) use validation::{
    CheckedService, check_email, check_next_of_kin, check_phone, check_service, is_unique_violation,
    parse_identity_code,
};
pub use writes::{create_client, update_client};
