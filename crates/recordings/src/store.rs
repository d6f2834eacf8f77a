//! The store: streaming encryption on the way in, ranged decryption on the way out.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use ring::digest;

use crate::backend::local::LocalDir;
use crate::backend::s3::S3Store;
use crate::backend::{Backend, ObjectWriter};
use crate::error::{RecordingError, Result};
use crate::format::{ChunkCipher, DEFAULT_CHUNK_SIZE, DataKey, HEADER_LEN, Header, TAG_LEN};
use crate::sniff::{AudioType, SNIFF_LEN, sniff};

/// The default size limit: 200 MB, about three hours of 16-bit 8 kHz stereo WAV.
pub const DEFAULT_MAX_BYTES: u64 = 200_000_000;
/// How much ciphertext one read fetches at most, so that a long recording is never in memory.
const FETCH_BYTES: u64 = 1024 * 1024;
const MAX_KEY_LEN: usize = 512;

/// Where recordings are kept (CA-4).
#[derive(Debug, Clone)]
pub enum StorageConfig {
    /// A directory on the local file system: the default.
    Local {
        dir: PathBuf,
    },
    S3(S3Config),
}

/// An S3-compatible bucket. Path-style requests, so any endpoint works without DNS set-up.
#[derive(Clone)]
pub struct S3Config {
    /// For example `https://s3.eu-north-1.amazonaws.com` or `http://127.0.0.1:9000`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Plain HTTP: only for a server on the same host or a test.
    pub allow_http: bool,
    /// Prepended to every object key, `/`-separated.
    pub prefix: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"..")
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// What `put` stored: the caller keeps these in the recording's metadata row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAudio {
    /// Plaintext size.
    pub bytes: u64,
    /// SHA-256 of the plaintext.
    pub sha256: [u8; 32],
    pub audio_type: AudioType,
}

/// Encrypted recordings on one backend. Cheap to clone: clones share the backend.
#[derive(Debug, Clone)]
pub struct AudioStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Box<dyn Backend>,
    max_bytes: u64,
    header: Header,
}

/// Object keys are plain relative paths: `/`-separated segments of ASCII letters, digits, `.`,
/// `_` and `-`, none empty or starting with a dot (which rules out `..` and the local backend's
/// temporary files).
pub(crate) fn check_key(key: &str) -> Result<()> {
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if valid { Ok(()) } else { Err(RecordingError::InvalidKey) }
}

impl AudioStore {
    /// A store on `config` that refuses bodies over `max_bytes` (see [`DEFAULT_MAX_BYTES`]).
    pub fn new(config: StorageConfig, max_bytes: u64) -> Result<Self> {
        Self::with_chunk_size(config, max_bytes, DEFAULT_CHUNK_SIZE)
    }

    /// As [`AudioStore::new`] with another plaintext chunk size (1 KiB to 16 MiB). Reading uses
    /// the size in each object's header, so objects written with any size stay readable.
    pub fn with_chunk_size(config: StorageConfig, max_bytes: u64, chunk_size: u32) -> Result<Self> {
        let backend: Box<dyn Backend> = match config {
            StorageConfig::Local { dir } => Box::new(LocalDir::new(dir)?),
            StorageConfig::S3(s3) => Box::new(S3Store::new(&s3)?),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                backend,
                max_bytes,
                header: Header::new(chunk_size)?,
            }),
        })
    }

    /// Streams `body` into a new encrypted object under `object_key`. The audio type is checked
    /// from the first bytes before anything is stored; on any error (including the returned
    /// future being dropped) nothing remains under the key. When this returns `Ok` the object
    /// is durable, and the caller may commit its metadata.
    pub async fn put<S, E>(
        &self,
        object_key: &str,
        recording_id: &str,
        data_key: &DataKey,
        body: S,
    ) -> Result<StoredAudio>
    where
        S: Stream<Item = std::result::Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        check_key(object_key)?;
        let mut body = std::pin::pin!(body);
        let limit = self.inner.max_bytes;
        let mut received: u64 = 0;
        let mut count = |chunk: &Bytes| {
            received = received.saturating_add(chunk.len() as u64);
            if received > limit {
                Err(RecordingError::TooLarge { limit })
            } else {
                Ok(())
            }
        };

        // Enough of the start to recognise the audio type, before anything is written.
        let mut head: Vec<Bytes> = Vec::new();
        let mut head_len = 0;
        while head_len < SNIFF_LEN {
            match body.next().await {
                Some(Ok(chunk)) => {
                    count(&chunk)?;
                    head_len += chunk.len();
                    head.push(chunk);
                }
                Some(Err(e)) => return Err(RecordingError::Body(e.to_string())),
                None => break,
            }
        }
        let start: Vec<u8> = head.iter().flat_map(|c| c.iter().copied()).take(SNIFF_LEN).collect();
        let audio_type = sniff(&start).ok_or(RecordingError::UnsupportedAudio)?;

        let header = self.inner.header;
        let cipher = ChunkCipher::new(data_key, recording_id, &header)?;
        let writer = self.inner.backend.create(object_key).await?;
        let mut sealer = Sealer::new(cipher, header, writer);
        let written = async {
            sealer.write_header().await?;
            for chunk in head {
                sealer.push(&chunk).await?;
            }
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| RecordingError::Body(e.to_string()))?;
                count(&chunk)?;
                sealer.push(&chunk).await?;
            }
            Ok::<_, RecordingError>(())
        }
        .await;
        if let Err(e) = written {
            sealer.writer.abort().await;
            return Err(e);
        }
        let (bytes, sha256) = sealer.finish().await?;
        Ok(StoredAudio {
            bytes,
            sha256,
            audio_type,
        })
    }

    /// The plaintext bytes `range` of a recording of `size` plaintext bytes, decrypted chunk by
    /// chunk. Only the chunks covering the range are fetched, at most 1 MiB of ciphertext at a
    /// time. Any chunk failing authentication ends the stream with `Integrity`.
    pub fn read_range(
        &self,
        object_key: &str,
        recording_id: &str,
        data_key: &DataKey,
        range: Range<u64>,
        size: u64,
    ) -> BoxStream<'static, Result<Bytes>> {
        if let Err(e) = check_key(object_key) {
            return stream::once(async { Err(e) }).boxed();
        }
        if range.start > range.end || range.end > size {
            return stream::once(async { Err(RecordingError::InvalidRange) }).boxed();
        }
        let reader = RangeReader {
            inner: Arc::clone(&self.inner),
            key: object_key.to_owned(),
            recording_id: recording_id.to_owned(),
            data_key: data_key.clone(),
            decoder: None,
            range,
            size,
            next_chunk: None,
        };
        reader.into_stream()
    }

    /// Reads and decrypts the whole recording and compares its SHA-256 and size with what `put`
    /// returned (CA-3: the hash is checked on every read). Any difference is `Integrity`.
    pub async fn verify(
        &self,
        object_key: &str,
        recording_id: &str,
        data_key: &DataKey,
        expected_sha256: &[u8; 32],
        size: u64,
    ) -> Result<()> {
        check_key(object_key)?;
        let backend = &self.inner.backend;
        let header = Header::decode(&backend.read(object_key, 0..HEADER_LEN).await?)?;
        // Bytes appended after the final chunk would not be read below.
        if backend.len(object_key).await? != header.object_len(size) {
            return Err(RecordingError::Integrity);
        }
        let mut hasher = digest::Context::new(&digest::SHA256);
        let mut plain = self.read_range(object_key, recording_id, data_key, 0..size, size);
        while let Some(bytes) = plain.next().await {
            hasher.update(&bytes?);
        }
        if hasher.finish().as_ref() == expected_sha256.as_slice() {
            Ok(())
        } else {
            Err(RecordingError::Integrity)
        }
    }

    /// Removes the recording's object. A missing object is not an error. The object is
    /// ciphertext, so dropping the sealed data key as well leaves nothing that could be read
    /// even from a backup or a disk block that was not overwritten.
    pub async fn delete(&self, object_key: &str) -> Result<()> {
        check_key(object_key)?;
        self.inner.backend.delete(object_key).await
    }
}

/// Splits plaintext into chunks, seals each and hands it to the writer, hashing on the way.
struct Sealer {
    cipher: ChunkCipher,
    header: Header,
    writer: Box<dyn ObjectWriter>,
    chunk: Vec<u8>,
    index: u64,
    bytes: u64,
    hasher: digest::Context,
}

impl Sealer {
    fn new(cipher: ChunkCipher, header: Header, writer: Box<dyn ObjectWriter>) -> Self {
        Self {
            cipher,
            header,
            writer,
            chunk: Self::empty_chunk(header),
            index: 0,
            bytes: 0,
            hasher: digest::Context::new(&digest::SHA256),
        }
    }

    fn empty_chunk(header: Header) -> Vec<u8> {
        Vec::with_capacity(header.chunk_size as usize + TAG_LEN as usize)
    }

    async fn write_header(&mut self) -> Result<()> {
        self.writer.write(Bytes::copy_from_slice(&self.header.encode())).await
    }

    async fn push(&mut self, mut data: &[u8]) -> Result<()> {
        self.hasher.update(data);
        self.bytes = self.bytes.saturating_add(data.len() as u64);
        let chunk_size = self.header.chunk_size as usize;
        while !data.is_empty() {
            // A full chunk is sealed only once more data shows it is not the last one.
            if self.chunk.len() == chunk_size {
                self.seal_chunk(false).await?;
            }
            let take = (chunk_size - self.chunk.len()).min(data.len());
            self.chunk.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    async fn seal_chunk(&mut self, last: bool) -> Result<()> {
        let mut chunk = std::mem::replace(&mut self.chunk, Self::empty_chunk(self.header));
        self.cipher.seal(self.index, last, &mut chunk)?;
        self.index += 1;
        self.writer.write(Bytes::from(chunk)).await
    }

    async fn finish(mut self) -> Result<(u64, [u8; 32])> {
        if let Err(e) = self.seal_chunk(true).await {
            self.writer.abort().await;
            return Err(e);
        }
        self.writer.commit().await?;
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(self.hasher.finish().as_ref());
        Ok((self.bytes, sha256))
    }
}

/// Opens chunks of one object; made once its header has been read.
struct Decoder {
    header: Header,
    cipher: ChunkCipher,
}

struct RangeReader {
    inner: Arc<Inner>,
    key: String,
    recording_id: String,
    data_key: DataKey,
    decoder: Option<Decoder>,
    range: Range<u64>,
    size: u64,
    /// `None` until the header has told the chunk size.
    next_chunk: Option<u64>,
}

impl RangeReader {
    fn into_stream(self) -> BoxStream<'static, Result<Bytes>> {
        stream::try_unfold(self, |mut reader| async move {
            Ok(reader.next_batch().await?.map(|bytes| (bytes, reader)))
        })
        .boxed()
    }

    /// The next at most `FETCH_BYTES` of ciphertext, decrypted and cut to the range; `None`
    /// when the range is done.
    async fn next_batch(&mut self) -> Result<Option<Bytes>> {
        if self.range.is_empty() {
            return Ok(None);
        }
        if self.decoder.is_none() {
            let bytes = self.inner.backend.read(&self.key, 0..HEADER_LEN).await?;
            let header = Header::decode(&bytes)?;
            let cipher = ChunkCipher::new(&self.data_key, &self.recording_id, &header)?;
            self.decoder = Some(Decoder { header, cipher });
        }
        let Some(decoder) = &self.decoder else {
            return Err(RecordingError::Integrity);
        };
        let (range, size, header) = (self.range.clone(), self.size, decoder.header);
        let chunk = u64::from(header.chunk_size);
        let first = self.next_chunk.unwrap_or(range.start / chunk);
        let last_needed = (range.end - 1) / chunk;
        if first > last_needed {
            return Ok(None);
        }
        let per_fetch = (FETCH_BYTES / (chunk + TAG_LEN)).max(1);
        let last = last_needed.min(first + per_fetch - 1);
        let final_chunk = header.chunk_count(size) - 1;
        let start = header.chunk_offset(first);
        let end = header.chunk_offset(last) + header.chunk_plain_len(last, size) + TAG_LEN;
        let mut sealed = self.inner.backend.read(&self.key, start..end).await?.to_vec();
        // A short object was truncated: its last chunks are missing.
        if sealed.len() as u64 != end - start {
            return Err(RecordingError::Integrity);
        }
        let mut out = Vec::with_capacity(sealed.len());
        let mut rest = sealed.as_mut_slice();
        for index in first..=last {
            let sealed_len = (header.chunk_plain_len(index, size) + TAG_LEN) as usize;
            let (this, tail) = rest.split_at_mut(sealed_len);
            rest = tail;
            let plain = decoder.cipher.open(index, index == final_chunk, this)?;
            let chunk_start = index * chunk;
            let lo = range.start.max(chunk_start) - chunk_start;
            let hi = range.end.min(chunk_start + plain.len() as u64) - chunk_start;
            out.extend_from_slice(&plain[lo as usize..hi as usize]);
        }
        self.next_chunk = Some(last + 1);
        Ok(Some(Bytes::from(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    fn assert_send<T: Send>(_: &T) {}

    /// The store is shared between actix-web workers, and an upload may be spawned as a task.
    #[test]
    fn store_and_its_futures_can_cross_threads() {
        assert_send_sync_clone::<AudioStore>();
        let dir = tempfile::tempdir().unwrap();
        let store = AudioStore::new(
            StorageConfig::Local {
                dir: dir.path().to_path_buf(),
            },
            DEFAULT_MAX_BYTES,
        )
        .unwrap();
        let key = DataKey::generate().unwrap();
        let body = stream::iter(Vec::<std::result::Result<Bytes, std::io::Error>>::new());
        let put = store.put("k", "r", &key, body);
        assert_send(&put);
        let verify = store.verify("k", "r", &key, &[0; 32], 1);
        assert_send(&verify);
    }

    #[test]
    fn keys_are_plain_relative_paths() {
        for good in ["a", "2026/05/rec-1.wav", "A_b-c.d"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "..",
            "a/../b",
            ".x",
            "a b",
            "ä",
            &"x".repeat(513),
        ] {
            assert!(matches!(check_key(bad), Err(RecordingError::InvalidKey)), "{bad}");
        }
    }
}
