//! Encrypted, streamed storage of call-recording audio (CA-3, CA-4, CA-8).
//!
//! The `calls` crate keeps each recording's metadata row (object key, size, SHA-256, audio
//! type, sealed data key) and calls this crate for the audio itself, which lives in a local
//! directory ([`StorageConfig::Local`], the default) or an S3-compatible bucket
//! ([`StorageConfig::S3`]). Nothing here touches the database.
//!
//! # Object format, version 1
//!
//! ```text
//! header (16 bytes):  "RKRA" | version 0x01 | 3 zero bytes | chunk size (u32 BE) | 4 zero bytes
//! chunk 0:            AES-256-GCM(plaintext[0 .. C])      | tag (16)
//! chunk 1:            AES-256-GCM(plaintext[C .. 2C])     | tag (16)
//! ...
//! chunk n-1 (final):  AES-256-GCM(plaintext[(n-1)C .. ]) | tag (16)   (1..=C bytes; 0 only
//!                                                                     for an empty plaintext)
//! ```
//!
//! Every chunk holds `C` plaintext bytes (64 KiB by default) but the final one, so plaintext
//! byte `N` lies in chunk `N / C`, which starts at `16 + (N / C) * (C + 16)`. A player seeking
//! into a long recording (CA-8) costs one or two chunks of reading, not the whole file; and
//! neither writing nor reading ever holds more than a bounded amount in memory.
//!
//! * **Key.** A fresh random 256-bit [`DataKey`] per recording, stored only sealed under the
//!   platform keyring ([`DataKey::seal`]); destroying the sealed key makes any leftover copy of
//!   the object (a backup, an unwiped disk block) unreadable.
//! * **Nonce.** Four zero bytes and the chunk index (u64 BE). A nonce must never repeat under
//!   one key; since each key encrypts exactly one recording, exactly once, the index is unique.
//!   Random nonces would add nothing and cost 12 bytes a chunk.
//! * **Associated data.** `"rekisteri/recording/v1" | header | len(recording id) (u32 BE) |
//!   recording id | chunk index (u64 BE) | final flag (1 byte)`. The index stops chunks being
//!   reordered or duplicated, the recording id stops an object (or a chunk) being passed off as
//!   another recording's, the header stops the chunk size being changed, and the final flag
//!   stops the object being truncated at a chunk boundary or extended: only the true last chunk
//!   authenticates as final, and readers know which chunk that must be from the plaintext size
//!   in the metadata.
//!
//! The SHA-256 of the plaintext, computed while uploading, is returned for the metadata row and
//! rechecked by [`AudioStore::verify`]. The audio type is recognised from the first bytes
//! ([`AudioType`]) before anything is stored.

mod backend;
mod error;
mod format;
mod sniff;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{RecordingError, Result};
pub use format::{DEFAULT_CHUNK_SIZE, DataKey};
pub use sniff::{AudioType, SNIFF_LEN, sniff, wav_header};
pub use store::{AudioStore, DEFAULT_MAX_BYTES, S3Config, StorageConfig, StoredAudio};
