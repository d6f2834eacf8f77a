//! Field encryption (PL-6): AES-256-GCM with a random 96-bit nonce per value and the key id in
//! the ciphertext, so old keys stay readable while a rotation re-encrypts.
//!
//! The associated data binds a value to its table, column and row id: a ciphertext copied into
//! another row or column fails to decrypt instead of silently showing one person's data as
//! another's.
//!
//! Layout: `0x01 | key id length (1 byte) | key id | nonce (12) | ciphertext | tag (16)`.

use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};

use crate::token::random_bytes;
use crate::{CryptoError, Keyring};

const FORMAT_VERSION: u8 = 1;
const TAG_LEN: usize = 16;

/// Where an encrypted value lives.
#[derive(Debug, Clone, Copy)]
pub struct FieldContext<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row_id: &'a str,
}

impl<'a> FieldContext<'a> {
    pub fn new(table: &'a str, column: &'a str, row_id: &'a str) -> Self {
        Self { table, column, row_id }
    }

    fn associated_data(&self, key_id: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.row_id.len());
        out.extend_from_slice(b"rekisteri/field/v1");
        for part in [key_id, self.table, self.column, self.row_id] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

#[derive(Clone, Copy)]
pub struct FieldCipher<'k> {
    keyring: &'k Keyring,
}

impl<'k> FieldCipher<'k> {
    pub fn new(keyring: &'k Keyring) -> Self {
        Self { keyring }
    }

    /// Encrypts with the active data key.
    pub fn encrypt(&self, context: &FieldContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        self.keyring
            .with_active_key(|key_id, key| seal(key, key_id.as_str(), nonce, context, plaintext))
            .ok_or_else(|| CryptoError::UnknownKey(self.keyring.active_key_id().to_string()))?
    }

    /// Encrypts with a named data key (key checks; re-encryption during a rotation).
    pub fn encrypt_with(
        &self,
        key_id: &crate::KeyId,
        context: &FieldContext<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        self.keyring
            .with_data_key(key_id.as_str(), |key| {
                seal(key, key_id.as_str(), nonce, context, plaintext)
            })
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_string()))?
    }

    pub fn decrypt(&self, context: &FieldContext<'_>, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (key_id, rest) = split_key_id(ciphertext)?;
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::MalformedCiphertext);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::MalformedCiphertext)?;
        let mut buffer = sealed.to_vec();
        let len = self
            .keyring
            .with_data_key(key_id, |key| {
                key.open_in_place(nonce, Aad::from(context.associated_data(key_id)), &mut buffer)
                    .map(|plain| plain.len())
            })
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?
            .map_err(|_| CryptoError::DecryptionFailed)?;
        buffer.truncate(len);
        Ok(buffer)
    }

    pub fn encrypt_str(&self, context: &FieldContext<'_>, plaintext: &str) -> Result<Vec<u8>, CryptoError> {
        self.encrypt(context, plaintext.as_bytes())
    }

    pub fn decrypt_string(&self, context: &FieldContext<'_>, ciphertext: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.decrypt(context, ciphertext)?).map_err(|_| CryptoError::DecryptionFailed)
    }

    /// Re-encrypts a value under the active key (key rotation), without the plaintext leaving
    /// this crate; `None` when it already is under the active key.
    pub fn reseal(&self, context: &FieldContext<'_>, ciphertext: &[u8]) -> Result<Option<Vec<u8>>, CryptoError> {
        if Self::key_id_of(ciphertext)? == self.keyring.active_key_id().as_str() {
            return Ok(None);
        }
        let plain = Secret(self.decrypt(context, ciphertext)?);
        self.encrypt(context, &plain.0).map(Some)
    }

    /// Re-encrypts a value under the active key as [`Self::reseal`] does (`None` when already
    /// there) and computes the blind index of what `indexed` derives from its plaintext (the
    /// normalised form the lookups index), under the active blind-index key.
    pub fn reseal_and_index(
        &self,
        context: &FieldContext<'_>,
        ciphertext: &[u8],
        domain: &str,
        indexed: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<Resealed, CryptoError> {
        let plain = Secret(self.decrypt(context, ciphertext)?);
        let index = indexed(&plain.0).map(|value| crate::BlindIndex::new(self.keyring).compute(domain, &value));
        let resealed = if Self::key_id_of(ciphertext)? == self.keyring.active_key_id().as_str() {
            None
        } else {
            Some(self.encrypt(context, &plain.0)?)
        };
        Ok(Resealed { value: resealed, index })
    }

    /// The key a ciphertext was made with: key rotation re-encrypts values whose key is not
    /// the active one.
    pub fn key_id_of(ciphertext: &[u8]) -> Result<&str, CryptoError> {
        split_key_id(ciphertext).map(|(id, _)| id)
    }
}

/// What [`FieldCipher::reseal_and_index`] made of one value.
#[derive(Debug)]
pub struct Resealed {
    /// The value under the active key; `None` when it already was.
    pub value: Option<Vec<u8>>,
    /// Its blind index under the active blind-index key; `None` when nothing is indexed.
    pub index: Option<[u8; 32]>,
}

/// Plaintext on its way from one key to another, wiped when dropped.
struct Secret(Vec<u8>);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&self.0);
    }
}

fn split_key_id(ciphertext: &[u8]) -> Result<(&str, &[u8]), CryptoError> {
    match ciphertext {
        [FORMAT_VERSION, len, rest @ ..] if rest.len() >= usize::from(*len) => {
            let (id, rest) = rest.split_at(usize::from(*len));
            let id = std::str::from_utf8(id).map_err(|_| CryptoError::MalformedCiphertext)?;
            Ok((id, rest))
        }
        _ => Err(CryptoError::MalformedCiphertext),
    }
}

fn seal(
    key: &LessSafeKey,
    key_id: &str,
    nonce: [u8; NONCE_LEN],
    context: &FieldContext<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let id_len = u8::try_from(key_id.len()).map_err(|_| CryptoError::MalformedCiphertext)?;
    let mut out = Vec::with_capacity(2 + key_id.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(FORMAT_VERSION);
    out.push(id_len);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(context.associated_data(key_id)),
        &mut body,
    )
    .map_err(|_| CryptoError::DecryptionFailed)?;
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::{from_hex, to_hex};
    use ring::aead::{AES_256_GCM, UnboundKey};

    fn keyring() -> Keyring {
        Keyring::from_toml(&Keyring::generate_toml().unwrap()).unwrap()
    }

    /// AES-256-GCM test cases 13, 14 and 16 of McGrew & Viega, "The Galois/Counter Mode of
    /// Operation", the vectors NIST's GCM specification refers to.
    #[test]
    fn pl_6_aes_256_gcm_known_answers() {
        let cases = [
            (
                "0000000000000000000000000000000000000000000000000000000000000000",
                "000000000000000000000000",
                "",
                "",
                "",
                "530f8afbc74536b9a963b4f1c4cb738b",
            ),
            (
                "0000000000000000000000000000000000000000000000000000000000000000",
                "000000000000000000000000",
                "00000000000000000000000000000000",
                "",
                "cea7403d4d606b6e074ec5d3baf39d18",
                "d0d1c8a799996bf0265b98b5d48ab919",
            ),
            (
                "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
                "cafebabefacedbaddecaf888",
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
                "feedfacedeadbeeffeedfacedeadbeefabaddad2",
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
                "76fc6ece0f4e1768cddf8853bb2d551b",
            ),
        ];
        for (key, iv, plain, aad, cipher, tag) in cases {
            let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &from_hex(key)).unwrap());
            let nonce = Nonce::try_assume_unique_for_key(&from_hex(iv)).unwrap();
            let mut buffer = from_hex(plain);
            key.seal_in_place_append_tag(nonce, Aad::from(from_hex(aad)), &mut buffer)
                .unwrap();
            assert_eq!(to_hex(&buffer), format!("{cipher}{tag}"));
            let nonce = Nonce::try_assume_unique_for_key(&from_hex(iv)).unwrap();
            let opened = key.open_in_place(nonce, Aad::from(from_hex(aad)), &mut buffer).unwrap();
            assert_eq!(to_hex(opened), plain);
        }
    }

    #[test]
    fn pl_6_field_round_trip_with_key_id_and_random_nonce() {
        let ring = keyring();
        let cipher = FieldCipher::new(&ring);
        let context = FieldContext::new("clients", "identity_code", "0b6f1c1e-0000-4000-8000-000000000001");
        let a = cipher.encrypt_str(&context, "131052-308T").unwrap();
        let b = cipher.encrypt_str(&context, "131052-308T").unwrap();
        assert_ne!(a, b, "a random nonce per value");
        assert_eq!(FieldCipher::key_id_of(&a).unwrap(), "k1");
        assert_eq!(cipher.decrypt_string(&context, &a).unwrap(), "131052-308T");
        assert!(!a.windows(11).any(|w| w == b"131052-308T"));
    }

    #[test]
    fn pl_6_ciphertext_moved_to_another_row_or_column_fails() {
        let ring = keyring();
        let cipher = FieldCipher::new(&ring);
        let original = FieldContext::new("clients", "identity_code", "row-1");
        let sealed = cipher.encrypt_str(&original, "131052-308T").unwrap();
        let other_row = FieldContext::new("clients", "identity_code", "row-2");
        let other_column = FieldContext::new("clients", "surname", "row-1");
        let other_table = FieldContext::new("proxies", "identity_code", "row-1");
        for context in [other_row, other_column, other_table] {
            assert!(matches!(
                cipher.decrypt(&context, &sealed),
                Err(CryptoError::DecryptionFailed)
            ));
        }
    }

    #[test]
    fn pl_6_tampering_and_unknown_keys_are_detected() {
        let ring = keyring();
        let cipher = FieldCipher::new(&ring);
        let context = FieldContext::new("clients", "surname", "row-1");
        let mut sealed = cipher.encrypt_str(&context, "Virtanen").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(
            cipher.decrypt(&context, &sealed),
            Err(CryptoError::DecryptionFailed)
        ));
        assert!(matches!(
            cipher.decrypt(&context, &[1, 2, b'k']),
            Err(CryptoError::MalformedCiphertext)
        ));
        assert!(matches!(
            cipher.decrypt(&context, &[]),
            Err(CryptoError::MalformedCiphertext)
        ));
        let foreign = FieldCipher::new(&keyring()).encrypt_str(&context, "Virtanen").unwrap();
        assert!(matches!(
            cipher.decrypt(&context, &foreign),
            Err(CryptoError::DecryptionFailed)
        ));
        let mut renamed = foreign.clone();
        renamed[2] = b'x';
        assert!(matches!(cipher.decrypt(&context, &renamed), Err(CryptoError::UnknownKey(id)) if id == "x1"));
    }

    #[test]
    fn pl_6_reseal_moves_a_value_to_the_active_key_in_its_context() {
        let (text, ids) = Keyring::add_rotation_keys(&Keyring::generate_toml().unwrap()).unwrap();
        let ring = Keyring::from_toml(&text).unwrap();
        let cipher = FieldCipher::new(&ring);
        let context = FieldContext::new("clients", "identity_code", "row-1");
        let old = cipher
            .encrypt_with(&crate::KeyId::new("k1").unwrap(), &context, b"131052-308T")
            .unwrap();
        let moved = cipher.reseal(&context, &old).unwrap().unwrap();
        assert_eq!(FieldCipher::key_id_of(&moved).unwrap(), ids.data.as_str());
        assert_eq!(cipher.decrypt(&context, &moved).unwrap(), b"131052-308T");
        assert!(cipher.reseal(&context, &moved).unwrap().is_none());
        let other_row = FieldContext::new("clients", "identity_code", "row-2");
        assert!(cipher.reseal(&other_row, &old).is_err());
        let resealed = cipher
            .reseal_and_index(&context, &old, "data_subject", |plain| Some(plain.to_vec()))
            .unwrap();
        assert!(resealed.value.is_some());
        assert_eq!(
            resealed.index,
            Some(crate::BlindIndex::new(&ring).compute("data_subject", b"131052-308T"))
        );
    }
}
