//! The request's side of every usage entry (AU-1): who uses personal data, on whose behalf, for
//! what and on what basis. A domain crate hands personal data to its caller only through
//! [`AuditLog::read_personal_data`], which takes an [`AuditContext`] and returns the data only
//! after the entries it made are durable (AU-4).

use rekisteri_db::DbConnection;
use time::PrimitiveDateTime;

use crate::{AccessBasis, ActorKind, AuditError, AuditLog, NewEntry, Outcome, UsageEntry};

/// Everything a usage entry says about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    /// Whose register the data belongs to; its chain takes the entry.
    pub registrar_id: String,
    /// The acting user's (or system's) organisation, whose register keeping the entry belongs
    /// to (AU-1, source 003 §3.3): the registrar for its own staff, the provider for a
    /// provider's staff working in the organiser's register. A provider's auditors read the
    /// registrar's entries that name their organisation here.
    pub log_controller_id: String,
    pub actor_kind: ActorKind,
    pub actor_id: String,
    pub actor_name: Option<String>,
    /// The end user an integration acts for.
    pub on_behalf_of: Option<String>,
    pub service_unit_oid: Option<String>,
    pub purpose: String,
    pub access_basis: AccessBasis,
    /// The THL code and explanation, when the basis is a special reason (AX-5).
    pub special_reason: Option<String>,
    pub request_id: String,
    pub calling_system: Option<String>,
}

/// What a created record discloses about a person, said by the register that wrote it: an
/// idempotent replay of its 201 (PL-2) logs it again, under the permission the write needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The permission the write needed, as `Permission::as_str` names it.
    pub permission: &'static str,
    pub subject_index: Option<[u8; 32]>,
    pub data_kind: &'static str,
    pub data_id: String,
}

/// One piece of one person's data that a read touched (or looked for: `NotFound`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUse {
    pub subject_index: Option<[u8; 32]>,
    pub data_kind: String,
    pub data_id: Option<String>,
    pub outcome: Outcome,
}

impl AuditContext {
    /// The usage entry for `data` at `at`.
    pub fn usage_entry(&self, data: DataUse, at: PrimitiveDateTime) -> NewEntry {
        NewEntry::Usage(UsageEntry {
            occurred_at: at,
            registrar_id: self.registrar_id.clone(),
            log_controller_id: self.log_controller_id.clone(),
            subject_index: data.subject_index,
            data_kind: data.data_kind,
            data_id: data.data_id,
            outcome: data.outcome,
            actor_kind: self.actor_kind,
            actor_id: self.actor_id.clone(),
            actor_name: self.actor_name.clone(),
            on_behalf_of: self.on_behalf_of.clone(),
            service_unit_oid: self.service_unit_oid.clone(),
            purpose: self.purpose.clone(),
            access_basis: self.access_basis,
            special_reason: self.special_reason.clone(),
            request_id: self.request_id.clone(),
            calling_system: self.calling_system.clone(),
        })
    }

    fn check(&self) -> Result<(), AuditError> {
        let missing = |what: &str| Err(AuditError::Write(format!("a read of personal data without {what}")));
        if self.registrar_id.trim().is_empty() {
            return missing("a registrar");
        }
        if self.log_controller_id.trim().is_empty() {
            return missing("a log controller");
        }
        if self.actor_id.trim().is_empty() {
            return missing("an actor");
        }
        if self.purpose.trim().is_empty() {
            return missing("a purpose");
        }
        if self.request_id.trim().is_empty() {
            return missing("a request id");
        }
        if (self.access_basis == AccessBasis::SpecialReason) != self.special_reason.is_some() {
            return missing("a special reason matching its access basis");
        }
        Ok(())
    }
}

impl AuditLog {
    /// Runs `read`, logs one usage entry per [`DataUse`] it reports under `context`, and hands
    /// the data over only once those entries are durable. A context that cannot explain the read
    /// (no purpose, no actor, …) or a log that cannot be written fails the read.
    pub fn read_personal_data<T, E>(
        &self,
        conn: &mut DbConnection,
        context: &AuditContext,
        at: PrimitiveDateTime,
        read: impl FnOnce(&mut DbConnection) -> Result<(T, Vec<DataUse>), E>,
    ) -> Result<T, E>
    where
        E: From<AuditError>,
    {
        context.check()?;
        self.audited_read(conn, |conn| {
            let (data, uses) = read(conn)?;
            let entries = uses.into_iter().map(|u| context.usage_entry(u, at)).collect();
            Ok((data, entries))
        })
    }
}
