//! What the register keeps and what callers send, with the published field names (api.md).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// A service queue of the registrar (CA-1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Queue {
    pub id: String,
    pub registrar_id: String,
    /// The service unit whose staff answer the queue; its call supervisors hold the queue's
    /// listening rights.
    pub service_unit_id: String,
    pub name: String,
    /// Whether calls of the queue are recorded.
    pub recorded: bool,
    /// What a caller hears before a recorded call; each recorded contact keeps the one it was
    /// pushed under.
    pub recording_announcement: Option<String>,
    /// Users granted listening rights explicitly (CA-1), besides the unit's supervisors.
    pub listeners: Vec<QueueListener>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct QueueListener {
    pub account_id: String,
    pub granted_by: String,
    #[schema(format = DateTime)]
    pub granted_at: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQueue {
    /// 1-200 characters, unique within the registrar.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$",
        example = "Hammashoidon ajanvaraus"
    )]
    pub name: String,
    /// A service unit of the registrar.
    #[schema(format = Uuid)]
    pub service_unit_id: String,
    pub recorded: bool,
    /// Required when `recorded`: the announcement callers hear (1-2000 characters).
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    #[serde(default)]
    pub recording_announcement: Option<String>,
}

/// Changes to a queue (CA-1); absent fields stay. Turning recording on needs an announcement
/// (given now or already set); contacts already pushed keep the announcement they were pushed
/// under.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueChanges {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub recorded: Option<bool>,
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    #[serde(default)]
    pub recording_announcement: Option<String>,
}

/// The kind of a contact (CA-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Call,
    Callback,
    Voicemail,
    /// Anonymous: no personal data is stored.
    Chat,
}

impl ContactKind {
    pub const ALL: [ContactKind; 4] = [Self::Call, Self::Callback, Self::Voicemail, Self::Chat];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Callback => "callback",
            Self::Voicemail => "voicemail",
            Self::Chat => "chat",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the contact can have audio: a recording of a call or callback, or a voicemail.
    pub fn has_audio(self) -> bool {
        !matches!(self, Self::Chat)
    }
}

/// A contact as pushed by the telephony system (CA-2).
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    pub kind: ContactKind,
    #[schema(format = Uuid)]
    pub queue_id: String,
    /// The caller's number in E.164 form (`+358401234567`); absent for a hidden number and
    /// always for a chat.
    #[schema(pattern = r"^\+[1-9][0-9]{5,14}$", example = "+358401234567")]
    #[serde(default)]
    pub caller_number: Option<String>,
    /// The number is the client's secret number: shown only to users of this queue (AX-6).
    #[serde(default)]
    pub secret_number: bool,
    /// The account that answered the call or made the callback.
    #[schema(format = Uuid)]
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Whether an agent answered; defaults to whether `agent_id` is given.
    #[serde(default)]
    pub answered: Option<bool>,
    /// The caller's home municipality (3-digit code).
    #[schema(pattern = "^[0-9]{3}$", example = "091")]
    #[serde(default)]
    pub home_municipality: Option<String>,
    /// When the contact began (RFC 3339); not in the future.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: time::OffsetDateTime,
    /// Seconds the caller waited in the queue.
    #[schema(minimum = 0, maximum = 86400)]
    #[serde(default)]
    pub wait_seconds: Option<i32>,
    #[schema(minimum = 0, maximum = 86400)]
    #[serde(default)]
    pub duration_seconds: Option<i32>,
    /// The client's name, only when it matters for handling the case.
    #[schema(max_length = 200)]
    #[serde(default)]
    pub client_name: Option<String>,
    /// The client's identity code when the caller was identified; never echoed in errors.
    #[schema(example = "131052-308T")]
    #[serde(default)]
    pub client_identity_code: Option<String>,
}

rekisteri_core::redacted_debug!(NewContact { kind });

/// A recording's or voicemail's metadata (CA-3); the audio is served only on a listening grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Recording {
    /// SHA-256 of the audio, lower-case hex.
    pub sha256: String,
    #[schema(example = "audio/wav")]
    pub content_type: String,
    pub bytes: i64,
    #[schema(format = DateTime)]
    pub stored_at: String,
    /// When the retention run destroyed the audio (CA-9); the metadata stays.
    #[schema(format = DateTime)]
    pub destroyed_at: Option<String>,
    /// The retention run that destroyed it.
    pub destroyed_by_run: Option<String>,
}

/// A legal hold in force (CA-10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LegalHold {
    pub id: String,
    pub authority: String,
    pub case_reference: String,
    /// The last day of the hold; absent: until released.
    #[serde(with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub until_on: Option<time::Date>,
    pub placed_by: String,
    #[schema(format = DateTime)]
    pub placed_at: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLegalHold {
    /// The authority the recording was handed to (e.g. the police department).
    #[schema(min_length = 1, max_length = 200)]
    pub authority: String,
    /// The authority's case reference.
    #[schema(min_length = 1, max_length = 200)]
    pub case_reference: String,
    /// The last day of the hold; omit for "until released".
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub until_on: Option<time::Date>,
}

/// A contact (CA-2) as the caller may see it (AX-6).
#[derive(Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Contact {
    pub id: String,
    pub registrar_id: String,
    pub kind: ContactKind,
    /// Absent for a chat, a hidden number, and a secret number shown outside its queue.
    pub caller_number: Option<String>,
    pub secret_number: bool,
    pub queue_id: String,
    pub agent_id: Option<String>,
    pub answered: bool,
    pub home_municipality: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: String,
    pub wait_seconds: Option<i32>,
    pub duration_seconds: Option<i32>,
    pub client_name: Option<String>,
    pub client_identity_code: Option<String>,
    /// The announcement the caller heard, for a contact of a recorded queue.
    pub recording_announcement: Option<String>,
    pub recording: Option<Recording>,
    pub legal_hold: Option<LegalHold>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

rekisteri_core::redacted_debug!(Contact { id, registrar_id, kind });

impl Contact {
    /// What pushing the contact disclosed (an idempotent replay of its 201 is logged again): the
    /// person is the client the telephony system named by identity code, if it did.
    pub fn written(&self, keyring: &rekisteri_crypto::Keyring) -> rekisteri_audit::Written {
        rekisteri_audit::Written {
            permission: rekisteri_accounts::Permission::PushContacts.as_str(),
            subject_index: self
                .client_identity_code
                .as_deref()
                .and_then(|code| {
                    rekisteri_core::PersonalIdentityCode::parse(code, rekisteri_core::TemporaryCodesAllowed::No).ok()
                })
                .map(|code| rekisteri_audit::subject_index(keyring, &code)),
            data_kind: "contact",
            data_id: self.id.clone(),
        }
    }
}

/// Why a recording is listened to: the purposes seed 001 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCategory {
    /// Verifying what was agreed or done in the call.
    VerifyAgreement,
    /// The safety of employees.
    EmployeeSafety,
    /// Handling a complaint, reminder or claim.
    ComplaintOrClaim,
    /// A request of an authority.
    AuthorityRequest,
    /// Another reason, explained in the text.
    Other,
}

impl ReasonCategory {
    pub const ALL: [ReasonCategory; 5] = [
        Self::VerifyAgreement,
        Self::EmployeeSafety,
        Self::ComplaintOrClaim,
        Self::AuthorityRequest,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyAgreement => "verify_agreement",
            Self::EmployeeSafety => "employee_safety",
            Self::ComplaintOrClaim => "complaint_or_claim",
            Self::AuthorityRequest => "authority_request",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListeningRequest {
    pub reason_category: ReasonCategory,
    /// Why, in at least three words (15-2000 characters, line breaks allowed, no other control
    /// characters); kept sealed in the processing memo.
    // The pattern is `check_reason` in words: white space as Rust's `split_whitespace` knows it
    // (less the control characters), then three runs of anything else.
    #[schema(
        min_length = 15,
        max_length = 2000,
        pattern = r"^[ \n\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+([ \n\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+){2,}[ \n\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "Asiakas kiistää sopineensa ajan 12.3."
    )]
    pub reason: String,
}

/// A short-lived grant to listen to one recording (CA-5, CA-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ListeningGrant {
    pub grant_id: String,
    pub contact_id: String,
    /// The processing memo this listening created (CA-6).
    pub memo_id: String,
    /// Where the audio is served, with Range support, to the user the grant was issued to.
    pub audio_url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// To whom a recording goes (CA-7): only a party of the call or an authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecipientKind {
    /// A party of the call (the caller, or the employee).
    Party,
    Authority,
}

impl RecipientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Party => "party",
            Self::Authority => "authority",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Party, Self::Authority].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemoEntryKind {
    Disclosure,
    MediaExport,
}

impl MemoEntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disclosure => "disclosure",
            Self::MediaExport => "media_export",
        }
    }
}

/// A disclosure of a listened recording (CA-7), completing its memo.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDisclosure {
    pub recipient_kind: RecipientKind,
    /// Who received it (a person or an authority and its unit).
    #[schema(
        min_length = 1,
        max_length = 300,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub recipient: String,
    /// On what basis, e.g. the law and section or the party's request.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub legal_basis: String,
    /// What was disclosed (the whole recording, a part of it, a transcript).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub disclosed: String,
}

/// Saving a recording to external media (CA-6): its own operation with its own reason.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaExport {
    pub reason_category: ReasonCategory,
    /// Why, in at least three words, as for a listening.
    #[schema(
        min_length = 15,
        max_length = 2000,
        pattern = r"^[ \n\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+([ \n\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+){2,}[ \n\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub reason: String,
    /// The medium, e.g. "encrypted USB stick 4411".
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub medium: String,
    pub recipient_kind: RecipientKind,
    #[schema(
        min_length = 1,
        max_length = 300,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub recipient: String,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub legal_basis: String,
}

/// One appended line of a processing memo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MemoEntry {
    pub id: String,
    pub kind: MemoEntryKind,
    pub recipient_kind: RecipientKind,
    pub recipient: String,
    pub legal_basis: String,
    pub disclosed: String,
    pub medium: Option<String>,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A processing memo (CA-6): who listened, why and when, and what followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProcessingMemo {
    pub id: String,
    pub contact_id: String,
    pub listener_id: String,
    pub reason_category: ReasonCategory,
    pub reason: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub entries: Vec<MemoEntry>,
}
