//! The `rekisteri` binary as the tests start it: in a directory of the test's own, with nothing
//! of the caller's environment but `PATH`, so that no setting leaks in from the shell.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

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
