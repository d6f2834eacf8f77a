//! The principals of recently seen tokens, kept under the access version they were read at
//! (PL-12).
//!
//! Authenticating a session token reads the session, the account and the account's rights in
//! force: five statements, more than the rest of an audited read. A principal read once is kept
//! here with the `access_version` of the database at that moment and the instant until which
//! nothing time-based can change it (the session's expiry or idle limit, the next start or end
//! of a right, the next minute's `last_seen_at` update). A request uses it only while both hold:
//! one statement reads the version, and triggers on every table authentication reads move the
//! version on. So a right that ends, an account that is closed or a session that is ended stops
//! working on the next request of every server process (AC-11), exactly as without the cache.

use std::collections::HashMap;
use std::sync::Mutex;

use diesel::prelude::*;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::access_version;
use time::PrimitiveDateTime;

use crate::Principal;

/// Beyond this many tokens the cache starts over: a bound on memory, not a policy.
const MAX_ENTRIES: usize = 65_536;

/// Shared by the requests of one server process; cheap to reach through an `Arc`.
#[derive(Debug, Default)]
pub struct AccessCache {
    principals: Mutex<HashMap<Key, Entry>>,
}

#[derive(Debug, Hash, PartialEq, Eq)]
struct Key {
    token_hash: [u8; 32],
    on_behalf_of: Option<String>,
}

impl Key {
    fn new(token_hash: [u8; 32], on_behalf_of: Option<&str>) -> Self {
        Self {
            token_hash,
            on_behalf_of: on_behalf_of.map(str::to_owned),
        }
    }
}

#[derive(Debug)]
struct Entry {
    version: i64,
    read_at: PrimitiveDateTime,
    valid_until: PrimitiveDateTime,
    principal: Principal,
}

/// The database's current access version.
pub fn current_version(conn: &mut DbConnection) -> QueryResult<i64> {
    access_version::table
        .find(1)
        .select(access_version::version)
        .first(conn)
}

impl AccessCache {
    /// The principal kept for the token, if it was read at `version` and nothing time-based has
    /// changed since (a clock that went back counts as a change).
    pub(crate) fn get(
        &self,
        token_hash: [u8; 32],
        on_behalf_of: Option<&str>,
        version: i64,
        at: PrimitiveDateTime,
    ) -> Option<Principal> {
        let principals = self.principals.lock().ok()?;
        principals
            .get(&Key::new(token_hash, on_behalf_of))
            .filter(|e| e.version == version && e.read_at <= at && at < e.valid_until)
            .map(|e| e.principal.clone())
    }

    pub(crate) fn put(
        &self,
        token_hash: [u8; 32],
        on_behalf_of: Option<&str>,
        version: i64,
        read_at: PrimitiveDateTime,
        valid_until: PrimitiveDateTime,
        principal: &Principal,
    ) {
        if valid_until <= read_at {
            return;
        }
        // A poisoned lock means a panic elsewhere; the cache is then simply not used.
        let Ok(mut principals) = self.principals.lock() else {
            return;
        };
        if principals.len() >= MAX_ENTRIES {
            principals.clear();
        }
        principals.insert(
            Key::new(token_hash, on_behalf_of),
            Entry {
                version,
                read_at,
                valid_until,
                principal: principal.clone(),
            },
        );
    }
}
