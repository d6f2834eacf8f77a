//! A simulator of DVV's change interface (VT-12): the three calls with the real JSON, paging
//! with `ajanTasalla: false`, protection-order censoring, identity-code corrections (as data),
//! unknown codes silently absent, and 429 on demand. `rekisteri vtj simulate` runs it; tests
//! start it in-process on `127.0.0.1:0`.
//!
//! The data file:
//! ```json
//! {"kirjausavain": 100, "pageSize": 50, "throttle": 0,
//!  "people": [{"henkilotunnus": "…", "tietoryhmat": [...]}],
//!  "changes": [{"kirjausavain": 101, "henkilotunnus": "…", "muutospv": "…", "tietoryhmat": [...]}]}
//! ```

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::message::CENSORED_GROUPS;

/// What the simulator serves.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulatorData {
    /// The cursor before the first change.
    #[serde(default)]
    pub kirjausavain: i64,
    /// Changes per `muutokset` page.
    #[serde(default = "default_page")]
    pub page_size: usize,
    /// The next this many calls answer 429.
    #[serde(default)]
    pub throttle: u32,
    #[serde(default)]
    pub people: Vec<Value>,
    /// Each change carries its own `kirjausavain`, ascending.
    #[serde(default)]
    pub changes: Vec<Value>,
}

fn default_page() -> usize {
    100
}

#[derive(Debug, Default)]
struct State {
    /// The data file's `kirjausavain`: what `kirjausavain/{date}` answers, so that a first run
    /// fetches every change of the file after its initial load.
    start: i64,
    kirjausavain: i64,
    page_size: usize,
    throttle: u32,
    people: BTreeMap<String, Value>,
    changes: Vec<(i64, Value)>,
    calls: Vec<Call>,
}

/// A call the simulator answered: what a test may check about the client's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub kind: String,
    pub status: u16,
    pub codes: usize,
    pub xroad_client: Option<String>,
    pub authenticated: bool,
}

/// A running simulator; stopped when dropped.
pub struct Simulator {
    pub url: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Simulator {
    /// Starts serving `data` on `bind` (`127.0.0.1:0` for a free port).
    pub fn start(bind: &str, data: SimulatorData) -> std::io::Result<Self> {
        let mut state = State {
            start: data.kirjausavain,
            kirjausavain: data.kirjausavain,
            page_size: data.page_size.max(1),
            throttle: data.throttle,
            ..State::default()
        };
        for p in data.people {
            if let Some(code) = p.get("henkilotunnus").and_then(Value::as_str) {
                state.people.insert(code.to_owned(), p.clone());
            }
        }
        let state = Arc::new(Mutex::new(state));
        for c in data.changes {
            add_change(&state, c);
        }
        let listener = TcpListener::bind(bind)?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = web::Data::new(state.clone());
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("vtj-simulator".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(shared.clone())
                            .app_data(web::JsonConfig::default().limit(64 * 1024 * 1024))
                            .route("/api/v1/kirjausavain/{date}", web::get().to(kirjausavain))
                            .route("/api/v1/perustiedot", web::post().to(perustiedot))
                            .route("/api/v1/muutokset", web::post().to(muutokset))
                    })
                    .workers(1)
                    .disable_signals()
                    .listen(listener);
                    match server {
                        Ok(server) => {
                            let server = server.run();
                            let _ = sender.send(Ok(server.handle()));
                            let _ = server.await;
                        }
                        Err(e) => {
                            let _ = sender.send(Err(e));
                        }
                    }
                });
            })?;
        let handle = receiver
            .recv()
            .map_err(|_| std::io::Error::other("the simulator did not start"))??;
        Ok(Self {
            url,
            state,
            handle,
            thread: Some(thread),
        })
    }

    /// Adds a change at the next cursor position (its own `kirjausavain`, when it has one).
    pub fn push_change(&self, change: Value) {
        add_change(&self.state, change);
    }

    /// Replaces (or adds) a person's base data.
    pub fn set_person(&self, person: Value) {
        if let (Some(code), Ok(mut state)) = (
            person.get("henkilotunnus").and_then(Value::as_str).map(str::to_owned),
            self.state.lock(),
        ) {
            state.people.insert(code, person);
        }
    }

    /// The next `n` calls answer 429.
    pub fn throttle(&self, n: u32) {
        if let Ok(mut state) = self.state.lock() {
            state.throttle = n;
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().map(|s| s.calls.clone()).unwrap_or_default()
    }

    pub fn set_page_size(&self, n: usize) {
        if let Ok(mut state) = self.state.lock() {
            state.page_size = n.max(1);
        }
    }

    /// Serves until the process ends (the CLI).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let stop = self.handle.stop(false);
        actix_web::rt::System::new().block_on(stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn add_change(state: &Arc<Mutex<State>>, mut change: Value) {
    let Ok(mut state) = state.lock() else { return };
    let key = change
        .get("kirjausavain")
        .and_then(Value::as_i64)
        .unwrap_or(state.kirjausavain + 1)
        .max(state.kirjausavain + 1);
    if let Value::Object(map) = &mut change {
        map.remove("kirjausavain");
    }
    state.kirjausavain = key;
    state.changes.push((key, change));
}

type Shared = web::Data<Arc<Mutex<State>>>;

/// Records the call and answers 429 while throttled.
fn admit(state: &mut State, request: &HttpRequest, kind: &str, codes: usize) -> Option<HttpResponse> {
    let headers = request.headers();
    let authenticated = headers.contains_key("authorization") || headers.contains_key("mutp-tunnus");
    let xroad_client = headers
        .get("x-road-client")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let throttled = state.throttle > 0;
    let status = if !authenticated {
        401
    } else if throttled {
        429
    } else {
        200
    };
    state.calls.push(Call {
        kind: kind.to_owned(),
        status,
        codes,
        xroad_client,
        authenticated,
    });
    match status {
        401 => Some(HttpResponse::Unauthorized().finish()),
        429 => {
            state.throttle -= 1;
            Some(
                HttpResponse::TooManyRequests()
                    .insert_header(("Retry-After", "0"))
                    .finish(),
            )
        }
        _ => None,
    }
}

async fn kirjausavain(state: Shared, request: HttpRequest) -> HttpResponse {
    let Ok(mut state) = state.lock() else {
        return HttpResponse::InternalServerError().finish();
    };
    if let Some(refused) = admit(&mut state, &request, "kirjausavain", 0) {
        return refused;
    }
    HttpResponse::Ok().json(json!({"viimeisinKirjausavain": state.start}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodesBody {
    hetulista: Vec<String>,
    #[serde(default)]
    viimeisin_kirjausavain: Option<i64>,
}

fn is_protected(person: Option<&Value>) -> bool {
    person
        .and_then(|p| p.get("tietoryhmat"))
        .and_then(Value::as_array)
        .is_some_and(|groups| {
            groups.iter().any(|g| {
                g.get("tietoryhma").and_then(Value::as_str) == Some("TURVAKIELTO")
                    && g.get("turvakieltoAktiivinen").and_then(Value::as_bool) == Some(true)
            })
        })
}

/// A protected person's address groups come without their values, listing what was withheld.
fn censor(mut message: Value) -> Value {
    if let Some(groups) = message.get_mut("tietoryhmat").and_then(Value::as_array_mut) {
        for g in groups.iter_mut() {
            let kind = g.get("tietoryhma").and_then(Value::as_str).unwrap_or("").to_owned();
            if CENSORED_GROUPS.contains(&kind.as_str()) {
                let (mut kept, mut withheld) = (serde_json::Map::new(), Vec::new());
                if let Value::Object(map) = g {
                    for (k, v) in map.iter() {
                        if matches!(k.as_str(), "tietoryhma" | "muutosattribuutti") {
                            kept.insert(k.clone(), v.clone());
                        } else {
                            withheld.push(Value::String(k.clone()));
                        }
                    }
                }
                kept.insert("turvakiellonAlaisetKentat".into(), Value::Array(withheld));
                *g = Value::Object(kept);
            }
        }
    }
    message
}

async fn perustiedot(state: Shared, request: HttpRequest, body: web::Json<CodesBody>) -> HttpResponse {
    let Ok(mut state) = state.lock() else {
        return HttpResponse::InternalServerError().finish();
    };
    if let Some(refused) = admit(&mut state, &request, "perustiedot", body.hetulista.len()) {
        return refused;
    }
    if body.hetulista.len() > 1000 {
        return HttpResponse::BadRequest().json(json!({"virhe": "hetulista: enintään 1000"}));
    }
    let found: Vec<Value> = body
        .hetulista
        .iter()
        .filter_map(|code| state.people.get(code))
        .map(|p| {
            if is_protected(Some(p)) {
                censor(p.clone())
            } else {
                p.clone()
            }
        })
        .collect();
    HttpResponse::Ok().json(json!({"perustiedot": found, "ajanTasalla": true}))
}

async fn muutokset(state: Shared, request: HttpRequest, body: web::Json<CodesBody>) -> HttpResponse {
    let Ok(mut state) = state.lock() else {
        return HttpResponse::InternalServerError().finish();
    };
    if let Some(refused) = admit(&mut state, &request, "muutokset", body.hetulista.len()) {
        return refused;
    }
    let from = body.viimeisin_kirjausavain.unwrap_or(0);
    let wanted: std::collections::HashSet<&str> = body.hetulista.iter().map(String::as_str).collect();
    let mut page = Vec::new();
    let mut last = from;
    let mut more = false;
    for (key, change) in state.changes.iter().filter(|(k, _)| *k > from) {
        if page.len() == state.page_size {
            more = true;
            break;
        }
        last = *key;
        let code = change.get("henkilotunnus").and_then(Value::as_str).unwrap_or("");
        if wanted.contains(code) {
            let protected = is_protected(state.people.get(code));
            page.push(if protected {
                censor(change.clone())
            } else {
                change.clone()
            });
        }
    }
    if !more {
        last = last.max(state.kirjausavain);
    }
    HttpResponse::Ok().json(json!({"viimeisinKirjausavain": last, "muutokset": page, "ajanTasalla": !more}))
}
