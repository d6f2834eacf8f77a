//! The forms of an e-mail address and a phone number that the registers accept, written once so
//! the register's check and the pattern the API document publishes cannot drift apart (PL-18).

/// An e-mail address: a local part, `@`, and a domain with a dot inside it; no white space or
/// control characters anywhere. At most [`EMAIL_MAX_CHARS`] characters go beside it.
pub const EMAIL_PATTERN: &str = r"^[^@\s\u0000-\u001f\u007f-\u009f]+@[^@\s.\u0000-\u001f\u007f-\u009f][^@\s\u0000-\u001f\u007f-\u009f]*\.[^@\s\u0000-\u001f\u007f-\u009f]*[^@\s.\u0000-\u001f\u007f-\u009f]$";

/// The longest address, in characters (RFC 5321's path limit).
pub const EMAIL_MAX_CHARS: usize = 254;

/// A phone number as people write it: 5-20 digits with `+`, spaces, `-` and parentheses between,
/// at most [`PHONE_MAX_CHARS`] characters in all.
pub const PHONE_PATTERN: &str = r"^[-+ ()]*([0-9][-+ ()]*){5,20}$";

/// The longest phone number, in characters.
pub const PHONE_MAX_CHARS: usize = 40;

/// Whether `email` has the form of [`EMAIL_PATTERN`] and at most [`EMAIL_MAX_CHARS`] characters.
pub fn is_email_address(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.chars().count() <= EMAIL_MAX_CHARS
        && !email.contains(|c: char| c.is_whitespace() || c.is_control())
}

/// Whether `phone` has the form of [`PHONE_PATTERN`] and at most [`PHONE_MAX_CHARS`] characters.
pub fn is_phone_number(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    phone.chars().count() <= PHONE_MAX_CHARS
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'))
        && (5..=20).contains(&digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_18_email_addresses_as_the_pattern_says() {
        for good in ["a@b.c", "maija.meikalainen@example.fi", "x@a..b", "ä@ö.fi"] {
            assert!(is_email_address(good), "{good}");
        }
        for bad in [
            "",
            "@b.c",
            "a@",
            "a@b",
            "a@.b",
            "a@b.",
            "a@b@c.d",
            "a b@c.d",
            "a@b.c\n",
            "a\u{85}@b.c",
            "a@b\u{2003}.c",
        ] {
            assert!(!is_email_address(bad), "{bad:?}");
        }
        assert!(is_email_address(&format!("{}@b.fi", "a".repeat(249))));
        assert!(!is_email_address(&format!("{}@b.fi", "a".repeat(250))));
    }

    /// Strings from an alphabet that has every kind of character the patterns name, some of them
    /// shaped like addresses and numbers, from a fixed-seed generator (the same cases every run).
    fn samples() -> Vec<String> {
        const ALPHABET: &[char] = &[
            'a', 'Z', 'ä', '0', '7', '@', '.', '+', '-', ' ', '(', ')', '\n', '\t', '\u{0}', '\u{1c}', '\u{85}',
            '\u{a0}', '\u{2003}', '\u{feff}', '_', '😀',
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % bound as u64).unwrap()
        };
        let mut out = Vec::new();
        for _ in 0..20_000 {
            let length = next(30);
            let mut text: String = (0..length).map(|_| ALPHABET[next(ALPHABET.len())]).collect();
            match next(3) {
                0 => text = format!("a{text}@b{}.fi", ALPHABET[next(ALPHABET.len())]),
                1 => {
                    const PHONE: &[char] = &['0', '4', '9', ' ', '+', '-', '(', ')', 'x'];
                    text = (0..length).map(|_| PHONE[next(PHONE.len())]).collect();
                }
                _ => {}
            }
            out.push(text);
        }
        out
    }

    #[test]
    fn pl_18_the_published_patterns_say_what_the_checks_do() {
        let email = regex::Regex::new(EMAIL_PATTERN).unwrap();
        let phone = regex::Regex::new(PHONE_PATTERN).unwrap();
        let mut accepted = (0, 0);
        for text in samples() {
            let length = text.chars().count();
            let by_pattern = email.is_match(&text) && length <= EMAIL_MAX_CHARS;
            assert_eq!(is_email_address(&text), by_pattern, "{text:?}");
            accepted.0 += usize::from(by_pattern);
            let by_pattern = phone.is_match(&text) && length <= PHONE_MAX_CHARS;
            assert_eq!(is_phone_number(&text), by_pattern, "{text:?}");
            accepted.1 += usize::from(by_pattern);
        }
        // The samples reach both sides of both checks.
        assert!(accepted.0 > 100 && accepted.1 > 10, "{accepted:?}");
    }

    #[test]
    fn pl_18_phone_numbers_as_the_pattern_says() {
        for good in ["+358 40 123 4567", "(09) 123-45", "12345", &"1".repeat(20)] {
            assert!(is_phone_number(good), "{good}");
        }
        for bad in [
            "",
            "1234",
            &"1".repeat(21),
            &format!("12345{}", " ".repeat(36)),
            "+358 40 123 4567 x",
            "040\t1234567",
            "٠١٢٣٤٥",
        ] {
            assert!(!is_phone_number(bad), "{bad:?}");
        }
    }
}
