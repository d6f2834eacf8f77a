//! The server under test: the release binary, started as an operator would start it, so that
//! its start-up, memory and answers are the real ones.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where one database's run keeps its files and how the binary reaches the database.
pub struct Setup {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub database_url: String,
    pub key_file: PathBuf,
    pub addr: SocketAddr,
}

/// The allocator settings `docs/operations.md` ("Memory") tells operators to set.
const ALLOCATOR_SETTINGS: [(&str, &str); 1] = [("MIMALLOC_PURGE_DELAY", "0")];

/// Settings operators may set but the documentation leaves at the allocator's default: reported
/// when the bench's environment sets them (the server inherits it).
const ALLOCATOR_DEFAULTS_KEPT: [&str; 1] = ["MALLOC_ARENA_MAX"];

/// The allocator settings the server runs with: the documented ones, unless the bench's own
/// environment sets others.
pub fn allocator_settings() -> Vec<(&'static str, String)> {
    ALLOCATOR_SETTINGS
        .iter()
        .map(|&(name, documented)| (name, std::env::var(name).unwrap_or_else(|_| documented.to_owned())))
        .chain(
            ALLOCATOR_DEFAULTS_KEPT
                .iter()
                .filter_map(|&name| std::env::var(name).ok().map(|value| (name, value))),
        )
        .collect()
}

impl Setup {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .envs(allocator_settings())
            .env("DATABASE_URL", &self.database_url)
            .env("REKISTERI_DATA_DIR", &self.dir)
            .env("REKISTERI_KEY_FILE", &self.key_file)
            .env("REKISTERI_BIND", self.addr.to_string())
            // The login flood comes from many addresses through a proxy at 127.0.0.1.
            .env("REKISTERI_TRUSTED_PROXIES", "127.0.0.1/32")
            .env_remove("REKISTERI_CONFIG")
            .env_remove("REKISTERI_KEYS");
        command
    }

    /// Runs a command of the binary to its end and returns its standard output.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let output = self
            .command(args)
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        if !output.status.success() {
            return Err(format!(
                "rekisteri {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Starts `rekisteri serve` and waits until `/health/ready` answers 200; returns the server
    /// and the time from spawn to ready.
    pub fn serve(&self) -> Result<(Server, Duration), String> {
        // Appended to, so that a restart (the cold start) keeps the log of the loaded run.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .map_err(|e| format!("server log: {e}"))?;
        let started = Instant::now();
        let child = self
            .command(&["serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let mut server = Server { child, addr: self.addr };
        loop {
            if ready(self.addr) {
                return Ok((server, started.elapsed()));
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "the server exited with {status} before it was ready; see {}",
                    self.dir.join("server.log").display()
                ));
            }
            if started.elapsed() > Duration::from_secs(120) {
                server.stop();
                return Err("the server was not ready in 120 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn ready(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let request = b"GET /health/ready HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer.starts_with(b"HTTP/1.1 200")
}

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Resident set size now, its peak, and now the part of it that is the process's own memory
    /// (`RssAnon`) rather than mapped files (the binary, SQLite's mapped database), in bytes
    /// (from `/proc`).
    pub fn memory(&self) -> Result<(u64, u64, u64), String> {
        let status = proc_status(self.pid())?;
        Ok((
            status_field(&status, "VmRSS:")?,
            status_field(&status, "VmHWM:")?,
            status_field(&status, "RssAnon:")?,
        ))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the server has used so far (user + system), from `/proc`: the cost of a phase
    /// divided by its requests is a figure that another process's load on the machine does
    /// not move much.
    pub fn cpu_seconds(&self) -> Result<f64, String> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .map_err(|e| format!("reading the server's /proc stat: {e}"))?;
        // The fields after the parenthesised command name; utime and stime are the 14th and
        // 15th of the whole line.
        let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // Clock ticks are 100 per second on Linux.
        Ok((ticks(11) + ticks(12)) / 100.0)
    }

    /// `kill -9` (SIGKILL: no shutdown code runs), then waits for the process to be gone (the
    /// crash suite, PL-17).
    pub fn kill(&mut self) -> Result<(), String> {
        self.child.kill().map_err(|e| format!("SIGKILL to the server: {e}"))?;
        self.child
            .wait()
            .map_err(|e| format!("waiting for the killed server: {e}"))?;
        Ok(())
    }

    /// Graceful stop (SIGTERM, as a service manager does), then waits.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

fn proc_status(pid: u32) -> Result<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading the server's /proc status: {e}"))
}

/// A field of `/proc/PID/status` in bytes (the kernel gives kiB).
fn status_field(status: &str, name: &str) -> Result<u64, String> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| format!("no {name} in the server's /proc status"))
}

/// The resident set size of process `pid` now, in bytes; callable from a sampling thread,
/// which cannot hold the [`Server`].
pub fn resident(pid: u32) -> Result<u64, String> {
    status_field(&proc_status(pid)?, "VmRSS:")
}

/// A free port on loopback, for the server to bind.
pub fn free_addr() -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("a free port: {e}"))?;
    listener.local_addr().map_err(|e| format!("a free port: {e}"))
}

/// Writes a new key file readable by its owner only.
pub fn write_key_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let text = rekisteri_crypto::Keyring::generate_toml().map_err(|e| format!("generating keys: {e}"))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}
