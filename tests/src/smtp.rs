//! A local SMTP server for tests: a listener thread that speaks enough SMTP for a real client
//! (greeting, EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT) and records
//! every message it accepted. It can refuse the first recipients with a given reply, as a relay
//! that is busy does (451).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent, lines joined with `\r\n`.
    pub data: String,
}

#[derive(Default)]
struct Shared {
    received: Vec<ReceivedMail>,
    /// How many more RCPT commands get the refusal.
    refusals_left: usize,
    refusal: String,
    refused: usize,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl SmtpSink {
    /// Starts the sink on a free port of 127.0.0.1; it runs until the test process ends.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let sink = Self { port, shared };
        let serving = sink.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let session = serving.clone();
                std::thread::spawn(move || session.serve(stream));
            }
        });
        sink
    }

    /// The next `count` recipients are refused with `reply` (e.g. `451 4.3.0 try again later`).
    pub fn refuse_next(&self, count: usize, reply: &str) {
        let mut shared = self.shared.lock().unwrap();
        shared.refusals_left = count;
        shared.refusal = reply.to_owned();
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.shared.lock().unwrap().received.clone()
    }

    /// How many recipients were refused so far.
    pub fn refused(&self) -> usize {
        self.shared.lock().unwrap().refused
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut out = stream;
        let reply = |out: &mut TcpStream, text: &str| out.write_all(format!("{text}\r\n").as_bytes()).is_ok();
        if !reply(&mut out, "220 sink.test ESMTP") {
            return;
        }
        let (mut from, mut to) = (String::new(), Vec::new());
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let upper = line.to_ascii_uppercase();
            let answer = if upper.starts_with("EHLO") {
                "250-sink.test\r\n250 8BITMIME".to_owned()
            } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
                "250 OK".to_owned()
            } else if upper.starts_with("RSET") {
                (from, to) = (String::new(), Vec::new());
                "250 OK".to_owned()
            } else if upper.starts_with("MAIL FROM:") {
                from = address(&line["MAIL FROM:".len()..]);
                to.clear();
                "250 OK".to_owned()
            } else if upper.starts_with("RCPT TO:") {
                let mut shared = self.shared.lock().unwrap();
                if shared.refusals_left > 0 {
                    shared.refusals_left -= 1;
                    shared.refused += 1;
                    shared.refusal.clone()
                } else {
                    to.push(address(&line["RCPT TO:".len()..]));
                    "250 OK".to_owned()
                }
            } else if upper == "DATA" {
                if to.is_empty() {
                    "554 no valid recipients".to_owned()
                } else {
                    if !reply(&mut out, "354 end data with <CR><LF>.<CR><LF>") {
                        return;
                    }
                    let mut data = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end_matches(['\r', '\n']);
                        if line == "." {
                            break;
                        }
                        data.push(line.strip_prefix('.').unwrap_or(line).to_owned());
                    }
                    self.shared.lock().unwrap().received.push(ReceivedMail {
                        from: std::mem::take(&mut from),
                        to: std::mem::take(&mut to),
                        data: data.join("\r\n"),
                    });
                    "250 OK queued".to_owned()
                }
            } else if upper.starts_with("QUIT") {
                let _ = reply(&mut out, "221 bye");
                return;
            } else {
                "502 command not implemented".to_owned()
            };
            if !reply(&mut out, &answer) {
                return;
            }
        }
    }
}

/// `<a@b> SIZE=…` → `a@b`.
fn address(text: &str) -> String {
    let text = text.trim();
    let inner = text
        .strip_prefix('<')
        .and_then(|rest| rest.split_once('>'))
        .map_or(text, |(inner, _)| inner);
    inner.to_owned()
}
