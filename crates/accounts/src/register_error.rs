//! The error type every register declares: the refusal, database, audit log and cryptography
//! variants it shares with the others around its own, with their conversions, written once.

#[doc(hidden)]
pub mod support {
    pub use rekisteri_audit::AuditError;
    pub use rekisteri_core::Refusal;
    pub use rekisteri_db::{DbError, crypto_error_into_message, query_error_into_db};
}

/// Declares a register's error enum: `Refused` first, then the register's own variants, then
/// `Db`, `Audit` and `Crypto`; conversions from a refusal, a database, audit or cryptography
/// error and a query error; and the crate's `validation` and `rule` shorthands for a refusal.
///
/// A register that maps some query errors itself (a unique key met by a concurrent insert is a
/// conflict) starts the enum with `#[own_query_errors]` and implements
/// `From<diesel::result::Error>` itself.
#[macro_export]
macro_rules! register_error {
    (#[own_query_errors] $(#[$meta:meta])* $vis:vis enum $name:ident { $($own:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, thiserror::Error)]
        $vis enum $name {
            /// 400, 403, 404, 409 or 422: what the caller can act on, shared by every register.
            #[error(transparent)]
            Refused(#[from] $crate::register_error::support::Refusal),
            $($own)*
            #[error(transparent)]
            Db(#[from] $crate::register_error::support::DbError),
            #[error(transparent)]
            Audit(#[from] $crate::register_error::support::AuditError),
            #[error("cryptography failed: {0}")]
            Crypto(String),
        }

        $crate::register_error::support::crypto_error_into_message!($name);

        pub(crate) fn validation(field: impl Into<String>, message: impl Into<String>) -> $name {
            $crate::register_error::support::Refusal::validation(field, message).into()
        }

        pub(crate) fn rule(field: impl Into<String>, message: impl Into<String>) -> $name {
            $crate::register_error::support::Refusal::rule(field, message).into()
        }
    };
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($own:tt)* }) => {
        $crate::register_error! {
            #[own_query_errors]
            $(#[$meta])*
            $vis enum $name { $($own)* }
        }

        $crate::register_error::support::query_error_into_db!($name);
    };
}

/// Converts the user register's errors into a register's that has the same shared variants and
/// `StrongAuthenticationRequired`.
#[macro_export]
macro_rules! from_accounts_error {
    ($name:ident) => {
        impl From<$crate::AccountsError> for $name {
            fn from(e: $crate::AccountsError) -> Self {
                use $crate::AccountsError as E;
                match e {
                    E::Refused(refusal) => Self::Refused(refusal),
                    E::StrongAuthenticationRequired => Self::StrongAuthenticationRequired,
                    E::Db(e) => Self::Db(e),
                    E::Audit(e) => Self::Audit(e),
                    E::Crypto(message) => Self::Crypto(message),
                    // Outcomes of signing in, which no register operation asks for: a bug if
                    // seen here, so a failure of ours (500), never a refusal.
                    e @ (E::InvalidCredentials | E::Throttled { .. } | E::Unauthenticated) => {
                        Self::Crypto(e.to_string())
                    }
                }
            }
        }
    };
}
