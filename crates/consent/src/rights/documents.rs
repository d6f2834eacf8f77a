//! The documents providers store into the organiser's register under a case (RU-2, RU-3, RU-8)
//! and the providers' local copies of them (RU-7).

use diesel::prelude::*;
use rekisteri_accounts::{Permission, Principal};
use rekisteri_audit::{AccessBasis, ActorKind, DataUse, Outcome};
use rekisteri_clients::Request;
use rekisteri_core::Refusal;
use rekisteri_db::schema::{case_documents, kanta_settings, registry_use_rights};
use rekisteri_db::{DbConnection, write_transaction};
use serde::{Deserialize, Serialize};
use time::{Date, PrimitiveDateTime};
use utoipa::ToSchema;

use super::common::{RightRow, open, reach_to_read, right_columns, seal, security_event};
use crate::{ConsentError, ConsentRegister, at_primitive, format_time, helsinki_today, new_id, rule, validation};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDocument {
    #[schema(
        min_length = 1,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub service_task: String,
    /// Sosmeta document type (asiakirjatyyppi) code.
    #[schema(
        min_length = 1,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub document_type: String,
    /// Sosmeta structure id (rakenne).
    #[schema(
        min_length = 1,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub structure_id: String,
    #[schema(
        min_length = 1,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub title: String,
    /// RFC 3339; the moment of storing when absent.
    #[schema(format = DateTime)]
    pub document_time: Option<String>,
    /// The professional's electronic signature, where the type requires one.
    pub signature: Option<String>,
    /// `application/json`, or the media type of a file sent as base64 in `content`.
    #[schema(
        min_length = 1,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub content_type: String,
    pub content: serde_json::Value,
    /// The author's service unit OID; the right's unit when absent.
    pub author_unit_oid: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseDocument {
    pub id: String,
    pub registrar_id: String,
    pub case_oid: String,
    pub client_id: String,
    pub service_task: String,
    pub author_id: String,
    pub author_unit_oid: String,
    pub provider_id: String,
    pub document_type: String,
    pub structure_id: String,
    pub title: String,
    pub document_time: String,
    pub signature: Option<String>,
    pub content_type: String,
    pub content: serde_json::Value,
    /// `kept`, `marked_for_destruction` or `destroyed` (RU-7).
    pub local_copy: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// Where the provider's local copy of a document stands (RU-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LocalCopy {
    Kept,
    MarkedForDestruction,
    Destroyed,
}

impl LocalCopy {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Kept => "kept",
            Self::MarkedForDestruction => "marked_for_destruction",
            Self::Destroyed => "destroyed",
        }
    }
}

/// Marks the provider's local copies of the right's documents for destruction (RU-7).
pub(super) fn mark_local_copies(
    conn: &mut DbConnection,
    registrar_id: &str,
    right_id: &str,
    at: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        case_documents::table
            .filter(case_documents::registrar_id.eq(registrar_id))
            .filter(case_documents::right_id.eq(right_id))
            .filter(case_documents::local_copy.eq(LocalCopy::Kept.as_str())),
    )
    .set((
        case_documents::local_copy.eq(LocalCopy::MarkedForDestruction.as_str()),
        case_documents::local_copy_marked_at.eq(Some(at)),
    ))
    .execute(conn)
}

/// The right that lets the caller's organisation use case `case_oid` today, if any.
fn covering_right(
    conn: &mut DbConnection,
    registrar_id: &str,
    case_oid: &str,
    provider_id: &str,
    today: Date,
) -> Result<Option<RightRow>, ConsentError> {
    let row: Option<RightRow> = registry_use_rights::table
        .filter(registry_use_rights::registrar_id.eq(registrar_id))
        .filter(registry_use_rights::case_oid.eq(case_oid))
        .filter(registry_use_rights::provider_id.eq(provider_id))
        .select(right_columns!())
        .first(conn)
        .optional()?;
    Ok(row.filter(|r| r.is_usable(today)))
}

/// RU-2, RU-3, RU-8: a provider stores a document into the organiser's register under a case.
/// Without a right usable today for that case the store is refused and is a security event.
pub fn store_document(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    case_oid: &str,
    new: NewDocument,
) -> Result<CaseDocument, ConsentError> {
    let principal = request.principal;
    if !principal.can(Permission::StoreCaseDocuments) {
        return Err(ConsentError::Refused(Refusal::Forbidden(
            "the caller's roles do not grant store_case_documents".into(),
        )));
    }
    for (field, value) in [
        ("service_task", &new.service_task),
        ("document_type", &new.document_type),
        ("structure_id", &new.structure_id),
        ("title", &new.title),
        ("content_type", &new.content_type),
    ] {
        if value.trim().is_empty() || value.chars().any(char::is_control) {
            return Err(validation(field, "must be non-blank, without control characters"));
        }
    }
    let document_time = match new.document_time.as_deref() {
        None => at_primitive(request.now),
        Some(text) => at_primitive(
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| validation("document_time", "must be an RFC 3339 date-time"))?,
        ),
    };
    let today = helsinki_today(request.now);
    let Some(right) = covering_right(conn, registrar_id, case_oid, &principal.organisation_id, today)? else {
        security_event(
            register,
            request,
            registrar_id,
            "cross_register_store_refused",
            serde_json::json!({"case_oid": case_oid, "provider_id": principal.organisation_id}),
        )?;
        return Err(ConsentError::Refused(Refusal::Forbidden(
            "no open registry use right of the caller's organisation covers this case (ArSa05)".into(),
        )));
    };
    let signed_types: Option<String> = kanta_settings::table
        .filter(kanta_settings::registrar_id.eq(registrar_id))
        .select(kanta_settings::signed_document_types)
        .first(conn)
        .optional()?;
    let signed_types: Vec<String> = signed_types
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    let signature = new.signature.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if signature.is_none() && signed_types.iter().any(|t| t == new.document_type.trim()) {
        return Err(rule(
            "signature",
            "this document type requires the professional's electronic signature",
        ));
    }
    let at = at_primitive(request.now);
    let id = new_id();
    let content = new.content.to_string();
    let sealed_content = seal(register, "case_documents", "content", &id, &content)?;
    let sealed_title = seal(register, "case_documents", "title", &id, new.title.trim())?;
    let sealed_signature = new
        .signature
        .as_deref()
        .map(|s| seal(register, "case_documents", "signature", &id, s))
        .transpose()?;
    let author_unit = new
        .author_unit_oid
        .clone()
        .unwrap_or_else(|| right.provider_unit_oid.clone());
    let subject = rekisteri_clients::subject_of(conn, registrar_id, "client", &right.client_id)?;
    let context = rekisteri_audit::AuditContext {
        access_basis: AccessBasis::RegistryUseRight,
        actor_kind: ActorKind::ProviderUser,
        ..request.audit.clone()
    };
    register.clients.audit.read_personal_data(conn, &context, at, |conn| {
        write_transaction(conn, |conn| {
            diesel::insert_into(case_documents::table)
                .values((
                    case_documents::registrar_id.eq(registrar_id),
                    case_documents::id.eq(&id),
                    case_documents::case_oid.eq(case_oid),
                    case_documents::right_id.eq(&right.id),
                    case_documents::client_id.eq(&right.client_id),
                    case_documents::service_task.eq(new.service_task.trim()),
                    case_documents::author_id.eq(&principal.account_id),
                    case_documents::author_unit_oid.eq(&author_unit),
                    case_documents::provider_id.eq(&principal.organisation_id),
                    case_documents::document_type.eq(new.document_type.trim()),
                    case_documents::structure_id.eq(new.structure_id.trim()),
                    case_documents::title.eq(&sealed_title),
                    case_documents::document_time.eq(document_time),
                    case_documents::signature.eq(&sealed_signature),
                    case_documents::content_type.eq(new.content_type.trim()),
                    case_documents::content.eq(&sealed_content),
                    case_documents::local_copy.eq(LocalCopy::Kept.as_str()),
                    case_documents::created_at.eq(at),
                ))
                .execute(conn)
        })?;
        let document = CaseDocument {
            id: id.clone(),
            registrar_id: registrar_id.to_owned(),
            case_oid: case_oid.to_owned(),
            client_id: right.client_id.clone(),
            service_task: new.service_task.trim().to_owned(),
            author_id: principal.account_id.clone(),
            author_unit_oid: author_unit.clone(),
            provider_id: principal.organisation_id.clone(),
            document_type: new.document_type.trim().to_owned(),
            structure_id: new.structure_id.trim().to_owned(),
            title: new.title.trim().to_owned(),
            document_time: format_time(document_time),
            signature: new.signature.clone(),
            content_type: new.content_type.trim().to_owned(),
            content: new.content.clone(),
            local_copy: LocalCopy::Kept.as_str().into(),
            created_at: format_time(at),
        };
        Ok((
            document,
            vec![DataUse {
                subject_index: subject,
                data_kind: "document".into(),
                data_id: Some(id.clone()),
                outcome: Outcome::Used,
            }],
        ))
    })
}

/// A stored document, sealed fields still sealed.
#[derive(Debug, Queryable)]
struct DocumentRow {
    id: String,
    client_id: String,
    service_task: String,
    author_id: String,
    author_unit_oid: String,
    provider_id: String,
    document_type: String,
    structure_id: String,
    content_type: String,
    title: Vec<u8>,
    document_time: PrimitiveDateTime,
    signature: Option<Vec<u8>>,
    local_copy: String,
    content: Vec<u8>,
    case_oid: String,
    created_at: PrimitiveDateTime,
}

/// The documents stored under case `case_oid`, oldest first, opened. Only inside a logged read.
pub(crate) fn case_documents_of(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    registrar_id: &str,
    case_oid: &str,
) -> Result<Vec<CaseDocument>, ConsentError> {
    let rows: Vec<DocumentRow> = case_documents::table
        .filter(case_documents::registrar_id.eq(registrar_id))
        .filter(case_documents::case_oid.eq(case_oid))
        .order((case_documents::created_at, case_documents::id))
        .select((
            case_documents::id,
            case_documents::client_id,
            case_documents::service_task,
            case_documents::author_id,
            case_documents::author_unit_oid,
            case_documents::provider_id,
            case_documents::document_type,
            case_documents::structure_id,
            case_documents::content_type,
            case_documents::title,
            case_documents::document_time,
            case_documents::signature,
            case_documents::local_copy,
            case_documents::content,
            case_documents::case_oid,
            case_documents::created_at,
        ))
        .load(conn)?;
    let mut documents = Vec::with_capacity(rows.len());
    for r in rows {
        let content = open(register, "case_documents", "content", &r.id, &r.content)?;
        documents.push(CaseDocument {
            title: open(register, "case_documents", "title", &r.id, &r.title)?,
            signature: r
                .signature
                .as_deref()
                .map(|s| open(register, "case_documents", "signature", &r.id, s))
                .transpose()?,
            content: serde_json::from_str(&content).map_err(|e| ConsentError::Crypto(e.to_string()))?,
            id: r.id,
            registrar_id: registrar_id.to_owned(),
            case_oid: r.case_oid,
            client_id: r.client_id,
            service_task: r.service_task,
            author_id: r.author_id,
            author_unit_oid: r.author_unit_oid,
            provider_id: r.provider_id,
            document_type: r.document_type,
            structure_id: r.structure_id,
            document_time: format_time(r.document_time),
            content_type: r.content_type,
            local_copy: r.local_copy,
            created_at: format_time(r.created_at),
        });
    }
    Ok(documents)
}

/// RU-2: the case's documents: for the provider while its right is open (refused otherwise,
/// like a store), for the organiser's staff who reach the client. Each document is a logged use.
pub fn list_documents(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    case_oid: &str,
) -> Result<Vec<CaseDocument>, ConsentError> {
    let principal = request.principal;
    let today = helsinki_today(request.now);
    let (client_id, context) = if principal.organisation_id == registrar_id {
        let client_id: Option<String> = registry_use_rights::table
            .filter(registry_use_rights::registrar_id.eq(registrar_id))
            .filter(registry_use_rights::case_oid.eq(case_oid))
            .select(registry_use_rights::client_id)
            .first(conn)
            .optional()?;
        let Some(client_id) = client_id else {
            return Err(ConsentError::Refused(Refusal::NotFound));
        };
        let reached = reach_to_read(conn, register, request, registrar_id, &client_id)?;
        (client_id, reached.decision.context(&request.audit))
    } else {
        if !principal.can(Permission::StoreCaseDocuments) {
            return Err(ConsentError::Refused(Refusal::NotFound));
        }
        let Some(right) = covering_right(conn, registrar_id, case_oid, &principal.organisation_id, today)? else {
            security_event(
                register,
                request,
                registrar_id,
                "case_read_refused",
                serde_json::json!({"case_oid": case_oid, "provider_id": principal.organisation_id}),
            )?;
            return Err(ConsentError::Refused(Refusal::Forbidden(
                "no open registry use right of the caller's organisation covers this case".into(),
            )));
        };
        (
            right.client_id,
            rekisteri_audit::AuditContext {
                access_basis: AccessBasis::RegistryUseRight,
                actor_kind: ActorKind::ProviderUser,
                ..request.audit.clone()
            },
        )
    };
    let subject = rekisteri_clients::subject_of(conn, registrar_id, "client", &client_id)?;
    register
        .clients
        .audit
        .read_personal_data(conn, &context, at_primitive(request.now), |conn| {
            let documents = case_documents_of(conn, register, registrar_id, case_oid)?;
            let mut uses: Vec<DataUse> = documents
                .iter()
                .map(|d| DataUse {
                    subject_index: subject,
                    data_kind: "document".into(),
                    data_id: Some(d.id.clone()),
                    outcome: Outcome::Used,
                })
                .collect();
            if uses.is_empty() {
                uses.push(DataUse {
                    subject_index: subject,
                    data_kind: "documents".into(),
                    data_id: Some(case_oid.to_owned()),
                    outcome: Outcome::NotFound,
                });
            }
            Ok((documents, uses))
        })
}

/// RU-7: the provider confirms that its local copy of a document is destroyed; possible (and
/// expected) after the right closed. Only the document's provider; a copy not marked is 422.
pub fn confirm_local_copy_destroyed(
    conn: &mut DbConnection,
    principal: &Principal,
    registrar_id: &str,
    case_oid: &str,
    document_id: &str,
    now: time::OffsetDateTime,
) -> Result<(), ConsentError> {
    if !principal.can(Permission::StoreCaseDocuments) {
        return Err(ConsentError::Refused(Refusal::NotFound));
    }
    let at = at_primitive(now);
    write_transaction(conn, |conn| {
        let state: String = case_documents::table
            .filter(case_documents::registrar_id.eq(registrar_id))
            .filter(case_documents::case_oid.eq(case_oid))
            .filter(case_documents::id.eq(document_id))
            .filter(case_documents::provider_id.eq(&principal.organisation_id))
            .select(case_documents::local_copy)
            .first(conn)
            .optional()?
            .ok_or(ConsentError::Refused(Refusal::NotFound))?;
        if state != LocalCopy::MarkedForDestruction.as_str() {
            return Err(rule(
                "local_copy",
                format!("the local copy is {state}, not marked for destruction"),
            ));
        }
        diesel::update(
            case_documents::table
                .filter(case_documents::registrar_id.eq(registrar_id))
                .filter(case_documents::id.eq(document_id)),
        )
        .set((
            case_documents::local_copy.eq(LocalCopy::Destroyed.as_str()),
            case_documents::local_copy_destroyed_at.eq(Some(at)),
        ))
        .execute(conn)?;
        Ok::<_, ConsentError>(())
    })
}
