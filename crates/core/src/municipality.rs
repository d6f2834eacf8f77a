//! Municipality codes (kuntanumero) of Statistics Finland.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a municipality code is exactly three digits, e.g. 091")]
pub struct MunicipalityCodeError;

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
            [a, b, c] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => Ok(Self([*a, *b, *c])),
            _ => Err(MunicipalityCodeError),
        }
    }
}

impl fmt::Display for MunicipalityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MunicipalityCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MunicipalityCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn municipality_code_is_three_digits() {
        assert_eq!("091".parse::<MunicipalityCode>().unwrap().as_str(), "091");
        for bad in ["91", "0910", "09a", "", " 91", "-91"] {
            assert_eq!(bad.parse::<MunicipalityCode>(), Err(MunicipalityCodeError), "{bad}");
        }
        let parsed: MunicipalityCode = serde_json::from_str("\"853\"").unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), "\"853\"");
        assert!(serde_json::from_str::<MunicipalityCode>("853").is_err());
    }
}
