//! Password hashes: PBKDF2-HMAC-SHA256 with the parameters stored in a PHC-style string,
//! `$pbkdf2-sha256$i=600000,l=32$<salt>$<hash>` (salt and hash in unpadded standard base64), so
//! the iteration count can grow without invalidating stored hashes.

use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ring::pbkdf2;

use crate::token::random_bytes;

/// OWASP's recommendation for PBKDF2-HMAC-SHA256 (2023).
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;
const HASH_LEN: usize = 32;
const MAX_ITERATIONS: u32 = 10_000_000;

#[derive(Debug, thiserror::Error)]
pub enum PasswordHashError {
    #[error("the stored password hash is not in the expected format")]
    Malformed,
    #[error("the random number generator failed")]
    Random,
}

pub fn hash_password(password: &str, iterations: NonZeroU32) -> Result<String, PasswordHashError> {
    let salt = random_bytes::<16>().map_err(|_| PasswordHashError::Random)?;
    let mut hash = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut hash,
    );
    Ok(format!(
        "$pbkdf2-sha256$i={iterations},l={HASH_LEN}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    ))
}

/// Checks a password against a stored hash in constant time (ring's `verify`).
pub fn verify_password(password: &str, stored: &str) -> Result<bool, PasswordHashError> {
    let parsed = parse(stored)?;
    Ok(pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        parsed.iterations,
        &parsed.salt,
        password.as_bytes(),
        &parsed.hash,
    )
    .is_ok())
}

struct Parsed {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

fn parse(stored: &str) -> Result<Parsed, PasswordHashError> {
    let mut parts = stored.split('$');
    let (Some(""), Some("pbkdf2-sha256"), Some(params), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(PasswordHashError::Malformed);
    };
    let mut iterations = None;
    let mut length = None;
    for param in params.split(',') {
        match param.split_once('=') {
            Some(("i", v)) => iterations = v.parse::<u32>().ok(),
            Some(("l", v)) => length = v.parse::<usize>().ok(),
            _ => return Err(PasswordHashError::Malformed),
        }
    }
    let iterations = iterations
        .filter(|i| *i <= MAX_ITERATIONS)
        .and_then(NonZeroU32::new)
        .ok_or(PasswordHashError::Malformed)?;
    let salt = STANDARD_NO_PAD.decode(salt).map_err(|_| PasswordHashError::Malformed)?;
    let hash = STANDARD_NO_PAD.decode(hash).map_err(|_| PasswordHashError::Malformed)?;
    if salt.len() < 8 || hash.is_empty() || length.is_some_and(|l| l != hash.len()) {
        return Err(PasswordHashError::Malformed);
    }
    Ok(Parsed { iterations, salt, hash })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::to_hex;

    fn derive(password: &[u8], salt: &[u8], iterations: u32, len: usize) -> String {
        let mut out = vec![0u8; len];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(iterations).unwrap(),
            salt,
            password,
            &mut out,
        );
        to_hex(&out)
    }

    /// Published PBKDF2-HMAC-SHA256 vectors: RFC 7914 §11 and the widely reproduced
    /// "password"/"salt" set (the RFC 6070 inputs with SHA-256).
    #[test]
    fn pl_6_pbkdf2_hmac_sha256_known_answers() {
        assert_eq!(
            derive(b"passwd", b"salt", 1, 64),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        );
        assert_eq!(
            derive(b"password", b"salt", 1, 32),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            derive(b"password", b"salt", 2, 32),
            "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"
        );
        assert_eq!(
            derive(b"password", b"salt", 4096, 32),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
        assert_eq!(
            derive(
                b"passwordPASSWORDpassword",
                b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
                4096,
                40
            ),
            "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9"
        );
    }

    #[test]
    fn password_hash_round_trip_in_phc_format() {
        let stored = hash_password("correct horse battery", NonZeroU32::new(1_000).unwrap()).unwrap();
        assert!(stored.starts_with("$pbkdf2-sha256$i=1000,l=32$"), "{stored}");
        assert!(verify_password("correct horse battery", &stored).unwrap());
        assert!(!verify_password("correct horse batterz", &stored).unwrap());
        let again = hash_password("correct horse battery", NonZeroU32::new(1_000).unwrap()).unwrap();
        assert_ne!(stored, again, "a random salt per hash");
    }

    #[test]
    fn default_parameters_are_stored_with_the_hash() {
        let stored = hash_password("x", NonZeroU32::new(DEFAULT_PBKDF2_ITERATIONS).unwrap()).unwrap();
        assert!(stored.starts_with("$pbkdf2-sha256$i=600000,l=32$"));
        assert!(verify_password("x", &stored).unwrap());
    }

    #[test]
    fn malformed_hashes_are_errors_not_mismatches() {
        for bad in [
            "",
            "$pbkdf2-sha256$i=1000$AAAA$AAAA",
            "$argon2id$v=19$m=1,t=1,p=1$AAAAAAAAAAA$AAAA",
            "$pbkdf2-sha256$i=0,l=32$AAAAAAAAAAAAAAAAAAAAAA$AAAA",
            "$pbkdf2-sha256$i=1000,l=32$AAAAAAAAAAAAAAAAAAAAAA$AAAA",
        ] {
            assert!(
                matches!(verify_password("x", bad), Err(PasswordHashError::Malformed)),
                "{bad}"
            );
        }
    }
}
