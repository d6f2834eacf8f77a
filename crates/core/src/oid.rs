//! ISO object identifiers (OID), as used by the SOTE organisation register for service units and
//! by Kanta for case identifiers, e.g. `1.2.246.10.1234567.10.1`.

use std::fmt;
use std::str::FromStr;

const MAX_LENGTH: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OidError {
    #[error("an OID is at most 255 characters")]
    TooLong,
    #[error("an OID has at least two arcs separated by dots, e.g. 1.2.246.10")]
    TooFewArcs,
    #[error("every arc of an OID is a non-empty decimal number")]
    ArcNotNumeric,
    #[error("an arc of an OID has no leading zeros")]
    LeadingZero,
    #[error("the first arc of an OID is 0, 1 or 2")]
    FirstArc,
}

/// A syntactically valid OID in dotted-decimal form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(String);

impl Oid {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This OID with one more arc, e.g. a case OID issued under the organiser's root.
    pub fn child(&self, arc: u64) -> Oid {
        Oid(format!("{}.{arc}", self.0))
    }

    pub fn starts_with(&self, root: &Oid) -> bool {
        self.0.len() > root.0.len() && self.0.starts_with(&root.0) && self.0.as_bytes()[root.0.len()] == b'.'
    }
}

impl FromStr for Oid {
    type Err = OidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_LENGTH {
            return Err(OidError::TooLong);
        }
        let mut arcs = 0;
        for arc in s.split('.') {
            if arc.is_empty() || !arc.bytes().all(|b| b.is_ascii_digit()) {
                return Err(OidError::ArcNotNumeric);
            }
            if arc.len() > 1 && arc.starts_with('0') {
                return Err(OidError::LeadingZero);
            }
            if arcs == 0 && !matches!(arc, "0" | "1" | "2") {
                return Err(OidError::FirstArc);
            }
            arcs += 1;
        }
        if arcs < 2 {
            return Err(OidError::TooFewArcs);
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::serde_as_text!(Oid);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_unit_oid_is_validated() {
        let oid: Oid = "1.2.246.10.1234567.10.1".parse().unwrap();
        assert_eq!(oid.as_str(), "1.2.246.10.1234567.10.1");
        assert_eq!("1".parse::<Oid>(), Err(OidError::TooFewArcs));
        assert_eq!("".parse::<Oid>(), Err(OidError::ArcNotNumeric));
        assert_eq!("1..2".parse::<Oid>(), Err(OidError::ArcNotNumeric));
        assert_eq!("1.2.".parse::<Oid>(), Err(OidError::ArcNotNumeric));
        assert_eq!("1.02".parse::<Oid>(), Err(OidError::LeadingZero));
        assert_eq!("3.2".parse::<Oid>(), Err(OidError::FirstArc));
        assert_eq!("1.2.x".parse::<Oid>(), Err(OidError::ArcNotNumeric));
        assert_eq!("1.2.0".parse::<Oid>().map(|o| o.to_string()), Ok("1.2.0".to_owned()));
        let long = format!("1.{}", "2.".repeat(130));
        assert_eq!(long.parse::<Oid>(), Err(OidError::TooLong));
    }

    #[test]
    fn oid_children_stay_under_their_root() {
        let root: Oid = "1.2.246.10.999".parse().unwrap();
        let child = root.child(42);
        assert_eq!(child.as_str(), "1.2.246.10.999.42");
        assert!(child.starts_with(&root));
        assert!(!"1.2.246.10.9990".parse::<Oid>().unwrap().starts_with(&root));
    }
}
