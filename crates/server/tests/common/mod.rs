//! The `rekisteri` binary as the tests start it: in a directory of the test's own, with nothing
//! of the caller's environment but `PATH`, so that no setting leaks in from the shell.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const BINARY: &str = env!("CARGO_BIN_EXE_rekisteri");

/// The binary in `dir`, on the embedded default unless the caller names a database.
pub fn rekisteri(dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info");
    command
}

/// The binary in `dir` on `database_url`, with its key file `dir/keys.toml`.
pub fn rekisteri_on(dir: &Path, database_url: &str) -> Command {
    let mut command = rekisteri(dir);
    command
        .env("DATABASE_URL", database_url)
        .env("REKISTERI_KEY_FILE", dir.join("keys.toml"));
    command
}

/// The standard output of a command that must have succeeded (`what` names it if it did not).
pub fn succeeded(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A child process killed (SIGKILL) when the test ends, also when it fails.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `serve` process on a free port; terminated (SIGKILL) when dropped.
pub struct Served {
    pub child: KillOnDrop,
    pub address: String,
}

/// Starts `binary` (configured for its installation) as `serve` on a free port of loopback and
/// waits until it serves.
pub fn serve(mut binary: Command) -> Served {
    let mut child = binary
        .arg("serve")
        .env("REKISTERI_BIND", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("server exited before serving").unwrap();
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // The rest of the log is drained so that the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Served {
        child: KillOnDrop(child),
        address,
    }
}

/// The session token `rekisteri demo seed --json` printed for Demo-Tampere's user of `role`.
pub fn demo_token(demo: &serde_json::Value, role: &str) -> String {
    demo["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["role"] == role && u["organisation"] == "Demo-Tampere")
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Demo-Tampere's registrar id, from what `rekisteri demo seed` printed.
pub fn demo_registrar(printed: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.strip_prefix("Demo-Tampere "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}
