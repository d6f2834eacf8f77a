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

use rekisteri_crypto::ChainHasher;
use time::PrimitiveDateTime;

/// Where an encoding goes: a buffer ([`Canonical::new`]), or straight into the entry's chain
/// hash ([`Canonical::hashing`]), which is how verification avoids building it.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for ChainHasher {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Accumulates the canonical encoding of one entry.
pub struct Canonical<S = Vec<u8>> {
    sink: S,
}

impl Canonical {
    pub fn new(log: &str) -> Self {
        Self::begin(Vec::with_capacity(512), log)
    }

    pub fn finish(self) -> Vec<u8> {
        self.sink
    }
}

impl Canonical<ChainHasher> {
    /// Hashes the encoding as it is written: `finish_hash` returns what
    /// `chain_step(previous, &encoding)` would.
    pub fn hashing(previous: &rekisteri_crypto::ChainHash, log: &str) -> Self {
        Self::begin(ChainHasher::new(previous), log)
    }

    pub fn finish_hash(self) -> rekisteri_crypto::ChainHash {
        self.sink.finish()
    }
}

impl<S: Sink> Canonical<S> {
    fn begin(sink: S, log: &str) -> Self {
        let mut canonical = Self { sink };
        canonical.text(Some(log));
        canonical
    }

    /// A present field: its marker, its length and its bytes.
    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        let mut header = [1u8; 5];
        header[1..].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
        self.sink.put(&header);
        self.sink.put(bytes);
        self
    }

    pub fn text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            None => {
                self.sink.put(&[0]);
                self
            }
            Some(text) => self.field(text.as_bytes()),
        }
    }

    /// In decimal, as `i64::to_string` writes it.
    pub fn number(&mut self, value: i64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = value.unsigned_abs();
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if value < 0 {
            start -= 1;
            digits[start] = b'-';
        }
        self.field(&digits[start..])
    }

    /// As [`format_time`] writes it.
    pub fn time(&mut self, value: PrimitiveDateTime) -> &mut Self {
        match time_bytes(value) {
            Some(bytes) => self.field(&bytes),
            None => self.text(Some(&format_time(value))),
        }
    }

    /// In lower-case hex, as `rekisteri_crypto::to_hex` writes it.
    pub fn binary(&mut self, value: Option<&[u8]>) -> &mut Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let Some(bytes) = value else {
            return self.text(None);
        };
        let mut header = [1u8; 5];
        header[1..].copy_from_slice(&((bytes.len() * 2) as u32).to_be_bytes());
        self.sink.put(&header);
        let mut out = [0u8; 128];
        for chunk in bytes.chunks(out.len() / 2) {
            for (pair, byte) in out.chunks_exact_mut(2).zip(chunk) {
                pair[0] = DIGITS[usize::from(byte >> 4)];
                pair[1] = DIGITS[usize::from(byte & 0x0f)];
            }
            self.sink.put(&out[..chunk.len() * 2]);
        }
        self
    }
}

/// [`format_time`] without an allocation, for the years it writes with four digits.
fn time_bytes(value: PrimitiveDateTime) -> Option<[u8; 27]> {
    let year = u32::try_from(value.year()).ok().filter(|y| *y <= 9999)?;
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |range: std::ops::Range<usize>, mut number: u32| {
        for slot in out[range].iter_mut().rev() {
            *slot = b'0' + (number % 10) as u8;
            number /= 10;
        }
    };
    put(0..4, year);
    put(5..7, u32::from(u8::from(value.month())));
    put(8..10, u32::from(value.day()));
    put(11..13, u32::from(value.hour()));
    put(14..16, u32::from(value.minute()));
    put(17..19, u32::from(value.second()));
    put(20..26, value.microsecond());
    Some(out)
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

    #[test]
    fn numbers_times_and_binaries_are_written_as_the_plain_formatting_would() {
        let plain = |text: &str| {
            let mut c = Canonical::new("x");
            c.text(Some(text));
            c.finish()
        };
        for n in [0, 1, 9, 10, 42, 999_999, i64::MAX, -1, -10, i64::MIN] {
            let mut c = Canonical::new("x");
            c.number(n);
            assert_eq!(c.finish(), plain(&n.to_string()), "{n}");
        }
        for t in [
            datetime!(2026-11-25 10:00:00.5),
            datetime!(2026-01-01 00:00:00),
            datetime!(1999-12-31 23:59:59.999_999_999),
            datetime!(0000-01-01 00:00:00.000_001),
            datetime!(9999-12-31 23:59:59.123_456),
            datetime!(-0001-06-15 12:30:00),
        ] {
            let mut c = Canonical::new("x");
            c.time(t);
            assert_eq!(c.finish(), plain(&format_time(t)), "{t}");
        }
        for len in [0, 1, 32, 63, 64, 65, 200] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let mut c = Canonical::new("x");
            c.binary(Some(&bytes));
            assert_eq!(c.finish(), plain(&rekisteri_crypto::to_hex(&bytes)), "{len}");
        }
    }

    #[test]
    fn hashing_while_encoding_equals_the_chain_step_over_the_encoding() {
        fn encode<S: Sink>(c: &mut Canonical<S>) {
            // Longer than the hasher's buffer, to cross its flushes.
            let long = "ä".repeat(400);
            c.text(Some("usage:r1"))
                .number(7)
                .time(datetime!(2026-11-25 10:00:00.25))
                .binary(Some(&[0xab; 32]))
                .text(None)
                .text(Some(&long))
                .binary(Some(&[0x5a; 200]))
                .binary(None);
        }
        let previous = rekisteri_crypto::chain_step(&rekisteri_crypto::CHAIN_GENESIS, b"x");
        let mut buffered = Canonical::new("usage");
        encode(&mut buffered);
        let mut hashed = Canonical::hashing(&previous, "usage");
        encode(&mut hashed);
        assert_eq!(
            hashed.finish_hash(),
            rekisteri_crypto::chain_step(&previous, &buffered.finish())
        );
    }
}
