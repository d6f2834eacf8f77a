//! Care teams (AX-5): who is on the team of a client's case, in which service unit, for which
//! days. A professional's care relationship with a client is a membership valid today in a
//! service unit the professional works in today; every change is logged (usage log and the
//! change history).

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{DataUse, Outcome};
use rekisteri_core::Refusal;
use rekisteri_db::schema::{care_team_members, services};
use rekisteri_db::{DbBackend, DbConnection, write_transaction_as};
use time::{Date, PrimitiveDateTime};

use crate::access::{CareGate, Decision, Reach, decide_for};
use crate::clients::{deny, ensure_not_restricted, reachable_client};
use crate::{
    CareTeamMember, CareTeamMemberChanges, ClientRegister, ClientsError, NewCareTeamMember, Request, at_primitive,
    format_time, rule, validation,
};

type MemberRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Date,
    Option<Date>,
    i64,
    PrimitiveDateTime,
    PrimitiveDateTime,
);

macro_rules! member_columns {
    () => {
        (
            care_team_members::id,
            care_team_members::client_id,
            care_team_members::account_id,
            care_team_members::service_unit_id,
            care_team_members::team_role,
            care_team_members::valid_from,
            care_team_members::valid_until,
            care_team_members::version,
            care_team_members::created_at,
            care_team_members::updated_at,
        )
    };
}

fn view(row: MemberRow) -> CareTeamMember {
    let (id, client_id, account_id, service_unit_id, team_role, valid_from, valid_until, version, created, updated) =
        row;
    CareTeamMember {
        id,
        client_id,
        account_id,
        service_unit_id,
        team_role,
        valid_from,
        valid_until,
        version,
        created_at: format_time(created),
        updated_at: format_time(updated),
    }
}

/// Whether the gate's professional has a care relationship with the client today.
pub(crate) fn has_care_relationship(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
    gate: &CareGate,
) -> Result<bool, ClientsError> {
    let found: i64 = memberships_in_force(registrar_id, gate)
        .filter(care_team_members::client_id.eq(client_id))
        .count()
        .get_result(conn)?;
    Ok(found > 0)
}

/// The clients the gate's professional has a care relationship with today.
pub(crate) fn care_team_clients(
    conn: &mut DbConnection,
    registrar_id: &str,
    gate: &CareGate,
) -> Result<Vec<String>, ClientsError> {
    Ok(memberships_in_force(registrar_id, gate)
        .select(care_team_members::client_id)
        .distinct()
        .load(conn)?)
}

/// The care-team memberships of the gate's professional in its service units that are in force
/// on the gate's day.
fn memberships_in_force<'a>(registrar_id: &'a str, gate: &'a CareGate) -> care_team_members::BoxedQuery<'a, DbBackend> {
    care_team_members::table
        .filter(care_team_members::registrar_id.eq(registrar_id))
        .filter(care_team_members::account_id.eq(&gate.account_id))
        .filter(care_team_members::service_unit_id.eq_any(&gate.service_unit_ids))
        .filter(care_team_members::valid_from.le(gate.today))
        .filter(
            care_team_members::valid_until
                .is_null()
                .or(care_team_members::valid_until.ge(gate.today)),
        )
        .into_boxed()
}

fn care_team_use(subject: Option<[u8; 32]>, client_id: &str) -> DataUse {
    DataUse {
        subject_index: subject,
        data_kind: "care_team".into(),
        data_id: Some(client_id.to_owned()),
        outcome: Outcome::Used,
    }
}

/// Every membership of the client's care team, ended ones included.
pub(crate) fn members_of(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
) -> Result<Vec<CareTeamMember>, ClientsError> {
    let rows: Vec<MemberRow> = care_team_members::table
        .filter(care_team_members::registrar_id.eq(registrar_id))
        .filter(care_team_members::client_id.eq(client_id))
        .order((care_team_members::valid_from, care_team_members::id))
        .select(member_columns!())
        .load(conn)?;
    Ok(rows.into_iter().map(view).collect())
}

/// The care team of a client's case, for whoever reaches the client.
pub fn list_care_team(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<Vec<CareTeamMember>, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let (client, _) = reachable_client(conn, register, request, &decision, registrar_id, client_id)?;
    ensure_not_restricted(&client)?;
    let members = members_of(conn, registrar_id, client_id)?;
    register
        .audit
        .read_personal_data(conn, &decision.context(&request.audit), at, |_| {
            Ok::<_, ClientsError>((members, vec![care_team_use(client.subject(), client_id)]))
        })
}

/// The registrar's staff who keep the client (write_clients, within their service areas) keep
/// its care team; a provider's users see the team but do not change it.
fn team_keeper(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<(Decision, crate::clients::ClientRow), ClientsError> {
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let (client, _) = reachable_client(conn, register, request, &decision, registrar_id, client_id)?;
    if !matches!(decision.reach, Reach::Registrar { .. })
        || decision.care.is_some()
        || !request.principal.can(Permission::WriteClients)
    {
        return Err(ClientsError::Refused(Refusal::Forbidden(
            "care teams are kept by the registrar's staff with write_clients".into(),
        )));
    }
    ensure_not_restricted(&client)?;
    Ok((decision, client))
}

fn check_dates(valid_from: Date, valid_until: Option<Date>) -> Result<(), ClientsError> {
    if valid_until.is_some_and(|until| until < valid_from) {
        return Err(rule("valid_until", "must be on or after valid_from"));
    }
    Ok(())
}

fn check_team_role(team_role: Option<&str>) -> Result<(), ClientsError> {
    if let Some(role) = team_role
        && (role.trim().is_empty() || role.chars().count() > 100 || role.chars().any(char::is_control))
    {
        return Err(validation("team_role", "must be 1-100 characters"));
    }
    Ok(())
}

/// Adds a professional to the client's care team. The account must belong to the registrar or
/// to a provider of one of the client's services, and the service unit to the account's
/// organisation.
pub fn add_care_team_member(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    new: NewCareTeamMember,
) -> Result<CareTeamMember, ClientsError> {
    let at = at_primitive(request.now);
    let (decision, client) = team_keeper(conn, register, request, registrar_id, client_id)?;
    check_dates(new.valid_from, new.valid_until)?;
    check_team_role(new.team_role.as_deref())?;
    let Some(organisation) = rekisteri_accounts::directory::open_account_organisation(conn, &new.account_id)? else {
        return Err(rule("account_id", "is not an open account"));
    };
    if organisation != registrar_id {
        let serves: i64 = services::table
            .filter(services::registrar_id.eq(registrar_id))
            .filter(services::client_id.eq(client_id))
            .filter(services::provider_id.eq(&organisation))
            .count()
            .get_result(conn)?;
        if serves == 0 {
            return Err(validation(
                "account_id",
                "belongs neither to the registrar nor to a provider of the client's services",
            ));
        }
    }
    let unit_of = rekisteri_accounts::directory::unit_organisation(conn, &new.service_unit_id)?;
    if unit_of.as_deref() != Some(organisation.as_str()) {
        return Err(validation(
            "service_unit_id",
            "is not a service unit of the account's organisation",
        ));
    }
    let id = rekisteri_core::ids::new_row_id();
    let context = decision.context(&request.audit);
    let written = write_transaction_as(conn, &request.principal.account_id, |conn| {
        if !crate::lifecycle::hold_client_against_anonymisation(conn, registrar_id, client_id)? {
            return Ok(false);
        }
        diesel::insert_into(care_team_members::table)
            .values((
                care_team_members::registrar_id.eq(registrar_id),
                care_team_members::id.eq(&id),
                care_team_members::client_id.eq(client_id),
                care_team_members::account_id.eq(&new.account_id),
                care_team_members::service_unit_id.eq(&new.service_unit_id),
                care_team_members::team_role.eq(new.team_role.as_deref().map(str::trim)),
                care_team_members::valid_from.eq(new.valid_from),
                care_team_members::valid_until.eq(new.valid_until),
                care_team_members::added_by.eq(&request.principal.account_id),
                care_team_members::version.eq(1_i64),
                care_team_members::created_at.eq(at),
                care_team_members::updated_at.eq(at),
            ))
            .execute(conn)?;
        let entry = context.usage_entry(care_team_use(client.subject(), client_id), at);
        register.audit.append_in(conn, vec![entry], at)?;
        Ok::<_, ClientsError>(true)
    })?;
    if !written {
        // Anonymised since it was checked above.
        return Err(deny(conn, register, request, client.subject(), "client", client_id));
    }
    Ok(CareTeamMember {
        id,
        client_id: client_id.to_owned(),
        account_id: new.account_id,
        service_unit_id: new.service_unit_id,
        team_role: new.team_role.map(|r| r.trim().to_owned()),
        valid_from: new.valid_from,
        valid_until: new.valid_until,
        version: 1,
        created_at: format_time(at),
        updated_at: format_time(at),
    })
}

fn load_member(
    conn: &mut DbConnection,
    registrar_id: &str,
    client_id: &str,
    member_id: &str,
) -> Result<MemberRow, ClientsError> {
    care_team_members::table
        .filter(care_team_members::registrar_id.eq(registrar_id))
        .filter(care_team_members::client_id.eq(client_id))
        .filter(care_team_members::id.eq(member_id))
        .select(member_columns!())
        .first(conn)
        .optional()?
        .ok_or(ClientsError::Refused(Refusal::NotFound))
}

/// Changes a membership's role or dates (ending it early is a new `valid_until`), when
/// `expected_version` is still the stored one (412 otherwise).
#[allow(clippy::too_many_arguments, reason = "one request's parts, all needed")]
pub fn update_care_team_member(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    member_id: &str,
    expected_version: i64,
    changes: CareTeamMemberChanges,
) -> Result<CareTeamMember, ClientsError> {
    let at = at_primitive(request.now);
    let (decision, client) = team_keeper(conn, register, request, registrar_id, client_id)?;
    let row = load_member(conn, registrar_id, client_id, member_id)?;
    check_team_role(changes.team_role.as_deref())?;
    let valid_from = changes.valid_from.unwrap_or(row.5);
    let valid_until = changes.valid_until.or(row.6);
    check_dates(valid_from, valid_until)?;
    let team_role = changes.team_role.map(|r| r.trim().to_owned()).or(row.4.clone());
    let context = decision.context(&request.audit);
    write_transaction_as(conn, &request.principal.account_id, |conn| {
        let updated = diesel::update(
            care_team_members::table
                .filter(care_team_members::registrar_id.eq(registrar_id))
                .filter(care_team_members::id.eq(member_id))
                .filter(care_team_members::version.eq(expected_version)),
        )
        .set((
            care_team_members::team_role.eq(&team_role),
            care_team_members::valid_from.eq(valid_from),
            care_team_members::valid_until.eq(valid_until),
            care_team_members::version.eq(care_team_members::version + 1),
            care_team_members::updated_at.eq(at),
        ))
        .execute(conn)?;
        if updated == 0 {
            return Err(ClientsError::VersionMismatch);
        }
        let entry = context.usage_entry(care_team_use(client.subject(), client_id), at);
        register.audit.append_in(conn, vec![entry], at)?;
        Ok(())
    })?;
    Ok(view(load_member(conn, registrar_id, client_id, member_id)?))
}

/// Removes a professional from the care team; the change history keeps the membership.
pub fn remove_care_team_member(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    member_id: &str,
) -> Result<(), ClientsError> {
    let at = at_primitive(request.now);
    let (decision, client) = team_keeper(conn, register, request, registrar_id, client_id)?;
    load_member(conn, registrar_id, client_id, member_id)?;
    let context = decision.context(&request.audit);
    write_transaction_as(conn, &request.principal.account_id, |conn| {
        diesel::delete(
            care_team_members::table
                .filter(care_team_members::registrar_id.eq(registrar_id))
                .filter(care_team_members::id.eq(member_id)),
        )
        .execute(conn)?;
        let entry = context.usage_entry(care_team_use(client.subject(), client_id), at);
        register.audit.append_in(conn, vec![entry], at)?;
        Ok::<_, ClientsError>(())
    })
}
