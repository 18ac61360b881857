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
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tempfile::TempPath;

use super::batch::{current, dedup, take_current, BlobBatch, Entry};
use super::{blob_path, BlobError};
use crate::domain::names::Sha256;

/// Write buffer of one staged file: most site files fit in one write.
const WRITE_BUFFER: usize = 64 * 1024;

pub(super) struct FolderBatch {
    root: PathBuf,
    staged: Vec<(Sha256, TempPath)>,
    current: Option<(Entry, BufWriter<File>, TempPath)>,
}

impl FolderBatch {
    pub(super) fn new(root: PathBuf) -> FolderBatch {
        FolderBatch {
            root,
            staged: Vec::new(),
            current: None,
        }
    }
}

#[async_trait]
impl BlobBatch for FolderBatch {
    fn start(&mut self, expected: Option<Sha256>, max_bytes: u64) -> Result<(), BlobError> {
        let (file, temp) = tempfile::NamedTempFile::new_in(self.root.join("tmp"))?.into_parts();
        self.current = Some((
            Entry::new(expected, max_bytes),
            BufWriter::with_capacity(WRITE_BUFFER, file),
            temp,
        ));
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        let (entry, file, _) = current(&mut self.current)?;
        entry.take(chunk)?;
        file.write_all(chunk)?;
        Ok(())
    }

    fn finish(&mut self) -> Result<(Sha256, u64), BlobError> {
        let (entry, file, temp) = take_current(&mut self.current)?;
        // Closed now: an archive may stage more files than a process may keep open.
        file.into_inner().map_err(|e| e.into_error())?;
        let (sha256, len) = entry.verify()?;
        self.staged.push((sha256.clone(), temp));
        Ok((sha256, len))
    }

    async fn publish(self: Box<Self>) -> Result<Vec<(Sha256, u64)>, BlobError> {
        let FolderBatch { root, staged, .. } = *self;
        tokio::task::spawn_blocking(move || publish_blocking(&root, staged))
            .await
            .map_err(io::Error::other)?
            .map_err(BlobError::from)
    }
}

/// Flush, rename, flush: see the module documentation.
fn publish_blocking(
    root: &Path,
    staged: Vec<(Sha256, TempPath)>,
) -> io::Result<Vec<(Sha256, u64)>> {
    let staged = dedup(staged);
    let temps: Vec<&Path> = staged.iter().map(|(_, temp)| temp.as_ref()).collect();
    durability::sync_files(root, &temps)?;
    let mut published = Vec::with_capacity(staged.len());
    let mut folders = BTreeSet::new();
    for (sha256, temp) in staged {
        let len = std::fs::metadata(&temp)?.len();
        let target = blob_path(root, &sha256);
        if target.try_exists()? {
            // Same digest, same bytes: the stored copy is as good as this one.
            drop(temp);
        } else {
            if let Some(parent) = target.parent() {
                if !parent.exists() {
                    std::fs::create_dir_all(parent)?;
                    // A new fan-out folder is an entry of its parent, made durable there.
                    if let Some(grandparent) = parent.parent() {
                        folders.insert(grandparent.to_owned());
                    }
                    folders.insert(root.to_owned());
                }
                folders.insert(parent.to_owned());
            }
            temp.persist(&target).map_err(|e| e.error)?;
        }
        published.push((sha256, len));
    }
    let folders: Vec<&Path> = folders.iter().map(PathBuf::as_path).collect();
    durability::sync_folders(root, &folders)?;
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
