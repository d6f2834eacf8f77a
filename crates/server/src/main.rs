//! `rekisteri`: the one binary. `serve` runs the API; the other commands are for operators and
//! cron.

mod backup;
mod config;
mod data_location;
mod demo;
mod demo_calls;
mod jobs;
mod key_rotation;
mod keys;
mod logging;
mod vtj;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use rekisteri_api::{AppState, ServerSettings};
use rekisteri_core::Refusal;
use rekisteri_core::{Clock, SystemClock};
use rekisteri_crypto::Keyring;
use rekisteri_db::{Pool, migrations};
use rekisteri_jobs::JobReport;

use crate::config::Config;

/// mimalloc rather than glibc's malloc: glibc either keeps freed memory in an arena per thread
/// (some 10 MB of an idle server, PL-16) or, with one arena, makes the request threads wait
/// for its lock (a fifth of the CPU under load, PL-12). mimalloc's heaps are per thread.
/// Run with `MIMALLOC_PURGE_DELAY=0` (docs/operations.md "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "rekisteri", version, about = "Personal-data registers behind one REST API")]
struct Cli {
    /// Optional TOML configuration file; environment variables override it.
    #[arg(long, global = true, env = "REKISTERI_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database and serve the API (REKISTERI_BIND, default 127.0.0.1:8080).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Copy the SQLite database (consistently, while the server runs), the key file and the
    /// local audio store into a new directory, with a manifest. PostgreSQL: `pg_dump -Fc` the
    /// database, then this with --no-database.
    Backup {
        /// A new (or empty) directory for the copy.
        #[arg(long)]
        to: PathBuf,
        /// Put the key file's copy here instead, apart from the data (another medium or place).
        #[arg(long)]
        keys_to: Option<PathBuf>,
        /// Copy only the key file and the audio (the database is dumped with its own tools).
        #[arg(long)]
        no_database: bool,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the OpenAPI document the service serves at /openapi.json.
    Openapi,
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// API clients (OAuth 2.0 client credentials).
    ApiClient {
        #[command(subcommand)]
        command: ApiClientCommand,
    },
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Periodic jobs, one run now.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Encryption keys: rotation (PL-6).
    Keys {
        #[command(subcommand)]
        command: key_rotation::KeysCommand,
    },
    /// Demo data to try the API with.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Population register (VTJ) change ingestion: import, sync, simulator.
    Vtj {
        #[command(subcommand)]
        command: vtj::VtjCommand,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: vtj::BenchCommand,
    },
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Two demo registrars, a provider, their users and clients; prints the users' passwords and
    /// session tokens once. Strong authentication is off for the demo registrars. A second run
    /// changes nothing.
    Seed {
        /// Print what was made as one JSON document (users with their tokens, organisations,
        /// a client) instead of the tables, for scripts such as `make example`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk every hash chain and check the signed checkpoints; exit 1 naming each first break.
    Verify,
    /// Write entries of one chain as JSON Lines (verify them with tools/verify-audit-export.py).
    Export {
        /// The chain, e.g. usage:<registrar id>, disclosure:<registrar id>, security:platform.
        #[arg(long)]
        chain: String,
        #[arg(long, default_value_t = 1)]
        from_seq: i64,
        #[arg(long, default_value_t = i64::MAX)]
        to_seq: i64,
    },
}

#[derive(Subcommand)]
enum ApiClientCommand {
    /// Register a client; prints its id and secret once.
    Create {
        #[arg(long)]
        name: String,
        /// The organisation's id or OID.
        #[arg(long)]
        organisation: String,
        /// Comma-separated scopes, e.g. clients:read,clients:write.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the platform organisation and the first admin. The password comes from
    /// REKISTERI_ADMIN_PASSWORD or, on a terminal, a prompt; it is never an argument.
    Bootstrap {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Platform")]
        first_name: String,
        #[arg(long, default_value = "Admin")]
        surname: String,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Run a job now, under the same lease as the scheduler (refused while another server runs
    /// it).
    Run {
        #[arg(value_enum)]
        name: JobName,
    },
    /// Each job's schedule, last run, outcome and next run.
    List,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum JobName {
    /// Delete audit entries past their retention (12 years by default), keeping the chains
    /// verifiable, and anonymised client data past the registrar's retention (CL-15, 5 years by
    /// default).
    Retention,
    /// Close the services of clients who died or moved out, then anonymise every client no
    /// longer visible to the registrar (CL-13..CL-15).
    Anonymise,
    /// Remind, close and delete unused accounts (AC-7, AC-8).
    Inactivity,
    /// Close registry use rights 7 working days after their service ended, warn providers
    /// before, mark local copies for destruction and report unconfirmed ones (RU-5, RU-7).
    RegistryUseRights,
    /// Forward the will-service outbox to `REKISTERI_WILL_SERVICE_URL` (CO-6).
    Outbox,
    /// Send the notification outbox (inactivity reminders) over SMTP (`[smtp]`, AC-7).
    Notifications,
    /// Fetch and apply VTJ changes for every registrar with monitored clients (VT-10).
    VtjSync,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print it without secrets.
    Check,
}

/// A failure that ends the command: the message for the operator and the exit code.
pub(crate) struct Failure {
    code: u8,
    message: String,
}

pub(crate) fn usage(message: impl std::fmt::Display) -> Failure {
    Failure {
        code: 2,
        message: message.to_string(),
    }
}

pub(crate) fn runtime(message: impl std::fmt::Display) -> Failure {
    Failure {
        code: 1,
        message: message.to_string(),
    }
}

/// Everything the process creates (the SQLite database with its WAL and journal, the key file,
/// the data directory, exports) is for the service's own user only, whatever umask it was
/// started with. `rustix` is the safe wrapper: the workspace forbids `unsafe`.
fn restrict_created_files() {
    #[cfg(unix)]
    {
        use rustix::fs::Mode;
        rustix::process::umask(Mode::RWXG | Mode::RWXO);
    }
}

/// Creates the directory of the embedded database (the data directory by default) for the
/// service's user only. An existing directory is left as it is: it may be a shared parent such as
/// `/var/lib`, and the files the process creates in it are private by the umask anyway.
fn create_private_dir(dir: &std::path::Path) -> Result<(), Failure> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| runtime(format!("cannot create the data directory {}: {e}", dir.display())))
}

fn main() -> ExitCode {
    restrict_created_files();
    logging::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Openapi => print_openapi(),
        command => match Config::load(cli.config.as_deref(), &|name| std::env::var(name).ok()) {
            Err(e) => Err(usage(e)),
            Ok(config) => match command {
                Command::Serve => serve(&config),
                Command::Migrate => migrate(&config),
                Command::Backup {
                    to,
                    keys_to,
                    no_database,
                } => backup::run(
                    &config,
                    &backup::BackupOptions {
                        to,
                        keys_to,
                        no_database,
                    },
                ),
                Command::Config {
                    command: ConfigCommand::Check,
                } => config_check(&config),
                Command::Openapi => print_openapi(),
                Command::Audit {
                    command: AuditCommand::Verify,
                } => audit_verify(&config),
                Command::Audit {
                    command:
                        AuditCommand::Export {
                            chain,
                            from_seq,
                            to_seq,
                        },
                } => audit_export(&config, &chain, from_seq, to_seq),
                Command::Jobs {
                    command: JobsCommand::Run { name },
                } => jobs::run(&config, name),
                Command::Jobs {
                    command: JobsCommand::List,
                } => jobs::list(&config),
                Command::ApiClient {
                    command:
                        ApiClientCommand::Create {
                            name,
                            organisation,
                            scopes,
                        },
                } => api_client_create(&config, &name, &organisation, &scopes),
                Command::Admin {
                    command:
                        AdminCommand::Bootstrap {
                            email,
                            first_name,
                            surname,
                        },
                } => admin_bootstrap(&config, &email, &first_name, &surname),
                Command::Demo {
                    command: DemoCommand::Seed { json },
                } => demo::seed(&config, json),
                Command::Keys { command } => key_rotation::run(&config, command),
                Command::Vtj { command } => vtj::run(&config, command),
                Command::Bench { command } => vtj::bench(command),
            },
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("rekisteri: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn print_openapi() -> Result<(), Failure> {
    let json = rekisteri_api::openapi().to_pretty_json().map_err(runtime)?;
    println!("{json}");
    Ok(())
}

fn open_and_migrate(config: &Config) -> Result<Pool, Failure> {
    if let rekisteri_db::DatabaseUrl::Sqlite { path } = &config.database_url
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        create_private_dir(dir)?;
    }
    let pool = Pool::open(&config.database_url, &config.pool).map_err(runtime)?;
    let mut conn = pool.get().map_err(runtime)?;
    let applied = migrations::run_pending(&mut conn).map_err(runtime)?;
    if applied.is_empty() {
        log::info!("database {} ({}) is current", config.database_url, pool.backend());
    } else {
        log::info!(
            "applied {} migrations to {}: {}",
            applied.len(),
            config.database_url,
            applied.join(", ")
        );
    }
    drop(conn);
    Ok(pool)
}

fn migrate(config: &Config) -> Result<(), Failure> {
    open_and_migrate(config).map(drop)
}

fn config_check(config: &Config) -> Result<(), Failure> {
    print!("{}", config.describe());
    match keys::load(config, std::env::var("REKISTERI_KEYS").ok(), false) {
        Ok((keyring, source)) => {
            let ids: Vec<String> = keyring.data_key_ids().iter().map(|k| k.to_string()).collect();
            println!(
                "# keys: {source}: data keys {ids:?}, active {:?}",
                keyring.active_key_id().as_str()
            );
            Ok(())
        }
        Err(keys::KeySourceError::Missing(path)) if config.embedded_default => {
            println!("# keys: {path} will be created on first start (embedded default)");
            Ok(())
        }
        Err(e) => Err(usage(e)),
    }
}

fn audit_verify(config: &Config) -> Result<(), Failure> {
    let pool = Pool::open(&config.database_url, &config.pool).map_err(runtime)?;
    let public_key = match keys::load(config, std::env::var("REKISTERI_KEYS").ok(), false) {
        Ok((keyring, _)) => keyring.audit_signer().map(|s| s.public_key()),
        Err(e) => {
            log::warn!("checkpoint signatures not checked: {e}");
            None
        }
    };
    if public_key.is_none() {
        log::warn!("no audit signing key: checkpoint signatures are not checked");
    }
    let options = rekisteri_audit::VerifyOptions {
        public_key: public_key.as_deref(),
        checkpoint_interval: config.audit_checkpoint_interval,
        segment_entries: rekisteri_audit::DEFAULT_SEGMENT_ENTRIES,
    };
    let started = std::time::Instant::now();
    let report = rekisteri_audit::verify_all(&pool, &options).map_err(runtime)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} chains, {} entries, {} signed checkpoints verified in {seconds:.2} s",
        report.chains, report.entries, report.signed_checkpoints
    );
    if report.intact() {
        println!("intact");
        return Ok(());
    }
    for broken in &report.breaks {
        println!("BROKEN {broken}");
    }
    Err(Failure {
        code: 1,
        message: format!("{} chains are broken", report.breaks.len()),
    })
}

fn audit_export(config: &Config, chain: &str, from_seq: i64, to_seq: i64) -> Result<(), Failure> {
    let pool = Pool::open(&config.database_url, &config.pool).map_err(runtime)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written =
        rekisteri_audit::export::export_chain(&mut *pool.get().map_err(runtime)?, chain, from_seq, to_seq, &mut out)
            .map_err(runtime)?;
    drop(out);
    log::info!("exported {written} entries of {chain}");
    Ok(())
}

fn retention(config: &Config, rt: &Runtime, out: &mut JobReport) -> Result<(), Failure> {
    let (pool, keyring, audit) = (&rt.pool, rt.keyring.clone(), rt.audit.clone());
    let now = SystemClock.now();
    let cutoff = now
        .replace_year(now.year() - i32::from(config.audit_retention_years))
        .map_err(|e| usage(format!("retention cut-off: {e}")))?;
    let mut own = pool.connect_unpooled().map_err(runtime)?;
    rekisteri_audit::retention::ensure_partitions(&mut own, now.date()).map_err(runtime)?;
    let report = rekisteri_audit::retention::run(
        &mut own,
        rekisteri_db::to_primitive(cutoff),
        rekisteri_db::to_primitive(now),
    )
    .map_err(runtime)?;
    out.line(format!(
        "retention: {} entries deleted from {} chains (cut-off {cutoff})",
        report.entries_deleted, report.chains_cut
    ));
    out.count("audit_entries_deleted", report.entries_deleted as u64);
    // CL-15: anonymised client data past each registrar's retention, on a connection of its own
    // (it gains the right to purge the change history of what it deletes).
    let mut own = pool.connect_unpooled().map_err(runtime)?;
    let clients = rekisteri_clients::ClientRegister { keyring, audit };
    let report = rekisteri_clients::lifecycle::run_deletion(&mut own, &clients, now).map_err(runtime)?;
    out.line(format!(
        "retention: {} anonymised clients deleted with {} services and {} service events",
        report.clients_deleted, report.services_deleted, report.events_deleted
    ));
    out.count("clients_deleted", report.clients_deleted as u64);
    // CA-9..CA-11: recordings' audio after six months, voicemails and contacts after two years,
    // unless on legal hold.
    let calls = rekisteri_calls::CallRegister {
        keyring: clients.keyring.clone(),
        audit: clients.audit.clone(),
    };
    let report = calls_retention(&mut own, &calls, &open_audio(config)?, now)?;
    out.line(format!(
        "retention: {} call recordings and {} voicemails destroyed, {} contacts deleted, {} kept by legal hold",
        report.recordings_destroyed, report.voicemails_destroyed, report.contacts_deleted, report.held
    ));
    out.count("recordings_destroyed", report.recordings_destroyed);
    out.count("voicemails_destroyed", report.voicemails_destroyed);
    out.count("contacts_deleted", report.contacts_deleted);
    out.count("recordings_kept_by_legal_hold", report.held);
    let audio_failures = report.failures;
    // Expired idempotency keys (PL-2: kept 24 hours; claims remove their registrar's too).
    let keys = rekisteri_idempotency::purge_expired(&mut own, rekisteri_db::to_primitive(now)).map_err(runtime)?;
    out.line(format!("retention: {keys} expired idempotency keys deleted"));
    out.count("idempotency_keys_deleted", keys as u64);
    if audio_failures > 0 {
        // The run went on; the audio it could not delete is tried again next time.
        return Err(runtime(format!(
            "retention: the audio of {audio_failures} recordings could not be deleted (see the log); the next run tries again"
        )));
    }
    Ok(())
}

/// The call register's retention run, deleting audio from the store as it goes, with a spinner
/// on a terminal.
fn calls_retention(
    conn: &mut rekisteri_db::DbConnection,
    calls: &rekisteri_calls::CallRegister,
    audio: &rekisteri_recordings::AudioStore,
    now: time::OffsetDateTime,
) -> Result<rekisteri_calls::retention::CallsRetentionReport, Failure> {
    use std::io::IsTerminal;
    let progress = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template("{spinner} call register: {pos} contacts handled {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let executor = actix_web::rt::Runtime::new().map_err(runtime)?;
    let run_id = rekisteri_crypto::to_hex(&rekisteri_crypto::random_bytes::<16>().map_err(runtime)?);
    let mut destroy = |key: &str| executor.block_on(audio.delete(key)).map_err(|e| e.to_string());
    let mut advance = |n: u64| progress.inc(n);
    let report =
        rekisteri_calls::retention::run(conn, calls, now, &run_id, &mut destroy, &mut advance).map_err(runtime)?;
    progress.finish_and_clear();
    Ok(report)
}

/// CL-13..CL-15: closes the services of clients who died or moved out and anonymises every
/// client past the end of visibility, in every registrar. Safe to re-run.
fn anonymise(rt: &Runtime, out: &mut JobReport) -> Result<(), Failure> {
    let (pool, keyring, clock, audit) = (&rt.pool, rt.keyring.clone(), &rt.clock, rt.audit.clone());
    let mut own = pool.connect_unpooled().map_err(runtime)?;
    let clients = rekisteri_clients::ClientRegister { keyring, audit };
    let report = rekisteri_clients::lifecycle::run_anonymise(&mut own, &clients, clock.now()).map_err(runtime)?;
    out.line(format!(
        "anonymise: {} clients anonymised, {} services closed (client died or moved out)",
        report.clients_anonymised, report.services_closed
    ));
    out.count("clients_anonymised", report.clients_anonymised as u64);
    out.count("services_closed", report.services_closed as u64);
    Ok(())
}

/// What every command that touches personal data or the audit log needs: a migrated database,
/// keys checked against it, and the audit log writer.
#[derive(Clone)]
pub(crate) struct Runtime {
    pool: Pool,
    keyring: Arc<Keyring>,
    clock: Arc<SystemClock>,
    audit: rekisteri_audit::AuditLog,
}

impl Runtime {
    /// The user register on this runtime's keys and audit log, with the default settings.
    pub(crate) fn accounts(&self) -> rekisteri_accounts::Register {
        rekisteri_accounts::Register {
            keyring: self.keyring.clone(),
            audit: self.audit.clone(),
            options: rekisteri_accounts::AccountsOptions::default(),
            access_cache: Default::default(),
        }
    }
}

pub(crate) fn open_runtime(config: &Config) -> Result<Runtime, Failure> {
    let pool = open_and_migrate(config)?;
    let (keyring, source) = keys::load(config, std::env::var("REKISTERI_KEYS").ok(), true).map_err(usage)?;
    let clock = Arc::new(SystemClock);
    let mut conn = pool.get().map_err(runtime)?;
    rekisteri_db::keycheck::verify_keyring(&mut conn, &keyring, clock.now()).map_err(usage)?;
    keys::follow_rotation(&mut conn, &keyring).map_err(usage)?;
    log::info!(
        "keys loaded from {source}; writing with data key {} and blind-index key {}",
        keyring.active_key_id(),
        keyring.active_blind_index_key_id()
    );
    rekisteri_audit::retention::ensure_partitions(&mut conn, clock.now().date()).map_err(runtime)?;
    drop(conn);
    if keyring.audit_signer().is_none() {
        log::warn!("the key file has no audit_signing_key: audit checkpoints are not signed");
    }
    let keyring = Arc::new(keyring);
    let audit = rekisteri_audit::AuditLog::start(
        pool.clone(),
        clock.clone(),
        Some(keyring.clone()),
        rekisteri_audit::WriterOptions {
            checkpoint_interval: config.audit_checkpoint_interval,
            ..rekisteri_audit::WriterOptions::default()
        },
    )
    .map_err(runtime)?;
    Ok(Runtime {
        pool,
        keyring,
        clock,
        audit,
    })
}

fn admin_bootstrap(config: &Config, email: &str, first_name: &str, surname: &str) -> Result<(), Failure> {
    let password = match std::env::var("REKISTERI_ADMIN_PASSWORD") {
        Ok(password) => password,
        Err(_) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            let password = rpassword::prompt_password("Password for the first admin: ").map_err(runtime)?;
            let again = rpassword::prompt_password("Again: ").map_err(runtime)?;
            if password != again {
                return Err(usage("the passwords differ"));
            }
            password
        }
        Err(_) => {
            return Err(usage(
                "set REKISTERI_ADMIN_PASSWORD (there is no terminal to prompt on)",
            ));
        }
    };
    let rt = open_runtime(config)?;
    let register = rt.accounts();
    let (pool, clock) = (rt.pool, rt.clock);
    let mut conn = pool.get().map_err(runtime)?;
    let account =
        rekisteri_accounts::bootstrap_admin(&mut conn, &register, email, first_name, surname, &password, clock.now())
            .map_err(|e| match e {
            rekisteri_accounts::AccountsError::Refused(Refusal::Validation { .. })
            | rekisteri_accounts::AccountsError::Refused(Refusal::Rule { .. })
            | rekisteri_accounts::AccountsError::Refused(Refusal::Conflict(_)) => usage(e),
            other => runtime(other),
        })?;
    println!(
        "admin account {} created in the platform organisation {}; log in at POST /v1/auth/login",
        account.id, account.organisation_id
    );
    Ok(())
}

fn api_client_create(config: &Config, name: &str, organisation: &str, scopes: &[String]) -> Result<(), Failure> {
    let rt = open_runtime(config)?;
    let register = rt.accounts();
    let (pool, clock) = (rt.pool, rt.clock);
    let created = rekisteri_accounts::api_clients::create_api_client(
        &mut *pool.get().map_err(runtime)?,
        &register,
        None,
        name,
        organisation,
        scopes,
        clock.now(),
    )
    .map_err(|e| match e {
        rekisteri_accounts::AccountsError::Refused(Refusal::Validation { .. })
        | rekisteri_accounts::AccountsError::Refused(Refusal::Rule { .. }) => usage(e),
        other => runtime(other),
    })?;
    println!("client_id = {}", created.client.id);
    println!("client_secret = {}", created.secret);
    println!("# the secret is shown only now; store it in the client system's secret store");
    Ok(())
}

fn inactivity(rt: &Runtime, out: &mut JobReport) -> Result<(), Failure> {
    let (pool, clock) = (&rt.pool, &rt.clock);
    let register = rt.accounts();
    let report = rekisteri_accounts::inactivity::run_inactivity(
        &mut *pool.get().map_err(runtime)?,
        &register,
        rekisteri_accounts::inactivity::InactivityOptions::default(),
        clock.now(),
    )
    .map_err(runtime)?;
    out.line(format!(
        "inactivity: {} reminded, {} closed, {} deleted, {} kept (held rights to client data)",
        report.reminded, report.closed, report.deleted, report.kept
    ));
    out.count("reminded", report.reminded as u64);
    out.count("closed", report.closed as u64);
    out.count("deleted", report.deleted as u64);
    out.count("kept", report.kept as u64);
    Ok(())
}

fn registry_use_rights(rt: &Runtime, out: &mut JobReport) -> Result<(), Failure> {
    let (pool, clock) = (&rt.pool, &rt.clock);
    let report = rekisteri_consent::run_closing(&mut *pool.get().map_err(runtime)?, clock.now()).map_err(runtime)?;
    out.line(format!(
        "registry-use-rights: {} closed, {} providers warned, {} local copies marked for destruction, {} not yet confirmed destroyed",
        report.closed.len(),
        report.warned.len(),
        report.marked_for_destruction,
        report.unconfirmed_local_copies.len()
    ));
    out.count("closed", report.closed.len() as u64);
    out.count("warned", report.warned.len() as u64);
    out.count("marked_for_destruction", report.marked_for_destruction as u64);
    out.count("unconfirmed_local_copies", report.unconfirmed_local_copies.len() as u64);
    for (registrar, case_oid, document) in &report.unconfirmed_local_copies {
        out.line(format!(
            "unconfirmed local copy: registrar {registrar} case {case_oid} document {document}"
        ));
    }
    Ok(())
}

fn will_service_outbox(rt: &Runtime, out: &mut JobReport) -> Result<(), Failure> {
    let url = std::env::var("REKISTERI_WILL_SERVICE_URL")
        .map_err(|_| usage("set REKISTERI_WILL_SERVICE_URL to the will service's recording endpoint"))?;
    let (pool, keyring, clock, audit) = (&rt.pool, rt.keyring.clone(), &rt.clock, rt.audit.clone());
    let register = rekisteri_consent::ConsentRegister {
        clients: rekisteri_clients::ClientRegister { keyring, audit },
        outbox_wakeup: None,
    };
    let will = rekisteri_consent::WillService::new(url).map_err(runtime)?;
    let report = rekisteri_consent::forward_due(&mut *pool.get().map_err(runtime)?, &register, &will, clock.now())
        .map_err(runtime)?;
    out.line(format!(
        "outbox: {} delivered to the will service, {} failed (retried later), {} waiting",
        report.delivered, report.failed, report.waiting
    ));
    out.count("delivered", report.delivered as u64);
    out.count("failed", report.failed as u64);
    out.count("waiting", report.waiting as u64);
    Ok(())
}

/// AC-7: the notification outbox over SMTP. A run that could not send everything fails after
/// trying every due item (each is retried with backoff), so `jobs list` shows the failure.
fn notifications(config: &Config, rt: &Runtime, out: &mut JobReport) -> Result<(), Failure> {
    use rekisteri_accounts::notifications::{DeliveryOptions, Mailer, deliver_due};
    let smtp = config
        .smtp
        .as_ref()
        .ok_or_else(|| usage("configure the mail relay ([smtp] host and sender)"))?;
    let mailer = Mailer::new(smtp).map_err(usage)?;
    let register = rt.accounts();
    let report = deliver_due(
        &mut *rt.pool.get().map_err(runtime)?,
        &register,
        &mailer,
        DeliveryOptions::default(),
        rt.clock.now(),
    )
    .map_err(runtime)?;
    out.line(format!(
        "notifications: {} sent, {} failed (retried later), {} dropped (no longer applied), {} waiting",
        report.sent, report.failed, report.dropped, report.waiting
    ));
    out.count("sent", report.sent);
    out.count("failed", report.failed);
    out.count("dropped", report.dropped);
    out.count("waiting", report.waiting);
    if report.failed > 0 {
        let mut errors = report.errors.clone();
        errors.sort();
        errors.dedup();
        return Err(runtime(format!(
            "notifications: {} of {} not sent ({}); each is retried with backoff",
            report.failed,
            report.failed + report.sent,
            errors.join(", ")
        )));
    }
    Ok(())
}

/// The store of call recordings' audio (CA-4); a local directory is made private to us.
pub(crate) fn open_audio(config: &Config) -> Result<rekisteri_recordings::AudioStore, Failure> {
    if let rekisteri_recordings::StorageConfig::Local { dir } = &config.audio {
        std::fs::create_dir_all(dir).map_err(|e| runtime(format!("cannot create {}: {e}", dir.display())))?;
    }
    rekisteri_recordings::AudioStore::new(config.audio.clone(), config.recording_max_bytes).map_err(runtime)
}

fn serve(config: &Config) -> Result<(), Failure> {
    let rt = open_runtime(config)?;
    let outbox_wakeup = rekisteri_core::Wakeup::new();
    let scheduler = jobs::start(config, &rt, &outbox_wakeup);
    let Runtime {
        pool,
        keyring,
        clock,
        audit,
    } = rt;
    let listener =
        TcpListener::bind(&config.bind).map_err(|e| runtime(format!("cannot listen on {}: {e}", config.bind)))?;
    let instance =
        rekisteri_idempotency::Instance::new(time::Duration::try_from(config.instance_lease).map_err(runtime)?);
    let heartbeat = Heartbeat::start(
        &pool,
        clock.clone(),
        &instance,
        KeyFollower {
            keyring: keyring.clone(),
            config: config.clone(),
        },
    )?;
    let settings = ServerSettings {
        workers: config.workers,
        blocking_threads: config.pool.max_size as usize,
        body_limit: config.max_body_bytes,
        shutdown_timeout: config.shutdown_timeout,
        handle_signals: true,
    };
    let writes = if config.sqlite_group_commit {
        rekisteri_db::GroupCommit::start(&pool).map_err(runtime)?
    } else {
        rekisteri_db::GroupCommit::off()
    };
    let state = AppState {
        pool,
        blocking_calls: Default::default(),
        writes,
        request_db_timeout: config.request_db_timeout,
        audit,
        keyring,
        accounts: rekisteri_accounts::AccountsOptions {
            identity_providers: Arc::new(config.identity_providers.clone()),
            ..rekisteri_accounts::AccountsOptions::default()
        },
        clock,
        keys_verified: true,
        access_cache: Default::default(),
        hashing: rekisteri_api::hashing::HashingPool::new(config.hashing_threads, config.hashing_queue)
            .map_err(runtime)?,
        trusted_proxies: config.trusted_proxies.clone(),
        vtj: rekisteri_vtj::VtjConfig::from_env(&|name| std::env::var(name).ok()).map_err(usage)?,
        audio: open_audio(config)?,
        instance,
        metrics_token: config
            .metrics_token
            .as_deref()
            .map(rekisteri_api::metrics::ScrapeToken::new),
        outbox_wakeup,
    };
    let address = listener.local_addr().map_err(runtime)?;
    log::info!("serving on http://{address} (docs at /docs)");
    actix_web::rt::System::new().block_on(async move {
        let server = rekisteri_api::server(state, &settings, listener).map_err(runtime)?;
        server.await.map_err(runtime)
    })?;
    if let Some(scheduler) = scheduler {
        scheduler.stop(config.shutdown_timeout);
    }
    heartbeat.stop();
    log::info!("stopped");
    Ok(())
}

/// What the heartbeat needs to follow a key rotation (PL-6).
struct KeyFollower {
    keyring: Arc<Keyring>,
    config: Config,
}

/// Keeps this server's instance row alive while it serves, so that the `Idempotency-Key` claims
/// it holds are not taken over (PL-17); removes the row at a clean stop.
struct Heartbeat {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
    pool: rekisteri_db::Pool,
    instance: rekisteri_idempotency::Instance,
}

impl Heartbeat {
    fn start(
        pool: &rekisteri_db::Pool,
        clock: rekisteri_core::SharedClock,
        instance: &rekisteri_idempotency::Instance,
        keys: KeyFollower,
    ) -> Result<Self, Failure> {
        let keeps_statistics = pool
            .get()
            .map_err(runtime)
            .and_then(|mut conn| rekisteri_db::statistics::kept_by_server(&mut conn).map_err(runtime))?;
        if keeps_statistics {
            log::warn!(
                "PostgreSQL's autovacuum is off: this server analyses the tables autovacuum would, so that \
                 the planner's statistics follow the data (turn autovacuum on in production)"
            );
        }
        let beat = move |pool: &rekisteri_db::Pool,
                         clock: &rekisteri_core::SharedClock,
                         instance: &rekisteri_idempotency::Instance|
              -> Result<(), String> {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            rekisteri_idempotency::register_instance(&mut conn, instance, rekisteri_db::to_primitive(clock.now()))
                .map_err(|e| e.to_string())?;
            keys::keep_up_with_rotation(&mut conn, &keys.keyring, &keys.config, &instance.id, clock.now())
                .map_err(|e| format!("keys: {e}"))?;
            if keeps_statistics {
                let analysed =
                    rekisteri_db::statistics::analyze_stale(&mut conn).map_err(|e| format!("statistics: {e}"))?;
                if !analysed.is_empty() {
                    log::info!("analysed for the planner: {}", analysed.join(", "));
                }
            }
            Ok(())
        };
        beat(pool, &clock, instance).map_err(|e| runtime(format!("cannot register this server instance: {e}")))?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (thread_pool, thread_clock, thread_instance) = (pool.clone(), clock, instance.clone());
        let thread = std::thread::Builder::new()
            .name("instance-heartbeat".into())
            .spawn(move || {
                let every = thread_instance.renew_every();
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    // Missed renewals only let other servers give up this one's claims early;
                    // the claims' commit check keeps that safe. A key rotation waits for the
                    // report instead.
                    if let Err(error) = beat(&thread_pool, &thread_clock, &thread_instance) {
                        log::warn!("this server's instance lease could not be renewed: {error}");
                    }
                }
            })
            .map_err(runtime)?;
        Ok(Self {
            stop,
            thread,
            pool: pool.clone(),
            instance: instance.clone(),
        })
    }

    fn stop(self) {
        drop(self.stop);
        if self.thread.join().is_err() {
            log::error!("the instance heartbeat ended abnormally");
        }
        let retired = self.pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
            rekisteri_idempotency::retire_instance(&mut conn, &self.instance).map_err(|e| e.to_string())
        });
        if let Err(error) = retired {
            log::warn!("this server's instance row could not be removed (its lease runs out instead): {error}");
        }
    }
}
