//! A batch of the folder store: entries are written to temporary files without a sync,
//! then [`publish`](FolderBatch::publish) flushes them all at once, renames them into
//! place, and makes the renames durable with one more flush. A per-file upload pays a
//! file sync and a directory sync each; a batch of a thousand files pays two flushes.
//!
//! Crash safety: a blob file appears under its digest only after its bytes are on disk,
//! so a crash at any point leaves each blob absent or complete (temporary files are
//! garbage in `tmp/`). The caller records the batch in the database after `publish`, so
//! a recorded blob is always a durable one.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tempfile::TempPath;

use super::batch::{current, dedup, take_current, BlobBatch, Entry};
use super::{blob_path, BlobError};
use crate::domain::names::Sha256;

/// Write buffer of the staged files: most site files fit in one write.
const WRITE_BUFFER: usize = 64 * 1024;

/// One batch at a time moves its files into place. Moves between folders take a
/// filesystem-wide lock in Linux (`s_vfs_rename_mutex`), so concurrent batches only
/// contend for it: three 2,500-file batches placed together took 2.4-2.7 s each
/// (profile of issue 18), one alone 0.42 s.
#[derive(Clone, Default)]
pub(super) struct Placing(Arc<Mutex<()>>);

pub(super) struct FolderBatch {
    root: PathBuf,
    placing: Placing,
    /// Each entry's digest, size and temporary file.
    staged: Vec<(Sha256, (u64, TempPath))>,
    current: Option<(Entry, File, TempPath)>,
    /// The current entry's bytes not written yet: one buffer for every entry of the
    /// batch (a buffer per entry, freed and allocated again, cost more page faults
    /// than the writes themselves).
    pending: Vec<u8>,
}

impl FolderBatch {
    pub(super) fn new(root: PathBuf, placing: Placing) -> FolderBatch {
        FolderBatch {
            root,
            placing,
            staged: Vec::new(),
            current: None,
            pending: Vec::with_capacity(WRITE_BUFFER),
        }
    }
}

#[async_trait]
impl BlobBatch for FolderBatch {
    fn start(&mut self, expected: Option<Sha256>, max_bytes: u64) -> Result<(), BlobError> {
        let (file, temp) = tempfile::NamedTempFile::new_in(self.root.join("tmp"))?.into_parts();
        self.pending.clear();
        self.current = Some((Entry::new(expected, max_bytes), file, temp));
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        let (entry, file, _) = current(&mut self.current)?;
        entry.take(chunk)?;
        if self.pending.len() + chunk.len() > WRITE_BUFFER {
            file.write_all(&self.pending)?;
            self.pending.clear();
        }
        if chunk.len() >= WRITE_BUFFER {
            file.write_all(chunk)?;
        } else {
            self.pending.extend_from_slice(chunk);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(Sha256, u64), BlobError> {
        let (entry, mut file, temp) = take_current(&mut self.current)?;
        file.write_all(&self.pending)?;
        self.pending.clear();
        // Closed now: an archive may stage more files than a process may keep open.
        drop(file);
        let (sha256, len) = entry.verify()?;
        self.staged.push((sha256.clone(), (len, temp)));
        Ok((sha256, len))
    }

    async fn publish(self: Box<Self>) -> Result<Vec<(Sha256, u64)>, BlobError> {
        let FolderBatch {
            root,
            placing,
            staged,
            ..
        } = *self;
        tokio::task::spawn_blocking(move || publish_blocking(&root, &placing, staged))
            .await
            .map_err(io::Error::other)?
            .map_err(BlobError::from)
    }
}

/// Flush, rename, flush: see the module documentation.
fn publish_blocking(
    root: &Path,
    placing: &Placing,
    staged: Vec<(Sha256, (u64, TempPath))>,
) -> io::Result<Vec<(Sha256, u64)>> {
    let started = std::time::Instant::now();
    let mut staged = dedup(staged);
    // In digest order: one fan-out folder after the other.
    staged.sort_unstable_by(|(a, _), (b, _)| a.as_str().cmp(b.as_str()));
    let temps: Vec<&Path> = staged.iter().map(|(_, (_, temp))| temp.as_ref()).collect();
    durability::sync_files(root, &temps)?;
    let synced = started.elapsed();
    let mut published = Vec::with_capacity(staged.len());
    let mut folders = BTreeSet::new();
    // A poisoned lock guards nothing: the batch that panicked left no state behind.
    let placing = placing.0.lock().unwrap_or_else(PoisonError::into_inner);
    for (sha256, (len, temp)) in staged {
        let target = blob_path(root, &sha256);
        let parent = target.parent().unwrap_or(root).to_owned();
        // A stored copy is renamed over too: same digest, same bytes, and this copy is
        // on disk already (flushed above), so the entry is complete whichever survives
        // a crash. Not asking first saves two lookups a file.
        if let Err(refused) = temp.persist(&target) {
            if refused.error.kind() != io::ErrorKind::NotFound {
                return Err(refused.error);
            }
            // A fan-out folder removed since the store was opened (which makes all
            // 256): made again, and made durable as an entry of its parent.
            std::fs::create_dir_all(&parent)?;
            if let Some(grandparent) = parent.parent() {
                folders.insert(grandparent.to_owned());
            }
            folders.insert(root.to_owned());
            refused.path.persist(&target).map_err(|e| e.error)?;
        }
        folders.insert(parent);
        published.push((sha256, len));
    }
    drop(placing);
    let renamed = started.elapsed();
    let folders: Vec<&Path> = folders.iter().map(PathBuf::as_path).collect();
    durability::sync_folders(root, &folders)?;
    tracing::debug!(
        files = published.len(),
        folders = folders.len(),
        sync_files_ms = synced.as_millis(),
        rename_ms = (renamed - synced).as_millis(),
        sync_folders_ms = (started.elapsed() - renamed).as_millis(),
        "folder batch published"
    );
    Ok(published)
}

/// How a batch is flushed. On Linux one `syncfs` per step writes back the whole
/// filesystem once, however many files the batch holds; elsewhere each file and folder
/// is synced, a few at a time in parallel, so their syncs share journal commits.
mod durability {
    use std::io;
    use std::path::Path;

    #[cfg(target_os = "linux")]
    pub(super) fn sync_files(root: &Path, files: &[&Path]) -> io::Result<()> {
        if files.len() <= 1 {
            return super::parallel::each(files, |file| std::fs::File::open(file)?.sync_data());
        }
        syncfs(root)
    }

    #[cfg(target_os = "linux")]
    pub(super) fn sync_folders(root: &Path, folders: &[&Path]) -> io::Result<()> {
        if folders.len() <= 1 {
            return super::parallel::each(folders, |folder| {
                std::fs::File::open(folder)?.sync_all()
            });
        }
        syncfs(root)
    }

    #[cfg(target_os = "linux")]
    fn syncfs(root: &Path) -> io::Result<()> {
        let folder = std::fs::File::open(root)?;
        rustix::fs::syncfs(&folder).map_err(io::Error::from)
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn sync_files(_root: &Path, files: &[&Path]) -> io::Result<()> {
        super::parallel::each(files, |file| std::fs::File::open(file)?.sync_data())
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn sync_folders(_root: &Path, folders: &[&Path]) -> io::Result<()> {
        super::parallel::each(folders, |folder| std::fs::File::open(folder)?.sync_all())
    }
}

mod parallel {
    use std::io;

    /// Threads syncing at once: enough to overlap device round trips.
    const THREADS: usize = 8;

    /// Runs `f` on every item, on up to [`THREADS`] threads; the first error.
    pub(super) fn each<T: Sync>(
        items: &[T],
        f: impl Fn(&T) -> io::Result<()> + Sync,
    ) -> io::Result<()> {
        if items.len() <= 1 {
            return items.iter().try_for_each(&f);
        }
        let per_thread = items.len().div_ceil(THREADS);
        std::thread::scope(|scope| {
            let workers: Vec<_> = items
                .chunks(per_thread)
                .map(|chunk| scope.spawn(|| chunk.iter().try_for_each(&f)))
                .collect();
            workers.into_iter().try_for_each(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a sync thread panicked")))
            })
        })
    }
}

/// Removes the files in `tmp` not modified for `older_than`: what uploads and batches
/// that never finished left there (a crash mid-batch; a batch's files stay in `tmp`
/// until it is published). A live request's files are younger than any sensible
/// `older_than`; [`Duration::ZERO`] removes every one, for a store no other process
/// writes to. The number of files removed.
pub(super) fn remove_stale_temps(tmp: &Path, older_than: Duration) -> io::Result<u64> {
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in std::fs::read_dir(tmp)? {
        let entry = entry?;
        let modified = match entry.metadata().and_then(|m| m.modified()) {
            Ok(modified) => modified,
            // Removed by its own writer meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
        if age < older_than {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::blobs::{BlobStore, FolderBlobStore};

    #[tokio::test]
    async fn a_batch_dropped_mid_entry_leaves_nothing_visible_and_its_temps_are_swept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderBlobStore::open(dir.path()).expect("open");
        let mut batch = store.batch(None).expect("a folder batch");
        batch.start(None, 1024).expect("start");
        batch.write(b"first entry").expect("write");
        let (first, _) = batch.finish().expect("finish");
        batch.start(None, 1024).expect("start");
        batch.write(b"half of the second").expect("write");
        // A crash: the process dies with the batch staged; nothing cleans up after it.
        std::mem::forget(batch);
        let tmp = dir.path().join("tmp");
        assert_eq!(std::fs::read_dir(&tmp).expect("tmp").count(), 2);
        assert!(store.get(&first).await.expect("get").is_none());

        // Younger than the grace: maybe a live request's, so kept.
        let kept = remove_stale_temps(&tmp, Duration::from_secs(3600)).expect("sweep");
        assert_eq!(kept, 0);
        // Older than it: removed.
        let old = SystemTime::now() - Duration::from_secs(7200);
        for entry in std::fs::read_dir(&tmp).expect("tmp") {
            let path = entry.expect("entry").path();
            let file = File::options().write(true).open(path).expect("open");
            file.set_modified(old).expect("set mtime");
        }
        let removed = remove_stale_temps(&tmp, Duration::from_secs(3600)).expect("sweep");
        assert_eq!(removed, 2);
        assert_eq!(std::fs::read_dir(&tmp).expect("tmp").count(), 0);
    }

    #[tokio::test]
    async fn at_start_every_temp_file_goes_and_published_blobs_stay() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderBlobStore::open(dir.path()).expect("open");
        let mut batch = store.batch(None).expect("a folder batch");
        batch.start(None, 1024).expect("start");
        batch.write(b"kept").expect("write");
        batch.finish().expect("finish");
        let published = batch.publish().await.expect("publish");
        let mut crashed = store.batch(None).expect("a folder batch");
        crashed.start(None, 1024).expect("start");
        crashed.write(b"lost").expect("write");
        std::mem::forget(crashed);

        let swept = store
            .remove_stale_temps(Duration::ZERO)
            .await
            .expect("sweep");
        assert_eq!(swept, 1);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp"))
                .expect("tmp")
                .count(),
            0
        );
        let (kept, _) = &published[0];
        assert!(store.get(kept).await.expect("get").is_some());
    }
}
