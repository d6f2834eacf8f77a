//! The change interface's messages with their real field names (VT-3, VT-4, VT-8), and what a
//! person's message means for the client register.
//!
//! The answers are parsed tolerantly: unknown fields are ignored and each element of
//! `tietoryhmat` stays a raw JSON value, so that a group kind this system does not know is
//! staged as it came and skipped with a reason instead of failing the answer.

use rekisteri_clients::population::PopulationUpdate;
use rekisteri_clients::{Address, DatePrecision, GuardianshipPeriod, VtjDate};
use rekisteri_core::{PersonalIdentityCode, TemporaryCodesAllowed};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::Date;

use crate::VtjError;

/// `GET /api/v1/kirjausavain/{yyyy-MM-dd}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KirjausavainResponse {
    pub viimeisin_kirjausavain: i64,
}

/// `POST /api/v1/perustiedot`: at most the configured batch of codes (≤ 1000).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerustiedotRequest {
    pub hetulista: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tietoryhmat: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerustiedotResponse {
    pub perustiedot: Vec<Value>,
    #[serde(default = "yes")]
    pub ajan_tasalla: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/v1/muutokset`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MuutoksetRequest {
    pub viimeisin_kirjausavain: i64,
    pub hetulista: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MuutoksetResponse {
    pub viimeisin_kirjausavain: i64,
    pub muutokset: Vec<Value>,
    pub ajan_tasalla: bool,
}

/// Parses a `muutokset` answer: invalid JSON or a broken schema is refused with its position
/// (line and column, and the path of the element), and nothing of it is used (VT-8).
pub fn parse_muutokset(body: &str) -> Result<MuutoksetResponse, VtjError> {
    let parsed: MuutoksetResponse = serde_json::from_str(body).map_err(|e| malformed(&e))?;
    check_muutokset(&parsed)?;
    Ok(parsed)
}

/// Where a message breaks the schema: the path of the element (`muutokset[0].henkilotunnus`)
/// and what is wrong with it, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct SchemaError {
    pub path: String,
    pub reason: &'static str,
}

impl From<SchemaError> for VtjError {
    fn from(e: SchemaError) -> Self {
        VtjError::Malformed(e.to_string())
    }
}

/// Checks every person's message of a `muutokset` answer already parsed (a pushed batch, VT-11).
pub fn check_muutokset(answer: &MuutoksetResponse) -> Result<(), SchemaError> {
    for (i, m) in answer.muutokset.iter().enumerate() {
        check_person(m, &format!("muutokset[{i}]"))?;
    }
    Ok(())
}

/// [`check_muutokset`] for a batch an integrator pushes through the API (VT-11): on top of the
/// interface's shape, every `henkilotunnus` is written as DVV writes one, without surrounding
/// whitespace and with an upper-case century sign and check character (CL-2). A code in another
/// form is a malformed request (400 naming it), not a row that fails; a code in canonical form
/// that is not valid still fails only its own row (VT-3).
pub fn check_pushed_muutokset(answer: &MuutoksetResponse) -> Result<(), SchemaError> {
    check_muutokset(answer)?;
    for (i, m) in answer.muutokset.iter().enumerate() {
        let code = m.get("henkilotunnus").and_then(Value::as_str).unwrap_or_default();
        if code.trim() != code || code.chars().any(|c| c.is_ascii_lowercase()) {
            return Err(SchemaError {
                path: format!("muutokset[{i}].henkilotunnus"),
                reason: "must be in canonical form: no surrounding whitespace, an upper-case century sign and check character",
            });
        }
    }
    Ok(())
}

/// Parses a `perustiedot` answer like [`parse_muutokset`].
pub fn parse_perustiedot(body: &str) -> Result<PerustiedotResponse, VtjError> {
    let parsed: PerustiedotResponse = serde_json::from_str(body).map_err(|e| malformed(&e))?;
    for (i, m) in parsed.perustiedot.iter().enumerate() {
        check_person(m, &format!("perustiedot[{i}]")).map_err(VtjError::from)?;
    }
    Ok(parsed)
}

fn malformed(e: &serde_json::Error) -> VtjError {
    VtjError::Malformed(format!("line {} column {}: {}", e.line(), e.column(), category(e)))
}

/// serde_json's message without the value: `invalid type: string "131052-308T", expected i64`
/// quotes what it found, which may be an identity code (PL-20), so only its kind is kept.
fn category(e: &serde_json::Error) -> String {
    let text = e.to_string();
    // Drop serde_json's own " at line L column C" suffix: the position is given once.
    let text = text.rfind(" at line ").map_or(text.as_str(), |i| &text[..i]);
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let kind_end = rest.find([' ', ',']).unwrap_or(rest.len());
            // The last one: the value quoted before it may hold ", expected" too.
            let expected = rest.rfind(", expected").map_or("", |i| &rest[i..]);
            return format!("{prefix}{}{expected}", &rest[..kind_end]);
        }
    }
    text.to_owned()
}

fn check_person(message: &Value, path: &str) -> Result<(), SchemaError> {
    let error = |path: String, reason: &'static str| Err(SchemaError { path, reason });
    let Value::Object(map) = message else {
        return error(path.to_owned(), "expected an object");
    };
    match map.get("henkilotunnus") {
        Some(Value::String(_)) => {}
        _ => return error(format!("{path}.henkilotunnus"), "expected a string"),
    }
    match map.get("tietoryhmat") {
        None | Some(Value::Array(_)) => {}
        _ => return error(format!("{path}.tietoryhmat"), "expected an array"),
    }
    if let Some(Value::Array(groups)) = map.get("tietoryhmat") {
        for (j, g) in groups.iter().enumerate() {
            match g.get("tietoryhma") {
                Some(Value::String(_)) => {}
                _ => return error(format!("{path}.tietoryhmat[{j}].tietoryhma"), "expected a string"),
            }
        }
    }
    Ok(())
}

/// The identity code a person's message is about (validated, CL-2).
pub fn identity_code_of(message: &Value) -> Option<PersonalIdentityCode> {
    let code = message.get("henkilotunnus")?.as_str()?;
    PersonalIdentityCode::parse(code, TemporaryCodesAllowed::Yes).ok()
}

/// The groups a protection order withholds (TIEDOT_SENSUROIDAAN, VT-6): purged on arrival and
/// not stored while the order is active.
pub const CENSORED_GROUPS: &[&str] = &[
    "VAKINAINEN_KOTIMAINEN_OSOITE",
    "TILAPAINEN_KOTIMAINEN_OSOITE",
    "KOTIMAINEN_POSTIOSOITE",
    "VAKINAINEN_ULKOMAINEN_OSOITE",
    "TILAPAINEN_ULKOMAINEN_OSOITE",
    "ULKOMAINEN_POSTIOSOITE",
    "KOTIKUNTA",
];

/// Contact addresses of a protected person: never stored (CL-8).
pub const CONTACT_GROUPS: &[&str] = &["KOTIMAINEN_YHTEYSOSOITE", "ULKOMAINEN_YHTEYSOSOITE"];

fn group_kind(group: &Value) -> &str {
    group.get("tietoryhma").and_then(Value::as_str).unwrap_or("")
}

/// Whether the message starts (true) or ends (false) a protection order, as of `today`.
pub fn protection_in(message: &Value, today: Date) -> Option<bool> {
    let groups = message.get("tietoryhmat")?.as_array()?;
    let mut result = None;
    for g in groups.iter().filter(|g| group_kind(g) == "TURVAKIELTO") {
        let attribute = g.get("muutosattribuutti").and_then(Value::as_str).unwrap_or("LISATTY");
        if attribute == "KORJATTAVA" || (attribute == "MUUTETTU" && g.get("loppupv").is_some()) {
            continue;
        }
        let active = g.get("turvakieltoAktiivinen").and_then(Value::as_bool).unwrap_or(true)
            && attribute != "POISTETTU"
            && date_field(g, "turvaLoppuPv").is_none_or(|end| end >= today);
        result = Some(active);
    }
    result
}

/// Removes the contact addresses always, and the censored groups when `protected` (VT-6):
/// a group is replaced by a marker naming it, so that the outcome can say what was withheld.
/// Returns whether anything was removed.
pub fn strip(message: &mut Value, protected: bool) -> bool {
    let Some(groups) = message.get_mut("tietoryhmat").and_then(Value::as_array_mut) else {
        return false;
    };
    let mut changed = false;
    for g in groups.iter_mut() {
        let kind = group_kind(g).to_owned();
        let withheld =
            CONTACT_GROUPS.contains(&kind.as_str()) || (protected && CENSORED_GROUPS.contains(&kind.as_str()));
        if withheld && g.get("poistettuTallennettaessa").is_none() {
            *g = serde_json::json!({"tietoryhma": kind, "poistettuTallennettaessa": true});
            changed = true;
        }
    }
    changed
}

/// What one person's message means for their client record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interpretation {
    pub update: PopulationUpdate,
    /// Groups used.
    pub applied: Vec<String>,
    /// Groups not used, each with its reason (VT-8).
    pub skipped: Vec<String>,
    /// `muutospv`, the date of the change (VT-4).
    pub changed_on: Option<Date>,
}

/// Reads a person's message into the client fields it sets (VT-4, the table of `vtj.md`).
pub fn interpret(message: &Value, today: Date) -> Interpretation {
    let mut out = Interpretation {
        changed_on: message
            .get("muutospv")
            .and_then(Value::as_str)
            .and_then(|s| parse_date(s.get(..10).unwrap_or(s))),
        ..Interpretation::default()
    };
    let Some(groups) = message.get("tietoryhmat").and_then(Value::as_array) else {
        return out;
    };
    let mut mother_tongue = None;
    let mut service_language = None;
    // Old values a `MUUTETTU` element ends (`loppupv`), of the groups whose end means something
    // without a new value: a temporary or postal address that ends is gone, a guardianship that
    // ends is kept with its end date (VT-4).
    let mut ended: Vec<(String, &Value)> = Vec::new();
    for g in groups {
        let kind = group_kind(g).to_owned();
        let attribute = g.get("muutosattribuutti").and_then(Value::as_str).unwrap_or("LISATTY");
        if g.get("poistettuTallennettaessa").is_some() {
            out.skipped
                .push(format!("{kind}: not stored under a protection order (CL-8)"));
            continue;
        }
        if CONTACT_GROUPS.contains(&kind.as_str()) {
            out.skipped.push(format!("{kind}: contact address not stored (CL-8)"));
            continue;
        }
        match attribute {
            "LISATTY" | "MUUTETTU" | "POISTETTU" | "KORJATTU" | "KORJATTAVA" | "LISATIETO" => {}
            other => {
                out.skipped.push(format!("{kind}: unknown attribute {other}"));
                continue;
            }
        }
        // An ended old value of a secondary address or a guardianship counts after the loop,
        // unless the message brings a new value for it.
        if attribute == "MUUTETTU" && g.get("loppupv").is_some() && ENDING_GROUPS.contains(&kind.as_str()) {
            ended.push((kind, g));
            continue;
        }
        // The value before a correction, an ended old value and additional information set
        // nothing: the corrected or new value comes in its own element.
        if attribute == "KORJATTAVA"
            || attribute == "LISATIETO"
            || (attribute == "MUUTETTU" && g.get("loppupv").is_some())
        {
            continue;
        }
        if g.get("turvakiellonAlaisetKentat").is_some() {
            out.skipped.push(format!("{kind}: withheld by a protection order"));
            continue;
        }
        let removed = attribute == "POISTETTU";
        let u = &mut out.update;
        match kind.as_str() {
            "HENKILON_NIMI" | "NIMENMUUTOS" => {
                if let Some(v) = text(g, "etunimi") {
                    u.first_names = Some(v);
                }
                if let Some(v) = text(g, "sukunimi") {
                    u.surname = Some(v);
                }
            }
            "HENKILOTUNNUS_KORJAUS" => {
                let active = g.get("voimassaolo").and_then(Value::as_str) != Some("PASSIIVI");
                let new = text(g, "aktiivinenHenkilotunnus").or_else(|| text(g, "muutettuHenkilotunnus"));
                match new.map(|c| PersonalIdentityCode::parse(&c, TemporaryCodesAllowed::Yes)) {
                    Some(Ok(code)) if active => u.new_identity_code = Some(code),
                    Some(Err(_)) => {
                        out.skipped
                            .push(format!("{kind}: the corrected identity code is invalid"));
                        continue;
                    }
                    _ => {}
                }
            }
            "KUOLINPAIVA" => {
                if removed || g.get("kuollut").and_then(Value::as_bool) == Some(false) {
                    u.died_on = Some(None);
                } else if let Some(d) = vtj_date(g, "kuolinpv") {
                    u.died_on = Some(Some(d));
                }
            }
            "AIDINKIELI" => mother_tongue = Some(if removed { None } else { text(g, "kielikoodi") }),
            "ASIOINTIKIELI" => service_language = Some(if removed { None } else { text(g, "kielikoodi") }),
            "TURVAKIELTO" => {}
            "VAKINAINEN_KOTIMAINEN_OSOITE" => {
                u.address = Some(if removed { None } else { Some(domestic_address(g)) });
            }
            "VAKINAINEN_ULKOMAINEN_OSOITE" => {
                u.address = Some(if removed { None } else { Some(foreign_address(g)) });
            }
            "TILAPAINEN_KOTIMAINEN_OSOITE" => {
                u.temporary_address = Some(if removed { None } else { Some(domestic_address(g)) });
            }
            "TILAPAINEN_ULKOMAINEN_OSOITE" => {
                u.temporary_address = Some(if removed { None } else { Some(foreign_address(g)) });
            }
            "KOTIMAINEN_POSTIOSOITE" => {
                u.postal_address = Some(if removed {
                    None
                } else {
                    Some(domestic_postal_address(g))
                });
            }
            "ULKOMAINEN_POSTIOSOITE" => {
                u.postal_address = Some(if removed { None } else { Some(foreign_address(g)) });
            }
            "KOTIKUNTA" => {
                if removed {
                    u.home_municipality = Some(None);
                } else {
                    if let Some(v) = text(g, "kuntakoodi") {
                        u.home_municipality = Some(Some(v));
                    }
                    if let Some(d) = vtj_date(g, "kuntaanMuuttopv") {
                        u.moved_in_on = Some(Some(d));
                    }
                    if let Some(d) = vtj_date(g, "kunnastaPoisMuuttopv") {
                        u.moved_out_on = Some(Some(d));
                    }
                }
            }
            "EDUNVALVONTA" => u.guardian = Some(if removed { None } else { Some(guardianship_period(g)) }),
            "EDUNVALVONTAVALTUUTUS" => {
                u.continuing_power_of_attorney = Some(if removed { None } else { Some(guardianship_period(g)) });
            }
            other => {
                out.skipped.push(format!("unknown group {other}"));
                continue;
            }
        }
        out.applied.push(kind);
    }
    // An ended value counts only where the message brings no new value for the same field.
    for (kind, g) in ended {
        let u = &mut out.update;
        let used = match kind.as_str() {
            "TILAPAINEN_KOTIMAINEN_OSOITE" | "TILAPAINEN_ULKOMAINEN_OSOITE" if u.temporary_address.is_none() => {
                u.temporary_address = Some(None);
                true
            }
            "KOTIMAINEN_POSTIOSOITE" | "ULKOMAINEN_POSTIOSOITE" if u.postal_address.is_none() => {
                u.postal_address = Some(None);
                true
            }
            "EDUNVALVONTA" if u.guardian.is_none() => {
                u.guardian = Some(Some(guardianship_period(g)));
                true
            }
            "EDUNVALVONTAVALTUUTUS" if u.continuing_power_of_attorney.is_none() => {
                u.continuing_power_of_attorney = Some(Some(guardianship_period(g)));
                true
            }
            _ => false,
        };
        if used && !out.applied.contains(&kind) {
            out.applied.push(kind);
        }
    }
    if let Some(p) = protection_in(message, today) {
        out.update.protection_order = Some(p);
    }
    // The language of dealings wins over the mother tongue when both are given.
    if let Some(lang) = service_language.or(mother_tongue) {
        out.update.language = Some(lang.map(|l| l.to_lowercase()));
    }
    out
}

fn text(g: &Value, field: &str) -> Option<String> {
    match g.get(field)? {
        Value::String(s) => Some(s.clone()),
        // Bilingual values ({"fi": .., "sv": ..}): Finnish first.
        Value::Object(map) => map
            .get("fi")
            .or_else(|| map.get("sv"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// The groups whose `MUUTETTU` element with `loppupv` and no new value means the value ended
/// (VT-4): the secondary addresses and guardianship.
const ENDING_GROUPS: &[&str] = &[
    "TILAPAINEN_KOTIMAINEN_OSOITE",
    "TILAPAINEN_ULKOMAINEN_OSOITE",
    "KOTIMAINEN_POSTIOSOITE",
    "ULKOMAINEN_POSTIOSOITE",
    "EDUNVALVONTA",
    "EDUNVALVONTAVALTUUTUS",
];

/// `{"arvo": "2024-01-31", "tarkkuus": "PAIVA"}`, or a bare date string, as a date only.
fn date_field(g: &Value, field: &str) -> Option<Date> {
    vtj_date(g, field).map(|d| d.date)
}

/// `{"arvo": "2024-01-31", "tarkkuus": "PAIVA"}`, or a bare date string, with its precision
/// (VT-4): `tarkkuus` `KUUKAUSI` is a month, `VUOSI` a year, `PAIVA` a day; without `tarkkuus`
/// the form of `arvo` says it (`2024-01`, `2024`). A month or a year is kept as its first day
/// with its precision beside it, see [`DatePrecision`], so that it comes out of the register as
/// the month or the year it was.
fn vtj_date(g: &Value, field: &str) -> Option<VtjDate> {
    let v = g.get(field)?;
    let (s, precision) = match v {
        Value::String(s) => (s.as_str(), None),
        Value::Object(map) => (map.get("arvo")?.as_str()?, map.get("tarkkuus").and_then(Value::as_str)),
        _ => return None,
    };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let month = |s: &str| {
        Date::parse(&format!("{}-01", s.get(..7)?), &format)
            .ok()
            .map(|date| VtjDate {
                date,
                precision: Some(DatePrecision::Month),
            })
    };
    let year = |s: &str| {
        Date::parse(&format!("{}-01-01", s.get(..4)?), &format)
            .ok()
            .map(|date| VtjDate {
                date,
                precision: Some(DatePrecision::Year),
            })
    };
    match precision {
        Some("KUUKAUSI") => month(s),
        Some("VUOSI") => year(s),
        _ => match s.len() {
            4 => year(s),
            7 => month(s),
            _ => Date::parse(s.get(..10).unwrap_or(s), &format).ok().map(VtjDate::day),
        },
    }
}

fn parse_date(s: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &format)
        .ok()
        .or_else(|| Date::parse(&format!("{s}-01"), &format).ok())
        .or_else(|| Date::parse(&format!("{s}-01-01"), &format).ok())
}

fn domestic_address(g: &Value) -> Address {
    let street = text(g, "katunimi");
    let number = text(g, "katunumero");
    let street_address = match (&street, &number) {
        (Some(s), Some(n)) => Some(format!("{s} {n}")),
        (Some(s), None) => Some(s.clone()),
        _ => None,
    };
    Address {
        street_address,
        street_name: street,
        apartment_letter: text(g, "huoneistokirjain"),
        apartment_number: text(g, "huoneistonumero"),
        apartment_division_letter: text(g, "jakokirjain"),
        postal_code: text(g, "postinumero"),
        post_office: text(g, "postitoimipaikka"),
        municipality: text(g, "kuntakoodi"),
        country_code: Some("FI".into()),
        ..Address::default()
    }
}

/// `KOTIMAINEN_POSTIOSOITE`: `postiosoite{fi,sv}` (a street address or a P.O. box), `postinumero`,
/// `postitoimipaikka{fi,sv}`.
fn domestic_postal_address(g: &Value) -> Address {
    Address {
        street_address: text(g, "postiosoite"),
        postal_code: text(g, "postinumero"),
        post_office: text(g, "postitoimipaikka"),
        country_code: Some("FI".into()),
        ..Address::default()
    }
}

/// `EDUNVALVONTA`, `EDUNVALVONTAVALTUUTUS`: `alkupv` and `loppupv` with their precision.
fn guardianship_period(g: &Value) -> GuardianshipPeriod {
    let starts = vtj_date(g, "alkupv");
    let ends = vtj_date(g, "loppupv");
    GuardianshipPeriod {
        starts_on: starts.map(|d| d.date),
        starts_on_precision: starts.and_then(|d| d.precision),
        ends_on: ends.map(|d| d.date),
        ends_on_precision: ends.and_then(|d| d.precision),
    }
}

fn foreign_address(g: &Value) -> Address {
    Address {
        street_address: text(g, "lahiosoite"),
        post_office: text(g, "paikkakunta"),
        country_code: text(g, "valtiokoodi"),
        ..Address::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use time::macros::date;

    #[test]
    fn vt_8_malformed_json_is_refused_with_its_position() {
        let e =
            parse_muutokset("{\"viimeisinKirjausavain\": 5,\n \"muutokset\": [ {\"henkilotunnus\": }]").unwrap_err();
        assert!(e.to_string().contains("line 2 column"), "{e}");
        let e = parse_muutokset(
            r#"{"viimeisinKirjausavain": 5, "muutokset": [{"henkilotunnus": 7}], "ajanTasalla": true}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed message: muutokset[0].henkilotunnus: expected a string"
        );
    }

    #[test]
    fn pl_20_a_malformed_answer_is_refused_without_its_values() {
        let e = parse_muutokset(
            r#"{"viimeisinKirjausavain": "131052-308T, expected 010594Y123W", "muutokset": [], "ajanTasalla": true}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed message: line 1 column 61: invalid type: string, expected i64"
        );
        let e = parse_perustiedot(r#"{"perustiedot": [], "ajanTasalla": "131052-308T"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed message: line 1 column 48: invalid type: string, expected a boolean"
        );
    }

    #[test]
    fn vt_4_names_language_and_home_municipality_map_to_client_fields() {
        let m = json!({"henkilotunnus": "010180-100X", "muutospv": "2026-11-02T08:00:00.000Z", "tietoryhmat": [
            {"tietoryhma": "HENKILON_NIMI", "muutosattribuutti": "LISATTY", "etunimi": "Liisa", "sukunimi": "Uusi"},
            {"tietoryhma": "AIDINKIELI", "kielikoodi": "fi"},
            {"tietoryhma": "ASIOINTIKIELI", "kielikoodi": "SV"},
            {"tietoryhma": "KOTIKUNTA", "kuntakoodi": "091", "kuntaanMuuttopv": {"arvo": "2026-10", "tarkkuus": "KUUKAUSI"}},
            {"tietoryhma": "UUSI_RYHMA", "x": 1}
        ]});
        let i = interpret(&m, date!(2026 - 11 - 30));
        assert_eq!(i.update.first_names.as_deref(), Some("Liisa"));
        assert_eq!(i.update.language, Some(Some("sv".into())));
        assert_eq!(i.update.home_municipality, Some(Some("091".into())));
        assert_eq!(
            i.update.moved_in_on,
            Some(Some(VtjDate {
                date: date!(2026 - 10 - 01),
                precision: Some(DatePrecision::Month)
            }))
        );
        assert_eq!(i.changed_on, Some(date!(2026 - 11 - 02)));
        assert_eq!(i.skipped, vec!["unknown group UUSI_RYHMA".to_owned()]);
    }

    #[test]
    fn vt_4_secondary_addresses_guardianship_and_partial_dates_are_kept() {
        let m = json!({"henkilotunnus": "010180-100X", "muutospv": "2026-11-02T08:00:00.000Z", "tietoryhmat": [
            {"tietoryhma": "TILAPAINEN_KOTIMAINEN_OSOITE", "katunimi": {"fi": "Mökkitie"}, "katunumero": "3",
             "postinumero": "41800", "postitoimipaikka": {"fi": "KORPILAHTI"}},
            {"tietoryhma": "KOTIMAINEN_POSTIOSOITE", "postiosoite": {"fi": "PL 12"}, "postinumero": "33101",
             "postitoimipaikka": {"fi": "TAMPERE"}},
            {"tietoryhma": "EDUNVALVONTA", "alkupv": {"arvo": "2019", "tarkkuus": "VUOSI"}},
            {"tietoryhma": "EDUNVALVONTAVALTUUTUS", "muutosattribuutti": "MUUTETTU",
             "alkupv": "2020-02-02", "loppupv": {"arvo": "2026-10", "tarkkuus": "KUUKAUSI"}},
            {"tietoryhma": "KUOLINPAIVA", "kuollut": true, "kuolinpv": {"arvo": "2026-11", "tarkkuus": "KUUKAUSI"}}
        ]});
        let i = interpret(&m, date!(2026 - 11 - 30));
        assert!(i.skipped.is_empty(), "{:?}", i.skipped);
        assert_eq!(i.applied.len(), 5, "{:?}", i.applied);
        let u = &i.update;
        assert_eq!(
            u.temporary_address,
            Some(Some(Address {
                street_address: Some("Mökkitie 3".into()),
                street_name: Some("Mökkitie".into()),
                postal_code: Some("41800".into()),
                post_office: Some("KORPILAHTI".into()),
                country_code: Some("FI".into()),
                ..Address::default()
            }))
        );
        assert_eq!(
            u.postal_address,
            Some(Some(Address {
                street_address: Some("PL 12".into()),
                postal_code: Some("33101".into()),
                post_office: Some("TAMPERE".into()),
                country_code: Some("FI".into()),
                ..Address::default()
            }))
        );
        assert_eq!(
            u.guardian,
            Some(Some(GuardianshipPeriod {
                starts_on: Some(date!(2019 - 01 - 01)),
                starts_on_precision: Some(DatePrecision::Year),
                ..GuardianshipPeriod::default()
            }))
        );
        // Ended without a new value: kept with its end.
        assert_eq!(
            u.continuing_power_of_attorney,
            Some(Some(GuardianshipPeriod {
                starts_on: Some(date!(2020 - 02 - 02)),
                starts_on_precision: None,
                ends_on: Some(date!(2026 - 10 - 01)),
                ends_on_precision: Some(DatePrecision::Month),
            }))
        );
        assert_eq!(
            u.died_on,
            Some(Some(VtjDate {
                date: date!(2026 - 11 - 01),
                precision: Some(DatePrecision::Month)
            }))
        );
        // An ended temporary address with a new one in the same message: the new one stands,
        // whichever comes first.
        let m = json!({"henkilotunnus": "010180-100X", "tietoryhmat": [
            {"tietoryhma": "TILAPAINEN_ULKOMAINEN_OSOITE", "lahiosoite": "Rue 5", "paikkakunta": "Paris", "valtiokoodi": "FR"},
            {"tietoryhma": "TILAPAINEN_KOTIMAINEN_OSOITE", "muutosattribuutti": "MUUTETTU", "katunimi": {"fi": "Vanha"},
             "loppupv": {"arvo": "2026-11-01", "tarkkuus": "PAIVA"}}
        ]});
        let u = interpret(&m, date!(2026 - 11 - 30)).update;
        assert_eq!(
            u.temporary_address.unwrap().unwrap().country_code.as_deref(),
            Some("FR")
        );
        let m = json!({"henkilotunnus": "010180-100X", "tietoryhmat": [
            {"tietoryhma": "TILAPAINEN_KOTIMAINEN_OSOITE", "muutosattribuutti": "MUUTETTU", "katunimi": {"fi": "Vanha"},
             "loppupv": {"arvo": "2026-11-01", "tarkkuus": "PAIVA"}},
            {"tietoryhma": "KOTIMAINEN_POSTIOSOITE", "muutosattribuutti": "POISTETTU"}
        ]});
        let u = interpret(&m, date!(2026 - 11 - 30)).update;
        assert_eq!((u.temporary_address, u.postal_address), (Some(None), Some(None)));
    }
}
