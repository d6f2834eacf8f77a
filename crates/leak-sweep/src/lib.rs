//! The leak sweep (issue 20 point 6): with `REKISTERI_LEAK_SWEEP=<dir>`, every test database is
//! scanned when it is dropped (SQLite's file after a checkpoint; every PostgreSQL row as text),
//! and the test harness scans every log line and every problem document the API renders, for
//! identity codes in clear and for the secrets and names the tests registered. Each process
//! appends what it found to `<dir>/findings-<pid>.txt` (codes masked) and how much it scanned to
//! `<dir>/scanned-<pid>.txt`; `make leak-sweep` sums them up and fails on any finding.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The directory the sweep writes to, when it is on.
pub fn dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::var_os("REKISTERI_LEAK_SWEEP")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .inspect(|d| {
                let _ = std::fs::create_dir_all(d);
            })
    })
    .as_ref()
}

/// The shortest value worth registering: shorter ones (a four-letter first name) also occur in
/// the platform's own words.
const SHORTEST: usize = 6;

fn registered() -> &'static Mutex<HashMap<[u8; SHORTEST], Vec<String>>> {
    static SECRETS: OnceLock<Mutex<HashMap<[u8; SHORTEST], Vec<String>>>> = OnceLock::new();
    SECRETS.get_or_init(Default::default)
}

/// Registers a value that must never be found in clear: a password, a token, a name.
pub fn register(value: &str) {
    if dir().is_none() || value.len() < SHORTEST {
        return;
    }
    let Ok(prefix) = <[u8; SHORTEST]>::try_from(&value.as_bytes()[..SHORTEST]) else {
        return;
    };
    let mut secrets = registered().lock().unwrap_or_else(PoisonError::into_inner);
    let values = secrets.entry(prefix).or_default();
    if !values.iter().any(|v| v == value) {
        values.push(value.to_owned());
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Identity codes in clear: `DDMMYY`, a century sign, three digits and a check character that
/// holds, standing alone (not inside a longer run of letters and digits, such as hex).
fn identity_codes(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    if bytes.len() < 11 {
        return found;
    }
    for i in 0..=bytes.len() - 11 {
        let w = &bytes[i..i + 11];
        if !(w[..6].iter().all(u8::is_ascii_digit) && w[7..10].iter().all(u8::is_ascii_digit) && is_alnum(w[10])) {
            continue;
        }
        if i > 0 && is_alnum(bytes[i - 1]) || bytes.get(i + 11).copied().is_some_and(is_alnum) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(w) else { continue };
        if rekisteri_core::PersonalIdentityCode::parse(text, rekisteri_core::TemporaryCodesAllowed::Yes).is_ok() {
            found.push(format!("identity code {}-****", &text[..6]));
        }
    }
    found
}

fn secrets(bytes: &[u8]) -> Vec<String> {
    let secrets = registered().lock().unwrap_or_else(PoisonError::into_inner);
    let mut found = Vec::new();
    if secrets.is_empty() || bytes.len() < SHORTEST {
        return found;
    }
    for i in 0..=bytes.len() - SHORTEST {
        let Some(values) = <[u8; SHORTEST]>::try_from(&bytes[i..i + SHORTEST])
            .ok()
            .and_then(|p| secrets.get(&p))
        else {
            continue;
        };
        for value in values {
            if bytes[i..].starts_with(value.as_bytes()) {
                let shown: String = value.chars().take(3).collect();
                found.push(format!("registered value {shown}… ({} bytes)", value.len()));
            }
        }
    }
    found
}

fn append(name: &str, line: &str) {
    let Some(dir) = dir() else { return };
    let path = dir.join(format!("{name}-{}.txt", std::process::id()));
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(file, "{line}");
    }
}

/// Scans `bytes` from `source` (a log line, a problem document, a database file) and records
/// what it finds; a no-op unless the sweep is on.
pub fn scan(source: &str, bytes: &[u8]) {
    if dir().is_none() {
        return;
    }
    let findings: Vec<String> = identity_codes(bytes).into_iter().chain(secrets(bytes)).collect();
    for finding in &findings {
        append("findings", &format!("{source}: {finding}"));
    }
    let mut scanned = SCANNED.lock().unwrap_or_else(PoisonError::into_inner);
    scanned.0 += 1;
    scanned.1 += bytes.len() as u64;
    // Written now and then and at every test database's end, not on every log line.
    if scanned.0 % 1000 == 1 {
        write_count(*scanned);
    }
}

static SCANNED: Mutex<(u64, u64)> = Mutex::new((0, 0));

fn write_count((items, bytes): (u64, u64)) {
    if let Some(dir) = dir() {
        let _ = std::fs::write(
            dir.join(format!("scanned-{}.txt", std::process::id())),
            format!("{items} {bytes}\n"),
        );
    }
}

/// Writes how much this process has scanned (a test database calls it when it is dropped).
pub fn flush() {
    if dir().is_some() {
        write_count(*SCANNED.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_codes_are_found_alone_but_not_inside_hex() {
        assert_eq!(identity_codes(b"who: 131052-308T."), vec!["identity code 131052-****"]);
        assert_eq!(identity_codes(b"\"010105A123P\""), vec!["identity code 010105-****"]);
        assert!(identity_codes(b"A1B010105A123PF").is_empty());
        assert!(identity_codes(b"131052-308X").is_empty(), "a wrong check character");
    }
}
