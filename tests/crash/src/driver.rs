//! One database's crash run (PL-17): set-up, the cycles of load, `kill -9`, restart and checks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use rekisteri_bench::seed::{Demo, client_body};
use rekisteri_bench::server::{self, Server, Setup};
use rekisteri_db::{DatabaseUrl, Pool, PoolOptions};
use serde_json::{Value, json};

use crate::Args;

/// What one database's run measured.
#[derive(Default, Debug)]
pub struct Figures {
    pub cycles: usize,
    pub acknowledged: u64,
    pub lost: u64,
    pub chain_failures: u64,
    pub reads: u64,
    pub reads_without_log: u64,
    /// Acknowledged client creates whose usage-log entry is not in the chain.
    pub creates_without_log: u64,
    /// Log entries still waiting in the outbox once every request was answered (PostgreSQL).
    pub outbox_left: u64,
    pub unanswered: u64,
    pub retried_created: u64,
    pub retried_replayed: u64,
    pub stuck_keys: u64,
    pub duplicates: u64,
    pub unexpected: u64,
    /// Acknowledged writes by kind (creates, events, consent, VTJ batches, contacts, audio).
    pub by_kind: BTreeMap<&'static str, u64>,
    pub examples: Vec<String>,
}

impl Figures {
    pub fn failures(&self, lenient_stuck_keys: bool) -> Vec<String> {
        let mut out = Vec::new();
        for (count, what) in [
            (self.lost, "acknowledged writes lost or changed"),
            (self.chain_failures, "audit verify failures"),
            (
                self.reads_without_log,
                "reads of personal data without their usage-log entry",
            ),
            (
                self.creates_without_log,
                "acknowledged client creates without their usage-log entry",
            ),
            (
                self.outbox_left,
                "log entries left in the outbox after every request was answered",
            ),
            (self.duplicates, "retries that neither created once nor replayed"),
            (self.unexpected, "unexpected answers"),
        ] {
            if count > 0 {
                out.push(format!("{count} {what}"));
            }
        }
        if self.stuck_keys > 0 && !lenient_stuck_keys {
            out.push(format!(
                "{} idempotency keys stuck pending after a crash (409 idempotency-key-in-use on the retry)",
                self.stuck_keys
            ));
        }
        if !out.is_empty() {
            out.extend(self.examples.iter().take(10).map(|e| format!("  e.g. {e}")));
        }
        out
    }

    pub fn table(results: &[(&str, Figures)]) -> String {
        let mut out = String::from(
            "| database | cycles | acknowledged writes | lost writes | chain failures | reads | reads without log entry \
             | unanswered | retry created | retry replayed | keys stuck | duplicates | unexpected answers |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for (database, f) in results {
            out.push_str(&format!(
                "| {database} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                f.cycles,
                f.acknowledged,
                f.lost,
                f.chain_failures,
                f.reads,
                f.reads_without_log,
                f.unanswered,
                f.retried_created,
                f.retried_replayed,
                f.stuck_keys,
                f.duplicates,
                f.unexpected
            ));
        }
        for (database, f) in results {
            let kinds: Vec<String> = f.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
            out.push_str(&format!("\n{database}, acknowledged by kind: {}", kinds.join(", ")));
        }
        out
    }

    fn count(&mut self, acks: &[Ack]) {
        self.acknowledged += acks.len() as u64;
        for ack in acks {
            *self.by_kind.entry(ack.kind_name()).or_default() += 1;
        }
    }

    fn note(&mut self, example: String) {
        if self.examples.len() < 50 {
            self.examples.push(example);
        }
    }
}

/// Who sends a request: the registrar's integration (clients:write), its client handler
/// (informing, consent, reads) or the provider's staff (service events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Integration,
    Handler,
    Staff,
}

#[derive(Clone, Debug)]
struct Tokens {
    integration: String,
    handler: String,
    staff: String,
}

impl Tokens {
    fn of(&self, who: Who) -> &str {
        match who {
            Who::Integration => &self.integration,
            Who::Handler => &self.handler,
            Who::Staff => &self.staff,
        }
    }
}

#[derive(Clone, Debug)]
struct Request {
    who: Who,
    method: reqwest::Method,
    path: String,
    body: Vec<u8>,
    content_type: &'static str,
    key: Option<String>,
    kind: Kind,
}

impl Request {
    fn json(who: Who, method: reqwest::Method, path: String, body: &Value, key: Option<String>, kind: Kind) -> Self {
        Self {
            who,
            method,
            path,
            body: body.to_string().into_bytes(),
            content_type: "application/json",
            key,
            kind,
        }
    }

    fn read(path: String) -> Self {
        Self {
            who: Who::Handler,
            method: reqwest::Method::GET,
            path,
            body: Vec::new(),
            content_type: "application/json",
            key: None,
            kind: Kind::Read,
        }
    }
}

#[derive(Clone, Debug)]
enum Kind {
    CreateClient,
    Event {
        service: String,
    },
    Informing {
        client: String,
    },
    Consent {
        client: String,
        state: &'static str,
        previous: String,
    },
    Read,
    /// A batch of one name change in DVV's format (VT-11) for one of the thread's clients.
    Vtj {
        client: String,
        first: String,
        surname: String,
    },
    /// A contact pushed by the telephony system (CA-2).
    Contact,
    /// A contact's audio (CA-3), once only.
    Recording {
        contact: String,
        sha256: String,
    },
}

/// An acknowledged write: what the server answered (the record as it stood) and where it is
/// read back.
#[derive(Clone, Debug)]
enum Ack {
    Client {
        id: String,
        answer: Value,
    },
    Event {
        service: String,
        answer: Value,
    },
    Informing {
        client: String,
        answer: Value,
    },
    Consent {
        client: String,
        state: String,
    },
    /// The client's name after an applied VTJ change.
    Vtj {
        client: String,
        first: String,
        surname: String,
    },
    Contact {
        id: String,
        answer: Value,
    },
    Recording {
        contact: String,
        answer: Value,
    },
}

impl Ack {
    fn kind_name(&self) -> &'static str {
        match self {
            Ack::Client { .. } => "client creates",
            Ack::Event { .. } => "service events",
            Ack::Informing { .. } => "Kanta informings",
            Ack::Consent { .. } => "consent changes",
            Ack::Vtj { .. } => "VTJ changes applied",
            Ack::Contact { .. } => "contacts",
            Ack::Recording { .. } => "recordings",
        }
    }
}

enum Outcome {
    Answered {
        status: u16,
        replayed: bool,
        body: String,
    },
    /// The connection was refused: the server never saw the request.
    Refused,
    /// Sent, and no answer came (the server died with it in flight, or the connection broke).
    NoAnswer,
}

fn send(http: &reqwest::blocking::Client, base: &str, tokens: &Tokens, request: &Request, request_id: &str) -> Outcome {
    let mut builder = http
        .request(request.method.clone(), format!("{base}{}", request.path))
        .bearer_auth(tokens.of(request.who))
        .header("Accept", "application/json")
        .header("X-Request-Id", request_id);
    if let Some(key) = &request.key {
        builder = builder.header("Idempotency-Key", key);
    }
    if !request.body.is_empty() {
        builder = builder
            .header("Content-Type", request.content_type)
            .body(request.body.clone());
    }
    match builder.send() {
        Ok(response) => {
            let status = response.status().as_u16();
            let replayed = response
                .headers()
                .get("Idempotent-Replayed")
                .is_some_and(|v| v.as_bytes() == b"true");
            match response.text() {
                Ok(body) => Outcome::Answered { status, replayed, body },
                Err(_) => Outcome::NoAnswer,
            }
        }
        Err(e) if e.is_connect() => Outcome::Refused,
        Err(_) => Outcome::NoAnswer,
    }
}

/// A writing thread's own clients, across cycles: only it changes them, so the order of its
/// consent changes is the order of their acknowledgements.
#[derive(Default, Clone)]
struct Owned {
    /// (client id, first service id)
    clients: Vec<(String, String)>,
    informed: HashSet<String>,
    /// Clients whose consent state is not known for certain (a change got no answer and its
    /// retry did not settle it): no further consent changes, no consent check.
    uncertain: HashSet<String>,
    /// The last acknowledged consent state of each client (`not_given` before any).
    consent: HashMap<String, String>,
    /// Hours of each service's events sent so far (answered or not).
    delivered: HashMap<String, f64>,
    /// Each client's identity code (from the answer that created it), for its VTJ changes.
    codes: HashMap<String, String>,
    /// VTJ changes sent per client (answered or not): the next change's name and time.
    renamed: HashMap<String, u32>,
    /// Contacts pushed by this thread that have no audio yet.
    silent: Vec<String>,
}

/// What a writing thread did in one cycle.
#[derive(Default)]
struct Done {
    acks: Vec<Ack>,
    unanswered: Vec<Request>,
    /// X-Request-Id of the reads answered 200 (personal data returned).
    reads: Vec<String>,
    /// X-Request-Id of the client creates acknowledged on their first sending.
    creates: Vec<String>,
    unexpected: Vec<String>,
}

struct World {
    rid: String,
    provider: String,
    demo: Demo,
    /// The integration's id and secret, for a new token each cycle (tokens live 15 minutes).
    integration: (String, String),
    valid_from: time::Date,
    /// The demo registrar's recorded queue, where the telephony pushes its calls.
    queue: String,
}

/// A small xorshift64 generator: the driver's choices, repeatable from the printed seed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// PL-17 on one database: `kill -9` during sustained writes loses no write that got a 2xx.
pub fn pl_17_nothing_acknowledged_is_lost(args: &Args, url: &str, dir: &Path, seed: u64) -> Result<Figures, String> {
    let database = if url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    println!("== {database}");
    let setup = Setup {
        binary: absolute_binary(&args.server)?,
        dir: dir.to_owned(),
        database_url: url.to_owned(),
        key_file: dir.join("keys.toml"),
        addr: server::free_addr()?,
    };
    server::write_key_file(&setup.key_file)?;
    setup.run(&["migrate"])?;
    let demo = Demo::parse(&setup.run(&["demo", "seed"])?)?;
    let (mut server, _) = setup.serve()?;
    let base = format!("http://{}", setup.addr);
    let http = http_client()?;
    let integration = make_integration(&http, &base, &demo)?;
    let world = World {
        rid: demo.registrar.clone(),
        provider: demo.provider.clone(),
        integration,
        valid_from: time::OffsetDateTime::now_utc()
            .date()
            .replace_day(1)
            .map_err(|e| e.to_string())?,
        queue: recorded_queue(&http, &base, &demo)?,
        demo,
    };
    let mut figures = Figures::default();
    let mut rng = Rng(seed | 1);
    let mut owned: Vec<Owned> = vec![Owned::default(); args.threads];
    let mut all_acks: Vec<Ack> = Vec::new();
    let next_client = Arc::new(AtomicUsize::new(0));
    let mut handler = log_in(&http, &base, &world.demo.handler)?;
    let mut staff = log_in(&http, &base, &world.demo.staff)?;
    for cycle in 0..args.cycles {
        let tokens = Tokens {
            integration: integration_token(&http, &base, &world.integration)?,
            handler: handler.clone(),
            staff: staff.clone(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let world_ref = Arc::new((
            world.rid.clone(),
            world.provider.clone(),
            world.valid_from,
            base.clone(),
            world.queue.clone(),
        ));
        let mut threads = Vec::new();
        for (n, mine) in owned.drain(..).enumerate() {
            let stop = stop.clone();
            let tokens = tokens.clone();
            let world = world_ref.clone();
            let next_client = next_client.clone();
            let mut rng = Rng(rng.next() | 1);
            threads.push(std::thread::spawn(move || {
                let (rid, provider, valid_from, base, queue) = &*world;
                let context = Load {
                    rid,
                    provider,
                    valid_from: *valid_from,
                    base,
                    queue,
                    tokens: &tokens,
                    next_client: &next_client,
                };
                writer(n, context, mine, &stop, &mut rng)
            }));
        }
        let load_ms = 200 + rng.below(args.max_load_ms.saturating_sub(200).max(1));
        std::thread::sleep(Duration::from_millis(load_ms));
        server.kill()?;
        stop.store(true, Ordering::Relaxed);
        let mut done = Done::default();
        for thread in threads {
            let (mine, did) = thread.join().map_err(|_| "a writing thread panicked".to_owned())?;
            owned.push(mine);
            done.acks.extend(did.acks);
            done.unanswered.extend(did.unanswered);
            done.reads.extend(did.reads);
            done.unexpected.extend(did.unexpected);
        }
        server = restart(&setup)?;
        // The sessions live in the database; a new log-in only when the old one is gone.
        if !session_alive(&http, &base, &handler) {
            handler = log_in(&http, &base, &world.demo.handler)?;
        }
        if !session_alive(&http, &base, &staff) {
            staff = log_in(&http, &base, &world.demo.staff)?;
        }
        let tokens = Tokens {
            integration: integration_token(&http, &base, &world.integration)?,
            handler: handler.clone(),
            staff: staff.clone(),
        };
        figures.unexpected += done.unexpected.len() as u64;
        for u in done.unexpected.drain(..) {
            figures.note(format!("cycle {cycle}: {u}"));
        }
        figures.unanswered += done.unanswered.iter().filter(|r| !matches!(r.kind, Kind::Read)).count() as u64;
        let (retried, settled) = retry(
            &http,
            &base,
            &tokens,
            &world.rid,
            &done.unanswered,
            &mut owned,
            &mut figures,
            cycle,
        );
        done.acks.extend(retried);
        figures.count(&done.acks);
        // After the acknowledged changes: an unanswered consent change that took is the state now.
        done.acks.extend(settled);
        figures.reads += done.reads.len() as u64;
        check_acks(
            &http,
            &base,
            &tokens,
            &world.rid,
            &done.acks,
            &owned,
            &mut figures,
            cycle,
        );
        check_usage_log(url, &done.reads, &done.creates, &mut figures, cycle)?;
        check_chains(&setup, &mut figures, cycle);
        all_acks.extend(done.acks);
        figures.cycles = cycle + 1;
        println!(
            "   cycle {:>3}: killed after {load_ms:>4} ms; {} acknowledged, {} unanswered so far; lost {}, stuck {}, \
             reads without log {}, creates without log {}, outbox left {}, chain failures {}",
            cycle + 1,
            figures.acknowledged,
            figures.unanswered,
            figures.lost,
            figures.stuck_keys,
            figures.reads_without_log,
            figures.creates_without_log,
            figures.outbox_left,
            figures.chain_failures
        );
    }
    // A crash must not take away what an earlier restart still had: everything once more.
    let tokens = Tokens {
        integration: integration_token(&http, &base, &world.integration)?,
        handler,
        staff,
    };
    let before = figures.lost;
    check_acks(
        &http,
        &base,
        &tokens,
        &world.rid,
        &all_acks,
        &owned,
        &mut figures,
        args.cycles,
    );
    println!(
        "   all {} acknowledged writes read back after the last restart: {} lost",
        all_acks.len(),
        figures.lost - before
    );
    server.stop();
    Ok(figures)
}

fn absolute_binary(path: &Path) -> Result<std::path::PathBuf, String> {
    std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn http_client() -> Result<reqwest::blocking::Client, String> {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Restarts the server; the killed one's log is kept beside the new one.
fn restart(setup: &Setup) -> Result<Server, String> {
    let log = setup.dir.join("server.log");
    let previous = setup.dir.join("server.killed.log");
    let _ = std::fs::rename(&log, &previous);
    let (server, _) = setup.serve()?;
    Ok(server)
}

struct Load<'a> {
    rid: &'a str,
    provider: &'a str,
    valid_from: time::Date,
    base: &'a str,
    queue: &'a str,
    tokens: &'a Tokens,
    next_client: &'a AtomicUsize,
}

/// One writing thread: until the server dies, a random mix of client creates, service events,
/// informing and consent changes on its own clients, VTJ name changes of its own clients,
/// contacts and their audio, and audited reads.
fn writer(n: usize, load: Load, mut mine: Owned, stop: &AtomicBool, rng: &mut Rng) -> (Owned, Done) {
    let mut done = Done::default();
    let Ok(http) = http_client() else {
        done.unexpected.push(format!("thread {n}: no HTTP client"));
        return (mine, done);
    };
    let rid = load.rid;
    while !stop.load(Ordering::Relaxed) {
        let choice = rng.below(14);
        let request = match choice {
            10 => contact_push(rid, load.queue, rng),
            11 if !mine.silent.is_empty() => {
                let contact = mine.silent.swap_remove(rng.below(mine.silent.len() as u64) as usize);
                recording_upload(rid, contact, rng)
            }
            11 => contact_push(rid, load.queue, rng),
            _ if choice < 4 || mine.clients.is_empty() => {
                let number = load.next_client.fetch_add(1, Ordering::Relaxed);
                let Ok(body) = client_body(number, load.provider, load.valid_from) else {
                    done.unexpected.push("a client body".to_owned());
                    break;
                };
                Request {
                    who: Who::Integration,
                    method: reqwest::Method::POST,
                    path: format!("/v1/registrars/{rid}/clients"),
                    body: body.into_bytes(),
                    content_type: "application/json",
                    key: Some(uuid::Uuid::new_v4().to_string()),
                    kind: Kind::CreateClient,
                }
            }
            _ => {
                let (client, service) = mine.clients[rng.below(mine.clients.len() as u64) as usize].clone();
                match choice {
                    4 | 5 => {
                        // A service grants 40 hours; events beyond it are rightly refused.
                        let quantity = 0.25 * (1 + rng.below(4)) as f64;
                        let delivered = mine.delivered.entry(service.clone()).or_default();
                        if *delivered + quantity > 40.0 {
                            continue;
                        }
                        *delivered += quantity;
                        let key = uuid::Uuid::new_v4().to_string();
                        Request::json(
                            Who::Staff,
                            reqwest::Method::POST,
                            format!("/v1/registrars/{rid}/services/{service}/events"),
                            // The key in the note: a duplicate would show as two events with it.
                            &json!({"delivered_on": load.valid_from.to_string(),
                                "quantity": quantity, "note": format!("crash {key}")}),
                            Some(key),
                            Kind::Event { service },
                        )
                    }
                    6 | 7 | 12 if mine.uncertain.contains(&client) => continue,
                    6 | 7 if !mine.informed.contains(&client) => Request::json(
                        Who::Handler,
                        reqwest::Method::POST,
                        format!("/v1/registrars/{rid}/clients/{client}/kanta-informing"),
                        &json!({"method": "in_person"}),
                        Some(uuid::Uuid::new_v4().to_string()),
                        Kind::Informing { client },
                    ),
                    6 | 7 => {
                        let previous = mine
                            .consent
                            .get(&client)
                            .cloned()
                            .unwrap_or_else(|| "not_given".to_owned());
                        // Only a given consent can be revoked.
                        let state = if previous == "positive" {
                            ["negative", "revoked"][rng.below(2) as usize]
                        } else {
                            ["positive", "negative"][rng.below(2) as usize]
                        };
                        Request::json(
                            Who::Handler,
                            reqwest::Method::PUT,
                            format!("/v1/registrars/{rid}/clients/{client}/disclosure-consent"),
                            &json!({"state": state}),
                            None,
                            Kind::Consent {
                                client,
                                state,
                                previous,
                            },
                        )
                    }
                    12 => {
                        let Some(code) = mine.codes.get(&client).cloned() else {
                            continue;
                        };
                        let sent = mine.renamed.entry(client.clone()).or_default();
                        *sent += 1;
                        vtj_name_change(rid, client, &code, *sent)
                    }
                    _ => Request::read(format!("/v1/registrars/{rid}/clients/{client}")),
                }
            }
        };
        let request_id = format!("crash-{}", uuid::Uuid::new_v4());
        match send(&http, load.base, load.tokens, &request, &request_id) {
            Outcome::Refused => break,
            Outcome::NoAnswer => {
                match &request.kind {
                    Kind::Consent { client, .. } | Kind::Informing { client } | Kind::Vtj { client, .. } => {
                        mine.uncertain.insert(client.clone());
                    }
                    _ => {}
                }
                done.unanswered.push(request);
                break;
            }
            Outcome::Answered { status, body, .. } => match accept(&request, status, &body) {
                Ok(Some(ack)) => {
                    if matches!(ack, Ack::Client { .. }) {
                        done.creates.push(request_id);
                    }
                    own(&mut mine, &ack);
                    done.acks.push(ack);
                }
                Ok(None) if matches!(request.kind, Kind::Read) => done.reads.push(request_id),
                Ok(None) => {}
                Err(e) => done.unexpected.push(e),
            },
        }
    }
    (mine, done)
}

/// A call to the recorded queue, as the telephony system pushes it after the call.
fn contact_push(rid: &str, queue: &str, rng: &mut Rng) -> Request {
    let started = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let started = started
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "2026-01-02T07:30:00Z".to_owned());
    Request::json(
        Who::Integration,
        reqwest::Method::POST,
        format!("/v1/registrars/{rid}/contacts"),
        &json!({"kind": "call", "queue_id": queue, "caller_number": format!("+35840{:07}", rng.below(10_000_000)),
            "started_at": started, "wait_seconds": rng.below(600), "duration_seconds": 1 + rng.below(1800),
            "home_municipality": "837"}),
        Some(uuid::Uuid::new_v4().to_string()),
        Kind::Contact,
    )
}

/// A contact's audio: a WAV file of 8 to 64 KiB of noise, unique to the upload.
fn recording_upload(rid: &str, contact: String, rng: &mut Rng) -> Request {
    let audio = wav(8 * 1024 + rng.below(56 * 1024) as usize, rng.next());
    Request {
        who: Who::Integration,
        method: reqwest::Method::PUT,
        path: format!("/v1/registrars/{rid}/contacts/{contact}/recording"),
        kind: Kind::Recording {
            contact,
            sha256: sha256_hex(&audio),
        },
        body: audio,
        content_type: "audio/wav",
        key: None,
    }
}

/// One name change of a client in DVV's change format (VT-11). Each change of a client is later
/// than the one before it (`muutospv`), so none is skipped as older than what is applied.
fn vtj_name_change(rid: &str, client: String, code: &str, nth: u32) -> Request {
    const FIRST: [&str; 6] = ["Aino", "Eero", "Helmi", "Ilmari", "Kaarina", "Lauri"];
    let first = FIRST[nth as usize % FIRST.len()].to_owned();
    let surname = format!("Muutos{nth}");
    let on = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "2026-01-02T07:30:00Z".to_owned());
    Request::json(
        Who::Integration,
        reqwest::Method::POST,
        format!("/v1/registrars/{rid}/vtj/changes"),
        &json!({"viimeisinKirjausavain": nth, "ajanTasalla": true, "muutokset": [
            {"henkilotunnus": code, "muutospv": on, "tietoryhmat": [{"tietoryhma": "HENKILON_NIMI",
                "muutosattribuutti": "LISATTY", "etunimi": first, "sukunimi": surname}]}]}),
        None,
        Kind::Vtj { client, first, surname },
    )
}

/// A WAV file of `len` bytes: a real header, then noise from `seed`.
fn wav(len: usize, seed: u64) -> Vec<u8> {
    let mut out = rekisteri_recordings::wav_header((len - 44) as u32);
    out.reserve(len - 44);
    let mut noise = Rng(seed | 1);
    while out.len() < len {
        out.extend_from_slice(&noise.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The acknowledged write an answer stands for (`None` for a read), or why the answer is not
/// one the driver expects.
fn accept(request: &Request, status: u16, body: &str) -> Result<Option<Ack>, String> {
    let expected = match request.kind {
        Kind::Consent { .. } | Kind::Read | Kind::Vtj { .. } => 200,
        _ => 201,
    };
    if status != expected {
        let text: String = body.chars().take(200).collect();
        return Err(format!(
            "{} {}: HTTP {status} (expected {expected}): {text}",
            request.method,
            redact(&request.path)
        ));
    }
    let answer: Value = serde_json::from_str(body).map_err(|e| format!("{}: not JSON: {e}", redact(&request.path)))?;
    let id = |v: &Value| {
        v["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or("an answer without an id".to_owned())
    };
    Ok(match &request.kind {
        Kind::CreateClient => Some(Ack::Client {
            id: id(&answer)?,
            answer,
        }),
        Kind::Event { service } => Some(Ack::Event {
            service: service.clone(),
            answer,
        }),
        Kind::Informing { client } => Some(Ack::Informing {
            client: client.clone(),
            answer,
        }),
        Kind::Consent { client, state, .. } => Some(Ack::Consent {
            client: client.clone(),
            state: (*state).to_owned(),
        }),
        Kind::Read => None,
        // Applied, or skipped when not later than what is applied (then nothing changed).
        Kind::Vtj { client, first, surname } => match (answer["applied"].as_u64(), answer["skipped"].as_u64()) {
            (Some(1), Some(0)) => Some(Ack::Vtj {
                client: client.clone(),
                first: first.clone(),
                surname: surname.clone(),
            }),
            (Some(0), Some(1)) => None,
            _ => return Err(format!("a VTJ change neither applied nor skipped: {answer}")),
        },
        Kind::Contact => Some(Ack::Contact {
            id: id(&answer)?,
            answer,
        }),
        Kind::Recording { contact, sha256 } => {
            if answer["sha256"].as_str() != Some(sha256.as_str()) {
                return Err(format!("a recording answered with another checksum: {answer}"));
            }
            Some(Ack::Recording {
                contact: contact.clone(),
                answer,
            })
        }
    })
}

/// Paths carry ids only (no personal data), but keep the messages short.
fn redact(path: &str) -> String {
    path.split('/')
        .map(|part| if part.len() == 36 { "{id}" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

fn own(mine: &mut Owned, ack: &Ack) {
    match ack {
        Ack::Client { id, answer } => {
            if let Some(service) = answer["services"][0]["id"].as_str() {
                mine.clients.push((id.clone(), service.to_owned()));
            }
            if let Some(code) = answer["identity_code"].as_str() {
                mine.codes.insert(id.clone(), code.to_owned());
            }
        }
        Ack::Contact { id, .. } => mine.silent.push(id.clone()),
        Ack::Informing { client, .. } => {
            mine.informed.insert(client.clone());
        }
        Ack::Consent { client, state } => {
            mine.consent.insert(client.clone(), state.clone());
        }
        Ack::Event { .. } | Ack::Vtj { .. } | Ack::Recording { .. } => {}
    }
}

/// Every request that got no answer, sent again with its key (and, for a consent change, the
/// same state): it must create once or replay.
#[allow(clippy::too_many_arguments)]
fn retry(
    http: &reqwest::blocking::Client,
    base: &str,
    tokens: &Tokens,
    rid: &str,
    unanswered: &[Request],
    owned: &mut [Owned],
    figures: &mut Figures,
    cycle: usize,
) -> (Vec<Ack>, Vec<Ack>) {
    let mut acks = Vec::new();
    let mut settled_consent = Vec::new();
    for request in unanswered.iter().filter(|r| !matches!(r.kind, Kind::Read)) {
        if let Kind::Consent {
            client,
            state,
            previous,
        } = &request.kind
        {
            if let Some(settled) =
                settle_consent(http, base, tokens, rid, client, state, previous, owned, figures, cycle)
            {
                settled_consent.push(settled);
            }
            continue;
        }
        // The killed server's claim is its own until its instance lease runs out: a retry may
        // meet 409 `idempotency-key-in-use` until then, as a client that retries would, and the
        // key is stuck only if it is still in use after that.
        let patience = std::time::Instant::now() + instance_lease() + std::time::Duration::from_secs(3);
        let answer = loop {
            let request_id = format!("crash-retry-{}", uuid::Uuid::new_v4());
            match send(http, base, tokens, request, &request_id) {
                Outcome::Answered { status: 409, body, .. }
                    if body.contains("idempotency-key-in-use") && std::time::Instant::now() < patience =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                Outcome::Answered { status, replayed, body } => break Some((status, replayed, body)),
                _ => break None,
            }
        };
        let Some((status, replayed, body)) = answer else {
            figures.unexpected += 1;
            figures.note(format!(
                "cycle {cycle}: a retry got no answer from the restarted server"
            ));
            continue;
        };
        if status == 409 && body.contains("idempotency-key-in-use") {
            figures.stuck_keys += 1;
            continue;
        }
        // Neither a VTJ batch nor an upload takes a key: the batch is the same change again
        // (applied now, or skipped as already applied), and the audio is stored once, so a
        // retry that finds it must find these bytes.
        match &request.kind {
            Kind::Vtj { client, first, surname } if status == 200 => {
                figures.retried_created += 1;
                let ack = Ack::Vtj {
                    client: client.clone(),
                    first: first.clone(),
                    surname: surname.clone(),
                };
                if let Some(mine) = owned.iter_mut().find(|o| owns(o, &ack)) {
                    mine.uncertain.remove(client);
                }
                acks.push(ack);
                continue;
            }
            Kind::Recording { contact, sha256 } if status == 409 && body.contains("/problems/conflict") => {
                let stored = get(
                    http,
                    base,
                    &tokens.integration,
                    &format!("/v1/registrars/{rid}/contacts/{contact}"),
                );
                match stored {
                    Ok(view) if view["recording"]["sha256"].as_str() == Some(sha256.as_str()) => {
                        figures.retried_replayed += 1;
                        acks.push(Ack::Recording {
                            contact: contact.clone(),
                            answer: view["recording"].clone(),
                        });
                    }
                    Ok(view) => {
                        figures.duplicates += 1;
                        figures.note(format!(
                            "cycle {cycle}: an unanswered upload's retry found other audio: {}",
                            view["recording"]
                        ));
                    }
                    Err(e) => {
                        figures.lost += 1;
                        figures.note(format!("cycle {cycle}: a contact: {e}"));
                    }
                }
                continue;
            }
            _ => {}
        }
        // The first request did its work and its server died before storing the answer: the
        // retry is told so (409 `conflict`, replayed) instead of running again. The work must be
        // there once.
        if status == 409 && replayed && body.contains("/problems/conflict") {
            figures.retried_replayed += 1;
            if let (Kind::Event { service }, Some(key)) = (&request.kind, &request.key) {
                let copies = events_with_note(http, base, tokens, rid, service, &format!("crash {key}"));
                if copies != Some(1) {
                    figures.duplicates += 1;
                    figures.note(format!(
                        "cycle {cycle}: a service event whose answer was lost is there {copies:?} times"
                    ));
                }
            }
            continue;
        }
        match accept(request, status, &body) {
            Ok(Some(ack)) => {
                if replayed {
                    figures.retried_replayed += 1;
                } else {
                    figures.retried_created += 1;
                }
                if let Some(mine) = owned.iter_mut().find(|o| owns(o, &ack)) {
                    if let Ack::Consent { client, .. } | Ack::Informing { client, .. } = &ack {
                        mine.uncertain.remove(client);
                    }
                    own(mine, &ack);
                } else if let Some(mine) = owned.first_mut() {
                    own(mine, &ack);
                }
                if let Ack::Event { service, .. } = &ack
                    && let Some(key) = &request.key
                {
                    let copies = events_with_note(http, base, tokens, rid, service, &format!("crash {key}"));
                    if copies != Some(1) {
                        figures.duplicates += 1;
                        figures.note(format!(
                            "cycle {cycle}: a retried service event is there {copies:?} times"
                        ));
                    }
                }
                acks.push(ack);
            }
            Ok(None) => {}
            Err(e) => {
                figures.duplicates += 1;
                figures.note(format!("cycle {cycle}: retry: {e}"));
            }
        }
    }
    (acks, settled_consent)
}

/// A consent change that got no answer is not sent again (a second `revoked` would be refused
/// as there is then nothing to revoke): the state after the restart must be the one before it or
/// the one it asked for, never anything else. When the change took, it is the state from then on
/// (returned, to be checked after the acknowledged ones).
#[allow(clippy::too_many_arguments)]
fn settle_consent(
    http: &reqwest::blocking::Client,
    base: &str,
    tokens: &Tokens,
    rid: &str,
    client: &str,
    state: &str,
    previous: &str,
    owned: &mut [Owned],
    figures: &mut Figures,
    cycle: usize,
) -> Option<Ack> {
    let now = get(
        http,
        base,
        &tokens.handler,
        &format!("/v1/registrars/{rid}/clients/{client}/disclosure-consent"),
    );
    let mine = owned.iter_mut().find(|o| o.clients.iter().any(|(c, _)| c == client))?;
    match now {
        Ok(view) => match view["state"].as_str() {
            Some(now) if now == state || now == previous => {
                mine.consent.insert(client.to_owned(), now.to_owned());
                mine.uncertain.remove(client);
                return Some(Ack::Consent {
                    client: client.to_owned(),
                    state: now.to_owned(),
                });
            }
            other => {
                figures.lost += 1;
                figures.note(format!(
                    "cycle {cycle}: consent is {other:?} after an unanswered change from {previous} to {state}"
                ));
            }
        },
        Err(e) => {
            figures.lost += 1;
            figures.note(format!("cycle {cycle}: consent: {e}"));
        }
    }
    None
}

fn owns(mine: &Owned, ack: &Ack) -> bool {
    match ack {
        Ack::Consent { client, .. } | Ack::Informing { client, .. } | Ack::Vtj { client, .. } => {
            mine.clients.iter().any(|(c, _)| c == client)
        }
        Ack::Event { service, .. } => mine.clients.iter().any(|(_, s)| s == service),
        Ack::Client { .. } | Ack::Contact { .. } | Ack::Recording { .. } => false,
    }
}

fn get(http: &reqwest::blocking::Client, base: &str, token: &str, path: &str) -> Result<Value, String> {
    let response = http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .header("Accept", "application/json")
        .send()
        .map_err(|e| format!("GET {}: {e}", redact(path)))?;
    let status = response.status().as_u16();
    let text = response.text().map_err(|e| format!("GET {}: {e}", redact(path)))?;
    if status != 200 {
        return Err(format!("GET {}: HTTP {status}", redact(path)));
    }
    serde_json::from_str(&text).map_err(|e| format!("GET {}: {e}", redact(path)))
}

fn events_with_note(
    http: &reqwest::blocking::Client,
    base: &str,
    tokens: &Tokens,
    rid: &str,
    service: &str,
    note: &str,
) -> Option<usize> {
    let list = get(
        http,
        base,
        &tokens.staff,
        &format!("/v1/registrars/{rid}/services/{service}/events"),
    )
    .ok()?;
    Some(
        list["items"]
            .as_array()?
            .iter()
            .filter(|e| e["note"].as_str() == Some(note))
            .count(),
    )
}

/// Every acknowledged write read back and compared with the answer that acknowledged it; a
/// client's consent is the last acknowledged change (unless a later change went unanswered).
#[allow(clippy::too_many_arguments)]
fn check_acks(
    http: &reqwest::blocking::Client,
    base: &str,
    tokens: &Tokens,
    rid: &str,
    acks: &[Ack],
    owned: &[Owned],
    figures: &mut Figures,
    cycle: usize,
) {
    let mut consent: HashMap<&str, &str> = HashMap::new();
    let mut names: HashMap<&str, (&str, &str)> = HashMap::new();
    let mut events: HashMap<&str, Option<Value>> = HashMap::new();
    let mut informings: HashMap<&str, Option<Value>> = HashMap::new();
    // A client VTJ renamed is checked for its name by the last applied change instead.
    let renamed: HashSet<&str> = owned
        .iter()
        .flat_map(|o| o.renamed.keys().map(String::as_str))
        .collect();
    let contact = |id: &str| {
        get(
            http,
            base,
            &tokens.integration,
            &format!("/v1/registrars/{rid}/contacts/{id}"),
        )
    };
    for ack in acks {
        let problem = match ack {
            Ack::Client { id, answer } => match get(
                http,
                base,
                &tokens.handler,
                &format!("/v1/registrars/{rid}/clients/{id}"),
            ) {
                Ok(now) => {
                    let ignored: &[&str] = if renamed.contains(id.as_str()) {
                        &["version", "updated_at", "first_names", "surname"]
                    } else {
                        &["version", "updated_at"]
                    };
                    differs(answer, &now, ignored).map(|d| format!("a client differs in {d}"))
                }
                Err(e) => Some(format!("a client: {e}")),
            },
            Ack::Vtj { client, first, surname } => {
                names.insert(client.as_str(), (first.as_str(), surname.as_str()));
                None
            }
            // The audio comes later and changes only `recording`.
            Ack::Contact { id, answer } => match contact(id) {
                Ok(now) => differs(answer, &now, &["recording"]).map(|d| format!("a contact differs in {d}")),
                Err(e) => Some(format!("a contact: {e}")),
            },
            Ack::Recording { contact: id, answer } => match contact(id) {
                Ok(now) => differs(answer, &now["recording"], &[]).map(|d| format!("a recording differs in {d}")),
                Err(e) => Some(format!("a contact: {e}")),
            },
            Ack::Event { service, answer } => {
                let list = events.entry(service.as_str()).or_insert_with(|| {
                    get(
                        http,
                        base,
                        &tokens.staff,
                        &format!("/v1/registrars/{rid}/services/{service}/events"),
                    )
                    .ok()
                });
                find_equal(list.as_ref(), answer, "service event")
            }
            Ack::Informing { client, answer } => {
                let list = informings.entry(client.as_str()).or_insert_with(|| {
                    get(
                        http,
                        base,
                        &tokens.handler,
                        &format!("/v1/registrars/{rid}/clients/{client}/kanta-informing"),
                    )
                    .ok()
                });
                find_equal(list.as_ref(), answer, "Kanta informing")
            }
            Ack::Consent { client, state } => {
                consent.insert(client.as_str(), state.as_str());
                None
            }
        };
        if let Some(problem) = problem {
            figures.lost += 1;
            figures.note(format!("cycle {cycle}: {problem}"));
        }
    }
    for (client, (first, surname)) in names {
        if owned.iter().any(|o| o.uncertain.contains(client)) {
            continue;
        }
        match get(
            http,
            base,
            &tokens.handler,
            &format!("/v1/registrars/{rid}/clients/{client}"),
        ) {
            Ok(now) if now["first_names"].as_str() == Some(first) && now["surname"].as_str() == Some(surname) => {}
            Ok(now) => {
                figures.lost += 1;
                figures.note(format!(
                    "cycle {cycle}: a client is named {} {} after an applied VTJ change to {first} {surname}",
                    now["first_names"], now["surname"]
                ));
            }
            Err(e) => {
                figures.lost += 1;
                figures.note(format!("cycle {cycle}: a renamed client: {e}"));
            }
        }
    }
    for (client, state) in consent {
        if owned.iter().any(|o| o.uncertain.contains(client)) {
            continue;
        }
        let now = get(
            http,
            base,
            &tokens.handler,
            &format!("/v1/registrars/{rid}/clients/{client}/disclosure-consent"),
        );
        match now {
            Ok(view) if view["state"].as_str() == Some(state) => {}
            Ok(view) => {
                figures.lost += 1;
                figures.note(format!(
                    "cycle {cycle}: consent is {} after an acknowledged {state}",
                    view["state"]
                ));
            }
            Err(e) => {
                figures.lost += 1;
                figures.note(format!("cycle {cycle}: consent: {e}"));
            }
        }
    }
}

fn find_equal(list: Option<&Value>, answer: &Value, what: &str) -> Option<String> {
    let Some(items) = list.and_then(|l| l["items"].as_array()) else {
        return Some(format!("the {what}s could not be listed"));
    };
    let id = answer["id"].as_str();
    match items.iter().find(|item| item["id"].as_str() == id) {
        None => Some(format!("an acknowledged {what} is missing")),
        Some(item) => differs(answer, item, &[]).map(|d| format!("a {what} differs in {d}")),
    }
}

/// The first top-level field (not in `ignored`) in which `before` and `now` differ.
fn differs(before: &Value, now: &Value, ignored: &[&str]) -> Option<String> {
    let (Some(a), Some(b)) = (before.as_object(), now.as_object()) else {
        return (before != now).then(|| "the whole record".to_owned());
    };
    a.keys()
        .chain(b.keys())
        .filter(|k| !ignored.contains(&k.as_str()))
        .find(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("`{k}`"))
}

/// Every read answered 200 and every acknowledged client create has a usage-log entry with its
/// request id (AU-1, AU-4), in the chain, looked up in the database itself; and once every
/// request was answered, nothing waits in the outbox (a killed server's entries were chained
/// when the new one started).
fn check_usage_log(
    url: &str,
    reads: &[String],
    creates: &[String],
    figures: &mut Figures,
    cycle: usize,
) -> Result<(), String> {
    use rekisteri_db::schema::{audit_outbox, usage_log};
    let pool = Pool::open(
        &DatabaseUrl::parse(url).map_err(|e| e.to_string())?,
        &PoolOptions::default(),
    )
    .map_err(|e| format!("opening the database: {e}"))?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let left: i64 = audit_outbox::table
        .count()
        .get_result(&mut *conn)
        .map_err(|e| format!("reading the outbox: {e}"))?;
    if left > 0 {
        figures.outbox_left += left as u64;
        figures.note(format!("cycle {cycle}: {left} log entries left in the outbox"));
    }
    let mut found: HashSet<String> = HashSet::new();
    for chunk in reads.chunks(500).chain(creates.chunks(500)) {
        let ids: Vec<String> = usage_log::table
            .filter(usage_log::request_id.eq_any(chunk))
            .select(usage_log::request_id)
            .load(&mut *conn)
            .map_err(|e| format!("reading the usage log: {e}"))?;
        found.extend(ids);
    }
    let missing = reads.iter().filter(|r| !found.contains(*r)).count() as u64;
    if missing > 0 {
        figures.reads_without_log += missing;
        figures.note(format!("cycle {cycle}: {missing} reads without their usage-log entry"));
    }
    let missing = creates.iter().filter(|r| !found.contains(*r)).count() as u64;
    if missing > 0 {
        figures.creates_without_log += missing;
        figures.note(format!(
            "cycle {cycle}: {missing} acknowledged client creates without their usage-log entry"
        ));
    }
    Ok(())
}

/// `rekisteri audit verify` must exit 0.
fn check_chains(setup: &Setup, figures: &mut Figures, cycle: usize) {
    if let Err(e) = setup.run(&["audit", "verify"]) {
        figures.chain_failures += 1;
        figures.note(format!("cycle {cycle}: {e}"));
    }
}

fn session_alive(http: &reqwest::blocking::Client, base: &str, token: &str) -> bool {
    get(http, base, token, "/v1/me").is_ok()
}

fn post_json(http: &reqwest::blocking::Client, url: &str, token: Option<&str>, body: &Value) -> Result<Value, String> {
    let mut builder = http.post(url).header("Accept", "application/json").json(body);
    if let Some(token) = token {
        builder = builder.bearer_auth(token);
    }
    let response = builder.send().map_err(|e| format!("POST {}: {e}", redact(url)))?;
    let status = response.status().as_u16();
    let text = response.text().map_err(|e| e.to_string())?;
    if !(200..300).contains(&status) {
        let text: String = text.chars().take(300).collect();
        return Err(format!("POST {}: HTTP {status}: {text}", redact(url)));
    }
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn log_in(http: &reqwest::blocking::Client, base: &str, login: &(String, String)) -> Result<String, String> {
    let answer = post_json(
        http,
        &format!("{base}/v1/auth/login"),
        None,
        &json!({"email": login.0, "password": login.1}),
    )?;
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "a log-in without a token".to_owned())
}

/// The registrar's integration (made by the platform admin, as an operator would): its client
/// system pushes clients (`clients:write`, `clients:read`), its telephony pushes contacts and
/// their audio (`calls:write`, `calls:read`) and its VTJ feed pushes change batches (`vtj:write`).
fn make_integration(http: &reqwest::blocking::Client, base: &str, demo: &Demo) -> Result<(String, String), String> {
    let admin = log_in(http, base, &demo.admin)?;
    let made = post_json(
        http,
        &format!("{base}/v1/api-clients"),
        Some(&admin),
        &json!({"name": "Asiakastietojärjestelmä", "organisation": demo.registrar,
            "scopes": ["clients:write", "clients:read", "calls:write", "calls:read", "vtj:write"]}),
    )?;
    let id = made["client"]["id"].as_str().ok_or("an API client without an id")?;
    let secret = made["client_secret"].as_str().ok_or("an API client without a secret")?;
    Ok((id.to_owned(), secret.to_owned()))
}

/// The demo registrar's recorded queue, as its main user lists it.
fn recorded_queue(http: &reqwest::blocking::Client, base: &str, demo: &Demo) -> Result<String, String> {
    let main_user = log_in(http, base, &demo.main_user)?;
    let queues = get(
        http,
        base,
        &main_user,
        &format!("/v1/registrars/{}/queues", demo.registrar),
    )?;
    queues["items"]
        .as_array()
        .and_then(|items| items.iter().find(|q| q["recorded"] == json!(true)))
        .and_then(|q| q["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| "the demo registrar has no recorded queue".to_owned())
}

fn integration_token(
    http: &reqwest::blocking::Client,
    base: &str,
    integration: &(String, String),
) -> Result<String, String> {
    let response = http
        .post(format!("{base}/v1/auth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", integration.0.as_str()),
            ("client_secret", integration.1.as_str()),
        ])
        .send()
        .map_err(|e| format!("the integration's token: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("the integration's token: HTTP {status}"));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    value["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "a token answer without access_token".to_owned())
}

/// The servers' instance lease (`REKISTERI_INSTANCE_LEASE_SECS`, which the server under test
/// inherits; 30 s by default): how long a killed server's claims stay its own.
fn instance_lease() -> std::time::Duration {
    let seconds = std::env::var("REKISTERI_INSTANCE_LEASE_SECS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(30);
    std::time::Duration::from_secs(seconds)
}
