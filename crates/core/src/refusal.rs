//! The refusals every register shares: what a caller did wrong or may not do, as opposed to a
//! failure of ours. Each register's error wraps one in its `Refused` variant, so the API maps
//! them to statuses in one place and a new register cannot invent its own 400.

/// Why a register refused a request for a reason the caller can act on. Messages name the field
/// and the reason, never a value: no identity code, name or other personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: a field breaks the documented form.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// 422: well-formed, but what the register holds refuses it (a unit of another
    /// organisation, an end before the start).
    #[error("{field}: {message}")]
    Rule { field: String, message: String },
    /// 404: missing, or not visible to the caller; the two look the same (AX-4).
    #[error("not found")]
    NotFound,
    /// 403: the caller is known but may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 409: the register's state conflicts with the request.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl Refusal {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn rule(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Rule {
            field: field.into(),
            message: message.into(),
        }
    }
}
