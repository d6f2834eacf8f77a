//! PL-20: the parser fuzz targets' checks. Each function takes the fuzzer's bytes, feeds them to
//! one parser of the platform and asserts what must hold for any input: no panic; what parses
//! comes back out as it went in (and parses again to the same value); and a refusal never
//! repeats the input where it could be personal data (an identity code anywhere in the input, or
//! a JSON string value quoted back).
//!
//! The targets under `fuzz/fuzz_targets/` are one line each around these functions, and the main
//! test suite replays every committed seed of `fuzz/corpus/<target>/` through them
//! (`tests/corpora.rs`), so a seed that once crashed stays a test.

use rekisteri_api::ProblemType;
use rekisteri_api::bodies::CreateBody;
use rekisteri_core::{Oid, PersonalIdentityCode, TemporaryCodesAllowed};
use rekisteri_recordings::{AudioType, SNIFF_LEN};
use rekisteri_vtj::message as vtj;
use serde_json::Value;

/// A fuzz target's check.
pub type Check = fn(&[u8]);

/// Every target by its name under `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: &[(&str, Check)] = &[
    ("identity_code", identity_code),
    ("oid", oid),
    ("e164", e164),
    ("vtj_message", vtj_message),
    ("json_bodies", json_bodies),
    ("audio_header", audio_header),
];

/// `PersonalIdentityCode::parse` (CL-2), with and without temporary codes allowed, and its
/// `FromStr` and serde forms.
pub fn identity_code(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let permanent = PersonalIdentityCode::parse(input, TemporaryCodesAllowed::No);
    let any = PersonalIdentityCode::parse(input, TemporaryCodesAllowed::Yes);
    for (result, temporary) in [
        (&permanent, TemporaryCodesAllowed::No),
        (&any, TemporaryCodesAllowed::Yes),
    ] {
        match result {
            Ok(code) => {
                // Canonical form only: nothing is normalised, so the code is the input.
                assert_eq!(code.reveal(), input);
                assert_eq!(PersonalIdentityCode::parse(code.reveal(), temporary).as_ref(), Ok(code));
                // Display and Debug show the masked form only.
                let masked = code.masked();
                assert_eq!(masked, format!("{}****", &input[..7]));
                assert_eq!(code.to_string(), masked);
                assert!(!format!("{code:?}").contains(input));
                let born = code.birth_date();
                let written = format!(
                    "{:02}{:02}{:02}",
                    born.day(),
                    u8::from(born.month()),
                    born.year().rem_euclid(100)
                );
                assert_eq!(written, input[..6]);
                assert_eq!(code.is_temporary(), input[7..10] >= *"900");
            }
            Err(error) => assert_no_identity_code(input, &error.to_string()),
        }
    }
    // A permanent code is a code; a code that is not temporary is a permanent one; a refusal that
    // is not about the code being temporary is the same either way.
    use rekisteri_core::IdentityCodeError::TemporaryNotAllowed;
    match (&permanent, &any) {
        (Ok(p), a) => assert_eq!(Ok(p), a.as_ref()),
        (Err(e), Ok(a)) => assert!(a.is_temporary() && *e == TemporaryNotAllowed, "{e:?}"),
        (Err(p), Err(a)) => assert!(*p == TemporaryNotAllowed || p == a, "{p:?} {a:?}"),
    }
    assert_eq!(input.parse::<PersonalIdentityCode>(), permanent);
    let json = Value::String(input.to_owned()).to_string();
    match serde_json::from_str::<PersonalIdentityCode>(&json) {
        Ok(code) => assert_eq!(Ok(code), permanent),
        Err(error) => {
            assert!(permanent.is_err());
            assert_no_identity_code(input, &error.to_string());
        }
    }
}

/// `Oid::from_str` and its serde form; a valid OID's children are valid under it.
pub fn oid(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = input.parse::<Oid>();
    match &parsed {
        Ok(oid) => {
            assert_eq!(oid.as_str(), input);
            assert_eq!(oid.to_string(), input);
            assert_eq!(oid.to_string().parse::<Oid>().as_ref(), Ok(oid));
            assert!(input.len() <= 255);
            assert!(!oid.starts_with(oid));
            for arc in [0, 1, 42, u64::MAX] {
                let child = oid.child(arc);
                assert!(child.starts_with(oid));
                if child.as_str().len() <= 255 {
                    assert_eq!(child.as_str().parse::<Oid>().as_ref(), Ok(&child));
                }
            }
            let json = serde_json::to_string(oid).unwrap_or_default();
            assert_eq!(json, Value::String(input.to_owned()).to_string());
            assert_eq!(serde_json::from_str::<Oid>(&json).ok().as_ref(), Some(oid));
        }
        Err(error) => {
            assert_no_identity_code(input, &error.to_string());
            let json = Value::String(input.to_owned()).to_string();
            assert!(serde_json::from_str::<Oid>(&json).is_err());
        }
    }
}

/// The E.164 check of callers' numbers (CA) and the national-to-E.164 form a client's phone
/// number is matched by (CL-12).
pub fn e164(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match rekisteri_calls::check_e164("caller_number", input) {
        Ok(()) => {
            let digits = &input[1..];
            assert!(input.starts_with('+'));
            assert!((6..=15).contains(&digits.len()));
            assert!(digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'));
            // An E.164 number is its own E.164 form.
            assert_eq!(rekisteri_calls::as_e164(input).as_deref(), Some(input));
        }
        Err(error) => assert_eq!(
            error.to_string(),
            "caller_number: must be a phone number in E.164 form: + and 6-15 digits, e.g. +358401234567"
        ),
    }
    if let Some(number) = rekisteri_calls::as_e164(input) {
        assert!(rekisteri_calls::check_e164("phone", &number).is_ok(), "{number}");
        assert_eq!(rekisteri_calls::as_e164(&number), Some(number));
    }
}

/// DVV's change interface answers (VT-3, VT-4, VT-8): `parse_muutokset`, `parse_perustiedot`
/// and the pushed-batch check, then each person's message through what the sync does with it.
pub fn vtj_message(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let strings = json_strings(body);
    match vtj::parse_muutokset(body) {
        Ok(answer) => {
            for message in &answer.muutokset {
                person_message(message);
            }
            if let Err(error) = vtj::check_pushed_muutokset(&answer) {
                assert_no_echo(body, &strings, &error.to_string());
            }
            // What was read is written back as it was read.
            let again = serde_json::to_string(&answer).unwrap_or_default();
            let reread = vtj::parse_muutokset(&again);
            assert!(reread.is_ok(), "{reread:?}");
            // serde_json reads a float to within a unit in the last place, so a float written
            // back may read as its neighbour: only answers without floats compare exactly.
            if let Some(reread) = reread.ok().filter(|_| !answer.muutokset.iter().any(has_float)) {
                assert_eq!(reread.muutokset, answer.muutokset);
                assert_eq!(reread.viimeisin_kirjausavain, answer.viimeisin_kirjausavain);
                assert_eq!(reread.ajan_tasalla, answer.ajan_tasalla);
            }
        }
        Err(error) => assert_no_echo(body, &strings, &error.to_string()),
    }
    match vtj::parse_perustiedot(body) {
        Ok(answer) => {
            for message in &answer.perustiedot {
                person_message(message);
            }
        }
        Err(error) => assert_no_echo(body, &strings, &error.to_string()),
    }
}

fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(fields) => fields.values().any(has_float),
        _ => false,
    }
}

fn person_message(message: &Value) {
    let today = time::macros::date!(2026 - 12 - 06);
    if let Some(code) = vtj::identity_code_of(message) {
        assert_eq!(
            message.get("henkilotunnus").and_then(Value::as_str),
            Some(code.reveal())
        );
    }
    let _ = vtj::protection_in(message, today);
    let _ = vtj::interpret(message, today);
    for protected in [false, true] {
        let mut stripped = message.clone();
        vtj::strip(&mut stripped, protected);
        // Stripping is done once: a second pass finds nothing more.
        assert!(!vtj::strip(&mut stripped, protected));
        let withheld =
            |kind: &str| vtj::CONTACT_GROUPS.contains(&kind) || (protected && vtj::CENSORED_GROUPS.contains(&kind));
        for group in stripped
            .get("tietoryhmat")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let kind = group.get("tietoryhma").and_then(Value::as_str).unwrap_or_default();
            if withheld(kind) {
                assert!(group.get("poistettuTallennettaessa").is_some(), "{kind} kept");
            }
        }
        // Under a protection order no address or home municipality is stored (VT-6, CL-8).
        if protected {
            let update = vtj::interpret(&stripped, today).update;
            assert!(!matches!(update.address, Some(Some(_))), "an address under protection");
            assert!(
                !matches!(update.temporary_address, Some(Some(_))),
                "a temporary address under protection"
            );
            assert!(
                !matches!(update.postal_address, Some(Some(_))),
                "a postal address under protection"
            );
            assert!(
                !matches!(update.home_municipality, Some(Some(_))),
                "a home municipality under protection"
            );
        }
    }
}

/// The JSON bodies of the create operations (clients, consent, call records, accounts) through
/// the API's JSON extractor: a refusal is a 400 problem document that names the field and never
/// quotes the value.
pub fn json_bodies(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let strings = json_strings(&text);
    for kind in CreateBody::ALL {
        let Err(problem) = kind.parse(data) else {
            continue;
        };
        assert_eq!(problem.status, 400, "{kind:?}: {problem:?}");
        let validation = problem.problem_type == ProblemType::Validation.uri();
        let malformed = problem.problem_type == ProblemType::MalformedBody.uri();
        assert!(validation || malformed, "{kind:?}: {problem:?}");
        assert!(
            problem.detail.as_deref().is_some_and(|d| !d.is_empty()),
            "{kind:?}: {problem:?}"
        );
        if validation {
            assert!(!problem.errors.is_empty(), "{kind:?}: {problem:?}");
        }
        for error in &problem.errors {
            assert!(!error.field.is_empty(), "{kind:?}: {problem:?}");
            assert!(!error.message.is_empty(), "{kind:?}: {problem:?}");
            assert_no_echo(&text, &strings, &error.message);
            assert_no_identity_code(&text, &error.field);
            for key in &strings.keys {
                assert_no_identity_code(key, &error.field);
            }
        }
        assert_no_echo(&text, &strings, problem.detail.as_deref().unwrap_or_default());
    }
}

/// The audio type sniffed from a body's first bytes (CA-3).
pub fn audio_header(data: &[u8]) {
    let sniffed = rekisteri_recordings::sniff(data);
    // Only the first SNIFF_LEN bytes decide.
    let head = &data[..data.len().min(SNIFF_LEN)];
    assert_eq!(rekisteri_recordings::sniff(head), sniffed);
    // Once a start is recognised, more bytes do not change the verdict.
    for cut in 0..head.len() {
        if let Some(early) = rekisteri_recordings::sniff(&head[..cut]) {
            assert_eq!(sniffed, Some(early), "recognised at {cut} bytes");
        }
    }
    if let Some(kind) = sniffed {
        assert_eq!(AudioType::parse(kind.as_str()), Some(kind));
        assert_eq!(kind.to_string(), kind.as_str());
        assert!(kind.content_type().starts_with("audio/"));
        let magic: &[&[u8]] = match kind {
            AudioType::Wav => &[b"RIFF"],
            AudioType::OggOpus => &[b"OggS"],
            AudioType::Mp3 => &[b"ID3", b"\xFF"],
        };
        assert!(magic.iter().any(|m| data.starts_with(m)), "{kind:?}");
    }
}

/// Every substring of `text` shaped like a Finnish identity code (`DDMMYY`, a century sign in
/// either case, three digits, a check character).
pub fn identity_code_shapes(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let shaped = |w: &[u8]| {
        w[..6].iter().all(u8::is_ascii_digit)
            && b"+-ABCDEFUVWXYabcdefuvwxy".contains(&w[6])
            && w[7..10].iter().all(u8::is_ascii_digit)
            && w[10].is_ascii_alphanumeric()
    };
    (0..bytes.len().saturating_sub(10))
        .filter(|&i| shaped(&bytes[i..i + 11]))
        .filter_map(|i| text.get(i..i + 11))
        .collect()
}

/// No identity code of `input` is in `message`.
pub fn assert_no_identity_code(input: &str, message: &str) {
    for code in identity_code_shapes(input) {
        assert!(
            !message.contains(code),
            "the message repeats an identity code: {message}"
        );
    }
}

/// The strings of `text` when it is JSON, decoded: the keys and the values. None when it is not
/// JSON.
#[derive(Debug, Default)]
pub struct JsonStrings {
    pub keys: Vec<String>,
    pub values: Vec<String>,
}

pub fn json_strings(text: &str) -> JsonStrings {
    fn walk(value: &Value, out: &mut JsonStrings) {
        match value {
            Value::String(s) => out.values.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(fields) => {
                for (key, v) in fields {
                    out.keys.push(key.clone());
                    walk(v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = JsonStrings::default();
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        walk(&value, &mut out);
    }
    out
}

/// `message` repeats no identity code of `input` (raw, or a JSON key or value decoded) and quotes
/// none of its JSON string values back: serde's `"value"` (Rust string syntax) or `` `value` ``
/// outside the vocabulary of the type (`expected one of `a`, `b``, `missing field `name``).
/// A key may be named back (`unknown field `colour``) unless it is shaped like an identity code.
pub fn assert_no_echo(input: &str, strings: &JsonStrings, message: &str) {
    assert_no_identity_code(input, message);
    for s in strings.keys.iter().chain(&strings.values) {
        assert_no_identity_code(s, message);
    }
    // What the type says of itself, and the field names, are not the input's values: the
    // expected part, and a field named as missing, duplicate or unknown (a key, held to the
    // identity-code rule above).
    let mut own = message.rfind(", expected").map_or(message, |i| &message[..i]);
    for named in ["missing field `", "duplicate field `", "unknown field `"] {
        if let Some(i) = own.find(named) {
            own = &own[..i];
        }
    }
    for s in strings.values.iter().filter(|s| !s.is_empty()) {
        let quoted = format!("{s:?}");
        assert!(
            !message.contains(&quoted),
            "the message quotes the input {quoted}: {message}"
        );
        let ticked = format!("`{s}`");
        assert!(
            !own.contains(&ticked),
            "the message quotes the input {ticked}: {message}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_20_identity_code_shapes_are_found_anywhere() {
        assert_eq!(
            identity_code_shapes(r#"{"x":"131052-308T","y":"010594y9032"}"#),
            ["131052-308T", "010594y9032"]
        );
        assert!(identity_code_shapes("1310523308T 131052").is_empty());
    }

    #[test]
    fn pl_20_an_echo_is_told_from_the_vocabulary_of_the_type() {
        let strings = JsonStrings {
            keys: vec!["colour".to_owned()],
            values: vec!["male".to_owned()],
        };
        assert_no_echo("", &strings, "unknown value, expected one of `male`, `female`");
        assert_no_echo("", &strings, "missing field `male`");
        assert_no_echo("", &strings, "unknown field `colour`, expected `gender`");
        let echoed = std::panic::catch_unwind(|| assert_no_echo("", &strings, "unknown variant `male`"));
        assert!(echoed.is_err());
        let echoed = std::panic::catch_unwind(|| assert_no_echo("", &strings, "invalid type: string \"male\""));
        assert!(echoed.is_err());
    }
}
