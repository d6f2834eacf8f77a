//! The HTTP ceiling of the machine (issue 22 point 1): a trivial actix-web handler (a GET
//! answering a small fixed JSON body, no database, no authentication) with as many workers as
//! the server runs by default (one per core), driven by the same load generator at the same
//! concurrency as the audited reads. What HTTP alone costs here, so that the read rates can be
//! read against it as well as against the raw database baselines.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};

use crate::load::{self, Plan};

const BODY: &str = r#"{"status":"ok","id":"5b0e6c1e-8d0a-4a63-9f7e-3c2b1a0d9e8f"}"#;

/// Serves the trivial handler in this process for the length of one closed-loop load phase;
/// returns its answers per second.
pub fn measure(concurrency: usize, duration: Duration, token: &str) -> Result<f64, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("HTTP ceiling: bind: {e}"))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| format!("HTTP ceiling: address: {e}"))?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || -> Result<(), String> {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(|| {
                App::new().route(
                    "/v1/ceiling",
                    web::get().to(|| async { HttpResponse::Ok().content_type("application/json").body(BODY) }),
                )
            })
            .workers(workers)
            .disable_signals()
            .listen(listener)
            .map_err(|e| format!("HTTP ceiling: listen: {e}"))?
            .run();
            // The receiver waits for this; if it is gone, so is the phase.
            let _ = handle_tx.send(server.handle());
            server.await.map_err(|e| format!("HTTP ceiling: serve: {e}"))
        })
    });
    let handle = handle_rx
        .recv()
        .map_err(|_| "the HTTP ceiling's server did not start".to_owned())?;
    // The same request head as an audited read's (a bearer token, Accept: JSON).
    let request = load::render("GET", "/v1/ceiling", token, None);
    let plan = Plan::Closed {
        concurrency,
        count: None,
        duration,
    };
    let outcome = load::run(addr, Arc::new(vec![request]), plan, false);
    actix_web::rt::System::new().block_on(handle.stop(false));
    thread
        .join()
        .map_err(|_| "the HTTP ceiling's server thread panicked".to_owned())??;
    let outcome = outcome?;
    if outcome.failed > 0 {
        return Err(format!(
            "HTTP ceiling: {} requests failed, the first: {}",
            outcome.failed,
            outcome.first_failure.as_deref().unwrap_or("?")
        ));
    }
    Ok(outcome.rate())
}
