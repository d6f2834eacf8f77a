//! Contacts pushed by the telephony system (CA-2) and read by the registrar's staff.

use diesel::prelude::*;
use rekisteri_accounts::{Permission, Principal};
use rekisteri_audit::{AuditContext, DataUse, Outcome};
use rekisteri_core::Refusal;
use rekisteri_core::{MunicipalityCode, PersonalIdentityCode, TemporaryCodesAllowed};
use rekisteri_crypto::{BlindIndex, Keyring};
use rekisteri_db::schema::{call_queues, contacts, legal_holds, recordings};
use rekisteri_db::{DbConnection, write_transaction};
use time::PrimitiveDateTime;

use crate::access::{QueueRow, enter, is_queue_user, queue};
use crate::model::{Contact, ContactKind, LegalHold, NewContact, Recording};
use crate::{CallRegister, CallsError, Request, at_primitive, format_time, new_id, rule, validation};
use rekisteri_crypto::RowCipher;

const TABLE: &str = "contacts";

/// The longest contact or wait the register takes: a day.
const MAX_SECONDS: i32 = 86_400;

/// The clocks of the telephony system and ours may differ this much.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

const NUMBER_DOMAIN: &str = "caller_number";

/// The blind index a caller's number is stored with (CA-2), under the active blind-index key.
pub(crate) fn number_index(keyring: &Keyring, number: &str) -> [u8; 32] {
    BlindIndex::new(keyring).compute(NUMBER_DOMAIN, number.as_bytes())
}

/// Every index a contact from `number` may hold: under each blind-index key held, since contacts
/// stored before a key rotation's switch keep the previous key's index until re-indexed.
pub(crate) fn number_index_candidates(keyring: &Keyring, number: &str) -> Vec<Vec<u8>> {
    BlindIndex::new(keyring)
        .candidates(NUMBER_DOMAIN, number.as_bytes())
        .into_iter()
        .map(|index| index.to_vec())
        .collect()
}

/// Checks a phone number in E.164 form: `+`, a country code not starting with 0, 6-15 digits
/// in all.
pub fn check_e164(field: &str, number: &str) -> Result<(), CallsError> {
    let digits = number.strip_prefix('+').unwrap_or("");
    let valid =
        (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    if valid {
        Ok(())
    } else {
        Err(validation(
            field,
            "must be a phone number in E.164 form: + and 6-15 digits, e.g. +358401234567",
        ))
    }
}

#[derive(Clone, Queryable)]
pub(crate) struct ContactRow {
    pub registrar_id: String,
    pub id: String,
    pub queue_id: String,
    pub kind: String,
    pub caller_number: Option<Vec<u8>>,
    pub caller_number_index: Option<Vec<u8>>,
    pub secret_number: bool,
    pub agent_id: Option<String>,
    pub answered: bool,
    pub home_municipality: Option<String>,
    pub started_at: PrimitiveDateTime,
    pub wait_seconds: Option<i32>,
    pub duration_seconds: Option<i32>,
    pub client_name: Option<Vec<u8>>,
    pub subject_index: Option<Vec<u8>>,
    pub identity_code: Option<Vec<u8>>,
    pub recording_announcement: Option<String>,
    pub created_by: String,
    pub created_at: PrimitiveDateTime,
}

rekisteri_core::redacted_debug!(ContactRow { id, registrar_id, kind });

impl ContactRow {
    pub(crate) fn kind(&self) -> ContactKind {
        ContactKind::parse(&self.kind).unwrap_or(ContactKind::Chat)
    }

    pub(crate) fn subject(&self) -> Option<[u8; 32]> {
        self.subject_index.as_deref().and_then(|s| s.try_into().ok())
    }

    pub(crate) fn data_use(&self, data_kind: &str) -> DataUse {
        DataUse {
            subject_index: self.subject(),
            data_kind: data_kind.to_owned(),
            data_id: Some(self.id.clone()),
            outcome: Outcome::Used,
        }
    }
}

macro_rules! contact_columns {
    () => {
        (
            contacts::registrar_id,
            contacts::id,
            contacts::queue_id,
            contacts::kind,
            contacts::caller_number,
            contacts::caller_number_index,
            contacts::secret_number,
            contacts::agent_id,
            contacts::answered,
            contacts::home_municipality,
            contacts::started_at,
            contacts::wait_seconds,
            contacts::duration_seconds,
            contacts::client_name,
            contacts::subject_index,
            contacts::identity_code,
            contacts::recording_announcement,
            contacts::created_by,
            contacts::created_at,
        )
    };
}

pub(crate) fn contact_row(
    conn: &mut DbConnection,
    registrar_id: &str,
    contact_id: &str,
) -> Result<Option<ContactRow>, CallsError> {
    if uuid::Uuid::parse_str(contact_id).is_err() {
        return Ok(None);
    }
    Ok(contacts::table
        .filter(contacts::registrar_id.eq(registrar_id))
        .filter(contacts::id.eq(contact_id))
        .select(contact_columns!())
        .first(conn)
        .optional()?)
}

type RecordingColumns = (
    String,
    String,
    i64,
    Vec<u8>,
    PrimitiveDateTime,
    Option<PrimitiveDateTime>,
    Option<String>,
);

type HoldColumns = (
    String,
    String,
    String,
    String,
    Option<time::Date>,
    String,
    PrimitiveDateTime,
);

/// The recordings and holds in force of `ids`, for assembling contacts.
fn extras(
    conn: &mut DbConnection,
    registrar_id: &str,
    ids: &[String],
    today: time::Date,
) -> Result<(Vec<RecordingColumns>, Vec<HoldColumns>), CallsError> {
    let recordings: Vec<RecordingColumns> = recordings::table
        .filter(recordings::registrar_id.eq(registrar_id))
        .filter(recordings::contact_id.eq_any(ids))
        .select((
            recordings::contact_id,
            recordings::content_type,
            recordings::bytes,
            recordings::sha256,
            recordings::stored_at,
            recordings::destroyed_at,
            recordings::destroyed_by_run,
        ))
        .load(conn)?;
    let holds: Vec<HoldColumns> = legal_holds::table
        .filter(legal_holds::registrar_id.eq(registrar_id))
        .filter(legal_holds::contact_id.eq_any(ids))
        .filter(legal_holds::released_at.is_null())
        .filter(legal_holds::until_on.is_null().or(legal_holds::until_on.ge(today)))
        .select((
            legal_holds::contact_id,
            legal_holds::id,
            legal_holds::authority,
            legal_holds::case_reference,
            legal_holds::until_on,
            legal_holds::placed_by,
            legal_holds::placed_at,
        ))
        .load(conn)?;
    Ok((recordings, holds))
}

/// The service units of the registrar's queues, for the secret-number rule.
fn queue_units(conn: &mut DbConnection, registrar_id: &str) -> Result<Vec<(String, String)>, CallsError> {
    Ok(call_queues::table
        .filter(call_queues::registrar_id.eq(registrar_id))
        .select((call_queues::id, call_queues::service_unit_id))
        .load(conn)?)
}

/// Opens rows as `principal` may see them (AX-6). Called only inside `read_personal_data`.
fn open_contacts(
    conn: &mut DbConnection,
    keyring: &Keyring,
    principal: &Principal,
    rows: &[ContactRow],
    now: time::OffsetDateTime,
) -> Result<Vec<Contact>, CallsError> {
    open_contacts_as(conn, keyring, Some(principal), rows, now)
}

/// Opens rows for `viewer` (secret numbers hidden outside their queue), or with every number
/// shown when the person's own data is compiled for them (`None`).
fn open_contacts_as(
    conn: &mut DbConnection,
    keyring: &Keyring,
    viewer: Option<&Principal>,
    rows: &[ContactRow],
    now: time::OffsetDateTime,
) -> Result<Vec<Contact>, CallsError> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let registrar_id = first.registrar_id.clone();
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let today = rekisteri_core::helsinki_local(at_primitive(now)).date();
    let (recordings, holds) = extras(conn, &registrar_id, &ids, today)?;
    // An authority's case reference is for those who handle holds, and for the person.
    let sees_holds = viewer.is_none_or(|p| p.can(Permission::ManageLegalHolds));
    let units = queue_units(conn, &registrar_id)?;
    rows.iter()
        .map(|row| {
            let cipher = RowCipher::new(keyring, TABLE, &row.id);
            let queue_user = viewer.is_none_or(|principal| {
                units.iter().any(|(queue_id, unit)| {
                    *queue_id == row.queue_id
                        && is_queue_user(
                            principal,
                            &QueueRow {
                                id: queue_id.clone(),
                                service_unit_id: unit.clone(),
                                recorded: false,
                                recording_announcement: None,
                            },
                        )
                })
            });
            let caller_number = if row.secret_number && !queue_user {
                None
            } else {
                cipher.open_opt("caller_number", row.caller_number.as_deref())?
            };
            let recording = recordings.iter().find(|r| r.0 == row.id).map(
                |(_, content_type, bytes, sha256, stored_at, destroyed_at, run)| Recording {
                    sha256: rekisteri_crypto::to_hex(sha256),
                    content_type: content_type.clone(),
                    bytes: *bytes,
                    stored_at: format_time(*stored_at),
                    destroyed_at: destroyed_at.map(format_time),
                    destroyed_by_run: run.clone(),
                },
            );
            let legal_hold = holds.iter().filter(|_| sees_holds).find(|h| h.0 == row.id).map(
                |(_, id, authority, case_reference, until_on, placed_by, placed_at)| LegalHold {
                    id: id.clone(),
                    authority: authority.clone(),
                    case_reference: case_reference.clone(),
                    until_on: *until_on,
                    placed_by: placed_by.clone(),
                    placed_at: format_time(*placed_at),
                },
            );
            Ok(Contact {
                id: row.id.clone(),
                registrar_id: row.registrar_id.clone(),
                kind: row.kind(),
                caller_number,
                secret_number: row.secret_number,
                queue_id: row.queue_id.clone(),
                agent_id: row.agent_id.clone(),
                answered: row.answered,
                home_municipality: row.home_municipality.clone(),
                started_at: format_time(row.started_at),
                wait_seconds: row.wait_seconds,
                duration_seconds: row.duration_seconds,
                client_name: cipher.open_opt("client_name", row.client_name.as_deref())?,
                client_identity_code: cipher.open_opt("identity_code", row.identity_code.as_deref())?,
                recording_announcement: row.recording_announcement.clone(),
                recording,
                legal_hold,
                created_at: format_time(row.created_at),
            })
        })
        .collect()
}

fn check_seconds(field: &str, value: Option<i32>) -> Result<(), CallsError> {
    match value {
        Some(v) if !(0..=MAX_SECONDS).contains(&v) => Err(validation(field, "must be 0-86400 seconds")),
        _ => Ok(()),
    }
}

fn check_new(new: &NewContact, now: time::OffsetDateTime) -> Result<Option<PersonalIdentityCode>, CallsError> {
    if new.kind == ContactKind::Chat {
        for (field, given) in [
            ("caller_number", new.caller_number.is_some()),
            ("client_name", new.client_name.is_some()),
            ("client_identity_code", new.client_identity_code.is_some()),
            ("home_municipality", new.home_municipality.is_some()),
            ("secret_number", new.secret_number),
        ] {
            if given {
                return Err(validation(
                    field,
                    "a chat is anonymous: no personal data is stored for it",
                ));
            }
        }
    }
    if let Some(number) = &new.caller_number {
        check_e164("caller_number", number)?;
    }
    if new.secret_number && new.caller_number.is_none() {
        return Err(validation("secret_number", "needs the caller_number it flags"));
    }
    if let Some(code) = &new.home_municipality {
        code.parse::<MunicipalityCode>()
            .map_err(|e| validation("home_municipality", e.to_string()))?;
    }
    if let Some(agent) = &new.agent_id
        && uuid::Uuid::parse_str(agent).is_err()
    {
        return Err(validation("agent_id", "must be an account id (UUID)"));
    }
    if uuid::Uuid::parse_str(&new.queue_id).is_err() {
        return Err(validation("queue_id", "must be a queue id (UUID)"));
    }
    check_seconds("wait_seconds", new.wait_seconds)?;
    check_seconds("duration_seconds", new.duration_seconds)?;
    if let Some(name) = &new.client_name {
        let length = name.chars().count();
        if name.trim().is_empty() || length > 200 || name.chars().any(char::is_control) {
            return Err(validation(
                "client_name",
                "must be 1-200 characters without control characters",
            ));
        }
    }
    if new.started_at > now + CLOCK_SKEW {
        return Err(rule("started_at", "is in the future"));
    }
    new.client_identity_code
        .as_deref()
        .map(|code| {
            PersonalIdentityCode::parse(code, TemporaryCodesAllowed::No)
                .map_err(|e| validation("client_identity_code", e.to_string()))
        })
        .transpose()
}

/// Stores a pushed contact (CA-2): personal fields sealed, the number and the identity code
/// indexed, the queue's announcement kept with a contact of a recorded queue. The answer shows
/// the contact as the pusher may see it, and its use is logged with the write.
pub fn create_contact(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    new: NewContact,
) -> Result<Contact, CallsError> {
    let context = enter(conn, request, registrar_id, Some(Permission::PushContacts))?;
    let code = check_new(&new, request.now)?;
    let at = at_primitive(request.now);
    let id = new_id();
    let cipher = RowCipher::new(&register.keyring, TABLE, &id);
    let caller_number = cipher.seal_opt("caller_number", new.caller_number.as_deref())?;
    let caller_number_index = new
        .caller_number
        .as_deref()
        .map(|n| number_index(&register.keyring, n).to_vec());
    let client_name = cipher.seal_opt("client_name", new.client_name.as_deref())?;
    let identity_code = cipher.seal_opt("identity_code", code.as_ref().map(PersonalIdentityCode::reveal))?;
    let subject_index = code
        .as_ref()
        .map(|c| rekisteri_audit::subject_index(&register.keyring, c).to_vec());
    let started_at = at_primitive(new.started_at);
    let row = write_transaction(conn, |conn| {
        let queue = queue(conn, registrar_id, &new.queue_id)?
            .ok_or_else(|| rule("queue_id", "is not a queue of this registrar"))?;
        if let Some(agent) = &new.agent_id
            && !rekisteri_accounts::is_active_member(conn, registrar_id, agent)?
        {
            return Err(rule("agent_id", "is not an active account of this registrar"));
        }
        let announcement = if queue.recorded && new.kind != ContactKind::Chat {
            queue.recording_announcement.clone()
        } else {
            None
        };
        let row = ContactRow {
            registrar_id: registrar_id.to_owned(),
            id: id.clone(),
            queue_id: queue.id.clone(),
            kind: new.kind.as_str().to_owned(),
            caller_number,
            caller_number_index,
            secret_number: new.secret_number,
            agent_id: new.agent_id.clone(),
            answered: new.answered.unwrap_or(new.agent_id.is_some()),
            home_municipality: new.home_municipality.clone(),
            started_at,
            wait_seconds: new.wait_seconds,
            duration_seconds: new.duration_seconds,
            client_name,
            subject_index,
            identity_code,
            recording_announcement: announcement,
            created_by: context.actor_id.clone(),
            created_at: at,
        };
        diesel::insert_into(contacts::table)
            .values((
                contacts::registrar_id.eq(&row.registrar_id),
                contacts::id.eq(&row.id),
                contacts::queue_id.eq(&row.queue_id),
                contacts::kind.eq(&row.kind),
                contacts::caller_number.eq(&row.caller_number),
                contacts::caller_number_index.eq(&row.caller_number_index),
                contacts::secret_number.eq(row.secret_number),
                contacts::agent_id.eq(&row.agent_id),
                contacts::answered.eq(row.answered),
                contacts::home_municipality.eq(&row.home_municipality),
                contacts::started_at.eq(row.started_at),
                contacts::wait_seconds.eq(row.wait_seconds),
                contacts::duration_seconds.eq(row.duration_seconds),
                contacts::client_name.eq(&row.client_name),
                contacts::subject_index.eq(&row.subject_index),
                contacts::identity_code.eq(&row.identity_code),
                contacts::recording_announcement.eq(&row.recording_announcement),
                contacts::created_by.eq(&row.created_by),
                contacts::created_at.eq(row.created_at),
            ))
            .execute(conn)?;
        Ok(row)
    })?;
    read_contact(conn, register, request, &context, at, &row)
}

/// Opens `row` for the caller inside its logged read (CA-14).
fn read_contact(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    context: &AuditContext,
    at: PrimitiveDateTime,
    row: &ContactRow,
) -> Result<Contact, CallsError> {
    let principal = request.principal;
    register.audit.read_personal_data(conn, context, at, |conn| {
        let mut opened = open_contacts(
            conn,
            &register.keyring,
            principal,
            std::slice::from_ref(row),
            request.now,
        )?;
        let contact = opened.pop().ok_or(CallsError::Refused(Refusal::NotFound))?;
        Ok::<_, CallsError>((contact, vec![row.data_use("contact")]))
    })
}

/// Whether the principal may view contacts: the registrar's staff with `read_contacts`.
fn enter_to_read(
    conn: &mut DbConnection,
    request: &Request<'_>,
    registrar_id: &str,
) -> Result<AuditContext, CallsError> {
    enter(conn, request, registrar_id, Some(Permission::ReadContacts))
}

/// One contact (CA-2) as the caller may see it; the view is logged (CA-14).
pub fn get_contact(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    contact_id: &str,
) -> Result<Contact, CallsError> {
    let context = enter_to_read(conn, request, registrar_id)?;
    let at = at_primitive(request.now);
    let row = contact_row(conn, registrar_id, contact_id)?.ok_or(CallsError::Refused(Refusal::NotFound))?;
    read_contact(conn, register, request, &context, at, &row)
}

/// Which contacts a listing returns.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub queue_id: Option<String>,
    pub from: Option<time::OffsetDateTime>,
    pub to: Option<time::OffsetDateTime>,
    /// The id of the last contact of the previous page.
    pub after: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct ContactPage {
    pub items: Vec<Contact>,
    /// The id to continue after, when more follow.
    pub next_after: Option<String>,
}

/// The registrar's contacts, a page at a time in id order; each listed contact is a logged view.
pub fn list_contacts(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    filter: ContactFilter,
) -> Result<ContactPage, CallsError> {
    let context = enter_to_read(conn, request, registrar_id)?;
    let at = at_primitive(request.now);
    let mut query = contacts::table
        .filter(contacts::registrar_id.eq(registrar_id))
        .select(contact_columns!())
        .order(contacts::id)
        .limit(filter.limit + 1)
        .into_boxed();
    if let Some(queue_id) = &filter.queue_id {
        query = query.filter(contacts::queue_id.eq(queue_id.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(contacts::started_at.ge(at_primitive(from)));
    }
    if let Some(to) = filter.to {
        query = query.filter(contacts::started_at.lt(at_primitive(to)));
    }
    if let Some(after) = &filter.after {
        query = query.filter(contacts::id.gt(after.clone()));
    }
    let mut rows: Vec<ContactRow> = query.load(conn)?;
    let more = rows.len() as i64 > filter.limit;
    rows.truncate(usize::try_from(filter.limit).unwrap_or(0));
    let next_after = if more { rows.last().map(|r| r.id.clone()) } else { None };
    let principal = request.principal;
    let items = register.audit.read_personal_data(conn, &context, at, |conn| {
        let opened = open_contacts(conn, &register.keyring, principal, &rows, request.now)?;
        Ok::<_, CallsError>((opened, rows.iter().map(|r| r.data_use("contact")).collect()))
    })?;
    Ok(ContactPage { items, next_after })
}

/// The contacts from one number (CA-2), found by its blind index; the number is in the body,
/// never in a URL. A search that finds nothing is logged too.
pub fn search_by_caller_number(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    number: &str,
) -> Result<Vec<Contact>, CallsError> {
    let context = enter_to_read(conn, request, registrar_id)?;
    check_e164("caller_number", number)?;
    let at = at_primitive(request.now);
    let candidates = number_index_candidates(&register.keyring, number);
    let rows: Vec<ContactRow> = contacts::table
        .filter(contacts::registrar_id.eq(registrar_id))
        .filter(contacts::caller_number_index.eq_any(candidates))
        .select(contact_columns!())
        .order((contacts::started_at, contacts::id))
        .limit(500)
        .load(conn)?;
    let principal = request.principal;
    register.audit.read_personal_data(conn, &context, at, |conn| {
        let opened = open_contacts(conn, &register.keyring, principal, &rows, request.now)?;
        // A secret number is found only by the users it is shown to: anyone else's search
        // must not tell that the number called (AX-6).
        let visible: Vec<(Contact, DataUse)> = opened
            .into_iter()
            .zip(rows.iter())
            .filter(|(contact, _)| contact.caller_number.is_some())
            .map(|(contact, row)| (contact, row.data_use("contact")))
            .collect();
        let mut uses: Vec<DataUse> = visible.iter().map(|(_, u)| u.clone()).collect();
        if uses.is_empty() {
            uses.push(DataUse {
                subject_index: None,
                data_kind: "contact_search".to_owned(),
                data_id: None,
                outcome: Outcome::NotFound,
            });
        }
        Ok::<_, CallsError>((visible.into_iter().map(|(c, _)| c).collect(), uses))
    })
}

/// A finnish number written nationally (`040 123 4567`) in E.164, for matching a client's
/// recorded phone number with callers' numbers; `None` when it is no phone number.
pub fn as_e164(phone: &str) -> Option<String> {
    let compact: String = phone.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    let candidate = match compact.strip_prefix('0') {
        Some(rest) if !rest.starts_with('0') => format!("+358{rest}"),
        Some(rest) => format!("+{}", rest.trim_start_matches('0')),
        None => compact,
    };
    check_e164("phone", &candidate).ok().map(|()| candidate)
}

/// A person's contacts for their right-of-access document (CL-12): found by the identity code
/// given with a contact, or by the person's phone number as a caller's number. For the
/// registrar's data-protection officer only; every contact found is a logged use, and the
/// person's own secret numbers are shown (it is their own data).
pub fn contacts_of_person(
    conn: &mut DbConnection,
    register: &CallRegister,
    request: &Request<'_>,
    registrar_id: &str,
    identity_code: Option<&PersonalIdentityCode>,
    phone: Option<&str>,
) -> Result<Vec<Contact>, CallsError> {
    let context = enter(conn, request, registrar_id, Some(Permission::HandleDataSubjectRequests))?;
    let at = at_primitive(request.now);
    let subject = identity_code.map(|code| rekisteri_audit::subject_index_candidates(&register.keyring, code));
    let number = phone
        .and_then(as_e164)
        .map(|n| number_index_candidates(&register.keyring, &n));
    if subject.is_none() && number.is_none() {
        return Ok(Vec::new());
    }
    let mut query = contacts::table
        .filter(contacts::registrar_id.eq(registrar_id))
        .select(contact_columns!())
        .order((contacts::started_at, contacts::id))
        .into_boxed();
    query = match (subject, number) {
        (Some(subject), Some(number)) => query.filter(
            contacts::subject_index
                .eq_any(subject)
                .or(contacts::caller_number_index.eq_any(number)),
        ),
        (Some(subject), None) => query.filter(contacts::subject_index.eq_any(subject)),
        (None, Some(number)) => query.filter(contacts::caller_number_index.eq_any(number)),
        (None, None) => return Ok(Vec::new()),
    };
    let rows: Vec<ContactRow> = query.load(conn)?;
    register.audit.read_personal_data(conn, &context, at, |conn| {
        let opened = open_contacts_as(conn, &register.keyring, None, &rows, request.now)?;
        Ok::<_, CallsError>((opened, rows.iter().map(|r| r.data_use("contact")).collect()))
    })
}

#[cfg(test)]
mod tests {
    use super::as_e164;

    #[test]
    fn cl_12_a_national_number_matches_its_e164_form() {
        assert_eq!(as_e164("040 123 4567").as_deref(), Some("+358401234567"));
        assert_eq!(as_e164("+358401234567").as_deref(), Some("+358401234567"));
        assert_eq!(as_e164("00358401234567").as_deref(), Some("+358401234567"));
        assert_eq!(as_e164("not a number"), None);
    }
}
