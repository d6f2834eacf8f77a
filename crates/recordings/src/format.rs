//! The encrypted object format: header, chunk arithmetic, per-chunk AEAD and the data key.
//! The layout and the reasons for it are described at the top of `lib.rs`.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use rekisteri_crypto::{FieldCipher, FieldContext, Keyring};

use crate::error::{RecordingError, Result};

const MAGIC: [u8; 4] = *b"RKRA";
const VERSION: u8 = 1;
pub(crate) const HEADER_LEN: u64 = 16;
pub(crate) const TAG_LEN: u64 = 16;
/// The plaintext size of every chunk but the last.
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
const MIN_CHUNK_SIZE: u32 = 1024;
const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
const AAD_LABEL: &[u8] = b"rekisteri/recording/v1";

/// The fixed-size header at the start of every object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) chunk_size: u32,
}

impl Header {
    pub(crate) fn new(chunk_size: u32) -> Result<Self> {
        if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            Ok(Self { chunk_size })
        } else {
            Err(RecordingError::Storage(format!(
                "the chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes"
            )))
        }
    }

    pub(crate) fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut out = [0u8; HEADER_LEN as usize];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[8..12].copy_from_slice(&self.chunk_size.to_be_bytes());
        out
    }

    /// Anything but a header this version wrote is an integrity failure: the object was altered
    /// or is not a recording.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let [m0, m1, m2, m3, version, r0, r1, r2, c0, c1, c2, c3, r3, r4, r5, r6] = *bytes else {
            return Err(RecordingError::Integrity);
        };
        if [m0, m1, m2, m3] != MAGIC || version != VERSION || [r0, r1, r2, r3, r4, r5, r6] != [0; 7] {
            return Err(RecordingError::Integrity);
        }
        Self::new(u32::from_be_bytes([c0, c1, c2, c3])).map_err(|_| RecordingError::Integrity)
    }

    fn chunk(&self) -> u64 {
        u64::from(self.chunk_size)
    }

    /// How many chunks a plaintext of `size` bytes has: an empty one still has its final chunk,
    /// so that truncating an object to its header is detected.
    pub(crate) fn chunk_count(&self, size: u64) -> u64 {
        size.div_ceil(self.chunk()).max(1)
    }

    /// Where chunk `index` starts in the object.
    pub(crate) fn chunk_offset(&self, index: u64) -> u64 {
        HEADER_LEN.saturating_add(index.saturating_mul(self.chunk() + TAG_LEN))
    }

    /// The plaintext length of chunk `index` of a plaintext of `size` bytes.
    pub(crate) fn chunk_plain_len(&self, index: u64, size: u64) -> u64 {
        size.saturating_sub(index.saturating_mul(self.chunk()))
            .min(self.chunk())
    }

    /// The object size of a plaintext of `size` bytes.
    pub(crate) fn object_len(&self, size: u64) -> u64 {
        HEADER_LEN
            .saturating_add(self.chunk_count(size).saturating_mul(TAG_LEN))
            .saturating_add(size)
    }
}

/// A recording's own AES-256 key. Generated per recording, stored only sealed under the platform
/// key (the caller keeps the sealed bytes in the recording's metadata row).
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh key from the system random number generator.
    pub fn generate() -> Result<Self> {
        Ok(Self(rekisteri_crypto::random_bytes::<32>()?))
    }

    /// The key encrypted under the keyring's active key, bound to the recording: sealed bytes
    /// copied to another recording's row do not open.
    pub fn seal(&self, keyring: &Keyring, recording_id: &str) -> Result<Vec<u8>> {
        Ok(FieldCipher::new(keyring).encrypt(&Self::context(recording_id), &self.0)?)
    }

    /// Opens what [`DataKey::seal`] made for the same recording.
    #[allow(
        clippy::disallowed_methods,
        reason = "this opens a recording's key, not personal data; every listening is logged where the audio is served (CA-6)"
    )]
    pub fn open(keyring: &Keyring, recording_id: &str, sealed: &[u8]) -> Result<Self> {
        let plain = FieldCipher::new(keyring)
            .decrypt(&Self::context(recording_id), sealed)
            .map_err(|_| RecordingError::Crypto)?;
        let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| RecordingError::Crypto)?;
        Ok(Self(bytes))
    }

    fn context(recording_id: &str) -> FieldContext<'_> {
        FieldContext::new("recordings", "data_key", recording_id)
    }
}

/// AES-256-GCM over the chunks of one recording.
pub(crate) struct ChunkCipher {
    key: LessSafeKey,
    aad_prefix: Vec<u8>,
}

impl ChunkCipher {
    pub(crate) fn new(data_key: &DataKey, recording_id: &str, header: &Header) -> Result<Self> {
        let key = UnboundKey::new(&AES_256_GCM, &data_key.0).map_err(|_| RecordingError::Crypto)?;
        let id_len = u32::try_from(recording_id.len()).map_err(|_| RecordingError::Crypto)?;
        let mut aad_prefix = Vec::with_capacity(AAD_LABEL.len() + 24 + recording_id.len());
        aad_prefix.extend_from_slice(AAD_LABEL);
        aad_prefix.extend_from_slice(&header.encode());
        aad_prefix.extend_from_slice(&id_len.to_be_bytes());
        aad_prefix.extend_from_slice(recording_id.as_bytes());
        Ok(Self {
            key: LessSafeKey::new(key),
            aad_prefix,
        })
    }

    fn aad(&self, index: u64, last: bool) -> Vec<u8> {
        let mut aad = Vec::with_capacity(self.aad_prefix.len() + 9);
        aad.extend_from_slice(&self.aad_prefix);
        aad.extend_from_slice(&index.to_be_bytes());
        aad.push(u8::from(last));
        aad
    }

    /// The chunk index as the nonce: unique because each key encrypts one recording, once.
    fn nonce(index: u64) -> Nonce {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[NONCE_LEN - 8..].copy_from_slice(&index.to_be_bytes());
        Nonce::assume_unique_for_key(nonce)
    }

    /// Encrypts `chunk` in place and appends its tag.
    pub(crate) fn seal(&self, index: u64, last: bool, chunk: &mut Vec<u8>) -> Result<()> {
        self.key
            .seal_in_place_append_tag(Self::nonce(index), Aad::from(self.aad(index, last)), chunk)
            .map_err(|_| RecordingError::Crypto)
    }

    /// Decrypts a sealed chunk in place; returns its plaintext.
    pub(crate) fn open<'a>(&self, index: u64, last: bool, sealed: &'a mut [u8]) -> Result<&'a mut [u8]> {
        self.key
            .open_in_place(Self::nonce(index), Aad::from(self.aad(index, last)), sealed)
            .map_err(|_| RecordingError::Integrity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(id: &str, key: &DataKey) -> ChunkCipher {
        ChunkCipher::new(key, id, &Header::new(DEFAULT_CHUNK_SIZE).unwrap()).unwrap()
    }

    #[test]
    fn header_round_trips_and_rejects_tampering() {
        let header = Header::new(DEFAULT_CHUNK_SIZE).unwrap();
        let bytes = header.encode();
        assert_eq!(Header::decode(&bytes).unwrap(), header);
        // The chunk size bytes (8..12) may decode to another valid size: the header is in every
        // chunk's associated data, so such a change fails at the first chunk instead.
        for i in (0..8).chain(12..16) {
            let mut bad = bytes;
            bad[i] ^= 0x01;
            assert!(Header::decode(&bad).is_err(), "byte {i}");
        }
        assert!(Header::decode(&bytes[..15]).is_err());
    }

    #[test]
    fn offsets_follow_the_chunk_size() {
        let h = Header::new(1024).unwrap();
        assert_eq!(h.chunk_count(0), 1);
        assert_eq!(h.chunk_count(1024), 1);
        assert_eq!(h.chunk_count(1025), 2);
        assert_eq!(h.chunk_offset(0), 16);
        assert_eq!(h.chunk_offset(2), 16 + 2 * 1040);
        assert_eq!(h.chunk_plain_len(1, 1500), 476);
        assert_eq!(h.object_len(1500), 16 + 2 * 16 + 1500);
        assert_eq!(h.object_len(0), 32);
    }

    #[test]
    fn chunks_are_bound_to_index_finality_and_recording() {
        let key = DataKey::generate().unwrap();
        let a = cipher("rec-a", &key);
        let mut sealed = b"some audio".to_vec();
        a.seal(3, false, &mut sealed).unwrap();
        assert_eq!(a.open(3, false, &mut sealed.clone()).unwrap(), b"some audio");
        assert!(
            a.open(4, false, &mut sealed.clone()).is_err(),
            "moved within the recording"
        );
        assert!(a.open(3, true, &mut sealed.clone()).is_err(), "claimed to be final");
        assert!(
            cipher("rec-b", &key).open(3, false, &mut sealed.clone()).is_err(),
            "other recording"
        );
        let other_key = DataKey::generate().unwrap();
        assert!(
            cipher("rec-a", &other_key).open(3, false, &mut sealed).is_err(),
            "other key"
        );
    }

    #[test]
    fn data_key_seals_under_the_keyring_for_one_recording() {
        let keyring = Keyring::from_toml(&Keyring::generate_toml().unwrap()).unwrap();
        let key = DataKey::generate().unwrap();
        let sealed = key.seal(&keyring, "rec-1").unwrap();
        assert_eq!(DataKey::open(&keyring, "rec-1", &sealed).unwrap().0, key.0);
        assert!(matches!(
            DataKey::open(&keyring, "rec-2", &sealed),
            Err(RecordingError::Crypto)
        ));
        assert_eq!(format!("{key:?}"), "DataKey(..)");
    }
}
