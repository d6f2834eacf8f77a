//! A citizen's own client records, and the records of those they are a valid proxy for, in
//! every registrar that holds them (CL-9); and the contact fields they may change themselves
//! (CL-10). Registers are never combined: each record is read from its own registrar and logged
//! in that registrar's usage log, with basis `own_data` or `proxy`.

use diesel::prelude::*;
use rekisteri_accounts::Citizen;
use rekisteri_audit::{AccessBasis, ActorKind, AuditContext, NewEntry};
use rekisteri_core::Refusal;
use rekisteri_db::schema::{clients, proxies};
use rekisteri_db::{DbConnection, write_transaction_as};
use time::{Date, OffsetDateTime};

use crate::access::{Decision, Reach};
use crate::clients::{
    ClientRow, check_email, check_next_of_kin, check_phone, client_by_subject, ensure_not_restricted, load_client,
    load_services_of, open_client,
};
use crate::proxies::{ProxyRow, proxy_columns};
use crate::sealed::{JsonFields, RowCipher};
use crate::{ClientRegister, ClientsError, ContactChanges, OwnRecord, RecordRelation, at_primitive};

/// Who asks: the citizen, the request and the moment.
pub struct CitizenRequest<'a> {
    pub citizen: &'a Citizen,
    pub request_id: &'a str,
    pub now: OffsetDateTime,
}

impl CitizenRequest<'_> {
    fn subject(&self, register: &ClientRegister) -> [u8; 32] {
        rekisteri_audit::subject_index(&register.keyring, &self.citizen.identity_code)
    }

    /// What the citizen's records are found by: their index under every blind-index key held.
    fn subject_candidates(&self, register: &ClientRegister) -> Vec<Vec<u8>> {
        rekisteri_audit::subject_index_candidates(&register.keyring, &self.citizen.identity_code)
    }

    /// A citizen at a registrar's own paths, where citizens never have standing (their records
    /// are under /v1/me): refused as any caller without standing is, and the attempt logged in
    /// the registrar's usage log when it exists (AX-4, AX-7). Returns the error to answer with.
    pub fn refuse_at_door(
        &self,
        conn: &mut DbConnection,
        register: &ClientRegister,
        registrar_id: &str,
        purpose: &str,
        target: crate::access::DoorTarget,
    ) -> ClientsError {
        let context = Decision::denied(&self.context(register, registrar_id, AccessBasis::None, purpose));
        crate::access::refuse_at_door(conn, register, &context, target, at_primitive(self.now))
    }

    fn today(&self) -> Date {
        rekisteri_core::helsinki_local(at_primitive(self.now)).date()
    }

    /// The usage-entry context of a read in `registrar_id`'s register on `basis`.
    fn context(
        &self,
        register: &ClientRegister,
        registrar_id: &str,
        basis: AccessBasis,
        purpose: &str,
    ) -> AuditContext {
        let subject = self.subject(register);
        AuditContext {
            registrar_id: registrar_id.to_owned(),
            // A citizen belongs to no organisation: the registrar keeps the entry.
            log_controller_id: registrar_id.to_owned(),
            actor_kind: if basis == AccessBasis::Proxy {
                ActorKind::Proxy
            } else {
                ActorKind::Citizen
            },
            actor_id: citizen_actor(&subject),
            actor_name: None,
            on_behalf_of: None,
            service_unit_oid: None,
            purpose: purpose.to_owned(),
            access_basis: basis,
            special_reason: None,
            request_id: self.request_id.to_owned(),
            calling_system: Some(self.citizen.provider.clone()),
        }
    }
}

/// A citizen's id in logs and change history: a prefix of their index, never the code.
fn citizen_actor(subject: &[u8; 32]) -> String {
    format!("citizen:{}", rekisteri_crypto::to_hex(&subject[..8]))
}

fn own_decision(basis: AccessBasis) -> Decision {
    Decision {
        // The data subject sees the whole record: every field and every service (CL-9).
        reach: Reach::Registrar { service_types: None },
        basis,
        actor_kind: if basis == AccessBasis::Proxy {
            ActorKind::Proxy
        } else {
            ActorKind::Citizen
        },
        care: None,
        special_reason: None,
    }
}

/// The records of `registrar_id` the citizen with these index candidates reaches: their own,
/// and those of clients they are a valid proxy for today.
fn records_in(
    conn: &mut DbConnection,
    registrar_id: &str,
    candidates: &[Vec<u8>],
    today: Date,
) -> Result<Vec<(ClientRow, RecordRelation)>, ClientsError> {
    let mut found = Vec::new();
    if let Some(own) = client_by_subject(conn, registrar_id, candidates)? {
        found.push((own, RecordRelation::Own));
    }
    let standing: Vec<ProxyRow> = proxies::table
        .filter(proxies::registrar_id.eq(registrar_id))
        .filter(proxies::subject_index.eq_any(candidates.to_vec()))
        .filter(proxies::revoked_at.is_null())
        .select(proxy_columns!())
        .load(conn)?;
    for proxy in standing.iter().filter(|p| p.valid_on(today)) {
        if let Some(client) = load_client(conn, registrar_id, &proxy.client_id)?
            && client.anonymised_at.is_none()
        {
            found.push((client, RecordRelation::Proxy));
        }
    }
    Ok(found)
}

fn basis_of(relation: RecordRelation) -> AccessBasis {
    match relation {
        RecordRelation::Own => AccessBasis::OwnData,
        RecordRelation::Proxy => AccessBasis::Proxy,
    }
}

/// Every record the citizen reaches, each logged in its own registrar's usage log before any is
/// handed over (AU-4).
pub fn own_records(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &CitizenRequest<'_>,
) -> Result<Vec<OwnRecord>, ClientsError> {
    let at = at_primitive(request.now);
    let candidates = request.subject_candidates(register);
    let today = request.today();
    let mut found = Vec::new();
    for registrar in rekisteri_accounts::directory::registrars(conn)? {
        for (row, relation) in records_in(conn, &registrar.id, &candidates, today)? {
            let services = load_services_of(conn, &registrar.id, std::slice::from_ref(&row.id))?;
            found.push((registrar.clone(), row, relation, services));
        }
    }
    register.audit.audited_read(conn, |_| {
        let mut records = Vec::with_capacity(found.len());
        let mut entries: Vec<NewEntry> = Vec::with_capacity(found.len());
        for (registrar, row, relation, services) in &found {
            let basis = basis_of(*relation);
            let client = open_client(register, row, services, &own_decision(basis))?;
            let context = request.context(register, &registrar.id, basis, "own client records");
            entries.push(context.usage_entry(row.used(), at));
            records.push(OwnRecord {
                registrar_id: registrar.id.clone(),
                registrar_name: registrar.name.clone(),
                registrar_contacts: registrar.contacts.clone(),
                relation: *relation,
                client,
            });
        }
        Ok::<_, ClientsError>((records, entries))
    })
}

/// Changes the e-mail, phone or next of kin of a record the citizen reaches (CL-10), when
/// `expected_version` is still the stored one (412 otherwise). Any other record is a 404.
pub fn change_own_contact(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &CitizenRequest<'_>,
    client_id: &str,
    expected_version: i64,
    changes: ContactChanges,
) -> Result<OwnRecord, ClientsError> {
    let at = at_primitive(request.now);
    let subject = request.subject(register);
    let candidates = request.subject_candidates(register);
    let today = request.today();
    let mut target = None;
    for registrar in rekisteri_accounts::directory::registrars(conn)? {
        if let Some((row, relation)) = records_in(conn, &registrar.id, &candidates, today)?
            .into_iter()
            .find(|(row, _)| row.id == client_id)
        {
            target = Some((registrar, row, relation));
            break;
        }
    }
    let Some((registrar, row, relation)) = target else {
        return Err(ClientsError::Refused(Refusal::NotFound));
    };
    ensure_not_restricted(&row)?;
    check_email("email", changes.email.as_deref())?;
    check_phone("phone", changes.phone.as_deref())?;
    check_next_of_kin(changes.next_of_kin.as_ref())?;
    let cipher = RowCipher::new(&register.keyring, "clients", &row.id);
    let email = match &changes.email {
        Some(v) => Some(cipher.seal("email", v)?),
        None => row.email.clone(),
    };
    let phone = match &changes.phone {
        Some(v) => Some(cipher.seal("phone", v)?),
        None => row.phone.clone(),
    };
    let next_of_kin = match &changes.next_of_kin {
        Some(v) => cipher.seal_json("next_of_kin", Some(v))?,
        None => row.next_of_kin.clone(),
    };
    let basis = basis_of(relation);
    let context = request.context(register, &registrar.id, basis, "own contact details");
    write_transaction_as(conn, &citizen_actor(&subject), |conn| {
        let updated = diesel::update(
            clients::table
                .filter(clients::registrar_id.eq(&registrar.id))
                .filter(clients::id.eq(client_id))
                .filter(clients::version.eq(expected_version)),
        )
        .set((
            clients::email.eq(&email),
            clients::phone.eq(&phone),
            clients::next_of_kin.eq(&next_of_kin),
            clients::version.eq(clients::version + 1),
            clients::updated_at.eq(at),
        ))
        .execute(conn)?;
        if updated == 0 {
            return Err(ClientsError::VersionMismatch);
        }
        let entry = context.usage_entry(row.used(), at);
        register.audit.append_in(conn, vec![entry], at)?;
        Ok(())
    })?;
    let row = load_client(conn, &registrar.id, client_id)?.ok_or(ClientsError::Refused(Refusal::NotFound))?;
    let services = load_services_of(conn, &registrar.id, std::slice::from_ref(&row.id))?;
    let read_context = request.context(register, &registrar.id, basis, "own contact details");
    register.audit.read_personal_data(conn, &read_context, at, |_| {
        let client = open_client(register, &row, &services, &own_decision(basis))?;
        Ok::<_, ClientsError>((
            OwnRecord {
                registrar_id: registrar.id.clone(),
                registrar_name: registrar.name.clone(),
                registrar_contacts: registrar.contacts.clone(),
                relation,
                client,
            },
            vec![row.used()],
        ))
    })
}
