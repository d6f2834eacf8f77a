//! Call recordings (issue 19 point 8): a long recording streamed in, how much the server's
//! resident memory grows meanwhile (the audio must never be held whole), a run of short
//! uploads, and 64 KiB ranged reads on a listening grant at random offsets, as a player seeks.
//!
//! Everything goes over HTTP as the telephony system and a call supervisor would do it; the
//! recordings go to the server's default store, the local directory under its data directory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::load::{self, Plan};
use rekisteri_bench::server;

/// Bytes of one ranged read.
pub const RANGE_LEN: u64 = 64 * 1024;

/// Who logs in to set the register up: e-mail and password from `rekisteri demo seed`.
pub struct Login<'a> {
    pub email: &'a str,
    pub password: &'a str,
}

/// A registrar with a recorded queue, the telephony system that pushes its calls and a call
/// supervisor of the queue's service unit who may listen to them.
pub struct World {
    registrar: String,
    queue: String,
    telephony: String,
    supervisor: String,
}

/// One request; its answer's JSON body, if it had the expected status.
fn call(addr: SocketAddr, request: &[u8], expected: u16, what: &str) -> Result<Value, String> {
    let (status, body) = load::once(addr, request)?;
    if status != expected {
        let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(format!("{what}: HTTP {status} (expected {expected}): {text}"));
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&body).map_err(|e| format!("{what}: the answer is not JSON: {e}"))
}

fn post(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &Value,
    expected: u16,
    what: &str,
) -> Result<Value, String> {
    let request = load::render_with("POST", path, token, &[], Some(&body.to_string()));
    call(addr, &request, expected, what)
}

fn text<'a>(value: &'a Value, pointer: &str, what: &str) -> Result<&'a str, String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what}: the answer has no {pointer}"))
}

fn log_in(addr: SocketAddr, email: &str, password: &str) -> Result<String, String> {
    let what = format!("logging {email} in");
    let answer = post(
        addr,
        "/v1/auth/login",
        None,
        &json!({"email": email, "password": password}),
        200,
        &what,
    )?;
    Ok(text(&answer, "/token", &what)?.to_owned())
}

/// Percent-encoding of a form value (RFC 3986 unreserved characters pass as they are).
fn form_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sets the register up on the demo registrar: a service unit, a call supervisor in it, a
/// recorded queue on it (by the registrar's main user) and a telephony API client.
pub fn prepare(
    addr: SocketAddr,
    registrar: &str,
    registrar_oid: &str,
    admin: &Login,
    main_user: &Login,
) -> Result<World, String> {
    // Fresh sessions: the demo's own may have gone idle during a long run.
    let admin = log_in(addr, admin.email, admin.password)?;
    let main_user = log_in(addr, main_user.email, main_user.password)?;
    let unit = post(
        addr,
        &format!("/v1/organisations/{registrar}/service-units"),
        Some(&admin),
        &json!({"oid": format!("{registrar_oid}.10.9"), "name": "Puhelinpalvelu"}),
        201,
        "adding the queue's service unit",
    )?;
    let unit = text(&unit, "/id", "the service unit")?.to_owned();

    let email = "puhelinesimies@bench.demo.test";
    let password = "penkin puhelinesimiehen salasana";
    let invited = post(
        addr,
        "/v1/accounts",
        Some(&admin),
        &json!({"email": email, "first_name": "Pia", "surname": "Puhelinesimies",
            "organisation_id": registrar, "role": "call_supervisor"}),
        201,
        "inviting a call supervisor",
    )?;
    let account = text(&invited, "/account/id", "the invitation")?;
    let invitation = text(&invited, "/invitation_token", "the invitation")?;
    post(
        addr,
        "/v1/auth/invitations/accept",
        None,
        &json!({"token": invitation, "password": password}),
        200,
        "accepting the call supervisor's invitation",
    )?;
    post(
        addr,
        &format!("/v1/accounts/{account}/service-units"),
        Some(&admin),
        &json!({"service_unit_id": unit}),
        201,
        "adding the call supervisor to the service unit",
    )?;
    let supervisor = log_in(addr, email, password)?;

    let client = post(
        addr,
        "/v1/api-clients",
        Some(&admin),
        &json!({"name": "Puhelinjärjestelmä", "organisation": registrar, "scopes": ["calls:write"]}),
        201,
        "adding the telephony API client",
    )?;
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        form_value(text(&client, "/client/id", "the API client")?),
        form_value(text(&client, "/client_secret", "the API client")?)
    );
    let request = load::render_body(
        "POST",
        "/v1/auth/token",
        None,
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    );
    let issued = call(addr, &request, 200, "the telephony client's token")?;
    let telephony = text(&issued, "/access_token", "the token")?.to_owned();

    let queue = post(
        addr,
        &format!("/v1/registrars/{registrar}/queues"),
        Some(&main_user),
        &json!({"name": "Asiakaspalvelu", "service_unit_id": unit, "recorded": true,
            "recording_announcement": "Puhelu nauhoitetaan laadun varmistamiseksi."}),
        201,
        "creating a recorded queue",
    )?;
    Ok(World {
        registrar: registrar.to_owned(),
        queue: text(&queue, "/id", "the queue")?.to_owned(),
        telephony,
        supervisor,
    })
}

/// Pushes a call of the queue as the telephony system; returns the contact's id.
pub fn push_call(addr: SocketAddr, world: &World, n: usize) -> Result<String, String> {
    let started = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let started = started
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    let contact = post(
        addr,
        &format!("/v1/registrars/{}/contacts", world.registrar),
        Some(&world.telephony),
        &json!({"kind": "call", "queue_id": world.queue, "caller_number": format!("+35840{:07}", n % 10_000_000),
            "started_at": started, "wait_seconds": 30, "duration_seconds": 600}),
        201,
        "pushing a call",
    )?;
    Ok(text(&contact, "/id", "the contact")?.to_owned())
}

/// xorshift64: noise for the samples that costs next to nothing to make, so that the upload
/// measures the server rather than the generator.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buffer: &mut [u8]) {
        for word in buffer.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            word.copy_from_slice(&bytes[..word.len()]);
        }
    }
}

/// The 44-byte header of a PCM WAV file (8 kHz, 16-bit mono) of `len` bytes in all.
fn wav_header(len: u64) -> Result<Vec<u8>, String> {
    let riff = u32::try_from(len - 8).map_err(|_| "a WAV file is at most 4 GB".to_owned())?;
    Ok(rekisteri_recordings::wav_header(riff - 36))
}

/// Uploads a WAV file of `len` bytes as the contact's recording, generated as it is sent (the
/// benchmark holds 256 kiB of it at a time); returns the time from the first byte sent to the
/// server's 201.
pub fn upload(addr: SocketAddr, world: &World, contact: &str, len: u64, seed: u64) -> Result<Duration, String> {
    if len < 44 {
        return Err("a WAV file has at least its 44-byte header".to_owned());
    }
    let path = format!("/v1/registrars/{}/contacts/{contact}/recording", world.registrar);
    let head = load::head("PUT", &path, Some(&world.telephony), "audio/wav", len);
    let header = wav_header(len)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("upload runtime: {e}"))?;
    runtime.block_on(async move {
        let mut stream = load::connect(addr).await?;
        let started = Instant::now();
        let mut noise = Noise(seed | 1);
        let mut chunk = vec![0u8; 256 * 1024];
        let mut sent = 0u64;
        let mut written = stream.write_all(&head).await;
        if written.is_ok() {
            written = stream.write_all(&header).await;
            sent = header.len() as u64;
        }
        while written.is_ok() && sent < len {
            let n = usize::try_from((len - sent).min(chunk.len() as u64)).unwrap_or(chunk.len());
            noise.fill(&mut chunk[..n]);
            written = stream.write_all(&chunk[..n]).await;
            sent += n as u64;
        }
        // A server that refuses the body answers before it has all of it; its answer says why.
        let mut buffer = Vec::new();
        let answer = load::read_answer(&mut stream, &mut buffer).await;
        let elapsed = started.elapsed();
        match (answer, written) {
            (Ok((201, _)), Ok(())) => Ok(elapsed),
            (Ok((status, body)), _) => {
                let text: String = String::from_utf8_lossy(&buffer[body]).chars().take(300).collect();
                Err(format!("uploading a recording: HTTP {status}: {text}"))
            }
            (Err(e), Err(w)) => Err(format!("uploading a recording: {w}; then {e}")),
            (Err(e), Ok(())) => Err(format!("uploading a recording: {e}")),
        }
    })
}

/// Samples the resident set size of process `pid` every 20 ms until stopped; returns the
/// largest sample.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<u64, String>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = server::resident(pid)?;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
                peak = peak.max(server::resident(pid)?);
            }
            Ok(peak)
        });
        Self { stop, thread }
    }

    pub fn peak(self) -> Result<u64, String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| "the memory sampling thread panicked".to_owned())?
    }
}

/// Asks for a listening grant on the contact as the call supervisor; returns its audio URL.
pub fn grant(addr: SocketAddr, world: &World, contact: &str) -> Result<String, String> {
    let granted = post(
        addr,
        &format!(
            "/v1/registrars/{}/contacts/{contact}/listening-requests",
            world.registrar
        ),
        Some(&world.supervisor),
        &json!({"reason_category": "complaint_or_claim",
            "reason": "Asiakas on tehnyt muistutuksen puhelun sisällöstä."}),
        201,
        "a listening request",
    )?;
    Ok(text(&granted, "/audio_url", "the listening grant")?.to_owned())
}

/// `count` ranged GETs of `RANGE_LEN` bytes at random offsets inside a recording of `size`
/// bytes, cycled by the load generator.
pub fn range_requests(world: &World, audio_url: &str, size: u64, count: usize) -> Vec<Vec<u8>> {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let span = size.saturating_sub(RANGE_LEN).max(1);
    (0..count)
        .map(|_| {
            let mut word = [0u8; 8];
            noise.fill(&mut word);
            let start = u64::from_le_bytes(word) % span;
            let range = format!("bytes={start}-{}", start + RANGE_LEN - 1);
            // What a media player asks for.
            load::render_with(
                "GET",
                audio_url,
                Some(&world.supervisor),
                &[("Accept", "audio/*"), ("Range", &range)],
                None,
            )
        })
        .collect()
}

/// Runs the ranged reads and checks that every answer was a 206 of `RANGE_LEN` bytes.
pub fn ranged_reads(addr: SocketAddr, requests: Vec<Vec<u8>>, plan: Plan) -> Result<load::Outcome, String> {
    let outcome = load::run(addr, Arc::new(requests), plan, false)?;
    let other: Vec<String> = outcome
        .statuses
        .iter()
        .filter(|(status, _)| **status != 206)
        .map(|(status, count)| format!("{count} × HTTP {status}"))
        .collect();
    if !other.is_empty() || outcome.failed > 0 {
        return Err(format!(
            "ranged reads: {} ({} failed, the first: {})",
            other.join(", "),
            outcome.failed,
            outcome.first_failure.as_deref().unwrap_or("-")
        ));
    }
    if outcome.body_bytes != outcome.ok * RANGE_LEN {
        return Err(format!(
            "ranged reads: {} bytes in {} answers, not {RANGE_LEN} each",
            outcome.body_bytes, outcome.ok
        ));
    }
    Ok(outcome)
}
