//! Reading the logs (AU-6): a registrar's usage and disclosure entries and the security events,
//! newest first, filtered, paged with a cursor. A registrar's entries are one chain, so its
//! cursor is a sequence number; security events span chains and page by time.

use diesel::prelude::*;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{disclosure_log, security_events, usage_log};
use time::PrimitiveDateTime;

use crate::writer::{DisclosureRow, SecurityRow, UsageRow};
use crate::{LogKind, chain_id};

/// The largest page a query returns.
pub const MAX_PAGE: i64 = 1000;

/// Filters of a log query; every one is optional. `to` is exclusive.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Entries about one person: the indexes of their identity code under every blind-index
    /// key held ([`subject_index_candidates`]), since an entry keeps the index it was written
    /// with through a key rotation (the logs are append-only).
    pub subject_candidates: Option<Vec<Vec<u8>>>,
    /// Entries of one user (usage: the actor; disclosure: the discloser; security: the actor).
    pub actor_id: Option<String>,
    /// Usage: the data kind; disclosure: the recipient kind; security: the event type.
    pub kind: Option<String>,
    pub from: Option<PrimitiveDateTime>,
    pub to: Option<PrimitiveDateTime>,
    /// Security events of one organisation (`platform` for the platform's own chain).
    pub organisation_id: Option<String>,
    /// Usage: the entries whose log controller is this organisation, the uses its own staff
    /// and systems made in the registrar's register (AU-1).
    pub log_controller_id: Option<String>,
}

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Entries before this sequence number of the registrar's chain.
    Seq(i64),
    /// Security events before this position in time order.
    Time {
        occurred_at: PrimitiveDateTime,
        chain_id: String,
        seq: i64,
    },
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more entries match: pass it back for the next page.
    pub next: Option<Cursor>,
}

fn finish<T>(mut items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> Cursor) -> Page<T> {
    let more = items.len() as i64 > limit;
    items.truncate(limit.max(0) as usize);
    let next = if more { items.last().map(cursor_of) } else { None };
    Page { items, next }
}

fn clamp(limit: i64) -> i64 {
    limit.clamp(1, MAX_PAGE)
}

/// Every entry a paged log query returns, page after page: for a reader that needs them all
/// (the right-of-access report).
pub fn all_pages<T>(mut page_at: impl FnMut(Option<&Cursor>) -> QueryResult<Page<T>>) -> QueryResult<Vec<T>> {
    let mut items = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = page_at(cursor.as_ref())?;
        items.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(items),
        }
    }
}

/// The filters of every log: its actor and kind columns, and the time range.
macro_rules! filter_actor_kind_and_time {
    ($query:ident, $filter:ident, $log:ident, $actor:ident, $kind:ident) => {
        if let Some(actor) = &$filter.actor_id {
            $query = $query.filter($log::$actor.eq(actor.clone()));
        }
        if let Some(kind) = &$filter.kind {
            $query = $query.filter($log::$kind.eq(kind.clone()));
        }
        if let Some(from) = $filter.from {
            $query = $query.filter($log::occurred_at.ge(from));
        }
        if let Some(to) = $filter.to {
            $query = $query.filter($log::occurred_at.lt(to));
        }
    };
}

/// Entries across chains, newest first by time, chain and sequence number: those after the
/// cursor's position in that order.
macro_rules! filter_before_time_cursor {
    ($query:ident, $cursor:ident, $log:ident) => {
        if let Some(Cursor::Time {
            occurred_at,
            chain_id,
            seq,
        }) = $cursor
        {
            $query = $query.filter(
                $log::occurred_at
                    .lt(*occurred_at)
                    .or($log::occurred_at.eq(*occurred_at).and(
                        $log::chain_id
                            .lt(chain_id.clone())
                            .or($log::chain_id.eq(chain_id.clone()).and($log::seq.lt(*seq))),
                    )),
            );
        }
    };
}

/// A query of a registrar's chain in one log (usage or disclosure): one chain, newest first,
/// paged by sequence number, filtered by the subject and the log's actor, kind and time; `$own`
/// adds the log's own filters.
macro_rules! registrar_chain_entries {
    ($(#[$doc:meta])* $name:ident, $log:ident, $log_kind:expr, $row:ty, actor: $actor:ident, kind: $kind:ident,
     |$query:ident, $filter:ident| $own:block) => {
        $(#[$doc])*
        pub fn $name(
            conn: &mut DbConnection,
            registrar_id: &str,
            $filter: &Filter,
            cursor: Option<&Cursor>,
            limit: i64,
        ) -> QueryResult<Page<$row>> {
            let limit = clamp(limit);
            let mut $query = $log::table
                .filter($log::chain_id.eq(chain_id($log_kind, Some(registrar_id))))
                .select($log::all_columns)
                .order($log::seq.desc())
                .limit(limit + 1)
                .into_boxed();
            if let Some(Cursor::Seq(seq)) = cursor {
                $query = $query.filter($log::seq.lt(*seq));
            }
            if let Some(candidates) = &$filter.subject_candidates {
                $query = $query.filter($log::subject_index.eq_any(candidates.clone()));
            }
            $own
            filter_actor_kind_and_time!($query, $filter, $log, $actor, $kind);
            let rows = $query.load::<$row>(conn)?;
            Ok(finish(rows, limit, |r| Cursor::Seq(r.seq)))
        }
    };
}

registrar_chain_entries!(
    /// Usage entries of `registrar_id`'s log.
    usage_entries, usage_log, LogKind::Usage, UsageRow, actor: actor_id, kind: data_kind,
    |query, filter| {
        if let Some(controller) = &filter.log_controller_id {
            query = query.filter(usage_log::log_controller_id.eq(controller.clone()));
        }
    }
);

registrar_chain_entries!(
    /// Disclosure entries of `registrar_id`'s log.
    disclosure_entries, disclosure_log, LogKind::Disclosure, DisclosureRow, actor: discloser_id, kind: recipient_kind,
    |query, filter| {}
);

/// Security events of every chain, or of one organisation's, newest first.
pub fn security_event_entries(
    conn: &mut DbConnection,
    filter: &Filter,
    cursor: Option<&Cursor>,
    limit: i64,
) -> QueryResult<Page<SecurityRow>> {
    let limit = clamp(limit);
    let mut query = security_events::table
        .select(security_events::all_columns)
        .order((
            security_events::occurred_at.desc(),
            security_events::chain_id.desc(),
            security_events::seq.desc(),
        ))
        .limit(limit + 1)
        .into_boxed();
    filter_before_time_cursor!(query, cursor, security_events);
    if let Some(organisation) = &filter.organisation_id {
        query = query.filter(security_events::chain_id.eq(chain_id(
            LogKind::Security,
            Some(organisation.as_str()).filter(|o| *o != "platform"),
        )));
    }
    filter_actor_kind_and_time!(query, filter, security_events, actor_id, event_type);
    let rows = query.load::<SecurityRow>(conn)?;
    Ok(finish(rows, limit, |r| Cursor::Time {
        occurred_at: r.occurred_at,
        chain_id: r.chain_id.clone(),
        seq: r.seq,
    }))
}

/// The sequence numbers of `chain`'s first and last entries in `[from, to)`; `None` when the
/// range holds none. For exports by time range (AU-7).
pub fn seq_range(
    conn: &mut DbConnection,
    kind: LogKind,
    chain: &str,
    from: PrimitiveDateTime,
    to: PrimitiveDateTime,
) -> QueryResult<Option<(i64, i64)>> {
    use diesel::dsl::{max, min};
    // The same query of whichever log's table.
    macro_rules! seq_range_of {
        ($log:ident) => {
            $log::table
                .filter($log::chain_id.eq(chain))
                .filter($log::occurred_at.ge(from).and($log::occurred_at.lt(to)))
                .select((min($log::seq), max($log::seq)))
                .first(conn)?
        };
    }
    let (first, last): (Option<i64>, Option<i64>) = match kind {
        LogKind::Usage => seq_range_of!(usage_log),
        LogKind::Disclosure => seq_range_of!(disclosure_log),
        LogKind::Security => seq_range_of!(security_events),
    };
    Ok(first.zip(last))
}

const SUBJECT_DOMAIN: &str = "data_subject";

/// The blind index under which log entries name a person (by identity code). Every register
/// computes the `subject_index` it stores with this, so that one person's entries are found
/// together. It uses the active blind-index key: look a person up with
/// [`subject_index_candidates`] instead.
pub fn subject_index(keyring: &rekisteri_crypto::Keyring, code: &rekisteri_core::PersonalIdentityCode) -> [u8; 32] {
    rekisteri_crypto::BlindIndex::new(keyring).compute(SUBJECT_DOMAIN, code.reveal().as_bytes())
}

/// Every `subject_index` a row about this person may hold: the index under each blind-index key
/// held, the active key's first. During a key rotation rows written before the switch keep the
/// previous key's index until re-indexed (log entries keep it for good), so a lookup matches
/// them all. One element when one key is held.
pub fn subject_index_candidates(
    keyring: &rekisteri_crypto::Keyring,
    code: &rekisteri_core::PersonalIdentityCode,
) -> Vec<Vec<u8>> {
    rekisteri_crypto::BlindIndex::new(keyring)
        .candidates(SUBJECT_DOMAIN, code.reveal().as_bytes())
        .into_iter()
        .map(|index| index.to_vec())
        .collect()
}

/// One use of a person's data as the person sees it (AU-6): which organisation, when, for what
/// purpose; not who, unless the registrar allows it.
#[derive(Debug, Clone)]
pub struct OwnUsage {
    pub occurred_at: PrimitiveDateTime,
    pub registrar_id: String,
    pub data_kind: String,
    pub purpose: String,
    pub access_basis: String,
}

/// The usage entries about the person in every registrar, newest first; `subject_candidates`
/// are their [`subject_index_candidates`].
pub fn usage_about_person(
    conn: &mut DbConnection,
    subject_candidates: &[Vec<u8>],
    cursor: Option<&Cursor>,
    limit: i64,
) -> QueryResult<Page<OwnUsage>> {
    let limit = clamp(limit);
    let mut query = usage_log::table
        .filter(usage_log::subject_index.eq_any(subject_candidates.to_vec()))
        .filter(usage_log::outcome.eq("used"))
        // The person's own look at this list is logged but not shown back to them.
        .filter(usage_log::data_kind.ne("own_usage_log"))
        .order((
            usage_log::occurred_at.desc(),
            usage_log::chain_id.desc(),
            usage_log::seq.desc(),
        ))
        .select((
            usage_log::occurred_at,
            usage_log::chain_id,
            usage_log::seq,
            usage_log::registrar_id,
            usage_log::data_kind,
            usage_log::purpose,
            usage_log::access_basis,
        ))
        .limit(limit + 1)
        .into_boxed();
    filter_before_time_cursor!(query, cursor, usage_log);
    type Row = (PrimitiveDateTime, String, i64, String, String, String, String);
    let rows: Vec<Row> = query.load(conn)?;
    let page = finish(rows, limit, |r| Cursor::Time {
        occurred_at: r.0,
        chain_id: r.1.clone(),
        seq: r.2,
    });
    Ok(Page {
        next: page.next,
        items: page
            .items
            .into_iter()
            .map(
                |(occurred_at, _, _, registrar_id, data_kind, purpose, access_basis)| OwnUsage {
                    occurred_at,
                    registrar_id,
                    data_kind,
                    purpose,
                    access_basis,
                },
            )
            .collect(),
    })
}
