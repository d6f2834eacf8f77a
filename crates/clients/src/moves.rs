//! A client's move to another municipality (source 000, VT-4): the client record becomes
//! unnecessary only when the person moves to a municipality that does not use the system. A move
//! into a municipality another registrar of the system serves keeps the record and its services,
//! and leaves that registrar a notice; a move to a municipality no registrar serves closes the
//! client's open services on the day of the move. A registrar that has not recorded which
//! municipalities it serves cannot tell a move out of its area from one within it, so nothing
//! is closed or sent for it.

use diesel::prelude::*;
use rekisteri_core::{PersonalIdentityCode, TemporaryCodesAllowed};
use rekisteri_crypto::Keyring;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::client_moves;
use time::{Date, PrimitiveDateTime};

use crate::ClientsError;
use crate::clients::ClientRow;
use crate::sealed::RowCipher;

const TABLE: &str = "client_moves";

/// What a change of home municipality did to the register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveEffect {
    /// The home municipality did not change, or the change was not a move (it was cleared).
    NoMove,
    /// The registrar has not recorded which municipalities it serves: nothing was decided.
    AreaUnknown,
    /// Into another municipality the same registrar serves.
    WithinArea,
    /// Into a municipality another registrar serves: the record stays, that registrar got a
    /// notice (`notice_id` in its `client_moves`).
    ToRegistrar { registrar_id: String, notice_id: String },
    /// Into a municipality no registrar of the system serves: the open services closed.
    OutOfSystem { services_closed: usize },
}

/// Decides and records what moving `client` (as stored before the change) to `municipality`
/// on `moved_on` does (see the module comment).
pub(crate) fn apply_move(
    conn: &mut DbConnection,
    keyring: &Keyring,
    registrar_id: &str,
    client: &ClientRow,
    municipality: &str,
    moved_on: Date,
    at: PrimitiveDateTime,
) -> Result<MoveEffect, ClientsError> {
    let served = rekisteri_accounts::directory::municipalities_of(conn, registrar_id)?;
    if served.is_empty() {
        return Ok(MoveEffect::AreaUnknown);
    }
    if served.iter().any(|code| code == municipality) {
        return Ok(MoveEffect::WithinArea);
    }
    match rekisteri_accounts::directory::registrar_of_municipality(conn, municipality)? {
        Some(receiving) => {
            let notice_id = notify(
                conn,
                keyring,
                &receiving,
                registrar_id,
                client,
                municipality,
                moved_on,
                at,
            )?;
            Ok(MoveEffect::ToRegistrar {
                registrar_id: receiving,
                notice_id,
            })
        }
        None => Ok(MoveEffect::OutOfSystem {
            services_closed: crate::population::close_open_services(conn, registrar_id, &client.id, moved_on, at)?,
        }),
    }
}

/// The receiving registrar's notice: only what VTJ told (the identity code, the municipality,
/// the day) and which registrar sent it.
#[allow(clippy::too_many_arguments)]
fn notify(
    conn: &mut DbConnection,
    keyring: &Keyring,
    receiving: &str,
    sending: &str,
    client: &ClientRow,
    municipality: &str,
    moved_on: Date,
    at: PrimitiveDateTime,
) -> Result<String, ClientsError> {
    let Some(sealed) = &client.identity_code else {
        return Err(ClientsError::Crypto("a monitored client has no identity code".into()));
    };
    let clear = RowCipher::new(keyring, "clients", &client.id).open("identity_code", sealed)?;
    let code = PersonalIdentityCode::parse(&clear, TemporaryCodesAllowed::Yes)
        .map_err(|e| ClientsError::Crypto(format!("a stored identity code is invalid: {e}")))?;
    let id = rekisteri_core::ids::new_row_id();
    let identity_code = RowCipher::new(keyring, TABLE, &id).seal("identity_code", code.reveal())?;
    diesel::insert_into(client_moves::table)
        .values((
            client_moves::registrar_id.eq(receiving),
            client_moves::id.eq(&id),
            client_moves::from_registrar_id.eq(sending),
            client_moves::subject_index.eq(rekisteri_audit::subject_index(keyring, &code).to_vec()),
            client_moves::identity_code.eq(identity_code),
            client_moves::home_municipality.eq(municipality),
            client_moves::moved_on.eq(Some(moved_on)),
            client_moves::recorded_at.eq(at),
        ))
        .execute(conn)?;
    Ok(id)
}

/// One notice of a person who moved into the registrar's municipalities from another
/// registrar's (VT-4).
#[derive(Clone, PartialEq, Eq)]
pub struct MoveNotice {
    pub id: String,
    pub subject_index: Option<[u8; 32]>,
    pub identity_code: String,
    pub home_municipality: String,
    pub moved_on: Option<Date>,
    pub from_registrar_id: String,
    pub recorded_at: PrimitiveDateTime,
}

rekisteri_core::redacted_debug!(MoveNotice { id, from_registrar_id });

/// The registrar's notices of people who moved in, newest first, at most `limit` recorded at or
/// after `since`. Opens the identity codes: the caller logs the read per person.
pub fn moves_in(
    conn: &mut DbConnection,
    keyring: &Keyring,
    registrar_id: &str,
    since: Option<PrimitiveDateTime>,
    limit: i64,
) -> Result<Vec<MoveNotice>, ClientsError> {
    let mut query = client_moves::table
        .filter(client_moves::registrar_id.eq(registrar_id))
        .into_boxed();
    if let Some(since) = since {
        query = query.filter(client_moves::recorded_at.ge(since));
    }
    type Row = (
        String,
        Vec<u8>,
        Vec<u8>,
        String,
        Option<Date>,
        String,
        PrimitiveDateTime,
    );
    let rows: Vec<Row> = query
        .order((client_moves::recorded_at.desc(), client_moves::id))
        .limit(limit)
        .select((
            client_moves::id,
            client_moves::subject_index,
            client_moves::identity_code,
            client_moves::home_municipality,
            client_moves::moved_on,
            client_moves::from_registrar_id,
            client_moves::recorded_at,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(
            |(id, subject, sealed, home_municipality, moved_on, from_registrar_id, recorded_at)| {
                let identity_code = RowCipher::new(keyring, TABLE, &id).open("identity_code", &sealed)?;
                Ok(MoveNotice {
                    subject_index: <[u8; 32]>::try_from(subject.as_slice()).ok(),
                    id,
                    identity_code,
                    home_municipality,
                    moved_on,
                    from_registrar_id,
                    recorded_at,
                })
            },
        )
        .collect()
}
