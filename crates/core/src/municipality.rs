//! Municipality codes (kuntanumero) of Statistics Finland.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MunicipalityCodeError {
    #[error("a municipality code is exactly three digits, e.g. 091")]
    Malformed,
    #[error("is not a municipality in Statistics Finland's classification")]
    Unknown,
}

/// Statistics Finland's municipality classification as shipped (`data/municipalities.csv`: its
/// first line names the version and source, then `code;name` lines). `make municipalities`
/// replaces it with the current list.
const CLASSIFICATION: &str = include_str!("../data/municipalities.csv");

/// The version line of the shipped classification (for `docs/` and `config check`).
pub fn classification_version() -> &'static str {
    CLASSIFICATION
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("# "))
        .unwrap_or("unknown")
}

/// Every municipality of the shipped classification as `(code, Finnish name)`, in code order.
pub fn municipalities() -> impl Iterator<Item = (&'static str, &'static str)> {
    CLASSIFICATION
        .lines()
        .filter(|line| !line.starts_with('#') && *line != "code;name")
        .filter_map(|line| line.split_once(';'))
}

/// Whether `code` is a municipality of the shipped classification.
pub fn is_municipality(code: &str) -> bool {
    municipalities().any(|(known, _)| known == code)
}

/// A three-digit municipality code such as `091` (Helsinki). Leading zeros are significant, so
/// the code is text, never a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MunicipalityCode([u8; 3]);

impl MunicipalityCode {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("000")
    }
}

impl FromStr for MunicipalityCode {
    type Err = MunicipalityCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
                if is_municipality(s) {
                    Ok(Self([*a, *b, *c]))
                } else {
                    Err(MunicipalityCodeError::Unknown)
                }
            }
            _ => Err(MunicipalityCodeError::Malformed),
        }
    }
}

impl fmt::Display for MunicipalityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::serde_as_text!(MunicipalityCode);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cl_1_municipality_code_is_three_digits_of_statistics_finlands_list() {
        assert_eq!("091".parse::<MunicipalityCode>().unwrap().as_str(), "091");
        for bad in ["91", "0910", "09a", "", " 91", "-91"] {
            assert_eq!(
                bad.parse::<MunicipalityCode>(),
                Err(MunicipalityCodeError::Malformed),
                "{bad}"
            );
        }
        // 099 Honkajoki joined Kankaanpää in 2021; 000 and 999 were never municipalities.
        for unknown in ["000", "099", "999"] {
            assert_eq!(
                unknown.parse::<MunicipalityCode>(),
                Err(MunicipalityCodeError::Unknown),
                "{unknown}"
            );
        }
        assert_eq!(municipalities().count(), 309);
        assert!(municipalities().all(|(code, name)| code.len() == 3 && !name.is_empty()));
        let codes: Vec<&str> = municipalities().map(|(code, _)| code).collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "in code order, each once");
        assert!(classification_version().starts_with("Statistics Finland"));
        let parsed: MunicipalityCode = serde_json::from_str("\"853\"").unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), "\"853\"");
        assert!(serde_json::from_str::<MunicipalityCode>("853").is_err());
    }
}
