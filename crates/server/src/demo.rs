//! `rekisteri demo seed`: a small, working register to try the API with (PL-9).
//!
//! Two municipalities as registrars, one provider, a user of every kind and a handful of clients
//! with home-care vouchers and delivered visits, made through the domain crates exactly as the
//! API makes them, so that every change is in the audit trail. Each user is given a random
//! password and logged in; passwords and session tokens are printed to stdout once and never
//! logged. The demo registrars have strong authentication turned off (AX-2), which the output
//! says, so that the printed password sessions reach client data.
//!
//! A second run finds the first demo registrar by its OID and exits 0 without changing anything.

use std::fmt::Display;

use rekisteri_accounts::service_areas::{self, NewServiceArea};
use rekisteri_accounts::{
    AccountsError, NewAccount, NewOrganisation, Organisation, OrganisationKind, Principal, Register, Role,
};
use rekisteri_audit::{AccessBasis, ActorKind, AuditContext};
use rekisteri_clients::{
    Address, ClientRegister, Gender, NewClient, NewService, NewServiceEvent, NextOfKin, Quantity, ServiceKind, Unit,
};
use rekisteri_core::Refusal;
use rekisteri_core::{Clock, MunicipalityCode, Oid};
use rekisteri_db::DbConnection;
use time::{Date, Duration, OffsetDateTime};

use crate::config::Config;
use crate::{Failure, open_runtime, runtime};

/// The OID of the first demo registrar: its presence means the demo has been seeded.
const MARKER_OID: &str = "1.2.246.10.9900001";
/// The client address logins are throttled by (the command line has no peer address).
const LOGIN_ADDRESS: &str = "rekisteri demo seed";

struct DemoMunicipality {
    name: &'static str,
    oid: &'static str,
    /// Statistics Finland's municipality code.
    code: &'static str,
    /// The part of the users' e-mail domain before `.demo.test`.
    domain: &'static str,
    street: &'static str,
    postal_code: &'static str,
    post_office: &'static str,
    clients: [DemoClient; 5],
}

struct DemoClient {
    first_names: &'static str,
    surname: &'static str,
    /// `DDMMYY` of a 20th-century birth date.
    born: &'static str,
    /// Odd for men, even for women, as in real identity codes.
    individual: u16,
}

const fn client(first_names: &'static str, surname: &'static str, born: &'static str, individual: u16) -> DemoClient {
    DemoClient {
        first_names,
        surname,
        born,
        individual,
    }
}

const MUNICIPALITIES: [DemoMunicipality; 2] = [
    DemoMunicipality {
        name: "Demo-Tampere",
        oid: MARKER_OID,
        code: "837",
        domain: "tampere",
        street: "Hämeenkatu",
        postal_code: "33100",
        post_office: "Tampere",
        clients: [
            client("Aino Kaarina", "Virtanen", "120336", 244),
            client("Eino Johannes", "Mäkinen", "030541", 317),
            client("Helmi Sofia", "Nieminen", "250947", 402),
            client("Toivo Olavi", "Laine", "170752", 135),
            client("Elli Marjatta", "Heikkinen", "080829", 286),
        ],
    },
    DemoMunicipality {
        name: "Demo-Nokia",
        oid: "1.2.246.10.9900002",
        code: "536",
        domain: "nokia",
        street: "Pirkkalaistie",
        postal_code: "37100",
        post_office: "Nokia",
        clients: [
            client("Väinö Ilmari", "Koskinen", "221034", 553),
            client("Lempi Annikki", "Järvinen", "140638", 628),
            client("Onni Kalervo", "Lehtonen", "300443", 771),
            client("Saimi Tellervo", "Lehtinen", "050950", 846),
            client("Tauno Armas", "Saarinen", "110231", 199),
        ],
    },
];

const PROVIDER_NAME: &str = "Demo Hoiva Oy";
const PROVIDER_OID: &str = "1.2.246.10.9900003";
const PROVIDER_UNIT_OID: &str = "1.2.246.10.9900003.10.1";
/// The provider's business ID without its check digit, which [`business_id`] computes.
const PROVIDER_BUSINESS_ID_BASE: &str = "9900003";

/// A valid Finnish identity code of a person born on `born` (DDMMYY, 1900s) with this individual
/// number (002-899): the check character is the 9-digit number modulo 31.
fn identity_code(born: &str, individual: u16) -> String {
    let number: u32 = format!("{born}{individual:03}").parse().unwrap_or_default();
    let check = rekisteri_core::identity_code::check_character(number);
    format!("{born}-{individual:03}{check}")
}

/// A Finnish business ID (Y-tunnus) with the check digit of its seven digits, or `None` for the
/// numbers that have no valid check digit (remainder 1).
fn business_id(base: &str) -> Option<String> {
    let weights = [7, 9, 10, 5, 8, 4, 2];
    if base.len() != 7 || !base.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = base.bytes().zip(weights).map(|(b, w)| u32::from(b - b'0') * w).sum();
    let check = match sum % 11 {
        0 => 0,
        1 => return None,
        r => 11 - r,
    };
    Some(format!("{base}-{check}"))
}

/// A random password of 24 base64url characters (144 bits): never a common one.
fn random_password() -> Result<String, String> {
    let token = rekisteri_crypto::random_token().map_err(|e| e.to_string())?;
    Ok(token.chars().take(24).collect())
}

/// One demo user as the table shows it.
pub(crate) struct DemoUser {
    role: Role,
    organisation: String,
    email: String,
    password: String,
    token: String,
    account_id: String,
}

/// What the seed made, for the summary.
struct Seeded {
    users: Vec<DemoUser>,
    registrars: Vec<Organisation>,
    provider: Organisation,
    first_client: (String, String),
    clients: usize,
    events: usize,
    /// Contacts of the call register.
    contacts: usize,
}

/// Adds what was being done to an error of a step.
pub(crate) fn during<E: Display>(what: impl Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

pub(crate) fn seed(config: &Config, json: bool) -> Result<(), Failure> {
    let rt = open_runtime(config)?;
    let register = rt.accounts();
    let clients = ClientRegister {
        keyring: rt.keyring,
        audit: rt.audit,
    };
    let (pool, clock) = (rt.pool, rt.clock);
    let mut conn = pool.get().map_err(runtime)?;
    match rekisteri_accounts::find_organisation(&mut conn, None, MARKER_OID) {
        Ok(existing) if json => {
            return Err(runtime(format!(
                "the demo is already seeded (registrar {}); its tokens were printed when it was seeded",
                existing.id
            )));
        }
        Ok(existing) => {
            println!(
                "The demo is already seeded: registrar {} (OID {MARKER_OID}) is {}. Nothing was changed; \
                 the demo users' passwords and session tokens were printed when it was seeded.",
                existing.name, existing.id
            );
            println!(
                "To seed a new demo, start from an empty database (with the embedded default: stop the \
                 server and remove the data directory)."
            );
            return Ok(());
        }
        Err(AccountsError::Refused(Refusal::NotFound)) => {}
        Err(e) => return Err(runtime(e)),
    }
    let now = || clock.now();
    let stopped = |e: String| {
        runtime(format!(
            "the demo seed stopped part-way ({e}); start again from an empty database"
        ))
    };
    let mut seeded = build(&mut conn, &register, &clients, &now).map_err(stopped)?;
    let calls = rekisteri_calls::CallRegister {
        keyring: clients.keyring.clone(),
        audit: clients.audit.clone(),
    };
    let audio = crate::open_audio(config)?;
    let first = seeded
        .registrars
        .first()
        .ok_or_else(|| stopped("no registrar".into()))?;
    let main_user = seeded
        .users
        .iter()
        .find(|u| u.role == Role::MainUser && u.organisation == first.name)
        .ok_or_else(|| stopped("no main user".into()))?;
    let admin = seeded.users.first().ok_or_else(|| stopped("no admin".into()))?;
    let admin = principal_of(&mut conn, &register, admin, now()).map_err(stopped)?;
    let calls_seeded = crate::demo_calls::seed(
        &mut conn,
        &register,
        &calls,
        &audio,
        &admin,
        first,
        main_user,
        MUNICIPALITIES[0].domain,
        &now,
    )
    .map_err(stopped)?;
    seeded.users.extend(calls_seeded.users);
    seeded.contacts = calls_seeded.contacts;
    if json {
        println!("{}", summary_json(&seeded));
    } else {
        print_summary(&seeded, &config.bind);
    }
    Ok(())
}

/// Logs a demo user in with the password it was just given and keeps the session token.
fn log_in(
    conn: &mut DbConnection,
    register: &Register,
    user: &mut DemoUser,
    now: OffsetDateTime,
) -> Result<(), String> {
    let session = rekisteri_accounts::login(conn, register, &user.email, &user.password, LOGIN_ADDRESS, now)
        .map_err(during(format!("logging {} of {} in", user.role, user.organisation)))?;
    user.token = session.token;
    Ok(())
}

pub(crate) fn principal_of(
    conn: &mut DbConnection,
    register: &Register,
    user: &DemoUser,
    now: OffsetDateTime,
) -> Result<Principal, String> {
    rekisteri_accounts::authenticate(conn, register, &user.token, now)
        .map_err(during(format!("the session of {} of {}", user.role, user.organisation)))
}

/// Invites a user as `actor`, accepts the invitation with a random password and logs it in.
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_user(
    conn: &mut DbConnection,
    register: &Register,
    actor: &Principal,
    organisation: &Organisation,
    role: Role,
    email: String,
    surname: &str,
    service_unit_ids: Vec<String>,
    now: &dyn Fn() -> OffsetDateTime,
) -> Result<DemoUser, String> {
    let what = format!("adding {role} of {}", organisation.name);
    let new = NewAccount {
        email: email.clone(),
        first_name: "Demo".into(),
        surname: surname.into(),
        organisation_id: organisation.id.clone(),
        role,
        service_unit_ids,
    };
    let (account, invitation) =
        rekisteri_accounts::invite(conn, register, Some(actor), new, now()).map_err(during(&what))?;
    let password = random_password()?;
    rekisteri_accounts::accept_invitation(conn, register, &invitation, &password, now()).map_err(during(&what))?;
    let mut user = DemoUser {
        role,
        organisation: organisation.name.clone(),
        email,
        password,
        token: String::new(),
        account_id: account.id,
    };
    log_in(conn, register, &mut user, now())?;
    Ok(user)
}

pub(crate) fn oid(text: &str) -> Result<Oid, String> {
    text.parse().map_err(during(format!("OID {text}")))
}

/// The usage-log context of the demo's own writes of client data: the user who makes them.
pub(crate) fn audit_context(principal: &Principal, registrar_id: &str, purpose: &str, request: usize) -> AuditContext {
    AuditContext {
        registrar_id: registrar_id.to_owned(),
        log_controller_id: principal.organisation_id.clone(),
        actor_kind: ActorKind::Staff,
        actor_id: principal.account_id.clone(),
        actor_name: None,
        on_behalf_of: None,
        service_unit_oid: None,
        purpose: purpose.to_owned(),
        access_basis: AccessBasis::Role,
        special_reason: None,
        request_id: format!("demo-seed-{request}"),
        calling_system: Some("rekisteri demo seed".into()),
    }
}

fn build(
    conn: &mut DbConnection,
    register: &Register,
    clients: &ClientRegister,
    now: &dyn Fn() -> OffsetDateTime,
) -> Result<Seeded, String> {
    // The first demo registrar first: from here on a second run finds the demo.
    let mut registrars = Vec::new();
    for municipality in &MUNICIPALITIES {
        let organisation = rekisteri_accounts::create_organisation(
            conn,
            register,
            None,
            NewOrganisation {
                name: municipality.name.into(),
                kind: OrganisationKind::Municipality,
                oid: Some(oid(municipality.oid)?),
                business_id: None,
                // AX-2: the demo's password sessions are to reach client data.
                strong_authentication_required: Some(false),
            },
            now(),
        )
        .map_err(during(format!("creating {}", municipality.name)))?;
        registrars.push(organisation);
    }
    let business_id = business_id(PROVIDER_BUSINESS_ID_BASE)
        .ok_or_else(|| format!("{PROVIDER_BUSINESS_ID_BASE} has no business ID check digit"))?;
    let provider = rekisteri_accounts::create_organisation(
        conn,
        register,
        None,
        NewOrganisation {
            name: PROVIDER_NAME.into(),
            kind: OrganisationKind::Provider,
            oid: Some(oid(PROVIDER_OID)?),
            business_id: Some(business_id),
            strong_authentication_required: None,
        },
        now(),
    )
    .map_err(during(format!("creating {PROVIDER_NAME}")))?;

    // The admin, and with it the platform organisation when there is none yet.
    let admin_email = "admin@platform.demo.test".to_owned();
    let admin_password = random_password()?;
    let admin =
        rekisteri_accounts::bootstrap_admin(conn, register, &admin_email, "Demo", "Admin", &admin_password, now())
            .map_err(during("creating the admin"))?;
    let platform = rekisteri_accounts::find_organisation(conn, None, &admin.organisation_id)
        .map_err(during("finding the platform organisation"))?;
    let mut admin = DemoUser {
        role: Role::Admin,
        organisation: platform.name,
        email: admin_email,
        password: admin_password,
        token: String::new(),
        account_id: admin.id,
    };
    log_in(conn, register, &mut admin, now())?;
    let actor = principal_of(conn, register, &admin, now())?;
    let mut users = vec![admin];

    // Whom a person contacts about each register, and the municipality it serves (source 000).
    for (municipality, registrar) in MUNICIPALITIES.iter().zip(&registrars) {
        let contact = |name: &str, mailbox: &str| rekisteri_accounts::ContactDetails {
            name: name.into(),
            email: Some(format!("{mailbox}@{}.demo.test", municipality.domain)),
            phone: None,
        };
        let changes = rekisteri_accounts::OrganisationChanges {
            contact_person: Some(contact("Asiakasrekisterin yhteyshenkilö", "asiakasrekisteri")),
            data_protection_officer: Some(contact("Tietosuojavastaava", "tietosuoja")),
            municipality_codes: Some(vec![
                municipality
                    .code
                    .parse()
                    .map_err(|_| format!("{} is not a municipality code", municipality.code))?,
            ]),
            ..Default::default()
        };
        rekisteri_accounts::update_organisation(conn, register, &actor, &registrar.id, changes, now())
            .map_err(during(format!("recording the contacts of {}", municipality.name)))?;
    }

    let unit = rekisteri_accounts::add_service_unit(
        conn,
        register,
        &actor,
        &provider.id,
        oid(PROVIDER_UNIT_OID)?,
        "Demo Hoiva Oy, kotihoito",
        now(),
    )
    .map_err(during("adding the provider's service unit"))?;

    // Per registrar: its service areas, a main user, a client handler with a right to both
    // areas, an auditor.
    let mut handlers = Vec::new();
    for (municipality, registrar) in MUNICIPALITIES.iter().zip(&registrars) {
        let mut areas = Vec::new();
        for (code, name, service_type) in [
            ("home_care", "Kotihoito", "home_care"),
            ("disability", "Vammaispalvelut", "personal_assistance"),
        ] {
            let area = service_areas::create_service_area(
                conn,
                register,
                &actor,
                &registrar.id,
                NewServiceArea {
                    code: code.into(),
                    name: name.into(),
                    service_types: vec![service_type.into()],
                },
                now(),
            )
            .map_err(during(format!("creating service area {code} of {}", registrar.name)))?;
            areas.push(area);
        }
        let email = |local: &str| format!("{local}@{}.demo.test", municipality.domain);
        let surname = |what: &str| format!("{what} ({})", registrar.name);
        for (role, local, what) in [
            (Role::MainUser, "main-user", "Main user"),
            (Role::ClientHandler, "client-handler", "Client handler"),
            (Role::Auditor, "auditor", "Auditor"),
        ] {
            let user = add_user(
                conn,
                register,
                &actor,
                registrar,
                role,
                email(local),
                &surname(what),
                Vec::new(),
                now,
            )?;
            if role == Role::ClientHandler {
                for area in &areas {
                    service_areas::grant_service_area(
                        conn,
                        register,
                        &actor,
                        &user.account_id,
                        &area.id,
                        None,
                        None,
                        now(),
                    )
                    .map_err(during(format!("granting area {} to the client handler", area.code)))?;
                }
                handlers.push(users.len());
            }
            users.push(user);
        }
    }
    let staff = add_user(
        conn,
        register,
        &actor,
        &provider,
        Role::ProviderStaff,
        "staff@hoiva.demo.test".into(),
        "Staff (Demo Hoiva Oy)",
        vec![unit.id.clone()],
        now,
    )?;
    let staff_principal = principal_of(conn, register, &staff, now())?;
    users.push(staff);

    // Clients with a home-care voucher of the provider, valid from the first day of the previous
    // month for a year, and visits delivered in the previous and the current month.
    let today = now().date();
    let this_month = today.replace_day(1).map_err(during("this month"))?;
    let previous_month = (this_month - Duration::days(1))
        .replace_day(1)
        .map_err(during("the previous month"))?;
    let valid_to = previous_month
        .replace_year(previous_month.year() + 1)
        .map_err(during("the voucher's end"))?
        - Duration::days(1);
    let visits: [(Date, i64, &str); 3] = [
        (day_of(previous_month, 5)?, 150, "Aamukäynti"),
        (day_of(previous_month, 19)?, 200, "Kauppa-asiointi ja siivous"),
        (this_month, 100, "Iltakäynti"),
    ];
    let (mut created, mut events, mut request) = (0, 0, 0);
    let mut first_client = None;
    for ((municipality, registrar), handler) in MUNICIPALITIES.iter().zip(&registrars).zip(handlers) {
        let handler = principal_of(conn, register, &users[handler], now())?;
        let home_municipality: MunicipalityCode = municipality
            .code
            .parse()
            .map_err(during(format!("municipality code {}", municipality.code)))?;
        for (n, person) in municipality.clients.iter().enumerate() {
            let code = identity_code(person.born, person.individual);
            let number = n + 1;
            let new = NewClient {
                identity_code: code.clone(),
                first_names: person.first_names.into(),
                surname: person.surname.into(),
                gender: if person.individual % 2 == 1 {
                    Gender::Male
                } else {
                    Gender::Female
                },
                home_municipality: Some(home_municipality),
                moved_in_on: None,
                moved_out_on: None,
                died_on: None,
                language: Some("fi".into()),
                email: None,
                phone: Some(format!("+358 40 000 {:04}", 100 * created + number)),
                next_of_kin: Some(NextOfKin {
                    name: Some(format!("Omainen {}", person.surname)),
                    phone: Some(format!("+358 50 000 {:04}", 100 * created + number)),
                }),
                address: Some(Address {
                    street_address: Some(format!("{} {}", municipality.street, 2 * number + 1)),
                    street_name: Some(municipality.street.into()),
                    postal_code: Some(municipality.postal_code.into()),
                    post_office: Some(municipality.post_office.into()),
                    country_code: Some("FI".into()),
                    ..Address::default()
                }),
                protection_order: false,
                services: vec![NewService {
                    kind: ServiceKind::ServiceVoucher,
                    service_type: "home_care".into(),
                    service_name: "Kotihoidon palveluseteli".into(),
                    quantity: Quantity(40 * 100),
                    unit: Unit::Hour,
                    unit_value_cents: Some(3250),
                    valid_from: previous_month,
                    valid_to,
                    provider_id: provider.id.clone(),
                    provider_unit_oid: Some(unit.oid.clone()),
                    decision_ref: Some(format!("KH-{}-{number:03}", previous_month.year())),
                    additional_info: Some("Demo: avain avainsäilössä".into()),
                }],
            };
            request += 1;
            let request_context = rekisteri_clients::Request {
                principal: &handler,
                special_reason: None,
                audit: audit_context(&handler, &registrar.id, "demo seed: create client", request),
                now: now(),
                access_cache: Default::default(),
            };
            let client = rekisteri_clients::create_client(conn, clients, &request_context, &registrar.id, new)
                .map_err(during(format!("creating client {number} of {}", registrar.name)))?
                .record;
            created += 1;
            let service_id = client
                .services
                .first()
                .map(|s| s.id.clone())
                .ok_or_else(|| "a created client has no service".to_owned())?;
            for (delivered_on, centi, note) in visits {
                request += 1;
                let request_context = rekisteri_clients::Request {
                    principal: &staff_principal,
                    special_reason: None,
                    audit: audit_context(
                        &staff_principal,
                        &registrar.id,
                        "demo seed: record service event",
                        request,
                    ),
                    now: now(),
                    access_cache: Default::default(),
                };
                rekisteri_clients::record_event(
                    conn,
                    clients,
                    &request_context,
                    &registrar.id,
                    &service_id,
                    NewServiceEvent {
                        delivered_on,
                        quantity: Quantity(centi),
                        unit_price_cents: None,
                        note: Some(note.into()),
                    },
                )
                .map_err(during(format!(
                    "recording a visit of client {number} of {}",
                    registrar.name
                )))?;
                events += 1;
            }
            first_client.get_or_insert((client.id, code));
        }
    }
    let first_client = first_client.ok_or_else(|| "no client was created".to_owned())?;
    Ok(Seeded {
        users,
        registrars,
        provider,
        first_client,
        clients: created,
        events,
        contacts: 0,
    })
}

fn day_of(month: Date, day: u8) -> Result<Date, String> {
    month.replace_day(day).map_err(during(format!("day {day}")))
}

/// Rows of cells as columns padded to the widest cell, two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(cell);
            line.push_str(&" ".repeat(width - cell.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What `print_summary` shows, as one JSON document (`demo seed --json`).
fn summary_json(seeded: &Seeded) -> serde_json::Value {
    let organisation = |o: &Organisation| {
        serde_json::json!({
            "name": o.name,
            "id": o.id,
            "oid": o.oid.as_ref().map(Oid::to_string),
            "kind": o.kind.as_str(),
        })
    };
    let (client_id, identity_code) = &seeded.first_client;
    serde_json::json!({
        "registrars": seeded.registrars.iter().map(organisation).collect::<Vec<_>>(),
        "provider": organisation(&seeded.provider),
        "users": seeded.users.iter().map(|u| serde_json::json!({
            "role": u.role.as_str(),
            "organisation": u.organisation,
            "email": u.email,
            "password": u.password,
            "token": u.token,
            "account_id": u.account_id,
        })).collect::<Vec<_>>(),
        "first_client": {"id": client_id, "identity_code": identity_code, "registrar": seeded.registrars.first().map(|r| r.id.clone())},
    })
}

fn print_summary(seeded: &Seeded, bind: &str) {
    let names: Vec<&str> = seeded.registrars.iter().map(|r| r.name.as_str()).collect();
    println!(
        "Demo seeded: {} registrars, 1 provider, {} users, {} clients, {} service events, {} call-register contacts.",
        seeded.registrars.len(),
        seeded.users.len(),
        seeded.clients,
        seeded.events,
        seeded.contacts
    );
    println!();
    println!(
        "NOTE: strong authentication is turned off for the demo registrars {} \
         (strong_authentication_required = false, AX-2), so that password sessions reach their client \
         data. Registrars made otherwise keep it on and answer 403 to password sessions.",
        names.join(" and ")
    );
    println!();
    println!(
        "Users. Their passwords and session tokens are shown only now. A session ends after 30 minutes \
         idle or 12 hours; log in again at POST /v1/auth/login."
    );
    println!();
    let mut rows = vec![vec![
        "role".to_owned(),
        "organisation".to_owned(),
        "e-mail".to_owned(),
        "password".to_owned(),
        "session token".to_owned(),
    ]];
    rows.extend(seeded.users.iter().map(|u| {
        vec![
            u.role.as_str().to_owned(),
            u.organisation.clone(),
            u.email.clone(),
            u.password.clone(),
            u.token.clone(),
        ]
    }));
    print!("{}", table(&rows));
    println!();
    let mut rows = vec![vec![
        "organisation".to_owned(),
        "id".to_owned(),
        "OID".to_owned(),
        "kind".to_owned(),
    ]];
    for organisation in seeded.registrars.iter().chain([&seeded.provider]) {
        rows.push(vec![
            organisation.name.clone(),
            organisation.id.clone(),
            organisation.oid.as_ref().map(Oid::to_string).unwrap_or_default(),
            organisation.kind.as_str().to_owned(),
        ]);
    }
    print!("{}", table(&rows));
    println!();
    let (client_id, code) = &seeded.first_client;
    if let Some(first) = seeded.registrars.first() {
        println!("A client of {}: id {client_id}, identity code {code}", first.name);
        println!();
        println!(
            "Try it with the client_handler's token of {} (see README.md):",
            first.name
        );
        println!("  TOKEN=<its session token>  RID={}", first.id);
        println!("  curl -H \"Authorization: Bearer $TOKEN\" http://{bind}/v1/registrars/$RID/clients");
        println!();
        println!(
            "The call register of {}: with its call_supervisor's token, list the contacts, ask to listen to one \
             with a reason, and fetch the audio (docs/calls.md):",
            first.name
        );
        println!("  curl -H \"Authorization: Bearer $SUPERVISOR\" http://{bind}/v1/registrars/$RID/contacts");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rekisteri_core::{PersonalIdentityCode, TemporaryCodesAllowed};

    #[test]
    fn pl_9_demo_identity_codes_are_valid_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for municipality in &MUNICIPALITIES {
            for person in &municipality.clients {
                let code = identity_code(person.born, person.individual);
                PersonalIdentityCode::parse(&code, TemporaryCodesAllowed::No).unwrap();
                assert!(seen.insert(code));
            }
        }
        assert_eq!(identity_code("131052", 308), "131052-308T");
    }

    #[test]
    fn pl_9_demo_business_id_has_its_check_digit() {
        assert_eq!(business_id("0201256").as_deref(), Some("0201256-6"));
        assert_eq!(business_id("1572860").as_deref(), Some("1572860-0"));
        assert_eq!(business_id(PROVIDER_BUSINESS_ID_BASE).as_deref(), Some("9900003-4"));
    }

    #[test]
    fn pl_9_demo_passwords_are_random_and_long() {
        let (a, b) = (random_password().unwrap(), random_password().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.chars().count(), 24);
    }

    #[test]
    fn the_table_pads_columns() {
        let rows = vec![
            vec!["a".to_owned(), "bb".to_owned()],
            vec!["ccc".to_owned(), "d".to_owned()],
        ];
        assert_eq!(table(&rows), "a    bb\nccc  d\n");
    }
}
