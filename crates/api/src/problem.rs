//! Errors as `application/problem+json` (RFC 9457, PL-3).
//!
//! The client gets a stable `type`, a title, the status and the fields at fault; the log gets
//! the cause. Neither ever gets personal data, SQL or a stack trace.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The stable problem types. Each is a relative URI reference (RFC 9457 §3.1.1) documented in
/// `docs/errors.md`; integrators branch on `type`, never on `title` or `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    Validation,
    MalformedBody,
    UnsupportedMediaType,
    PayloadTooLarge,
    NotFound,
    MethodNotAllowed,
    NotAcceptable,
    Unauthenticated,
    Forbidden,
    /// A password session asked for client data of a registrar that requires strong
    /// authentication (AX-2).
    StrongAuthenticationRequired,
    Conflict,
    /// Processing of the client is restricted (CL-12): only storage until it is lifted (409).
    ProcessingRestricted,
    PreconditionFailed,
    /// A change without `If-Match` (428).
    PreconditionRequired,
    BusinessRule,
    /// An `Idempotency-Key` sent again with another request (422, PL-2).
    IdempotencyKeyReused,
    /// An `Idempotency-Key` whose first request is still running (409, PL-2).
    IdempotencyKeyInUse,
    TooManyRequests,
    NotReady,
    /// The password-hashing pool is full (503 with `Retry-After`).
    Busy,
    /// The database does not answer in time, or the audit log cannot be written (a full or
    /// read-only disk): 503 with `Retry-After`, never the data.
    ServiceUnavailable,
    /// A requested byte range lies outside the recording (416).
    RangeNotSatisfiable,
    /// Stored audio failed its integrity check (CA-3): a fault of storage, never the caller's.
    IntegrityFailure,
    Internal,
}

impl ProblemType {
    pub fn uri(self) -> &'static str {
        match self {
            Self::Validation => "/problems/validation",
            Self::MalformedBody => "/problems/malformed-body",
            Self::UnsupportedMediaType => "/problems/unsupported-media-type",
            Self::PayloadTooLarge => "/problems/payload-too-large",
            Self::NotFound => "/problems/not-found",
            Self::MethodNotAllowed => "/problems/method-not-allowed",
            Self::NotAcceptable => "/problems/not-acceptable",
            Self::Unauthenticated => "/problems/unauthenticated",
            Self::Forbidden => "/problems/forbidden",
            Self::StrongAuthenticationRequired => "/problems/strong-authentication-required",
            Self::Conflict => "/problems/conflict",
            Self::ProcessingRestricted => "/problems/processing-restricted",
            Self::PreconditionFailed => "/problems/precondition-failed",
            Self::PreconditionRequired => "/problems/precondition-required",
            Self::BusinessRule => "/problems/business-rule",
            Self::IdempotencyKeyReused => "/problems/idempotency-key-reused",
            Self::IdempotencyKeyInUse => "/problems/idempotency-key-in-use",
            Self::TooManyRequests => "/problems/too-many-requests",
            Self::NotReady => "/problems/not-ready",
            Self::Busy => "/problems/busy",
            Self::ServiceUnavailable => "/problems/service-unavailable",
            Self::RangeNotSatisfiable => "/problems/range-not-satisfiable",
            Self::IntegrityFailure => "/problems/integrity-failure",
            Self::Internal => "/problems/internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Validation | Self::MalformedBody => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::StrongAuthenticationRequired => StatusCode::FORBIDDEN,
            Self::Conflict | Self::ProcessingRestricted => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::BusinessRule | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::IdempotencyKeyInUse => StatusCode::CONFLICT,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::NotReady | Self::Busy | Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::IntegrityFailure | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Validation => "The request has invalid fields",
            Self::MalformedBody => "The request body is not valid JSON",
            Self::UnsupportedMediaType => "Unsupported content type",
            Self::PayloadTooLarge => "The request body is too large",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::NotAcceptable => "Not acceptable",
            Self::Unauthenticated => "Authentication required",
            Self::Forbidden => "Forbidden",
            Self::StrongAuthenticationRequired => "Strong authentication required",
            Self::Conflict => "Conflict",
            Self::ProcessingRestricted => "Processing restricted",
            Self::PreconditionFailed => "Precondition failed",
            Self::PreconditionRequired => "Precondition required",
            Self::BusinessRule => "The request breaks a rule of the register",
            Self::IdempotencyKeyReused => "The Idempotency-Key was used for another request",
            Self::IdempotencyKeyInUse => "A request with this Idempotency-Key is still being processed",
            Self::TooManyRequests => "Too many requests",
            Self::NotReady => "The service is not ready",
            Self::Busy => "The service is busy",
            Self::ServiceUnavailable => "The service is unavailable for a moment",
            Self::RangeNotSatisfiable => "The range is not inside the recording",
            Self::IntegrityFailure => "The stored data failed its integrity check",
            Self::Internal => "Internal error",
        }
    }

    /// The problem type a bare status stands for, for errors that arrive without one.
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::MalformedBody,
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            406 => Self::NotAcceptable,
            409 => Self::Conflict,
            412 => Self::PreconditionFailed,
            428 => Self::PreconditionRequired,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::BusinessRule,
            429 => Self::TooManyRequests,
            503 => Self::NotReady,
            _ => Self::Internal,
        }
    }
}

/// One field at fault. `field` is a path into the request: `services[0].valid_from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    #[schema(example = "services[0].valid_from")]
    pub field: String,
    #[schema(example = "must be on or before valid_to")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation")]
    pub problem_type: String,
    #[schema(example = "The request has invalid fields")]
    pub title: String,
    #[schema(example = 400)]
    pub status: u16,
    /// What went wrong in this occurrence, for a person reading it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The fields at fault; empty when the problem is not about fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// A conflict's existing resource (its path), present only when the caller may read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "/v1/registrars/4b0c…/clients/9e1f…")]
    pub existing: Option<String>,
}

impl Problem {
    pub fn new(kind: ProblemType) -> Self {
        Self {
            problem_type: kind.uri().to_owned(),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: None,
            errors: Vec::new(),
            existing: None,
        }
    }

    pub fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE)));
        response.body(body)
    }
}

/// The error every handler returns. Domain errors map into it; `Internal` carries a cause for
/// the log only.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    #[error("{detail}")]
    Problem { kind: ProblemType, detail: String },
    /// 422: a rule of the register refuses the request; names the field it concerns.
    #[error("{}: {}", .0.field, .0.message)]
    BusinessRule(FieldError),
    #[error("not found")]
    NotFound,
    /// 409: the resource to create exists; `existing` names it to a caller who may read it.
    #[error("{detail}")]
    Exists { detail: String, existing: Option<String> },
    #[error("too many attempts")]
    Throttled { retry_after_seconds: i64 },
    /// 503: the password-hashing pool is full; try again after `Retry-After`.
    #[error("busy")]
    Busy { retry_after_seconds: i64 },
    /// 503: no database connection in time, or the audit log cannot be written; the cause is
    /// for the server log only. Try again after `Retry-After`.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn problem(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self::Problem {
            kind,
            detail: detail.into(),
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// A failed query of a module that answers with the driver's error: 503 when the database
    /// is unavailable, otherwise 500.
    pub fn query(e: impl Into<rekisteri_db::DbError>) -> Self {
        e.into().into()
    }

    /// A storage failure: 503 when the database is unavailable, otherwise our fault (500).
    fn storage(unavailable: bool, cause: impl std::fmt::Display) -> Self {
        if unavailable {
            Self::Unavailable(cause.to_string())
        } else {
            Self::Internal(cause.to_string())
        }
    }

    pub fn to_problem(&self) -> Problem {
        match self {
            Self::Validation(errors) => {
                let mut problem = Problem::new(ProblemType::Validation);
                problem.errors = errors.clone();
                problem.detail = Some(match errors.as_slice() {
                    [one] => format!("{}: {}", one.field, one.message),
                    many => format!("{} fields are invalid", many.len()),
                });
                problem
            }
            Self::Problem { kind, detail } => {
                let mut problem = Problem::new(*kind);
                problem.detail = Some(detail.clone());
                problem
            }
            Self::BusinessRule(error) => {
                let mut problem = Problem::new(ProblemType::BusinessRule);
                problem.detail = Some(format!("{}: {}", error.field, error.message));
                problem.errors = vec![error.clone()];
                problem
            }
            Self::NotFound => Problem::new(ProblemType::NotFound),
            Self::Exists { detail, existing } => {
                let mut problem = Problem::new(ProblemType::Conflict);
                problem.detail = Some(detail.clone());
                problem.existing = existing.clone();
                problem
            }
            Self::Throttled { retry_after_seconds } => {
                let mut problem = Problem::new(ProblemType::TooManyRequests);
                problem.detail = Some(format!(
                    "Too many failed attempts; try again in {retry_after_seconds} s."
                ));
                problem
            }
            Self::Busy { retry_after_seconds } => {
                let mut problem = Problem::new(ProblemType::Busy);
                problem.detail = Some(format!(
                    "Too many password checks at once; try again in {retry_after_seconds} s."
                ));
                problem
            }
            Self::Unavailable(_) => {
                let mut problem = Problem::new(ProblemType::ServiceUnavailable);
                problem.detail = Some(format!(
                    "The database or the audit log cannot be reached just now; try again in {UNAVAILABLE_RETRY_AFTER_SECONDS} s \
                     (a creating request with the same Idempotency-Key)."
                ));
                problem
            }
            Self::Internal(_) => {
                let mut problem = Problem::new(ProblemType::Internal);
                problem.detail =
                    Some("The error was logged; quote the X-Request-Id header when reporting it.".to_owned());
                problem
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::Problem { kind, .. } => kind.status(),
            Self::BusinessRule(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Exists { .. } => StatusCode::CONFLICT,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy { .. } | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The request id ties the caller's report (it quotes X-Request-Id) to the line.
        let request = crate::middleware::RequestId::current()
            .map(|id| id.0)
            .unwrap_or_default();
        match self {
            Self::Internal(cause) => log::error!("{request} internal error: {cause}"),
            Self::Unavailable(cause) => log::warn!("{request} unavailable (503): {cause}"),
            _ => {}
        }
        let problem = self.to_problem();
        // What the caller is told, for tracing a client's report; a problem document never
        // holds personal data (the leak sweep checks every one the tests provoke).
        log::debug!(target: "rekisteri::problem", "{request} {}", serde_json::to_string(&problem).unwrap_or_default());
        let mut response = problem.response();
        let retry_after = match self {
            Self::Throttled { retry_after_seconds } | Self::Busy { retry_after_seconds } => Some(*retry_after_seconds),
            Self::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER_SECONDS),
            _ => None,
        };
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// How long a caller is asked to wait after a 503 of an unavailable database or audit log: long
/// enough for a connection to be replaced or a database restart to finish, short against the
/// clients' own timeouts.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: i64 = 5;

impl From<rekisteri_db::DbError> for ApiError {
    fn from(e: rekisteri_db::DbError) -> Self {
        Self::storage(e.is_unavailable(), e)
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The one place a refusal becomes a status (docs/errors.md): 400 for the form, 422 for a rule,
/// 404, 403 and 409 for what they say.
impl From<rekisteri_core::Refusal> for ApiError {
    fn from(refusal: rekisteri_core::Refusal) -> Self {
        use rekisteri_core::Refusal as R;
        match refusal {
            R::Validation { field, message } => ApiError::field(field, message),
            R::Rule { field, message } => ApiError::BusinessRule(FieldError::new(field, message)),
            R::NotFound => ApiError::NotFound,
            R::Forbidden(detail) => ApiError::problem(ProblemType::Forbidden, detail),
            R::Conflict(detail) => ApiError::problem(ProblemType::Conflict, detail),
        }
    }
}

// The maps below are exhaustive on purpose: a new variant must be given its status here, so a
// client error cannot become a 500 by falling through.
impl From<rekisteri_accounts::AccountsError> for ApiError {
    fn from(e: rekisteri_accounts::AccountsError) -> Self {
        use rekisteri_accounts::AccountsError as E;
        match e {
            E::Refused(refusal) => refusal.into(),
            E::InvalidCredentials => ApiError::problem(
                ProblemType::Unauthenticated,
                "The e-mail address or the password is wrong.",
            ),
            E::Throttled { retry_after_seconds } => ApiError::Throttled { retry_after_seconds },
            E::Unauthenticated => crate::principal::unauthenticated(),
            E::StrongAuthenticationRequired => ApiError::problem(
                ProblemType::StrongAuthenticationRequired,
                "This registrar's client data needs a strong identity provider login (e.g. the professional card); a password session is not enough.",
            ),
            E::Db(e) => e.into(),
            E::Audit(e) => e.into(),
            e @ E::Crypto(_) => ApiError::internal(e),
        }
    }
}

/// A log that cannot be written fails the request that needed it (AU-4): 503 while the
/// database cannot take it, 500 otherwise; the cause goes to the server log, never to the
/// caller.
impl From<rekisteri_audit::AuditError> for ApiError {
    fn from(e: rekisteri_audit::AuditError) -> Self {
        Self::storage(e.is_unavailable(), e)
    }
}

impl From<rekisteri_clients::ClientsError> for ApiError {
    fn from(e: rekisteri_clients::ClientsError) -> Self {
        use rekisteri_clients::ClientsError as E;
        match e {
            E::Refused(refusal) => refusal.into(),
            E::ClientExists {
                registrar_id,
                client_id,
            } => ApiError::Exists {
                detail: "The register already has a client with this identity code.".to_owned(),
                existing: client_id.map(|id| format!("/v1/registrars/{registrar_id}/clients/{id}")),
            },
            E::Restricted => ApiError::problem(
                ProblemType::ProcessingRestricted,
                "Processing of this client's data is restricted; only the registrar can lift the restriction.",
            ),
            E::VersionMismatch => ApiError::problem(
                ProblemType::PreconditionFailed,
                "The record has changed since the version in If-Match; read it again and reapply the change.",
            ),
            E::StrongAuthenticationRequired => rekisteri_accounts::AccountsError::StrongAuthenticationRequired.into(),
            E::Db(e) => e.into(),
            E::Audit(e) => e.into(),
            e @ E::Crypto(_) => ApiError::internal(e),
        }
    }
}

/// Declares a type that documents problem answers several operations give in the same words;
/// an operation lists it among its `responses(...)`.
macro_rules! problem_responses {
    ($(#[$meta:meta])* $name:ident { $($status:literal => $description:expr),+ $(,)? }) => {
        $(#[$meta])*
        pub(crate) struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                [$(($status.to_owned(), $crate::problem::documented_problem($description))),+].into()
            }
        }
    };
}
pub(crate) use problem_responses;

problem_responses!(
    /// What an operation on a client answers while processing of the client is restricted.
    ProcessingRestricted { "409" => "Processing of the client is restricted" }
);

/// A problem response as the OpenAPI document lists one, for the modifiers that add the errors
/// a middleware or an extractor answers for every operation of a kind.
pub fn documented_problem(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_CONTENT_TYPE,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}
