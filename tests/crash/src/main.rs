//! `make crash` (PL-17: nothing acknowledged is lost). Per database: a fresh database, the real
//! binary migrated and seeded (`rekisteri migrate`, `rekisteri demo seed`), an integration made
//! over the API, then cycles of: sustained concurrent writes from several threads (client
//! creates with their first service by the integration, service events by the provider's staff,
//! Kanta informing and disclosure-consent changes by the registrar's handler, every POST with an
//! `Idempotency-Key`) mixed with audited reads; `kill -9` of the server at a random moment;
//! restart on the same database; then the checks:
//!
//! - every request that got no answer is sent again with its key: it must create once or replay
//!   (never a duplicate); a 409 `conflict` marked `Idempotent-Replayed` (the first run did the
//!   work, its answer died with the server) counts as a replay whose work is there once; a key
//!   still in use (409 `idempotency-key-in-use`) after the killed server's instance lease ran
//!   out is a stuck key;
//! - every acknowledged (2xx) write of the cycle is read back through the API and is equal to
//!   what the server answered when it acknowledged it (and all of them again after the last
//!   cycle);
//! - every read that returned personal data has its usage-log entry (by its `X-Request-Id`, in
//!   the database);
//! - `rekisteri audit verify` exits 0.

mod driver;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rekisteri_bench::seed::{PostgresDatabase, absolute, fresh_dir};

#[derive(Parser)]
#[command(
    name = "rekisteri-crash",
    about = "kill -9 during sustained writes loses nothing acknowledged (PL-17)"
)]
pub struct Args {
    /// Kill-and-restart cycles per database.
    #[arg(long, env = "CRASH_CYCLES", default_value_t = 100)]
    pub cycles: usize,
    /// The server binary.
    #[arg(long, default_value = "target/release/rekisteri")]
    pub server: PathBuf,
    /// Only this database (`sqlite` or `postgres`).
    #[arg(long)]
    pub only: Option<String>,
    /// Writing threads.
    #[arg(long, default_value_t = 6)]
    pub threads: usize,
    /// The kill comes at a random moment between 0.2 s and this many milliseconds of load.
    #[arg(long, default_value_t = 2500)]
    pub max_load_ms: u64,
    /// Count keys left `pending` by a crash (409 `idempotency-key-in-use` on the retry) and
    /// report them without failing. Strict by default.
    #[arg(long)]
    pub lenient_stuck_keys: bool,
    /// Seed of the random choices (printed, so that a run can be repeated).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where each database's files (SQLite file, key file, server log) are kept.
    #[arg(long, default_value = "target/crash")]
    pub dir: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("rekisteri-crash: PL-17 FAILED (figures above)");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("rekisteri-crash: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<bool, String> {
    if !args.server.is_file() {
        return Err(format!("no server binary at {}", args.server.display()));
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    println!("== PL-17 crash suite: {} cycles per database, seed {seed}", args.cycles);
    let wanted = |name: &str| args.only.as_deref().is_none_or(|only| only == name);
    let mut results = Vec::new();
    if wanted("sqlite") {
        let dir = absolute(&fresh_dir(&args.dir.join("sqlite"))?)?;
        let url = format!("sqlite://{}", dir.join("rekisteri.db").display());
        results.push((
            "sqlite",
            driver::pl_17_nothing_acknowledged_is_lost(args, &url, &dir, seed)?,
        ));
    }
    if wanted("postgres") {
        let admin_url = std::env::var("CRASH_DATABASE_URL")
            .or_else(|_| std::env::var("TEST_DATABASE_URL"))
            .ok()
            .filter(|url| !url.is_empty());
        match admin_url {
            Some(admin_url) => {
                let dir = absolute(&fresh_dir(&args.dir.join("postgres"))?)?;
                let database = PostgresDatabase::create(&admin_url, "rekisteri_crash")?;
                let result = driver::pl_17_nothing_acknowledged_is_lost(args, &database.url, &dir, seed);
                database.drop_it();
                results.push(("postgres", result?));
            }
            None if args.only.is_some() || std::env::var("CI").is_ok_and(|v| v == "true") => {
                return Err("PostgreSQL: set CRASH_DATABASE_URL or TEST_DATABASE_URL".to_owned());
            }
            None => println!("note: PostgreSQL not run: set CRASH_DATABASE_URL or TEST_DATABASE_URL"),
        }
    }
    println!();
    println!("{}", driver::Figures::table(&results));
    let mut passed = true;
    for (database, figures) in &results {
        for failure in figures.failures(args.lenient_stuck_keys) {
            println!("FAIL {database}: {failure}");
            passed = false;
        }
    }
    if args.lenient_stuck_keys {
        println!("note: --lenient-stuck-keys: keys left pending by a crash are counted, not failed");
    }
    Ok(passed)
}
