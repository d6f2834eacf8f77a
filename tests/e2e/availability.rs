//! Readiness that tells the truth and errors that say "try again" (PL-10): an unreachable
//! PostgreSQL and a full SQLite database answer 503 `service-unavailable` with `Retry-After`
//! at once, never personal data without its usage-log entry, and the server recovers by
//! itself when the database does.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rekisteri_db::schema::{security_events, usage_log};
use rekisteri_db::testing::TestDatabase;
use rekisteri_db::{Pool, PoolOptions};
use rekisteri_tests::{TestApp, TestAppOptions, assert_problem};
use serde_json::{Value, json};

use crate::clients::{MAIJA, client_body, create, home_care_voucher, world};

/// A TCP forwarder between the server and PostgreSQL that the test can cut (every forwarded
/// connection closed, the port refusing) and restore on the same port, so the database becomes
/// unreachable and reachable again exactly when the test says.
struct Proxy {
    address: SocketAddr,
    target: SocketAddr,
    running: Option<Running>,
}

struct Running {
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let mut proxy = Self {
            address,
            target,
            running: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let (target, accept_stop, accept_streams) = (self.target, stop.clone(), streams.clone());
        let acceptor = std::thread::spawn(move || {
            for client in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let mut registered = accept_streams.lock().unwrap();
                registered.push(client.try_clone().unwrap());
                registered.push(server.try_clone().unwrap());
                drop(registered);
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        self.running = Some(Running {
            stop,
            streams,
            acceptor,
        });
    }

    /// Cuts every forwarded connection and closes the port (connections are refused).
    fn stop(&mut self) {
        let running = self.running.take().expect("the proxy runs");
        running.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which sees the flag and drops the listener.
        let _ = TcpStream::connect(self.address);
        running.acceptor.join().unwrap();
        for stream in running.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Listens on the same port again.
    fn restart(&mut self) {
        let listener = TcpListener::bind(self.address).unwrap();
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.running.is_some() {
            self.stop();
        }
    }
}

/// Copies one direction until either side closes, then closes both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buffer) {
            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// The `host:port` of a PostgreSQL URL (`postgres://user@host:port/db?…`).
fn host_port(url: &str) -> String {
    let rest = &url[url.find("://").unwrap() + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let host_port = authority.rsplit('@').next().unwrap();
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    }
}

/// The application on `pool`, with a registrar's world and one client (its id).
fn start_with_a_client(db: TestDatabase, pool: rekisteri_db::Pool) -> (TestApp, crate::clients::World, String) {
    let app = TestApp::start_with(
        db,
        TestAppOptions {
            pool: Some(pool),
            ..TestAppOptions::default()
        },
    );
    let w = world(&app);
    let created = create(
        &app,
        &w.handler,
        &w.registrar,
        &client_body(MAIJA, json!([home_care_voucher(&w.provider)])),
    );
    let id = created["id"].as_str().unwrap().to_owned();
    (app, w, id)
}

fn usage_entries(app: &TestApp, registrar: &str, client: &str) -> i64 {
    usage_log::table
        .filter(usage_log::registrar_id.eq(registrar))
        .filter(usage_log::data_id.eq(client))
        .count()
        .get_result(&mut app.db.conn())
        .unwrap()
}

/// A 503 of an unavailable database or log: the problem document, `Retry-After`, and not a
/// byte of the client's data.
fn assert_unavailable(response: reqwest::blocking::Response) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().unwrap();
    assert_eq!(status, 503, "{text}");
    assert_eq!(retry_after.as_deref(), Some("5"), "{text}");
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["type"], "/problems/service-unavailable", "{text}");
    assert_eq!(body["status"], 503);
    for personal in [MAIJA, "Meikäläinen", "Maija", "Hämeenkatu", "+358"] {
        assert!(!text.contains(personal), "{text}");
    }
}

/// Waits (at most `bound`) until `ok` holds for the response to `request`.
fn eventually(bound: Duration, mut request: impl FnMut() -> bool) {
    let until = Instant::now() + bound;
    while !request() {
        assert!(Instant::now() < until, "not within {bound:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// PL-10: with PostgreSQL unreachable (the test cuts its proxy: every connection closed, new
/// ones refused), a read answers 503 `service-unavailable` with `Retry-After` instead of waiting
/// for the pool, and readiness is 503; when the proxy comes back the server recovers without a
/// restart, and the first read of personal data works and has its log entry, although the audit
/// writer's own connection died with the others.
#[test]
fn pl_10_postgres_unreachable_answers_503_at_once_and_recovers_without_restart() {
    let Some(db) = TestDatabase::postgres() else { return };
    let target = host_port(&db.url).to_socket_addrs().unwrap().next().unwrap();
    let mut proxy = Proxy::start(target);
    let proxied_url = db.url.replacen(&host_port(&db.url), &proxy.address.to_string(), 1);
    let pool = Pool::open(
        &rekisteri_db::DatabaseUrl::parse(&proxied_url).unwrap(),
        &PoolOptions {
            max_size: 4,
            connection_timeout: Duration::from_secs(4),
            ..PoolOptions::default()
        },
    )
    .unwrap();
    let (app, w, id) = start_with_a_client(db, pool);
    let id = id.as_str();
    let path = format!("/v1/registrars/{}/clients/{id}", w.registrar);
    assert_eq!(app.get_as(&w.handler, &path).status().as_u16(), 200);
    let logged = usage_entries(&app, &w.registrar, id);
    assert_eq!(logged, 2, "the creation and the read");

    proxy.stop();
    // The bound is on the outcome: a 503 arrives before a 5 s client timeout (a pool wait of
    // 10 s, as before, would time the request out).
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let response = impatient
        .get(app.url(&path))
        .bearer_auth(&w.handler)
        .send()
        .expect("an answer before the client's 5 s timeout");
    assert_unavailable(response);
    let response = impatient
        .get(app.url("/health/ready"))
        .send()
        .expect("readiness answers");
    let body = assert_problem(response, 503, "/problems/not-ready");
    assert_eq!(body["errors"][0]["field"], "database", "{body}");

    proxy.restart();
    // The pool reconnects on its own schedule; a request that writes no log shows when.
    eventually(Duration::from_secs(30), || {
        app.get_as(&w.admin, &format!("/v1/organisations/{}", w.registrar))
            .status()
            .as_u16()
            == 200
    });
    // Reads of personal data after the reconnection: the audit writer's own connection died
    // with the proxy's and is replaced on its own schedule (on a loaded machine it may still be
    // reconnecting), so a read may yet answer 503, but never the data without its entry, and
    // none of them logs a read it did not serve.
    let mut refused = 0;
    eventually(Duration::from_secs(30), || {
        let response = app.get_as(&w.handler, &path);
        if response.status().as_u16() == 503 {
            assert_unavailable(response);
            assert_eq!(
                usage_entries(&app, &w.registrar, id),
                logged,
                "a refused read logs nothing"
            );
            refused += 1;
            return false;
        }
        assert_eq!(response.status().as_u16(), 200);
        let read: Value = response.json().unwrap();
        assert_eq!(read["identity_code"], MAIJA);
        true
    });
    assert_eq!(
        usage_entries(&app, &w.registrar, id),
        logged + 1,
        "after {refused} refusals"
    );
    let ready = app.get("/health/ready");
    assert_eq!(ready.status().as_u16(), 200);
}

/// Fills the SQLite database to its page limit from a connection of the test's own: blobs into
/// a table of its own until SQLite refuses, smaller ones until even one page is refused.
fn fill_to_limit(path: &str, max_pages: u64) {
    let mut conn = diesel::SqliteConnection::establish(path).unwrap();
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = 5000; PRAGMA max_page_count = {max_pages}; CREATE TABLE filler (b BLOB)"
    ))
    .unwrap();
    for size in [256 * 1024, 16 * 1024, 1024, 64] {
        loop {
            match conn.batch_execute(&format!("INSERT INTO filler VALUES (zeroblob({size}))")) {
                Ok(()) => continue,
                Err(e) => {
                    assert!(e.to_string().contains("database or disk is full"), "{e}");
                    break;
                }
            }
        }
    }
}

/// PL-10: a full SQLite database. A small file system cannot be mounted without root, so the
/// server's connections get SQLite's own size limit (`PRAGMA max_page_count`, the
/// `sqlite_max_size_mb` setting) and the test fills the file to it from a connection of its
/// own; SQLite then refuses every write that needs a page with SQLITE_FULL, exactly as on a
/// full disk, and takes writes again once pages are freed (the test drops its table).
/// Reads answer 503 once the usage log cannot grow (never the data without its entry),
/// readiness is 503 while the log cannot be written, and both recover without a restart.
#[test]
fn pl_10_sqlite_full_answers_503_and_not_ready_then_recovers_without_restart() {
    let db = TestDatabase::sqlite();
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    let pages: i64 = diesel::sql_query("PRAGMA page_count")
        .get_result::<PageCount>(&mut db.conn())
        .unwrap()
        .page_count;
    // Room for the test's organisations, users and client, not much more.
    let max_pages = u64::try_from(pages).unwrap() + 1000;
    let pool = Pool::open(
        db.pool.url(),
        &PoolOptions {
            max_size: 4,
            connection_timeout: Duration::from_secs(4),
            sqlite_max_pages: Some(max_pages),
            ..PoolOptions::default()
        },
    )
    .unwrap();
    let (app, w, id) = start_with_a_client(db, pool);
    let id = id.as_str();
    let path_of_client = format!("/v1/registrars/{}/clients/{id}", w.registrar);
    assert_eq!(app.get("/health/ready").status().as_u16(), 200);

    fill_to_limit(&path, max_pages);
    // Reads go on while the usage log's pages have room; each that returns the client has its
    // entry. The first that needs a page the database cannot give answers 503.
    let mut served = 0;
    loop {
        let before = usage_entries(&app, &w.registrar, id);
        let response = app.get_as(&w.handler, &path_of_client);
        if response.status().as_u16() == 200 {
            assert_eq!(
                usage_entries(&app, &w.registrar, id),
                before + 1,
                "a read without its entry"
            );
            served += 1;
            assert!(served < 500, "the usage log never filled the database");
            continue;
        }
        assert_unavailable(response);
        assert_eq!(
            usage_entries(&app, &w.registrar, id),
            before,
            "nothing logged, nothing served"
        );
        break;
    }
    let body = assert_problem(app.get("/health/ready"), 503, "/problems/not-ready");
    assert_eq!(
        body["errors"],
        json!([{"field": "audit_log", "message": "the audit log cannot be written (is the database's disk full or read-only?)"}])
    );
    // Still full: still 503, and readiness stays 503 (it tries the log again each time).
    assert_unavailable(app.get_as(&w.handler, &path_of_client));
    assert_eq!(app.get("/health/ready").status().as_u16(), 503);

    let mut conn = diesel::SqliteConnection::establish(&path).unwrap();
    conn.batch_execute("PRAGMA busy_timeout = 5000; DROP TABLE filler")
        .unwrap();
    assert_eq!(app.get("/health/ready").status().as_u16(), 200);
    let before = usage_entries(&app, &w.registrar, id);
    let response = app.get_as(&w.handler, &path_of_client);
    assert_eq!(response.status().as_u16(), 200);
    let read: Value = response.json().unwrap();
    assert_eq!(read["identity_code"], MAIJA);
    assert_eq!(usage_entries(&app, &w.registrar, id), before + 1);
    // The outage is on record: one event, naming the failed commits (the first failed read,
    // readiness, the second read, readiness again).
    let restored: Vec<String> = security_events::table
        .filter(security_events::event_type.eq("audit_log_restored"))
        .select(security_events::details)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(restored.len(), 1, "{restored:?}");
    let details: Value = serde_json::from_str(&restored[0]).unwrap();
    assert_eq!(details["failed_attempts"], 4, "{details}");
    assert!(details["unavailable_since"].is_string(), "{details}");
}

#[derive(QueryableByName)]
struct PageCount {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    page_count: i64,
}
