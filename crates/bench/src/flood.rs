//! The login flood (AC-5): connections flooding login and invitation acceptance, from many
//! client addresses behind a trusted proxy (so that the per-address throttle does not simply
//! hold them all back), while authenticated reads are measured in an open loop at a fixed
//! rate, first without the flood for comparison. The flood's answers are counted by status:
//! 401 (a password was checked), 400 (a bogus invitation token, refused before any hashing),
//! 503 (the hashing pool was full), 429 (held back).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::load::{self, Plan};

pub struct Flooded {
    pub quiet_p99_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub reads: u64,
    pub flood_answered_per_second: f64,
    pub flood_statuses: BTreeMap<u16, u64>,
}

/// Requests of the flood: a login for an unknown e-mail (which costs a password check like a
/// known one) and an invitation acceptance with a bogus token, from 4 096 addresses of the
/// benchmarking range 198.18.0.0/15, as a proxy at 127.0.0.1 forwards them.
fn flood_requests() -> Vec<Vec<u8>> {
    (0..4096_usize)
        .map(|n| {
            let address = format!("198.18.{}.{}", n / 256, n % 256);
            let headers = [("X-Forwarded-For", address.as_str())];
            if n % 2 == 0 {
                let body = serde_json::json!({"email": format!("flood{n}@example.fi"),
                    "password": "not the password of anyone"})
                .to_string();
                load::render_with("POST", "/v1/auth/login", None, &headers, Some(&body))
            } else {
                let body = serde_json::json!({"token": format!("bogus-invitation-{n}"),
                    "password": "a long enough new password"})
                .to_string();
                load::render_with("POST", "/v1/auth/invitations/accept", None, &headers, Some(&body))
            }
        })
        .collect()
}

/// Measures `reads` at `rate` per second for `duration`, first alone, then while `connections`
/// connections flood the server.
pub fn run(
    addr: SocketAddr,
    reads: Arc<Vec<Vec<u8>>>,
    rate: f64,
    read_connections: usize,
    connections: usize,
    duration: Duration,
) -> Result<Flooded, String> {
    let plan = Plan::Open {
        rate,
        connections: read_connections,
        duration,
    };
    let mut quiet = load::run(addr, reads.clone(), plan, false)?;
    if quiet.failed > 0 {
        return Err(format!(
            "reads without the flood: {} failed, the first: {}",
            quiet.failed,
            quiet.first_failure.as_deref().unwrap_or("?")
        ));
    }
    let flood_plan = Plan::Closed {
        concurrency: connections,
        count: None,
        // The flood runs from before the reads start until after they end.
        duration: duration + Duration::from_millis(1000),
    };
    let requests = Arc::new(flood_requests());
    let flood = std::thread::spawn(move || load::run(addr, requests, flood_plan, false));
    std::thread::sleep(Duration::from_millis(500));
    let flooded = load::run(addr, reads, plan, false);
    let flood = flood.join().map_err(|_| "the flood's thread panicked".to_owned())??;
    let mut flooded = flooded?;
    if flooded.failed > 0 {
        return Err(format!(
            "reads under the flood: {} failed, the first: {}",
            flooded.failed,
            flooded.first_failure.as_deref().unwrap_or("?")
        ));
    }
    let answered: u64 = flood.statuses.values().sum();
    if let Some(status) = flood.statuses.keys().find(|s| **s >= 500 && **s != 503) {
        return Err(format!(
            "the flood got HTTP {status}: {}",
            flood.first_failure.as_deref().unwrap_or("?")
        ));
    }
    Ok(Flooded {
        quiet_p99_ms: quiet.percentile_ms(0.99),
        p50_ms: flooded.percentile_ms(0.50),
        p99_ms: flooded.percentile_ms(0.99),
        reads: flooded.ok,
        flood_answered_per_second: answered as f64 / flood.elapsed.as_secs_f64().max(1e-9),
        flood_statuses: flood.statuses,
    })
}
