//! Kanta informing (CO-1), disclosure consent (CO-2), prohibitions (CO-3) and the disclosure
//! decision over the stored state (CO-4, CO-5). Every read and change is a logged use of the
//! client's data; consent and prohibitions recorded at a provider are queued for the will
//! service (CO-6).

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{DataUse, DisclosureEntry, NewEntry, Outcome};
use rekisteri_clients::{ReachedClient, Request, reach_client};
use rekisteri_core::Refusal;
use rekisteri_db::schema::{case_documents, disclosure_consents, disclosure_prohibitions, kanta_informings};
use rekisteri_db::{DbConnection, write_transaction};
use serde::{Deserialize, Serialize};
use time::PrimitiveDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::decision::{
    Basis, ConsentState, DataItem, DisclosureState, ProhibitionInForce, ProhibitionScope, Recipient, decide,
};
use crate::{ConsentError, ConsentRegister, at_primitive, format_time, new_id, rule, validation};

/// CO-1: how and when the client was informed about Kanta storage.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInforming {
    /// `in_person` or `omakanta_receipt`.
    #[schema(pattern = "^(in_person|omakanta_receipt)$")]
    pub method: String,
    /// RFC 3339; the moment of recording when absent.
    #[schema(format = DateTime)]
    pub informed_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Informing {
    pub id: String,
    pub client_id: String,
    pub method: String,
    #[schema(format = DateTime)]
    pub informed_at: String,
    /// The user who informed, and their organisation.
    pub recorded_by: String,
    pub recorded_by_organisation: String,
    #[schema(format = DateTime)]
    pub recorded_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentChange {
    pub state: ConsentState,
    pub recorded_by: String,
    pub recorded_by_organisation: String,
    #[schema(format = DateTime)]
    pub recorded_at: String,
}

/// CO-2: the current state (the newest change) and every change before it, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentView {
    pub client_id: String,
    pub state: ConsentState,
    /// Whether the client has been informed (CO-1); consent and prohibitions need it.
    pub informed: bool,
    pub history: Vec<ConsentChange>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProhibition {
    /// `all`, `registrar`, `service_task` or `document`.
    #[schema(pattern = "^(all|registrar|service_task|document)$")]
    pub scope: String,
    /// The registrar id, service task or document id; absent for `all`.
    pub target: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Prohibition {
    pub id: String,
    pub client_id: String,
    pub scope: String,
    pub target: Option<String>,
    pub in_force: bool,
    pub recorded_by: String,
    pub recorded_by_organisation: String,
    #[schema(format = DateTime)]
    pub recorded_at: String,
    pub revoked_by: Option<String>,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientBody {
    /// `provider`, `registrar`, `organisation`, …
    #[schema(min_length = 1, pattern = "\\S")]
    pub kind: String,
    #[schema(min_length = 1, pattern = "\\S")]
    pub id: String,
}

/// CO-4: may the data be disclosed to the recipient?
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub client_id: String,
    /// Whose data it is.
    pub registrar_id: String,
    pub service_task: Option<String>,
    pub document_id: Option<String>,
    /// The case (registry use right) the data belongs to; a stored document's own case is used
    /// when `document_id` names one. The organiser's exception (CO-5) needs a case.
    pub case_oid: Option<String>,
    pub recipient: RecipientBody,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionResponse {
    /// `allow` or `deny`.
    pub decision: String,
    /// `consent:<state>`, `prohibition:<scope>:<id>` or `organiser_exception:<right id>`.
    pub basis: String,
    /// `consent`, `prohibition` or `organiser_exception`.
    pub basis_kind: String,
    pub consent_state: ConsentState,
    pub prohibition_id: Option<String>,
    pub registry_use_right_id: Option<String>,
}

type InformingRow = (
    String,
    String,
    PrimitiveDateTime,
    String,
    String,
    String,
    PrimitiveDateTime,
);
type ConsentRow = (String, String, String, PrimitiveDateTime);
type ProhibitionRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    PrimitiveDateTime,
    Option<String>,
    Option<PrimitiveDateTime>,
);

fn use_of(reached: &ReachedClient, kind: &str, id: &str) -> DataUse {
    DataUse {
        subject_index: reached.subject,
        data_kind: kind.to_owned(),
        data_id: Some(id.to_owned()),
        outcome: Outcome::Used,
    }
}

fn reach(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<ReachedClient, ConsentError> {
    Ok(reach_client(
        conn,
        &register.clients,
        request,
        registrar_id,
        client_id,
        Permission::ManageDisclosureConsent,
    )?)
}

fn informing_of(row: InformingRow, client_id: &str) -> Informing {
    Informing {
        id: row.0,
        client_id: client_id.to_owned(),
        informed_at: format_time(row.2),
        method: row.1,
        recorded_by: row.3,
        recorded_by_organisation: row.4,
        recorded_at: format_time(row.6),
    }
}

fn load_informings(conn: &mut DbConnection, registrar_id: &str, client_id: &str) -> QueryResult<Vec<InformingRow>> {
    kanta_informings::table
        .filter(kanta_informings::registrar_id.eq(registrar_id))
        .filter(kanta_informings::client_id.eq(client_id))
        .order((kanta_informings::recorded_at, kanta_informings::id))
        .select((
            kanta_informings::id,
            kanta_informings::method,
            kanta_informings::informed_at,
            kanta_informings::recorded_by,
            kanta_informings::recorded_by_organisation,
            kanta_informings::client_id,
            kanta_informings::recorded_at,
        ))
        .load(conn)
}

fn ensure_informed(conn: &mut DbConnection, registrar_id: &str, client_id: &str) -> Result<(), ConsentError> {
    let count: i64 = kanta_informings::table
        .filter(kanta_informings::registrar_id.eq(registrar_id))
        .filter(kanta_informings::client_id.eq(client_id))
        .count()
        .get_result(conn)?;
    if count == 0 {
        return Err(rule(
            "kanta_informing",
            "the client has not been informed about Kanta storage; record the informing first (CO-1)",
        ));
    }
    Ok(())
}

/// CO-1: records that the client was informed about Kanta storage.
pub fn record_informing(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    new: NewInforming,
) -> Result<Informing, ConsentError> {
    if !matches!(new.method.as_str(), "in_person" | "omakanta_receipt") {
        return Err(validation("method", "must be in_person or omakanta_receipt"));
    }
    let at = at_primitive(request.now);
    let informed_at = match new.informed_at.as_deref() {
        None => at,
        Some(text) => {
            let parsed = time::OffsetDateTime::parse(text, &Rfc3339)
                .map_err(|_| validation("informed_at", "must be an RFC 3339 date-time"))?;
            if parsed > request.now {
                return Err(rule("informed_at", "must not be in the future"));
            }
            at_primitive(parsed)
        }
    };
    let reached = reach(conn, register, request, registrar_id, client_id)?;
    let context = reached.decision.context(&request.audit);
    let id = new_id();
    let principal = request.principal;
    register.clients.audit.read_personal_data(conn, &context, at, |conn| {
        let mut queued = false;
        write_transaction(conn, |conn| {
            diesel::insert_into(kanta_informings::table)
                .values((
                    kanta_informings::registrar_id.eq(registrar_id),
                    kanta_informings::id.eq(&id),
                    kanta_informings::client_id.eq(client_id),
                    kanta_informings::informed_at.eq(informed_at),
                    kanta_informings::method.eq(&new.method),
                    kanta_informings::recorded_by.eq(&principal.account_id),
                    kanta_informings::recorded_by_organisation.eq(&principal.organisation_id),
                    kanta_informings::recorded_at.eq(at),
                ))
                .execute(conn)?;
            queued = crate::outbox::enqueue_if_provider(
                conn,
                register,
                &reached,
                registrar_id,
                "informing",
                &id,
                serde_json::json!({"method": new.method, "informed_at": format_time(informed_at)}),
                at,
            )?;
            Ok::<_, ConsentError>(())
        })?;
        register.outbox_queued(queued);
        let informing = Informing {
            id: id.clone(),
            client_id: client_id.to_owned(),
            method: new.method.clone(),
            informed_at: format_time(informed_at),
            recorded_by: principal.account_id.clone(),
            recorded_by_organisation: principal.organisation_id.clone(),
            recorded_at: format_time(at),
        };
        Ok((informing, vec![use_of(&reached, "kanta_informing", &id)]))
    })
}

/// CO-1: the client's informing records, oldest first.
pub fn list_informings(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<Vec<Informing>, ConsentError> {
    let reached = reach(conn, register, request, registrar_id, client_id)?;
    let context = reached.decision.context(&request.audit);
    register
        .clients
        .audit
        .read_personal_data(conn, &context, at_primitive(request.now), |conn| {
            let rows = load_informings(conn, registrar_id, client_id)?;
            let items: Vec<Informing> = rows.into_iter().map(|r| informing_of(r, client_id)).collect();
            Ok((items, vec![use_of(&reached, "kanta_informing", client_id)]))
        })
}

fn load_consents(conn: &mut DbConnection, registrar_id: &str, client_id: &str) -> QueryResult<Vec<ConsentRow>> {
    disclosure_consents::table
        .filter(disclosure_consents::registrar_id.eq(registrar_id))
        .filter(disclosure_consents::client_id.eq(client_id))
        .order(disclosure_consents::seq.desc())
        .select((
            disclosure_consents::state,
            disclosure_consents::recorded_by,
            disclosure_consents::recorded_by_organisation,
            disclosure_consents::recorded_at,
        ))
        .load(conn)
}

fn current_consent(rows: &[ConsentRow]) -> ConsentState {
    rows.first()
        .and_then(|r| ConsentState::parse(&r.0))
        .unwrap_or(ConsentState::NotGiven)
}

fn consent_view(conn: &mut DbConnection, registrar_id: &str, client_id: &str) -> Result<ConsentView, ConsentError> {
    let rows = load_consents(conn, registrar_id, client_id)?;
    let informed = !load_informings(conn, registrar_id, client_id)?.is_empty();
    Ok(ConsentView {
        client_id: client_id.to_owned(),
        state: current_consent(&rows),
        informed,
        history: rows
            .into_iter()
            .map(|r| ConsentChange {
                state: ConsentState::parse(&r.0).unwrap_or(ConsentState::NotGiven),
                recorded_by: r.1,
                recorded_by_organisation: r.2,
                recorded_at: format_time(r.3),
            })
            .collect(),
    })
}

/// The client's informings (oldest first), consent with its history and prohibitions, as the
/// right-of-access document holds them. Only inside a logged read.
pub(crate) fn consent_sections(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
) -> Result<(Vec<Informing>, ConsentView, Vec<Prohibition>), ConsentError> {
    let informings = load_informings(conn, registrar_id, client_id)?
        .into_iter()
        .map(|r| informing_of(r, client_id))
        .collect();
    let consent = consent_view(conn, registrar_id, client_id)?;
    let prohibitions = load_prohibitions(conn, registrar_id, client_id)?
        .into_iter()
        .map(prohibition_of)
        .collect();
    Ok((informings, consent, prohibitions))
}

/// CO-2: the current consent and its history.
pub fn get_consent(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<ConsentView, ConsentError> {
    let reached = reach(conn, register, request, registrar_id, client_id)?;
    let context = reached.decision.context(&request.audit);
    register
        .clients
        .audit
        .read_personal_data(conn, &context, at_primitive(request.now), |conn| {
            let view = consent_view(conn, registrar_id, client_id)?;
            Ok((view, vec![use_of(&reached, "disclosure_consent", client_id)]))
        })
}

/// CO-2: records a new consent state (`positive`, `negative` or `revoked`); refused before the
/// client has been informed (CO-1). Revoking needs a consent to revoke.
pub fn set_consent(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    state: ConsentState,
) -> Result<ConsentView, ConsentError> {
    if state == ConsentState::NotGiven {
        return Err(validation("state", "must be positive, negative or revoked"));
    }
    let at = at_primitive(request.now);
    let reached = reach(conn, register, request, registrar_id, client_id)?;
    let context = reached.decision.context(&request.audit);
    let principal = request.principal;
    register.clients.audit.read_personal_data(conn, &context, at, |conn| {
        let mut queued = false;
        let view = write_transaction(conn, |conn| {
            ensure_informed(conn, registrar_id, client_id)?;
            let rows = load_consents(conn, registrar_id, client_id)?;
            let current = current_consent(&rows);
            if state == ConsentState::Revoked && !matches!(current, ConsentState::Positive | ConsentState::Negative) {
                return Err(rule("state", "there is no given consent to revoke"));
            }
            let id = new_id();
            diesel::insert_into(disclosure_consents::table)
                .values((
                    disclosure_consents::registrar_id.eq(registrar_id),
                    disclosure_consents::id.eq(&id),
                    disclosure_consents::client_id.eq(client_id),
                    disclosure_consents::state.eq(state.as_str()),
                    disclosure_consents::recorded_by.eq(&principal.account_id),
                    disclosure_consents::recorded_by_organisation.eq(&principal.organisation_id),
                    disclosure_consents::recorded_at.eq(at),
                    disclosure_consents::seq.eq(rows.len() as i64 + 1),
                ))
                .execute(conn)?;
            queued = crate::outbox::enqueue_if_provider(
                conn,
                register,
                &reached,
                registrar_id,
                "consent",
                &id,
                serde_json::json!({"state": state.as_str(), "recorded_at": format_time(at)}),
                at,
            )?;
            consent_view(conn, registrar_id, client_id)
        })?;
        register.outbox_queued(queued);
        Ok((view, vec![use_of(&reached, "disclosure_consent", client_id)]))
    })
}

fn prohibition_of(row: ProhibitionRow) -> Prohibition {
    Prohibition {
        id: row.0,
        client_id: row.1,
        scope: row.2,
        target: row.3,
        in_force: row.8.is_none(),
        recorded_by: row.4,
        recorded_by_organisation: row.5,
        recorded_at: format_time(row.6),
        revoked_by: row.7,
        revoked_at: row.8.map(format_time),
    }
}

fn load_prohibitions(conn: &mut DbConnection, registrar_id: &str, client_id: &str) -> QueryResult<Vec<ProhibitionRow>> {
    disclosure_prohibitions::table
        .filter(disclosure_prohibitions::registrar_id.eq(registrar_id))
        .filter(disclosure_prohibitions::client_id.eq(client_id))
        .order((disclosure_prohibitions::recorded_at, disclosure_prohibitions::id))
        .select((
            disclosure_prohibitions::id,
            disclosure_prohibitions::client_id,
            disclosure_prohibitions::scope,
            disclosure_prohibitions::target,
            disclosure_prohibitions::recorded_by,
            disclosure_prohibitions::recorded_by_organisation,
            disclosure_prohibitions::recorded_at,
            disclosure_prohibitions::revoked_by,
            disclosure_prohibitions::revoked_at,
        ))
        .load(conn)
}

/// CO-3: the client's prohibitions, in force and revoked.
pub fn list_prohibitions(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<Vec<Prohibition>, ConsentError> {
    let reached = reach(conn, register, request, registrar_id, client_id)?;
    let context = reached.decision.context(&request.audit);
    register
        .clients
        .audit
        .read_personal_data(conn, &context, at_primitive(request.now), |conn| {
            let rows = load_prohibitions(conn, registrar_id, client_id)?;
            Ok((
                rows.into_iter().map(prohibition_of).collect(),
                vec![use_of(&reached, "disclosure_prohibitions", client_id)],
            ))
        })
}

/// CO-3: records a prohibition; after informing, whatever the consent state.
pub fn add_prohibition(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    new: NewProhibition,
) -> Result<Prohibition, ConsentError> {
    let target = new.target.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let scope = match (new.scope.as_str(), target) {
        ("all", Some(_)) => return Err(rule("target", "must be absent when the scope is all")),
        ("registrar" | "service_task" | "document", None) => {
            return Err(rule("target", "is required for this scope"));
        }
        (kind, target) => ProhibitionScope::from_parts(kind, target)
            .ok_or_else(|| validation("scope", "must be all, registrar, service_task or document"))?,
    };
    let at = at_primitive(request.now);
    let reached = reach(conn, register, request, registrar_id, client_id)?;
    let context = reached.decision.context(&request.audit);
    let principal = request.principal;
    let id = new_id();
    register.clients.audit.read_personal_data(conn, &context, at, |conn| {
        let mut queued = false;
        write_transaction(conn, |conn| {
            ensure_informed(conn, registrar_id, client_id)?;
            diesel::insert_into(disclosure_prohibitions::table)
                .values((
                    disclosure_prohibitions::registrar_id.eq(registrar_id),
                    disclosure_prohibitions::id.eq(&id),
                    disclosure_prohibitions::client_id.eq(client_id),
                    disclosure_prohibitions::scope.eq(scope.kind()),
                    disclosure_prohibitions::target.eq(scope.target()),
                    disclosure_prohibitions::recorded_by.eq(&principal.account_id),
                    disclosure_prohibitions::recorded_by_organisation.eq(&principal.organisation_id),
                    disclosure_prohibitions::recorded_at.eq(at),
                ))
                .execute(conn)?;
            queued = crate::outbox::enqueue_if_provider(
                conn,
                register,
                &reached,
                registrar_id,
                "prohibition",
                &id,
                serde_json::json!({"scope": scope.kind(), "target": scope.target(), "recorded_at": format_time(at)}),
                at,
            )?;
            Ok::<_, ConsentError>(())
        })?;
        register.outbox_queued(queued);
        let prohibition = Prohibition {
            id: id.clone(),
            client_id: client_id.to_owned(),
            scope: scope.kind().to_owned(),
            target: scope.target().map(str::to_owned),
            in_force: true,
            recorded_by: principal.account_id.clone(),
            recorded_by_organisation: principal.organisation_id.clone(),
            recorded_at: format_time(at),
            revoked_by: None,
            revoked_at: None,
        };
        Ok((prohibition, vec![use_of(&reached, "disclosure_prohibition", &id)]))
    })
}

/// CO-3: revokes a prohibition; the row stays as history.
pub fn revoke_prohibition(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    prohibition_id: &str,
) -> Result<Prohibition, ConsentError> {
    let at = at_primitive(request.now);
    let reached = reach(conn, register, request, registrar_id, client_id)?;
    let context = reached.decision.context(&request.audit);
    let principal = request.principal;
    register.clients.audit.read_personal_data(conn, &context, at, |conn| {
        let mut queued = false;
        let row = write_transaction(conn, |conn| {
            let rows = load_prohibitions(conn, registrar_id, client_id)?;
            let Some(row) = rows.into_iter().find(|r| r.0 == prohibition_id) else {
                return Err(ConsentError::Refused(Refusal::NotFound));
            };
            if row.8.is_some() {
                return Err(rule("prohibition", "the prohibition is already revoked"));
            }
            diesel::update(
                disclosure_prohibitions::table
                    .filter(disclosure_prohibitions::registrar_id.eq(registrar_id))
                    .filter(disclosure_prohibitions::id.eq(prohibition_id)),
            )
            .set((
                disclosure_prohibitions::revoked_by.eq(&principal.account_id),
                disclosure_prohibitions::revoked_at.eq(at),
            ))
            .execute(conn)?;
            queued = crate::outbox::enqueue_if_provider(
                conn,
                register,
                &reached,
                registrar_id,
                "prohibition_revocation",
                prohibition_id,
                serde_json::json!({"scope": row.2, "target": row.3, "revoked_at": format_time(at)}),
                at,
            )?;
            Ok((
                row.0,
                row.1,
                row.2,
                row.3,
                row.4,
                row.5,
                row.6,
                Some(principal.account_id.clone()),
                Some(at),
            ))
        })?;
        register.outbox_queued(queued);
        Ok((
            prohibition_of(row),
            vec![use_of(&reached, "disclosure_prohibition", prohibition_id)],
        ))
    })
}

/// The state the decision reads for one client of the organiser `registrar_id`.
fn load_state(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
    today: time::Date,
) -> Result<DisclosureState, ConsentError> {
    let consent = current_consent(&load_consents(conn, registrar_id, client_id)?);
    let prohibitions = load_prohibitions(conn, registrar_id, client_id)?
        .into_iter()
        .filter(|r| r.8.is_none())
        .filter_map(|r| {
            ProhibitionScope::from_parts(&r.2, r.3.as_deref()).map(|scope| ProhibitionInForce { id: r.0, scope })
        })
        .collect();
    let rights = crate::rights::rights_of_client(conn, registrar_id, client_id)?;
    Ok(DisclosureState {
        consent,
        prohibitions,
        rights,
        today,
    })
}

/// CO-4: decides, logs the read of the consent state and, for an allowed disclosure, the
/// disclosure-log entry with its basis (AU-2).
pub fn decide_disclosure(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    body: DecisionRequest,
) -> Result<DecisionResponse, ConsentError> {
    for (field, value) in [
        ("client_id", &body.client_id),
        ("registrar_id", &body.registrar_id),
        ("recipient.kind", &body.recipient.kind),
        ("recipient.id", &body.recipient.id),
    ] {
        if value.trim().is_empty() {
            return Err(validation(field, "is required"));
        }
    }
    let at = at_primitive(request.now);
    let today = crate::helsinki_today(request.now);
    let reached = reach(conn, register, request, registrar_id, &body.client_id)?;
    let context = reached.decision.context(&request.audit);
    register.clients.audit.audited_read(conn, |conn| {
        let state = load_state(conn, registrar_id, &body.client_id, today)?;
        // A stored document brings its own case and service task, so a prohibition of its
        // service task matches even when the request names only the document.
        let document: Option<(String, String)> = match body.document_id.as_deref() {
            Some(document_id) => case_documents::table
                .filter(case_documents::registrar_id.eq(registrar_id))
                .filter(case_documents::id.eq(document_id))
                .filter(case_documents::client_id.eq(&body.client_id))
                .select((case_documents::case_oid, case_documents::service_task))
                .first(conn)
                .optional()?,
            None => None,
        };
        let (document_case, document_task) = document.unzip();
        let data = DataItem {
            registrar_id: body.registrar_id.clone(),
            service_task: document_task.or(body.service_task.clone()),
            document_id: body.document_id.clone(),
            case_oid: document_case.or(body.case_oid.clone()),
        };
        let recipient = Recipient {
            kind: body.recipient.kind.clone(),
            id: body.recipient.id.clone(),
        };
        let decision = decide(&state, &data, &recipient);
        let mut entries = vec![context.usage_entry(use_of(&reached, "disclosure_consent", &body.client_id), at)];
        if decision.allow {
            entries.push(NewEntry::Disclosure(DisclosureEntry {
                occurred_at: at,
                registrar_id: registrar_id.to_owned(),
                subject_index: reached.subject,
                description: match &data.document_id {
                    Some(d) => format!("document {d}"),
                    None => match &data.service_task {
                        Some(t) => format!("service task {t} of registrar {}", data.registrar_id),
                        None => format!("social-care data of registrar {}", data.registrar_id),
                    },
                },
                discloser_kind: context.actor_kind,
                discloser_id: context.actor_id.clone(),
                recipient_kind: recipient.kind.clone(),
                recipient_id: recipient.id.clone(),
                recipient_name: None,
                purpose: context.purpose.clone(),
                legal_basis: decision.basis.for_log(),
                request_id: context.request_id.clone(),
            }));
        }
        let (basis_kind, prohibition_id, right_id) = match &decision.basis {
            Basis::Consent(_) => ("consent", None, None),
            Basis::Prohibition { id, .. } => ("prohibition", Some(id.clone()), None),
            Basis::OrganiserException { right_id, .. } => ("organiser_exception", None, Some(right_id.clone())),
        };
        let response = DecisionResponse {
            decision: if decision.allow { "allow" } else { "deny" }.to_owned(),
            basis: decision.basis.for_log(),
            basis_kind: basis_kind.to_owned(),
            consent_state: state.consent,
            prohibition_id,
            registry_use_right_id: right_id,
        };
        Ok::<_, ConsentError>((response, entries))
    })
}
