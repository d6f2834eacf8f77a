//! Case documents stored under registry use rights and the providers' local copies (RU-2,
//! RU-7, RU-8).

use actix_web::{HttpResponse, get, post, web};
use rekisteri_consent::{CaseDocument, NewDocument};
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::Json;
use crate::idempotency::disclosing;
use crate::principal::{Authenticated, Authenticating};
use crate::problem::{ApiError, Problem};
use crate::request::{ClientAccess, registrar_call};
use crate::{AppState, RunBlocking};

#[derive(Serialize, ToSchema)]
pub struct DocumentList {
    pub items: Vec<CaseDocument>,
}

/// The case's documents (RU-2, RU-8): for the provider only while its right is open (403 and a
/// security event otherwise), for the organiser's staff who reach the client. Each document
/// is a logged use.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("case_oid" = String, Path, description = "Case OID")),
    responses(
        (status = 200, body = DocumentList),
    )
)]
#[get("/v1/registrars/{rid}/cases/{case_oid}/documents")]
pub(super) async fn list_documents(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, case_oid) = path.into_inner();
    let items = registrar_call(state, principal, access, rid)
        .run("case documents: read", move |conn, state, request, rid| {
            rekisteri_consent::list_documents(conn, &state.consent(), request, rid, &case_oid)
        })
        .await?;
    Ok(HttpResponse::Ok().json(DocumentList { items }))
}

/// A provider stores a document into the organiser's register under the case (RU-2, RU-8):
/// Sosmeta `document_type` and `structure_id`, title, time, signature, content (encrypted at
/// rest). Without an open right of the caller's organisation for the case it is refused (403)
/// and a security event (RU-3, ArSa05).
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("case_oid" = String, Path, description = "Case OID")),
    request_body = NewDocument,
    responses(
        (status = 201, body = CaseDocument),
        (status = 403, description = "No open registry use right covers the case", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/cases/{case_oid}/documents")]
pub(super) async fn store_document(
    state: web::Data<AppState>,
    principal: Authenticating,
    access: ClientAccess,
    path: web::Path<(String, String)>,
    body: Json<NewDocument>,
) -> Result<HttpResponse, ApiError> {
    let (rid, case_oid) = path.into_inner();
    let body = body.into_inner();
    let (created, disclosure) = registrar_call(state, principal, access, rid)
        .create("case documents: store", move |conn, state, request, rid| {
            rekisteri_consent::store_document(conn, &state.consent(), request, rid, &case_oid, body)
        })
        .await?;
    Ok(disclosing(HttpResponse::Created().json(created), disclosure))
}

/// The provider confirms that its local copy of the document is destroyed (RU-7); the
/// closing job reports the copies marked for destruction and not yet confirmed.
#[utoipa::path(
    tag = "consent",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("case_oid" = String, Path, description = "Case OID"),
        ("id" = String, Path, description = "Document id")),
    responses(
        (status = 204, description = "Confirmed"),
        (status = 422, description = "The copy is not marked for destruction", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/registrars/{rid}/cases/{case_oid}/documents/{id}/local-copy-destroyed")]
pub(super) async fn confirm_local_copy(
    state: web::Data<AppState>,
    principal: Authenticated,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (rid, case_oid, id) = path.into_inner();
    state
        .run(move |conn, state| {
            Ok(rekisteri_consent::confirm_local_copy_destroyed(
                conn,
                &principal.0,
                &rid,
                &case_oid,
                &id,
                state.clock.now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
