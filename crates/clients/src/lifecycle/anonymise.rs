//! The anonymisation run (CL-14, CL-15): closing the services of clients who died or moved out,
//! then removing the identity data of every client no longer visible, a batch at a time.

use std::collections::BTreeMap;

use diesel::prelude::*;
use rekisteri_core::{PersonalIdentityCode, TemporaryCodesAllowed};
use rekisteri_db::history::{allow_purge, purging};
use rekisteri_db::schema::{
    client_death_closures, client_previous_codes, clients, service_events, services, vtj_monitored, vtj_staged,
};
use rekisteri_db::{DbConnection, write_transaction_as};
use serde::Serialize;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use super::purge::{purge_history, registrars, run_event};
use super::visibility::visibility_cutoff;
use super::{BATCH, other_services};
use crate::sealed::RowCipher;
use crate::{ClientRegister, ClientsError, at_primitive};

/// Whether the client of the row at hand (of `clients`) has no service that keeps them visible
/// to the registrar on `$today` (CL-13), as a correlated `NOT EXISTS` that each client answers
/// through the services' index: the rule of the walk and of the batch's check again.
macro_rules! past_end_of_visibility {
    ($registrar_id:expr, $today:expr) => {
        diesel::dsl::not(diesel::dsl::exists(
            clients_with_service_ending_after!($registrar_id, visibility_cutoff($today))
                .filter(other_services.field(services::client_id).eq(clients::id)),
        ))
    };
}

/// What one anonymisation run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct AnonymiseReport {
    /// Active services closed because their client died or moved out (CL-15).
    pub services_closed: u64,
    pub clients_anonymised: u64,
}

/// Closes the active services of clients who died or moved out on or before `today` (CL-15).
fn close_services_of_departed(
    conn: &mut DbConnection,
    registrar_id: &str,
    actor: &str,
    today: Date,
    at: PrimitiveDateTime,
) -> Result<u64, ClientsError> {
    let mut closed = 0u64;
    // One pass over the services in id order, each joined to its client by key.
    let mut after: Option<String> = None;
    loop {
        let mut query = services::table
            .inner_join(
                clients::table.on(clients::registrar_id
                    .eq(services::registrar_id)
                    .and(clients::id.eq(services::client_id))),
            )
            .filter(services::registrar_id.eq(registrar_id.to_owned()))
            .filter(services::status.eq("active"))
            .filter(clients::anonymised_at.is_null())
            .filter(
                clients::died_on
                    .is_not_null()
                    .and(clients::died_on.assume_not_null().le(today))
                    .or(clients::moved_out_on
                        .is_not_null()
                        .and(clients::moved_out_on.assume_not_null().le(today))),
            )
            .into_boxed();
        if let Some(after) = &after {
            query = query.filter(services::id.gt(after.clone()));
        }
        type Row = (String, String, Date, Date, Option<Date>, Option<Date>);
        let rows: Vec<Row> = query
            .order(services::id)
            .limit(BATCH)
            .select((
                services::id,
                services::client_id,
                services::valid_from,
                services::valid_to,
                clients::died_on,
                clients::moved_out_on,
            ))
            .load(conn)?;
        let Some((last, ..)) = rows.last() else {
            return Ok(closed);
        };
        after = Some(last.clone());
        write_transaction_as(conn, actor, |conn| {
            for (id, _, valid_from, valid_to, died, moved) in &rows {
                let left = [*died, *moved]
                    .into_iter()
                    .flatten()
                    .filter(|d| *d <= today)
                    .min()
                    .unwrap_or(today);
                let closed_on = left.clamp(*valid_from, (*valid_to).max(*valid_from));
                // One statement per service: kept prepared (see rekisteri_db::kept_update).
                rekisteri_db::kept_update(
                    services::table,
                    (
                        services::status.eq("closed"),
                        services::closed_on.eq(closed_on),
                        services::version.eq(services::version + 1),
                        services::updated_at.eq(at),
                    ),
                    services::registrar_id
                        .eq(registrar_id)
                        .and(services::id.eq(id))
                        .and(services::status.eq("active")),
                )
                .execute(conn)?;
            }
            Ok::<_, ClientsError>(())
        })?;
        closed += rows.len() as u64;
    }
}

/// A client still due for anonymisation, as the batch's write transaction found it.
#[derive(Queryable)]
struct Candidate {
    id: String,
    birth_year: Option<i32>,
    identity_code: Option<Vec<u8>>,
}

/// The year of birth of a client row from before it was stored (migration 000009), taken from
/// its identity code. The code never leaves this function; only the year does.
fn birth_year_from_code(
    register: &ClientRegister,
    id: &str,
    identity_code: Option<&[u8]>,
) -> Result<Option<i32>, ClientsError> {
    let Some(code) = RowCipher::new(&register.keyring, "clients", id).open_opt("identity_code", identity_code)? else {
        return Ok(None);
    };
    Ok(PersonalIdentityCode::parse(&code, TemporaryCodesAllowed::Yes)
        .ok()
        .map(|c| c.birth_date().year()))
}

/// The index of `sealed`'s identity code under every blind-index key held. The code never
/// leaves this function; only its indexes do.
fn code_candidates(
    register: &ClientRegister,
    table: &'static str,
    row_id: &str,
    sealed: &[u8],
) -> Result<Vec<Vec<u8>>, ClientsError> {
    let clear = RowCipher::new(&register.keyring, table, row_id).open("identity_code", sealed)?;
    Ok(PersonalIdentityCode::parse(&clear, TemporaryCodesAllowed::Yes)
        .map(|code| rekisteri_audit::subject_index_candidates(&register.keyring, &code))
        .unwrap_or_default())
}

/// What VTJ keeps of the clients (CL-14): their staged messages, earlier identity codes, place
/// on the monitored list and on the death work list go with the identity data.
fn purge_population_data(
    conn: &mut DbConnection,
    register: &ClientRegister,
    registrar_id: &str,
    ids: &[String],
) -> Result<(), ClientsError> {
    /// A client's id, index and sealed identity code.
    type Current = (String, Option<Vec<u8>>, Option<Vec<u8>>);
    let current: Vec<Current> = clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::id.eq_any(ids))
        .select((clients::id, clients::subject_index, clients::identity_code))
        .load(conn)?;
    let previous: Vec<(String, Vec<u8>, Vec<u8>)> = client_previous_codes::table
        .filter(client_previous_codes::registrar_id.eq(registrar_id))
        .filter(client_previous_codes::client_id.eq_any(ids))
        .select((
            client_previous_codes::client_id,
            client_previous_codes::subject_index,
            client_previous_codes::identity_code,
        ))
        .load(conn)?;
    // During a key rotation a message may have been staged under either blind-index key,
    // whichever the row holds now: the codes are opened for their indexes under every key.
    // With one key held the stored indexes are the only ones, and nothing is opened.
    let rotating = register.keyring.blind_index_key_ids().len() > 1;
    let mut subjects: Vec<Vec<u8>> = Vec::with_capacity(current.len() + previous.len());
    for (id, subject, sealed) in &current {
        subjects.extend(subject.iter().cloned());
        if let Some(sealed) = sealed.as_deref().filter(|_| rotating) {
            subjects.extend(code_candidates(register, "clients", id, sealed)?);
        }
    }
    for (client_id, subject, sealed) in &previous {
        subjects.push(subject.clone());
        if rotating {
            subjects.extend(code_candidates(register, "client_previous_codes", client_id, sealed)?);
        }
    }
    subjects.sort_unstable();
    subjects.dedup();
    for chunk in subjects.chunks(500) {
        diesel::delete(
            vtj_staged::table
                .filter(vtj_staged::registrar_id.eq(registrar_id))
                .filter(vtj_staged::subject_index.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    diesel::delete(
        client_previous_codes::table
            .filter(client_previous_codes::registrar_id.eq(registrar_id))
            .filter(client_previous_codes::client_id.eq_any(ids)),
    )
    .execute(conn)?;
    diesel::delete(
        vtj_monitored::table
            .filter(vtj_monitored::registrar_id.eq(registrar_id))
            .filter(vtj_monitored::client_id.eq_any(ids)),
    )
    .execute(conn)?;
    diesel::delete(
        client_death_closures::table
            .filter(client_death_closures::registrar_id.eq(registrar_id))
            .filter(client_death_closures::client_id.eq_any(ids)),
    )
    .execute(conn)?;
    Ok(())
}

/// Anonymises those of `client_ids` still due on `today` (CL-14) in one transaction, which
/// leaves no history of them; returns how many. The walk picks a batch before this transaction
/// begins, and a request may give one of them a service in between (at midnight, a request
/// that checked visibility on the day before): so the batch is checked again under the lock.
/// On PostgreSQL the clients' rows are locked first (`FOR UPDATE`, in id order), which a
/// request adding to a client waits for, and which waits for a request already adding
/// ([`hold_client_against_anonymisation`]); SQLite's write lock serialises the two anyway.
fn anonymise_batch(
    conn: &mut DbConnection,
    register: &ClientRegister,
    registrar_id: &str,
    client_ids: &[String],
    today: Date,
    at: PrimitiveDateTime,
) -> Result<u64, ClientsError> {
    purging(conn, |conn| {
        if let DbConnection::Postgres(pg) = conn {
            clients::table
                .filter(clients::registrar_id.eq(registrar_id))
                .filter(clients::id.eq_any(client_ids))
                .order(clients::id)
                .select(clients::id)
                .for_update()
                .load::<String>(pg)?;
        }
        let due: Vec<Candidate> = clients::table
            .filter(clients::registrar_id.eq(registrar_id))
            .filter(clients::id.eq_any(client_ids))
            // See the clients' UPDATE below for why not `anonymised_at IS NULL`.
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "COALESCE(anonymised_at, NULL) IS NULL",
            ))
            .filter(past_end_of_visibility!(registrar_id.to_owned(), today))
            .select((clients::id, clients::birth_year, clients::identity_code))
            .load(conn)?;
        if due.is_empty() {
            return Ok(0);
        }
        // The year of birth stays for the statistics (CL-16). A row from before it was stored
        // gets it from the identity code first, one statement per year among such rows; every
        // other row keeps its own, so that the batch's clients are one statement, not one per
        // year of birth.
        let mut derived_years: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for candidate in due.iter().filter(|c| c.birth_year.is_none()) {
            if let Some(year) = birth_year_from_code(register, &candidate.id, candidate.identity_code.as_deref())? {
                derived_years.entry(year).or_default().push(candidate.id.clone());
            }
        }
        let ids: Vec<String> = due.into_iter().map(|c| c.id).collect();
        purge_population_data(conn, register, registrar_id, &ids)?;
        for (year, group) in &derived_years {
            diesel::update(
                clients::table
                    .filter(clients::registrar_id.eq(registrar_id))
                    .filter(clients::id.eq_any(group)),
            )
            .set(clients::birth_year.eq(Some(*year)))
            .execute(conn)?;
        }
        diesel::update(
            clients::table
                .filter(clients::registrar_id.eq(registrar_id))
                .filter(clients::id.eq_any(&ids))
                // Not `anonymised_at IS NULL`: without statistics SQLite answered that from
                // `clients_anonymised (registrar_id, anonymised_at)`, walking every client not
                // yet anonymised for each batch (quadratic: 1 000 000 clients took 398 s). As
                // a function of the column the guard cannot use an index, so both planners
                // find the batch by primary key.
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "COALESCE(anonymised_at, NULL) IS NULL",
                )),
        )
        .set((
            clients::subject_index.eq(None::<Vec<u8>>),
            clients::identity_code.eq(None::<Vec<u8>>),
            clients::first_names.eq(None::<Vec<u8>>),
            clients::surname.eq(None::<Vec<u8>>),
            clients::email.eq(None::<Vec<u8>>),
            clients::phone.eq(None::<Vec<u8>>),
            clients::next_of_kin.eq(None::<Vec<u8>>),
            clients::address.eq(None::<Vec<u8>>),
            clients::temporary_address.eq(None::<Vec<u8>>),
            clients::postal_address.eq(None::<Vec<u8>>),
            clients::guardianship.eq(None::<Vec<u8>>),
            clients::language.eq(None::<String>),
            clients::moved_in_on.eq(None::<Date>),
            clients::moved_in_on_precision.eq(None::<String>),
            clients::moved_out_on.eq(None::<Date>),
            clients::moved_out_on_precision.eq(None::<String>),
            clients::died_on.eq(None::<Date>),
            clients::died_on_precision.eq(None::<String>),
            clients::protection_order.eq(false),
            clients::anonymised_at.eq(Some(at)),
            clients::version.eq(clients::version + 1),
            clients::updated_at.eq(at),
        ))
        .execute(conn)?;
        // A service with nothing to purge is left as it is (its version too).
        diesel::update(
            services::table
                .filter(services::registrar_id.eq(registrar_id))
                .filter(services::client_id.eq_any(&ids))
                .filter(
                    services::additional_info
                        .is_not_null()
                        .or(services::decision_ref.is_not_null()),
                ),
        )
        .set((
            services::additional_info.eq(None::<Vec<u8>>),
            services::decision_ref.eq(None::<String>),
            // The service changed: whoever holds its old version sees that.
            services::version.eq(services::version + 1),
        ))
        .execute(conn)?;
        diesel::update(
            service_events::table
                .filter(service_events::registrar_id.eq(registrar_id))
                .filter(service_events::client_id.eq_any(&ids))
                .filter(service_events::note.is_not_null()),
        )
        .set(service_events::note.eq(None::<Vec<u8>>))
        .execute(conn)?;
        // Proxies and care-team memberships go with the identity data (CL-14).
        purge_history(conn, registrar_id, &ids)?;
        Ok::<_, ClientsError>(ids.len() as u64)
    })
}

/// Anonymises those of `client_ids` (of `registrar_id`) still due at `now`: the batch step of
/// [`run_anonymise`], checked again in its own transaction. `conn` must be a connection of its
/// own, as for the run.
pub fn anonymise_clients(
    conn: &mut DbConnection,
    register: &ClientRegister,
    registrar_id: &str,
    client_ids: &[String],
    now: OffsetDateTime,
) -> Result<u64, ClientsError> {
    allow_purge(conn)?;
    anonymise_batch(conn, register, registrar_id, client_ids, now.date(), at_primitive(now))
}

/// In a request's write transaction, before it adds to the client or changes what is theirs:
/// whether the client is still there and not anonymised. On PostgreSQL the row is held
/// (`FOR KEY SHARE`) until the transaction ends, so that the anonymisation of the client waits
/// for it and then sees what it added (see [`anonymise_batch`]); on SQLite the transaction
/// already holds the write lock.
pub(crate) fn hold_client_against_anonymisation(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
) -> QueryResult<bool> {
    let query = clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::id.eq(client_id))
        .select(clients::anonymised_at);
    let found: Option<Option<PrimitiveDateTime>> = match conn {
        DbConnection::Sqlite(c) => query.first(c).optional()?,
        DbConnection::Postgres(c) => query.for_key_share().first(c).optional()?,
    };
    Ok(matches!(found, Some(None)))
}

/// The anonymisation run (CL-14, CL-15) over every registrar at `now`: closes the services of
/// clients who died or moved out, then anonymises every client no longer visible to the
/// registrar, [`BATCH`] at a time. Writes a security event with the counts. `conn` must be a
/// connection of its own ([`rekisteri_db::Pool::connect_unpooled`]): on SQLite it gains the
/// right to purge change history.
pub fn run_anonymise(
    conn: &mut DbConnection,
    register: &ClientRegister,
    now: OffsetDateTime,
) -> Result<AnonymiseReport, ClientsError> {
    run_anonymise_in_batches(conn, register, now, BATCH)
}

/// [`run_anonymise`] with `batch` clients per transaction (the tests' way through several).
pub fn run_anonymise_in_batches(
    conn: &mut DbConnection,
    register: &ClientRegister,
    now: OffsetDateTime,
    batch_size: i64,
) -> Result<AnonymiseReport, ClientsError> {
    allow_purge(conn)?;
    let at = at_primitive(now);
    let today = now.date();
    let actor = "job:anonymise";
    let mut report = AnonymiseReport::default();
    let mut per_registrar = serde_json::Map::new();
    for (registrar_id, _) in registrars(conn)? {
        let closed = close_services_of_departed(conn, &registrar_id, actor, today, at)?;
        let mut anonymised = 0u64;
        // One pass in the order the clients were created, which is near the order their rows,
        // services and history rows lie in the file: a batch rewrites pages next to each other
        // instead of one page per client all over the file. Each client is checked against its
        // own services through the index (a correlated NOT EXISTS), so a batch costs the same
        // at the end of a million clients as at the start.
        let mut after: Option<(PrimitiveDateTime, String)> = None;
        loop {
            let mut query = clients::table
                .filter(clients::registrar_id.eq(registrar_id.clone()))
                .filter(clients::anonymised_at.is_null())
                .filter(past_end_of_visibility!(registrar_id.clone(), today))
                .into_boxed();
            if let Some((created, id)) = &after {
                // (created_at, id) > (created, id), in a form both planners answer from the index.
                query = query.filter(
                    clients::created_at
                        .ge(*created)
                        .and(clients::created_at.gt(*created).or(clients::id.gt(id.clone()))),
                );
            }
            let batch: Vec<(String, PrimitiveDateTime)> = query
                .order((clients::created_at, clients::id))
                .limit(batch_size.max(1))
                .select((clients::id, clients::created_at))
                .load(conn)?;
            let Some((last_id, last_created)) = batch.last() else {
                break;
            };
            after = Some((*last_created, last_id.clone()));
            let ids: Vec<String> = batch.into_iter().map(|(id, _)| id).collect();
            anonymised += anonymise_batch(conn, register, &registrar_id, &ids, today, at)?;
        }
        if closed > 0 || anonymised > 0 {
            per_registrar.insert(
                registrar_id.clone(),
                serde_json::json!({"services_closed": closed, "clients_anonymised": anonymised}),
            );
        }
        report.services_closed += closed;
        report.clients_anonymised += anonymised;
    }
    register.audit.append(vec![run_event(
        "clients_anonymise_run",
        at,
        serde_json::json!({
            "services_closed": report.services_closed,
            "clients_anonymised": report.clients_anonymised,
            "registrars": per_registrar,
        }),
    )])?;
    Ok(report)
}
