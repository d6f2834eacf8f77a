//! Writing clients (CL-1..CL-3, CL-8): creating one with their first services and changing one
//! under its version, each in one transaction.

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{DataUse, Outcome};
use rekisteri_core::Refusal;
use rekisteri_db::schema::clients;
use rekisteri_db::{DbConnection, write_transaction_as};

use super::reads::{existing_client, get_client, reachable_client};
use super::row::ClientRow;
use super::validation::{
    check_address, check_email, check_language, check_next_of_kin, check_phone, check_service, check_text,
    is_unique_violation, parse_identity_code,
};
use crate::access::{Reach, decide_for};
use crate::sealed::{JsonFields, RowCipher};
use crate::{
    Client, ClientChanges, ClientRegister, ClientsError, Created, NewClient, Request, at_primitive, format_time, rule,
    validation,
};

/// Creates a client with their first services in one transaction (CL-1): one client per
/// registrar and identity code (409 otherwise, also under concurrent creates).
pub fn create_client(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    new: NewClient,
) -> Result<Created<Client>, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::WriteClients)?;
    match decision.reach {
        Reach::Registrar { .. } => {}
        Reach::Provider { .. } => {
            return Err(ClientsError::Refused(Refusal::Forbidden(
                "clients are created by the registrar, not by providers".into(),
            )));
        }
        Reach::Nothing => return Err(ClientsError::Refused(Refusal::NotFound)),
    }
    let code = parse_identity_code("identity_code", &new.identity_code)?;
    check_text("first_names", &new.first_names, 200)?;
    check_text("surname", &new.surname, 200)?;
    check_language(new.language.as_deref())?;
    check_email("email", new.email.as_deref())?;
    check_phone("phone", new.phone.as_deref())?;
    check_next_of_kin(new.next_of_kin.as_ref())?;
    if let Some(address) = &new.address {
        check_address(address)?;
    }
    for (field, date) in [
        ("moved_in_on", new.moved_in_on),
        ("moved_out_on", new.moved_out_on),
        ("died_on", new.died_on),
    ] {
        if date.is_some_and(|d| d < code.birth_date()) {
            return Err(rule(field, "is before the date of birth"));
        }
    }
    if new.services.is_empty() {
        return Err(validation(
            "services",
            "a client is created with at least one granted service",
        ));
    }
    let mut checked = Vec::with_capacity(new.services.len());
    for (i, service) in new.services.iter().cloned().enumerate() {
        checked.push(check_service(
            conn,
            &decision,
            registrar_id,
            &format!("services[{i}]."),
            service,
        )?);
    }
    let subject = rekisteri_audit::subject_index(&register.keyring, &code);
    // The person may be on file under a blind-index key being rotated out: a duplicate of them
    // is still a duplicate.
    let candidates = rekisteri_audit::subject_index_candidates(&register.keyring, &code);
    let id = rekisteri_core::ids::new_row_id();
    let cipher = RowCipher::new(&register.keyring, "clients", &id);
    // A protection order means no address and no home municipality is stored at all (CL-8).
    let (address, home_municipality) = if new.protection_order {
        (None, None)
    } else {
        (new.address.clone(), new.home_municipality.map(|m| m.to_string()))
    };
    let row = ClientRow {
        registrar_id: registrar_id.to_owned(),
        id: id.clone(),
        subject_index: Some(subject.to_vec()),
        identity_code: Some(cipher.seal("identity_code", code.reveal())?),
        first_names: Some(cipher.seal("first_names", new.first_names.trim())?),
        surname: Some(cipher.seal("surname", new.surname.trim())?),
        gender: new.gender.as_str().to_owned(),
        home_municipality,
        moved_in_on: new.moved_in_on,
        moved_out_on: new.moved_out_on,
        died_on: new.died_on,
        language: new.language.clone(),
        email: cipher.seal_opt("email", new.email.as_deref())?,
        phone: cipher.seal_opt("phone", new.phone.as_deref())?,
        next_of_kin: cipher.seal_json("next_of_kin", new.next_of_kin.as_ref())?,
        address: cipher.seal_json("address", address.as_ref())?,
        protection_order: new.protection_order,
        restricted: false,
        version: 1,
        created_at: at,
        updated_at: at,
        anonymised_at: None,
        temporary_address: None,
        postal_address: None,
        guardianship: None,
        moved_in_on_precision: None,
        moved_out_on_precision: None,
        died_on_precision: None,
    };
    let service_rows = checked
        .into_iter()
        .map(|c| crate::services::new_service_row(register, registrar_id, &id, c, at))
        .collect::<Result<Vec<_>, _>>()?;
    let context = decision.context(&request.audit);
    let (services, views): (Vec<_>, Vec<_>) = service_rows.into_iter().unzip();
    let home_municipality = row.home_municipality.clone();
    // Owned, for the group-commit writer (PL-13), which runs the transaction on its thread.
    let audit = register.audit.clone();
    let (registrar, client_id, taken_indexes) = (registrar_id.to_owned(), id.clone(), candidates.clone());
    let birth_year = code.birth_date().year();
    let result = rekisteri_db::group_commit::write_as(conn, &request.principal.account_id, move |conn| {
        // Under the current blind-index key the register's unique key on (registrar, subject
        // index) refuses a duplicate by itself; only a person filed under a key being rotated
        // out needs looking up first.
        let rotating = taken_indexes.len() > 1;
        if rotating
            && clients::table
                .filter(clients::registrar_id.eq(&registrar))
                .filter(clients::subject_index.eq_any(&taken_indexes))
                .count()
                .get_result::<i64>(conn)?
                > 0
        {
            return Err(ClientsError::ClientExists {
                registrar_id: registrar,
                client_id: None,
            });
        }
        insert_client(conn, &row, birth_year)?;
        for service in &services {
            crate::services::insert_service(conn, service)?;
        }
        let entry = context.usage_entry(
            DataUse {
                subject_index: Some(subject),
                data_kind: "client".into(),
                data_id: Some(client_id),
                outcome: Outcome::Used,
            },
            at,
        );
        audit.append_in(conn, vec![entry], at)?;
        Ok(())
    });
    match result {
        Err(e) if is_unique_violation(&e) || matches!(e, ClientsError::ClientExists { .. }) => {
            return Err(existing_client(
                conn,
                register,
                request,
                &decision,
                registrar_id,
                subject,
                &candidates,
            )?);
        }
        other => other?,
    }
    // The caller sent these values; answering with them opens nothing new.
    let client = Client {
        id: id.clone(),
        registrar_id: registrar_id.to_owned(),
        identity_code: Some(code.reveal().to_owned()),
        first_names: Some(new.first_names.trim().to_owned()),
        surname: Some(new.surname.trim().to_owned()),
        gender: Some(new.gender),
        home_municipality,
        moved_in_on: new.moved_in_on,
        moved_in_on_precision: None,
        moved_out_on: new.moved_out_on,
        moved_out_on_precision: None,
        died_on: new.died_on,
        died_on_precision: None,
        language: new.language,
        email: new.email,
        phone: new.phone,
        next_of_kin: new.next_of_kin,
        address,
        temporary_address: None,
        postal_address: None,
        guardianship: None,
        protection_order: new.protection_order,
        found_by_previous_identity_code: false,
        restricted: false,
        version: 1,
        created_at: format_time(at),
        updated_at: format_time(at),
        services: views,
    };
    Ok(Created::of_subject(client, Some(subject)))
}

fn insert_client(conn: &mut DbConnection, row: &ClientRow, birth_year: i32) -> QueryResult<usize> {
    diesel::insert_into(clients::table)
        .values((
            clients::registrar_id.eq(&row.registrar_id),
            clients::id.eq(&row.id),
            clients::subject_index.eq(&row.subject_index),
            clients::identity_code.eq(&row.identity_code),
            clients::first_names.eq(&row.first_names),
            clients::surname.eq(&row.surname),
            clients::gender.eq(&row.gender),
            clients::home_municipality.eq(&row.home_municipality),
            clients::moved_in_on.eq(row.moved_in_on),
            clients::moved_out_on.eq(row.moved_out_on),
            clients::died_on.eq(row.died_on),
            clients::language.eq(&row.language),
            clients::email.eq(&row.email),
            clients::phone.eq(&row.phone),
            clients::next_of_kin.eq(&row.next_of_kin),
            clients::address.eq(&row.address),
            clients::protection_order.eq(row.protection_order),
            clients::restricted.eq(row.restricted),
            clients::version.eq(row.version),
            clients::created_at.eq(row.created_at),
            clients::updated_at.eq(row.updated_at),
            // The age group's source, kept through anonymisation (CL-14, CL-16).
            clients::birth_year.eq(Some(birth_year)),
        ))
        .execute(conn)
}

/// Changes a client (the registrar's staff who see the client) when `expected_version` is still
/// the stored one (PL-2: 412 otherwise, also under concurrent changes). A protection order
/// erases the stored address and home municipality (CL-8).
pub fn update_client(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    expected_version: i64,
    changes: ClientChanges,
) -> Result<Client, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadClients)?;
    let (row, _) = reachable_client(conn, register, request, &decision, registrar_id, client_id)?;
    if !decision.is_registrar() || !request.principal.can(Permission::WriteClients) {
        return Err(ClientsError::Refused(Refusal::Forbidden(
            "clients are changed by the registrar's staff with write_clients".into(),
        )));
    }
    if row.restricted {
        // Only lifting the restriction is processing that a restriction allows.
        let only_flag = ClientChanges {
            restricted: None,
            ..changes.clone()
        };
        if !is_empty_change(&only_flag) {
            return Err(ClientsError::Restricted);
        }
    }
    if let Some(v) = &changes.first_names {
        check_text("first_names", v, 200)?;
    }
    if let Some(v) = &changes.surname {
        check_text("surname", v, 200)?;
    }
    check_language(changes.language.as_deref())?;
    check_email("email", changes.email.as_deref())?;
    check_phone("phone", changes.phone.as_deref())?;
    check_next_of_kin(changes.next_of_kin.as_ref())?;
    if let Some(address) = &changes.address {
        check_address(address)?;
    }
    let cipher = RowCipher::new(&register.keyring, "clients", client_id);
    let protected = changes.protection_order.unwrap_or(row.protection_order);
    let mut next = row.clone();
    if let Some(v) = &changes.first_names {
        next.first_names = Some(cipher.seal("first_names", v.trim())?);
    }
    if let Some(v) = &changes.surname {
        next.surname = Some(cipher.seal("surname", v.trim())?);
    }
    if let Some(v) = changes.gender {
        next.gender = v.as_str().to_owned();
    }
    next.moved_in_on = changes.moved_in_on.or(row.moved_in_on);
    next.moved_out_on = changes.moved_out_on.or(row.moved_out_on);
    next.died_on = changes.died_on.or(row.died_on);
    // A date written through the API is a full date (VT-4).
    if changes.moved_in_on.is_some() {
        next.moved_in_on_precision = None;
    }
    if changes.moved_out_on.is_some() {
        next.moved_out_on_precision = None;
    }
    if changes.died_on.is_some() {
        next.died_on_precision = None;
    }
    if changes.language.is_some() {
        next.language = changes.language.clone();
    }
    if changes.email.is_some() {
        next.email = cipher.seal_opt("email", changes.email.as_deref())?;
    }
    if changes.phone.is_some() {
        next.phone = cipher.seal_opt("phone", changes.phone.as_deref())?;
    }
    if changes.next_of_kin.is_some() {
        next.next_of_kin = cipher.seal_json("next_of_kin", changes.next_of_kin.as_ref())?;
    }
    if protected {
        next.address = None;
        next.temporary_address = None;
        next.postal_address = None;
        next.home_municipality = None;
    } else {
        if changes.address.is_some() {
            next.address = cipher.seal_json("address", changes.address.as_ref())?;
        }
        if let Some(m) = changes.home_municipality {
            next.home_municipality = Some(m.to_string());
        }
    }
    next.protection_order = protected;
    next.restricted = changes.restricted.unwrap_or(row.restricted);
    let context = decision.context(&request.audit);
    write_transaction_as(conn, &request.principal.account_id, |conn| {
        let updated = rekisteri_db::kept_update(
            clients::table,
            (
                clients::first_names.eq(&next.first_names),
                clients::surname.eq(&next.surname),
                clients::gender.eq(&next.gender),
                clients::home_municipality.eq(&next.home_municipality),
                clients::moved_in_on.eq(next.moved_in_on),
                clients::moved_out_on.eq(next.moved_out_on),
                clients::died_on.eq(next.died_on),
                clients::language.eq(&next.language),
                clients::email.eq(&next.email),
                clients::phone.eq(&next.phone),
                clients::next_of_kin.eq(&next.next_of_kin),
                clients::address.eq(&next.address),
                clients::temporary_address.eq(&next.temporary_address),
                clients::postal_address.eq(&next.postal_address),
                clients::moved_in_on_precision.eq(&next.moved_in_on_precision),
                clients::moved_out_on_precision.eq(&next.moved_out_on_precision),
                clients::died_on_precision.eq(&next.died_on_precision),
                clients::protection_order.eq(next.protection_order),
                clients::restricted.eq(next.restricted),
                clients::version.eq(clients::version + 1),
                clients::updated_at.eq(at),
            ),
            clients::registrar_id
                .eq(registrar_id)
                .and(clients::id.eq(client_id))
                .and(clients::version.eq(expected_version)),
        )
        .execute(conn)?;
        if updated == 0 {
            return Err(ClientsError::VersionMismatch);
        }
        if protected && !row.protection_order {
            // The order purges the old address from the history too, the update's own row
            // included (CL-8).
            rekisteri_db::history::redact_protected_address(conn, client_id)?;
        }
        let entry = context.usage_entry(row.used(), at);
        register.audit.append_in(conn, vec![entry], at)?;
        Ok(())
    })?;
    get_client(conn, register, request, registrar_id, client_id)
}

fn is_empty_change(changes: &ClientChanges) -> bool {
    let ClientChanges {
        first_names,
        surname,
        gender,
        home_municipality,
        moved_in_on,
        moved_out_on,
        died_on,
        language,
        email,
        phone,
        next_of_kin,
        address,
        protection_order,
        restricted,
    } = changes;
    first_names.is_none()
        && surname.is_none()
        && gender.is_none()
        && home_municipality.is_none()
        && moved_in_on.is_none()
        && moved_out_on.is_none()
        && died_on.is_none()
        && language.is_none()
        && email.is_none()
        && phone.is_none()
        && next_of_kin.is_none()
        && address.is_none()
        && protection_order.is_none()
        && restricted.is_none()
}
