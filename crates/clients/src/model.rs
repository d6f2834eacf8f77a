//! The register's records as integrators see them (field names of `api.md`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::Date;
use utoipa::ToSchema;

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
    #[default]
    Unknown,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Male => "male",
            Self::Female => "female",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "male" => Self::Male,
            "female" => Self::Female,
            _ => Self::Unknown,
        }
    }
}

/// Service voucher (palveluseteli) or purchased service (ostopalvelu), CL-4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    ServiceVoucher,
    PurchasedService,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceVoucher => "service_voucher",
            Self::PurchasedService => "purchased_service",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "service_voucher" {
            Self::ServiceVoucher
        } else {
            Self::PurchasedService
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Hour,
    Visit,
    Day,
    Euro,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Visit => "visit",
            Self::Day => "day",
            Self::Euro => "euro",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "hour" => Self::Hour,
            "visit" => Self::Visit,
            "day" => Self::Day,
            _ => Self::Euro,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    Active,
    Closed,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Closed => "closed",
        }
    }
}

/// A quantity in hundredths of its unit, so that 1.5 hours is exact: JSON carries a number with
/// at most two decimals; settlement multiplies integers only (CL-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Quantity(pub i64);

/// The largest quantity accepted: far beyond any real grant, far below overflow in cents.
const MAX_QUANTITY_CENTI: i64 = 10_000_000_000;

impl Quantity {
    pub fn from_number(value: f64) -> Result<Self, &'static str> {
        if !value.is_finite() || value <= 0.0 {
            return Err("must be a positive number");
        }
        let scaled = value * 100.0;
        let rounded = scaled.round();
        if (scaled - rounded).abs() > 1e-6 {
            return Err("must have at most two decimals");
        }
        if rounded > MAX_QUANTITY_CENTI as f64 {
            return Err("is too large");
        }
        // A positive number too small for the two-decimals check (1e-10) rounds to nothing;
        // zero is no quantity.
        if rounded < 1.0 {
            return Err("must be at least 0.01");
        }
        Ok(Self(rounded as i64))
    }

    pub fn centi(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, hundredths) = (self.0 / 100, self.0 % 100);
        match hundredths {
            0 => write!(f, "{whole}"),
            h if h % 10 == 0 => write!(f, "{whole}.{}", h / 10),
            h => write!(f, "{whole}.{h:02}"),
        }
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % 100 == 0 {
            serializer.serialize_i64(self.0 / 100)
        } else {
            serializer.serialize_f64(self.0 as f64 / 100.0)
        }
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Quantity::from_number(value).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Quantity {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .description(Some("A positive quantity of the unit with at most two decimals"))
            .minimum(Some(0.01))
            .maximum(Some(MAX_QUANTITY_CENTI as f64 / 100.0))
            .multiple_of(Some(0.01))
            .examples([serde_json::json!(1.5)])
            .into()
    }
}

impl ToSchema for Quantity {}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NextOfKin {
    pub name: Option<String>,
    pub phone: Option<String>,
}

/// A Finnish postal address as the population register gives it (CL-1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub street_address: Option<String>,
    pub po_box: Option<String>,
    pub street_name: Option<String>,
    pub apartment_number: Option<String>,
    pub apartment_letter: Option<String>,
    pub apartment_division_letter: Option<String>,
    #[schema(example = "33100")]
    pub postal_code: Option<String>,
    pub post_office: Option<String>,
    pub address_qualifier: Option<String>,
    pub municipality: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "FI")]
    pub country_code: Option<String>,
}

/// How precise a date from the population register is (VTJ's `tarkkuus`, VT-4).
///
/// VTJ gives some dates with month (`KUUKAUSI`) or year precision only, e.g. the move-in date of a
/// person who moved from abroad. Such a date is kept as the first day of its month or year **with
/// its precision beside it**: in the database a `*_precision` column (NULL for a full date), in
/// the API a `*_precision` field next to the date, present only when the date is partial. The date
/// field itself stays a full ISO date (`format: date`), so that a reader who knows nothing of
/// precision reads what it always did, and one who does knows that `2024-01-01` with `month` means
/// "January 2024", not the 1st of January. A date written through the API is a full date: it
/// clears the precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatePrecision {
    /// Only the year and month are known (`KUUKAUSI`): the date is the first of the month.
    Month,
    /// Only the year is known: the date is the 1st of January.
    Year,
}

impl DatePrecision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    /// The stored form; anything else (NULL) is a full date.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }
}

/// A date from VTJ with its precision (VT-4): `precision` `None` is a full date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VtjDate {
    pub date: Date,
    pub precision: Option<DatePrecision>,
}

impl VtjDate {
    pub fn day(date: Date) -> Self {
        Self { date, precision: None }
    }
}

/// The period of one guardianship measure as VTJ records it (VT-4). Read-only: it comes from VTJ.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct GuardianshipPeriod {
    /// When the measure began (`alkupv`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub starts_on: Option<Date>,
    /// `month` or `year` when VTJ gave `starts_on` with that precision only (see `DatePrecision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_on_precision: Option<DatePrecision>,
    /// When the measure ended or ends (`loppupv`); absent: in force until further notice.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub ends_on: Option<Date>,
    /// `month` or `year` when VTJ gave `ends_on` with that precision only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_on_precision: Option<DatePrecision>,
}

/// Guardianship of a client as VTJ records it (VT-4): each measure present is the flag that it is
/// recorded, with its dates. Read-only: it comes from VTJ and is not taken in `ClientChanges`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Guardianship {
    /// `EDUNVALVONTA`: a guardian (edunvalvoja) is appointed for the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardian: Option<GuardianshipPeriod>,
    /// `EDUNVALVONTAVALTUUTUS`: a continuing power of attorney of the client is confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuing_power_of_attorney: Option<GuardianshipPeriod>,
}

impl Guardianship {
    pub fn is_empty(&self) -> bool {
        self.guardian.is_none() && self.continuing_power_of_attorney.is_none()
    }
}

/// A new client with the services granted to them (CL-1: never a client without a service).
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// Never echoed back in errors or logs. Only the canonical form is accepted (CL-2): upper case, no surrounding whitespace.
    #[schema(example = "131052-308T")]
    pub identity_code: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub first_names: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub surname: String,
    #[serde(default)]
    pub gender: Gender,
    /// Statistics Finland's 3-digit municipality code.
    #[schema(value_type = Option<String>, example = "837", pattern = "^[0-9]{3}$")]
    pub home_municipality: Option<rekisteri_core::MunicipalityCode>,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub moved_in_on: Option<Date>,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub moved_out_on: Option<Date>,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub died_on: Option<Date>,
    /// ISO 639-1 (fi, sv, en, …).
    #[schema(example = "fi", pattern = "^[a-z]{2}$")]
    pub language: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub next_of_kin: Option<NextOfKin>,
    pub address: Option<Address>,
    /// Turvakielto: no address or home municipality is stored (CL-8).
    #[serde(default)]
    pub protection_order: bool,
    /// The first granted services; at least one.
    #[schema(min_items = 1)]
    pub services: Vec<NewService>,
}

rekisteri_core::redacted_debug!(NewClient {});

/// Changes to a client; absent fields stay as they are. Sent with `If-Match` (PL-2).
#[derive(Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientChanges {
    pub first_names: Option<String>,
    pub surname: Option<String>,
    pub gender: Option<Gender>,
    #[schema(value_type = Option<String>, example = "837", pattern = "^[0-9]{3}$")]
    pub home_municipality: Option<rekisteri_core::MunicipalityCode>,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub moved_in_on: Option<Date>,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub moved_out_on: Option<Date>,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub died_on: Option<Date>,
    #[schema(pattern = "^[a-z]{2}$")]
    pub language: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub next_of_kin: Option<NextOfKin>,
    pub address: Option<Address>,
    /// Setting it erases the stored address and home municipality (CL-8).
    pub protection_order: Option<bool>,
    /// Restricts processing (CL-12): while set, only this flag can be changed and reads show no
    /// personal field.
    pub restricted: Option<bool>,
}

rekisteri_core::redacted_debug!(ClientChanges {});

/// A service granted by a decision (CL-4).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewService {
    pub kind: ServiceKind,
    /// A service type code of one of the registrar's service areas.
    #[schema(example = "home_care")]
    pub service_type: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub service_name: String,
    pub quantity: Quantity,
    pub unit: Unit,
    /// Voucher value per unit (vouchers: required).
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub unit_value_cents: Option<i64>,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub valid_from: Date,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub valid_to: Date,
    /// The provider organisation: its id or OID.
    pub provider_id: String,
    #[schema(value_type = Option<String>, example = "1.2.246.10.1234567.10.1")]
    pub provider_unit_oid: Option<rekisteri_core::Oid>,
    pub decision_ref: Option<String>,
    /// What the provider needs to know to deliver the service.
    pub additional_info: Option<String>,
}

/// A client as the caller may see them: a provider sees only the fields it needs (CL-9), and
/// nobody sees an address or home municipality under a protection order (CL-8). Absent fields
/// are left out of the JSON. While processing is restricted (CL-12) the staff see only the
/// record's id, version and the flag: no personal field.
#[derive(Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Client {
    pub id: String,
    pub registrar_id: String,
    #[schema(example = "131052-308T")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_names: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_municipality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub moved_in_on: Option<Date>,
    /// `month` or `year` when VTJ gave `moved_in_on` with that precision only (the date is then
    /// the first day of the month or year); absent: a full date (VT-4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_in_on_precision: Option<DatePrecision>,
    #[serde(skip_serializing_if = "Option::is_none", with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub moved_out_on: Option<Date>,
    /// `month` or `year` when VTJ gave `moved_out_on` with that precision only (VT-4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_out_on_precision: Option<DatePrecision>,
    #[serde(skip_serializing_if = "Option::is_none", with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub died_on: Option<Date>,
    /// `month` or `year` when VTJ gave `died_on` with that precision only (VT-4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub died_on_precision: Option<DatePrecision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_of_kin: Option<NextOfKin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// The temporary address from VTJ (`TILAPAINEN_KOTIMAINEN_OSOITE`,
    /// `TILAPAINEN_ULKOMAINEN_OSOITE`), beside the permanent `address`; never kept under a
    /// protection order (CL-8). Read-only (VT-4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporary_address: Option<Address>,
    /// The postal address from VTJ (`KOTIMAINEN_POSTIOSOITE`, `ULKOMAINEN_POSTIOSOITE`): where
    /// letters go when it is set; never kept under a protection order (CL-8). Read-only (VT-4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_address: Option<Address>,
    /// Guardianship recorded in VTJ, with its dates (registrar's staff only). Read-only (VT-4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardianship: Option<Guardianship>,
    pub protection_order: bool,
    /// A search found the client by an identity code that VTJ has since corrected (VT-5).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub found_by_previous_identity_code: bool,
    /// Processing restricted (GDPR art. 18, CL-12): only storage until the registrar lifts it.
    pub restricted: bool,
    /// The version `If-Match` names.
    pub version: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The services the caller may see.
    pub services: Vec<Service>,
}

rekisteri_core::redacted_debug!(Client {
    id,
    registrar_id,
    version
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Service {
    pub id: String,
    pub client_id: String,
    pub kind: ServiceKind,
    pub service_type: String,
    pub service_name: String,
    pub quantity: Quantity,
    pub unit: Unit,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_value_cents: Option<i64>,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub valid_from: Date,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub valid_to: Date,
    pub provider_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_unit_oid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_ref: Option<String>,
    pub status: ServiceStatus,
    #[serde(skip_serializing_if = "Option::is_none", with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub closed_on: Option<Date>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<String>,
    pub version: i64,
}

/// Changes to a granted service; absent fields stay. Closing: `{status: "closed", closed_on}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceChanges {
    pub status: Option<ServiceStatus>,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub closed_on: Option<Date>,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_to: Option<Date>,
    pub quantity: Option<Quantity>,
    pub additional_info: Option<String>,
}

/// A delivered service recorded by the provider (CL-5).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServiceEvent {
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub delivered_on: Date,
    pub quantity: Quantity,
    /// The agreed unit price (purchased services: required); vouchers are paid at the
    /// voucher value.
    pub unit_price_cents: Option<i64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ServiceEvent {
    pub id: String,
    pub service_id: String,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub delivered_on: Date,
    pub quantity: Quantity,
    pub unit_price_cents: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::Quantity;

    #[test]
    fn cl_6_quantities_are_exact_hundredths() {
        assert_eq!(Quantity::from_number(1.5), Ok(Quantity(150)));
        assert_eq!(Quantity::from_number(0.1), Ok(Quantity(10)));
        assert_eq!(Quantity::from_number(2.35), Ok(Quantity(235)));
        assert_eq!(Quantity::from_number(0.005), Err("must have at most two decimals"));
        assert_eq!(Quantity::from_number(0.0), Err("must be a positive number"));
        assert_eq!(Quantity::from_number(-1.0), Err("must be a positive number"));
        assert_eq!(Quantity::from_number(1e-10), Err("must be at least 0.01"));
        assert_eq!(Quantity::from_number(5e-324), Err("must be at least 0.01"));
        assert_eq!(Quantity::from_number(0.01), Ok(Quantity(1)));
        assert_eq!(Quantity(150).to_string(), "1.5");
        assert_eq!(Quantity(235).to_string(), "2.35");
        assert_eq!(Quantity(205).to_string(), "2.05");
        assert_eq!(Quantity(200).to_string(), "2");
        assert_eq!(serde_json::to_string(&Quantity(200)).unwrap(), "2");
        assert_eq!(serde_json::to_string(&Quantity(150)).unwrap(), "1.5");
    }
}

/// A person authorised to act for a client (CL-7).
#[derive(Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Proxy {
    pub id: String,
    pub client_id: String,
    #[schema(example = "010190-123M")]
    pub identity_code: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub first_names: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub surname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub valid_from: Date,
    /// Absent: until further notice.
    #[serde(skip_serializing_if = "Option::is_none", with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_to: Option<Date>,
    /// When the authorisation was revoked (`DELETE`); a revoked proxy acts for nobody.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

rekisteri_core::redacted_debug!(Proxy { id, client_id });

/// A new proxy authorisation (CL-7).
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProxy {
    /// Never echoed back in errors or logs. Only the canonical form is accepted (CL-2): upper case, no surrounding whitespace.
    #[schema(example = "010190-123M")]
    pub identity_code: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub first_names: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub surname: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub valid_from: Date,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_to: Option<Date>,
}

rekisteri_core::redacted_debug!(NewProxy {});

/// A professional on the care team of a client's case (AX-5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CareTeamMember {
    pub id: String,
    pub client_id: String,
    pub account_id: String,
    /// The service unit in which the professional serves the client; the care relationship
    /// holds while the professional works in it.
    pub service_unit_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_role: Option<String>,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub valid_from: Date,
    #[serde(skip_serializing_if = "Option::is_none", with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_until: Option<Date>,
    /// The version `If-Match` names.
    pub version: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCareTeamMember {
    pub account_id: String,
    pub service_unit_id: String,
    /// E.g. "omatyöntekijä" (the client's named worker).
    pub team_role: Option<String>,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub valid_from: Date,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_until: Option<Date>,
}

/// Changes to a care-team membership; absent fields stay. Sent with `If-Match`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CareTeamMemberChanges {
    pub team_role: Option<String>,
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_from: Option<Date>,
    /// The last day of the membership.
    #[serde(default, with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_until: Option<Date>,
}

/// How a citizen is related to a record of `/v1/me/client-records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordRelation {
    /// The citizen's own record.
    Own,
    /// A record of a client the citizen is a valid proxy for (CL-7).
    Proxy,
}

/// One register's record of the citizen, or of a client they act for (CL-9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OwnRecord {
    pub registrar_id: String,
    pub registrar_name: String,
    /// Whom to contact about this register: its contact person and data-protection officer.
    pub registrar_contacts: rekisteri_accounts::RegistrarContacts,
    pub relation: RecordRelation,
    pub client: Client,
}

/// What a client or their proxy may change themselves (CL-10): nothing else.
#[derive(Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactChanges {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub next_of_kin: Option<NextOfKin>,
}

rekisteri_core::redacted_debug!(ContactChanges {});
