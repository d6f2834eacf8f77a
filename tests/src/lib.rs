//! The end-to-end harness: the real application on a real port, over a fresh database of either
//! backend, talked to over real HTTP.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::{HttpServer, web};
use rekisteri_api::{AppState, BodyLimit};
use rekisteri_core::{Clock, ManualClock, SystemClock};
use rekisteri_crypto::Keyring;
use rekisteri_db::testing::TestDatabase;

pub use rekisteri_db::db_test;

pub mod smtp;
pub mod world;

pub use world::World;

/// Extra routes a test mounts beside the real ones (e.g. to exercise an extractor).
pub type ExtraRoutes = fn(&mut web::ServiceConfig);

pub struct TestApp {
    pub base: String,
    pub client: reqwest::blocking::Client,
    pub keyring: Arc<Keyring>,
    /// The key file `keyring` was made from, for a test that rotates the keys.
    pub keyring_text: String,
    pub clock: Arc<ManualClock>,
    pub audit: rekisteri_audit::AuditLog,
    pub accounts: rekisteri_accounts::AccountsOptions,
    /// The server's password-hashing pool (a test can fill it).
    pub hashing: rekisteri_api::hashing::HashingPool,
    /// The server's store of recording audio, and the directory of the default local one.
    pub audio: rekisteri_recordings::AudioStore,
    pub audio_dir: tempfile::TempDir,
    /// The server as the owner of its `Idempotency-Key` claims.
    pub instance: rekisteri_idempotency::Instance,
    pub db: TestDatabase,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    /// The scheduler, when the test asked for the will-service forwarder.
    scheduler: Option<rekisteri_jobs::SchedulerHandle>,
}

pub struct TestAppOptions {
    pub body_limit: usize,
    pub keys_verified: bool,
    pub extra_routes: ExtraRoutes,
    pub identity_providers: Vec<rekisteri_accounts::idp::IdentityProvider>,
    /// Where the VTJ sync endpoint reaches DVV's interface (a simulator).
    pub vtj: rekisteri_vtj::VtjConfig,
    /// The user register's settings before the identity providers are added; `None`:
    /// [`test_accounts_options`].
    pub accounts: Option<rekisteri_accounts::AccountsOptions>,
    /// The hashing pool's threads and queue.
    pub hashing: (usize, usize),
    pub trusted_proxies: rekisteri_api::client_address::TrustedProxies,
    /// Where recording audio goes; `None`: a local directory of the test's own.
    pub audio: Option<rekisteri_recordings::StorageConfig>,
    pub recording_max_bytes: u64,
    /// The scrape token `/metrics` accepts besides an admin.
    pub metrics_token: Option<String>,
    /// The will service's recording endpoint: when set, the real scheduler runs the `outbox`
    /// job beside the server (on the test's clock, so only a wake-up runs it), woken by the
    /// server's requests as `serve` does.
    pub will_service: Option<String>,
    /// The pool the server uses; `None`: the test database's. A test that makes the database
    /// unreachable or full gives one of its own (through a proxy, with a size limit).
    pub pool: Option<rekisteri_db::Pool>,
    /// How long a request waits for a database connection.
    pub request_db_timeout: std::time::Duration,
}

impl Default for TestAppOptions {
    fn default() -> Self {
        Self {
            body_limit: rekisteri_api::DEFAULT_BODY_LIMIT,
            keys_verified: true,
            extra_routes: |_| {},
            identity_providers: Vec::new(),
            vtj: rekisteri_vtj::VtjConfig::default(),
            accounts: None,
            hashing: (1, 64),
            trusted_proxies: Default::default(),
            audio: None,
            recording_max_bytes: rekisteri_recordings::DEFAULT_MAX_BYTES,
            metrics_token: None,
            will_service: None,
            pool: None,
            request_db_timeout: rekisteri_api::DEFAULT_REQUEST_DB_TIMEOUT,
        }
    }
}

/// The production settings, with a cheap password hash so that tests stay fast (the cost of
/// 600 000 iterations is measured in benchmarks, not paid in every test).
pub fn test_accounts_options() -> rekisteri_accounts::AccountsOptions {
    rekisteri_accounts::AccountsOptions {
        pbkdf2_iterations: std::num::NonZeroU32::new(1000).unwrap(),
        ..Default::default()
    }
}

/// Two registrars (Tampere, Nokia) and two providers (Hoiva Oy, Apu Oy) with the OIDs the tests
/// name (`1.2.246.10.1001`, `…1002`, `…2001`, `…2002`), strong authentication off.
pub struct Parties {
    pub registrar: String,
    pub other_registrar: String,
    pub provider: String,
    pub other_provider: String,
}

pub const ADMIN_EMAIL: &str = "ada.admin@rekisteri.test";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const USER_PASSWORD: &str = "ivory tower of wet paper";

/// Defines a test that runs once on SQLite and once on PostgreSQL against a started
/// application, as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! app_test {
    ($(#[$meta:meta])* fn $name:ident($app:ident) $body:block) => {
        $crate::app_test_started_by!(start, $(#[$meta])* fn $name($app) $body);
    };
}

/// Like [`app_test!`], with the test identity providers (citizen and staff) configured.
#[macro_export]
macro_rules! idp_app_test {
    ($(#[$meta:meta])* fn $name:ident($app:ident) $body:block) => {
        $crate::app_test_started_by!(start_with_identity_providers, $(#[$meta])* fn $name($app) $body);
    };
}

/// [`app_test!`] with the application started by `TestApp::$start`.
#[doc(hidden)]
#[macro_export]
macro_rules! app_test_started_by {
    ($start:ident, $(#[$meta:meta])* fn $name:ident($app:ident) $body:block) => {
        $crate::database_test!($(#[$meta])* fn $name(db) {
            let $app = &$crate::TestApp::$start(db);
            $body
        });
    };
}

/// Defines `$name::sqlite` and `$name::postgres`, each running `$body` with a fresh database of
/// its kind, taken by value, for tests that start their server their own way (PostgreSQL only
/// when `TEST_DATABASE_URL` names a server).
#[macro_export]
macro_rules! database_test {
    ($(#[$meta:meta])* fn $name:ident($db:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($db: ::rekisteri_db::testing::TestDatabase) $body

            #[test]
            fn sqlite() {
                body(::rekisteri_db::testing::TestDatabase::sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(db) = ::rekisteri_db::testing::TestDatabase::postgres() {
                    body(db);
                }
            }
        }
    };
}

impl TestApp {
    /// An app trusting the test citizen and staff identity providers.
    pub fn start_with_identity_providers(db: TestDatabase) -> Self {
        Self::start_with(
            db,
            TestAppOptions {
                identity_providers: vec![
                    test_identity_provider(rekisteri_accounts::idp::IdpKind::Staff),
                    test_identity_provider(rekisteri_accounts::idp::IdpKind::Citizen),
                ],
                ..TestAppOptions::default()
            },
        )
    }

    pub fn start(db: TestDatabase) -> Self {
        Self::start_with(db, TestAppOptions::default())
    }

    pub fn start_with(db: TestDatabase, options: TestAppOptions) -> Self {
        if rekisteri_db::leak_sweep::dir().is_some() {
            capture_log();
            // Debug, not trace: the dependencies' trace lines (every poll of every connection)
            // would triple the suite's time and say nothing about personal data.
            log::set_max_level(log::LevelFilter::Debug);
        }
        let keyring_text = Keyring::generate_toml().unwrap();
        let keyring = Arc::new(Keyring::from_toml(&keyring_text).unwrap());
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        if options.keys_verified {
            rekisteri_db::keycheck::verify_keyring(&mut db.conn(), &keyring, clock.now()).unwrap();
        }
        let pool = options.pool.unwrap_or_else(|| db.pool.clone());
        let audit = rekisteri_audit::AuditLog::start(
            pool.clone(),
            clock.clone(),
            Some(keyring.clone()),
            rekisteri_audit::WriterOptions::default(),
        )
        .unwrap();
        let accounts = rekisteri_accounts::AccountsOptions {
            identity_providers: Arc::new(options.identity_providers),
            ..options.accounts.unwrap_or_else(test_accounts_options)
        };
        let hashing = rekisteri_api::hashing::HashingPool::new(options.hashing.0, options.hashing.1).unwrap();
        let audio_dir = tempfile::tempdir().unwrap();
        let audio_config = options
            .audio
            .unwrap_or_else(|| rekisteri_recordings::StorageConfig::Local {
                dir: audio_dir.path().to_path_buf(),
            });
        let audio = rekisteri_recordings::AudioStore::new(audio_config, options.recording_max_bytes).unwrap();
        // The server's claims of Idempotency-Keys are its own while this row lives. Nothing
        // renews it here, and tests move the manual clock by days: it outlives them all.
        let instance = rekisteri_idempotency::Instance::new(time::Duration::days(36_500));
        rekisteri_idempotency::register_instance(&mut db.conn(), &instance, rekisteri_db::to_primitive(clock.now()))
            .unwrap();
        let outbox_wakeup = rekisteri_core::Wakeup::new();
        let scheduler = options
            .will_service
            .map(|url| outbox_scheduler(&db, &keyring, &clock, &audit, url, outbox_wakeup.clone()));
        let writes = rekisteri_db::GroupCommit::start(&pool).unwrap();
        let state = web::Data::new(AppState {
            pool,
            blocking_calls: Default::default(),
            writes,
            request_db_timeout: options.request_db_timeout,
            audit: audit.clone(),
            keyring: keyring.clone(),
            accounts: accounts.clone(),
            clock: clock.clone(),
            keys_verified: options.keys_verified,
            vtj: options.vtj,
            access_cache: Default::default(),
            hashing: hashing.clone(),
            trusted_proxies: options.trusted_proxies,
            audio: audio.clone(),
            instance: instance.clone(),
            metrics_token: options
                .metrics_token
                .as_deref()
                .map(rekisteri_api::metrics::ScrapeToken::new),
            outbox_wakeup,
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let limit = BodyLimit(options.body_limit);
        let extra = options.extra_routes;
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || rekisteri_api::app(state.clone(), limit).configure(extra))
                    .workers(2)
                    .disable_signals()
                    .listen(listener)
                    .unwrap()
                    .run();
                sender.send(server.handle()).unwrap();
                server.await.unwrap();
            });
        });
        let handle = receiver.recv().unwrap();
        // Idle connections are dropped by the client well before actix's keep-alive (5 s)
        // closes them, so a request is never sent on a connection the server is closing (a
        // reset that a slow, loaded test machine otherwise meets now and then).
        let client = reqwest::blocking::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap();
        Self {
            base,
            client,
            keyring,
            keyring_text,
            clock,
            audit,
            accounts,
            hashing,
            audio,
            audio_dir,
            instance,
            db,
            handle,
            thread: Some(thread),
            scheduler,
        }
    }

    /// Asserts that none of `secrets` is in the database in clear (see [`Self::database_dump`]),
    /// in a dump of at least `min_bytes`, so that an empty dump cannot pass.
    pub fn assert_not_stored_in_clear(&self, tables: &[&str], min_bytes: usize, secrets: &[&str]) {
        let dump = self.database_dump(tables);
        assert!(dump.len() > min_bytes, "a dump of {} bytes", dump.len());
        for secret in secrets {
            let needle = secret.as_bytes();
            assert!(
                !dump.windows(needle.len()).any(|w| w == needle),
                "{secret} is in the database in clear"
            );
        }
    }

    /// What the database holds on disk, to search for what must not be in it in clear: on SQLite
    /// the database file with its write-ahead log, on PostgreSQL every row of `tables` as text.
    pub fn database_dump(&self, tables: &[&str]) -> Vec<u8> {
        use diesel::RunQueryDsl;
        match self.db.backend() {
            rekisteri_db::Backend::Sqlite => {
                // Checkpointing is not needed: the WAL file is read as well.
                let path = self.db.url.trim_start_matches("sqlite://").to_owned();
                let mut bytes = std::fs::read(&path).unwrap();
                bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
                bytes
            }
            rekisteri_db::Backend::Postgres => {
                #[derive(diesel::QueryableByName)]
                struct Dump {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    dump: String,
                }
                let mut text = String::new();
                for table in tables {
                    let row: Dump = diesel::sql_query(format!(
                        "SELECT COALESCE(string_agg(t::text, '|'), '') AS dump FROM {table} t"
                    ))
                    .get_result(&mut self.db.conn())
                    .unwrap();
                    text.push_str(&row.dump);
                }
                text.into_bytes()
            }
        }
    }

    /// Takes in a key rotation's new keys (`k2`, `b2`) and writes with them from now on, as a
    /// running server does at a rotation's switch: the old keys stay held, nothing is
    /// re-encrypted or re-indexed. Returns the ids switched to.
    pub fn switch_to_rotated_keys(&self) -> rekisteri_crypto::RotationKeys {
        let (rotated, keys) = Keyring::add_rotation_keys(&self.keyring_text).unwrap();
        self.keyring.absorb(Keyring::from_toml(&rotated).unwrap()).unwrap();
        self.keyring.set_active(&keys.data, &keys.blind_index).unwrap();
        keys
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.client.get(self.url(path)).send().unwrap()
    }

    /// The user register as the server sees it (same keys, audit log and settings).
    pub fn register(&self) -> rekisteri_accounts::Register {
        rekisteri_accounts::Register {
            keyring: self.keyring.clone(),
            audit: self.audit.clone(),
            options: self.accounts.clone(),
            access_cache: Default::default(),
        }
    }

    /// Creates the platform organisation and its first admin as `rekisteri admin bootstrap`
    /// does, and logs in over HTTP; returns the session token.
    pub fn bootstrap_admin(&self) -> String {
        rekisteri_accounts::bootstrap_admin(
            &mut self.db.conn(),
            &self.register(),
            ADMIN_EMAIL,
            "Ada",
            "Admin",
            ADMIN_PASSWORD,
            self.clock.now(),
        )
        .unwrap();
        self.token(ADMIN_EMAIL, ADMIN_PASSWORD)
    }

    pub fn login(&self, email: &str, password: &str) -> reqwest::blocking::Response {
        self.post(
            "/v1/auth/login",
            None,
            &serde_json::json!({"email": email, "password": password}),
        )
    }

    /// Logs in and returns the session token; panics unless the login succeeds.
    pub fn token(&self, email: &str, password: &str) -> String {
        let response = self.login(email, password);
        assert_eq!(response.status().as_u16(), 200, "login of a test user failed");
        let body: serde_json::Value = response.json().unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    fn with_token(
        &self,
        builder: reqwest::blocking::RequestBuilder,
        token: Option<&str>,
    ) -> reqwest::blocking::RequestBuilder {
        match token {
            Some(token) => {
                rekisteri_db::leak_sweep::register(token);
                builder.bearer_auth(token)
            }
            None => builder,
        }
    }

    pub fn get_as(&self, token: &str, path: &str) -> reqwest::blocking::Response {
        self.with_token(self.client.get(self.url(path)), Some(token))
            .send()
            .unwrap()
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> reqwest::blocking::Response {
        register_personal_values(body);
        self.with_token(self.client.post(self.url(path)), token)
            .json(body)
            .send()
            .unwrap()
    }

    pub fn post_as(&self, token: &str, path: &str, body: &serde_json::Value) -> reqwest::blocking::Response {
        self.post(path, Some(token), body)
    }

    pub fn patch_as(&self, token: &str, path: &str, body: &serde_json::Value) -> reqwest::blocking::Response {
        register_personal_values(body);
        self.with_token(self.client.patch(self.url(path)), Some(token))
            .json(body)
            .send()
            .unwrap()
    }

    /// PATCH `path` as `token` with `If-Match: version` (a quoted version, `"\"1\""`).
    pub fn patch_if_match(
        &self,
        token: &str,
        path: &str,
        version: &str,
        body: &serde_json::Value,
    ) -> reqwest::blocking::Response {
        self.request_as(
            reqwest::Method::PATCH,
            token,
            path,
            &[("If-Match", version)],
            Some(body),
        )
    }

    /// POST `path` as `token` under an `Idempotency-Key`.
    pub fn post_with_key(
        &self,
        token: &str,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> reqwest::blocking::Response {
        self.request_as(
            reqwest::Method::POST,
            token,
            path,
            &[("Idempotency-Key", key)],
            Some(body),
        )
    }

    /// Creates an organisation from a full body (e.g. with `oid` or
    /// `strong_authentication_required`) and returns its id.
    /// The organisations most end-to-end tests share (see [`Parties`]).
    pub fn parties(&self, admin_token: &str) -> Parties {
        let organisation = |name: &str, kind: &str, oid: &str| self.organisation(admin_token, name, kind, oid);
        Parties {
            registrar: organisation("Tampere", "municipality", "1.2.246.10.1001"),
            other_registrar: organisation("Nokia", "municipality", "1.2.246.10.1002"),
            provider: organisation("Hoiva Oy", "provider", "1.2.246.10.2001"),
            other_provider: organisation("Apu Oy", "provider", "1.2.246.10.2002"),
        }
    }

    /// An organisation with `oid` and strong authentication off, as the test organisations are;
    /// its id.
    pub fn organisation(&self, admin_token: &str, name: &str, kind: &str, oid: &str) -> String {
        self.create_organisation_with(
            admin_token,
            &serde_json::json!({"name": name, "kind": kind, "oid": oid, "strong_authentication_required": false}),
        )
    }

    /// Creates an API client "Apotti" of `organisation` with `scopes`; (client id, secret).
    pub fn create_api_client(&self, admin_token: &str, organisation: &str, scopes: &[&str]) -> (String, String) {
        let response = self.post_as(
            admin_token,
            "/v1/api-clients",
            &serde_json::json!({"name": "Apotti", "organisation": organisation, "scopes": scopes}),
        );
        assert_eq!(response.status().as_u16(), 201);
        let body: serde_json::Value = response.json().unwrap();
        let id = body["client"]["id"].as_str().unwrap().to_owned();
        let secret = body["client_secret"].as_str().unwrap().to_owned();
        (id, secret)
    }

    /// An access token of API client `id` through the client-credentials grant.
    pub fn client_credentials_token(&self, id: &str, secret: &str) -> String {
        let response = self
            .client
            .post(self.url("/v1/auth/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: serde_json::Value = response.json().unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A service area of `registrar` covering `service_types`; its id.
    pub fn service_area(&self, admin_token: &str, registrar: &str, code: &str, service_types: &[&str]) -> String {
        let response = self.post_as(
            admin_token,
            &format!("/v1/registrars/{registrar}/service-areas"),
            &serde_json::json!({"code": code, "name": code, "service_types": service_types}),
        );
        assert_eq!(response.status().as_u16(), 201, "creating a test service area failed");
        let body: serde_json::Value = response.json().unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// Grants `account` a right to service area `area`; the right's id.
    pub fn grant_service_area(&self, admin_token: &str, account: &str, area: &str) -> String {
        let response = self.post_as(
            admin_token,
            &format!("/v1/accounts/{account}/service-areas"),
            &serde_json::json!({"service_area_id": area}),
        );
        assert_eq!(response.status().as_u16(), 201, "granting a test service area failed");
        let body: serde_json::Value = response.json().unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    pub fn create_organisation_with(&self, admin_token: &str, body: &serde_json::Value) -> String {
        let response = self.post_as(admin_token, "/v1/organisations", body);
        assert_eq!(response.status().as_u16(), 201, "creating a test organisation failed");
        let body: serde_json::Value = response.json().unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// Sends `method` to `path` as `token`, with extra headers and an optional JSON body.
    pub fn request_as(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> reqwest::blocking::Response {
        let mut builder = self.with_token(self.client.request(method, self.url(path)), Some(token));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if let Some(body) = body {
            register_personal_values(body);
            builder = builder.json(body);
        }
        builder.send().unwrap()
    }

    /// A token of the test citizen identity provider for the person with `identity_code`.
    pub fn citizen_token(&self, identity_code: &str) -> String {
        sign_jwt(
            "rsa",
            &self.jwt_claims(serde_json::json!({"iss": CITIZEN_IDP_ISSUER,
                "national_identification_number": identity_code, "amr": ["bank"]})),
        )
    }

    pub fn delete_as(&self, token: &str, path: &str) -> reqwest::blocking::Response {
        self.with_token(self.client.delete(self.url(path)), Some(token))
            .send()
            .unwrap()
    }

    /// Creates an organisation as `admin_token` and returns its id.
    pub fn create_organisation(&self, admin_token: &str, name: &str, kind: &str) -> String {
        let response = self.post_as(
            admin_token,
            "/v1/organisations",
            &serde_json::json!({"name": name, "kind": kind}),
        );
        assert_eq!(response.status().as_u16(), 201);
        let body: serde_json::Value = response.json().unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// Invites a user as `inviter_token`, accepts the invitation with [`USER_PASSWORD`] and
    /// returns the account id and a session token of the new user.
    pub fn add_user(&self, inviter_token: &str, email: &str, organisation_id: &str, role: &str) -> (String, String) {
        let response = self.post_as(
            inviter_token,
            "/v1/accounts",
            &serde_json::json!({"email": email, "first_name": "Test", "surname": "User",
                "organisation_id": organisation_id, "role": role}),
        );
        assert_eq!(response.status().as_u16(), 201, "invitation of a test user failed");
        let body: serde_json::Value = response.json().unwrap();
        let id = body["account"]["id"].as_str().unwrap().to_owned();
        let token = body["invitation_token"].as_str().unwrap();
        let accepted = self.post(
            "/v1/auth/invitations/accept",
            None,
            &serde_json::json!({"token": token, "password": USER_PASSWORD}),
        );
        assert_eq!(accepted.status().as_u16(), 200);
        (id, self.token(email, USER_PASSWORD))
    }
}

/// The scheduler of `serve` with only the `outbox` job, which forwards with the consent
/// register's own `forward_due` as `rekisteri jobs run outbox` does.
fn outbox_scheduler(
    db: &TestDatabase,
    keyring: &Arc<Keyring>,
    clock: &Arc<ManualClock>,
    audit: &rekisteri_audit::AuditLog,
    url: String,
    wakeup: rekisteri_core::Wakeup,
) -> rekisteri_jobs::SchedulerHandle {
    let register = rekisteri_consent::ConsentRegister {
        clients: rekisteri_clients::ClientRegister {
            keyring: keyring.clone(),
            audit: audit.clone(),
        },
        outbox_wakeup: None,
    };
    let will = rekisteri_consent::WillService::new(url).unwrap();
    let (pool, job_clock) = (db.pool.clone(), clock.clone());
    let job = rekisteri_jobs::Job {
        name: "outbox".to_owned(),
        schedule: rekisteri_jobs::Schedule::parse(rekisteri_jobs::default_schedule("outbox").unwrap()).unwrap(),
        enabled: true,
        run: Box::new(move |_| {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            let forwarded = rekisteri_consent::forward_due(&mut conn, &register, &will, job_clock.now())
                .map_err(|e| e.to_string())?;
            let mut report = rekisteri_jobs::JobReport::default();
            report.count("delivered", forwarded.delivered as u64);
            report.count("failed", forwarded.failed as u64);
            report.count("waiting", forwarded.waiting as u64);
            Ok(report)
        }),
    };
    let mut scheduler = rekisteri_jobs::Scheduler::new(
        db.pool.clone(),
        clock.clone(),
        Some(audit.clone()),
        rekisteri_jobs::new_holder_id("test"),
        vec![job],
        rekisteri_jobs::SchedulerOptions {
            renew_every: None,
            ..Default::default()
        },
    );
    assert!(scheduler.set_wakeup("outbox", wakeup));
    scheduler.spawn()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.stop(std::time::Duration::from_secs(10));
        }
        // Sends the stop command at once; the server thread ends when it has stopped.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Asserts a response is a problem document with this status and type; returns its body.
pub fn assert_problem(response: reqwest::blocking::Response, status: u16, problem_type: &str) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["type"], problem_type, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].is_string(), "{body}");
    body
}

/// How many security events of `event_type` the database holds.
pub fn security_event_count(app: &TestApp, event_type: &str) -> i64 {
    use diesel::prelude::*;
    use rekisteri_db::schema::security_events;
    security_events::table
        .filter(security_events::event_type.eq(event_type))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap()
}

/// The test identity providers' issuer and audience.
pub const IDP_ISSUER: &str = "https://idp.rekisteri.test";
pub const IDP_AUDIENCE: &str = "rekisteri-api";
/// The citizens' provider (a Suomi.fi stand-in) has an issuer of its own.
pub const CITIZEN_IDP_ISSUER: &str = "https://suomi.rekisteri.test";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/fixtures/idp/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A provider of `kind` that trusts the fixture keys (EdDSA, ES256 and RS256), never
/// `other-ed25519`.
pub fn test_identity_provider(kind: rekisteri_accounts::idp::IdpKind) -> rekisteri_accounts::idp::IdentityProvider {
    use rekisteri_accounts::idp::{IdentityProvider, TrustedKey};
    let keys = vec![
        TrustedKey::from_pem("EdDSA", &fixture("ed25519.pub"), Some("ed".into())).unwrap(),
        TrustedKey::from_pem("ES256", &fixture("p256.pub"), Some("ec".into())).unwrap(),
        TrustedKey::from_pem("RS256", &fixture("rsa.pub"), Some("rsa".into())).unwrap(),
    ];
    let name = match kind {
        rekisteri_accounts::idp::IdpKind::Citizen => "suomi.fi (test)",
        rekisteri_accounts::idp::IdpKind::Staff => "professional card (test)",
    };
    let issuer = match kind {
        rekisteri_accounts::idp::IdpKind::Citizen => CITIZEN_IDP_ISSUER,
        rekisteri_accounts::idp::IdpKind::Staff => IDP_ISSUER,
    };
    IdentityProvider::new(name, kind, issuer, IDP_AUDIENCE, keys)
}

/// A JWT signed with a fixture key: `key` is `ed25519`, `other-ed25519`, `p256` or `rsa`.
pub fn sign_jwt(key: &str, claims: &serde_json::Value) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let pem = fixture(&format!("{key}.key"));
    let (algorithm, encoding, kid) = match key {
        "ed25519" => (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
            "ed",
        ),
        "other-ed25519" => (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
            "ed",
        ),
        "p256" => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            "ec",
        ),
        "rsa" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            "rsa",
        ),
        other => panic!("no fixture key {other}"),
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &encoding).unwrap()
}

impl TestApp {
    /// Standard claims of a token from the test provider, valid for 10 minutes from the app's clock.
    pub fn jwt_claims(&self, extra: serde_json::Value) -> serde_json::Value {
        let now = self.clock.now().unix_timestamp();
        let mut claims = serde_json::json!({"iss": IDP_ISSUER, "aud": IDP_AUDIENCE, "iat": now, "exp": now + 600});
        if let (Some(claims), serde_json::Value::Object(extra)) = (claims.as_object_mut(), extra) {
            claims.extend(extra);
        }
        claims
    }
}

/// The leak sweep's list of what must never be found in clear: the passwords and secrets a
/// request body carries, and the names of the people a register keeps (an object with an
/// identity code, a contact's client name). Identity codes are found by their pattern. Staff
/// names are not registered: the usage log keeps the name of whoever read (AU-1).
fn register_personal_values(body: &serde_json::Value) {
    const SECRET: &[&str] = &["password", "new_password", "client_secret", "client_name"];
    const NAMES: &[&str] = &["first_names", "surname"];
    if rekisteri_db::leak_sweep::dir().is_none() {
        return;
    }
    match body {
        serde_json::Value::Object(fields) => {
            let a_person = fields.contains_key("identity_code") || fields.contains_key("client_identity_code");
            for (key, value) in fields {
                match value {
                    serde_json::Value::String(text)
                        if SECRET.contains(&key.as_str()) || (a_person && NAMES.contains(&key.as_str())) =>
                    {
                        rekisteri_db::leak_sweep::register(text);
                    }
                    other => register_personal_values(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(register_personal_values),
        _ => {}
    }
}

/// Every log line this test process writes, from the first [`capture_log`] on: the log is
/// output too, and tests scan it for what must never be in it (personal data, secrets) and
/// for what must be (the request id of an internal error).
fn log_lines() -> &'static std::sync::Mutex<Vec<String>> {
    static LINES: std::sync::OnceLock<std::sync::Mutex<Vec<String>>> = std::sync::OnceLock::new();
    LINES.get_or_init(|| std::sync::Mutex::new(Vec::new()))
}

struct LogCapture;

impl log::Log for LogCapture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {} {}", record.level(), record.target(), record.args());
        // The test's own HTTP client logs what it sends; the sweep is about the server's lines.
        if !record.target().starts_with("reqwest") && !record.target().starts_with("hyper") {
            rekisteri_db::leak_sweep::scan(&format!("log line ({})", record.target()), line.as_bytes());
        }
        log_lines()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
    }
    fn flush(&self) {}
}

/// Installs the process's logger that keeps every line (once; later calls do nothing).
pub fn capture_log() {
    static CAPTURE: LogCapture = LogCapture;
    static INIT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        if log::set_logger(&CAPTURE).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
}

/// The lines captured so far (all tests of the process write into one log).
pub fn captured_log_lines() -> Vec<String> {
    log_lines()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// A valid identity code of the 1900s: birth date `ddmmyy`, `-`, the individual number and its
/// check character (the one rule, from `rekisteri_core`).
pub fn identity_code(ddmmyy: &str, individual: u32) -> String {
    let digits = format!("{ddmmyy}{individual:03}");
    let number: u32 = digits.parse().expect("nine digits");
    format!(
        "{ddmmyy}-{individual:03}{}",
        rekisteri_core::identity_code::check_character(number)
    )
}
