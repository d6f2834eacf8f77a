/// Why a recording operation failed. Messages name the failure only: never audio bytes, keys or
/// anything about the people in a call. Object keys may appear in `Storage` messages, so callers
/// must choose keys that say nothing about a person (a random id, say).
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The body exceeds the configured size limit (the API answers 413).
    #[error("the recording exceeds the size limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The first bytes are not WAV, Ogg/Opus or MP3.
    #[error("the body is not WAV, Ogg/Opus or MP3 audio")]
    UnsupportedAudio,
    /// An object already exists under the key: recordings are never replaced (CA-3).
    #[error("a recording is already stored under this key")]
    AlreadyExists,
    /// The stored object is not what was written: altered, truncated, moved from another
    /// recording, or read with the wrong data key or size.
    #[error("the stored recording failed its integrity check")]
    Integrity,
    #[error("no recording is stored under this key")]
    NotFound,
    /// A plaintext range outside the recording, or reversed.
    #[error("the requested byte range is not inside the recording")]
    InvalidRange,
    /// An object key that could escape the storage root or clash with temporary files.
    #[error("the object key is not valid")]
    InvalidKey,
    /// The client's upload stream failed.
    #[error("the upload stream failed: {0}")]
    Body(String),
    #[error("storage failed: {0}")]
    Storage(String),
    /// Sealing or opening a data key, or the random number generator, failed.
    #[error("a cryptographic operation failed")]
    Crypto,
}

pub type Result<T, E = RecordingError> = std::result::Result<T, E>;

impl From<std::io::Error> for RecordingError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => Self::NotFound,
            std::io::ErrorKind::AlreadyExists => Self::AlreadyExists,
            // Paths are not in io::Error's message: only the kind and the OS text.
            _ => Self::Storage(e.to_string()),
        }
    }
}

impl From<rekisteri_crypto::CryptoError> for RecordingError {
    fn from(_: rekisteri_crypto::CryptoError) -> Self {
        Self::Crypto
    }
}
