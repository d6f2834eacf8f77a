//! The registry notifications addressed to the caller's organisation (RU-1, RU-4, RU-5).

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::principal::Authenticated;
use crate::problem::ApiError;
use crate::{AppState, RunBlocking};

#[derive(Serialize, ToSchema)]
pub struct NotificationList {
    pub items: Vec<rekisteri_consent::RegistryNotification>,
}

/// The notifications addressed to the caller's organisation (RU-1, RU-4, RU-5): a provider's
/// rights opened, closing soon (the configured working days before), their closing date
/// changed or reopened; a registrar's suspected incidents. Oldest first.
#[utoipa::path(
    tag = "consent",
    responses(
        (status = 200, body = NotificationList),
    )
)]
#[get("/v1/registry-notifications")]
pub(super) async fn list_notifications(
    state: web::Data<AppState>,
    principal: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let items = state
        .run(move |conn, _| Ok(rekisteri_consent::list_notifications(conn, &principal.0)?))
        .await?;
    Ok(HttpResponse::Ok().json(NotificationList { items }))
}
