//! Where the encrypted objects live. The store above only writes whole objects once, reads byte
//! ranges, asks for sizes and deletes; every backend gives those the same meaning.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;

pub(crate) mod local;
pub(crate) mod s3;

#[async_trait]
pub(crate) trait Backend: Send + Sync + std::fmt::Debug {
    /// Starts writing a new object. Fails early with `AlreadyExists` when the key is taken; the
    /// check that counts is the one at commit.
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>>;

    /// The bytes of `range`; fewer when the object ends first.
    async fn read(&self, key: &str, range: Range<u64>) -> Result<Bytes>;

    /// The object's size in bytes; `NotFound` when there is none.
    async fn len(&self, key: &str) -> Result<u64>;

    /// Removes the object; a missing one is not an error, so an interrupted retention run can
    /// simply run again.
    async fn delete(&self, key: &str) -> Result<()>;
}

/// An object being written. Nothing is visible under the key until `commit` returns; `abort`,
/// or dropping the writer, leaves nothing behind.
#[async_trait]
pub(crate) trait ObjectWriter: Send {
    async fn write(&mut self, data: Bytes) -> Result<()>;

    /// Makes the object durable and visible, unless the key was taken meanwhile
    /// (`AlreadyExists`). On failure nothing is left behind.
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Discards what was written, and waits for that to finish.
    async fn abort(self: Box<Self>);
}
