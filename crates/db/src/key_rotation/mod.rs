//! Key rotation (PL-6): the state of a rotation and the passes that move every sealed value to
//! the active data key and every blind index to the active blind-index key, table by table, in
//! batches that commit their progress with them, so that a rotation killed at any moment resumes
//! after its last committed batch.
//!
//! A rotation goes `prepared` (the new keys are in the key file; every server loads them but
//! still writes with the old ones) → `switched` (every server writes with the new keys; the
//! passes run) → `finished`. The servers report the keys they hold and write with in
//! `instance_keys`; the command that drives a rotation waits on those reports between the steps.
//!
//! The passes run while requests go on: each row is updated only if its values are still the
//! ones the pass read (compare and swap), so a concurrent change is never overwritten; such a
//! change was written with the new keys anyway. The change history keeps copies of sealed values:
//! its pass re-encrypts those copies in place (the one UPDATE the history allows besides the
//! protection-order redaction), and the passes' own updates leave no history rows (their actor
//! is [`ACTOR`], which the history's insert trigger skips).
//!
//! Blind indexes in the audit log are not re-indexed: they are part of its hash chain, and
//! rewriting them would break the tamper evidence. Lookups match every blind key held, so those
//! entries stay findable while the old blind key is kept.

use rekisteri_crypto::CryptoError;

/// The change-history actor of the passes' updates; the history skips its rows.
pub const ACTOR: &str = "system:key-rotation";

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("a value in {target}.{column} cannot be re-encrypted: {source}")]
    Crypto {
        target: &'static str,
        column: &'static str,
        source: CryptoError,
    },
    #[error("the change history row {id} is not valid JSON")]
    History { id: i64 },
}

mod counts;
mod history;
mod pass;
mod sql;
mod state;
mod targets;

pub use counts::{audit_entries_indexed_before, rows_to_walk, values_under_key};
pub use pass::{Batch, next_batch};
pub use state::{
    Awaited, Rotation, RotationState, abandon_prepared, advance, begin, forget_key, newest, progress,
    report_instance_keys, servers_behind,
};
pub use targets::{HISTORY, pass_names, sealed_columns};
