//! PL-20: what the parser checks found, each fixed and held here with its exact outcome.
#![allow(clippy::unwrap_used)]

use rekisteri_api::bodies::CreateBody;

fn refusal(kind: CreateBody, body: &str) -> (String, String, String) {
    let problem = kind.parse(body.as_bytes()).unwrap_err();
    assert_eq!(problem.status, 400);
    let error = &problem.errors[0];
    (error.field.clone(), error.message.clone(), problem.detail.unwrap())
}

/// serde quotes the value before its ", expected" part; the value itself can hold ", expected"
/// and an identity code after it, which the first ", expected" kept in the message.
#[test]
fn pl_20_a_value_holding_expected_is_not_quoted_back() {
    let (field, message, detail) = refusal(CreateBody::Client, r#"{"protection_order": "x, expected 131052-308T"}"#);
    assert_eq!(field, "protection_order");
    assert_eq!(message, "invalid type: string, expected a boolean");
    assert_eq!(detail, "protection_order: invalid type: string, expected a boolean");
    let (field, message, _) = refusal(CreateBody::Consent, r#"{"state": "x, expected 131052-308T"}"#);
    assert_eq!(field, "state");
    assert_eq!(
        message,
        "unknown value, expected one of `not_given`, `positive`, `negative`, `revoked`"
    );
}

/// An unknown field is named back when it is a name, and not when it is data in the wrong place.
#[test]
fn pl_20_an_unknown_field_is_named_back_only_when_it_is_a_name() {
    let (field, message, _) = refusal(CreateBody::Consent, r#"{"state": "positive", "colour": 1}"#);
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("colour", "unknown field `colour`, expected `state`")
    );
    let (field, message, detail) = refusal(CreateBody::Consent, r#"{"state": "positive", "131052-308T": 1}"#);
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("body", "unknown field, expected `state`")
    );
    assert_eq!(detail, "body: unknown field, expected `state`");
}

/// VTJ answers (VT-8) are refused with the position and the kind of value, never the value.
#[test]
fn pl_20_a_malformed_vtj_answer_is_refused_without_its_values() {
    let body = r#"{"viimeisinKirjausavain": "131052-308T", "muutokset": [], "ajanTasalla": true}"#;
    let error = rekisteri_vtj::message::parse_muutokset(body).unwrap_err();
    assert_eq!(
        error.to_string(),
        "malformed message: line 1 column 39: invalid type: string, expected i64"
    );
    rekisteri_fuzz_checks::vtj_message(body.as_bytes());
}

/// Found by `make fuzz` (json_bodies, fuzz/corpus/json_bodies/crash-unknown-key-holding-backticks):
/// a key with backticks in it (`` col`131052-308T`en ``) looked like the name `col` followed by
/// serde's own text, so it was named back whole.
#[test]
fn pl_20_an_unknown_key_holding_backticks_is_not_named_back() {
    let (field, message, _) = refusal(CreateBody::Consent, r#"{"state": "positive", "col`131052-308T`en": 1}"#);
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("body", "unknown field, expected `state`")
    );
    let (field, message, _) = refusal(
        CreateBody::Consent,
        r#"{"state": "positive", "col`, expected `131052-308T": 1}"#,
    );
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("body", "unknown field, expected `state`")
    );
}

/// Found by `make fuzz` (json_bodies, fuzz/corpus/json_bodies/crash-unknown-key-holding-a-code):
/// a key shaped like a field name can hold an identity code (`x131052A308T`); six digits in a
/// row are no part of a field name.
#[test]
fn pl_20_an_unknown_key_holding_an_identity_code_is_not_named_back() {
    let (field, message, _) = refusal(CreateBody::Consent, r#"{"state": "positive", "x131052A308T": 1}"#);
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("body", "unknown field, expected `state`")
    );
    let (field, message, _) = refusal(CreateBody::Consent, r#"{"state": "positive", "p90_colour": 1}"#);
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("p90_colour", "unknown field `p90_colour`, expected `state`")
    );
}
