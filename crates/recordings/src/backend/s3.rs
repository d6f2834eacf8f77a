//! Objects in S3-compatible object storage through `object_store`.
//!
//! A body that fits in one part (5 MiB of ciphertext) is sent with one conditional PUT
//! (`If-None-Match: *`), so the server refuses to replace an existing object. A larger body goes
//! up as a multipart upload of 5 MiB parts, one part in memory at a time. `object_store` cannot
//! make the completion of a multipart upload conditional, so the key is checked with a HEAD both
//! before the upload starts and before it is completed; the window between that check and the
//! completion is left to the caller's metadata, which allows one recording per key anyway.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::{Backend, ObjectWriter};
use crate::S3Config;
use crate::error::{RecordingError, Result};

/// The smallest part S3 accepts (but for the last).
pub(crate) const PART_SIZE: usize = 5 * 1024 * 1024;

#[derive(Debug)]
pub(crate) struct S3Store {
    store: Arc<AmazonS3>,
    prefix: Option<String>,
}

fn storage_error(e: object_store::Error) -> RecordingError {
    match e {
        object_store::Error::NotFound { .. } => RecordingError::NotFound,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            RecordingError::AlreadyExists
        }
        e => RecordingError::Storage(e.to_string()),
    }
}

impl S3Store {
    pub(crate) fn new(config: &S3Config) -> Result<Self> {
        let store = AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_allow_http(config.allow_http)
            .build()
            .map_err(storage_error)?;
        let prefix = config
            .prefix
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        if let Some(p) = &prefix {
            crate::store::check_key(p)?;
        }
        Ok(Self {
            store: Arc::new(store),
            prefix,
        })
    }

    fn path(&self, key: &str) -> Path {
        match &self.prefix {
            Some(prefix) => Path::from(format!("{prefix}/{key}")),
            None => Path::from(key),
        }
    }
}

#[async_trait]
impl Backend for S3Store {
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        let path = self.path(key);
        ensure_absent(&self.store, &path).await?;
        Ok(Box::new(S3Writer {
            store: Arc::clone(&self.store),
            path,
            buffer: BytesMut::with_capacity(PART_SIZE),
            upload: None,
        }))
    }

    async fn read(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.store
            .get_range(&self.path(key), range)
            .await
            .map_err(storage_error)
    }

    async fn len(&self, key: &str) -> Result<u64> {
        Ok(self.store.head(&self.path(key)).await.map_err(storage_error)?.size)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error(e)),
        }
    }
}

async fn ensure_absent(store: &AmazonS3, path: &Path) -> Result<()> {
    match store.head(path).await {
        Ok(_) => Err(RecordingError::AlreadyExists),
        Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(storage_error(e)),
    }
}

struct S3Writer {
    store: Arc<AmazonS3>,
    path: Path,
    buffer: BytesMut,
    /// Started only once more than one part of data has arrived.
    upload: Option<Box<dyn MultipartUpload>>,
}

impl S3Writer {
    async fn send_part(&mut self, part: Bytes) -> Result<()> {
        let upload = match &mut self.upload {
            Some(upload) => upload,
            None => {
                let upload = self.store.put_multipart(&self.path).await.map_err(storage_error)?;
                self.upload.insert(upload)
            }
        };
        upload.put_part(PutPayload::from(part)).await.map_err(storage_error)
    }

    async fn finish(&mut self) -> Result<()> {
        let rest = self.buffer.split().freeze();
        if self.upload.is_none() {
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            self.store
                .put_opts(&self.path, PutPayload::from(rest), options)
                .await
                .map_err(storage_error)?;
            return Ok(());
        }
        if !rest.is_empty() {
            self.send_part(rest).await?;
        }
        ensure_absent(&self.store, &self.path).await?;
        if let Some(upload) = &mut self.upload {
            upload.complete().await.map_err(storage_error)?;
        }
        self.upload = None;
        Ok(())
    }
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.buffer.extend_from_slice(&data);
        while self.buffer.len() > PART_SIZE {
            let part = self.buffer.split_to(PART_SIZE).freeze();
            self.send_part(part).await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let result = self.finish().await;
        if result.is_err() {
            self.abort().await;
        }
        result
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(mut upload) = self.upload.take() {
            // Parts of an unfinished upload are not an object, but they hold ciphertext and
            // cost storage until the bucket's lifecycle rule would remove them.
            let _ = upload.abort().await;
        }
    }
}

impl Drop for S3Writer {
    /// An upload whose future was dropped cannot be awaited any more: abort it in the
    /// background when a runtime is there to run that.
    fn drop(&mut self) {
        if let Some(mut upload) = self.upload.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = upload.abort().await;
            });
        }
    }
}
