//! Whose data a record is: for what a response discloses (the usage entry of an idempotent
//! replay, PL-2, AU-1).

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{care_team_members, clients, proxies, service_events, services};

use crate::ClientsError;

/// The blind index of the person that record `data_id` of kind `data_kind` (`client`,
/// `service`, `service_event`, `proxy`, `care_team_member`) of the registrar is about; `None` for another kind or a record
/// that is not there (or anonymised).
pub fn subject_of(
    conn: &mut DbConnection,
    registrar_id: &str,
    data_kind: &str,
    data_id: &str,
) -> Result<Option<[u8; 32]>, ClientsError> {
    let client_id: Option<String> = match data_kind {
        "client" => Some(data_id.to_owned()),
        "service" => services::table
            .filter(services::registrar_id.eq(registrar_id))
            .filter(services::id.eq(data_id))
            .select(services::client_id)
            .first(conn)
            .optional()?,
        "service_event" => service_events::table
            .filter(service_events::registrar_id.eq(registrar_id))
            .filter(service_events::id.eq(data_id))
            .select(service_events::client_id)
            .first(conn)
            .optional()?,
        "proxy" => proxies::table
            .filter(proxies::registrar_id.eq(registrar_id))
            .filter(proxies::id.eq(data_id))
            .select(proxies::client_id)
            .first(conn)
            .optional()?,
        "care_team_member" => care_team_members::table
            .filter(care_team_members::registrar_id.eq(registrar_id))
            .filter(care_team_members::id.eq(data_id))
            .select(care_team_members::client_id)
            .first(conn)
            .optional()?,
        _ => None,
    };
    let Some(client_id) = client_id else { return Ok(None) };
    let index: Option<Option<Vec<u8>>> = clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::id.eq(client_id))
        .select(clients::subject_index)
        .first(conn)
        .optional()?;
    Ok(index.flatten().and_then(|i| i.as_slice().try_into().ok()))
}

/// A record whose creation hands a person's data back to the caller: an idempotent replay of
/// its 201 (PL-2) is logged again, under the permission the write needed.
pub trait CreatedRecord {
    /// The permission the write needed.
    const PERMISSION: Permission;
    /// The data kind the replay's usage entry names.
    const DATA_KIND: &'static str;
    fn record_id(&self) -> &str;
    /// Whose data the record is, as [`subject_of`] looks it up: a data kind and an id.
    fn subject_key(&self) -> (&'static str, &str);
}

/// A record just created, with its person's blind index when the write had it in hand, so that
/// [`written`] need not look it up again (two round trips after a service event's commit).
pub struct Created<R> {
    pub record: R,
    subject_index: Option<Option<[u8; 32]>>,
}

impl<R> Created<R> {
    /// `record`, the data of the person with `subject_index` (`None`: of no one on file).
    pub fn of_subject(record: R, subject_index: Option<[u8; 32]>) -> Self {
        Self {
            record,
            subject_index: Some(subject_index),
        }
    }

    /// `record`, whose person [`written`] looks up.
    pub fn looked_up(record: R) -> Self {
        Self {
            record,
            subject_index: None,
        }
    }
}

/// What a creating write returns: its record, with or without the person's index in hand.
pub trait IntoCreated {
    type Record: CreatedRecord;
    fn into_created(self) -> Created<Self::Record>;
}

impl<R: CreatedRecord> IntoCreated for Created<R> {
    type Record = R;
    fn into_created(self) -> Created<R> {
        self
    }
}

/// What creating `created.record` disclosed (see [`CreatedRecord`]).
pub fn written<R: CreatedRecord>(
    conn: &mut DbConnection,
    registrar_id: &str,
    created: &Created<R>,
) -> Result<rekisteri_audit::Written, ClientsError> {
    let record = &created.record;
    let subject_index = match created.subject_index {
        Some(known) => known,
        None => {
            let (kind, id) = record.subject_key();
            subject_of(conn, registrar_id, kind, id)?
        }
    };
    Ok(rekisteri_audit::Written {
        permission: R::PERMISSION.as_str(),
        subject_index,
        data_kind: R::DATA_KIND,
        data_id: record.record_id().to_owned(),
    })
}

/// Implements [`CreatedRecord`] for a record type with an `id`: its permission, its data kind, and
/// the person it is the data of, as a subject kind and the field holding that subject's id (the
/// record's own `id` unless named).
#[macro_export]
macro_rules! created_record {
    ($type:ty, $permission:expr, $data_kind:literal, $subject_kind:literal) => {
        $crate::created_record!($type, $permission, $data_kind, $subject_kind, id);
    };
    ($type:ty, $permission:expr, $data_kind:literal, $subject_kind:literal, $subject_id:ident) => {
        impl $crate::CreatedRecord for $type {
            const PERMISSION: ::rekisteri_accounts::Permission = $permission;
            const DATA_KIND: &'static str = $data_kind;
            fn record_id(&self) -> &str {
                &self.id
            }
            fn subject_key(&self) -> (&'static str, &str) {
                ($subject_kind, &self.$subject_id)
            }
        }
        impl $crate::IntoCreated for $type {
            type Record = $type;
            fn into_created(self) -> $crate::Created<$type> {
                $crate::Created::looked_up(self)
            }
        }
    };
}

crate::created_record!(crate::Client, Permission::WriteClients, "client", "client");
crate::created_record!(crate::Service, Permission::WriteClients, "service", "service");
crate::created_record!(
    crate::ServiceEvent,
    Permission::RecordServiceEvents,
    "service_event",
    "service_event"
);
crate::created_record!(crate::Proxy, Permission::WriteClients, "proxy", "proxy");
crate::created_record!(
    crate::CareTeamMember,
    Permission::WriteClients,
    "care_team",
    "care_team_member"
);
