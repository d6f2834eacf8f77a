//! Identifiers of the platform's own resources.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A registrar (rekisterinpitäjä): the organisation that controls a register. Every record of
/// client data belongs to exactly one registrar, and the registrar id is the distribution key
/// when the schema is spread over several PostgreSQL nodes (PL-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegistrarId(Uuid);

impl RegistrarId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for RegistrarId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for RegistrarId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// A new id for a row of a register (a client, a service, an event, a call…): a UUID of
/// version 7, whose leading 48 bits are the creation time in milliseconds, so that the rows of
/// one process sort by creation (guaranteed by `uuid`, also within a millisecond).
///
/// Why not random (version 4): every index keyed by a row id (the primary keys, the services'
/// and events' `client_id`, the change history's `(table_name, row_id)`) then grows at its end
/// and keeps the rows of one period together. With random ids each new row wrote a leaf page
/// somewhere in the whole index, and the anonymisation run, which walks clients in creation
/// order, rewrote nearly every leaf page of the history's index in every batch (PL-15; see
/// `docs/performance.md`). The id reveals when the row was made, which `created_at` says to
/// whoever may read the row anyway; access never rests on an id being unguessable (AX: another
/// registrar's row is 404 whatever its id). Secrets (session ids, tokens) stay random.
pub fn new_row_id() -> String {
    Uuid::now_v7().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_15_row_ids_sort_by_creation_within_a_millisecond_too() {
        let ids: Vec<String> = (0..10_000).map(|_| new_row_id()).collect();
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "ids out of creation order"
        );
        for id in &ids {
            let parsed = Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 7);
            assert_eq!(parsed.hyphenated().to_string(), *id);
        }
    }
}
