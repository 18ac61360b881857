//! Many blobs written as one unit (a bulk upload, an archive): every entry is hashed and
//! checked while it is staged, nothing is visible before [`BlobBatch::publish`], and
//! publishing makes the whole batch durable with one flush instead of one per file.
//! Dropping a batch unpublished discards everything it staged.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256 as Hasher};

use super::{BlobError, BlobStore};
use crate::domain::names::Sha256;

/// Stages blobs for one publish. The staging methods may block on disk I/O: call them
/// from a blocking thread (`spawn_blocking`), as the streaming readers of uploads do.
#[async_trait]
pub trait BlobBatch: Send {
    /// Starts the next entry: at most `max_bytes`, and with `expected` it must hash to it.
    fn start(&mut self, expected: Option<Sha256>, max_bytes: u64) -> Result<(), BlobError>;
    fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError>;
    /// Ends the entry, checking its digest: its digest and size. A mismatch discards it.
    fn finish(&mut self) -> Result<(Sha256, u64), BlobError>;
    /// Makes every staged entry durable and visible; the distinct blobs published.
    async fn publish(self: Box<Self>) -> Result<Vec<(Sha256, u64)>, BlobError>;
}

/// The entry being staged: its hash so far, its size and its bounds.
pub(super) struct Entry {
    hasher: Hasher,
    len: u64,
    max_bytes: u64,
    expected: Option<Sha256>,
}

impl Entry {
    pub(super) fn new(expected: Option<Sha256>, max_bytes: u64) -> Entry {
        Entry {
            hasher: Hasher::new(),
            len: 0,
            max_bytes,
            expected,
        }
    }

    /// Counts and hashes `chunk`, refusing it past the entry's bound.
    pub(super) fn take(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.len += chunk.len() as u64;
        if self.len > self.max_bytes {
            return Err(BlobError::TooLarge {
                limit: self.max_bytes,
            });
        }
        self.hasher.update(chunk);
        Ok(())
    }

    /// The entry's digest and size, if it matches what was expected.
    pub(super) fn verify(self) -> Result<(Sha256, u64), BlobError> {
        let actual = Sha256::from_digest(&self.hasher.finalize());
        match self.expected {
            Some(expected) if expected != actual => Err(BlobError::DigestMismatch {
                expected: expected.to_string(),
                actual: actual.to_string(),
            }),
            _ => Ok((actual, self.len)),
        }
    }
}

/// The entry being staged, or the error for a write outside one.
pub(super) fn current<T>(entry: &mut Option<T>) -> Result<&mut T, BlobError> {
    entry
        .as_mut()
        .ok_or_else(|| BlobError::Io(std::io::Error::other("a batch write outside an entry")))
}

/// The entry being finished, or the error for a finish outside one.
pub(super) fn take_current<T>(entry: &mut Option<T>) -> Result<T, BlobError> {
    entry
        .take()
        .ok_or_else(|| BlobError::Io(std::io::Error::other("no entry to finish")))
}

/// One upload held in memory and hashed as it arrives, checked against its digest only
/// when it is committed (the PostgreSQL and S3 writers: nothing reaches the store first).
pub(super) struct MemoryUpload {
    entry: Entry,
    bytes: Vec<u8>,
}

impl MemoryUpload {
    pub(super) fn new(max_bytes: u64) -> MemoryUpload {
        MemoryUpload {
            entry: Entry::new(None, max_bytes),
            bytes: Vec::new(),
        }
    }

    pub(super) fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.entry.take(chunk)?;
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// The upload's digest and bytes, if it hashes to `expected` (when given).
    pub(super) fn verify(
        mut self,
        expected: Option<&Sha256>,
    ) -> Result<(Sha256, Vec<u8>), BlobError> {
        self.entry.expected = expected.cloned();
        let (sha256, _) = self.entry.verify()?;
        Ok((sha256, self.bytes))
    }
}

/// An entry kept in memory while it is staged (the memory, PostgreSQL and S3 batches).
#[derive(Default)]
pub(super) struct BufferedEntry(Option<MemoryUpload>);

impl BufferedEntry {
    pub(super) fn start(&mut self, expected: Option<Sha256>, max_bytes: u64) {
        self.0 = Some(MemoryUpload {
            entry: Entry::new(expected, max_bytes),
            bytes: Vec::new(),
        });
    }

    pub(super) fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        current(&mut self.0)?.write(chunk)
    }

    /// The verified entry: its digest, size and bytes.
    pub(super) fn finish(&mut self) -> Result<(Sha256, u64, Vec<u8>), BlobError> {
        let upload = take_current(&mut self.0)?;
        let (sha256, len) = upload.entry.verify()?;
        Ok((sha256, len, upload.bytes))
    }
}

/// Removes the leftovers of batches that never finished (see
/// [`BlobStore::remove_stale_temps`]): at start and by garbage collection. A failure is
/// logged, never fatal: leftovers only take disk space.
pub async fn sweep_stale_temps(store: &dyn BlobStore, older_than: std::time::Duration) {
    match store.remove_stale_temps(older_than).await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "removed temporary files of unfinished uploads"),
        Err(e) => {
            tracing::warn!(error = %e, "removing temporary files of unfinished uploads failed")
        }
    }
}

/// A new batch on `store`, of the backend's own kind (see [`BlobStore::batch`]).
/// `spill_bytes` bounds what a batch may hold in memory before it writes some out early
/// (archives); `None` keeps the batch whole until it is published (bulk uploads, whose
/// requests are bounded by the bulk limits).
pub fn start(
    store: &Arc<dyn BlobStore>,
    spill_bytes: Option<u64>,
) -> Result<Box<dyn BlobBatch>, BlobError> {
    store.batch(spill_bytes)
}

/// Where a [`StagedBatch`] stores verified entries, many at once (already one of each
/// digest): PostgreSQL in one transaction, an object store by parallel uploads.
#[async_trait]
pub(super) trait StagedSink: Send + Sync + 'static {
    async fn store(&self, entries: Vec<(Sha256, Vec<u8>)>) -> Result<(), BlobError>;
}

/// A batch held in memory and stored through its [`StagedSink`] at publish. With
/// `spill_bytes` (archives), the staged entries are stored early whenever they pass it,
/// so a batch holds at most that much in memory.
pub(super) struct StagedBatch<S> {
    sink: S,
    handle: tokio::runtime::Handle,
    spill_bytes: Option<u64>,
    staged: Vec<(Sha256, Vec<u8>)>,
    staged_bytes: u64,
    written: Vec<(Sha256, u64)>,
    current: BufferedEntry,
}

impl<S: StagedSink> StagedBatch<S> {
    pub(super) fn new(sink: S, spill_bytes: Option<u64>) -> Result<StagedBatch<S>, BlobError> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| BlobError::Io(std::io::Error::other(e)))?;
        Ok(StagedBatch {
            sink,
            handle,
            spill_bytes,
            staged: Vec::new(),
            staged_bytes: 0,
            written: Vec::new(),
            current: BufferedEntry::default(),
        })
    }
}

/// Stores `staged` through `sink`, adding the digests and sizes it stored to `written`.
async fn store_staged<S: StagedSink>(
    sink: &S,
    staged: Vec<(Sha256, Vec<u8>)>,
    written: &mut Vec<(Sha256, u64)>,
) -> Result<(), BlobError> {
    let staged = dedup(staged);
    let stored: Vec<(Sha256, u64)> = staged
        .iter()
        .map(|(sha256, bytes)| (sha256.clone(), bytes.len() as u64))
        .collect();
    sink.store(staged).await?;
    written.extend(stored);
    Ok(())
}

#[async_trait]
impl<S: StagedSink> BlobBatch for StagedBatch<S> {
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
            self.handle
                .block_on(store_staged(&self.sink, staged, &mut self.written))?;
            self.staged_bytes = 0;
        }
        Ok((sha256, len))
    }

    async fn publish(self: Box<Self>) -> Result<Vec<(Sha256, u64)>, BlobError> {
        let StagedBatch {
            sink,
            staged,
            mut written,
            ..
        } = *self;
        store_staged(&sink, staged, &mut written).await?;
        Ok(dedup(written))
    }
}

/// One of each digest: the same bytes twice in a batch are stored once.
pub(super) fn dedup<T>(staged: Vec<(Sha256, T)>) -> Vec<(Sha256, T)> {
    let mut seen = std::collections::HashSet::new();
    staged
        .into_iter()
        .filter(|(sha256, _)| seen.insert(sha256.clone()))
        .collect()
}
