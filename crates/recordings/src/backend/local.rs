//! Objects as files under a data directory. Written to a temporary file beside the final name,
//! fsynced, renamed without replacing, and the directory fsynced: once `commit` returns the file
//! survives a crash, so the caller may commit its metadata row. `object_store`'s
//! `LocalFileSystem` does not fsync, which is why this is written by hand.

use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tempfile::NamedTempFile;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::{Backend, ObjectWriter};
use crate::error::{RecordingError, Result};

/// Temporary files start with a dot; object keys never do, so the two cannot clash.
const TEMP_PREFIX: &str = ".incoming-";
const WRITE_BUFFER: usize = 256 * 1024;

#[derive(Debug)]
pub(crate) struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub(crate) fn new(root: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RecordingError::Storage(format!("a file system task failed: {e}")))?
}

/// Fsyncs `dir` and each of its parents up to `root`, so that directories created for a new
/// object, and the object's entry in them, are durable too.
fn sync_dirs(root: &Path, dir: &Path) -> Result<()> {
    let mut current = Some(dir);
    while let Some(d) = current {
        std::fs::File::open(d)?.sync_all()?;
        if d == root {
            break;
        }
        current = d.parent().filter(|p| p.starts_with(root));
    }
    Ok(())
}

#[async_trait]
impl Backend for LocalDir {
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        let path = self.path(key);
        let root = self.root.clone();
        let (temp, path) = blocking(move || {
            if std::fs::symlink_metadata(&path).is_ok() {
                return Err(RecordingError::AlreadyExists);
            }
            let parent = path.parent().unwrap_or(&root).to_path_buf();
            std::fs::create_dir_all(&parent)?;
            let temp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(&parent)?;
            Ok((temp, path))
        })
        .await?;
        let file = tokio::fs::File::from_std(temp.as_file().try_clone()?);
        Ok(Box::new(LocalWriter {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            temp,
            path,
            root: self.root.clone(),
        }))
    }

    async fn read(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let mut file = tokio::fs::File::open(self.path(key)).await?;
        file.seek(SeekFrom::Start(range.start)).await?;
        let len = range.end.saturating_sub(range.start);
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len).read_to_end(&mut out).await?;
        Ok(Bytes::from(out))
    }

    async fn len(&self, key: &str) -> Result<u64> {
        Ok(tokio::fs::metadata(self.path(key)).await?.len())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        // The unlink itself must survive a crash: a deleted recording must not come back.
        let root = self.root.clone();
        blocking(move || sync_dirs(&root, path.parent().unwrap_or(&root))).await
    }
}

struct LocalWriter {
    file: BufWriter<tokio::fs::File>,
    /// Unlinks the temporary file when dropped before `commit`, whatever ended the upload.
    temp: NamedTempFile,
    path: PathBuf,
    root: PathBuf,
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        Ok(self.file.write_all(&data).await?)
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        self.file.flush().await?;
        self.file.get_mut().sync_all().await?;
        let LocalWriter { temp, path, root, .. } = *self;
        blocking(move || {
            // `persist_noclobber` renames without replacing (or links and unlinks), so a file
            // that appeared under the name meanwhile is kept and this upload is refused.
            temp.persist_noclobber(&path)
                .map_err(|e| RecordingError::from(e.error))?;
            sync_dirs(&root, path.parent().unwrap_or(&root))
        })
        .await
    }

    async fn abort(self: Box<Self>) {
        let LocalWriter { temp, file, .. } = *self;
        drop(file);
        // Unlinking is quick, but it is still a blocking call: keep it off the async workers.
        let _ = blocking(move || Ok(temp.close()?)).await;
    }
}
