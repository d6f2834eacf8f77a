//! `make bench` / `make bench-quick`: the headline figures of PL-12..PL-16 measured against what
//! the database itself does on this machine in the same run (the raw baselines), because these
//! machines are shared and an absolute figure moves by a third between runs.
//!
//! Per database: a fresh database, `rekisteri migrate` and `rekisteri demo seed` by the real
//! binary, the server started as an operator starts it (cold start, idle memory), clients with
//! their first service and service events pushed over HTTP (which is also the seeding), the
//! usage log filled up so that index growth counts, audited reads over HTTP (closed loop for the
//! maximum rate, then an open loop at 80 % of it for latency), peak memory, authenticated reads
//! while 64 connections flood login and invitation acceptance (`flood`), `audit verify`
//! entries/s, the call-recordings register's audio (one long upload with the server's memory
//! watched, short uploads, ranged reads on a listening grant), and the raw baselines with the
//! server stopped.
//!
//! Figures go to the terminal as a Markdown table and to `target/bench/results.json`.

mod calls;
mod ceiling;
mod flood;
mod load;
mod report;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use load::Plan;
use rekisteri_audit::{VerifyOptions, WriterOptions};
use rekisteri_bench::seed::{Demo, PostgresDatabase, absolute, client_body, fill_log, fresh_dir};
use rekisteri_bench::{raw, server};
use rekisteri_db::{DatabaseUrl, Pool, PoolOptions, to_primitive};
use report::{Figure, Target};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "rekisteri-bench",
    about = "The headline figures (PL-12..PL-16) against raw database baselines"
)]
struct Args {
    /// Small scale, to prove that the benchmark runs (about a minute per database).
    #[arg(long)]
    quick: bool,
    /// Only this database (`sqlite` or `postgres`).
    #[arg(long)]
    only: Option<String>,
    /// The server binary to measure.
    #[arg(long, default_value = "target/release/rekisteri")]
    server: PathBuf,
    /// Where the figures are written.
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
    /// Seconds of each HTTP load phase (to attach a profiler to the server, say).
    #[arg(long)]
    load_seconds: Option<f64>,
    /// Which phases run: all of them; only the read side (pushes, log fill, audited reads,
    /// the login flood, restart, audit verify, raw baselines and the HTTP ceiling: no call
    /// recordings, bulk jobs or VTJ); only the call recordings' (upload and ranged reads, on
    /// the demo seed alone); only the pushes (clients with their first service, then service
    /// events); only the key rotation (over clients inserted directly); only the anonymisation
    /// run (over departed clients inserted directly); or only the log's retention (the log
    /// filled to its size, then the entries past retention, then the run).
    #[arg(long, value_enum, default_value = "all")]
    phases: Phases,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phases {
    All,
    Reads,
    Calls,
    Pushes,
    Keys,
    Anonymise,
    Retention,
}

#[derive(Clone, Copy)]
struct Scale {
    clients: usize,
    events: usize,
    log_entries: u64,
    departed_clients: usize,
    old_log_entries: u64,
    vtj_changes: u64,
    load_seconds: f64,
    raw_seconds: f64,
    read_concurrency: usize,
    push_concurrency: usize,
    recording_bytes: u64,
    short_recordings: usize,
    range_concurrency: usize,
}

impl Scale {
    fn of(quick: bool) -> Self {
        if quick {
            Self {
                clients: 2_000,
                events: 2_000,
                log_entries: 20_000,
                departed_clients: 5_000,
                old_log_entries: 50_000,
                vtj_changes: 10_000,
                load_seconds: 2.0,
                raw_seconds: 1.0,
                read_concurrency: 32,
                push_concurrency: 16,
                recording_bytes: 8_000_000,
                short_recordings: 5,
                range_concurrency: 8,
            }
        } else {
            Self {
                clients: 100_000,
                events: 20_000,
                log_entries: 1_000_000,
                departed_clients: 1_000_000,
                old_log_entries: 10_000_000,
                vtj_changes: 1_000_000,
                load_seconds: 10.0,
                raw_seconds: 5.0,
                read_concurrency: 64,
                push_concurrency: 32,
                // The largest recording the server takes by default (REKISTERI_RECORDING_MAX_BYTES).
                recording_bytes: 200_000_000,
                short_recordings: 20,
                range_concurrency: 16,
            }
        }
    }

    fn json(&self) -> Value {
        json!({
            "clients": self.clients,
            "service_events": self.events,
            "usage_log_entries": self.log_entries,
            "anonymised_clients": self.departed_clients,
            "retention_log_entries": self.old_log_entries,
            "vtj_changes": self.vtj_changes,
            "load_seconds": self.load_seconds,
            "raw_seconds": self.raw_seconds,
            "read_concurrency": self.read_concurrency,
            "push_concurrency": self.push_concurrency,
            "recording_bytes": self.recording_bytes,
            "short_recordings": self.short_recordings,
            "short_recording_bytes": SHORT_RECORDING_BYTES,
            "range_bytes": calls::RANGE_LEN,
            "range_concurrency": self.range_concurrency,
        })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rekisteri-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let mut scale = Scale::of(args.quick);
    if let Some(seconds) = args.load_seconds {
        scale.load_seconds = seconds;
    }
    if !args.server.is_file() {
        return Err(format!(
            "no server binary at {} (make bench builds it)",
            args.server.display()
        ));
    }
    let postgres = std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .ok()
        .filter(|url| !url.is_empty());
    let wanted = |name: &str| args.only.as_deref().is_none_or(|only| only == name);
    let mut figures = Vec::new();
    let mut notes = Vec::new();
    let root = PathBuf::from("target/bench");
    // A phase that fails stops its database's run; the figures measured before it are still
    // printed and written, and the benchmark then exits with the failure.
    let mut failures = Vec::new();
    if wanted("sqlite")
        && let Err(failure) = run_sqlite(&root, args, scale, &mut figures, &mut notes)
    {
        failures.push(format!("sqlite: {failure}"));
    }
    if wanted("postgres") {
        match &postgres {
            Some(admin_url) => {
                if let Err(failure) = run_postgres(admin_url, &root, args, scale, &mut figures, &mut notes) {
                    failures.push(format!("postgres: {failure}"));
                }
            }
            None => notes.push("PostgreSQL not measured: set BENCH_DATABASE_URL (or TEST_DATABASE_URL)".to_owned()),
        }
    }
    notes.extend(failures.iter().map(|f| format!("stopped early: {f}")));
    let binary_size = std::fs::metadata(&args.server).map(|m| m.len()).unwrap_or(0);
    figures.push(Figure::new("-", "release binary size", binary_size as f64 / 1e6, "MB").target(Target::Below(40.0)));
    println!();
    println!("{}", report::table(&figures));
    for note in &notes {
        println!("note: {note}");
    }
    let document = report::document(&figures, scale.json(), &notes);
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(&document).map_err(|e| e.to_string())?;
    std::fs::write(&args.out, text).map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!("figures written to {}", args.out.display());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

fn run_sqlite(
    root: &Path,
    args: &Args,
    scale: Scale,
    figures: &mut Vec<Figure>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let dir = fresh_dir(&root.join("sqlite"))?;
    let url = format!("sqlite://{}", absolute(&dir)?.join("rekisteri.db").display());
    run_database("sqlite", &url, &dir, args, scale, figures, notes)?;
    if args.phases != Phases::All {
        return Ok(());
    }
    let vtj_url = format!("sqlite://{}", absolute(&dir)?.join("vtj.db").display());
    run_vtj("sqlite", &vtj_url, scale, figures)
}

fn run_postgres(
    admin_url: &str,
    root: &Path,
    args: &Args,
    scale: Scale,
    figures: &mut Vec<Figure>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let dir = fresh_dir(&root.join("postgres"))?;
    let database = PostgresDatabase::create(admin_url, "rekisteri_bench")?;
    let result = run_database("postgres", &database.url, &dir, args, scale, figures, notes);
    database.drop_it();
    result?;
    if args.phases != Phases::All {
        return Ok(());
    }
    let database = PostgresDatabase::create(admin_url, "rekisteri_bench")?;
    let result = run_vtj("postgres", &database.url, scale, figures);
    database.drop_it();
    result
}

/// How many of the pushed clients the audited reads (and their raw baseline) cycle through.
const READ_SAMPLE: usize = 20_000;

/// Connections of the login flood (issue 18).
const FLOOD_CONNECTIONS: usize = 64;

fn step(what: &str) {
    println!("-- {what}");
}

/// One HTTP phase: runs the plan, prints and checks the outcome.
fn http_phase(
    what: &str,
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    plan: Plan,
    keep_bodies: bool,
) -> Result<load::Outcome, String> {
    let outcome = load::run(addr, requests, plan, keep_bodies)?;
    println!(
        "   {what}: {} ok, {} failed in {:.1} s = {:.0}/s",
        outcome.ok,
        outcome.failed,
        outcome.elapsed.as_secs_f64(),
        outcome.rate()
    );
    if outcome.failed > 0 {
        return Err(format!(
            "{what}: {} requests failed, the first: {}",
            outcome.failed,
            outcome.first_failure.as_deref().unwrap_or("?")
        ));
    }
    Ok(outcome)
}

/// Writes the pages changed so far back to the database files. Without it the fill's WAL is
/// written back during the read phase that follows (PostgreSQL checkpoints every few seconds
/// when `max_wal_size` is passed, and each one makes the next change of every page log the whole
/// page again), and the read figures measure the fill before them (docs/performance.md).
fn checkpoint(pool: &Pool) -> Result<(), String> {
    use diesel::connection::SimpleConnection;
    let mut conn = pool.get().map_err(|e| format!("checkpoint: {e}"))?;
    let sql = match conn.backend() {
        rekisteri_db::Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
        rekisteri_db::Backend::Postgres => "CHECKPOINT",
    };
    conn.batch_execute(sql).map_err(|e| format!("checkpoint: {e}"))
}

/// The benchmark's own pool on the server's database, and the server's key file.
fn open_database(url: &str, setup: &server::Setup) -> Result<(Pool, rekisteri_crypto::Keyring), String> {
    let pool = Pool::open(
        &DatabaseUrl::parse(url).map_err(|e| e.to_string())?,
        &PoolOptions::default(),
    )
    .map_err(|e| format!("opening the database: {e}"))?;
    let keyring = rekisteri_crypto::Keyring::from_toml(
        &std::fs::read_to_string(&setup.key_file).map_err(|e| format!("key file: {e}"))?,
    )
    .map_err(|e| format!("key file: {e}"))?;
    Ok((pool, keyring))
}

#[allow(clippy::too_many_arguments)]
fn run_database(
    database: &'static str,
    url: &str,
    dir: &Path,
    args: &Args,
    scale: Scale,
    figures: &mut Vec<Figure>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    println!("== {database}");
    let setup = server::Setup {
        binary: absolute(&args.server)?,
        dir: absolute(dir)?,
        database_url: url.to_owned(),
        key_file: absolute(dir)?.join("keys.toml"),
        addr: server::free_addr()?,
    };
    server::write_key_file(&setup.key_file)?;
    step("migrate and seed the demo (rekisteri migrate, rekisteri demo seed)");
    setup.run(&["migrate"])?;
    let demo = Demo::parse(&setup.run(&["demo", "seed"])?)?;

    step("start the server");
    let (mut server, first_start) = setup.serve()?;
    std::thread::sleep(Duration::from_secs(1));
    let (idle_rss, _, _) = server.memory()?;
    notes.push(format!(
        "{database}: first start on an empty database (migrations included) took {:.0} ms; the server ran with {}",
        first_start.as_secs_f64() * 1000.0,
        server::allocator_settings()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    println!(
        "   ready in {:.0} ms, idle RSS {:.1} MB",
        first_start.as_secs_f64() * 1000.0,
        idle_rss as f64 / 1e6
    );

    if args.phases == Phases::Calls {
        let result = run_calls(database, &server, &demo, scale, figures);
        server.stop();
        return result;
    }
    if args.phases == Phases::Keys {
        server.stop();
        let (pool, keyring) = open_database(url, &setup)?;
        step(&format!(
            "insert {} clients with sealed fields and a service each",
            scale.clients
        ));
        raw::seed_sealed_clients(&pool, &keyring, &demo.registrar, &demo.provider, scale.clients)?;
        return rotate_keys(database, &setup, scale, figures);
    }
    if args.phases == Phases::Anonymise {
        server.stop();
        let (pool, _) = open_database(url, &setup)?;
        return measure_anonymise(database, &setup, &pool, &demo, scale, figures);
    }
    if args.phases == Phases::Retention {
        server.stop();
        let (pool, keyring) = open_database(url, &setup)?;
        step(&format!("fill the usage log up to {} entries", scale.log_entries));
        let filled = fill_log(&pool, &keyring, &demo.registrar, scale.log_entries, None)?;
        println!("   {filled} entries added");
        return measure_retention(database, &setup, &pool, &keyring, scale, figures);
    }

    let today = time::OffsetDateTime::now_utc().date();
    let valid_from = today.replace_day(1).map_err(|e| e.to_string())?;
    let rid = &demo.registrar;

    step(&format!(
        "push {} clients with their first service over HTTP",
        scale.clients
    ));
    let requests: Vec<Vec<u8>> = (0..scale.clients)
        .map(|n| {
            let body = client_body(n, &demo.provider, valid_from)?;
            Ok(load::render(
                "POST",
                &format!("/v1/registrars/{rid}/clients"),
                &demo.handler_token,
                Some(&body),
            ))
        })
        .collect::<Result<_, String>>()?;
    let plan = Plan::Closed {
        concurrency: scale.push_concurrency,
        count: Some(scale.clients),
        duration: Duration::from_secs(3600),
    };
    let cpu = server.cpu_seconds()?;
    let mut pushed = http_phase("clients", server.addr, Arc::new(requests), plan, true)?;
    let push_cpu = (server.cpu_seconds()? - cpu) / pushed.ok.max(1) as f64;
    let mut client_ids = Vec::with_capacity(scale.clients);
    let mut service_ids = Vec::with_capacity(scale.clients);
    for (_, body) in &pushed.bodies {
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("a created client: {e}"))?;
        let id = value["id"].as_str().ok_or("a created client without an id")?;
        let service = value["services"][0]["id"]
            .as_str()
            .ok_or("a created client without a service")?;
        client_ids.push(id.to_owned());
        service_ids.push(service.to_owned());
    }
    pushed.bodies.clear();
    figures.push(
        Figure::new(database, "push: client with first service", pushed.rate(), "/s")
            .target(Target::AtLeast(if database == "sqlite" { 5000.0 } else { 4000.0 })),
    );
    figures
        .push(Figure::new(database, "push: client, p99", pushed.percentile_ms(0.99), "ms").target(Target::Below(50.0)));

    step(&format!("push {} service events over HTTP", scale.events));
    let event = json!({"delivered_on": today.to_string(), "quantity": 1, "note": "Aamukäynti"}).to_string();
    let requests: Vec<Vec<u8>> = (0..scale.events)
        .map(|n| {
            let sid = &service_ids[n % service_ids.len()];
            load::render(
                "POST",
                &format!("/v1/registrars/{rid}/services/{sid}/events"),
                &demo.staff_token,
                Some(&event),
            )
        })
        .collect();
    let plan = Plan::Closed {
        concurrency: scale.push_concurrency,
        count: Some(scale.events),
        duration: Duration::from_secs(3600),
    };
    let cpu = server.cpu_seconds()?;
    let mut events = http_phase("service events", server.addr, Arc::new(requests), plan, false)?;
    let event_cpu = (server.cpu_seconds()? - cpu) / events.ok.max(1) as f64;
    figures.push(
        Figure::new(database, "push: service event", events.rate(), "/s")
            .target(Target::AtLeast(if database == "sqlite" { 5000.0 } else { 4000.0 })),
    );
    figures.push(
        Figure::new(database, "push: service event, p99", events.percentile_ms(0.99), "ms").target(Target::Below(50.0)),
    );
    if args.phases == Phases::Pushes {
        server.stop();
        for (name, seconds) in [
            ("server CPU per client push", push_cpu),
            ("server CPU per service event", event_cpu),
        ] {
            figures.push(Figure::new(database, name, seconds * 1e6, "µs"));
        }
        return Ok(());
    }

    let (pool, keyring) = open_database(url, &setup)?;
    step(&format!("fill the usage log up to {} entries", scale.log_entries));
    let filled = fill_log(&pool, &keyring, rid, scale.log_entries, None)?;
    println!("   {filled} entries added");
    step("checkpoint, so that the reads do not pay for writing back the fill");
    // PostgreSQL lets only superusers and `pg_checkpoint` members checkpoint: a run as
    // another role goes on, noted.
    if let Err(e) = checkpoint(&pool) {
        println!("   {e}");
        notes.push(format!("{database}: the read phase started without a checkpoint ({e})"));
    }

    step("audited read over HTTP: closed loop for the maximum rate");
    let sample: Vec<Vec<u8>> = client_ids
        .iter()
        .take(READ_SAMPLE)
        .map(|id| audited_read(rid, id, &demo.handler_token))
        .collect();
    let sample = Arc::new(sample);
    let plan = Plan::Closed {
        concurrency: scale.read_concurrency,
        count: None,
        duration: Duration::from_secs_f64(scale.load_seconds),
    };
    let cpu = server.cpu_seconds()?;
    let mut closed = http_phase("audited reads", server.addr, sample.clone(), plan, false)?;
    let read_cpu = (server.cpu_seconds()? - cpu) / closed.ok.max(1) as f64;
    println!("   server CPU {:.0} µs per audited read", read_cpu * 1e6);
    let max_rate = closed.rate();
    let closed_p99 = closed.percentile_ms(0.99);
    println!(
        "   closed-loop p99 {closed_p99:.1} ms at concurrency {}",
        scale.read_concurrency
    );
    step("audited read over HTTP: open loop at 80 % of the maximum");
    let plan = Plan::Open {
        rate: 0.8 * max_rate,
        connections: scale.read_concurrency * 4,
        duration: Duration::from_secs_f64(scale.load_seconds),
    };
    let mut open = http_phase("audited reads at 80 %", server.addr, sample, plan, false)?;
    let (p50, p99, p999) = (
        open.percentile_ms(0.50),
        open.percentile_ms(0.99),
        open.percentile_ms(0.999),
    );
    println!("   p50 {p50:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms");
    // A p99 near the p99.9 is a stall, not a slow path: say when, so that it can be matched
    // against the server's periodic work (heartbeat, checkpoints).
    let slow_ms = (4.0 * p50).max(20.0);
    for (at, requests, worst) in open.stalls(slow_ms).iter().take(20) {
        let wall = open
            .started_at
            .map(|start| (start + time::Duration::seconds_f64(*at)).time().to_string())
            .unwrap_or_default();
        println!("   stall at {at:.2} s ({wall} UTC): {requests} answers over {slow_ms:.0} ms, worst {worst:.1} ms");
    }
    let (_, peak_rss, anonymous_rss) = server.memory()?;
    // Each figure is kept as soon as it is measured, so that a later phase that fails leaves
    // the ones before it in the table and the JSON.
    figures.push(
        Figure::new(database, "audited read, max rate", max_rate, "req/s")
            .target(Target::AtLeast(if database == "sqlite" { 20_000.0 } else { 6_000.0 })),
    );
    figures.push(
        Figure::new(database, "audited read, p99 at 80 % load", p99, "ms")
            .target(Target::Below(20.0))
            .against("p50 at 80 % load", p50, "ms", None),
    );
    for (name, seconds) in [
        ("server CPU per audited read", read_cpu),
        ("server CPU per client push", push_cpu),
        ("server CPU per service event", event_cpu),
    ] {
        figures.push(Figure::new(database, name, seconds * 1e6, "µs"));
    }
    figures.push(Figure::new(database, "idle RSS", idle_rss as f64 / 1e6, "MB").target(Target::Below(50.0)));
    figures
        .push(Figure::new(database, "peak RSS under load", peak_rss as f64 / 1e6, "MB").target(Target::Below(200.0)));
    // The peak counts SQLite's mapped database pages once per pooled connection; the process's
    // own memory under load is this.
    figures.push(Figure::new(
        database,
        "anonymous RSS after load",
        anonymous_rss as f64 / 1e6,
        "MB",
    ));

    step(&format!(
        "authenticated reads while {} connections flood login and invitation acceptance",
        FLOOD_CONNECTIONS
    ));
    // GET /v1/me and audited client reads, alternately, at a quarter of the maximum rate.
    let reads: Vec<Vec<u8>> = client_ids
        .iter()
        .take(2_000)
        .flat_map(|id| {
            [
                load::render("GET", "/v1/me", &demo.handler_token, None),
                audited_read(rid, id, &demo.handler_token),
            ]
        })
        .collect();
    let flooded = flood::run(
        server.addr,
        Arc::new(reads),
        0.25 * max_rate,
        scale.read_concurrency,
        FLOOD_CONNECTIONS,
        Duration::from_secs_f64(scale.load_seconds),
    )?;
    let statuses: Vec<String> = flooded
        .flood_statuses
        .iter()
        .map(|(status, count)| format!("{status}: {count}"))
        .collect();
    println!(
        "   {} reads: p50 {:.2} ms, p99 {:.2} ms (without the flood p99 {:.2} ms); flood answered {:.0}/s ({})",
        flooded.reads,
        flooded.p50_ms,
        flooded.p99_ms,
        flooded.quiet_p99_ms,
        flooded.flood_answered_per_second,
        statuses.join(", ")
    );
    notes.push(format!(
        "{database}: the login and invitation flood's answers by status: {}",
        statuses.join(", ")
    ));
    figures.push(
        Figure::new(
            database,
            "authenticated read p99 under a login flood",
            flooded.p99_ms,
            "ms",
        )
        .target(Target::Below(50.0))
        .against("p99 without the flood", flooded.quiet_p99_ms, "ms", None),
    );
    figures.push(Figure::new(
        database,
        "login and invitation flood, answered",
        flooded.flood_answered_per_second,
        "req/s",
    ));

    // After the flood and the figures of memory under load, so that neither the audio on
    // disk nor the upload's buffers touch them.
    if args.phases == Phases::All {
        run_calls(database, &server, &demo, scale, figures)?;
    }

    step("stop the server, restart it cold on the seeded data");
    server.stop();
    let (mut restarted, cold_start) = setup.serve()?;
    restarted.stop();
    println!("   ready in {:.0} ms", cold_start.as_secs_f64() * 1000.0);
    figures.push(
        Figure::new(database, "cold start to ready", cold_start.as_secs_f64() * 1000.0, "ms")
            .target_if(database == "sqlite", Target::Below(1000.0)),
    );

    step("audit verify");
    let public_key = keyring.audit_signer().map(|s| s.public_key());
    let started = Instant::now();
    let verified = rekisteri_audit::verify_all(
        &pool,
        &VerifyOptions {
            public_key: public_key.as_deref(),
            checkpoint_interval: WriterOptions::default().checkpoint_interval,
            segment_entries: rekisteri_audit::DEFAULT_SEGMENT_ENTRIES,
        },
    )
    .map_err(|e| format!("audit verify: {e}"))?;
    let verify_seconds = started.elapsed().as_secs_f64();
    if !verified.intact() {
        return Err(format!(
            "the audit log does not verify: {} breaks",
            verified.breaks.len()
        ));
    }
    let verify_rate = verified.entries as f64 / verify_seconds;
    println!("   {} entries in {verify_seconds:.2} s", verified.entries);
    figures.push(Figure::new(database, "audit verify", verify_rate, "entries/s").target(Target::AtLeast(500_000.0)));

    step("raw baselines (server stopped)");
    let keys: Arc<Vec<raw::ClientKey>> = Arc::new(client_ids.iter().map(|id| (rid.clone(), id.clone())).collect());
    // The clients the audited reads read, so that the log rows' subjects fall where theirs did.
    let read_keys: Arc<Vec<raw::ClientKey>> = Arc::new(keys.iter().take(READ_SAMPLE).cloned().collect());
    let raw_time = Duration::from_secs_f64(scale.raw_seconds);
    let threads = if database == "sqlite" { 1 } else { 8 };
    let raw_one = raw::read_and_log(&pool, read_keys.clone(), 1, threads, raw_time, raw::Subject::BlindIndex)?;
    let raw_grouped = raw::read_and_log(
        &pool,
        read_keys.clone(),
        64,
        threads,
        raw_time,
        raw::Subject::BlindIndex,
    )?;
    let raw_plain = raw::read_and_log(&pool, read_keys, 64, threads, raw_time, raw::Subject::Without)?;
    let raw_push = raw::push_inserts(&pool, rid.clone(), demo.provider.clone(), threads, raw_time)?;
    let raw_update = raw::update_by_key(&pool, keys, raw_time)?;
    println!(
        "   read+log: {raw_one:.0}/s one commit each, {raw_grouped:.0}/s 64 per commit; push inserts {raw_push:.0}/s; \
         UPDATE by key {raw_update:.0}/s ({threads} connection(s))"
    );
    for figure in figures.iter_mut().filter(|f| f.database == database) {
        if figure.name == "audited read, max rate" {
            figure.baseline = Some(if database == "sqlite" {
                report::Baseline {
                    name: "read+log, 64 per commit".to_owned(),
                    value: raw_grouped,
                    unit: "/s",
                    ratio_target: Some(0.5),
                }
            } else {
                report::Baseline {
                    name: "read+log, one commit each".to_owned(),
                    value: raw_one,
                    unit: "/s",
                    ratio_target: Some(0.75),
                }
            });
        } else if figure.unit == "/s" && figure.name.starts_with("push") {
            // The pushes are compared with the raw inserts they boil down to.
            figure.baseline = Some(report::Baseline {
                name: "raw client+service+log inserts".to_owned(),
                value: raw_push,
                unit: "/s",
                ratio_target: None,
            });
        }
    }
    println!(
        "   read+log, 64 per commit, without the log's subject index: {raw_plain:.0}/s (the index costs {:.0} % of it)",
        100.0 * (1.0 - raw_grouped / raw_plain.max(1e-9))
    );
    figures.push(
        Figure::new(
            database,
            "raw read+log, 64 per commit, log rows without a subject index",
            raw_plain,
            "/s",
        )
        .against("read+log, 64 per commit (the baseline)", raw_grouped, "/s", None),
    );
    figures.push(Figure::new(
        database,
        "raw UPDATE by key, 1 000 per commit",
        raw_update,
        "rows/s",
    ));

    step(&format!(
        "HTTP ceiling: a trivial handler, closed loop at {} connections",
        scale.read_concurrency
    ));
    let ceiling = ceiling::measure(
        scale.read_concurrency,
        Duration::from_secs_f64(scale.load_seconds),
        &demo.handler_token,
    )?;
    println!(
        "   {ceiling:.0} req/s; the audited reads reached {:.0} % of it",
        100.0 * max_rate / ceiling.max(1e-9)
    );
    figures.push(Figure::new(
        database,
        "HTTP ceiling: trivial handler, same load",
        ceiling,
        "req/s",
    ));
    if args.phases == Phases::Reads {
        return Ok(());
    }

    measure_anonymise(database, &setup, &pool, &demo, scale, figures)?;
    measure_retention(database, &setup, &pool, &keyring, scale, figures)
}

/// Inserts the departed clients (one service each, ended past the end of visibility), takes a
/// checkpoint so that the run does not pay for writing back the inserts, then times `rekisteri
/// jobs run anonymise`.
fn measure_anonymise(
    database: &'static str,
    setup: &server::Setup,
    pool: &Pool,
    demo: &Demo,
    scale: Scale,
    figures: &mut Vec<Figure>,
) -> Result<(), String> {
    step(&format!(
        "bulk: anonymisation of {} clients past the end of visibility",
        scale.departed_clients
    ));
    raw::seed_departed(pool, &demo.registrar, &demo.provider, scale.departed_clients)?;
    checkpoint(pool)?;
    let started = Instant::now();
    let output = setup.run(&["jobs", "run", "anonymise"])?;
    let anonymise_seconds = started.elapsed().as_secs_f64();
    println!("   {} in {anonymise_seconds:.1} s", output.trim());
    // PL-15's 60 s is set for SQLite at full scale.
    let bulk_target_applies = scale.departed_clients >= 1_000_000 && database == "sqlite";
    figures.push(
        Figure::new(
            database,
            format!("anonymise {} clients", scale.departed_clients),
            anonymise_seconds,
            "s",
        )
        .target_if(bulk_target_applies, Target::Below(60.0)),
    );
    Ok(())
}

/// Appends the entries past retention in a chain of their own, then times `rekisteri jobs run
/// retention` (the server stopped or not: the run takes the database's write lock either way).
fn measure_retention(
    database: &'static str,
    setup: &server::Setup,
    pool: &Pool,
    keyring: &rekisteri_crypto::Keyring,
    scale: Scale,
    figures: &mut Vec<Figure>,
) -> Result<(), String> {
    // PL-15's 60 s is set for SQLite at full scale.
    let bulk_target_applies = scale.departed_clients >= 1_000_000 && database == "sqlite";
    step(&format!(
        "bulk: retention over {} log entries past 12 years",
        scale.old_log_entries
    ));
    let old = to_primitive(time::OffsetDateTime::now_utc() - time::Duration::days(13 * 366));
    fill_log(pool, keyring, RETENTION_REGISTRAR, scale.old_log_entries, Some(old))?;
    if let Err(e) = checkpoint(pool) {
        println!("   {e}");
    }
    let started = Instant::now();
    let output = setup.run(&["jobs", "run", "retention"])?;
    let retention_seconds = started.elapsed().as_secs_f64();
    println!(
        "   {} in {retention_seconds:.1} s",
        output.lines().next().unwrap_or_default()
    );
    figures.push(
        Figure::new(
            database,
            format!("retention over {} log entries", scale.old_log_entries),
            retention_seconds,
            "s",
        )
        .target_if(bulk_target_applies, Target::Below(60.0)),
    );
    Ok(())
}

/// Key rotation (PL-6) over the register as it stands, the server stopped: the whole
/// `rekisteri keys rotate` command, start-up included.
fn rotate_keys(
    database: &'static str,
    setup: &server::Setup,
    scale: Scale,
    figures: &mut Vec<Figure>,
) -> Result<(), String> {
    step(&format!(
        "key rotation: re-encrypt and re-index the register of {} clients (rekisteri keys rotate)",
        scale.clients
    ));
    let started = Instant::now();
    let output = setup.run(&["keys", "rotate", "--batch", "1000"])?;
    let rotation_seconds = started.elapsed().as_secs_f64();
    println!(
        "   {} ({rotation_seconds:.1} s with the command's start)",
        output.lines().next().unwrap_or_default()
    );
    figures.push(
        Figure::new(
            database,
            format!("key rotation, {} clients", scale.clients),
            rotation_seconds,
            "s",
        )
        .target_if(database == "sqlite" && scale.clients >= 100_000, Target::Below(60.0)),
    );
    Ok(())
}

/// Bytes of each of the short recordings uploaded one after another.
const SHORT_RECORDING_BYTES: u64 = 1_000_000;

/// The call-recordings register's audio (issue 19 point 8): one long recording streamed in
/// while the server's memory is sampled, short ones one after another, and 64 KiB ranged reads
/// on a listening grant from many connections at once.
fn run_calls(
    database: &'static str,
    server: &server::Server,
    demo: &Demo,
    scale: Scale,
    figures: &mut Vec<Figure>,
) -> Result<(), String> {
    let addr = server.addr;
    step("call recordings: a recorded queue, a call supervisor and a telephony client over HTTP");
    let world = calls::prepare(
        addr,
        &demo.registrar,
        &demo.registrar_oid,
        &calls::Login {
            email: &demo.admin.0,
            password: &demo.admin.1,
        },
        &calls::Login {
            email: &demo.main_user.0,
            password: &demo.main_user.1,
        },
    )?;

    let megabytes = scale.recording_bytes as f64 / 1e6;
    step(&format!(
        "call recordings: upload one {megabytes:.0} MB WAV recording, streamed"
    ));
    let long_call = calls::push_call(addr, &world, 0)?;
    let (before, _, _) = server.memory()?;
    let sampler = calls::RssSampler::start(server.pid());
    let uploaded = calls::upload(addr, &world, &long_call, scale.recording_bytes, 1);
    let peak = sampler.peak()?;
    let elapsed = uploaded?;
    let rate = megabytes / elapsed.as_secs_f64().max(1e-9);
    let growth = peak.saturating_sub(before) as f64 / 1e6;
    println!(
        "   {:.1} s = {rate:.0} MB/s; server RSS {:.1} MB before, {:.1} MB at most during it (+{growth:.1} MB)",
        elapsed.as_secs_f64(),
        before as f64 / 1e6,
        peak as f64 / 1e6
    );
    figures.push(
        Figure::new(
            database,
            format!("recording upload, one of {megabytes:.0} MB"),
            rate,
            "MB/s",
        )
        .target(Target::AtLeast(100.0)),
    );
    figures
        .push(Figure::new(database, "server RSS growth during the upload", growth, "MB").target(Target::Below(32.0)));

    step(&format!(
        "call recordings: {} uploads of {} MB one after another",
        scale.short_recordings,
        SHORT_RECORDING_BYTES / 1_000_000
    ));
    let contacts: Vec<String> = (1..=scale.short_recordings)
        .map(|n| calls::push_call(addr, &world, n))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    for (n, contact) in contacts.iter().enumerate() {
        calls::upload(addr, &world, contact, SHORT_RECORDING_BYTES, n as u64 + 2)?;
    }
    let short_rate = contacts.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    println!("   {short_rate:.1} uploads/s");
    figures.push(Figure::new(
        database,
        format!(
            "recording upload, {} MB each in sequence",
            SHORT_RECORDING_BYTES / 1_000_000
        ),
        short_rate,
        "uploads/s",
    ));

    step(&format!(
        "call recordings: {} KiB ranged reads at random offsets, {} connections, {:.0} s",
        calls::RANGE_LEN / 1024,
        scale.range_concurrency,
        scale.load_seconds
    ));
    // A grant of its own, so that the phase does not lean on one made minutes before.
    let audio_url = calls::grant(addr, &world, &long_call)?;
    let requests = calls::range_requests(&world, &audio_url, scale.recording_bytes, 4096);
    let plan = Plan::Closed {
        concurrency: scale.range_concurrency,
        count: None,
        duration: Duration::from_secs_f64(scale.load_seconds),
    };
    let mut reads = calls::ranged_reads(addr, requests, plan)?;
    let (p50, p99) = (reads.percentile_ms(0.50), reads.percentile_ms(0.99));
    println!(
        "   {} reads in {:.1} s = {:.0}/s; p50 {p50:.2} ms, p99 {p99:.2} ms",
        reads.ok,
        reads.elapsed.as_secs_f64(),
        reads.rate()
    );
    figures.push(
        Figure::new(database, "recording ranged read, 64 KiB", reads.rate(), "reads/s").target(Target::AtLeast(2000.0)),
    );
    figures.push(Figure::new(database, "recording ranged read, p50", p50, "ms"));
    figures.push(Figure::new(database, "recording ranged read, p99", p99, "ms"));
    Ok(())
}

/// VTJ ingestion (VT-13, PL-14): stage and apply changes on a scratch database of its own, with
/// the raw UPDATE-by-key rate of the same table measured in the same run.
fn run_vtj(database: &'static str, url: &str, scale: Scale, figures: &mut Vec<Figure>) -> Result<(), String> {
    step(&format!(
        "{database}: VTJ, stage and apply {} changes",
        scale.vtj_changes
    ));
    let report =
        rekisteri_vtj::bench::stage_and_apply(url, scale.vtj_changes).map_err(|e| format!("VTJ benchmark: {e}"))?;
    println!(
        "   staged in {:.1} s, applied in {:.1} s: {:.0} changes/s; raw UPDATE by key {:.0} rows/s",
        report.stage_seconds, report.apply_seconds, report.changes_per_second, report.raw_updates_per_second
    );
    let apply = Figure::new(database, "VTJ apply", report.changes_per_second, "changes/s");
    figures.push(if database == "sqlite" {
        apply.target(Target::AtLeast(30_000.0)).against(
            "UPDATE by key, 1 000 per commit",
            report.raw_updates_per_second,
            "rows/s",
            Some(0.4),
        )
    } else {
        apply.against(
            "UPDATE by key, 1 000 per commit",
            report.raw_updates_per_second,
            "rows/s",
            None,
        )
    });
    figures.push(Figure::new(
        database,
        "VTJ stage + apply",
        report.end_to_end_per_second,
        "changes/s",
    ));
    Ok(())
}

/// The registrar whose log chain holds the entries the retention run is measured on: a chain of
/// its own, so that the entries past retention are its oldest.
const RETENTION_REGISTRAR: &str = "bench-retention";

/// The request of one audited read: a client of the registrar, by the handler.
fn audited_read(rid: &str, client_id: &str, token: &str) -> Vec<u8> {
    load::render("GET", &format!("/v1/registrars/{rid}/clients/{client_id}"), token, None)
}
