//! What the population register (VTJ) may do to the client register (VT-1, VT-4..VT-7): the
//! monitored list and the application of one person's change. The `vtj` crate decides what a
//! message means; this module owns the tables it lands in.

use diesel::prelude::*;
use rekisteri_core::Refusal;
use rekisteri_core::{PersonalIdentityCode, TemporaryCodesAllowed};
use rekisteri_crypto::Keyring;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{client_death_closures, client_previous_codes, clients, proxies, services};
use time::{Date, PrimitiveDateTime};

use std::collections::HashMap;

use crate::clients::{ClientRow, client_columns, load_client};
use crate::sealed::{JsonFields, RowCipher};
use crate::{Address, ClientsError, Guardianship, GuardianshipPeriod, VtjDate};

/// A client the registrar follows in VTJ: one with at least one open service (VT-1).
pub struct MonitoredClient {
    pub client_id: String,
    pub subject_index: [u8; 32],
    pub identity_code: PersonalIdentityCode,
}

/// The indexes and ids of the registrar's monitored clients (VT-1), without opening anything.
pub fn monitored_subjects(
    conn: &mut DbConnection,
    registrar_id: &str,
) -> Result<Vec<([u8; 32], String)>, ClientsError> {
    let open = services::table
        .filter(services::registrar_id.eq(registrar_id))
        .filter(services::status.eq("active"))
        .select(services::client_id);
    let rows: Vec<(String, Option<Vec<u8>>)> = clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::anonymised_at.is_null())
        .filter(clients::id.eq_any(open))
        .select((clients::id, clients::subject_index))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, s)| s.and_then(|s| <[u8; 32]>::try_from(s.as_slice()).ok()).map(|s| (s, id)))
        .collect())
}

/// The registrar's clients with at least one active service, not anonymised (VT-1). Opens the
/// identity codes, which are about to be sent to DVV: the caller logs that use per person.
pub fn monitored_clients(
    conn: &mut DbConnection,
    keyring: &Keyring,
    registrar_id: &str,
) -> Result<Vec<MonitoredClient>, ClientsError> {
    let open = services::table
        .filter(services::registrar_id.eq(registrar_id))
        .filter(services::status.eq("active"))
        .select(services::client_id);
    type Row = (String, Option<Vec<u8>>, Option<Vec<u8>>);
    let rows: Vec<Row> = clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::anonymised_at.is_null())
        .filter(clients::id.eq_any(open))
        .order(clients::id)
        .select((clients::id, clients::subject_index, clients::identity_code))
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for (client_id, subject, code) in rows {
        let (Some(subject), Some(code)) = (subject, code) else {
            continue;
        };
        let Ok(subject_index) = <[u8; 32]>::try_from(subject.as_slice()) else {
            continue;
        };
        let clear = RowCipher::new(keyring, "clients", &client_id).open("identity_code", &code)?;
        let identity_code = PersonalIdentityCode::parse(&clear, TemporaryCodesAllowed::Yes)
            .map_err(|e| ClientsError::Crypto(format!("a stored identity code is invalid: {e}")))?;
        out.push(MonitoredClient {
            client_id,
            subject_index,
            identity_code,
        });
    }
    Ok(out)
}

/// The client fields one VTJ change sets. `None` leaves a field as it is; `Some(None)` clears it.
/// Dates carry their precision (VT-4: a month or a year is kept as such, see
/// [`crate::DatePrecision`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PopulationUpdate {
    pub first_names: Option<String>,
    pub surname: Option<String>,
    pub language: Option<Option<String>>,
    pub died_on: Option<Option<VtjDate>>,
    pub address: Option<Option<Address>>,
    /// VT-4: the temporary address, beside the permanent one (not stored under a protection order).
    pub temporary_address: Option<Option<Address>>,
    /// VT-4: the postal address (not stored under a protection order).
    pub postal_address: Option<Option<Address>>,
    /// VT-4: `EDUNVALVONTA`, a guardian appointed, with its dates.
    pub guardian: Option<Option<GuardianshipPeriod>>,
    /// VT-4: `EDUNVALVONTAVALTUUTUS`, a continuing power of attorney confirmed, with its dates.
    pub continuing_power_of_attorney: Option<Option<GuardianshipPeriod>>,
    pub home_municipality: Option<Option<String>>,
    pub moved_in_on: Option<Option<VtjDate>>,
    pub moved_out_on: Option<Option<VtjDate>>,
    pub protection_order: Option<bool>,
    /// VT-5: the client's identity code is replaced by this one.
    pub new_identity_code: Option<PersonalIdentityCode>,
}

rekisteri_core::redacted_debug!(PopulationUpdate {});

/// What applying a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PopulationOutcome {
    Applied {
        client_id: String,
        /// A protection order began: the stored address was purged (VT-6).
        protection_started: bool,
        /// A protection order ended: the values must be fetched again (VT-6).
        protection_ended: bool,
        /// VT-5: the client is now found by this index.
        rekeyed_to: Option<[u8; 32]>,
        /// VT-7: services closed by the date of death.
        services_closed: usize,
        /// VT-4: what a change of home municipality did (source 000).
        moved: crate::moves::MoveEffect,
    },
    /// The register holds no live client with this identity code.
    NotAClient,
}

/// Applies `update` to the registrar's client `client_id`, inside the caller's transaction (which names the actor for the change history). Under a protection
/// order no address or home municipality is stored, whatever the update says (CL-8).
pub fn apply_population_update(
    conn: &mut DbConnection,
    keyring: &Keyring,
    registrar_id: &str,
    client_id: &str,
    update: &PopulationUpdate,
    at: PrimitiveDateTime,
) -> Result<PopulationOutcome, ClientsError> {
    let row = load_client(conn, registrar_id, client_id)?;
    Ok(apply_to(conn, keyring, registrar_id, row, update, at)?.0)
}

/// The clients a batch of VTJ changes touches, read once for the batch (VT-13): each change
/// is applied to the row as the previous change of the batch left it, one UPDATE per change,
/// so that the change history keeps every change.
pub struct PopulationBatch {
    registrar_id: String,
    rows: HashMap<String, Option<ClientRow>>,
}

impl PopulationBatch {
    /// Reads the registrar's clients `client_ids` in a few statements.
    pub fn load(conn: &mut DbConnection, registrar_id: &str, client_ids: &[String]) -> Result<Self, ClientsError> {
        let mut rows: HashMap<String, Option<ClientRow>> = client_ids.iter().map(|id| (id.clone(), None)).collect();
        for chunk in client_ids.chunks(500) {
            let found: Vec<ClientRow> = clients::table
                .filter(clients::registrar_id.eq(registrar_id))
                .filter(clients::id.eq_any(chunk))
                .select(client_columns!())
                .load(conn)?;
            for row in found {
                rows.insert(row.id.clone(), Some(row));
            }
        }
        Ok(Self {
            registrar_id: registrar_id.to_owned(),
            rows,
        })
    }

    /// [`apply_population_update`] on the batch's copy of the client, inside the caller's
    /// transaction.
    pub fn apply(
        &mut self,
        conn: &mut DbConnection,
        keyring: &Keyring,
        client_id: &str,
        update: &PopulationUpdate,
        at: PrimitiveDateTime,
    ) -> Result<PopulationOutcome, ClientsError> {
        let row = match self.rows.get(client_id) {
            Some(row) => row.clone(),
            None => load_client(conn, &self.registrar_id, client_id)?,
        };
        let (outcome, next) = apply_to(conn, keyring, &self.registrar_id, row, update, at)?;
        if let Some(next) = next {
            self.rows.insert(client_id.to_owned(), Some(next));
        }
        Ok(outcome)
    }
}

/// Applies `update` to `row` (as the database holds it now); returns the outcome and the row as
/// the UPDATE left it.
fn apply_to(
    conn: &mut DbConnection,
    keyring: &Keyring,
    registrar_id: &str,
    row: Option<ClientRow>,
    update: &PopulationUpdate,
    at: PrimitiveDateTime,
) -> Result<(PopulationOutcome, Option<ClientRow>), ClientsError> {
    let Some(row) = row.filter(|r| r.anonymised_at.is_none()) else {
        return Ok((PopulationOutcome::NotAClient, None));
    };
    let subject: [u8; 32] = row.subject().unwrap_or([0; 32]);
    let cipher = RowCipher::new(keyring, "clients", &row.id);
    let mut next: ClientRow = row.clone();
    if let Some(v) = &update.first_names {
        next.first_names = Some(cipher.seal("first_names", v.trim())?);
    }
    if let Some(v) = &update.surname {
        next.surname = Some(cipher.seal("surname", v.trim())?);
    }
    if let Some(v) = &update.language {
        next.language = v.clone();
    }
    if let Some(v) = update.died_on {
        (next.died_on, next.died_on_precision) = split_date(v);
    }
    if let Some(v) = update.moved_in_on {
        (next.moved_in_on, next.moved_in_on_precision) = split_date(v);
    }
    if let Some(v) = update.moved_out_on {
        (next.moved_out_on, next.moved_out_on_precision) = split_date(v);
    }
    if update.guardian.is_some() || update.continuing_power_of_attorney.is_some() {
        // Opened only when the change is about guardianship (VT-13: most are not).
        let mut guardianship: Guardianship = cipher
            .open_json("guardianship", row.guardianship.as_deref())?
            .unwrap_or_default();
        if let Some(v) = &update.guardian {
            guardianship.guardian = v.clone();
        }
        if let Some(v) = &update.continuing_power_of_attorney {
            guardianship.continuing_power_of_attorney = v.clone();
        }
        next.guardianship = if guardianship.is_empty() {
            None
        } else {
            cipher.seal_json("guardianship", Some(&guardianship))?
        };
    }
    let protected = update.protection_order.unwrap_or(row.protection_order);
    if protected {
        next.address = None;
        next.temporary_address = None;
        next.postal_address = None;
        next.home_municipality = None;
    } else {
        if let Some(v) = &update.address {
            next.address = cipher.seal_json("address", v.as_ref())?;
        }
        if let Some(v) = &update.temporary_address {
            next.temporary_address = cipher.seal_json("temporary_address", v.as_ref())?;
        }
        if let Some(v) = &update.postal_address {
            next.postal_address = cipher.seal_json("postal_address", v.as_ref())?;
        }
        if let Some(v) = &update.home_municipality {
            next.home_municipality = v.clone();
        }
    }
    next.protection_order = protected;
    let mut rekeyed_to = None;
    if let Some(code) = &update.new_identity_code {
        let new_subject = rekisteri_audit::subject_index(keyring, code);
        // The row may hold its code's index under a blind-index key being rotated out: the
        // same code under either key is no correction.
        let new_candidates = rekisteri_audit::subject_index_candidates(keyring, code);
        if !new_candidates.iter().any(|c| c.as_slice() == subject.as_slice()) {
            let taken: i64 = clients::table
                .filter(clients::registrar_id.eq(registrar_id))
                .filter(clients::subject_index.eq_any(&new_candidates))
                .count()
                .get_result(conn)?;
            if taken > 0 {
                return Err(ClientsError::Refused(Refusal::Conflict(
                    "the corrected identity code belongs to another client".into(),
                )));
            }
            if let Some(old) = &row.identity_code {
                let previous = RowCipher::new(keyring, "client_previous_codes", &row.id);
                let clear = cipher.open("identity_code", old)?;
                let sealed = previous.seal("identity_code", &clear)?;
                let old_code = PersonalIdentityCode::parse(&clear, TemporaryCodesAllowed::Yes)
                    .map_err(|e| ClientsError::Crypto(format!("a stored identity code is invalid: {e}")))?;
                // One row per earlier code, whichever key an older row of it was indexed with.
                diesel::delete(
                    client_previous_codes::table
                        .filter(client_previous_codes::registrar_id.eq(registrar_id))
                        .filter(
                            client_previous_codes::subject_index
                                .eq_any(rekisteri_audit::subject_index_candidates(keyring, &old_code)),
                        ),
                )
                .execute(conn)?;
                diesel::insert_into(client_previous_codes::table)
                    .values((
                        client_previous_codes::registrar_id.eq(registrar_id),
                        client_previous_codes::subject_index
                            .eq(rekisteri_audit::subject_index(keyring, &old_code).to_vec()),
                        client_previous_codes::client_id.eq(&row.id),
                        client_previous_codes::identity_code.eq(sealed),
                        client_previous_codes::corrected_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            next.subject_index = Some(new_subject.to_vec());
            next.identity_code = Some(cipher.seal("identity_code", code.reveal())?);
            rekeyed_to = Some(new_subject);
        }
    }
    rekisteri_db::kept_update(
        clients::table,
        (
            clients::subject_index.eq(&next.subject_index),
            clients::identity_code.eq(&next.identity_code),
            clients::first_names.eq(&next.first_names),
            clients::surname.eq(&next.surname),
            clients::home_municipality.eq(&next.home_municipality),
            clients::moved_in_on.eq(next.moved_in_on),
            clients::moved_out_on.eq(next.moved_out_on),
            clients::died_on.eq(next.died_on),
            clients::language.eq(&next.language),
            clients::address.eq(&next.address),
            clients::temporary_address.eq(&next.temporary_address),
            clients::postal_address.eq(&next.postal_address),
            clients::guardianship.eq(&next.guardianship),
            clients::moved_in_on_precision.eq(&next.moved_in_on_precision),
            clients::moved_out_on_precision.eq(&next.moved_out_on_precision),
            clients::died_on_precision.eq(&next.died_on_precision),
            clients::protection_order.eq(next.protection_order),
            clients::version.eq(clients::version + 1),
            clients::updated_at.eq(at),
        ),
        clients::registrar_id.eq(registrar_id).and(clients::id.eq(&row.id)),
    )
    .execute(conn)?;
    let protection_started = protected && !row.protection_order;
    if protection_started {
        // The history row the update just wrote holds the old address too (CL-8).
        rekisteri_db::history::redact_protected_address(conn, &row.id)?;
    }
    let mut services_closed = 0;
    if let Some(died) = next.died_on.filter(|_| row.died_on != next.died_on) {
        services_closed = close_on_death(conn, registrar_id, &row.id, died, at)?;
    }
    let mut moved = crate::moves::MoveEffect::NoMove;
    if let Some(Some(municipality)) = &update.home_municipality
        && !protected
        && row.home_municipality.as_deref() != Some(municipality.as_str())
    {
        // The day of the move is the day the person moved into the new municipality.
        let moved_on = next
            .moved_in_on
            .filter(|_| update.moved_in_on.is_some())
            .unwrap_or(at.date());
        moved = crate::moves::apply_move(conn, keyring, registrar_id, &row, municipality, moved_on, at)?;
    }
    next.version = row.version + 1;
    next.updated_at = at;
    Ok((
        PopulationOutcome::Applied {
            client_id: row.id,
            protection_started,
            protection_ended: row.protection_order && !protected,
            rekeyed_to,
            services_closed,
            moved,
        },
        Some(next),
    ))
}

/// A date from VTJ as the row stores it: the date, and its precision when it is not a full date.
fn split_date(value: Option<VtjDate>) -> (Option<Date>, Option<String>) {
    match value {
        Some(d) => (Some(d.date), d.precision.map(|p| p.as_str().to_owned())),
        None => (None, None),
    }
}

/// VT-7: the client's open services close on the date of death (within their validity), its
/// standing proxies end on that date (one that had not begun is revoked), and the client enters
/// the registrar's death work list. Returns the services closed.
fn close_on_death(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
    died: Date,
    at: PrimitiveDateTime,
) -> Result<usize, ClientsError> {
    let services_closed = close_open_services(conn, registrar_id, client_id, died, at)?;
    let standing = || {
        proxies::table
            .filter(proxies::registrar_id.eq(registrar_id))
            .filter(proxies::client_id.eq(client_id))
            .filter(proxies::revoked_at.is_null())
            .filter(proxies::valid_to.is_null().or(proxies::valid_to.gt(died)))
    };
    let ended = diesel::update(standing().filter(proxies::valid_from.le(died)))
        .set(proxies::valid_to.eq(Some(died)))
        .execute(conn)?;
    let revoked = diesel::update(standing().filter(proxies::valid_from.gt(died)))
        .set((proxies::revoked_at.eq(Some(at)), proxies::revoked_by.eq(Some("vtj"))))
        .execute(conn)?;
    let proxies_ended = i32::try_from(ended + revoked).unwrap_or(i32::MAX);
    let closed_count = i32::try_from(services_closed).unwrap_or(i32::MAX);
    let entry = (
        client_death_closures::died_on.eq(died),
        client_death_closures::services_closed.eq(closed_count),
        client_death_closures::proxies_ended.eq(proxies_ended),
        client_death_closures::recorded_at.eq(at),
    );
    let updated = diesel::update(
        client_death_closures::table
            .filter(client_death_closures::registrar_id.eq(registrar_id))
            .filter(client_death_closures::client_id.eq(client_id)),
    )
    .set(entry)
    .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(client_death_closures::table)
            .values((
                client_death_closures::registrar_id.eq(registrar_id),
                client_death_closures::client_id.eq(client_id),
                entry.0,
                entry.1,
                entry.2,
                entry.3,
            ))
            .execute(conn)?;
    }
    Ok(services_closed)
}

/// Closes the client's active services on `on`, kept within each one's validity (VT-4, VT-7);
/// returns how many closed.
pub(crate) fn close_open_services(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
    on: Date,
    at: PrimitiveDateTime,
) -> Result<usize, ClientsError> {
    let open: Vec<(String, Date, Date)> = services::table
        .filter(services::registrar_id.eq(registrar_id))
        .filter(services::client_id.eq(client_id))
        .filter(services::status.eq("active"))
        .select((services::id, services::valid_from, services::valid_to))
        .load(conn)?;
    for (id, valid_from, valid_to) in &open {
        let closed_on = on.clamp(*valid_from, (*valid_to).max(*valid_from));
        diesel::update(
            services::table
                .filter(services::registrar_id.eq(registrar_id))
                .filter(services::id.eq(id)),
        )
        .set((
            services::status.eq("closed"),
            services::closed_on.eq(closed_on),
            services::version.eq(services::version + 1),
            services::updated_at.eq(at),
        ))
        .execute(conn)?;
    }
    Ok(open.len())
}

/// One client on the registrar's death work list (VT-7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeathClosure {
    pub client_id: String,
    pub subject_index: Option<[u8; 32]>,
    pub died_on: Date,
    pub services_closed: i32,
    pub proxies_ended: i32,
    pub recorded_at: PrimitiveDateTime,
}

/// The registrar's death work list (VT-7), newest first, at most `limit` rows recorded at or
/// after `since`. The caller logs the read per client.
pub fn death_work_list(
    conn: &mut DbConnection,
    registrar_id: &str,
    since: Option<PrimitiveDateTime>,
    limit: i64,
) -> Result<Vec<DeathClosure>, ClientsError> {
    let mut query = client_death_closures::table
        .inner_join(
            clients::table.on(clients::registrar_id
                .eq(client_death_closures::registrar_id)
                .and(clients::id.eq(client_death_closures::client_id))),
        )
        .filter(client_death_closures::registrar_id.eq(registrar_id))
        .filter(clients::anonymised_at.is_null())
        .into_boxed();
    if let Some(since) = since {
        query = query.filter(client_death_closures::recorded_at.ge(since));
    }
    type Row = (String, Option<Vec<u8>>, Date, i32, i32, PrimitiveDateTime);
    let rows: Vec<Row> = query
        .order((
            client_death_closures::recorded_at.desc(),
            client_death_closures::client_id,
        ))
        .limit(limit)
        .select((
            client_death_closures::client_id,
            clients::subject_index,
            client_death_closures::died_on,
            client_death_closures::services_closed,
            client_death_closures::proxies_ended,
            client_death_closures::recorded_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(client_id, subject, died_on, services_closed, proxies_ended, recorded_at)| DeathClosure {
                client_id,
                subject_index: subject.and_then(|s| <[u8; 32]>::try_from(s.as_slice()).ok()),
                died_on,
                services_closed,
                proxies_ended,
                recorded_at,
            },
        )
        .collect())
}

/// VT-5: the client whose earlier identity code has one of these indexes (the code's
/// [`rekisteri_audit::subject_index_candidates`]), if any.
pub fn client_by_previous_code(
    conn: &mut DbConnection,
    registrar_id: &str,
    candidates: &[Vec<u8>],
) -> Result<Option<String>, ClientsError> {
    Ok(client_previous_codes::table
        .filter(client_previous_codes::registrar_id.eq(registrar_id))
        .filter(client_previous_codes::subject_index.eq_any(candidates.to_vec()))
        .order(client_previous_codes::corrected_at.desc())
        .select(client_previous_codes::client_id)
        .first(conn)
        .optional()?)
}

/// The index the client with this id is found by now.
pub fn subject_of_client(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
) -> Result<Option<[u8; 32]>, ClientsError> {
    crate::subject_of(conn, registrar_id, "client", client_id)
}

/// Which of `subjects` are live clients under a protection order (VT-6: nothing of theirs is
/// staged).
pub fn protected_subjects(
    conn: &mut DbConnection,
    registrar_id: &str,
    subjects: &[Vec<u8>],
) -> Result<Vec<Vec<u8>>, ClientsError> {
    let mut out = Vec::new();
    for chunk in subjects.chunks(500) {
        let found: Vec<Option<Vec<u8>>> = clients::table
            .filter(clients::registrar_id.eq(registrar_id))
            .filter(clients::protection_order.eq(true))
            .filter(clients::subject_index.eq_any(chunk))
            .select(clients::subject_index)
            .load(conn)?;
        out.extend(found.into_iter().flatten());
    }
    Ok(out)
}

/// The registrars that have at least one live client (the `vtj-sync` job runs for each).
pub fn registrars_with_clients(conn: &mut DbConnection) -> Result<Vec<String>, ClientsError> {
    Ok(clients::table
        .filter(clients::anonymised_at.is_null())
        .select(clients::registrar_id)
        .distinct()
        .order(clients::registrar_id)
        .load(conn)?)
}
