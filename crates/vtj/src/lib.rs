//! VTJ change ingestion (VT-1..VT-13): keeping the client register current from DVV's change
//! interface (muutosrajapinta).
//!
//! - [`message`]: the interface's JSON with its real field names, and what a message means;
//! - [`client`]: the three calls over HTTP (credentials, X-Road client header, timeouts,
//!   429/5xx backoff with jitter);
//! - [`simulator`]: the interface served from a data file, for tests and the demo;
//! - [`staging`]: raw messages staged sealed with the cursor, then applied in order;
//! - [`sync`]: a registrar's run (monitored list, cursor, initial load, change loop);
//! - [`bench`]: the throughput benchmark of VT-13.

pub mod bench;
pub mod client;
pub mod message;
pub mod simulator;
pub mod staging;
pub mod sync;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

pub use client::{CredentialScheme, Credentials, VtjClient, VtjConfig};
pub use staging::{ApplyCounts, apply_pending, stage_messages};
pub use sync::{SyncReport, VtjStatus, death_work_list, moves_in_work_list, run_sync, status};

/// Why a VTJ operation failed. Messages never hold an identity code or a secret.
#[derive(Debug, thiserror::Error)]
pub enum VtjError {
    #[error("malformed message: {0}")]
    Malformed(String),
    /// 400, 403, 404: the caller's request or right, not the interface.
    #[error(transparent)]
    Refused(#[from] rekisteri_core::Refusal),
    #[error("the VTJ interface refused {call}: HTTP {status}")]
    InterfaceRefused { status: u16, call: &'static str },
    #[error("the VTJ interface cannot be reached: {0}")]
    Transport(String),
    #[error("configuration: {0}")]
    Config(String),
    /// VT-10: a run of this registrar is already going.
    #[error("a VTJ run of this registrar is already running")]
    AlreadyRunning,
    #[error("injected failure: {0}")]
    Injected(&'static str),
    #[error(transparent)]
    Db(#[from] rekisteri_db::DbError),
    #[error(transparent)]
    Clients(#[from] rekisteri_clients::ClientsError),
    #[error(transparent)]
    Audit(#[from] rekisteri_audit::AuditError),
    #[error("cryptography failed")]
    Crypto,
}

/// Who may run or feed a registrar's VTJ ingestion: an account or integration of the registrar
/// itself with `manage_vtj` (VT-10). Another registrar's path is a 404, as if it did not exist
/// (AX-4).
pub fn authorise(principal: &rekisteri_accounts::Principal, registrar_id: &str) -> Result<(), VtjError> {
    use rekisteri_core::Refusal;
    if principal.organisation_id != registrar_id {
        return Err(Refusal::NotFound.into());
    }
    if !principal.can(rekisteri_accounts::Permission::ManageVtj) {
        return Err(Refusal::Forbidden("VTJ ingestion needs manage_vtj".to_owned()).into());
    }
    Ok(())
}

rekisteri_db::query_error_into_db!(VtjError);

impl From<rekisteri_crypto::CryptoError> for VtjError {
    fn from(_: rekisteri_crypto::CryptoError) -> Self {
        Self::Crypto
    }
}

/// Test-only crash points in the domain code (VT-3): a test sets one, the run fails there as a
/// crash would, and a re-run must give the same register.
#[derive(Debug, Default)]
pub struct FailPoints {
    /// Fail right after the first staged batch of changes is committed, before applying it.
    pub after_staging: AtomicBool,
    /// Fail when this many more staged rows have been applied (the current batch's transaction
    /// rolls back; earlier batches stay committed). Negative: off.
    pub after_applied_rows: AtomicI64,
}

impl FailPoints {
    pub fn off() -> Arc<Self> {
        Arc::new(Self {
            after_staging: AtomicBool::new(false),
            after_applied_rows: AtomicI64::new(-1),
        })
    }

    pub(crate) fn staged(&self) -> Result<(), VtjError> {
        if self.after_staging.swap(false, Ordering::SeqCst) {
            return Err(VtjError::Injected("after staging"));
        }
        Ok(())
    }

    pub(crate) fn applied_one(&self) -> Result<(), VtjError> {
        let left = self.after_applied_rows.load(Ordering::SeqCst);
        if left == 0 {
            self.after_applied_rows.store(-1, Ordering::SeqCst);
            return Err(VtjError::Injected("in the middle of application"));
        }
        if left > 0 {
            self.after_applied_rows.store(left - 1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// What every VTJ operation needs besides the connection.
#[derive(Clone)]
pub struct Vtj {
    pub keyring: Arc<rekisteri_crypto::Keyring>,
    pub audit: rekisteri_audit::AuditLog,
    pub clock: rekisteri_core::SharedClock,
    pub config: VtjConfig,
    pub fail: Arc<FailPoints>,
}
