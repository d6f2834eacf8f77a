//! The process's log (issue 21): plain text for a terminal, or one JSON object per line for a log
//! collector (`REKISTERI_LOG_FORMAT=json`).
//!
//! The format is read from the environment only, because the logger starts before the
//! configuration file is read (so that a bad file can be reported). Filtering is `RUST_LOG`'s,
//! `info` by default. A JSON line has `timestamp` (RFC 3339, UTC), `level`, `target`, `message`,
//! the record's key-values (the access line's `request_id`, `method`, `route`, `status`,
//! `duration_us`; a job's `job`), and the `request_id` of the request being served when the line
//! was written inside one. No line holds personal data: the access line names the route pattern,
//! never the path, and nothing logs a request's body or credentials.

use std::io::Write;

use log::kv::{Key, Value, VisitSource};

/// Starts the process's logger in the format `REKISTERI_LOG_FORMAT` names (`text`, the
/// default, or `json`); an unknown format is reported and the text format used, because no log
/// at all would be worse.
pub fn init() {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    let format = std::env::var("REKISTERI_LOG_FORMAT").unwrap_or_default();
    match format.trim() {
        "json" => {
            builder.format(write_json_line);
        }
        "" | "text" => {
            // The text line already says what its key-values say.
            builder.format_key_values(|_, _| Ok(()));
        }
        other => {
            builder.format_key_values(|_, _| Ok(()));
            builder.init();
            log::warn!("REKISTERI_LOG_FORMAT: '{other}' is not text or json; logging text");
            return;
        }
    }
    builder.init();
}

fn write_json_line(out: &mut env_logger::fmt::Formatter, record: &log::Record<'_>) -> std::io::Result<()> {
    writeln!(out, "{}", json_line(record, time::OffsetDateTime::now_utc()))
}

/// One record as a JSON object.
fn json_line(record: &log::Record<'_>, at: time::OffsetDateTime) -> serde_json::Value {
    let mut line = serde_json::Map::new();
    let timestamp = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    line.insert("timestamp".to_owned(), timestamp.into());
    line.insert("level".to_owned(), record.level().as_str().into());
    line.insert("target".to_owned(), record.target().into());
    line.insert("message".to_owned(), record.args().to_string().into());
    let mut fields = Fields(&mut line);
    // A record whose key-values cannot be visited still logs its message.
    let _ = record.key_values().visit(&mut fields);
    if !line.contains_key("request_id")
        && let Some(id) = rekisteri_api::RequestId::current()
    {
        line.insert("request_id".to_owned(), id.0.into());
    }
    serde_json::Value::Object(line)
}

struct Fields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let value = if let Some(number) = value.to_u64() {
            serde_json::Value::from(number)
        } else if let Some(number) = value.to_i64() {
            serde_json::Value::from(number)
        } else if let Some(flag) = value.to_bool() {
            serde_json::Value::from(flag)
        } else {
            serde_json::Value::from(value.to_string())
        };
        // The fixed fields are the logger's; a record's key of the same name does not replace them.
        if !matches!(key.as_str(), "timestamp" | "level" | "target" | "message") {
            self.0.insert(key.as_str().to_owned(), value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_10_a_json_line_carries_the_fixed_fields_and_the_records_key_values() {
        let at = time::macros::datetime!(2026-12-05 16:30:00.25 UTC);
        let line = json_line(
            &log::Record::builder()
                .level(log::Level::Info)
                .target("rekisteri::access")
                .args(format_args!("r-1 GET /v1/me 200 12us"))
                .key_values(&[("request_id", "r-1"), ("route", "/v1/me")])
                .build(),
            at,
        );
        assert_eq!(
            line,
            serde_json::json!({
                "timestamp": "2026-12-05T16:30:00.25Z",
                "level": "INFO",
                "target": "rekisteri::access",
                "message": "r-1 GET /v1/me 200 12us",
                "request_id": "r-1",
                "route": "/v1/me",
            })
        );
        let numbers = json_line(
            &log::Record::builder()
                .level(log::Level::Warn)
                .target("t")
                .args(format_args!("m"))
                .key_values(&[("status", 503u64), ("level", 1u64)])
                .build(),
            at,
        );
        assert_eq!(numbers["status"], 503);
        assert_eq!(numbers["level"], "WARN", "a key-value cannot replace a fixed field");
        assert!(numbers.get("request_id").is_none(), "outside a request there is none");
    }
}
