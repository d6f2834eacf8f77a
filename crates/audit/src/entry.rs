//! The entries of the three logs, as the domain hands them to the writer.

use time::PrimitiveDateTime;

/// Which log an entry belongs to; each has its own chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogKind {
    Usage,
    Disclosure,
    Security,
}

impl LogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usage => "usage",
            Self::Disclosure => "disclosure",
            Self::Security => "security",
        }
    }

    pub fn table(self) -> &'static str {
        match self {
            Self::Usage => "usage_log",
            Self::Disclosure => "disclosure_log",
            Self::Security => "security_events",
        }
    }

    pub const ALL: [LogKind; 3] = [LogKind::Usage, LogKind::Disclosure, LogKind::Security];
}

/// The chain an entry joins: one per log and registrar (or organisation; `platform` for events
/// that belong to none). Per-registrar chains let registrars write in parallel on PostgreSQL
/// (each locks only its own head) and let one registrar's log be exported and verified alone.
pub fn chain_id(kind: LogKind, owner: Option<&str>) -> String {
    format!("{}:{}", kind.as_str(), owner.unwrap_or("platform"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ActorKind {
    Staff,
    ProviderUser,
    Citizen,
    Proxy,
    Integration,
    Admin,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::ProviderUser => "provider_user",
            Self::Citizen => "citizen",
            Self::Proxy => "proxy",
            Self::Integration => "integration",
            Self::Admin => "admin",
            Self::System => "system",
        }
    }
}

/// On what basis data was used (AU-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AccessBasis {
    CareRelationship,
    SpecialReason,
    Role,
    OwnData,
    Proxy,
    RegistryUseRight,
    Integration,
    /// Access was refused: the entry records the attempt.
    None,
}

impl AccessBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CareRelationship => "care_relationship",
            Self::SpecialReason => "special_reason",
            Self::Role => "role",
            Self::OwnData => "own_data",
            Self::Proxy => "proxy",
            Self::RegistryUseRight => "registry_use_right",
            Self::Integration => "integration",
            Self::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// Data was returned or changed.
    Used,
    /// A search found nothing (still logged, CL-11).
    NotFound,
    /// Access was refused (PL-19: the log shows the denial).
    Denied,
    /// A create found the person already in the register: the caller learnt that they are
    /// there, whether or not it may see the record (CL-1, AX-4).
    Exists,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Used => "used",
            Self::NotFound => "not_found",
            Self::Denied => "denied",
            Self::Exists => "exists",
        }
    }
}

/// One use of client data (AU-1). The data subject appears only as a blind index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsageEntry {
    pub occurred_at: PrimitiveDateTime,
    /// Whose data: the registrar keeping the register.
    pub registrar_id: String,
    /// The acting user's organisation, which keeps this entry (source 003 §3.3).
    pub log_controller_id: String,
    pub subject_index: Option<[u8; 32]>,
    /// client, service, service_event, proxy, document, contact, recording, search, …
    pub data_kind: String,
    pub data_id: Option<String>,
    pub outcome: Outcome,
    pub actor_kind: ActorKind,
    pub actor_id: String,
    pub actor_name: Option<String>,
    /// The end user an integration acted for (id and name, as X-Road carries them).
    pub on_behalf_of: Option<String>,
    pub service_unit_oid: Option<String>,
    pub purpose: String,
    pub access_basis: AccessBasis,
    /// THL special-reason code when `access_basis` is `SpecialReason`.
    pub special_reason: Option<String>,
    pub request_id: String,
    pub calling_system: Option<String>,
}

/// One disclosure of data to someone outside the register (AU-2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DisclosureEntry {
    pub occurred_at: PrimitiveDateTime,
    pub registrar_id: String,
    pub subject_index: Option<[u8; 32]>,
    pub description: String,
    pub discloser_kind: ActorKind,
    pub discloser_id: String,
    pub recipient_kind: String,
    pub recipient_id: String,
    pub recipient_name: Option<String>,
    pub purpose: String,
    pub legal_basis: String,
    pub request_id: String,
}

/// A security event (AU-3): logins, failures, rights changes, key rotations, job runs.
/// `details` is JSON without personal data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecurityEvent {
    pub occurred_at: PrimitiveDateTime,
    pub organisation_id: Option<String>,
    pub event_type: String,
    pub actor_kind: ActorKind,
    pub actor_id: Option<String>,
    pub details: serde_json::Value,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NewEntry {
    Usage(UsageEntry),
    Disclosure(DisclosureEntry),
    Security(SecurityEvent),
}

impl NewEntry {
    pub fn kind(&self) -> LogKind {
        match self {
            Self::Usage(_) => LogKind::Usage,
            Self::Disclosure(_) => LogKind::Disclosure,
            Self::Security(_) => LogKind::Security,
        }
    }

    pub fn chain_id(&self) -> String {
        match self {
            Self::Usage(e) => chain_id(LogKind::Usage, Some(&e.registrar_id)),
            Self::Disclosure(e) => chain_id(LogKind::Disclosure, Some(&e.registrar_id)),
            Self::Security(e) => chain_id(LogKind::Security, e.organisation_id.as_deref()),
        }
    }
}
