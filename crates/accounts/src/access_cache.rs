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
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use diesel::prelude::*;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::access_version;
use time::PrimitiveDateTime;

use crate::Principal;

/// Beyond this many tokens the cache starts over: a bound on memory, not a policy.
const MAX_ENTRIES: usize = 65_536;

/// Shared by the requests of one server process; cheap to reach through an `Arc`.
#[derive(Debug)]
pub struct AccessCache {
    principals: Mutex<HashMap<Key, Entry>>,
    /// Registrars' and providers' kind and strong-authentication rule, by organisation id.
    organisations: Kept<String, Option<OrganisationAccess>>,
    /// Accounts' service-area rights with their validity, by (account, registrar).
    area_rights: Kept<(String, String), Arc<Vec<AreaRight>>>,
    /// The highest access version any request of this process has read from the database: what
    /// organisations and service-area rights are kept under.
    latest_version: AtomicI64,
}

/// Answers by key, each with the access version it was read under.
type Kept<K, V> = Mutex<HashMap<K, (i64, V)>>;

/// No version read yet: nothing kept is used, and nothing is kept.
const UNKNOWN_VERSION: i64 = i64::MIN;

impl Default for AccessCache {
    fn default() -> Self {
        Self {
            principals: Mutex::default(),
            organisations: Mutex::default(),
            area_rights: Mutex::default(),
            latest_version: AtomicI64::new(UNKNOWN_VERSION),
        }
    }
}

/// What an access decision needs of an organisation (AX-2, AX-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganisationAccess {
    /// `registrar`, `provider` or `platform`.
    pub kind: String,
    pub strong_authentication_required: bool,
}

/// One service-area right of an account: the area's service types and when the right holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaRight {
    pub service_type: String,
    pub valid_from: PrimitiveDateTime,
    pub valid_until: Option<PrimitiveDateTime>,
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
    // Every authenticated request reads it.
    rekisteri_db::on_backend!(conn, |c| access_version::table
        .find(1)
        .select(access_version::version)
        .first(c))
}

impl AccessCache {
    /// Records a version read from the database; versions only grow, and so does this.
    pub fn observe(&self, version: i64) {
        self.latest_version.fetch_max(version, Ordering::AcqRel);
    }

    /// The highest access version this process has read.
    pub fn latest_version(&self) -> i64 {
        self.latest_version.load(Ordering::Acquire)
    }

    /// `load`'s answer for `key`, kept under the latest access version. The version is taken
    /// before `load` reads, so what is kept is never older than the version it is kept under;
    /// every request reads the version (authenticating its token, [`crate::authenticate_bearer`])
    /// before its work, so what is used is never older than the request.
    pub(crate) fn remembered<K, V, E>(
        map: &Kept<K, V>,
        version: i64,
        key: K,
        load: impl FnOnce() -> Result<V, E>,
        keep: impl FnOnce(&V) -> bool,
    ) -> Result<V, E>
    where
        K: Hash + Eq,
        V: Clone,
    {
        if version == UNKNOWN_VERSION {
            return load();
        }
        if let Ok(kept) = map.lock()
            && let Some((kept_version, value)) = kept.get(&key)
            && *kept_version == version
        {
            return Ok(value.clone());
        }
        let value = load()?;
        if keep(&value)
            && let Ok(mut kept) = map.lock()
        {
            if kept.len() >= MAX_ENTRIES {
                kept.clear();
            }
            kept.insert(key, (version, value.clone()));
        }
        Ok(value)
    }

    /// An organisation's kind and strong-authentication rule; `None` if there is none by that id.
    pub fn organisation_access(
        &self,
        conn: &mut DbConnection,
        organisation_id: &str,
    ) -> QueryResult<Option<OrganisationAccess>> {
        use rekisteri_db::schema::organisations;
        Self::remembered(
            &self.organisations,
            self.latest_version(),
            organisation_id.to_owned(),
            || {
                organisations::table
                    .find(organisation_id)
                    .select((organisations::kind, organisations::strong_authentication_required))
                    .first::<(String, bool)>(conn)
                    .optional()
                    .map(|found| {
                        found.map(|(kind, strong_authentication_required)| OrganisationAccess {
                            kind,
                            strong_authentication_required,
                        })
                    })
            },
            // An organisation created since is not covered by the access version: absence is
            // never kept.
            Option::is_some,
        )
    }

    /// [`Principal::usage_log_reach`], the kind of the principal's organisation read through the
    /// cache; the registrar's own auditors need no statement.
    pub fn usage_log_reach(
        &self,
        conn: &mut DbConnection,
        principal: &Principal,
        registrar_id: &str,
    ) -> QueryResult<Option<crate::UsageLogReach>> {
        if principal.audits_registrar(registrar_id) || !principal.can(crate::Permission::ReadRegistrarAudit) {
            return Ok(principal.usage_log_reach(registrar_id, None));
        }
        let kind = self
            .organisation_access(conn, &principal.organisation_id)?
            .and_then(|o| crate::OrganisationKind::parse(&o.kind));
        Ok(principal.usage_log_reach(registrar_id, kind))
    }

    /// The service types `account_id` reaches in `registrar_id` through the service-area rights
    /// in force at `at` (AX-4), in code order.
    pub fn service_types_in_force(
        &self,
        conn: &mut DbConnection,
        account_id: &str,
        registrar_id: &str,
        at: PrimitiveDateTime,
    ) -> QueryResult<Vec<String>> {
        let rights = Self::remembered(
            &self.area_rights,
            self.latest_version(),
            (account_id.to_owned(), registrar_id.to_owned()),
            || crate::service_areas::area_rights(conn, account_id, registrar_id).map(Arc::new),
            |_| true,
        )?;
        let mut types: Vec<String> = rights
            .iter()
            .filter(|r| r.valid_from <= at && r.valid_until.is_none_or(|until| until > at))
            .map(|r| r.service_type.clone())
            .collect();
        types.sort_unstable();
        types.dedup();
        Ok(types)
    }

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
