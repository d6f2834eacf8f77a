//! Settlement (tilitysaineisto, CL-6): what a provider is owed for a month, from the service
//! events recorded in it. Integer cents throughout; each event's amount is its quantity (in
//! hundredths) times its unit price, rounded half up to the cent, and the lines and the total
//! are sums of those.

use diesel::prelude::*;
use rekisteri_accounts::Permission;
use rekisteri_audit::{DataUse, Outcome};
use rekisteri_core::Refusal;
use rekisteri_db::DbConnection;
use rekisteri_db::schema::{clients, service_events, services};
use serde::Serialize;
use time::{Date, Month};
use utoipa::ToSchema;

use crate::access::{Reach, decide_for};
use crate::sealed::RowCipher;
use crate::{ClientRegister, ClientsError, Quantity, Request, ServiceKind, Unit, at_primitive, rule, validation};

#[derive(Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SettlementLine {
    pub client_id: String,
    /// Surname and first names.
    pub client_name: String,
    pub service_id: String,
    pub service_type: String,
    pub kind: ServiceKind,
    pub unit: Unit,
    /// Delivered in the month.
    pub quantity: Quantity,
    pub amount_cents: i64,
}

rekisteri_core::redacted_debug!(SettlementLine { client_id, kind });

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Settlement {
    pub registrar_id: String,
    pub provider_id: String,
    #[schema(example = "2026-10")]
    pub month: String,
    pub lines: Vec<SettlementLine>,
    pub total_amount_cents: i64,
    #[schema(example = "EUR")]
    pub currency: String,
}

/// The amount of `quantity_centi` hundredths of a unit at `unit_price_cents`, rounded half up.
pub fn amount_cents(quantity_centi: i64, unit_price_cents: i64) -> i64 {
    (i128::from(quantity_centi) * i128::from(unit_price_cents) + 50)
        .div_euclid(100)
        .try_into()
        .unwrap_or(i64::MAX)
}

/// Parses `YYYY-MM` into the month's first and last day.
pub fn month_bounds(month: &str) -> Result<(Date, Date), ClientsError> {
    let invalid = || validation("month", "must be YYYY-MM");
    let (year, number) = month.split_once('-').ok_or_else(invalid)?;
    if year.len() != 4 || number.len() != 2 {
        return Err(invalid());
    }
    let year: i32 = year.parse().map_err(|_| invalid())?;
    let number: u8 = number.parse().map_err(|_| invalid())?;
    let month = Month::try_from(number).map_err(|_| invalid())?;
    let first = Date::from_calendar_date(year, month, 1).map_err(|_| invalid())?;
    let last = Date::from_calendar_date(year, month, month.length(year)).map_err(|_| invalid())?;
    Ok((first, last))
}

type LineKey = (String, String);
/// A client's id, subject index and sealed names.
type NameRow = (String, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

/// The settlement of `provider_key` (an id or OID) for `month` in the registrar's register:
/// the registrar's staff within their service areas, or the provider itself.
pub fn settlement(
    conn: &mut DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    provider_key: &str,
    month: &str,
) -> Result<Settlement, ClientsError> {
    let at = at_primitive(request.now);
    let decision = decide_for(conn, request, registrar_id, Permission::ReadSettlements)?;
    let (first, last) = month_bounds(month)?;
    let Some(provider_id) = rekisteri_accounts::directory::provider_by_id_or_oid(conn, provider_key)? else {
        return Err(rule("provider", "is not a provider organisation"));
    };
    let mut query = services::table
        .filter(services::registrar_id.eq(registrar_id))
        .filter(services::provider_id.eq(&provider_id))
        .select((
            services::id,
            services::client_id,
            services::service_type,
            services::kind,
            services::unit,
        ))
        .order((services::client_id, services::id))
        .into_boxed();
    match &decision.reach {
        Reach::Registrar { service_types: None } => {}
        Reach::Registrar {
            service_types: Some(types),
        } => query = query.filter(services::service_type.eq_any(types.clone())),
        Reach::Provider { provider_id: own } if *own == provider_id => {}
        Reach::Provider { .. } | Reach::Nothing => return Err(ClientsError::Refused(Refusal::NotFound)),
    }
    let service_rows: Vec<(String, String, String, String, String)> = query.load(conn)?;
    let service_ids: Vec<String> = service_rows.iter().map(|s| s.0.clone()).collect();
    let events: Vec<(String, i64, i64)> = service_events::table
        .filter(service_events::registrar_id.eq(registrar_id))
        .filter(service_events::service_id.eq_any(&service_ids))
        .filter(service_events::delivered_on.ge(first))
        .filter(service_events::delivered_on.le(last))
        .select((
            service_events::service_id,
            service_events::quantity_centi,
            service_events::unit_price_cents,
        ))
        .load(conn)?;
    let mut totals: std::collections::BTreeMap<LineKey, (i64, i64)> = std::collections::BTreeMap::new();
    let client_of: std::collections::HashMap<&str, &str> =
        service_rows.iter().map(|s| (s.0.as_str(), s.1.as_str())).collect();
    for (service_id, quantity, price) in &events {
        let client = client_of.get(service_id.as_str()).copied().unwrap_or_default();
        let entry = totals.entry((client.to_owned(), service_id.clone())).or_insert((0, 0));
        entry.0 += quantity;
        entry.1 += amount_cents(*quantity, *price);
    }
    let client_ids: Vec<String> = totals.keys().map(|(c, _)| c.clone()).collect();
    let client_rows: Vec<NameRow> = clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::id.eq_any(&client_ids))
        .select((
            clients::id,
            clients::subject_index,
            clients::first_names,
            clients::surname,
        ))
        .load(conn)?;
    let context = decision.context(&request.audit);
    register.audit.read_personal_data(conn, &context, at, |_| {
        let mut names = std::collections::HashMap::new();
        let mut uses = Vec::new();
        for (id, subject, first_names, surname) in &client_rows {
            let cipher = RowCipher::new(&register.keyring, "clients", id);
            let first = cipher
                .open_opt("first_names", first_names.as_deref())?
                .unwrap_or_default();
            let last = cipher.open_opt("surname", surname.as_deref())?.unwrap_or_default();
            names.insert(id.clone(), format!("{last} {first}").trim().to_owned());
            uses.push(DataUse {
                subject_index: subject.as_deref().and_then(|s| s.try_into().ok()),
                data_kind: "settlement".into(),
                data_id: Some(id.clone()),
                outcome: Outcome::Used,
            });
        }
        let mut lines = Vec::with_capacity(totals.len());
        for ((client_id, service_id), (quantity, amount)) in &totals {
            let Some(service) = service_rows.iter().find(|s| s.0 == *service_id) else {
                continue;
            };
            lines.push(SettlementLine {
                client_id: client_id.clone(),
                client_name: names.get(client_id).cloned().unwrap_or_default(),
                service_id: service_id.clone(),
                service_type: service.2.clone(),
                kind: ServiceKind::parse(&service.3),
                unit: Unit::parse(&service.4),
                quantity: Quantity(*quantity),
                amount_cents: *amount,
            });
        }
        let total_amount_cents = lines.iter().map(|l| l.amount_cents).sum();
        Ok::<_, ClientsError>((
            Settlement {
                registrar_id: registrar_id.to_owned(),
                provider_id: provider_id.clone(),
                month: month.to_owned(),
                lines,
                total_amount_cents,
                currency: "EUR".into(),
            },
            uses,
        ))
    })
}

/// The settlement as CSV (RFC 4180): one row per client and service, then the total. Euros with
/// two decimals beside the cents, so that a spreadsheet needs no conversion.
pub fn to_csv(settlement: &Settlement) -> String {
    /// A text cell: names, ids and codes, some of them typed in by people. One that a
    /// spreadsheet would take for a formula (OWASP "CSV injection": a leading `=`, `+`, `-`,
    /// `@`, tab or carriage return) gets a leading `'`, which spreadsheets show as text. The
    /// quantity and amount cells are not text and never pass here: we format them ourselves
    /// from integers, and a negative amount such as `-12.50` must stay a number a spreadsheet
    /// can sum.
    fn field(value: &str) -> String {
        let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{value}")
        } else {
            value.to_owned()
        };
        if value.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", value.replace('"', "\"\""))
        } else {
            value
        }
    }
    fn euros(cents: i64) -> String {
        let sign = if cents < 0 { "-" } else { "" };
        let cents = cents.unsigned_abs();
        format!("{sign}{}.{:02}", cents / 100, cents % 100)
    }
    let mut out =
        String::from("client_id,client_name,service_id,service_type,kind,unit,quantity,amount_cents,amount_eur\r\n");
    for line in &settlement.lines {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\r\n",
            field(&line.client_id),
            field(&line.client_name),
            field(&line.service_id),
            field(&line.service_type),
            line.kind.as_str(),
            line.unit.as_str(),
            line.quantity,
            line.amount_cents,
            euros(line.amount_cents)
        ));
    }
    out.push_str(&format!(
        "total,,,,,,,{},{}\r\n",
        settlement.total_amount_cents,
        euros(settlement.total_amount_cents)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cl_6_amounts_are_integer_cents_rounded_half_up() {
        assert_eq!(amount_cents(150, 3250), 4875);
        assert_eq!(amount_cents(100, 2999), 2999);
        assert_eq!(amount_cents(1, 50), 1);
        assert_eq!(amount_cents(1, 49), 0);
        assert_eq!(amount_cents(33, 1001), 330);
    }

    fn line(client_name: &str, service_type: &str, amount_cents: i64) -> SettlementLine {
        SettlementLine {
            client_id: "c1".into(),
            client_name: client_name.into(),
            service_id: "s1".into(),
            service_type: service_type.into(),
            kind: ServiceKind::PurchasedService,
            unit: Unit::Hour,
            quantity: Quantity(150),
            amount_cents,
        }
    }

    #[test]
    fn cl_6_csv_text_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised() {
        let lines = vec![
            line("=HYPERLINK(\"http://x\",\"y\")", "kotihoito", 1),
            line("+358 Maija", "-1+1", 2),
            line("@SUM(A1) Maija", "\tkotihoito", 3),
            line("\rMaija", "koti=hoito", 4),
            line("Meikäläinen Maija", "kotihoito", -1250),
        ];
        let settlement = Settlement {
            registrar_id: "r".into(),
            provider_id: "p".into(),
            month: "2026-10".into(),
            total_amount_cents: lines.iter().map(|l| l.amount_cents).sum(),
            lines,
            currency: "EUR".into(),
        };
        assert_eq!(
            to_csv(&settlement),
            "client_id,client_name,service_id,service_type,kind,unit,quantity,amount_cents,amount_eur\r\n\
             c1,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",s1,kotihoito,purchased_service,hour,1.5,1,0.01\r\n\
             c1,'+358 Maija,s1,'-1+1,purchased_service,hour,1.5,2,0.02\r\n\
             c1,'@SUM(A1) Maija,s1,'\tkotihoito,purchased_service,hour,1.5,3,0.03\r\n\
             c1,\"'\rMaija\",s1,koti=hoito,purchased_service,hour,1.5,4,0.04\r\n\
             c1,Meikäläinen Maija,s1,kotihoito,purchased_service,hour,1.5,-1250,-12.50\r\n\
             total,,,,,,,-1240,-12.40\r\n"
        );
    }

    #[test]
    fn cl_6_month_bounds() {
        let (first, last) = month_bounds("2024-02").unwrap();
        assert_eq!(
            (first.to_string(), last.to_string()),
            ("2024-02-01".into(), "2024-02-29".into())
        );
        assert!(month_bounds("2024-13").is_err());
        assert!(month_bounds("24-01").is_err());
    }
}
