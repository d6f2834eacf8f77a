//! The audit trail (AU): usage log (käyttöloki), disclosure log (luovutusloki) and security
//! events, each an append-only hash chain per registrar or organisation.
//!
//! Entries are appended by one writer per process ([`AuditLog`]) that commits the entries of
//! concurrent requests together (group commit) and computes the chain inside that transaction,
//! so chains cannot fork. A caller's `append` returns only when its entries are durable; a
//! failed commit fails every caller in the group (AU-4).

mod canonical;
mod context;
mod entry;
pub mod export;
pub mod metrics;
pub mod outbox;
pub mod query;
pub mod reports;
pub mod retention;
pub mod verify;
mod walk;
mod writer;

pub use canonical::{canonical_bytes, format_time};
pub use context::{AuditContext, DataUse, Written};
pub use entry::{
    AccessBasis, ActorKind, DisclosureEntry, LogKind, NewEntry, Outcome, SecurityEvent, UsageEntry, chain_id,
};
pub use query::{subject_index, subject_index_candidates};
pub use verify::{Break, DEFAULT_SEGMENT_ENTRIES, VerifyOptions, VerifyReport, verify_all};
pub use writer::{AuditLog, DisclosureRow, SecurityRow, StoredEntry, UsageRow, WriterOptions, append_in_transaction};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log could not be written: {0}")]
    Write(String),
    /// The database could not take the entries just now (no connection, a connection lost,
    /// a full or read-only database): nothing of the group was committed; try again later.
    #[error("the audit log cannot be written just now: {0}")]
    Unavailable(String),
    #[error("the audit log writer has stopped")]
    WriterStopped,
    #[error(transparent)]
    Db(#[from] rekisteri_db::DbError),
}

impl AuditError {
    /// Whether the log could not be written because the database is unavailable (503), not
    /// because of the entries or a fault of ours.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) | Self::WriterStopped => true,
            Self::Db(e) => e.is_unavailable(),
            Self::Write(_) => false,
        }
    }
}

/// A time range the API reads a log over: it must end after it starts and cover at most
/// `max_days`; otherwise a 422 naming `to`, `too_long` saying the limit.
pub(crate) fn bounded_range(
    from: time::PrimitiveDateTime,
    to: time::PrimitiveDateTime,
    max_days: i64,
    too_long: &str,
) -> Result<(), rekisteri_core::Refusal> {
    use rekisteri_core::Refusal;
    if to <= from {
        return Err(Refusal::rule("to", "must be after from"));
    }
    if to - from > time::Duration::days(max_days) {
        return Err(Refusal::rule("to", too_long));
    }
    Ok(())
}

rekisteri_db::query_error_into_db!(AuditError);
