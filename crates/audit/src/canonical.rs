//! The canonical encoding an entry's hash covers. It is deliberately simple so that a short
//! script outside the platform can reproduce it from an export (`tools/verify-audit-export.py`):
//!
//! - the log name (`usage`, `disclosure`, `security`), then every field in the documented order
//!   of `docs/audit.md`, each as text: numbers in decimal, times as
//!   `YYYY-MM-DDTHH:MM:SS.ffffffZ`, binary values as lower-case hex;
//! - each field is `0x00` when null, else `0x01`, its UTF-8 length as 4 bytes big-endian, and
//!   the bytes.
//!
//! The entry's hash is `SHA-256("rekisteri/audit-chain/v1\0" || previous hash || encoding)`.

use time::PrimitiveDateTime;

/// Accumulates the canonical encoding of one entry.
#[derive(Default)]
pub struct Canonical {
    bytes: Vec<u8>,
}

impl Canonical {
    pub fn new(log: &str) -> Self {
        let mut canonical = Self {
            bytes: Vec::with_capacity(512),
        };
        canonical.text(Some(log));
        canonical
    }

    pub fn text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            None => self.bytes.push(0),
            Some(text) => {
                self.bytes.push(1);
                self.bytes.extend_from_slice(&(text.len() as u32).to_be_bytes());
                self.bytes.extend_from_slice(text.as_bytes());
            }
        }
        self
    }

    pub fn number(&mut self, value: i64) -> &mut Self {
        self.text(Some(&value.to_string()))
    }

    pub fn time(&mut self, value: PrimitiveDateTime) -> &mut Self {
        self.text(Some(&format_time(value)))
    }

    pub fn binary(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            None => self.text(None),
            Some(bytes) => self.text(Some(&rekisteri_crypto::to_hex(bytes))),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// UTC with exactly six fraction digits: the form both databases round-trip.
pub fn format_time(value: PrimitiveDateTime) -> String {
    let (year, month, day) = (value.year(), u8::from(value.month()), value.day());
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        value.hour(),
        value.minute(),
        value.second(),
        value.microsecond()
    )
}

/// The canonical bytes of a stored entry (re-exported for tools and tests).
pub fn canonical_bytes(row: &crate::writer::StoredEntry) -> Vec<u8> {
    row.canonical()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn fields_are_length_prefixed_and_nulls_marked() {
        let mut c = Canonical::new("usage");
        c.text(None)
            .number(42)
            .time(datetime!(2026-11-25 10:00:00.5))
            .binary(Some(&[0xab, 0x01]));
        let bytes = c.finish();
        let mut expected = vec![1, 0, 0, 0, 5];
        expected.extend_from_slice(b"usage");
        expected.push(0);
        expected.extend_from_slice(&[1, 0, 0, 0, 2]);
        expected.extend_from_slice(b"42");
        expected.extend_from_slice(&[1, 0, 0, 0, 27]);
        expected.extend_from_slice(b"2026-11-25T10:00:00.500000Z");
        expected.extend_from_slice(&[1, 0, 0, 0, 4]);
        expected.extend_from_slice(b"ab01");
        assert_eq!(bytes, expected);
    }
}
