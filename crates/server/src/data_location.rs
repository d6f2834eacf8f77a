//! Where personal data may be kept (PL-10a): in the EU/EEA by default, or in Finland only.
//!
//! Sources 000 §8, 001 §13 and 004 allow no transfer outside the EU/EEA. What the configuration
//! can tell is checked when it is loaded, so `config check` and `serve` refuse the same things:
//!
//! - the audio bucket's region must be one this server knows to lie in an allowed country, or
//!   the operator states the country (`REKISTERI_S3_COUNTRY`), e.g. for a MinIO on the
//!   premises that calls itself `us-east-1`; an unknown region is refused, because a bucket is
//!   usually a cloud's and the name is all we have;
//! - the database host is refused when its name says a region outside (a managed database such
//!   as `….eu-west-2.rds.amazonaws.com`) or the operator states a country outside; a host on
//!   this machine or a private network is the operator's premises; any other name cannot be
//!   judged from the configuration, which `config check` says rather than guess.
//!
//! Backups are made by the operator's tools, not by this server (docs/operations.md), so their
//! location is a duty written there, not a setting here.

use std::net::IpAddr;

use crate::config::ConfigError;

/// The countries of the European Economic Area (the EU 27, Iceland, Liechtenstein, Norway), ISO
/// 3166-1 alpha-2.
const EEA_COUNTRIES: [&str; 30] = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT",
    "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
];

/// Object-storage and database regions by name, with the country they are in, from the
/// providers' published region lists (AWS, Google Cloud, Azure, UpCloud, Hetzner, OVHcloud,
/// Scaleway; 2026). Regions outside the EEA that carry a European-sounding name are listed too,
/// so the refusal can say where they are.
const REGIONS: &[(&str, &str)] = &[
    // AWS
    ("eu-north-1", "SE"),
    ("eu-west-1", "IE"),
    ("eu-west-2", "GB"),
    ("eu-west-3", "FR"),
    ("eu-central-1", "DE"),
    ("eu-central-2", "CH"),
    ("eu-south-1", "IT"),
    ("eu-south-2", "ES"),
    ("us-east-1", "US"),
    ("us-east-2", "US"),
    ("us-west-1", "US"),
    ("us-west-2", "US"),
    // Google Cloud
    ("europe-north1", "FI"),
    ("europe-north2", "SE"),
    ("europe-west1", "BE"),
    ("europe-west2", "GB"),
    ("europe-west3", "DE"),
    ("europe-west4", "NL"),
    ("europe-west6", "CH"),
    ("europe-west8", "IT"),
    ("europe-west9", "FR"),
    ("europe-west10", "DE"),
    ("europe-west12", "IT"),
    ("europe-central2", "PL"),
    ("europe-southwest1", "ES"),
    // Azure
    ("northeurope", "IE"),
    ("westeurope", "NL"),
    ("swedencentral", "SE"),
    ("francecentral", "FR"),
    ("germanywestcentral", "DE"),
    ("norwayeast", "NO"),
    ("italynorth", "IT"),
    ("polandcentral", "PL"),
    ("spaincentral", "ES"),
    ("uksouth", "GB"),
    ("switzerlandnorth", "CH"),
    // UpCloud
    ("fi-hel1", "FI"),
    ("fi-hel2", "FI"),
    ("de-fra1", "DE"),
    ("nl-ams1", "NL"),
    ("es-mad1", "ES"),
    ("pl-waw1", "PL"),
    ("se-sto1", "SE"),
    // Hetzner
    ("hel1", "FI"),
    ("fsn1", "DE"),
    ("nbg1", "DE"),
    // OVHcloud
    ("gra", "FR"),
    ("sbg", "FR"),
    ("rbx", "FR"),
    ("de", "DE"),
    ("waw", "PL"),
    // Scaleway
    ("fr-par", "FR"),
    ("nl-ams", "NL"),
    ("pl-waw", "PL"),
];

/// The `data_location` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataLocation {
    /// The EU/EEA, as the sources require.
    #[default]
    EuEea,
    /// Finland only, for a registrar whose contracts ask more than the law.
    Finland,
}

impl DataLocation {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.trim() {
            "eu_eea" => Ok(Self::EuEea),
            "finland" => Ok(Self::Finland),
            other => Err(ConfigError::Invalid {
                name: "REKISTERI_DATA_LOCATION",
                message: format!("'{other}' is not eu_eea or finland"),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EuEea => "eu_eea",
            Self::Finland => "finland",
        }
    }

    fn allows(self, country: &str) -> bool {
        match self {
            Self::EuEea => EEA_COUNTRIES.contains(&country),
            Self::Finland => country == "FI",
        }
    }

    fn area(self) -> &'static str {
        match self {
            Self::EuEea => "the EU/EEA",
            Self::Finland => "Finland",
        }
    }
}

/// The country of a region name, when this server knows it.
fn country_of_region(region: &str) -> Option<&'static str> {
    let region = region.trim().to_ascii_lowercase();
    REGIONS
        .iter()
        .find(|(name, _)| *name == region)
        .map(|(_, country)| *country)
}

/// An ISO 3166-1 alpha-2 code the operator states, upper-cased.
pub fn parse_country(name: &'static str, value: &str) -> Result<String, ConfigError> {
    let code = value.trim().to_ascii_uppercase();
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(ConfigError::Invalid {
            name,
            message: format!("'{value}' is not a two-letter ISO 3166 country code such as FI"),
        })
    }
}

/// Where one store of personal data is, as far as the configuration tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// In this country (from a region name or the operator's statement).
    Country { country: String, source: String },
    /// On this machine or a private network: the operator's premises.
    Premises,
    /// The configuration cannot tell (a public host name of unknown placement).
    Unknown { host: String },
}

impl Placement {
    pub fn describe(&self) -> String {
        match self {
            Self::Country { country, source } => format!("{country} ({source})"),
            Self::Premises => "the operator's premises (this machine or a private network)".to_owned(),
            Self::Unknown { host } => {
                format!("unknown: {host} does not say where it is; state it with the country setting")
            }
        }
    }
}

/// Judges the audio bucket: its region must be known, or its country stated, and allowed.
pub fn check_bucket(
    location: DataLocation,
    region: &str,
    stated_country: Option<&str>,
) -> Result<Placement, ConfigError> {
    let (country, source) = match (stated_country, country_of_region(region)) {
        (Some(country), _) => (country.to_owned(), "stated by REKISTERI_S3_COUNTRY".to_owned()),
        (None, Some(country)) => (country.to_owned(), format!("region {region}")),
        (None, None) => {
            return Err(ConfigError::Invalid {
                name: "REKISTERI_S3_REGION",
                message: format!(
                    "region '{region}' is not one this server knows to be in {}; if the bucket is \
                     (e.g. storage on your premises), state its country with REKISTERI_S3_COUNTRY",
                    location.area()
                ),
            });
        }
    };
    if !location.allows(&country) {
        return Err(ConfigError::Invalid {
            name: if stated_country.is_some() {
                "REKISTERI_S3_COUNTRY"
            } else {
                "REKISTERI_S3_REGION"
            },
            message: format!(
                "the recordings bucket would be in {country} ({source}), outside {} (data_location = {})",
                location.area(),
                location.as_str()
            ),
        });
    }
    Ok(Placement::Country { country, source })
}

/// Judges the database host of a PostgreSQL URL (`None` for the embedded SQLite file).
pub fn check_database(
    location: DataLocation,
    postgres_url: Option<&str>,
    stated_country: Option<&str>,
) -> Result<Placement, ConfigError> {
    let host = postgres_url.map(postgres_host).unwrap_or_default();
    let placement = match stated_country {
        Some(country) => Placement::Country {
            country: country.to_owned(),
            source: "stated by REKISTERI_DATABASE_COUNTRY".to_owned(),
        },
        None if is_premises(&host) => Placement::Premises,
        None => match managed_database_region(&host)
            .and_then(|region| country_of_region(region).map(|country| (region, country)))
        {
            Some((region, country)) => Placement::Country {
                country: country.to_owned(),
                source: format!("region {region} in the host name"),
            },
            None => Placement::Unknown { host: host.clone() },
        },
    };
    if let Placement::Country { country, source } = &placement
        && !location.allows(country)
    {
        return Err(ConfigError::Invalid {
            name: if stated_country.is_some() {
                "REKISTERI_DATABASE_COUNTRY"
            } else {
                "DATABASE_URL"
            },
            message: format!(
                "the database would be in {country} ({source}), outside {} (data_location = {})",
                location.area(),
                location.as_str()
            ),
        });
    }
    Ok(placement)
}

/// The host of a `postgres://` URL: the authority's host, else a `host=` parameter, else empty
/// (libpq's default, the local socket).
fn postgres_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, query) = match rest.find(['/', '?']) {
        Some(end) => (&rest[..end], rest[end..].split_once('?').map_or("", |(_, q)| q)),
        None => (rest, ""),
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split_once(']').map_or(bracketed, |(host, _)| host)
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    if !host.is_empty() {
        return host.to_ascii_lowercase();
    }
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("host="))
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// This machine (a socket, localhost, loopback) or a private network (RFC 1918, unique local).
fn is_premises(host: &str) -> bool {
    if host.is_empty() || host.starts_with('/') || host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00,
        Err(_) => false,
    }
}

/// The region a managed database's host name carries (`NAME.ID.REGION.rds.amazonaws.com`).
fn managed_database_region(host: &str) -> Option<&str> {
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [.., region, "rds", "amazonaws", "com"] => Some(region),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_10a_a_bucket_must_be_known_to_lie_in_the_allowed_area() {
        let eu = DataLocation::EuEea;
        assert_eq!(
            check_bucket(eu, "eu-north-1", None).unwrap(),
            Placement::Country {
                country: "SE".to_owned(),
                source: "region eu-north-1".to_owned()
            }
        );
        let err = check_bucket(eu, "eu-west-2", None).unwrap_err().to_string();
        assert!(
            err.starts_with("REKISTERI_S3_REGION: the recordings bucket would be in GB"),
            "{err}"
        );
        let err = check_bucket(eu, "eu-central-2", None).unwrap_err().to_string();
        assert!(err.contains("in CH"), "{err}");
        let err = check_bucket(eu, "mars-1", None).unwrap_err().to_string();
        assert!(err.contains("REKISTERI_S3_COUNTRY"), "{err}");
        // A MinIO on the premises names itself us-east-1; the operator says where it is.
        assert!(check_bucket(eu, "us-east-1", None).is_err());
        assert!(check_bucket(eu, "us-east-1", Some("FI")).is_ok());
        let err = check_bucket(eu, "eu-north-1", Some("US")).unwrap_err().to_string();
        assert!(err.starts_with("REKISTERI_S3_COUNTRY:"), "{err}");
        let fi = DataLocation::Finland;
        assert!(check_bucket(fi, "europe-north1", None).is_ok());
        assert!(check_bucket(fi, "fi-hel2", None).is_ok());
        let err = check_bucket(fi, "eu-north-1", None).unwrap_err().to_string();
        assert!(err.contains("outside Finland (data_location = finland)"), "{err}");
    }

    #[test]
    fn pl_10a_the_database_host_is_judged_where_its_name_tells() {
        let eu = DataLocation::EuEea;
        assert_eq!(check_database(eu, None, None).unwrap(), Placement::Premises);
        for url in [
            "postgres://postgres@127.0.0.1:5432/r",
            "postgres://app:secret@localhost/r",
            "postgres://app@10.1.2.3/r",
            "postgres://app@[::1]:5432/r",
            "postgres://app@/r?host=/var/run/postgresql",
            "postgres:///r",
        ] {
            assert_eq!(
                check_database(eu, Some(url), None).unwrap(),
                Placement::Premises,
                "{url}"
            );
        }
        let rds = "postgres://app:pw@reg.abc123.eu-north-1.rds.amazonaws.com:5432/r";
        assert!(
            matches!(check_database(eu, Some(rds), None).unwrap(), Placement::Country { country, .. } if country == "SE")
        );
        let outside = "postgres://app:pw@reg.abc123.us-east-1.rds.amazonaws.com/r";
        let err = check_database(eu, Some(outside), None).unwrap_err().to_string();
        assert!(err.starts_with("DATABASE_URL: the database would be in US"), "{err}");
        assert!(!err.contains("pw"), "the URL's password stays out: {err}");
        let public = "postgres://app@db.example.fi/r";
        assert_eq!(
            check_database(eu, Some(public), None).unwrap(),
            Placement::Unknown {
                host: "db.example.fi".to_owned()
            }
        );
        assert!(check_database(eu, Some(public), Some("FI")).is_ok());
        let err = check_database(eu, Some(public), Some("US")).unwrap_err().to_string();
        assert!(err.starts_with("REKISTERI_DATABASE_COUNTRY:"), "{err}");
        assert!(check_database(DataLocation::Finland, Some(rds), None).is_err());
    }

    #[test]
    fn pl_10a_settings_are_parsed_strictly() {
        assert_eq!(DataLocation::parse("eu_eea").unwrap(), DataLocation::EuEea);
        assert_eq!(DataLocation::parse("finland").unwrap(), DataLocation::Finland);
        assert!(DataLocation::parse("world").is_err());
        assert_eq!(parse_country("X", "fi").unwrap(), "FI");
        assert!(parse_country("X", "FIN").is_err());
        assert!(parse_country("X", "F1").is_err());
    }
}
