//! The one middleware every request passes: request ids (PL-4), errors as problem documents
//! whatever produced them (PL-3), and the access log line.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};

use crate::fallback::Access;
use crate::problem::{PROBLEM_CONTENT_TYPE, Problem, ProblemType};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served: the caller's `X-Request-Id` when it is a sane token,
/// otherwise a new UUID. Log lines and audit entries carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl actix_web::FromRequest for RequestId {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, actix_web::Error>>;

    /// The id the request middleware gave the request (a fresh one if it ran outside it).
    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        use actix_web::HttpMessage;
        let id = req
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(uuid::Uuid::new_v4().to_string()));
        std::future::ready(Ok(id))
    }
}

tokio::task_local! {
    /// The id of the request this task serves, for log lines written far from the request
    /// (an internal error's cause is logged where the error becomes a response).
    static CURRENT_REQUEST_ID: RequestId;
}

impl RequestId {
    /// The id of the request the current task serves, if it serves one.
    pub fn current() -> Option<Self> {
        CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
    }

    fn from_service_request(req: &ServiceRequest) -> Self {
        let given = req
            .headers()
            .get(&REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_sane_request_id(v));
        match given {
            Some(id) => Self(id.to_owned()),
            None => Self(uuid::Uuid::new_v4().to_string()),
        }
    }
}

/// Only short tokens of URL-safe characters are taken from callers, so a request id can never
/// smuggle personal data or control characters into logs.
fn is_sane_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Whether an error response may pass as it is: a problem document, or an OAuth 2.0 error body
/// (RFC 6749 §5.2), which token clients expect as `application/json` and which only the token
/// endpoint produces.
fn is_problem(response: &HttpResponse<BoxBody>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_CONTENT_TYPE))
        || response
            .extensions()
            .get::<crate::api_clients::OAuthErrorBody>()
            .is_some()
}

/// Replaces an error response that is not a problem document (actix's own plain-text errors)
/// with one, keeping headers such as `Allow`.
fn ensure_problem(response: HttpResponse<BoxBody>) -> HttpResponse<BoxBody> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(&response) {
        return response;
    }
    let mut problem = Problem::new(ProblemType::for_status(status));
    problem.status = status.as_u16();
    if status == StatusCode::BAD_REQUEST {
        problem.detail = Some("The request could not be understood.".to_owned());
    }
    let mut replacement = problem.response();
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replacement.headers_mut().append(name.clone(), value.clone());
        }
    }
    replacement
}

/// An error that escaped the router (from a middleware), rendered as a problem with the
/// request id it would otherwise lose.
#[derive(Debug)]
struct EscapedError {
    status: StatusCode,
    request_id: String,
}

impl std::fmt::Display for EscapedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status)
    }
}

impl ResponseError for EscapedError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = Problem::new(ProblemType::for_status(self.status)).response();
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        // The path is gone by now; a problem document is API output, so it gets the API's rule.
        add_security_headers(response.headers_mut(), "/v1/");
        response
    }
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = RequestId::from_service_request(&req);
    req.extensions_mut().insert(request_id.clone());
    CURRENT_REQUEST_ID
        .scope(request_id.clone(), serve(req, next, request_id))
        .await
}

async fn serve(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    request_id: RequestId,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let access = req
        .app_data::<actix_web::web::Data<crate::fallback::RouteTable>>()
        .map_or(Access::NoRoute, |table| table.access(req.method(), req.path()));
    if access != Access::NoRoute
        && let Some(accept) = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok())
        && let Some(table) = req.app_data::<actix_web::web::Data<crate::fallback::RouteTable>>()
        && !table.accepts(req.method(), req.path(), accept)
    {
        let error = crate::ApiError::problem(
            ProblemType::NotAcceptable,
            "No representation of this resource matches Accept; see the operation's responses in the OpenAPI document.",
        );
        return Ok(finish(
            req.into_response(error.error_response()),
            &request_id,
            &method,
            started,
        ));
    }
    if access == Access::NoRoute
        && let Some(table) = req.app_data::<actix_web::web::Data<crate::fallback::RouteTable>>()
        && table.wrong_method(req.method(), req.path())
    {
        let response = match crate::fallback::method_not_allowed(req.request(), table) {
            Ok(response) => response,
            Err(error) => error.error_response(),
        };
        return Ok(finish(req.into_response(response), &request_id, &method, started));
    }
    if access == Access::Authenticated
        && !crate::metrics::is_scrape(&req)
        && let Err(error) = authorise(&req).await
    {
        let mut response = req.into_response(error.error_response());
        if response.status() == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        return Ok(finish(response, &request_id, &method, started));
    }
    let response = match next.call(req).await {
        Ok(response) => response.map_into_boxed_body(),
        Err(error) => {
            let status = error.as_response_error().status_code();
            log::warn!(target: "rekisteri::access", "{} {method} error before routing: {status}", request_id.0);
            return Err(EscapedError {
                status,
                request_id: request_id.0,
            }
            .into());
        }
    };
    Ok(finish(response, &request_id, &method, started))
}

/// Who the caller is, and that it has any standing in the registrar the path names (AX-4).
async fn authorise(req: &ServiceRequest) -> Result<(), crate::ApiError> {
    crate::principal::authenticate(req).await?;
    crate::principal::require_standing(req).await
}

/// The policy of the documentation page. The vendored Swagger UI page loads its scripts from
/// files (no inline script, which `pl_3_responses_carry_security_headers` checks), but the UI
/// sets inline styles and shows `data:` images; it fetches only `/openapi.json`.
const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers every response carries. API responses hold tokens or personal data, so no cache
/// (a browser's, a proxy's) may keep them; health, the OpenAPI document and the docs page may
/// be cached. The docs page is the one HTML page, so only it needs a content security policy;
/// `frame-ancestors 'none'` keeps it out of other sites' frames.
fn add_security_headers(headers: &mut header::HeaderMap, path: &str) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if path.starts_with("/v1/") {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if path == "/docs" || path.starts_with("/docs/") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CONTENT_SECURITY_POLICY),
        );
    }
}

/// Every response's last step: a problem document for every error, the request id, the
/// security headers, the log line.
fn finish(
    response: ServiceResponse<BoxBody>,
    request_id: &RequestId,
    method: &actix_web::http::Method,
    started: Instant,
) -> ServiceResponse<BoxBody> {
    let (request, body_response) = response.into_parts();
    let mut body_response = ensure_problem(body_response);
    // A token refused in the handler's call (a principal confirmed there, see
    // `principal::Authenticating`) challenges as the middleware's refusals do.
    if body_response.status() == StatusCode::UNAUTHORIZED
        && !body_response.headers().contains_key(header::WWW_AUTHENTICATE)
    {
        body_response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Ok(value) = HeaderValue::from_str(&request_id.0) {
        body_response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    add_security_headers(body_response.headers_mut(), request.path());
    // The route pattern, never the raw path: a path could carry something a client should not
    // have put there, and the log must not keep it.
    let route = request.match_pattern().unwrap_or_else(|| "(unmatched)".to_owned());
    let status = body_response.status();
    let elapsed = started.elapsed();
    crate::metrics::observe_request(&route, method, status.as_u16(), elapsed.as_secs_f64());
    let duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    log::info!(
        target: "rekisteri::access",
        request_id = request_id.0.as_str(),
        method = method.as_str(),
        route = route.as_str(),
        status = status.as_u16(),
        duration_us = duration_us;
        "{} {method} {route} {} {duration_us}us",
        request_id.0,
        status.as_u16(),
    );
    ServiceResponse::new(request, body_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_4_only_sane_request_ids_are_taken_from_callers() {
        assert!(is_sane_request_id("3f1c2a9e-1b2c-4d5e-8f90-123456789abc"));
        assert!(is_sane_request_id("apotti:batch-17.3"));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id("131052 308T"));
        assert!(!is_sane_request_id("a\nb"));
        assert!(!is_sane_request_id(&"x".repeat(129)));
    }
}
