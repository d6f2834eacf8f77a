//! The right of access (CL-12, GDPR art. 15): everything the client register of one registrar
//! holds about one person, as one JSON document. One document per register: another registrar's
//! records and the call register are never combined into it. Producing it is a disclosure to
//! the data subject and goes to the disclosure log (AU-2), and the reads to the usage log.

use rekisteri_accounts::Permission;
use rekisteri_audit::query::{Filter, MAX_PAGE, all_pages, disclosure_entries, usage_entries};
use rekisteri_audit::{DataUse, DisclosureEntry, NewEntry, Outcome};
use rekisteri_core::Refusal;
use rekisteri_db::DbConnection;
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::{Decision, Reach};
use crate::clients::{deny, load_client, load_services_of, open_client};
use crate::proxies::{open_proxy, proxies_of};
use crate::services::{events_of_client, open_event};
use crate::{
    CareTeamMember, Client, ClientRegister, ClientsError, Proxy, Request, ServiceEvent, at_primitive, format_time,
};

/// One use of the person's data, as the person is told of it (AU-6: organisations and
/// purposes; employees are named by their id only).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportedUse {
    #[schema(format = DateTime)]
    pub occurred_at: String,
    /// The organisation whose user used the data (the log controller).
    pub organisation_id: String,
    pub actor_kind: String,
    pub data_kind: String,
    pub purpose: String,
    pub access_basis: String,
    pub outcome: String,
}

/// One disclosure of the person's data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportedDisclosure {
    #[schema(format = DateTime)]
    pub occurred_at: String,
    pub description: String,
    pub recipient_kind: String,
    pub recipient_name: Option<String>,
    pub purpose: String,
    pub legal_basis: String,
}

/// The right-of-access document of one register (CL-12).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessReport {
    /// Which register this document covers.
    #[schema(example = "client register of service vouchers and purchased services")]
    pub register: String,
    pub registrar_id: String,
    pub registrar_name: String,
    /// Whom the person contacts about this register: its contact person and data-protection
    /// officer (source 000 §4).
    pub registrar_contacts: rekisteri_accounts::RegistrarContacts,
    #[schema(format = DateTime)]
    pub produced_at: String,
    /// The client record with every field and every service.
    pub client: Client,
    pub service_events: Vec<ServiceEvent>,
    /// Proxies, standing and revoked.
    pub proxies: Vec<Proxy>,
    pub care_team: Vec<CareTeamMember>,
    /// Who has used the data in this register, newest first (the usage log, AU-1).
    pub usage: Vec<ReportedUse>,
    /// To whom the data was disclosed, newest first (the disclosure log, AU-2).
    pub disclosures: Vec<ReportedDisclosure>,
}

const REGISTER: &str = "client register of service vouchers and purchased services";

/// Produces the right-of-access document of `client_id` for the registrar's data-protection
/// officer (`handle_data_subject_requests`): 403 for the registrar's other users, 404 (logged) for
/// anyone else or a client that is not there.
pub fn access_report(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<AccessReport, ClientsError> {
    access_report_with(conn, register, request, registrar_id, client_id, |_| {
        Ok::<_, ClientsError>(())
    })
    .map(|(report, ())| report)
}

/// [`access_report`] with the sections another register keeps about the same client (consent,
/// registry use rights), read by `more` inside the same logged read: after the access checks,
/// before the document's usage and disclosure entries are written, so they cover it too.
pub fn access_report_with<X, E>(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    more: impl FnOnce(&mut DbConnection) -> Result<X, E>,
) -> Result<(AccessReport, X), E>
where
    E: From<ClientsError> + From<rekisteri_audit::AuditError> + From<diesel::result::Error>,
{
    let at = at_primitive(request.now);
    let principal = request.principal;
    let Some(registrar) = rekisteri_accounts::directory::registrar(conn, registrar_id).map_err(ClientsError::from)?
    else {
        return Err(ClientsError::Refused(Refusal::NotFound).into());
    };
    rekisteri_accounts::require_strong_authentication(conn, principal, registrar_id).map_err(ClientsError::from)?;
    let row = load_client(conn, registrar_id, client_id)?.filter(|r| r.anonymised_at.is_none());
    if principal.organisation_id != registrar_id {
        return Err(deny(
            conn,
            register,
            request,
            row.and_then(|r| r.subject()),
            "access_report",
            client_id,
        )
        .into());
    }
    if !principal.can(Permission::HandleDataSubjectRequests) {
        return Err(ClientsError::Refused(Refusal::Forbidden(
            "the right-of-access document is produced by the registrar's data-protection officer".into(),
        ))
        .into());
    }
    let Some(row) = row else {
        return Err(deny(conn, register, request, None, "access_report", client_id).into());
    };
    let decision = Decision {
        reach: Reach::Registrar { service_types: None },
        basis: rekisteri_audit::AccessBasis::Role,
        actor_kind: rekisteri_audit::ActorKind::Staff,
        care: None,
        special_reason: None,
    };
    let services = load_services_of(conn, registrar_id, std::slice::from_ref(&row.id))?;
    let events = events_of_client(conn, registrar_id, client_id)?;
    let proxies = proxies_of(conn, registrar_id, client_id)?;
    let care_team: Vec<CareTeamMember> = crate::care_team::members_of(conn, registrar_id, client_id)?;
    let subject = row.subject();
    let context = decision.context(&request.audit);
    register.audit.audited_read(conn, |conn| {
        // The data subject keeps the right of access during a restriction: open as their own.
        let own = Decision {
            basis: rekisteri_audit::AccessBasis::OwnData,
            ..decision.clone()
        };
        let client = open_client(register, &row, &services, &own)?;
        let more = more(conn)?;
        let (usage, disclosures) = match subject {
            Some(subject) => logs_about(
                conn,
                registrar_id,
                log_candidates(register, subject, client.identity_code.as_deref()),
            )?,
            None => (Vec::new(), Vec::new()),
        };
        let service_events = events
            .into_iter()
            .map(|e| open_event(register, e))
            .collect::<Result<Vec<_>, _>>()?;
        let proxies = proxies
            .iter()
            .map(|p| open_proxy(register, p))
            .collect::<Result<Vec<_>, _>>()?;
        let entries = vec![
            context.usage_entry(
                DataUse {
                    subject_index: subject,
                    data_kind: "access_report".into(),
                    data_id: Some(client_id.to_owned()),
                    outcome: Outcome::Used,
                },
                at,
            ),
            NewEntry::Disclosure(DisclosureEntry {
                occurred_at: at,
                registrar_id: registrar_id.to_owned(),
                subject_index: subject,
                description: format!("right-of-access document of the {REGISTER}"),
                discloser_kind: rekisteri_audit::ActorKind::Staff,
                discloser_id: principal.account_id.clone(),
                recipient_kind: "data_subject".into(),
                recipient_id: client_id.to_owned(),
                recipient_name: None,
                purpose: "right of access of the data subject".into(),
                legal_basis: "GDPR art. 15".into(),
                request_id: request.audit.request_id.clone(),
            }),
        ];
        Ok::<_, E>((
            (
                AccessReport {
                    register: REGISTER.into(),
                    registrar_id: registrar_id.to_owned(),
                    registrar_name: registrar.name,
                    registrar_contacts: registrar.contacts,
                    produced_at: format_time(at),
                    client,
                    service_events,
                    proxies,
                    care_team,
                    usage,
                    disclosures,
                },
                more,
            ),
            entries,
        ))
    })
}

/// The indexes the person's log entries may carry: the row's own, and their code's under every
/// blind-index key held. Log entries are never re-indexed, so after a key rotation's switch the
/// row's index (re-indexed or new) no longer matches the entries written before it.
fn log_candidates(register: &ClientRegister, subject: [u8; 32], identity_code: Option<&str>) -> Vec<Vec<u8>> {
    let mut candidates = identity_code
        .and_then(|code| {
            rekisteri_core::PersonalIdentityCode::parse(code, rekisteri_core::TemporaryCodesAllowed::Yes).ok()
        })
        .map(|code| rekisteri_audit::subject_index_candidates(&register.keyring, &code))
        .unwrap_or_default();
    if !candidates.iter().any(|c| c.as_slice() == subject.as_slice()) {
        candidates.push(subject.to_vec());
    }
    candidates
}

fn logs_about(
    conn: &mut DbConnection,
    registrar_id: &str,
    candidates: Vec<Vec<u8>>,
) -> Result<(Vec<ReportedUse>, Vec<ReportedDisclosure>), ClientsError> {
    let filter = Filter {
        subject_candidates: Some(candidates),
        ..Filter::default()
    };
    let usage = all_pages(|cursor| usage_entries(conn, registrar_id, &filter, cursor, MAX_PAGE))?
        .into_iter()
        .map(|u| ReportedUse {
            occurred_at: format_time(u.occurred_at),
            organisation_id: u.log_controller_id,
            actor_kind: u.actor_kind,
            data_kind: u.data_kind,
            purpose: u.purpose,
            access_basis: u.access_basis,
            outcome: u.outcome,
        })
        .collect();
    let disclosures = all_pages(|cursor| disclosure_entries(conn, registrar_id, &filter, cursor, MAX_PAGE))?
        .into_iter()
        .map(|d| ReportedDisclosure {
            occurred_at: format_time(d.occurred_at),
            description: d.description,
            recipient_kind: d.recipient_kind,
            recipient_name: d.recipient_name,
            purpose: d.purpose,
            legal_basis: d.legal_basis,
        })
        .collect();
    Ok((usage, disclosures))
}
