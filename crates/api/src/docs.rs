//! The docs page (PL-1) and the document it shows: the Swagger UI at `/docs/`, offline, and the
//! OpenAPI document at `/openapi.json`.
//!
//! The UI's files are the ones `index.html` loads, taken by `build.rs` from the Swagger UI
//! release `utoipa-swagger-ui-vendored` packages, and embedded: served from the binary's
//! read-only data without a copy. `swagger-initializer.js` is ours (`docs/`). PL-16: the
//! release's source maps and unused bundles are left out of the binary, and nothing is built
//! for these routes until they are asked for.

use std::sync::OnceLock;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};

use crate::problem::ApiError;

/// A file of the Swagger UI release, as `build.rs` wrote it.
macro_rules! release_file {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui/", $name))
    };
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const PNG: &str = "image/png";

/// The docs page's files by their path under `/docs/`, with their media types.
fn file(path: &str) -> Option<(&'static str, &'static [u8])> {
    Some(match path {
        "" | "index.html" => (HTML, release_file!("index.html")),
        "index.css" => (CSS, release_file!("index.css")),
        "swagger-ui.css" => (CSS, release_file!("swagger-ui.css")),
        "swagger-ui-bundle.js" => (JAVASCRIPT, release_file!("swagger-ui-bundle.js")),
        "swagger-ui-standalone-preset.js" => (JAVASCRIPT, release_file!("swagger-ui-standalone-preset.js")),
        "swagger-initializer.js" => (JAVASCRIPT, include_bytes!("docs/swagger-initializer.js")),
        "favicon-32x32.png" => (PNG, release_file!("favicon-32x32.png")),
        "favicon-16x16.png" => (PNG, release_file!("favicon-16x16.png")),
        _ => return None,
    })
}

/// `GET /docs/{file}`.
pub(crate) async fn serve_file(path: web::Path<String>) -> HttpResponse {
    match file(&path) {
        Some((content_type, bytes)) => HttpResponse::Ok().content_type(content_type).body(bytes),
        None => HttpResponse::NotFound().finish(),
    }
}

/// `GET /docs`: the page's files are relative to `/docs/`.
pub(crate) async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/docs/"))
        .finish()
}

/// `GET /openapi.json`: the document, built and serialised on the first request and kept as
/// bytes, not as the document (PL-16: a server nobody reads the document of keeps none of it).
pub(crate) async fn openapi_json() -> Result<HttpResponse, ApiError> {
    static JSON: OnceLock<web::Bytes> = OnceLock::new();
    let json = match JSON.get() {
        Some(json) => json.clone(),
        None => {
            let json = web::Bytes::from(serde_json::to_vec(&crate::openapi()).map_err(ApiError::internal)?);
            JSON.get_or_init(|| json).clone()
        }
    };
    Ok(HttpResponse::Ok().content_type(ContentType::json()).body(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_served() {
        let (_, page) = file("").expect("the page");
        let page = std::str::from_utf8(page).expect("UTF-8");
        for reference in page
            .split(['"', '\''])
            .filter(|part| part.starts_with("./") || part.ends_with(".css"))
        {
            let name = reference.trim_start_matches("./");
            assert!(file(name).is_some(), "{name}, which the page loads, is not served");
        }
    }
}
