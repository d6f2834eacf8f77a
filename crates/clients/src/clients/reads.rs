//! Reading clients (CL-9, CL-11): one client, a page of them, a search by identity code; every
//! read and every refusal is logged, and a client out of reach looks missing.

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{DataUse, Outcome};
use rekisteri_core::Refusal;
use rekisteri_db::schema::{clients, services};
use rekisteri_db::{DbConnection, write_transaction};

use super::row::{
    ClientRow, client_by_subject, client_columns, load_client, load_client_with_services, load_services_of, open_client,
};
use super::validation::parse_identity_code;
use crate::access::{Decision, Reach, decide_for};
use crate::services::ServiceRow;
use crate::{Client, ClientRegister, ClientsError, Request, at_primitive};

/// Logs a refused attempt on a client (AX-7) durably, then answers 404.
pub(crate) fn deny(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    subject: Option<[u8; 32]>,
    data_kind: &str,
    data_id: &str,
) -> ClientsError {
    let at = at_primitive(request.now);
    let logged = register.audit.read_personal_data(
        conn,
        &Decision::denied(&request.audit),
        at,
        |_| -> Result<((), Vec<DataUse>), ClientsError> {
            Ok((
                (),
                vec![DataUse {
                    subject_index: subject,
                    data_kind: data_kind.to_owned(),
                    data_id: Some(data_id.to_owned()),
                    outcome: Outcome::Denied,
                }],
            ))
        },
    );
    match logged {
        Ok(()) => ClientsError::Refused(Refusal::NotFound),
        Err(e) => e,
    }
}

/// A client the decision reaches, with all its services (for the caller to filter); otherwise a
/// logged denial and 404, so that a missing and a forbidden client look the same (AX-4, AX-7).
/// The answer to a create for a person the register already holds: the attempt goes to the
/// usage log (outcome `exists`) in a transaction of its own, since the create's rolled back,
/// so the auditor sees who learnt of whom; the existing client is named only to a caller who
/// reaches it.
pub(super) fn existing_client(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    decision: &Decision,
    registrar_id: &str,
    subject: [u8; 32],
    candidates: &[Vec<u8>],
) -> Result<ClientsError, ClientsError> {
    let at = at_primitive(request.now);
    let existing = client_by_subject(conn, registrar_id, candidates)?.map(|row| row.id);
    let reached = match &existing {
        Some(id) => visible_client(conn, request, decision, registrar_id, id)?.is_some(),
        None => false,
    };
    let entry = decision.context(&request.audit).usage_entry(
        DataUse {
            subject_index: Some(subject),
            data_kind: "client".into(),
            data_id: existing.clone(),
            outcome: Outcome::Exists,
        },
        at,
    );
    write_transaction(conn, |conn| register.audit.append_in(conn, vec![entry], at))?;
    Ok(ClientsError::ClientExists {
        registrar_id: registrar_id.to_owned(),
        client_id: existing.filter(|_| reached),
    })
}

/// The client and its services when the decision reaches it now, without logging anything.
fn visible_client(
    conn: &mut DbConnection,
    request: &Request<'_>,
    decision: &Decision,
    registrar_id: &str,
    client_id: &str,
) -> Result<Option<(ClientRow, Vec<ServiceRow>)>, ClientsError> {
    let (row, services) = match load_client_with_services(conn, registrar_id, client_id)? {
        Some((row, services)) => (Some(row), services),
        None => (None, Vec::new()),
    };
    let reached = services
        .iter()
        .any(|s| decision.reaches_service(&s.service_type, &s.provider_id));
    let mut visible = reached
        && match &decision.reach {
            // The registrar's own reach depends on the client's services alone, all loaded.
            crate::access::Reach::Registrar { .. } => {
                crate::lifecycle::registrar_sees(services.iter().map(|s| (s.closed_on, s.valid_to)), request.now.date())
            }
            reach => crate::lifecycle::is_visible(conn, registrar_id, reach, client_id, request.now.date())?,
        };
    if visible && let Some(gate) = &decision.care {
        visible = crate::care_team::has_care_relationship(conn, registrar_id, client_id, gate)?;
    }
    Ok(match row {
        Some(row) if visible && row.anonymised_at.is_none() => Some((row, services)),
        _ => None,
    })
}

pub(crate) fn reachable_client(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    decision: &Decision,
    registrar_id: &str,
    client_id: &str,
) -> Result<(ClientRow, Vec<ServiceRow>), ClientsError> {
    if let Some(found) = visible_client(conn, request, decision, registrar_id, client_id)? {
        return Ok(found);
    }
    let subject = load_client(conn, registrar_id, client_id)?.and_then(|r| r.subject());
    Err(deny(conn, register, request, subject, "client", client_id))
}

/// One client with the services the caller may see (CL-9); a client the caller may not see is
/// a 404 and a logged denial.
pub fn get_client(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<Client, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let (row, services) = reachable_client(conn, register, request, &decision, registrar_id, client_id)?;
    register
        .audit
        .read_personal_data(conn, &decision.context(&request.audit), at, |_| {
            let client = open_client(register, &row, &services, &decision)?;
            Ok::<_, ClientsError>((client, vec![row.used()]))
        })
}

/// A page of clients and the cursor of the next.
#[derive(Debug, Clone)]
pub struct ClientPage {
    pub items: Vec<Client>,
    pub next_cursor: Option<String>,
}

/// The clients the caller reaches, in id order, `limit` at a time (PL-2); every listed client is
/// a logged use.
pub fn list_clients(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<ClientPage, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let mut query = services::table
        .filter(services::registrar_id.eq(registrar_id))
        .select(services::client_id)
        .distinct()
        .order(services::client_id)
        .limit(limit + 1)
        .into_boxed();
    match &decision.reach {
        Reach::Registrar { service_types: None } => {}
        Reach::Registrar {
            service_types: Some(types),
        } => query = query.filter(services::service_type.eq_any(types.clone())),
        Reach::Provider { provider_id } => query = query.filter(services::provider_id.eq(provider_id.clone())),
        Reach::Nothing => {
            return Ok(ClientPage {
                items: Vec::new(),
                next_cursor: None,
            });
        }
    }
    if let Some(after) = after {
        query = query.filter(services::client_id.gt(after.to_owned()));
    }
    if let Some(gate) = &decision.care {
        query =
            query.filter(services::client_id.eq_any(crate::care_team::care_team_clients(conn, registrar_id, gate)?));
    }
    // CL-13: a client past the end of visibility is not listed.
    let query = crate::lifecycle::only_visible(query, registrar_id, &decision.reach, request.now.date(), None);
    let mut ids: Vec<String> = query.load(conn)?;
    let more = ids.len() as i64 > limit;
    ids.truncate(usize::try_from(limit).unwrap_or(0));
    let rows: Vec<ClientRow> = clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::id.eq_any(&ids))
        .filter(clients::anonymised_at.is_null())
        .order(clients::id)
        .select(client_columns!())
        .load(conn)?;
    let services = load_services_of(conn, registrar_id, &ids)?;
    let next_cursor = if more { ids.last().cloned() } else { None };
    let items = register
        .audit
        .read_personal_data(conn, &decision.context(&request.audit), at, |_| {
            let mut items = Vec::with_capacity(rows.len());
            let mut uses = Vec::with_capacity(rows.len());
            for row in &rows {
                items.push(open_client(register, row, &services, &decision)?);
                uses.push(row.used());
            }
            Ok::<_, ClientsError>((items, uses))
        })?;
    Ok(ClientPage { items, next_cursor })
}

/// Finds a client by identity code (CL-11): always logged, with the person's index, whether or
/// not anyone is found. A client outside the caller's reach is not found.
pub fn search_by_identity_code(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    identity_code: &str,
) -> Result<Vec<Client>, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let code = parse_identity_code("identity_code", identity_code)?;
    let subject = rekisteri_audit::subject_index(&register.keyring, &code);
    let candidates = rekisteri_audit::subject_index_candidates(&register.keyring, &code);
    let mut row = client_by_subject(conn, registrar_id, &candidates)?;
    // VT-5: a code VTJ corrected still finds its client, flagged.
    let mut by_previous_code = false;
    if row.is_none()
        && let Some(id) = crate::population::client_by_previous_code(conn, registrar_id, &candidates)?
    {
        row = load_client(conn, registrar_id, &id)?.filter(|r| r.anonymised_at.is_none());
        by_previous_code = row.is_some();
    }
    let services = match &row {
        Some(row) => load_services_of(conn, registrar_id, std::slice::from_ref(&row.id))?,
        None => Vec::new(),
    };
    let visible = match &row {
        Some(row) => crate::lifecycle::is_visible(conn, registrar_id, &decision.reach, &row.id, request.now.date())?,
        None => false,
    };
    let mut found = row.filter(|_| {
        visible
            && services
                .iter()
                .any(|s| decision.reaches_service(&s.service_type, &s.provider_id))
    });
    if let (Some(row), Some(gate)) = (&found, &decision.care)
        && !crate::care_team::has_care_relationship(conn, registrar_id, &row.id, gate)?
    {
        found = None;
    }
    let context = if matches!(decision.reach, Reach::Nothing) {
        Decision::denied(&request.audit)
    } else {
        decision.context(&request.audit)
    };
    register.audit.read_personal_data(conn, &context, at, |_| {
        let (items, outcome, data_id) = match &found {
            Some(row) => (
                vec![Client {
                    found_by_previous_identity_code: by_previous_code,
                    ..open_client(register, row, &services, &decision)?
                }],
                Outcome::Used,
                Some(row.id.clone()),
            ),
            None if matches!(decision.reach, Reach::Nothing) => (Vec::new(), Outcome::Denied, None),
            None => (Vec::new(), Outcome::NotFound, None),
        };
        Ok::<_, ClientsError>((
            items,
            vec![DataUse {
                subject_index: Some(subject),
                data_kind: "client_search".into(),
                data_id,
                outcome,
            }],
        ))
    })
}
