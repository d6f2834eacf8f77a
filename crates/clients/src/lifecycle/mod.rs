//! The lifecycle of a client record (CL-13..CL-15): end of visibility, the list of clients due
//! for anonymisation and their archive export, the anonymisation run and the deletion run.
//!
//! Decisions (see also `docs/architecture.md`):
//!
//! - **When a service ends.** A closed service ends on its `closed_on`; a service still marked
//!   active ends on its `valid_to` (a grant whose validity has run out is no longer active even
//!   if nobody closed it: otherwise a forgotten closing would keep a person identifiable for
//!   ever). A service whose validity has not ended is active, and keeps its client visible.
//! - **Registrar (CL-13).** A client is visible to the registrar while some service of theirs
//!   ended on or after [`visibility_cutoff`] (today moved back by 12 calendar months, 29 Feb
//!   clamped to 28 Feb), i.e. until 12 months after the last service ended. This is a property
//!   of the client, not of the caller's service areas; the area rules (AX-4) apply on top.
//! - **Provider (CL-13).** A provider sees a client the registrar still sees while the
//!   provider has an active service for them, or recorded a service event for them on or after
//!   the cut-off; a provider that never recorded an event for the client falls back to its own
//!   services' ends (closing date or validity end).
//! - A client past the end of visibility is 404 to everyone, exactly like a missing one, until
//!   the anonymisation run (daily) anonymises it.
//! - **Anonymisation (CL-14)** removes the identity code, its blind index (`subject_index`),
//!   names, address, e-mail, phone, next of kin, language, the move and death dates, the
//!   protection-order flag, the services' decision references and additional information and the
//!   events' notes (free text and references can identify). It keeps the home municipality,
//!   gender, `birth_year` (the age group's source, taken from the identity code before the
//!   code goes), the services, events, quantities and amounts. The change-history rows of the
//!   client, its services and events are deleted in the same transaction: they hold the old
//!   values as ciphertext the keys still open. Proxies and care-team memberships are deleted with their
//!   history.
//! - **Deletion (CL-15)**: an anonymised client, its services and events are deleted
//!   `organisations.anonymised_retention_years` (default 5, 1–100) whole years after
//!   `anonymised_at`, with their change-history rows.
//! - A client who died (`died_on`) or moved out (`moved_out_on`) on or before today gets their
//!   active services closed by the anonymisation run on that date (clamped into the service's
//!   validity), so that CL-13 then runs its course.
//! - Both runs work in batches of [`BATCH`] clients per transaction and are safe to re-run: a
//!   second run finds nothing to do and reports zeros.
//!
//! One file per subject: `visibility` (CL-13), `due` (the due list), `archive` (its export),
//! `anonymise` and `deletion` (the runs) and `purge` (what the runs share). The subquery of
//! services ending after a cut-off stays here: the visibility filter and the runs both use it.

use rekisteri_db::schema::services;

time::serde::format_description!(lifecycle_date, Date, "[year]-[month]-[day]");

/// Months a client stays visible after their last service ended (CL-13).
pub const VISIBILITY_MONTHS: u32 = 12;
/// The default lead time of the due list (CL-14).
pub const DEFAULT_LEAD_DAYS: i64 = 30;
/// The longest lead time a caller may ask for.
pub const MAX_LEAD_DAYS: i64 = 365;
/// Clients per transaction in the runs: memory stays flat however large the register is, and
/// few commits write the pages a batch shares once. Each client moves entries of indexes keyed
/// at random (its blind index, its history rows' `(table_name, row_id)`), so the larger the
/// batch the more of them share a leaf page. PL-15, anonymising 1 000 000 clients on SQLite
/// (release build, with the bulk connection's page cache, `rekisteri_db::Pool::connect_unpooled`):
/// 272 s in batches of 5 000, 242 s of 10 000, 212 s of 20 000. A batch of 10 000 holds the
/// SQLite write lock for about 2.5 s, half the requests' busy timeout; the runs are nightly jobs.
pub const BATCH: i64 = 10_000;

diesel::alias!(services as other_services: OtherServices);

/// The ids of the registrar's clients with a service that ended on or after `$cutoff` (or has
/// not ended yet), as a subquery (over an alias of `services`, so that it nests in queries of
/// `services`).
macro_rules! clients_with_service_ending_after {
    ($registrar_id:expr, $cutoff:expr) => {
        other_services
            .filter(other_services.field(services::registrar_id).eq($registrar_id))
            .filter(
                other_services
                    .field(services::closed_on)
                    .is_not_null()
                    .and(other_services.field(services::closed_on).assume_not_null().ge($cutoff))
                    .or(other_services
                        .field(services::closed_on)
                        .is_null()
                        .and(other_services.field(services::valid_to).ge($cutoff))),
            )
            .select(other_services.field(services::client_id))
    };
}

mod anonymise;
mod archive;
mod deletion;
mod due;
mod purge;
mod visibility;

pub(crate) use anonymise::hold_client_against_anonymisation;
pub use anonymise::{AnonymiseReport, anonymise_clients, run_anonymise, run_anonymise_in_batches};
pub use archive::{ArchivePage, ArchiveRecord, archive_export};
pub use deletion::{DeletionReport, run_deletion};
pub use due::{DueClient, DuePage, due_for_anonymisation};
pub use visibility::{add_months, visibility_cutoff, visible_until};
pub(crate) use visibility::{is_visible, only_visible, registrar_sees};
