//! Blind indexes: a keyed HMAC-SHA256 of a normalised value, so an equality lookup needs no
//! plaintext in the database and a stolen database cannot be brute-forced without the key.

use ring::hmac;

use crate::Keyring;

/// Computes blind indexes with the keyring's blind-index keys (never a data key).
#[derive(Clone, Copy)]
pub struct BlindIndex<'k> {
    keyring: &'k Keyring,
}

fn index_with(key: &hmac::Key, domain: &str, value: &[u8]) -> [u8; 32] {
    let mut context = hmac::Context::with_key(key);
    context.update(&(domain.len() as u32).to_be_bytes());
    context.update(domain.as_bytes());
    context.update(value);
    let mut out = [0u8; 32];
    out.copy_from_slice(context.sign().as_ref());
    out
}

impl<'k> BlindIndex<'k> {
    pub fn new(keyring: &'k Keyring) -> Self {
        Self { keyring }
    }

    /// The index of `value` in `domain` (e.g. `"identity_code"`) under the active blind-index
    /// key: what is stored with a value written now. Different domains give unrelated indexes
    /// for the same value, so a phone number never matches an identity code.
    pub fn compute(&self, domain: &str, value: &[u8]) -> [u8; 32] {
        self.keyring.with_blind_key(|key| index_with(key, domain, value))
    }

    /// The index of `value` under every blind-index key held, the active one first: what a
    /// lookup must match while a key rotation re-indexes (a row may still hold the old index).
    /// One element when one key is held.
    pub fn candidates(&self, domain: &str, value: &[u8]) -> Vec<[u8; 32]> {
        self.keyring.with_blind_keys(|_, key| index_with(key, domain, value))
    }

    /// The index under the named key, if held (key checks).
    pub fn compute_with(&self, key_id: &crate::KeyId, domain: &str, value: &[u8]) -> Option<[u8; 32]> {
        self.keyring
            .with_blind_keys(|id, key| (id == key_id).then(|| index_with(key, domain, value)))
            .into_iter()
            .flatten()
            .next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::{from_hex, to_hex};

    /// RFC 4231 test cases 1, 2 and 6 for HMAC-SHA256, through ring as this module uses it.
    #[test]
    fn pl_6_hmac_sha256_rfc4231_known_answers() {
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, expected) in cases {
            let key = hmac::Key::new(hmac::HMAC_SHA256, key);
            assert_eq!(to_hex(hmac::sign(&key, data).as_ref()), expected);
        }
        assert_eq!(from_hex("0b0b").as_slice(), &[0x0b, 0x0b]);
    }

    #[test]
    fn pl_6_blind_index_is_keyed_and_domain_separated() {
        let a = Keyring::from_toml(&Keyring::generate_toml().unwrap()).unwrap();
        let b = Keyring::from_toml(&Keyring::generate_toml().unwrap()).unwrap();
        let code = b"131052-308T";
        let index = BlindIndex::new(&a);
        assert_eq!(
            index.compute("identity_code", code),
            index.compute("identity_code", code)
        );
        assert_ne!(index.compute("identity_code", code), index.compute("phone", code));
        assert_ne!(
            index.compute("identity_code", code),
            BlindIndex::new(&b).compute("identity_code", code)
        );
    }
}
