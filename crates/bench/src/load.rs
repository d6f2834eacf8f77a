//! The load generator: keep-alive HTTP/1.1 connections over plain TCP on one thread, so that
//! it takes as little of the two cores from the server as possible. Closed loop (fixed
//! concurrency, as fast as the server answers) for the maximum rate; open loop (requests
//! scheduled at a fixed rate, latency counted from the scheduled moment) for latency, so that a
//! slow answer delays the requests behind it in the figures as it would for real callers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request rendered once, sent many times.
pub fn render(method: &str, path: &str, token: &str, body: Option<&str>) -> Vec<u8> {
    render_with(method, path, Some(token), &[], body)
}

/// [`render`] with or without a token, and with extra headers.
pub fn render_with(
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Vec<u8> {
    let body = body.unwrap_or("");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\n");
    // JSON unless the caller asks for something else (audio, say).
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("accept")) {
        request.push_str("Accept: application/json\r\n");
    }
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    request.into_bytes()
}

/// A request whose body is not JSON (a form, audio).
pub fn render_body(method: &str, path: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut request = head(method, path, token, content_type, body.len() as u64);
    request.extend_from_slice(body);
    request
}

/// The head of a request whose body of `length` bytes follows it.
pub fn head(method: &str, path: &str, token: Option<&str>, content_type: &str, length: u64) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ));
    head.into_bytes()
}

#[derive(Clone, Copy, Debug)]
pub enum Plan {
    /// `concurrency` connections, each sending its next request when the previous answered,
    /// until `count` requests are sent or `duration` has passed.
    Closed {
        concurrency: usize,
        count: Option<usize>,
        duration: Duration,
    },
    /// `rate` requests per second for `duration`, over up to `connections` connections.
    Open {
        rate: f64,
        connections: usize,
        duration: Duration,
    },
}

#[derive(Default)]
pub struct Outcome {
    pub ok: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    pub elapsed: Duration,
    /// (microseconds from the phase's start to the request's send, its latency in
    /// microseconds) of every answered request, in no order: the latencies' percentiles, and
    /// where in time the slow answers were.
    pub timeline: Vec<(u32, u32)>,
    /// When the phase's clock started, to match a stall with the server's log.
    pub started_at: Option<time::OffsetDateTime>,
    /// (request index, body) of the 2xx answers, when asked for.
    pub bodies: Vec<(usize, Vec<u8>)>,
    /// How many answers had each status.
    pub statuses: std::collections::BTreeMap<u16, u64>,
    /// Bytes of all the 2xx answers' bodies, so that a phase can check their length.
    pub body_bytes: u64,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile of the latencies in milliseconds.
    pub fn percentile_ms(&mut self, q: f64) -> f64 {
        if self.timeline.is_empty() {
            return f64::NAN;
        }
        self.timeline.sort_unstable_by_key(|&(_, latency)| latency);
        let rank = ((q * self.timeline.len() as f64).ceil() as usize).clamp(1, self.timeline.len());
        f64::from(self.timeline[rank - 1].1) / 1000.0
    }

    /// The answers slower than `threshold_ms`, grouped into stalls: runs of slow answers whose
    /// sending times lie within 50 ms of each other. Each is (seconds into the phase, requests,
    /// worst ms).
    pub fn stalls(&self, threshold_ms: f64) -> Vec<(f64, usize, f64)> {
        let threshold = (threshold_ms * 1000.0) as u32;
        let mut slow: Vec<(u32, u32)> = self.timeline.iter().copied().filter(|&(_, l)| l > threshold).collect();
        slow.sort_unstable();
        let mut stalls: Vec<(f64, usize, f64)> = Vec::new();
        let mut last_sent = 0u32;
        for (sent, latency) in slow {
            match stalls.last_mut() {
                Some(stall) if sent.saturating_sub(last_sent) <= 50_000 => {
                    stall.1 += 1;
                    stall.2 = stall.2.max(f64::from(latency) / 1000.0);
                }
                _ => stalls.push((f64::from(sent) / 1e6, 1, f64::from(latency) / 1000.0)),
            }
            last_sent = sent;
        }
        stalls
    }
}

/// Sends `requests` (cycled) to `addr` as `plan` says.
pub fn run(addr: SocketAddr, requests: Arc<Vec<Vec<u8>>>, plan: Plan, keep_bodies: bool) -> Result<Outcome, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("load generator runtime: {e}"))?;
    runtime.block_on(async move {
        let next = Arc::new(AtomicUsize::new(0));
        let workers = match plan {
            Plan::Closed { concurrency, .. } => concurrency,
            Plan::Open { connections, .. } => connections,
        };
        // Connected before the clock starts, as wrk2 does: otherwise the first request of each
        // of hundreds of connections waits for its handshake, and that burst alone is over 1 %
        // of an open-loop phase's answers, which is its p99.
        let mut streams = Vec::with_capacity(workers.max(1));
        for _ in 0..workers.max(1) {
            streams.push(connect(addr).await?);
        }
        let started = Instant::now();
        let started_at = time::OffsetDateTime::now_utc();
        let mut handles = Vec::new();
        for stream in streams {
            let requests = requests.clone();
            let next = next.clone();
            handles.push(tokio::spawn(worker(
                addr,
                stream,
                requests,
                next,
                plan,
                started,
                keep_bodies,
            )));
        }
        let mut total = Outcome::default();
        for handle in handles {
            let outcome = handle.await.map_err(|e| format!("load worker: {e}"))??;
            total.ok += outcome.ok;
            total.failed += outcome.failed;
            if total.first_failure.is_none() {
                total.first_failure = outcome.first_failure;
            }
            total.body_bytes += outcome.body_bytes;
            total.timeline.extend(outcome.timeline);
            total.bodies.extend(outcome.bodies);
            for (status, count) in outcome.statuses {
                *total.statuses.entry(status).or_default() += count;
            }
        }
        total.elapsed = started.elapsed();
        total.started_at = Some(started_at);
        Ok(total)
    })
}

/// One request on a connection of its own (the set-up steps): the status and the body.
pub fn once(addr: SocketAddr, request: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("request runtime: {e}"))?;
    runtime.block_on(async move {
        let mut stream = connect(addr).await?;
        let mut buffer = Vec::new();
        let (status, body) = exchange(&mut stream, request, &mut buffer).await?;
        Ok((status, buffer[body].to_vec()))
    })
}

pub async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    Ok(stream)
}

async fn worker(
    addr: SocketAddr,
    mut stream: TcpStream,
    requests: Arc<Vec<Vec<u8>>>,
    next: Arc<AtomicUsize>,
    plan: Plan,
    started: Instant,
    keep_bodies: bool,
) -> Result<Outcome, String> {
    let mut outcome = Outcome::default();
    if requests.is_empty() {
        return Ok(outcome);
    }
    let mut buffer = Vec::with_capacity(64 * 1024);
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let sent_at = match plan {
            Plan::Closed { count, duration, .. } => {
                if count.is_some_and(|count| index >= count) || started.elapsed() >= duration {
                    break;
                }
                Instant::now()
            }
            Plan::Open { rate, duration, .. } => {
                let at = started + Duration::from_secs_f64(index as f64 / rate);
                if at >= started + duration {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                at
            }
        };
        let request = &requests[index % requests.len()];
        match exchange(&mut stream, request, &mut buffer).await {
            Ok((status, body)) => {
                *outcome.statuses.entry(status).or_default() += 1;
                let latency = u32::try_from(sent_at.elapsed().as_micros()).unwrap_or(u32::MAX);
                let sent = u32::try_from(sent_at.duration_since(started).as_micros()).unwrap_or(u32::MAX);
                outcome.timeline.push((sent, latency));
                if (200..300).contains(&status) {
                    outcome.ok += 1;
                    outcome.body_bytes += body.len() as u64;
                    if keep_bodies {
                        outcome.bodies.push((index, buffer[body].to_vec()));
                    }
                } else {
                    outcome.failed += 1;
                    if outcome.first_failure.is_none() {
                        let text = String::from_utf8_lossy(&buffer[body])
                            .chars()
                            .take(300)
                            .collect::<String>();
                        outcome.first_failure = Some(format!("HTTP {status}: {text}"));
                    }
                }
            }
            Err(error) => {
                outcome.failed += 1;
                outcome.first_failure.get_or_insert(error);
                stream = connect(addr).await?;
            }
        }
    }
    Ok(outcome)
}

/// Writes one request and reads its answer into `buffer`; returns the status and the body's
/// range in the buffer.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<(u16, std::ops::Range<usize>), String> {
    stream.write_all(request).await.map_err(|e| format!("write: {e}"))?;
    read_answer(stream, buffer).await
}

/// Reads one answer into `buffer`; returns the status and the body's range in the buffer.
pub async fn read_answer(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> Result<(u16, std::ops::Range<usize>), String> {
    buffer.clear();
    let mut header_end = None;
    loop {
        if header_end.is_none() {
            header_end = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        }
        if let Some(end) = header_end {
            let head = std::str::from_utf8(&buffer[..end]).map_err(|_| "a response head is not UTF-8".to_owned())?;
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| "a response without a status".to_owned())?;
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .ok_or_else(|| format!("a response without Content-Length (HTTP {status})"))?;
            if buffer.len() >= end + length {
                return Ok((status, end..end + length));
            }
        }
        let read = stream.read_buf(buffer).await.map_err(|e| format!("read: {e}"))?;
        if read == 0 {
            return Err("the server closed the connection".to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    #[test]
    fn slow_answers_sent_within_50_ms_of_each_other_are_one_stall() {
        let outcome = Outcome {
            // (sent µs, latency µs): two slow runs 2 s apart, fast answers between and inside.
            timeline: vec![
                (1_000_000, 30_000),
                (1_040_000, 2_000),
                (1_060_000, 45_000),
                (1_000_000 + 20_000, 25_000),
                (3_000_000, 21_000),
                (2_000_000, 1_000),
            ],
            ..Outcome::default()
        };
        assert_eq!(outcome.stalls(20.0), vec![(1.0, 3, 45.0), (3.0, 1, 21.0)]);
        assert_eq!(outcome.stalls(50.0), Vec::<(f64, usize, f64)>::new());
    }

    #[test]
    fn percentiles_are_the_timelines_latencies_by_rank() {
        let mut outcome = Outcome {
            // Latencies 1..=100 ms, sent in the reverse order of their latency.
            timeline: (1..=100u32).map(|ms| (1_000_000 - ms * 1_000, ms * 1_000)).collect(),
            ..Outcome::default()
        };
        assert_eq!(outcome.percentile_ms(0.50), 50.0);
        assert_eq!(outcome.percentile_ms(0.99), 99.0);
        assert_eq!(outcome.percentile_ms(0.999), 100.0);
        // The stalls do not depend on the order the percentiles left the timeline in.
        assert_eq!(outcome.stalls(97.0), vec![(0.9, 3, 100.0)]);
        assert!(Outcome::default().percentile_ms(0.5).is_nan());
    }
}
