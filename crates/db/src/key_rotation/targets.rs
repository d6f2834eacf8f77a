//! The table of what the passes rewrite: every table with sealed values or blind indexes, and how
//! each index is derived, kept in one place so the schema test can hold it to the schema.

/// How the primary key of a table orders its rows for the passes' keyset paging.
#[derive(Debug, Clone, Copy)]
pub(super) enum Second {
    None,
    Text(&'static str),
    BigInt(&'static str),
    Binary(&'static str),
}

/// How a blind index's value is derived from the plaintext it indexes: the same normalisation
/// the lookups apply.
#[derive(Debug, Clone, Copy)]
pub(super) enum Normalise {
    IdentityCode,
    Email,
    AsIs,
    /// The identity code (`henkilotunnus`) inside a staged VTJ change message.
    VtjMessage,
}

impl Normalise {
    pub(super) fn apply(self, plain: &[u8]) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(plain).ok()?;
        let code = |code: &str| {
            rekisteri_core::PersonalIdentityCode::parse(code, rekisteri_core::TemporaryCodesAllowed::Yes)
                .map(|c| c.reveal().as_bytes().to_vec())
                .unwrap_or_else(|_| code.as_bytes().to_vec())
        };
        match self {
            Self::IdentityCode => Some(code(text)),
            Self::Email => Some(text.trim().to_lowercase().into_bytes()),
            Self::AsIs => Some(plain.to_vec()),
            Self::VtjMessage => {
                let message: serde_json::Value = serde_json::from_str(text).ok()?;
                message.get("henkilotunnus")?.as_str().map(code)
            }
        }
    }
}

/// Where a blind index's plaintext comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Source {
    /// A sealed column of the same row (its position in `sealed`).
    Sealed(usize),
    /// The identity code of the client the row names by `client_id`.
    ClientIdentityCode,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Index {
    pub(super) column: &'static str,
    pub(super) domain: &'static str,
    pub(super) source: Source,
    pub(super) normalise: Normalise,
}

/// A table with sealed values or blind indexes.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) name: &'static str,
    pub(super) first: &'static str,
    pub(super) second: Second,
    /// SQL giving the row id the values' encryption context names.
    pub(super) row_id: &'static str,
    pub(super) sealed: &'static [&'static str],
    pub(super) indexes: &'static [Index],
}

const fn subject(source: usize) -> Index {
    Index {
        column: "subject_index",
        domain: "data_subject",
        source: Source::Sealed(source),
        normalise: Normalise::IdentityCode,
    }
}

/// Every table that holds sealed values or blind indexes, except the audit log (see the module
/// comment) and the login throttles (short-lived counters that restart under the new key).
/// `every_sealed_column_is_rotated` holds this list to the schema.
pub(super) const TARGETS: &[Target] = &[
    Target {
        name: "accounts",
        first: "id",
        second: Second::None,
        row_id: "t.id",
        sealed: &["email", "first_name", "surname"],
        indexes: &[Index {
            column: "email_index",
            domain: "account_email",
            source: Source::Sealed(0),
            normalise: Normalise::Email,
        }],
    },
    Target {
        name: "clients",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &[
            "identity_code",
            "first_names",
            "surname",
            "email",
            "phone",
            "next_of_kin",
            "address",
            "temporary_address",
            "postal_address",
            "guardianship",
        ],
        indexes: &[subject(0)],
    },
    Target {
        name: "services",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["additional_info"],
        indexes: &[],
    },
    Target {
        name: "service_events",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["note"],
        indexes: &[],
    },
    Target {
        name: "proxies",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["identity_code", "first_names", "surname", "phone", "email"],
        indexes: &[subject(0)],
    },
    Target {
        name: "idempotency_keys",
        first: "id",
        second: Second::None,
        row_id: "t.id",
        sealed: &["body"],
        indexes: &[],
    },
    Target {
        name: "data_subject_requests",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &[
            "identity_code",
            "requester",
            "details",
            "extension_reason",
            "refusal_reasons",
        ],
        indexes: &[subject(0)],
    },
    Target {
        name: "client_moves",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["identity_code"],
        indexes: &[subject(0)],
    },
    Target {
        name: "case_documents",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["title", "signature", "content"],
        indexes: &[],
    },
    Target {
        name: "security_incidents",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["description", "assessment"],
        indexes: &[],
    },
    Target {
        name: "will_service_outbox",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["payload"],
        indexes: &[],
    },
    Target {
        name: "vtj_staged",
        first: "registrar_id",
        second: Second::BigInt("seq"),
        row_id: "t.registrar_id || '/' || CAST(t.seq AS TEXT)",
        sealed: &["message"],
        indexes: &[Index {
            column: "subject_index",
            domain: "data_subject",
            source: Source::Sealed(0),
            normalise: Normalise::VtjMessage,
        }],
    },
    Target {
        name: "vtj_monitored",
        first: "registrar_id",
        second: Second::Binary("subject_index"),
        row_id: "t.client_id",
        sealed: &[],
        indexes: &[Index {
            column: "subject_index",
            domain: "data_subject",
            source: Source::ClientIdentityCode,
            normalise: Normalise::IdentityCode,
        }],
    },
    Target {
        name: "client_previous_codes",
        first: "registrar_id",
        second: Second::Binary("subject_index"),
        row_id: "t.client_id",
        sealed: &["identity_code"],
        indexes: &[subject(0)],
    },
    Target {
        name: "contacts",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["caller_number", "client_name", "identity_code"],
        indexes: &[
            Index {
                column: "caller_number_index",
                domain: "caller_number",
                source: Source::Sealed(0),
                normalise: Normalise::AsIs,
            },
            subject(2),
        ],
    },
    Target {
        name: "recordings",
        first: "registrar_id",
        second: Second::Text("contact_id"),
        row_id: "t.id",
        sealed: &["data_key"],
        indexes: &[],
    },
    Target {
        name: "processing_memos",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["reason"],
        indexes: &[],
    },
    Target {
        name: "processing_memo_entries",
        first: "registrar_id",
        second: Second::Text("id"),
        row_id: "t.id",
        sealed: &["recipient", "disclosed", "medium", "reason"],
        indexes: &[],
    },
];

/// The pass over the change history's copies of sealed values.
pub const HISTORY: &str = "change_history";

/// The names of every pass, in the order a rotation runs them.
pub fn pass_names() -> Vec<&'static str> {
    TARGETS.iter().map(|t| t.name).chain([HISTORY]).collect()
}

/// The sealed columns of every table the passes cover, for the schema test.
pub fn sealed_columns() -> Vec<(&'static str, &'static str)> {
    TARGETS
        .iter()
        .flat_map(|t| t.sealed.iter().map(move |c| (t.name, *c)))
        .chain(
            TARGETS
                .iter()
                .flat_map(|t| t.indexes.iter().map(move |i| (t.name, i.column))),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::sql::{MAX_INDEXES, MAX_SEALED};
    use super::*;

    #[test]
    fn no_target_has_more_columns_than_a_row_carries() {
        for target in TARGETS {
            assert!(target.sealed.len() <= MAX_SEALED, "{}", target.name);
            assert!(target.indexes.len() <= MAX_INDEXES, "{}", target.name);
        }
    }

    #[test]
    fn normalisation_matches_the_lookups() {
        assert_eq!(
            Normalise::Email.apply(b" Maija.Meikalainen@Example.FI ").unwrap(),
            b"maija.meikalainen@example.fi"
        );
        assert_eq!(
            Normalise::VtjMessage
                .apply(br#"{"henkilotunnus":"131052-308T","x":1}"#)
                .unwrap(),
            b"131052-308T"
        );
        assert_eq!(Normalise::VtjMessage.apply(b"{}"), None);
    }
}
