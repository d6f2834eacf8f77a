//! Finnish personal identity code (henkilötunnus, hetu), CL-2.
//!
//! Format `DDMMYYCZZZQ`: date of birth, century sign `C`, individual number `ZZZ` and check
//! character `Q`. Individual numbers 900–999 are temporary codes, accepted only where the caller
//! says so. Two codes that differ only in the century sign belong to different people, so the
//! century sign is kept exactly as given and never normalised to another sign of the same century.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer};
use time::{Date, Month};

const CHECK_CHARACTERS: &[u8; 31] = b"0123456789ABCDEFHJKLMNPRSTUVWXY";

/// The check character of the nine digits `DDMMYYNNN` (birth date and individual number): for
/// making valid codes (demo data, benchmarks, tests); [`PersonalIdentityCode::parse`] checks it.
pub fn check_character(nine_digits: u32) -> char {
    CHECK_CHARACTERS[(nine_digits % 31) as usize] as char
}

/// Why an identity code was refused. The messages never contain the code itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityCodeError {
    #[error("must not have surrounding whitespace")]
    SurroundingWhitespace,
    #[error("an identity code has 11 characters (DDMMYYCZZZQ)")]
    WrongLength,
    #[error("the century sign and the check character must be upper case")]
    NotUpperCase,
    #[error("the date part (DDMMYY) must be six digits")]
    DateNotDigits,
    #[error("the century sign must be one of + - Y X W V U A B C D E F")]
    UnknownCenturySign,
    #[error("the date of birth is not a real calendar date")]
    ImpossibleDate,
    #[error("the individual number (ZZZ) must be three digits")]
    IndividualNumberNotDigits,
    #[error("the individual number must be between 002 and 899")]
    IndividualNumberOutOfRange,
    #[error("temporary identity codes (individual number 900-999) are not accepted here")]
    TemporaryNotAllowed,
    #[error("the check character does not match")]
    WrongCheckCharacter,
}

/// Whether temporary identity codes (individual number 900–999) are acceptable to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemporaryCodesAllowed {
    Yes,
    No,
}

/// A validated Finnish personal identity code, in its canonical form (upper case, exactly as given).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonalIdentityCode {
    canonical: [u8; 11],
}

impl PersonalIdentityCode {
    /// Validates `input`, which must be the code in its canonical form (CL-2): exactly 11
    /// characters, with no surrounding whitespace and an upper-case century sign and check
    /// character. Nothing is normalised: a code that is not canonical is refused with the reason.
    pub fn parse(input: &str, temporary: TemporaryCodesAllowed) -> Result<Self, IdentityCodeError> {
        if input.trim() != input {
            return Err(IdentityCodeError::SurroundingWhitespace);
        }
        let bytes = input.as_bytes();
        if bytes.len() != 11 || !input.is_ascii() {
            return Err(IdentityCodeError::WrongLength);
        }
        let mut canonical = [0u8; 11];
        canonical.copy_from_slice(bytes);
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            canonical[range].iter().try_fold(0u32, |acc, b| {
                b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
            })
        };
        let day = digits(0..2).ok_or(IdentityCodeError::DateNotDigits)?;
        let month = digits(2..4).ok_or(IdentityCodeError::DateNotDigits)?;
        let year_in_century = digits(4..6).ok_or(IdentityCodeError::DateNotDigits)?;
        let century = match century_of(canonical[6]) {
            Some(century) => century,
            None if century_of(canonical[6].to_ascii_uppercase()).is_some() => {
                return Err(IdentityCodeError::NotUpperCase);
            }
            None => return Err(IdentityCodeError::UnknownCenturySign),
        };
        let year = i32::try_from(century + year_in_century).map_err(|_| IdentityCodeError::ImpossibleDate)?;
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or(IdentityCodeError::ImpossibleDate)?;
        let day = u8::try_from(day).map_err(|_| IdentityCodeError::ImpossibleDate)?;
        Date::from_calendar_date(year, month, day).map_err(|_| IdentityCodeError::ImpossibleDate)?;
        let individual = digits(7..10).ok_or(IdentityCodeError::IndividualNumberNotDigits)?;
        match individual {
            0..=1 => return Err(IdentityCodeError::IndividualNumberOutOfRange),
            900..=999 if temporary == TemporaryCodesAllowed::No => {
                return Err(IdentityCodeError::TemporaryNotAllowed);
            }
            _ => {}
        }
        let number = digits(0..6).unwrap_or_default() * 1000 + individual;
        let expected = CHECK_CHARACTERS[(number % 31) as usize];
        if canonical[10] != expected {
            if canonical[10].is_ascii_lowercase() && canonical[10].to_ascii_uppercase() == expected {
                return Err(IdentityCodeError::NotUpperCase);
            }
            return Err(IdentityCodeError::WrongCheckCharacter);
        }
        Ok(Self { canonical })
    }

    /// The full code. Call this only to put the code where it is meant to go (an encrypted
    /// column, a blind index, a response body to an authorised reader), never into a log.
    pub fn reveal(&self) -> &str {
        // Every byte was checked to be ASCII in `parse`.
        std::str::from_utf8(&self.canonical).unwrap_or_default()
    }

    /// The date of birth and century sign with the personal part hidden: `131052-****`.
    pub fn masked(&self) -> String {
        let mut out = String::with_capacity(11);
        out.push_str(&self.reveal()[..7]);
        out.push_str("****");
        out
    }

    pub fn birth_date(&self) -> Date {
        let two = |i: usize| u32::from(self.canonical[i] - b'0') * 10 + u32::from(self.canonical[i + 1] - b'0');
        let century = century_of(self.canonical[6]).unwrap_or(1900);
        let year = i32::try_from(century + two(4)).unwrap_or(1900);
        let month = Month::try_from(two(2) as u8).unwrap_or(Month::January);
        Date::from_calendar_date(year, month, two(0) as u8).unwrap_or(Date::MIN)
    }

    /// Temporary codes have an individual number of 900–999.
    pub fn is_temporary(&self) -> bool {
        self.canonical[7] == b'9'
    }
}

/// The century a century sign stands for (the year offset added to `YY`).
fn century_of(sign: u8) -> Option<u32> {
    match sign {
        b'+' => Some(1800),
        b'-' | b'Y' | b'X' | b'W' | b'V' | b'U' => Some(1900),
        b'A' | b'B' | b'C' | b'D' | b'E' | b'F' => Some(2000),
        _ => None,
    }
}

impl fmt::Debug for PersonalIdentityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonalIdentityCode({})", self.masked())
    }
}

impl fmt::Display for PersonalIdentityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl FromStr for PersonalIdentityCode {
    type Err = IdentityCodeError;

    /// Parses a permanent code; temporary codes need [`PersonalIdentityCode::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s, TemporaryCodesAllowed::No)
    }
}

/// Deserialises a permanent code and refuses temporary ones; fields that accept temporary codes
/// deserialise a `String` and call [`PersonalIdentityCode::parse`] with their own rule.
impl<'de> Deserialize<'de> for PersonalIdentityCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = PersonalIdentityCode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Finnish personal identity code")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                PersonalIdentityCode::parse(v, TemporaryCodesAllowed::No).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PersonalIdentityCode, IdentityCodeError> {
        PersonalIdentityCode::parse(s, TemporaryCodesAllowed::No)
    }

    /// Builds a valid code for a date, century sign and individual number.
    fn build(ddmmyy: &str, sign: char, individual: u32) -> String {
        let number: u32 = format!("{ddmmyy}{individual:03}").parse().unwrap();
        let check = CHECK_CHARACTERS[(number % 31) as usize] as char;
        format!("{ddmmyy}{sign}{individual:03}{check}")
    }

    #[test]
    fn cl_2_published_examples_are_valid() {
        assert_eq!(parse("131052-308T").unwrap().reveal(), "131052-308T");
        assert_eq!(parse("010594Y123W").unwrap().reveal(), "010594Y123W");
        let temporary = PersonalIdentityCode::parse("010594Y9032", TemporaryCodesAllowed::Yes).unwrap();
        assert!(temporary.is_temporary());
    }

    #[test]
    fn cl_2_every_century_sign_is_accepted_with_its_century() {
        let cases = [
            ('+', 1852),
            ('-', 1952),
            ('Y', 1952),
            ('X', 1952),
            ('W', 1952),
            ('V', 1952),
            ('U', 1952),
            ('A', 2052),
            ('B', 2052),
            ('C', 2052),
            ('D', 2052),
            ('E', 2052),
            ('F', 2052),
        ];
        for (sign, year) in cases {
            let code = build("131052", sign, 308);
            let parsed = parse(&code).unwrap_or_else(|e| panic!("sign {sign}: {e}"));
            assert_eq!(
                parsed.birth_date(),
                Date::from_calendar_date(year, Month::October, 13).unwrap()
            );
            assert_eq!(parsed.reveal().as_bytes()[6], sign as u8);
        }
    }

    #[test]
    fn cl_2_unknown_century_sign_is_refused() {
        for sign in ['G', 'Z', '*', '0', ' '] {
            assert_eq!(
                parse(&format!("131052{sign}308T")),
                Err(IdentityCodeError::UnknownCenturySign)
            );
        }
    }

    #[test]
    fn cl_2_codes_differing_only_in_century_sign_are_different_people() {
        let dash = parse(&build("010594", '-', 123)).unwrap();
        let y = parse(&build("010594", 'Y', 123)).unwrap();
        assert_ne!(dash, y);
        assert_ne!(dash.reveal(), y.reveal());
    }

    #[test]
    fn cl_2_wrong_check_character_is_refused() {
        assert_eq!(parse("131052-308U"), Err(IdentityCodeError::WrongCheckCharacter));
        assert_eq!(parse("131052-3080"), Err(IdentityCodeError::WrongCheckCharacter));
        // 'G', 'I', 'O', 'Q', 'Z' are never check characters.
        assert_eq!(parse("131052-308G"), Err(IdentityCodeError::WrongCheckCharacter));
    }

    #[test]
    fn cl_2_impossible_dates_are_refused() {
        // 29 February exists in 2024 but not in 2023 or 1900.
        assert!(parse(&build("290224", 'A', 123)).is_ok());
        assert_eq!(
            parse(&build("290223", 'A', 123)),
            Err(IdentityCodeError::ImpossibleDate)
        );
        assert_eq!(
            parse(&build("290200", '-', 123)),
            Err(IdentityCodeError::ImpossibleDate)
        );
        assert!(parse(&build("290200", 'A', 123)).is_ok());
        assert_eq!(
            parse(&build("310452", '-', 123)),
            Err(IdentityCodeError::ImpossibleDate)
        );
        assert_eq!(
            parse(&build("001052", '-', 123)),
            Err(IdentityCodeError::ImpossibleDate)
        );
        assert_eq!(
            parse(&build("131352", '-', 123)),
            Err(IdentityCodeError::ImpossibleDate)
        );
        assert_eq!(
            parse(&build("130052", '-', 123)),
            Err(IdentityCodeError::ImpossibleDate)
        );
    }

    #[test]
    fn cl_2_individual_numbers_000_and_001_are_refused() {
        assert_eq!(
            parse(&build("131052", '-', 0)),
            Err(IdentityCodeError::IndividualNumberOutOfRange)
        );
        assert_eq!(
            parse(&build("131052", '-', 1)),
            Err(IdentityCodeError::IndividualNumberOutOfRange)
        );
        assert!(parse(&build("131052", '-', 2)).is_ok());
        assert!(parse(&build("131052", '-', 899)).is_ok());
    }

    #[test]
    fn cl_2_temporary_codes_only_where_the_caller_allows() {
        for individual in [900, 901, 950, 999] {
            let code = build("010594", 'Y', individual);
            assert_eq!(parse(&code), Err(IdentityCodeError::TemporaryNotAllowed));
            let parsed = PersonalIdentityCode::parse(&code, TemporaryCodesAllowed::Yes).unwrap();
            assert!(parsed.is_temporary());
        }
        assert!(!parse("131052-308T").unwrap().is_temporary());
    }

    #[test]
    fn cl_2_lowercase_and_surrounding_whitespace_are_refused() {
        // Only the canonical form is accepted (CL-2): nothing is normalised.
        assert_eq!(parse(" 010594Y123W"), Err(IdentityCodeError::SurroundingWhitespace));
        assert_eq!(parse("010594Y123W\n"), Err(IdentityCodeError::SurroundingWhitespace));
        assert_eq!(parse("\t131052-308T "), Err(IdentityCodeError::SurroundingWhitespace));
        assert_eq!(parse("010594y123W"), Err(IdentityCodeError::NotUpperCase));
        assert_eq!(parse("010594Y123w"), Err(IdentityCodeError::NotUpperCase));
        assert_eq!(parse("131052-308t"), Err(IdentityCodeError::NotUpperCase));
        assert_eq!(parse("010594y123w"), Err(IdentityCodeError::NotUpperCase));
        assert_eq!(parse("010594a123W"), Err(IdentityCodeError::NotUpperCase));
        // A lower-case letter that would be wrong in upper case too keeps its own reason.
        assert_eq!(parse("131052g308T"), Err(IdentityCodeError::UnknownCenturySign));
        assert_eq!(parse("131052-308u"), Err(IdentityCodeError::WrongCheckCharacter));
        // The canonical forms still pass.
        assert_eq!(parse("010594Y123W").unwrap().reveal(), "010594Y123W");
        assert_eq!(parse("131052-308T").unwrap().reveal(), "131052-308T");
        for err in [
            IdentityCodeError::SurroundingWhitespace,
            IdentityCodeError::NotUpperCase,
        ] {
            let text = err.to_string();
            assert!(
                text.contains("must not have surrounding whitespace") || text.contains("must be upper case"),
                "{text}"
            );
        }
    }

    #[test]
    fn cl_2_inner_whitespace_wrong_length_and_non_ascii_are_refused() {
        assert_eq!(parse("131052 -308T"), Err(IdentityCodeError::WrongLength));
        assert_eq!(parse("131052-308"), Err(IdentityCodeError::WrongLength));
        assert_eq!(parse(""), Err(IdentityCodeError::WrongLength));
        assert_eq!(parse("131052-308TT"), Err(IdentityCodeError::WrongLength));
        assert_eq!(parse("131052-30ä"), Err(IdentityCodeError::WrongLength));
        assert_eq!(parse("13105a-308T"), Err(IdentityCodeError::DateNotDigits));
        assert_eq!(parse("131052-3a8T"), Err(IdentityCodeError::IndividualNumberNotDigits));
    }

    #[test]
    fn cl_2_debug_and_display_are_masked() {
        let code = parse("131052-308T").unwrap();
        assert_eq!(format!("{code}"), "131052-****");
        assert_eq!(format!("{code:?}"), "PersonalIdentityCode(131052-****)");
        assert!(!format!("{:?}", Some(&code)).contains("308T"));
    }

    #[test]
    fn cl_2_error_messages_never_contain_the_code() {
        for bad in [
            "131052-308U",
            "290223A123X",
            "131052-000A",
            "010594Y9032",
            "131052-308t",
            "131052y308T",
        ] {
            let err = parse(bad).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains(&bad[7..]), "{text}");
            assert!(!text.contains(&bad[..6]), "{text}");
        }
    }

    #[test]
    fn cl_2_serde_validates() {
        let ok: PersonalIdentityCode = serde_json::from_str("\"131052-308T\"").unwrap();
        assert_eq!(ok.reveal(), "131052-308T");
        let err = serde_json::from_str::<PersonalIdentityCode>("\"131052-308U\"").unwrap_err();
        assert!(err.to_string().contains("check character"), "{err}");
        assert!(!err.to_string().contains("131052"), "{err}");
        assert!(serde_json::from_str::<PersonalIdentityCode>("\"010594Y9032\"").is_err());
        assert!(serde_json::from_str::<PersonalIdentityCode>("131052").is_err());
    }
}
