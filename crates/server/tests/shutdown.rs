//! The server process stopping: gracefully on SIGTERM with work in flight (PL-11), and killed
//! with SIGKILL while a request holds an `Idempotency-Key` (PL-17, PL-2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde_json::{Value, json};

mod common;

/// How long a test waits for an event before it fails: far beyond what any of them needs.
const PATIENCE: Duration = Duration::from_secs(90);

use common::rekisteri_on as rekisteri;

/// A seeded demo on `database_url`: a provider's staff token, the registrar and a service of
/// one of its clients (whose events the staff record).
struct Demo {
    staff: String,
    registrar: String,
}

fn seed(dir: &std::path::Path, database_url: &str) -> Demo {
    rekisteri_crypto::Keyring::create_file(&dir.join("keys.toml")).unwrap();
    let output = rekisteri(dir, database_url).args(["demo", "seed"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let staff = stdout
        .lines()
        .find(|l| l.starts_with("provider_staff ") && l.contains("Demo Hoiva Oy"))
        .unwrap_or_else(|| panic!("no provider staff: {stdout}"))
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned();
    let registrar = common::demo_registrar(&stdout);
    Demo { staff, registrar }
}

/// A running `rekisteri serve`, killed when the test ends.
struct Served {
    child: common::KillOnDrop,
    address: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Served {
    fn start(dir: &std::path::Path, database_url: &str, env: &[(&str, &str)]) -> Self {
        let mut command = rekisteri(dir, database_url);
        command.arg("serve").env("REKISTERI_BIND", "127.0.0.1:0");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Self {
            child: common::KillOnDrop(child),
            address: String::new(),
            lines,
        };
        let line = served.wait_for_log("serving on ");
        served.address = line
            .split("serving on http://")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        served
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The first log line from now on that contains `text`.
    fn wait_for_log(&self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {text:?}: {e}"),
            }
        }
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.wait_for_log("SIGTERM received");
    }

    /// Waits for the process to exit; fails if it is still running after [`PATIENCE`].
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A raw HTTP/1.1 connection, to hold a request half-sent.
struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    fn open(served: &Served) -> Self {
        let stream = TcpStream::connect(&served.address).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Self {
            stream: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let stream = self.stream.get_mut();
        stream.write_all(bytes).unwrap();
        stream.flush().unwrap();
    }

    /// Reads one response: status, headers (lower-case names) and body (by Content-Length).
    fn response(&mut self) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut status_line = String::new();
        self.stream.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no response: {status_line:?}"))
            .parse()
            .unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).unwrap();
        (status, headers, body)
    }

    /// Whether the server closed the connection (end of stream, or reset).
    fn closed_by_server(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.stream.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
        }
    }
}

/// A GET the server answers at once, so that the connection is known to be the server's.
fn live_check(connection: &mut Connection) {
    connection.send(b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n");
    let (status, _, _) = connection.response();
    assert_eq!(status, 200);
}

/// Sends the head of a creating POST that asks to continue (`Expect: 100-continue`) and waits for
/// the server's `100 Continue`: from then on the server is running the request (actix answers it
/// as it hands the request to the application), which waits for its body.
fn start_post(connection: &mut Connection, path: &str, token: &str, key: &str, length: usize) {
    connection.send(
        format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n\
             Idempotency-Key: {key}\r\nContent-Length: {length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    let (status, _, _) = connection.response();
    assert_eq!(status, 100);
}

fn count_events(db: &rekisteri_db::testing::TestDatabase) -> i64 {
    rekisteri_db::schema::service_events::table
        .count()
        .get_result(&mut *db.pool.get().unwrap())
        .unwrap()
}

/// A service of the demo registrar's client and a day within it.
fn service_of(served: &Served, demo: &Demo) -> (String, String) {
    let client = reqwest::blocking::Client::new();
    let clients: Value = client
        .get(served.url(&format!("/v1/registrars/{}/clients", demo.registrar)))
        .bearer_auth(&demo.staff)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let service = &clients["items"][0]["services"][0];
    let day = service["valid_from"]
        .as_str()
        .unwrap_or_else(|| panic!("{clients}"))
        .to_owned();
    (service["id"].as_str().unwrap().to_owned(), day)
}

fn events_path(demo: &Demo, service: &str) -> String {
    format!("/v1/registrars/{}/services/{service}/events", demo.registrar)
}

rekisteri_db::db_test!(fn pl_11_a_request_in_flight_at_sigterm_is_answered_in_full_and_kept(db) {
    let dir = tempfile::tempdir().unwrap();
    let demo = seed(dir.path(), &db.url);
    let mut served = Served::start(dir.path(), &db.url, &[]);
    let (service, day) = service_of(&served, &demo);
    let before = count_events(db);
    let body = json!({"delivered_on": day, "quantity": 1}).to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let mut connection = Connection::open(&served);
    live_check(&mut connection);
    // Half the body is sent when the server is told to stop: the request is in progress.
    start_post(&mut connection, &events_path(&demo, &service), &demo.staff, "in-flight-1", body.len());
    connection.send(first);
    served.terminate();
    // New connections are refused from now on; the one in flight is finished.
    connection.send(rest);
    let (status, headers, answer) = connection.response();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    let created: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!((created["service_id"].as_str(), created["delivered_on"].as_str()), (Some(service.as_str()), Some(day.as_str())));
    // The connection is closed after the answer: the server is stopping.
    assert!(headers.iter().any(|(n, v)| n == "connection" && v == "close"), "{headers:?}");
    let exit = served.wait_exit();
    assert!(exit.success(), "{exit:?}");
    served.wait_for_log("stopped");
    assert_eq!(count_events(db), before + 1);
    // Its answer was kept for a retry, and the stopped server's claims are free.
    let stored: Vec<(String, Option<i32>)> = rekisteri_db::schema::idempotency_keys::table
        .filter(rekisteri_db::schema::idempotency_keys::idempotency_key.eq("in-flight-1"))
        .select((rekisteri_db::schema::idempotency_keys::state, rekisteri_db::schema::idempotency_keys::status))
        .load(&mut *db.pool.get().unwrap())
        .unwrap();
    assert_eq!(stored, vec![("completed".to_owned(), Some(201))]);
    let instances: i64 = rekisteri_db::schema::server_instances::table
        .count()
        .get_result(&mut *db.pool.get().unwrap())
        .unwrap();
    assert_eq!(instances, 0, "a server that stopped cleanly leaves no instance row");
});

rekisteri_db::db_test!(fn pl_11_a_body_never_finished_does_not_hold_the_stop_past_its_timeout_and_commits_nothing(db) {
    let dir = tempfile::tempdir().unwrap();
    let demo = seed(dir.path(), &db.url);
    let mut served = Served::start(dir.path(), &db.url, &[("REKISTERI_SHUTDOWN_TIMEOUT_SECS", "2")]);
    let (service, day) = service_of(&served, &demo);
    let before = count_events(db);
    let body = json!({"delivered_on": day, "quantity": 1}).to_string();
    let mut connection = Connection::open(&served);
    live_check(&mut connection);
    start_post(&mut connection, &events_path(&demo, &service), &demo.staff, "half-1", body.len());
    connection.send(&body.as_bytes()[..body.len() / 2]);
    served.terminate();
    // The client never sends the rest: the server gives up on it after its shutdown timeout.
    let exit = served.wait_exit();
    assert!(exit.success(), "{exit:?}");
    served.wait_for_log("stopped");
    assert!(connection.closed_by_server());
    assert_eq!(count_events(db), before, "nothing of the unfinished request was committed");
    let keys: i64 = rekisteri_db::schema::idempotency_keys::table
        .filter(rekisteri_db::schema::idempotency_keys::idempotency_key.eq("half-1"))
        .count()
        .get_result(&mut *db.pool.get().unwrap())
        .unwrap();
    assert_eq!(keys, 0, "the key was never claimed");
});

rekisteri_db::db_test!(fn pl_11_an_idle_keep_alive_connection_is_closed_and_does_not_hold_the_stop(db) {
    let dir = tempfile::tempdir().unwrap();
    let _demo = seed(dir.path(), &db.url);
    // A shutdown timeout far beyond the test's patience: the server must not wait it out.
    let mut served = Served::start(dir.path(), &db.url, &[("REKISTERI_SHUTDOWN_TIMEOUT_SECS", "3600")]);
    let mut connection = Connection::open(&served);
    live_check(&mut connection);
    live_check(&mut connection);
    served.terminate();
    let exit = served.wait_exit();
    assert!(exit.success(), "{exit:?}");
    served.wait_for_log("stopped");
    assert!(connection.closed_by_server());
});

/// PL-17 with the real binary: a request holding a key is in flight (claimed, its write blocked)
/// when the server is killed with SIGKILL; after a restart, the retry with the key gets 409 at
/// most until the dead server's lease has run out, then runs and creates once; later retries
/// replay. The write is held by a PostgreSQL table lock the test takes, which the claim does
/// not need: SQLite has one lock for the whole file, so there the moment cannot be held without
/// a hook in the server, and the in-process tests (`tests/e2e/idempotency.rs`) cover it.
#[test]
fn pl_17_a_key_in_flight_when_the_server_is_killed_is_run_again_once_after_a_restart() {
    let Some(db) = rekisteri_db::testing::TestDatabase::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let demo = seed(dir.path(), &db.url);
    let lease = [("REKISTERI_INSTANCE_LEASE_SECS", "3")];
    let mut served = Served::start(dir.path(), &db.url, &lease);
    let (service, day) = service_of(&served, &demo);
    let path = events_path(&demo, &service);
    let before = count_events(&db);
    let body = json!({"delivered_on": day, "quantity": 2}).to_string();

    let mut lock = db.pool.get().unwrap();
    diesel::connection::SimpleConnection::batch_execute(
        &mut *lock,
        "BEGIN; LOCK TABLE service_events IN EXCLUSIVE MODE",
    )
    .unwrap();
    let (url, token, sent) = (served.url(&path), demo.staff.clone(), body.clone());
    let in_flight = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(url)
            .bearer_auth(token)
            .header("Idempotency-Key", "killed-1")
            .header("Content-Type", "application/json")
            .body(sent)
            .send()
            .map(|r| r.status().as_u16())
    });
    // The claim is committed; the handler's insert waits for the lock.
    let deadline = Instant::now() + PATIENCE;
    let claim = loop {
        use rekisteri_db::schema::idempotency_keys as keys;
        let found: Option<(String, bool, Option<String>)> = keys::table
            .filter(keys::idempotency_key.eq("killed-1"))
            .select((keys::state, keys::written, keys::owner))
            .first(&mut *db.pool.get().unwrap())
            .optional()
            .unwrap();
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "the request never claimed its key");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!((claim.0.as_str(), claim.1), ("pending", false));
    served.child.0.kill().unwrap();
    served.child.0.wait().unwrap();
    assert!(in_flight.join().unwrap().is_err(), "the killed server answered nothing");
    diesel::connection::SimpleConnection::batch_execute(&mut *lock, "ROLLBACK").unwrap();
    drop(lock);
    assert_eq!(count_events(&db), before);

    let served = Served::start(dir.path(), &db.url, &lease);
    let client = reqwest::blocking::Client::new();
    let retry = || {
        client
            .post(served.url(&path))
            .bearer_auth(&demo.staff)
            .header("Idempotency-Key", "killed-1")
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .unwrap()
    };
    // 409 while the dead server's lease runs; then the request runs again.
    let deadline = Instant::now() + PATIENCE;
    let created = loop {
        let response = retry();
        if response.status().as_u16() != 409 {
            break response;
        }
        let problem: Value = response.json().unwrap();
        assert_eq!(problem["type"], "/problems/idempotency-key-in-use", "{problem}");
        assert!(Instant::now() < deadline, "the key stayed in use");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(created.status().as_u16(), 201);
    assert!(created.headers().get("idempotent-replayed").is_none());
    let created: Value = created.json().unwrap();
    assert_eq!(count_events(&db), before + 1);
    let replayed = retry();
    assert_eq!(replayed.status().as_u16(), 201);
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(replayed.json::<Value>().unwrap()["id"], created["id"]);
    assert_eq!(count_events(&db), before + 1, "created exactly once");
}
