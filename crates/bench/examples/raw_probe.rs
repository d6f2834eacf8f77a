//! Why the raw audited-read baseline (select a client by key, insert its usage-log row, 64 per
//! commit, one connection) runs at a third of what a plain loop does (issue 22 point 1): the
//! same statements on the same schema, one change at a time.
//!
//! ```sh
//! cargo run --release -p rekisteri-bench --example raw_probe -- target/probe/probe.db [clients] [log rows] [seconds]
//! ```
//!
//! A missing database file is created: migrations, `clients` rows with random sealed-size
//! blobs, and `log rows` usage-log rows with random subject indexes (as the blind indexes of the
//! pushes and reads are), so that the indexes are the size of the full-scale bench's.

use std::time::{Duration, Instant};

use diesel::connection::{CacheSize, Connection, SimpleConnection};
use diesel::prelude::*;
use rekisteri_bench::raw::{Bytes, LogValues, insert_client, insert_log_row, random_32, read_client};
use rekisteri_db::schema::{clients, usage_log};
use rekisteri_db::{DatabaseUrl, DbConnection, Pool, PoolOptions, to_primitive, write_transaction};

const REGISTRAR: &str = "probe-registrar";
const PER_COMMIT: usize = 64;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: raw_probe DB [clients] [log rows] [seconds]")?;
    let number = |i: usize, default: usize| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(default);
    let (client_count, log_rows, seconds) = (number(2, 100_000), number(3, 1_000_000), number(4, 5));
    let fresh = !std::path::Path::new(path).exists();
    let pool = Pool::open(
        &DatabaseUrl::parse(&format!("sqlite://{path}")).map_err(|e| e.to_string())?,
        &PoolOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    if fresh {
        seed(&mut conn, client_count, log_rows)?;
    }
    let keys: Vec<String> = clients::table
        .filter(clients::registrar_id.eq(REGISTRAR))
        .select(clients::id)
        .load(&mut *conn)
        .map_err(|e| e.to_string())?;
    let log_count: i64 = usage_log::table
        .count()
        .get_result(&mut *conn)
        .map_err(|e| e.to_string())?;
    println!("{} clients, {log_count} log rows", keys.len());
    let duration = Duration::from_secs(seconds as u64);
    let mut random = Bytes::new(0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()));
    let mut run = 0u64;
    let mut measure = |name: &str, conn: &mut DbConnection, values: Values| -> Result<(), String> {
        run += 1;
        let chain = format!("probe:{run}:{}", uuid::Uuid::new_v4().simple());
        let rate = loop_rate(conn, &keys, &chain, values, &mut random, duration)?;
        println!("{name:<70} {rate:>8.0}/s");
        Ok(())
    };
    measure(
        "bench as it was (uuid v4 x7 + now() per row)",
        &mut conn,
        Values::PerRow,
    )?;
    measure(
        "values precomputed (one clock read per commit)",
        &mut conn,
        Values::Precomputed,
    )?;
    measure(
        "precomputed, subject = the client's blind index",
        &mut conn,
        Values::ClientIndex,
    )?;
    measure(
        "precomputed, subject NULL (partial index not written)",
        &mut conn,
        Values::NoSubject,
    )?;
    conn.set_prepared_statement_cache_size(CacheSize::Disabled);
    measure(
        "precomputed, diesel's statement cache off",
        &mut conn,
        Values::Precomputed,
    )?;
    conn.set_prepared_statement_cache_size(CacheSize::Unbounded);
    for (pragmas, name) in [
        ("PRAGMA mmap_size = 0;", "precomputed, mmap_size 0"),
        ("PRAGMA mmap_size = 67108864;", "precomputed, mmap_size 64 MiB"),
        (
            "PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -65536;",
            "precomputed, mmap 1 GiB, cache_size 64 MiB",
        ),
        (
            "PRAGMA cache_size = -2000; PRAGMA wal_autocheckpoint = 10000;",
            "precomputed, wal_autocheckpoint 10 000 pages",
        ),
        (
            "PRAGMA wal_autocheckpoint = 1000; PRAGMA synchronous = NORMAL;",
            "precomputed, synchronous NORMAL (not the bench's setting)",
        ),
    ] {
        conn.batch_execute(pragmas).map_err(|e| e.to_string())?;
        measure(name, &mut conn, Values::Precomputed)?;
    }
    conn.batch_execute("PRAGMA synchronous = FULL;")
        .map_err(|e| e.to_string())?;
    measure("bench as it was, again (drift check)", &mut conn, Values::PerRow)?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Values {
    /// As raw.rs had it: three random 32-byte values from two v4 UUIDs each, a v4 request id
    /// and the clock, per row.
    PerRow,
    /// Random values drawn up front from a cheap generator; the clock once per commit.
    Precomputed,
    /// As `Precomputed`, with the subject index the client row's own (what the server logs).
    ClientIndex,
    /// As `Precomputed` without a subject index.
    NoSubject,
}

fn loop_rate(
    conn: &mut DbConnection,
    keys: &[String],
    chain: &str,
    values: Values,
    random: &mut Bytes,
    duration: Duration,
) -> Result<f64, String> {
    let started = Instant::now();
    let mut done = 0usize;
    while started.elapsed() < duration {
        write_transaction(conn, |conn| -> QueryResult<()> {
            let at = to_primitive(time::OffsetDateTime::now_utc());
            for _ in 0..PER_COMMIT {
                let id = &keys[(done.wrapping_mul(7919)) % keys.len()];
                let row = read_client(conn, REGISTRAR, id)?;
                done += 1;
                let (occurred_at, subject, prev, hash, request_id) = if values == Values::PerRow {
                    let at = to_primitive(time::OffsetDateTime::now_utc());
                    (
                        at,
                        Some(random_32()),
                        random_32(),
                        random_32(),
                        uuid::Uuid::new_v4().to_string(),
                    )
                } else {
                    let subject = match values {
                        Values::ClientIndex => row.5,
                        Values::NoSubject => None,
                        _ => Some(random.bytes_32()),
                    };
                    let request = random.request_id();
                    (at, subject, random.bytes_32(), random.bytes_32(), request)
                };
                insert_log_row(
                    conn,
                    chain,
                    LogValues {
                        seq: done as i64,
                        occurred_at,
                        registrar: REGISTRAR,
                        client: id,
                        subject_index: subject,
                        request_id,
                        prev_hash: prev,
                        hash,
                    },
                )?;
            }
            Ok(())
        })
        .map_err(|e| format!("probe loop: {e}"))?;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

fn seed(conn: &mut DbConnection, client_count: usize, log_rows: usize) -> Result<(), String> {
    rekisteri_db::migrations::run_pending(conn).map_err(|e| e.to_string())?;
    let at = to_primitive(time::OffsetDateTime::now_utc());
    conn.batch_execute(&format!(
        "INSERT INTO organisations (id, name, kind, created_at, updated_at) \
         VALUES ('{REGISTRAR}', 'Probe', 'municipality', '2026-12-06 12:00:00', '2026-12-06 12:00:00')"
    ))
    .map_err(|e| format!("organisation: {e}"))?;
    let mut random = Bytes::new(0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()));
    let started = Instant::now();
    for batch in 0..client_count.div_ceil(1000) {
        write_transaction(conn, |conn| -> QueryResult<()> {
            for _ in 0..1000.min(client_count - batch * 1000) {
                let id = uuid::Uuid::new_v4().to_string();
                let mut blob = |n: usize| Some((0..n).flat_map(|_| random.bytes_32()).collect::<Vec<u8>>());
                insert_client(conn, REGISTRAR, &id, at, &mut blob)?;
            }
            Ok(())
        })
        .map_err(|e| format!("clients: {e}"))?;
    }
    println!(
        "seeded {client_count} clients in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut seq = 0i64;
    while (seq as usize) < log_rows {
        write_transaction(conn, |conn| -> QueryResult<()> {
            for _ in 0..5000.min(log_rows - seq as usize) {
                seq += 1;
                insert_log_row(
                    conn,
                    "usage:probe",
                    LogValues {
                        seq,
                        occurred_at: at,
                        registrar: REGISTRAR,
                        client: &uuid::Uuid::new_v4().to_string(),
                        subject_index: Some(random.bytes_32()),
                        request_id: random.request_id(),
                        prev_hash: random.bytes_32(),
                        hash: random.bytes_32(),
                    },
                )?;
            }
            Ok(())
        })
        .map_err(|e| format!("log: {e}"))?;
    }
    println!("seeded {log_rows} log rows in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
