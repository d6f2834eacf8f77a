//! Raw baselines: what the database itself does on this machine, in this run, with the
//! statements the headline operations boil down to, without HTTP, authentication or crypto.
//! The headline figures are read as ratios to these.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use rekisteri_db::schema::{clients, services, usage_log};
use rekisteri_db::{DbConnection, Pool, to_primitive, write_transaction};

/// A client's key: (registrar id, client id).
pub type ClientKey = (String, String);

type Sealed = Option<Vec<u8>>;

fn now() -> time::PrimitiveDateTime {
    to_primitive(time::OffsetDateTime::now_utc())
}

/// 32 random bytes from the operating system (two v4 UUIDs).
pub fn random_32() -> Vec<u8> {
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .copied()
        .collect()
}

/// Random-looking bytes without a system call (xorshift64*), for the values of the baseline's
/// log rows: the server's hashes are computed, not drawn from the operating system, and a
/// competent plain loop would not pay a `getrandom` call per value either.
pub struct Bytes(u64);

impl Bytes {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes_32(&mut self) -> Vec<u8> {
        (0..4).flat_map(|_| self.next().to_le_bytes()).collect()
    }

    /// A request id of a UUID's shape.
    pub fn request_id(&mut self) -> String {
        uuid::Uuid::from_u64_pair(self.next(), self.next()).to_string()
    }
}

/// The values of one usage-log row that vary from row to row.
pub struct LogValues<'a> {
    pub seq: i64,
    pub occurred_at: time::PrimitiveDateTime,
    pub registrar: &'a str,
    pub client: &'a str,
    /// The client's blind index, as the server logs it.
    pub subject_index: Sealed,
    pub request_id: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// A usage-log row of the shape the audited read writes, on a chain of the baseline's own.
/// On SQLite the row goes into its month's table, as the server's writer puts it (the log is a
/// view there over one table per month), made if it is the month's first.
pub fn insert_log_row(conn: &mut DbConnection, chain: &str, row: LogValues<'_>) -> QueryResult<usize> {
    let partition = rekisteri_db::log_partitions::partition_for("usage_log", row.occurred_at);
    let values = (
        usage_log::chain_id.eq(chain),
        usage_log::seq.eq(row.seq),
        usage_log::occurred_at.eq(row.occurred_at),
        usage_log::registrar_id.eq(row.registrar),
        usage_log::log_controller_id.eq(row.registrar),
        usage_log::subject_index.eq(row.subject_index),
        usage_log::data_kind.eq("client"),
        usage_log::data_id.eq(Some(row.client)),
        usage_log::outcome.eq("used"),
        usage_log::actor_kind.eq("staff"),
        usage_log::actor_id.eq("7d0c8a4e-2f5b-4a7e-9b1d-0c3e5f7a9b11"),
        usage_log::actor_name.eq(Some("Demo Client handler")),
        usage_log::on_behalf_of.eq(None::<String>),
        usage_log::service_unit_oid.eq(None::<String>),
        usage_log::purpose.eq("client register: read client"),
        usage_log::access_basis.eq("role"),
        usage_log::special_reason.eq(None::<String>),
        usage_log::request_id.eq(row.request_id),
        usage_log::calling_system.eq(None::<String>),
        usage_log::prev_hash.eq(row.prev_hash),
        usage_log::hash.eq(row.hash),
    );
    match conn {
        DbConnection::Sqlite(c) => rekisteri_db::log_partitions::insert_into_month(c, "usage_log", &partition, |c| {
            rekisteri_db::kept_insert_into(&partition, usage_log::table, values.clone()).execute(c)
        }),
        DbConnection::Postgres(c) => diesel::insert_into(usage_log::table).values(values).execute(c),
    }
}

/// A client row of the pushes' shape, its sealed fields `blob(n)`: n × 32 bytes, about the
/// size of the server's sealed values.
pub fn insert_client(
    conn: &mut DbConnection,
    registrar: &str,
    client_id: &str,
    at: time::PrimitiveDateTime,
    blob: &mut dyn FnMut(usize) -> Sealed,
) -> QueryResult<usize> {
    diesel::insert_into(clients::table)
        .values((
            clients::registrar_id.eq(registrar),
            clients::id.eq(client_id),
            clients::subject_index.eq(blob(1)),
            clients::identity_code.eq(blob(2)),
            clients::first_names.eq(blob(2)),
            clients::surname.eq(blob(2)),
            clients::gender.eq("female"),
            clients::home_municipality.eq(Some("837")),
            clients::language.eq(Some("fi")),
            clients::email.eq(blob(2)),
            clients::phone.eq(blob(2)),
            clients::next_of_kin.eq(blob(3)),
            clients::address.eq(blob(4)),
            clients::protection_order.eq(false),
            clients::restricted.eq(false),
            clients::version.eq(1i64),
            clients::created_at.eq(at),
            clients::updated_at.eq(at),
            clients::birth_year.eq(Some(1947)),
        ))
        .execute(conn)
}

/// The client's sealed fields, version and blind index.
pub type ClientRow = (Sealed, Sealed, Sealed, Sealed, i64, Sealed);

/// What the audited read reads of a client: its sealed fields, version and blind index.
pub fn read_client(conn: &mut DbConnection, registrar: &str, id: &str) -> QueryResult<ClientRow> {
    clients::table
        .find((registrar, id))
        .select((
            clients::identity_code,
            clients::first_names,
            clients::surname,
            clients::address,
            clients::version,
            clients::subject_index,
        ))
        .first(conn)
}

/// Runs `step` on `threads` connections of `pool` for `duration`; returns operations per second
/// (each step returns how many operations it did).
fn measure<F>(pool: &Pool, threads: usize, duration: Duration, step: F) -> Result<f64, String>
where
    F: Fn(&mut DbConnection, usize, u64) -> Result<u64, String> + Send + Sync + 'static,
{
    let step = Arc::new(step);
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for thread in 0..threads {
        let mut conn = pool.get().map_err(|e| format!("raw baseline connection: {e}"))?;
        let (step, stop, barrier) = (step.clone(), stop.clone(), barrier.clone());
        handles.push(std::thread::spawn(move || -> Result<u64, String> {
            barrier.wait();
            let mut done = 0u64;
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                done += step(&mut conn, thread, round)?;
                round += 1;
            }
            Ok(done)
        }));
    }
    barrier.wait();
    let started = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for handle in handles {
        total += handle
            .join()
            .map_err(|_| "a raw baseline thread panicked".to_owned())??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Whether the baseline's log rows carry a subject index.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The read client's blind index, as the server's entries do: one leaf of the log's
    /// subject index per row, wherever the client's key falls.
    BlindIndex,
    /// None, so the subject index is not written: what a plain loop without it does, printed
    /// to show what the index costs.
    Without,
}

/// The audited read's SQL: select a client by key and insert one log row (the client's blind
/// index as its subject), `per_commit` of them per transaction. Returns reads/s.
pub fn read_and_log(
    pool: &Pool,
    keys: Arc<Vec<ClientKey>>,
    per_commit: usize,
    threads: usize,
    duration: Duration,
    subject: Subject,
) -> Result<f64, String> {
    let run = uuid::Uuid::new_v4();
    let seed = run.as_u64_pair().0;
    let run = run.simple().to_string();
    measure(pool, threads, duration, move |conn, thread, round| {
        let chain = format!("bench:raw:{run}:{thread}");
        let mut bytes = Bytes::new(seed ^ (round << 8) ^ thread as u64);
        write_transaction(conn, |conn| -> QueryResult<()> {
            for i in 0..per_commit {
                let n = (round as usize * per_commit + i) * threads + thread;
                let key = &keys[n % keys.len()];
                let client = read_client(conn, &key.0, &key.1)?;
                insert_log_row(
                    conn,
                    &chain,
                    LogValues {
                        seq: (round as usize * per_commit + i + 1) as i64,
                        occurred_at: now(),
                        registrar: &key.0,
                        client: &key.1,
                        subject_index: client.5.filter(|_| subject == Subject::BlindIndex),
                        request_id: bytes.request_id(),
                        prev_hash: bytes.bytes_32(),
                        hash: bytes.bytes_32(),
                    },
                )?;
            }
            Ok(())
        })
        .map_err(|e| format!("raw read and log: {e}"))?;
        Ok(per_commit as u64)
    })
}

/// The push's inserts: a client row with its sealed fields, its first service and a log row,
/// one transaction each. Returns pushes/s.
pub fn push_inserts(
    pool: &Pool,
    registrar: String,
    provider: String,
    threads: usize,
    duration: Duration,
) -> Result<f64, String> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let today = time::OffsetDateTime::now_utc().date();
    measure(pool, threads, duration, move |conn, thread, round| {
        let chain = format!("bench:raw-push:{run}:{thread}");
        let client_id = rekisteri_core::ids::new_row_id();
        let blob = |n: usize| Some(random_32().repeat(n));
        write_transaction(conn, |conn| -> QueryResult<()> {
            let at = now();
            insert_client(conn, &registrar, &client_id, at, &mut |n| blob(n))?;
            diesel::insert_into(services::table)
                .values((
                    services::registrar_id.eq(&registrar),
                    services::id.eq(rekisteri_core::ids::new_row_id()),
                    services::client_id.eq(&client_id),
                    services::kind.eq("service_voucher"),
                    services::service_type.eq("home_care"),
                    services::service_name.eq("Kotihoidon palveluseteli"),
                    services::quantity_centi.eq(4000i64),
                    services::unit.eq("hour"),
                    services::unit_value_cents.eq(Some(3250i64)),
                    services::valid_from.eq(today),
                    services::valid_to.eq(today + time::Duration::days(365)),
                    services::provider_id.eq(&provider),
                    services::decision_ref.eq(Some("KH-2026-17")),
                    services::status.eq("active"),
                    services::additional_info.eq(blob(2)),
                    services::version.eq(1i64),
                    services::created_at.eq(at),
                    services::updated_at.eq(at),
                ))
                .execute(conn)?;
            insert_log_row(
                conn,
                &chain,
                LogValues {
                    seq: round as i64 + 1,
                    occurred_at: at,
                    registrar: &registrar,
                    client: &client_id,
                    subject_index: Some(random_32()),
                    request_id: uuid::Uuid::new_v4().to_string(),
                    prev_hash: random_32(),
                    hash: random_32(),
                },
            )?;
            Ok(())
        })
        .map_err(|e| format!("raw push: {e}"))?;
        Ok(1)
    })
}

/// UPDATE by key, 1 000 per transaction (what a VTJ change boils down to). Returns rows/s.
pub fn update_by_key(pool: &Pool, keys: Arc<Vec<ClientKey>>, duration: Duration) -> Result<f64, String> {
    const BATCH: usize = 1000;
    measure(pool, 1, duration, move |conn, _, round| {
        write_transaction(conn, |conn| -> QueryResult<()> {
            for i in 0..BATCH {
                let key = &keys[(round as usize * BATCH + i) % keys.len()];
                let municipality = if (round + i as u64).is_multiple_of(2) {
                    "837"
                } else {
                    "536"
                };
                diesel::update(clients::table.find((&key.0, &key.1)))
                    .set((
                        clients::home_municipality.eq(Some(municipality)),
                        clients::updated_at.eq(now()),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
        .map_err(|e| format!("raw update: {e}"))?;
        Ok(BATCH as u64)
    })
}

/// Inserts `count` clients whose only service ended two years ago (past the end of
/// visibility, CL-13), for the anonymisation run to find; 2 000 per transaction. The sealed
/// fields are random bytes: anonymisation removes them without opening them (the birth year is
/// stored).
/// Inserts `count` clients as the register keeps them: seven fields sealed under the key file's
/// active key and bound to their row, the identity code's blind index, and a service each with a
/// sealed note; the change history's triggers copy them as the server's inserts would.
pub fn seed_sealed_clients(
    pool: &Pool,
    keyring: &rekisteri_crypto::Keyring,
    registrar: &str,
    provider: &str,
    count: usize,
) -> Result<(), String> {
    use rekisteri_crypto::{BlindIndex, FieldCipher, FieldContext};
    const BATCH: usize = 1000;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let cipher = FieldCipher::new(keyring);
    let today = time::OffsetDateTime::now_utc().date();
    let mut done = 0;
    while done < count {
        let n = BATCH.min(count - done);
        let at = now();
        let mut rows = Vec::with_capacity(n);
        {
            for i in done..done + n {
                let id = rekisteri_core::ids::new_row_id();
                let code = format!("010150-{:03}X{i}", i % 1000);
                let seal = |column: &str, value: &str| {
                    cipher
                        .encrypt_str(&FieldContext::new("clients", column, &id), value)
                        .map(Some)
                        .map_err(|e| e.to_string())
                };
                let client = (
                    clients::registrar_id.eq(registrar),
                    clients::id.eq(id.clone()),
                    clients::subject_index.eq(Some(
                        BlindIndex::new(keyring)
                            .compute("data_subject", code.as_bytes())
                            .to_vec(),
                    )),
                    clients::identity_code.eq(seal("identity_code", &code)?),
                    clients::first_names.eq(seal("first_names", "Aino Maria")?),
                    clients::surname.eq(seal("surname", &format!("Kiertonen{i}"))?),
                    clients::email.eq(seal("email", "aino@example.fi")?),
                    clients::phone.eq(seal("phone", "+358401234567")?),
                    clients::next_of_kin.eq(seal("next_of_kin", "Matti Kiertonen, +358401234568")?),
                    clients::address.eq(seal("address", "Hämeenkatu 1 A 2, 33100 Tampere")?),
                    clients::gender.eq("female"),
                    clients::home_municipality.eq(Some("837")),
                    clients::protection_order.eq(false),
                    clients::restricted.eq(false),
                    clients::version.eq(1i64),
                    clients::created_at.eq(at),
                    clients::updated_at.eq(at),
                );
                let service_id = rekisteri_core::ids::new_row_id();
                let info = cipher
                    .encrypt_str(
                        &FieldContext::new("services", "additional_info", &service_id),
                        "Aamu- ja iltakäynti",
                    )
                    .map_err(|e| e.to_string())?;
                let service = (
                    services::registrar_id.eq(registrar),
                    services::id.eq(service_id.clone()),
                    services::client_id.eq(id.clone()),
                    services::kind.eq("service_voucher"),
                    services::service_type.eq("home_care"),
                    services::service_name.eq("Kotihoidon palveluseteli"),
                    services::quantity_centi.eq(4000i64),
                    services::unit.eq("hour"),
                    services::valid_from.eq(today),
                    services::valid_to.eq(today + time::Duration::days(365)),
                    services::provider_id.eq(provider),
                    services::status.eq("active"),
                    services::additional_info.eq(Some(info)),
                    services::version.eq(1i64),
                    services::created_at.eq(at),
                    services::updated_at.eq(at),
                );
                rows.push((client, service));
            }
        }
        write_transaction(&mut conn, |conn| -> QueryResult<()> {
            for (client, service) in &rows {
                diesel::insert_into(clients::table)
                    .values(client.clone())
                    .execute(conn)?;
                diesel::insert_into(services::table)
                    .values(service.clone())
                    .execute(conn)?;
            }
            Ok(())
        })
        .map_err(|e| format!("seeding sealed clients: {e}"))?;
        keep_statistics(&mut conn)?;
        done += n;
    }
    Ok(())
}

/// What a server's heartbeat does on a PostgreSQL without autovacuum (`rekisteri_db::statistics`),
/// after each batch of a seed that inserts behind the server's back: otherwise the seed's
/// foreign-key checks, planned on the empty table, read every client before each new service.
pub fn keep_statistics(conn: &mut DbConnection) -> Result<(), String> {
    rekisteri_db::statistics::analyze_stale(conn)
        .map(|_| ())
        .map_err(|e| format!("analysing the seeded tables: {e}"))
}

pub fn seed_departed(pool: &Pool, registrar: &str, provider: &str, count: usize) -> Result<(), String> {
    const BATCH: usize = 2000;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let today = time::OffsetDateTime::now_utc().date();
    let ended = today - time::Duration::days(730);
    let mut done = 0;
    while done < count {
        let n = BATCH.min(count - done);
        let at = now();
        let ids: Vec<String> = (0..n).map(|_| rekisteri_core::ids::new_row_id()).collect();
        let client_rows: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    clients::registrar_id.eq(registrar),
                    clients::id.eq(id.clone()),
                    clients::subject_index.eq(Some(random_32())),
                    clients::identity_code.eq(Some(random_32())),
                    clients::first_names.eq(Some(random_32())),
                    clients::surname.eq(Some(random_32())),
                    clients::gender.eq("male"),
                    clients::home_municipality.eq(Some("837")),
                    clients::address.eq(Some(random_32().repeat(3))),
                    clients::protection_order.eq(false),
                    clients::restricted.eq(false),
                    clients::version.eq(1i64),
                    clients::created_at.eq(at),
                    clients::updated_at.eq(at),
                    // Born over 30 years, as a register's departed clients are: a batch that
                    // wrote its clients a statement per year of birth paid for that here too.
                    clients::birth_year.eq(Some(1915 + ((done + i) % 30) as i32)),
                )
            })
            .collect();
        let service_rows: Vec<_> = ids
            .iter()
            .map(|id| {
                (
                    services::registrar_id.eq(registrar),
                    services::id.eq(rekisteri_core::ids::new_row_id()),
                    services::client_id.eq(id.clone()),
                    services::kind.eq("service_voucher"),
                    services::service_type.eq("home_care"),
                    services::service_name.eq("Kotihoidon palveluseteli"),
                    services::quantity_centi.eq(4000i64),
                    services::unit.eq("hour"),
                    services::valid_from.eq(ended - time::Duration::days(365)),
                    services::valid_to.eq(ended),
                    services::provider_id.eq(provider),
                    // As the pushes carry one: the anonymisation purges it.
                    services::decision_ref.eq(Some("KH-2024-1")),
                    services::status.eq("active"),
                    services::version.eq(1i64),
                    services::created_at.eq(at),
                    services::updated_at.eq(at),
                )
            })
            .collect();
        write_transaction(&mut conn, |conn| -> QueryResult<()> {
            // Batch inserts are per backend in a multi-connection; 500 rows per statement stay
            // under SQLite's bound-parameter limit.
            for (clients_chunk, services_chunk) in client_rows.chunks(500).zip(service_rows.chunks(500)) {
                match conn {
                    DbConnection::Sqlite(c) => {
                        diesel::insert_into(clients::table).values(clients_chunk).execute(c)?;
                        diesel::insert_into(services::table).values(services_chunk).execute(c)?;
                    }
                    DbConnection::Postgres(c) => {
                        diesel::insert_into(clients::table).values(clients_chunk).execute(c)?;
                        diesel::insert_into(services::table).values(services_chunk).execute(c)?;
                    }
                }
            }
            Ok(())
        })
        .map_err(|e| format!("seeding departed clients: {e}"))?;
        keep_statistics(&mut conn)?;
        done += n;
    }
    Ok(())
}
