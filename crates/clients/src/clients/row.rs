//! A client's stored row and how it is opened for a caller: the columns, loading a client and
//! their services, and the fields each caller may see (CL-8, CL-9, CL-12).

use diesel::prelude::*;
use rekisteri_audit::AccessBasis;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{clients, services};
use time::{Date, PrimitiveDateTime};

use crate::access::Decision;
use crate::sealed::{JsonFields, RowCipher};
use crate::services::{ServiceRow, open_service, service_columns};
use crate::{Client, ClientRegister, ClientsError, DatePrecision, Gender, Guardianship, format_time};

#[derive(Clone, Queryable)]
pub(crate) struct ClientRow {
    pub registrar_id: String,
    pub id: String,
    pub subject_index: Option<Vec<u8>>,
    pub identity_code: Option<Vec<u8>>,
    pub first_names: Option<Vec<u8>>,
    pub surname: Option<Vec<u8>>,
    pub gender: String,
    pub home_municipality: Option<String>,
    pub moved_in_on: Option<Date>,
    pub moved_out_on: Option<Date>,
    pub died_on: Option<Date>,
    pub language: Option<String>,
    pub email: Option<Vec<u8>>,
    pub phone: Option<Vec<u8>>,
    pub next_of_kin: Option<Vec<u8>>,
    pub address: Option<Vec<u8>>,
    pub protection_order: bool,
    pub restricted: bool,
    pub version: i64,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
    pub anonymised_at: Option<PrimitiveDateTime>,
    /// VT-4: sealed like `address`, never stored under a protection order.
    pub temporary_address: Option<Vec<u8>>,
    pub postal_address: Option<Vec<u8>>,
    /// VT-4: sealed JSON of [`Guardianship`].
    pub guardianship: Option<Vec<u8>>,
    /// VT-4: `month` / `year` ([`DatePrecision`]), NULL for a full date.
    pub moved_in_on_precision: Option<String>,
    pub moved_out_on_precision: Option<String>,
    pub died_on_precision: Option<String>,
}

rekisteri_core::redacted_debug!(ClientRow {
    id,
    registrar_id,
    version
});

macro_rules! client_columns {
    () => {
        (
            clients::registrar_id,
            clients::id,
            clients::subject_index,
            clients::identity_code,
            clients::first_names,
            clients::surname,
            clients::gender,
            clients::home_municipality,
            clients::moved_in_on,
            clients::moved_out_on,
            clients::died_on,
            clients::language,
            clients::email,
            clients::phone,
            clients::next_of_kin,
            clients::address,
            clients::protection_order,
            clients::restricted,
            clients::version,
            clients::created_at,
            clients::updated_at,
            clients::anonymised_at,
            clients::temporary_address,
            clients::postal_address,
            clients::guardianship,
            clients::moved_in_on_precision,
            clients::moved_out_on_precision,
            clients::died_on_precision,
        )
    };
}
pub(crate) use client_columns;

impl ClientRow {
    pub(crate) fn subject(&self) -> Option<[u8; 32]> {
        self.subject_index.as_deref().and_then(|s| s.try_into().ok())
    }

    /// The use of this client's record (data kind `client`) that a read or write of it logs.
    pub(crate) fn used(&self) -> rekisteri_audit::DataUse {
        rekisteri_audit::DataUse {
            subject_index: self.subject(),
            data_kind: "client".into(),
            data_id: Some(self.id.clone()),
            outcome: rekisteri_audit::Outcome::Used,
        }
    }
}

pub(crate) fn load_client(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
) -> QueryResult<Option<ClientRow>> {
    clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::id.eq(client_id))
        .select(client_columns!())
        .first(conn)
        .optional()
}

/// The registrar's live (not anonymised) client whose identity-code index is one of
/// `candidates` (a code's [`rekisteri_audit::subject_index_candidates`], or one stored index).
pub(crate) fn client_by_subject(
    conn: &mut DbConnection,
    registrar_id: &str,
    candidates: &[Vec<u8>],
) -> QueryResult<Option<ClientRow>> {
    clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::subject_index.eq_any(candidates.to_vec()))
        .filter(clients::anonymised_at.is_null())
        .select(client_columns!())
        .first(conn)
        .optional()
}

pub(crate) fn load_services_of(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_ids: &[String],
) -> QueryResult<Vec<ServiceRow>> {
    services::table
        .filter(services::registrar_id.eq(registrar_id))
        .filter(services::client_id.eq_any(client_ids))
        .order((services::client_id, services::valid_from, services::id))
        .select(service_columns!())
        .load(conn)
}

/// A client with all its services, in one statement that stays prepared (PL-12: an audited
/// read's one query). The client's columns come once per service: a client has few.
pub(crate) fn load_client_with_services(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
) -> QueryResult<Option<(ClientRow, Vec<ServiceRow>)>> {
    let query = clients::table
        .left_join(
            services::table.on(services::registrar_id
                .eq(clients::registrar_id)
                .and(services::client_id.eq(clients::id))),
        )
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::id.eq(client_id))
        .order((services::valid_from, services::id))
        .select((client_columns!(), service_columns!().nullable()));
    let rows: Vec<(ClientRow, Option<ServiceRow>)> = rekisteri_db::on_backend!(conn, |c| query.load(c))?;
    let mut rows = rows.into_iter();
    Ok(rows.next().map(|(client, first)| {
        let services = first
            .into_iter()
            .chain(rows.filter_map(|(_, service)| service))
            .collect();
        (client, services)
    }))
}

/// Opens a client's row for the caller: a provider gets only the fields it needs (CL-9), and a
/// protection order leaves address and home municipality out for everyone (CL-8).
pub(crate) fn open_client(
    register: &ClientRegister,
    row: &ClientRow,
    services: &[ServiceRow],
    decision: &Decision,
) -> Result<Client, ClientsError> {
    // The data subject keeps the right of access during a restriction; everyone else sees
    // only that the record exists (CL-12).
    let own = matches!(decision.basis, AccessBasis::OwnData | AccessBasis::Proxy);
    if row.restricted && !own {
        return Ok(restricted_view(row));
    }
    let cipher = RowCipher::new(&register.keyring, "clients", &row.id);
    let full = decision.is_registrar();
    let protected = row.protection_order;
    let visible = services
        .iter()
        .filter(|s| s.client_id == row.id && decision.reaches_service(&s.service_type, &s.provider_id))
        .map(|s| open_service(register, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Client {
        id: row.id.clone(),
        registrar_id: row.registrar_id.clone(),
        identity_code: cipher.open_opt("identity_code", row.identity_code.as_deref())?,
        first_names: cipher.open_opt("first_names", row.first_names.as_deref())?,
        surname: cipher.open_opt("surname", row.surname.as_deref())?,
        gender: full.then(|| Gender::parse(&row.gender)),
        home_municipality: if full && !protected {
            row.home_municipality.clone()
        } else {
            None
        },
        moved_in_on: row.moved_in_on.filter(|_| full),
        moved_in_on_precision: precision_of(row.moved_in_on, row.moved_in_on_precision.as_deref()).filter(|_| full),
        moved_out_on: row.moved_out_on.filter(|_| full),
        moved_out_on_precision: precision_of(row.moved_out_on, row.moved_out_on_precision.as_deref()).filter(|_| full),
        died_on: row.died_on.filter(|_| full),
        died_on_precision: precision_of(row.died_on, row.died_on_precision.as_deref()).filter(|_| full),
        language: row.language.clone(),
        email: cipher.open_opt("email", row.email.as_deref())?,
        phone: cipher.open_opt("phone", row.phone.as_deref())?,
        next_of_kin: if full {
            cipher.open_json("next_of_kin", row.next_of_kin.as_deref())?
        } else {
            None
        },
        address: if protected {
            None
        } else {
            cipher.open_json("address", row.address.as_deref())?
        },
        temporary_address: if protected {
            None
        } else {
            cipher.open_json("temporary_address", row.temporary_address.as_deref())?
        },
        postal_address: if protected {
            None
        } else {
            cipher.open_json("postal_address", row.postal_address.as_deref())?
        },
        guardianship: if full {
            cipher
                .open_json::<Guardianship>("guardianship", row.guardianship.as_deref())?
                .filter(|g| !g.is_empty())
        } else {
            None
        },
        protection_order: protected,
        found_by_previous_identity_code: false,
        restricted: row.restricted,
        version: row.version,
        created_at: format_time(row.created_at),
        updated_at: format_time(row.updated_at),
        services: visible,
    })
}

/// The precision of a stored date (VT-4): only beside a date, `None` for a full one.
fn precision_of(date: Option<Date>, stored: Option<&str>) -> Option<DatePrecision> {
    date.and(stored.and_then(DatePrecision::parse))
}

/// A restricted client as the staff see it (CL-12): that it exists, its version (to lift the
/// restriction) and nothing personal.
fn restricted_view(row: &ClientRow) -> Client {
    Client {
        id: row.id.clone(),
        registrar_id: row.registrar_id.clone(),
        identity_code: None,
        first_names: None,
        surname: None,
        gender: None,
        home_municipality: None,
        moved_in_on: None,
        moved_in_on_precision: None,
        moved_out_on: None,
        moved_out_on_precision: None,
        died_on: None,
        died_on_precision: None,
        language: None,
        email: None,
        phone: None,
        next_of_kin: None,
        address: None,
        temporary_address: None,
        postal_address: None,
        guardianship: None,
        protection_order: row.protection_order,
        found_by_previous_identity_code: false,
        restricted: true,
        version: row.version,
        created_at: format_time(row.created_at),
        updated_at: format_time(row.updated_at),
        services: Vec::new(),
    }
}

/// Refuses every processing but storage of a restricted client (CL-12).
pub(crate) fn ensure_not_restricted(row: &ClientRow) -> Result<(), ClientsError> {
    if row.restricted {
        return Err(ClientsError::Restricted);
    }
    Ok(())
}
