//! Request extractors whose failures are problem documents naming the field at fault.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::problem::{ApiError, FieldError, ProblemType};

/// The largest request body accepted, in bytes (`REKISTERI_MAX_BODY_BYTES`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// A JSON request body. Compared with `actix_web::web::Json` it reports the path of the field
/// that failed (`services[0].valid_from`), never echoes the offending value (it may be personal
/// data), and answers a wrong content type with 415 and an oversized body with 413.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Documents, on every operation that takes a JSON body, the 413 and 415 that [`Json`] answers
/// for it (a body over the limit, a body that is not JSON).
pub fn document(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    for item in doc.paths.paths.values_mut() {
        let operations = [&mut item.post, &mut item.put, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            let takes_json = operation
                .request_body
                .as_ref()
                .is_some_and(|body| body.content.contains_key("application/json"));
            if !takes_json {
                continue;
            }
            for (status, description) in [
                (
                    "413",
                    "The body is larger than the server accepts (`REKISTERI_MAX_BODY_BYTES`)",
                ),
                ("415", "The body is not JSON: send `Content-Type: application/json`"),
            ] {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| crate::problem::documented_problem(description));
            }
        }
    }
    doc
}

fn is_json_content_type(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::problem(
        ProblemType::PayloadTooLarge,
        format!("The body may be at most {limit} bytes."),
    )
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<BodyLimit>().map_or(DEFAULT_BODY_LIMIT, |l| l.0);
        let json = is_json_content_type(req);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::problem(
                    ProblemType::UnsupportedMediaType,
                    "Send the body as JSON with 'Content-Type: application/json'.",
                ));
            }
            if declared.is_some_and(|length| length > limit) {
                return Err(too_large(limit));
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| {
                    ApiError::problem(ProblemType::MalformedBody, "The request body could not be read.")
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(Json)
        })
    }
}

/// Parses a JSON document, mapping failures to problems: syntax errors to `malformed-body` with
/// the position, data errors to `validation` with the field path.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Every JSON body of the API is an object, but serde also fills a struct from an array of
    // its fields in order (`[null, null]`), a form the document does not have.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut deserializer);
    let value = match parsed {
        Ok(value) => value,
        // JSON Schema counts `5.0` as an integer, so the document lets callers send it; serde
        // does not. Only then is the body read a second time, with such numbers made integers.
        Err(error) if error.inner().to_string().starts_with("invalid type: floating point") => {
            return parse_json_with_integral_floats(body);
        }
        Err(error) => {
            let path = path_text(error.path());
            let inner = error.into_inner();
            return Err(json_error(&path, &inner));
        }
    };
    deserializer.end().map_err(|e| json_error(".", &e))?;
    Ok(value)
}

fn parse_json_with_integral_floats<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut document: serde_json::Value = serde_json::from_slice(body).map_err(|e| json_error(".", &e))?;
    integral_floats_to_integers(&mut document);
    serde_path_to_error::deserialize(document).map_err(|error| {
        let path = path_text(error.path());
        let inner = error.into_inner();
        json_error(&path, &inner)
    })
}

/// Writes every number with no fraction (`5.0`, `1e3`) that an `i64` holds exactly as an integer.
/// A float field still takes the integer.
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    // 2^53: beyond it an f64 no longer holds every integer, so its value is not the caller's.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        serde_json::Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
                && float.abs() <= EXACT
            {
                #[allow(clippy::cast_possible_truncation)]
                let integer = float as i64;
                *number = serde_json::Number::from(integer);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

fn json_error(path: &str, error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data => {
            let message = sanitize_message(&error.to_string());
            ApiError::Validation(vec![FieldError::new(field_path(path, &message), message)])
        }
        Category::Syntax | Category::Eof | Category::Io => ApiError::problem(
            ProblemType::MalformedBody,
            format!("Invalid JSON at line {} column {}.", error.line(), error.column()),
        ),
    }
}

/// The path of the field an error is about. Serde reports a missing field at the object that
/// lacks it (`services[0]`, or `.` for the document), so its name is appended:
/// `services[0].service_type`. Only an error about the document as a whole is `body`.
fn field_path(path: &str, message: &str) -> String {
    let at_document = path == "." || path.is_empty();
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
        .filter(|name| !name.is_empty());
    match (missing, at_document) {
        (Some(name), true) => name.to_owned(),
        (Some(name), false) => format!("{path}.{name}"),
        (None, true) => "body".to_owned(),
        (None, false) => path.to_owned(),
    }
}

/// Serde's messages quote the offending value (`invalid type: string "131052-308T", expected
/// u32`). The value may be personal data and the caller already has it, so it is cut out.
pub fn sanitize_message(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    // The expected part is the last ", expected": the value quoted before it may hold one too.
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let kind_end = rest.find([' ', ',']).unwrap_or(rest.len());
            let expected = rest.rfind(", expected").map_or("", |i| &rest[i..]);
            return format!("{prefix}{}{expected}", &rest[..kind_end]);
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let expected = rest.rfind(", expected").map_or("", |i| &rest[i..]);
        return format!("unknown value{expected}");
    }
    // An unknown field is named back only when it is a name (`colour`): a key that is not one
    // may be data sent in the wrong place, an identity code say (PL-20).
    // The key ends where serde's own last part begins: the key may hold backticks too.
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let end = ["`, expected", "`, there are no fields"]
            .iter()
            .find_map(|tail| rest.rfind(tail));
        return match end {
            Some(end) if is_field_name(&rest[..end]) => message.to_owned(),
            Some(end) => format!("unknown field{}", &rest[end + 1..]),
            None => "unknown field".to_owned(),
        };
    }
    message.to_owned()
}

/// The path of an error as serde_path_to_error writes it (`services[0].valid_from`, `.` for the
/// document), up to the first key that is not a field name: such a key (an unknown field's, or a
/// map's) may be data sent in the wrong place, an identity code say, so the error is the
/// object's that holds it (PL-20).
fn path_text(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut text = String::new();
    for segment in path {
        let part = match segment {
            Segment::Seq { index } => {
                text.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } if !is_field_name(key) => break,
            Segment::Map { key } => key.as_str(),
            Segment::Enum { variant } => variant.as_str(),
            Segment::Unknown => "?",
        };
        if !text.is_empty() {
            text.push('.');
        }
        text.push_str(part);
    }
    if text.is_empty() { ".".to_owned() } else { text }
}

/// Whether an unknown field's name is one a caller could have meant as a field: ASCII letters,
/// digits and `_`, starting with a letter or `_`, and no six digits in a row (a date of birth, the
/// start of an identity code: `x131052A308T`).
fn is_field_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes().windows(6).any(|w| w.iter().all(u8::is_ascii_digit))
}

/// Problem-document handlers for actix's own path and query extractors.
pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default().error_handler(|error, _req| {
        let message = sanitize_message(&error.to_string());
        ApiError::field("path", format!("a path parameter is malformed: {message}")).into()
    })
}

pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|error, _req| {
        let message = sanitize_message(&error.to_string());
        ApiError::field("query", message).into()
    })
}

/// A time parameter: RFC 3339 (`2026-11-25T08:00:00Z`) or a date (`2026-11-25`, midnight UTC).
pub fn parse_time(field: &'static str, value: Option<&str>) -> Result<Option<time::PrimitiveDateTime>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    let invalid = || ApiError::field(field, "must be an RFC 3339 time or a date (YYYY-MM-DD)");
    if let Ok(at) = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339) {
        return Ok(Some(rekisteri_db::to_primitive(at)));
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(value, &format).map_err(|_| invalid())?;
    Ok(Some(date.midnight()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Counts {
        seconds: i32,
        days: Option<u32>,
        quantity: f64,
    }

    #[test]
    fn pl_18_a_body_is_an_object_never_an_array_of_its_fields() {
        let error = parse_json::<Counts>(b" [5, null, 1.0]").unwrap_err();
        let ApiError::Validation(errors) = error else {
            panic!("{error:?}")
        };
        assert_eq!(
            (errors[0].field.as_str(), errors[0].message.as_str()),
            ("body", "must be a JSON object")
        );
    }

    #[test]
    fn pl_18_an_integer_written_with_a_zero_fraction_is_an_integer() {
        let parsed: Counts = parse_json(br#"{"seconds": 5.0, "days": 1e1, "quantity": 2.0}"#).unwrap();
        assert_eq!(
            parsed,
            Counts {
                seconds: 5,
                days: Some(10),
                quantity: 2.0
            }
        );
        let error = parse_json::<Counts>(br#"{"seconds": 5.5, "days": null, "quantity": 1}"#).unwrap_err();
        let ApiError::Validation(errors) = error else {
            panic!("{error:?}")
        };
        assert_eq!(errors[0].field, "seconds");
    }

    #[test]
    fn pl_3_serde_messages_lose_the_offending_value() {
        assert_eq!(
            sanitize_message("invalid type: string \"131052-308T\", expected u32 at line 1 column 20"),
            "invalid type: string, expected u32"
        );
        assert_eq!(
            sanitize_message("invalid value: integer `131052`, expected a date"),
            "invalid value: integer, expected a date"
        );
        assert_eq!(
            sanitize_message("unknown variant `Virtanen`, expected one of `male`, `female`"),
            "unknown value, expected one of `male`, `female`"
        );
        assert_eq!(sanitize_message("missing field `surname`"), "missing field `surname`");
    }

    #[test]
    fn pl_3_a_missing_field_is_named_by_its_own_path() {
        assert_eq!(field_path(".", "missing field `services`"), "services");
        assert_eq!(field_path("", "missing field `services`"), "services");
        assert_eq!(
            field_path("services[0]", "missing field `service_type`"),
            "services[0].service_type"
        );
        assert_eq!(field_path("address", "missing field `street`"), "address.street");
        assert_eq!(field_path("items[1].gender", "unknown value"), "items[1].gender");
        assert_eq!(field_path(".", "invalid type: sequence, expected struct Probe"), "body");
    }
}
