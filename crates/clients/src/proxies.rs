//! Proxies (CL-7): people a client has authorised to act on their behalf. The registrar's staff
//! who keep the client record them; a proxy then sees and does what the client can (CL-9,
//! CL-10) for that client only, from `valid_from` through `valid_to`, until revoked.

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{DataUse, Outcome};
use rekisteri_core::Refusal;
use rekisteri_db::schema::proxies;
use rekisteri_db::{DbConnection, write_transaction_as};
use time::{Date, PrimitiveDateTime};

use crate::access::{Decision, decide_for};
use crate::clients::{
    ClientRow, check_email, check_phone, deny, ensure_not_restricted, is_unique_violation, parse_identity_code,
    reachable_client,
};
use crate::sealed::RowCipher;
use crate::{ClientRegister, ClientsError, NewProxy, Proxy, Request, at_primitive, format_time, rule, validation};

#[derive(Clone, Queryable)]
pub(crate) struct ProxyRow {
    pub id: String,
    pub client_id: String,
    pub subject_index: Vec<u8>,
    pub identity_code: Vec<u8>,
    pub first_names: Vec<u8>,
    pub surname: Vec<u8>,
    pub phone: Option<Vec<u8>>,
    pub email: Option<Vec<u8>>,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    pub revoked_at: Option<PrimitiveDateTime>,
    pub created_at: PrimitiveDateTime,
}

rekisteri_core::redacted_debug!(ProxyRow { id, client_id });

macro_rules! proxy_columns {
    () => {
        (
            proxies::id,
            proxies::client_id,
            proxies::subject_index,
            proxies::identity_code,
            proxies::first_names,
            proxies::surname,
            proxies::phone,
            proxies::email,
            proxies::valid_from,
            proxies::valid_to,
            proxies::revoked_at,
            proxies::created_at,
        )
    };
}
pub(crate) use proxy_columns;

impl ProxyRow {
    pub(crate) fn subject(&self) -> Option<[u8; 32]> {
        self.subject_index.as_slice().try_into().ok()
    }

    /// Whether the authorisation stands on `day`.
    pub(crate) fn valid_on(&self, day: Date) -> bool {
        self.revoked_at.is_none() && self.valid_from <= day && self.valid_to.is_none_or(|to| to >= day)
    }
}

/// Opens a proxy's sealed fields; called only inside `read_personal_data` closures.
pub(crate) fn open_proxy(register: &ClientRegister, row: &ProxyRow) -> Result<Proxy, ClientsError> {
    let cipher = RowCipher::new(&register.keyring, "proxies", &row.id);
    Ok(Proxy {
        id: row.id.clone(),
        client_id: row.client_id.clone(),
        identity_code: cipher.open("identity_code", &row.identity_code)?,
        first_names: cipher.open("first_names", &row.first_names)?,
        surname: cipher.open("surname", &row.surname)?,
        phone: cipher.open_opt("phone", row.phone.as_deref())?,
        email: cipher.open_opt("email", row.email.as_deref())?,
        valid_from: row.valid_from,
        valid_to: row.valid_to,
        revoked_at: row.revoked_at.map(format_time),
        created_at: format_time(row.created_at),
    })
}

pub(crate) fn proxies_of(conn: &mut DbConnection, registrar_id: &str, client_id: &str) -> QueryResult<Vec<ProxyRow>> {
    proxies::table
        .filter(proxies::registrar_id.eq(registrar_id))
        .filter(proxies::client_id.eq(client_id))
        .order((proxies::created_at, proxies::id))
        .select(proxy_columns!())
        .load(conn)
}

/// Logs a change of `row` (its creation or revocation): a use of the client's proxies and of
/// the proxy's own data.
fn log_change(
    conn: &mut DbConnection,
    register: &ClientRegister,
    context: &rekisteri_audit::AuditContext,
    client: &ClientRow,
    row: &ProxyRow,
    at: PrimitiveDateTime,
) -> Result<(), ClientsError> {
    let entries = proxy_uses(client, std::slice::from_ref(row))
        .into_iter()
        .map(|u| context.usage_entry(u, at))
        .collect();
    register.audit.append_in(conn, entries, at)?;
    Ok(())
}

fn proxy_uses(client: &ClientRow, rows: &[ProxyRow]) -> Vec<DataUse> {
    let mut uses = vec![DataUse {
        subject_index: client.subject(),
        data_kind: "proxies".into(),
        data_id: Some(client.id.clone()),
        outcome: Outcome::Used,
    }];
    // The proxy's own data is used too: their log shows it under their own index.
    uses.extend(rows.iter().map(|row| DataUse {
        subject_index: row.subject(),
        data_kind: "proxy".into(),
        data_id: Some(row.id.clone()),
        outcome: Outcome::Used,
    }));
    uses
}

/// The registrar's own staff reach proxies; a provider's users see the client but not whom
/// the client has authorised (AX-6: not needed to deliver a service).
fn registrar_staff(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    write: bool,
) -> Result<(Decision, ClientRow), ClientsError> {
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let (client, _) = reachable_client(conn, register, request, &decision, registrar_id, client_id)?;
    if !decision.is_registrar() || decision.care.is_some() {
        return Err(ClientsError::Refused(Refusal::Forbidden(
            "proxies are kept by the registrar's client handlers".into(),
        )));
    }
    if write && !request.principal.can(Permission::WriteClients) {
        return Err(ClientsError::Refused(Refusal::Forbidden(
            "the caller's roles do not grant write_clients".into(),
        )));
    }
    ensure_not_restricted(&client)?;
    Ok((decision, client))
}

/// The client's proxies, standing and revoked.
pub fn list_proxies(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<Vec<Proxy>, ClientsError> {
    let at = at_primitive(request.now);
    let (decision, client) = registrar_staff(conn, register, request, registrar_id, client_id, false)?;
    let rows = proxies_of(conn, registrar_id, client_id)?;
    register
        .audit
        .read_personal_data(conn, &decision.context(&request.audit), at, |_| {
            let items = rows
                .iter()
                .map(|row| open_proxy(register, row))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, ClientsError>((items, proxy_uses(&client, &rows)))
        })
}

/// Records a proxy authorisation (CL-7). One standing authorisation per person and client
/// (409); a client is not their own proxy (422).
pub fn add_proxy(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    new: NewProxy,
) -> Result<Proxy, ClientsError> {
    let at = at_primitive(request.now);
    let (decision, client) = registrar_staff(conn, register, request, registrar_id, client_id, true)?;
    let code = parse_identity_code("identity_code", &new.identity_code)?;
    for (field, value) in [("first_names", &new.first_names), ("surname", &new.surname)] {
        if value.trim().is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
            return Err(validation(field, "must be 1-200 characters"));
        }
    }
    check_phone("phone", new.phone.as_deref())?;
    check_email("email", new.email.as_deref())?;
    if new.valid_to.is_some_and(|to| to < new.valid_from) {
        return Err(rule("valid_to", "must be on or after valid_from"));
    }
    let subject = rekisteri_audit::subject_index(&register.keyring, &code);
    let candidates = rekisteri_audit::subject_index_candidates(&register.keyring, &code);
    if client
        .subject()
        .is_some_and(|own| candidates.iter().any(|c| c.as_slice() == own.as_slice()))
    {
        return Err(rule("identity_code", "a client is not their own proxy"));
    }
    let id = rekisteri_core::ids::new_row_id();
    let cipher = RowCipher::new(&register.keyring, "proxies", &id);
    let row = ProxyRow {
        id: id.clone(),
        client_id: client_id.to_owned(),
        subject_index: subject.to_vec(),
        identity_code: cipher.seal("identity_code", code.reveal())?,
        first_names: cipher.seal("first_names", new.first_names.trim())?,
        surname: cipher.seal("surname", new.surname.trim())?,
        phone: cipher.seal_opt("phone", new.phone.as_deref())?,
        email: cipher.seal_opt("email", new.email.as_deref())?,
        valid_from: new.valid_from,
        valid_to: new.valid_to,
        revoked_at: None,
        created_at: at,
    };
    let context = decision.context(&request.audit);
    let conflict = || {
        ClientsError::Refused(Refusal::Conflict(
            "this person already holds a standing proxy for the client".into(),
        ))
    };
    let result = write_transaction_as(conn, &request.principal.account_id, |conn| {
        if !crate::lifecycle::hold_client_against_anonymisation(conn, registrar_id, client_id)? {
            return Err(ClientsError::Refused(Refusal::NotFound));
        }
        let standing: i64 = proxies::table
            .filter(proxies::registrar_id.eq(registrar_id))
            .filter(proxies::client_id.eq(client_id))
            .filter(proxies::subject_index.eq_any(&candidates))
            .filter(proxies::revoked_at.is_null())
            .count()
            .get_result(conn)?;
        if standing > 0 {
            return Err(conflict());
        }
        diesel::insert_into(proxies::table)
            .values((
                proxies::registrar_id.eq(registrar_id),
                proxies::id.eq(&row.id),
                proxies::client_id.eq(&row.client_id),
                proxies::subject_index.eq(&row.subject_index),
                proxies::identity_code.eq(&row.identity_code),
                proxies::first_names.eq(&row.first_names),
                proxies::surname.eq(&row.surname),
                proxies::phone.eq(&row.phone),
                proxies::email.eq(&row.email),
                proxies::valid_from.eq(row.valid_from),
                proxies::valid_to.eq(row.valid_to),
                proxies::created_by.eq(&request.principal.account_id),
                proxies::created_at.eq(at),
            ))
            .execute(conn)?;
        log_change(conn, register, &context, &client, &row, at)?;
        Ok(())
    });
    match result {
        Err(e) if is_unique_violation(&e) => return Err(conflict()),
        // Anonymised since it was checked above.
        Err(ClientsError::Refused(Refusal::NotFound)) => {
            return Err(deny(conn, register, request, client.subject(), "client", client_id));
        }
        other => other?,
    }
    // The caller sent these values; answering with them opens nothing new.
    Ok(Proxy {
        id,
        client_id: client_id.to_owned(),
        identity_code: code.reveal().to_owned(),
        first_names: new.first_names.trim().to_owned(),
        surname: new.surname.trim().to_owned(),
        phone: new.phone,
        email: new.email,
        valid_from: new.valid_from,
        valid_to: new.valid_to,
        revoked_at: None,
        created_at: format_time(at),
    })
}

/// Revokes a proxy authorisation; the row stays (revoked) for the right of access and history.
/// Revoking a revoked proxy changes nothing.
pub fn revoke_proxy(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    proxy_id: &str,
) -> Result<(), ClientsError> {
    let at = at_primitive(request.now);
    let (decision, client) = registrar_staff(conn, register, request, registrar_id, client_id, true)?;
    let row: Option<ProxyRow> = proxies::table
        .filter(proxies::registrar_id.eq(registrar_id))
        .filter(proxies::client_id.eq(client_id))
        .filter(proxies::id.eq(proxy_id))
        .select(proxy_columns!())
        .first(conn)
        .optional()?;
    let Some(row) = row else {
        return Err(ClientsError::Refused(Refusal::NotFound));
    };
    if row.revoked_at.is_some() {
        return Ok(());
    }
    let context = decision.context(&request.audit);
    write_transaction_as(conn, &request.principal.account_id, |conn| {
        diesel::update(
            proxies::table
                .filter(proxies::registrar_id.eq(registrar_id))
                .filter(proxies::id.eq(proxy_id))
                .filter(proxies::revoked_at.is_null()),
        )
        .set((
            proxies::revoked_at.eq(Some(at)),
            proxies::revoked_by.eq(Some(&request.principal.account_id)),
        ))
        .execute(conn)?;
        log_change(conn, register, &context, &client, &row, at)?;
        Ok::<_, ClientsError>(())
    })
}
