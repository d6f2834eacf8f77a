//! Call-recording audio over HTTP (CA-3, CA-8).

use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(_config: &mut ServiceConfig) {}
