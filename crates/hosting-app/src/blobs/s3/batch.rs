//! A batch for the S3 store: entries are verified while staged in memory, then uploaded
//! in parallel (one PUT costs ~45 ms on a three-node Garage, so a bulk upload of
//! hundreds of files one by one would take seconds). With `spill_bytes` (archives) the
//! staged entries are uploaded early whenever they pass it. An object uploaded early for
//! a batch that then fails is harmless: it is the right bytes under their digest, and
//! garbage collection deletes it if no deploy comes to reference it.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::Bucket;
use crate::blobs::batch::{dedup, BlobBatch, BufferedEntry};
use crate::blobs::BlobError;
use crate::domain::names::Sha256;

pub(super) struct S3Batch {
    bucket: Arc<Bucket>,
    concurrency: usize,
    handle: tokio::runtime::Handle,
    spill_bytes: Option<u64>,
    staged: Vec<(Sha256, Vec<u8>)>,
    staged_bytes: u64,
    written: Vec<(Sha256, u64)>,
    current: BufferedEntry,
}

impl S3Batch {
    pub(super) fn new(
        bucket: Arc<Bucket>,
        concurrency: usize,
        spill_bytes: Option<u64>,
    ) -> Result<S3Batch, BlobError> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| BlobError::Io(std::io::Error::other(e)))?;
        Ok(S3Batch {
            bucket,
            concurrency,
            handle,
            spill_bytes,
            staged: Vec::new(),
            staged_bytes: 0,
            written: Vec::new(),
            current: BufferedEntry::default(),
        })
    }
}

/// Uploads verified entries, `concurrency` at a time; their digests and sizes.
async fn upload_all(
    bucket: &Bucket,
    concurrency: usize,
    staged: Vec<(Sha256, Vec<u8>)>,
) -> Result<Vec<(Sha256, u64)>, BlobError> {
    futures::stream::iter(dedup(staged))
        .map(|(sha256, bytes)| async move {
            let len = bytes.len() as u64;
            bucket.put(&sha256, Bytes::from(bytes)).await?;
            Ok::<_, BlobError>((sha256, len))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await
}

#[async_trait]
impl BlobBatch for S3Batch {
    fn start(&mut self, expected: Option<Sha256>, max_bytes: u64) -> Result<(), BlobError> {
        self.current.start(expected, max_bytes);
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.current.write(chunk)
    }

    fn finish(&mut self) -> Result<(Sha256, u64), BlobError> {
        let (sha256, len, bytes) = self.current.finish()?;
        self.staged_bytes += len;
        self.staged.push((sha256.clone(), bytes));
        if self
            .spill_bytes
            .is_some_and(|limit| self.staged_bytes > limit)
        {
            // Staging runs on a blocking thread (see `BlobBatch`), so it may wait here.
            let staged = std::mem::take(&mut self.staged);
            let uploaded =
                self.handle
                    .block_on(upload_all(&self.bucket, self.concurrency, staged))?;
            self.written.extend(uploaded);
            self.staged_bytes = 0;
        }
        Ok((sha256, len))
    }

    async fn publish(self: Box<Self>) -> Result<Vec<(Sha256, u64)>, BlobError> {
        let S3Batch {
            bucket,
            concurrency,
            staged,
            mut written,
            ..
        } = *self;
        written.extend(upload_all(&bucket, concurrency, staged).await?);
        Ok(dedup(written))
    }
}
