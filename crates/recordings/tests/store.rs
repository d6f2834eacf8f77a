//! The store against real storage: a temporary directory, and the S3-compatible server that
//! `scripts/s3-test-server run` starts (TEST_S3_URL, TEST_S3_DIR). Every scenario runs on both.

// Test helpers outside #[test] functions: a failure is meant to stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use rekisteri_recordings::testing::TestS3;
use rekisteri_recordings::{AudioStore, AudioType, DataKey, RecordingError, StorageConfig, StoredAudio};
use ring::digest;

const CHUNK: u64 = 64 * 1024;
const HEADER: u64 = 16;
const TAG: u64 = 16;

struct Fixture {
    store: AudioStore,
    /// Where the objects lie as files: the local directory, or the S3 server's bucket directory.
    objects: PathBuf,
    /// Everything the backend has written, temporary and multipart files included.
    scan_root: PathBuf,
    local: bool,
    _temp: Option<tempfile::TempDir>,
}

impl Fixture {
    fn local(max_bytes: u64) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("recordings");
        let store = AudioStore::new(StorageConfig::Local { dir: dir.clone() }, max_bytes).unwrap();
        Self {
            store,
            objects: dir.clone(),
            scan_root: dir,
            local: true,
            _temp: Some(temp),
        }
    }

    /// `None` when no S3 server is configured, except under `CI=true`, where S3 coverage must
    /// not vanish silently.
    fn s3(max_bytes: u64) -> Option<Self> {
        let s3 = TestS3::from_env("store")?;
        let store = AudioStore::new(StorageConfig::S3(s3.config), max_bytes).unwrap();
        Some(Self {
            store,
            objects: s3.objects,
            scan_root: s3.data,
            local: false,
            _temp: None,
        })
    }

    fn object_path(&self, key: &str) -> PathBuf {
        self.objects.join(key)
    }

    /// Files under the object directory (the S3 server's own bookkeeping lies elsewhere).
    fn object_files(&self) -> Vec<PathBuf> {
        files_under(&self.objects)
    }

    /// No stored byte anywhere equals a run of the plaintext.
    fn assert_no_plaintext(&self, marker: &[u8]) {
        for file in files_under(&self.scan_root) {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker),
                "plaintext marker found in {}",
                file.display()
            );
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A distinctive 32-byte run, different for each test upload.
fn marker() -> [u8; 32] {
    let mut m = [0u8; 32];
    m[..16].copy_from_slice(b"PLAINTEXT-MARKER");
    m[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    m
}

/// A WAV header followed by deterministic pseudo-random "samples", with the marker planted at
/// the start, in the middle and at the end.
fn wav(len: usize, marker: &[u8; 32]) -> Vec<u8> {
    let mut out = b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00".to_vec();
    out.extend_from_slice(&[1, 0, 1, 0, 0x40, 0x1F, 0, 0, 0x80, 0x3E, 0, 0, 2, 0, 16, 0]);
    out.extend_from_slice(b"data\x00\x00\x00\x00");
    out.extend_from_slice(marker);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    let middle = len / 2;
    out[middle..middle + 32].copy_from_slice(marker);
    out[len - 32..].copy_from_slice(marker);
    out
}

/// The body as a client would send it: pieces of an awkward size that straddle chunk borders.
fn body(data: &[u8]) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + use<> {
    let pieces: Vec<_> = data.chunks(10_007).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    stream::iter(pieces)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

async fn read(
    fx: &Fixture,
    key: &str,
    id: &str,
    dk: &DataKey,
    range: std::ops::Range<u64>,
    size: u64,
) -> Result<Vec<u8>, RecordingError> {
    let mut stream = fx.store.read_range(key, id, dk, range, size);
    let mut out = Vec::new();
    while let Some(bytes) = stream.next().await {
        out.extend_from_slice(&bytes?);
    }
    Ok(out)
}

async fn put(fx: &Fixture, key: &str, id: &str, dk: &DataKey, data: &[u8]) -> Result<StoredAudio, RecordingError> {
    fx.store.put(key, id, dk, body(data)).await
}

async fn assert_absent(fx: &Fixture, key: &str) {
    let dk = DataKey::generate().unwrap();
    assert!(matches!(
        fx.store.verify(key, "any", &dk, &[0; 32], 1).await,
        Err(RecordingError::NotFound)
    ));
    assert!(!fx.object_path(key).exists());
    assert!(fx.object_files().is_empty(), "left behind: {:?}", fx.object_files());
}

async fn round_trip(fx: Fixture, len: usize) {
    let m = marker();
    let data = wav(len, &m);
    let dk = DataKey::generate().unwrap();
    let stored = put(&fx, "2026/rec-1.wav", "rec-1", &dk, &data).await.unwrap();
    assert_eq!(stored.bytes, data.len() as u64);
    assert_eq!(stored.sha256, sha256(&data));
    assert_eq!(stored.audio_type, AudioType::Wav);
    let size = stored.bytes;

    let on_disk = std::fs::metadata(fx.object_path("2026/rec-1.wav")).unwrap().len();
    assert_eq!(on_disk, HEADER + size.div_ceil(CHUNK) * TAG + size);

    fx.store
        .verify("2026/rec-1.wav", "rec-1", &dk, &stored.sha256, size)
        .await
        .unwrap();
    let cases = [
        0..size,
        0..1,
        size - 1..size,
        CHUNK - 5..CHUNK + 7,
        2 * CHUNK + 100..2 * CHUNK + 4000,
        3 * CHUNK..size,
        size / 2..size / 2,
    ];
    for range in cases {
        let got = read(&fx, "2026/rec-1.wav", "rec-1", &dk, range.clone(), size)
            .await
            .unwrap();
        assert!(got == data[range.start as usize..range.end as usize], "range {range:?}");
    }
    assert!(matches!(
        read(&fx, "2026/rec-1.wav", "rec-1", &dk, 0..size + 1, size).await,
        Err(RecordingError::InvalidRange)
    ));
    // Another recording's id, or another key, does not open the object.
    assert!(matches!(
        read(&fx, "2026/rec-1.wav", "rec-2", &dk, 0..1, size).await,
        Err(RecordingError::Integrity)
    ));
    let other = DataKey::generate().unwrap();
    assert!(matches!(
        fx.store
            .verify("2026/rec-1.wav", "rec-1", &other, &stored.sha256, size)
            .await,
        Err(RecordingError::Integrity)
    ));
    // A wrong size in the metadata is caught too.
    assert!(matches!(
        fx.store
            .verify("2026/rec-1.wav", "rec-1", &dk, &stored.sha256, size - 1)
            .await,
        Err(RecordingError::Integrity)
    ));
    fx.assert_no_plaintext(&m);
}

async fn round_trip_small(fx: Fixture) {
    round_trip(fx, 300 * 1024).await;
}

/// Over 12 MiB: several S3 multipart parts and several 1 MiB reads.
async fn round_trip_large(fx: Fixture) {
    round_trip(fx, 12 * 1024 * 1024 + 12_345).await;
}

async fn second_put_is_refused(fx: Fixture) {
    let m = marker();
    let data = wav(200_000, &m);
    let dk = DataKey::generate().unwrap();
    let first = put(&fx, "rec-1", "rec-1", &dk, &data).await.unwrap();
    let other = wav(150_000, &marker());
    let dk2 = DataKey::generate().unwrap();
    assert!(matches!(
        put(&fx, "rec-1", "rec-1", &dk2, &other).await,
        Err(RecordingError::AlreadyExists)
    ));
    fx.store
        .verify("rec-1", "rec-1", &dk, &first.sha256, first.bytes)
        .await
        .unwrap();
    assert_eq!(fx.object_files().len(), 1);
    fx.assert_no_plaintext(&m);
}

/// Two uploads for one key at once: whichever way they interleave (the early existence check,
/// or the no-replace rename at the end), exactly one wins and its object stays. Local only: the
/// S3 backend sends `If-None-Match: *`, which AWS S3 and MinIO enforce atomically, but s3s-fs
/// checks it before writing rather than atomically, so there both uploads can win.
async fn concurrent_puts_one_wins(fx: Fixture) {
    let (a, b) = (wav(100_000, &marker()), wav(120_000, &marker()));
    let (dk_a, dk_b) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
    let (ra, rb) = tokio::join!(
        put(&fx, "rec-1", "rec-1", &dk_a, &a),
        put(&fx, "rec-1", "rec-1", &dk_b, &b)
    );
    let (winner, dk) = match (ra, rb) {
        (Ok(stored), Err(RecordingError::AlreadyExists)) => (stored, dk_a),
        (Err(RecordingError::AlreadyExists), Ok(stored)) => (stored, dk_b),
        other => panic!("expected one success and one AlreadyExists: {other:?}"),
    };
    fx.store
        .verify("rec-1", "rec-1", &dk, &winner.sha256, winner.bytes)
        .await
        .unwrap();
    assert_eq!(fx.object_files().len(), 1, "{:?}", fx.object_files());
}

/// Object `rec-1` fails its verification, and a read of `range` of it (as `size` bytes) fails too.
async fn assert_damaged(fx: &Fixture, dk: &DataKey, stored: &StoredAudio, range: std::ops::Range<u64>, size: u64) {
    assert!(matches!(
        fx.store
            .verify("rec-1", "rec-1", dk, &stored.sha256, stored.bytes)
            .await,
        Err(RecordingError::Integrity)
    ));
    assert!(matches!(
        read(fx, "rec-1", "rec-1", dk, range, size).await,
        Err(RecordingError::Integrity)
    ));
}

async fn tampering_is_detected(fx: Fixture) {
    let m = marker();
    let data = wav(300 * 1024, &m);
    let dk = DataKey::generate().unwrap();
    let stored = put(&fx, "rec-1", "rec-1", &dk, &data).await.unwrap();
    let path = fx.object_path("rec-1");
    let mut bytes = std::fs::read(&path).unwrap();
    let flipped = (HEADER + 2 * (CHUNK + TAG) + 100) as usize;
    bytes[flipped] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();

    assert_damaged(&fx, &dk, &stored, 2 * CHUNK + 50..2 * CHUNK + 60, stored.bytes).await;
    // The other chunks still read: a seek elsewhere does not depend on the damaged one.
    let first = read(&fx, "rec-1", "rec-1", &dk, 0..CHUNK, stored.bytes).await.unwrap();
    assert!(first == data[..CHUNK as usize]);

    // Truncation at a chunk border: the new last chunk was not sealed as final.
    bytes[flipped] ^= 0x20;
    bytes.truncate((HEADER + 3 * (CHUNK + TAG)) as usize);
    std::fs::write(&path, &bytes).unwrap();
    assert_damaged(&fx, &dk, &stored, 0..3 * CHUNK, 3 * CHUNK).await;
    fx.assert_no_plaintext(&m);
}

async fn too_large_leaves_nothing(fx: Fixture) {
    let m = marker();
    let data = wav(300 * 1024, &m);
    let dk = DataKey::generate().unwrap();
    assert!(matches!(
        put(&fx, "rec-1", "rec-1", &dk, &data).await,
        Err(RecordingError::TooLarge { limit: 256_000 })
    ));
    assert_absent(&fx, "rec-1").await;
    fx.assert_no_plaintext(&m);
    // Exactly at the limit is allowed.
    let data = wav(256_000, &m);
    put(&fx, "rec-1", "rec-1", &dk, &data).await.unwrap();
}

async fn non_audio_is_refused(fx: Fixture) {
    let dk = DataKey::generate().unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend_from_slice(&[7; 100_000]);
    for data in [png, b"Just a text file, not a recording.".repeat(1000), Vec::new()] {
        assert!(matches!(
            put(&fx, "rec-1", "rec-1", &dk, &data).await,
            Err(RecordingError::UnsupportedAudio)
        ));
        assert_absent(&fx, "rec-1").await;
    }
}

async fn failing_body_leaves_nothing(fx: Fixture, len: usize) {
    let m = marker();
    let data = wav(len, &m);
    let dk = DataKey::generate().unwrap();
    let pieces = data
        .chunks(100_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .chain([Err(std::io::Error::other("connection reset"))]);
    let result = fx.store.put("rec-1", "rec-1", &dk, stream::iter(pieces)).await;
    assert!(
        matches!(result, Err(RecordingError::Body(ref e)) if e == "connection reset"),
        "{result:?}"
    );
    assert_absent(&fx, "rec-1").await;
    fx.assert_no_plaintext(&m);
}

async fn failing_body_small(fx: Fixture) {
    failing_body_leaves_nothing(fx, 300 * 1024).await;
}

/// Past the first multipart part on S3.
async fn failing_body_large(fx: Fixture) {
    failing_body_leaves_nothing(fx, 6 * 1024 * 1024).await;
}

async fn dropped_upload_leaves_nothing(fx: Fixture) {
    let m = marker();
    let data = wav(300 * 1024, &m);
    let dk = DataKey::generate().unwrap();
    // The body sends its bytes, then never ends: the client went silent, and the server drops
    // the request's future. The stream reports when it is asked for more, which is when
    // everything before has been handed to storage.
    let (asked_for_more, more_wanted) = tokio::sync::oneshot::channel::<()>();
    let mut asked_for_more = Some(asked_for_more);
    let first: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::copy_from_slice(&data))];
    let silent = stream::poll_fn(move |_| {
        if let Some(tx) = asked_for_more.take() {
            let _ = tx.send(());
        }
        std::task::Poll::<Option<Result<Bytes, std::io::Error>>>::Pending
    });
    let mut upload = Box::pin(fx.store.put("rec-1", "rec-1", &dk, stream::iter(first).chain(silent)));
    tokio::select! {
        result = &mut upload => panic!("the upload ended: {result:?}"),
        _ = more_wanted => {}
    }
    if fx.local {
        assert!(
            !fx.object_files().is_empty(),
            "the temporary file exists while uploading"
        );
    }
    drop(upload);
    assert_absent(&fx, "rec-1").await;
    fx.assert_no_plaintext(&m);
}

async fn delete_removes_the_object(fx: Fixture) {
    let m = marker();
    let data = wav(200_000, &m);
    let dk = DataKey::generate().unwrap();
    let stored = put(&fx, "a/rec-1", "rec-1", &dk, &data).await.unwrap();
    fx.store.delete("a/rec-1").await.unwrap();
    assert!(matches!(
        fx.store
            .verify("a/rec-1", "rec-1", &dk, &stored.sha256, stored.bytes)
            .await,
        Err(RecordingError::NotFound)
    ));
    assert!(matches!(
        read(&fx, "a/rec-1", "rec-1", &dk, 0..1, stored.bytes).await,
        Err(RecordingError::NotFound)
    ));
    assert!(fx.object_files().is_empty());
    // Deleting again, or something never stored, is fine.
    fx.store.delete("a/rec-1").await.unwrap();
    fx.store.delete("never-stored").await.unwrap();
}

async fn keys_are_checked(fx: Fixture) {
    let dk = DataKey::generate().unwrap();
    let data = wav(2000, &marker());
    for key in [
        "",
        "../escape",
        "a//b",
        "/abs",
        ".hidden",
        "a/.incoming-x",
        "sp ace",
        "a\\b",
    ] {
        assert!(
            matches!(
                put(&fx, key, "rec-1", &dk, &data).await,
                Err(RecordingError::InvalidKey)
            ),
            "{key:?}"
        );
        assert!(matches!(fx.store.delete(key).await, Err(RecordingError::InvalidKey)));
    }
    assert!(fx.object_files().is_empty());
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Fixture::local(super::max_bytes(stringify!($scenario)))).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test]
                async fn $scenario() {
                    if let Some(fx) = super::Fixture::s3(super::max_bytes(stringify!($scenario))) {
                        super::$scenario(fx).await;
                    }
                }
            )*
        }
    };
}

#[tokio::test]
async fn local_concurrent_puts_one_wins() {
    concurrent_puts_one_wins(Fixture::local(rekisteri_recordings::DEFAULT_MAX_BYTES)).await;
}

/// The chunk size comes from each object's header, so changing the setting leaves older
/// objects readable, with ranges still fetched chunk by chunk.
#[tokio::test]
async fn local_objects_keep_their_own_chunk_size() {
    let fx = Fixture::local(rekisteri_recordings::DEFAULT_MAX_BYTES);
    let small_chunks = AudioStore::with_chunk_size(
        StorageConfig::Local {
            dir: fx.objects.clone(),
        },
        rekisteri_recordings::DEFAULT_MAX_BYTES,
        1024,
    )
    .unwrap();
    let data = wav(50_000, &marker());
    let dk = DataKey::generate().unwrap();
    let stored = small_chunks.put("rec-1", "rec-1", &dk, body(&data)).await.unwrap();
    let on_disk = std::fs::metadata(fx.object_path("rec-1")).unwrap().len();
    assert_eq!(on_disk, HEADER + 49 * TAG + 50_000);
    fx.store
        .verify("rec-1", "rec-1", &dk, &stored.sha256, stored.bytes)
        .await
        .unwrap();
    let got = read(&fx, "rec-1", "rec-1", &dk, 1000..3100, stored.bytes)
        .await
        .unwrap();
    assert!(got == data[1000..3100]);
}

fn max_bytes(scenario: &str) -> u64 {
    if scenario == "too_large_leaves_nothing" {
        256_000
    } else {
        rekisteri_recordings::DEFAULT_MAX_BYTES
    }
}

on_both_backends!(
    round_trip_small,
    round_trip_large,
    second_put_is_refused,
    tampering_is_detected,
    too_large_leaves_nothing,
    non_audio_is_refused,
    failing_body_small,
    failing_body_large,
    dropped_upload_leaves_nothing,
    delete_removes_the_object,
    keys_are_checked,
);
