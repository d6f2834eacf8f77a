//! Ed25519 signatures over audit chain checkpoints (AU-5): even someone who can rewrite the
//! database and recompute every hash cannot sign the new heads without the key, which lives in
//! the key file, never in the database.

use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

/// Signs checkpoints; holds the private key.
pub struct CheckpointSigner {
    key_id: String,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    pub(crate) fn from_seed(key_id: &str, seed: &[u8; 32]) -> Option<Self> {
        Ed25519KeyPair::from_seed_unchecked(seed).ok().map(|pair| Self {
            key_id: key_id.to_owned(),
            pair,
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }
}

/// Checks an Ed25519 signature against a public key.
pub fn verify_signature(public_key: &[u8], message: &[u8], signature_bytes: &[u8]) -> bool {
    UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(message, signature_bytes)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::{from_hex, to_hex};

    /// RFC 8032 §7.1, test 2 (one-byte message 0x72).
    #[test]
    fn ed25519_rfc8032_known_answer() {
        let seed: [u8; 32] = from_hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
            .try_into()
            .unwrap();
        let signer = CheckpointSigner::from_seed("a1", &seed).unwrap();
        assert_eq!(
            to_hex(&signer.public_key()),
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
        );
        let sig = signer.sign(&[0x72]);
        assert_eq!(
            to_hex(&sig),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
        assert!(verify_signature(&signer.public_key(), &[0x72], &sig));
        assert!(!verify_signature(&signer.public_key(), &[0x73], &sig));
    }
}
