//! Content-addressed file storage: bytes are stored under their SHA-256 and never
//! change, so any layer may cache them forever. One trait, one implementation per
//! backend; embedded mode keeps them in a folder.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256 as Hasher};
use tokio::io::AsyncWriteExt;

use crate::domain::names::Sha256;

pub mod batch;
mod folder_batch;
mod postgres;
pub mod s3;

pub use batch::BlobBatch;
pub use postgres::PgBlobStore;
pub use s3::S3BlobStore;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the uploaded bytes hash to {actual}, not {expected}")]
    DigestMismatch { expected: String, actual: String },
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("blob storage failed: {0}")]
    Io(#[from] io::Error),
    /// The storage backend cannot be reached right now (a database failover).
    #[error("blob storage is unavailable: {0}")]
    Unavailable(String),
}

/// A stored blob, ready to be sent.
pub enum Blob {
    /// Already in memory.
    Bytes(Bytes),
    /// An open file of `len` bytes, for streaming large blobs.
    File { file: tokio::fs::File, len: u64 },
}

/// Writes one blob; the digest is computed from the bytes, never trusted from a client.
#[async_trait]
pub trait BlobWriter: Send {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError>;
    /// Makes the blob durable and visible under its digest. With `expected`, a different
    /// digest discards the bytes and fails.
    async fn commit(self: Box<Self>, expected: Option<&Sha256>)
        -> Result<(Sha256, u64), BlobError>;
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn writer(&self, max_bytes: u64) -> Result<Box<dyn BlobWriter>, BlobError>;
    async fn get(&self, sha256: &Sha256) -> Result<Option<Blob>, BlobError>;
    async fn delete(&self, sha256: &Sha256) -> Result<(), BlobError>;

    /// This backend's way of writing many blobs at once (see [`batch::start`]): the
    /// folder's one flush, PostgreSQL's one transaction, an object store's parallel uploads.
    fn batch(&self, spill_bytes: Option<u64>) -> Result<Box<dyn BlobBatch>, BlobError>;

    /// Removes what writes that never finished (a crash mid-batch) left behind and has
    /// not been touched for `older_than`; the number of leftovers removed.
    async fn remove_stale_temps(&self, _older_than: Duration) -> Result<u64, BlobError> {
        Ok(0)
    }

    /// A small blob's bytes at once (the serving path's cache misses).
    async fn read(&self, sha256: &Sha256) -> Result<Option<Bytes>, BlobError> {
        match self.get(sha256).await? {
            Some(blob) => read_to_bytes(blob).await.map(Some),
            None => Ok(None),
        }
    }

    /// A small blob's bytes read on the calling thread, where that costs less than a
    /// hand-off to the blocking pool: a local folder, whose read of a small file is a few
    /// system calls on the page cache (as nginx's workers read). `None`: this backend
    /// cannot; use [`BlobStore::read`].
    fn read_now(&self, _sha256: &Sha256) -> Option<Result<Option<Bytes>, BlobError>> {
        None
    }

    /// `range` of a blob (clamped to its end), for a Range request on a file too large
    /// to cache; an object store sends only those bytes.
    async fn read_range(
        &self,
        sha256: &Sha256,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Bytes>, BlobError> {
        Ok(self.read(sha256).await?.map(|bytes| {
            let len = bytes.len() as u64;
            let (start, end) = (range.start.min(len), range.end.min(len));
            bytes.slice(start as usize..end as usize)
        }))
    }

    /// Whether [`BlobStore::read_range`] fetches only the range (an object store), so the
    /// serving path asks it for a Range request's span instead of the whole blob.
    fn ranged_reads(&self) -> bool {
        false
    }

    /// Deletes many blobs; an object store does it in a few requests.
    async fn delete_many(&self, shas: &[Sha256]) -> Result<(), BlobError> {
        for sha256 in shas {
            self.delete(sha256).await?;
        }
        Ok(())
    }

    /// Whether a remote backend answers right now (readiness); `None` when the backend
    /// is checked elsewhere (the database) or is local.
    async fn probe(&self) -> Option<Result<(), BlobError>> {
        None
    }
}

/// Blobs as files `<root>/ab/<sha256>`, written to `<root>/tmp`, fsynced, then renamed,
/// so a blob file is either absent or complete. Blobs stored before one level of fan-out
/// (`<root>/ab/cd/<sha256>`, see [`legacy_blob_path`]) are read and deleted where they are.
pub struct FolderBlobStore {
    root: PathBuf,
    /// Taken by a batch while it moves its files into place (see `folder_batch`).
    placing: folder_batch::Placing,
}

impl FolderBlobStore {
    /// Opens (or lays out) the store: `tmp/` and the 256 fan-out folders exist, durably,
    /// before any upload, so storing a blob never makes a folder.
    pub fn open(root: &Path) -> io::Result<FolderBlobStore> {
        std::fs::create_dir_all(root.join("tmp"))?;
        let mut made = false;
        for byte in 0..=u8::MAX {
            let folder = root.join(format!("{byte:02x}"));
            if !folder.is_dir() {
                std::fs::create_dir_all(&folder)?;
                made = true;
            }
        }
        if made {
            std::fs::File::open(root)?.sync_all()?;
        }
        Ok(FolderBlobStore {
            root: root.to_owned(),
            placing: folder_batch::Placing::default(),
        })
    }
}

/// One level of fan-out, 256 folders. Two levels made a first deploy of 10,000 files
/// create ~9,700 folders (a `mkdir` and a directory sync each: the largest share of a
/// bulk upload's server time in issue 18's profile). ext4's and XFS's hashed directories
/// still find a name in a few block reads with tens of thousands of entries a folder
/// (millions of blobs).
fn blob_path(root: &Path, sha256: &Sha256) -> PathBuf {
    let hex = sha256.as_str();
    root.join(&hex[0..2]).join(hex)
}

/// Where blobs were stored before issue 18 (two levels of fan-out). Never written any
/// more; read, taken as already stored, and deleted there.
fn legacy_blob_path(root: &Path, sha256: &Sha256) -> PathBuf {
    let hex = sha256.as_str();
    root.join(&hex[0..2]).join(&hex[2..4]).join(hex)
}

/// The path the blob is stored at, in either layout; `None` when it is in neither.
fn existing_path(root: &Path, sha256: &Sha256) -> io::Result<Option<PathBuf>> {
    for path in [blob_path(root, sha256), legacy_blob_path(root, sha256)] {
        match std::fs::symlink_metadata(&path) {
            Ok(_) => return Ok(Some(path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Opens `path`; `None` when it does not exist.
fn open_if_present(path: &Path) -> io::Result<Option<std::fs::File>> {
    match std::fs::File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The blob's file, opened in the current layout, else in the older one.
fn open_blob(root: &Path, sha256: &Sha256) -> io::Result<Option<std::fs::File>> {
    match open_if_present(&blob_path(root, sha256))? {
        Some(file) => Ok(Some(file)),
        None => open_if_present(&legacy_blob_path(root, sha256)),
    }
}

/// A blob's bytes in one go: open, size, read (blocking).
fn read_whole(root: &Path, sha256: &Sha256) -> io::Result<Option<Bytes>> {
    let Some(mut file) = open_blob(root, sha256)? else {
        return Ok(None);
    };
    let len = file.metadata()?.len();
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    std::io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(Some(Bytes::from(bytes)))
}

struct FolderBlobWriter {
    file: tokio::fs::File,
    temp: tempfile::TempPath,
    hasher: Hasher,
    len: u64,
    max_bytes: u64,
    root: PathBuf,
}

#[async_trait]
impl BlobWriter for FolderBlobWriter {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.len += chunk.len() as u64;
        if self.len > self.max_bytes {
            return Err(BlobError::TooLarge {
                limit: self.max_bytes,
            });
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    async fn commit(
        mut self: Box<Self>,
        expected: Option<&Sha256>,
    ) -> Result<(Sha256, u64), BlobError> {
        let actual = Sha256::from_digest(&self.hasher.finalize_reset());
        if let Some(expected) = expected {
            if *expected != actual {
                return Err(BlobError::DigestMismatch {
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        self.file.flush().await?;
        self.file.sync_all().await?;
        let root = self.root;
        let target = blob_path(&root, &actual);
        let temp = self.temp;
        let len = self.len;
        let sha256 = actual.clone();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            if existing_path(&root, &sha256)?.is_some() {
                // Same digest, same bytes: the stored copy is as good as this one.
                return Ok(());
            }
            let parent = target.parent().map(Path::to_owned);
            if let Some(parent) = &parent {
                // Made by `open`; again only if someone removed it since.
                std::fs::create_dir_all(parent)?;
            }
            temp.persist(&target).map_err(|e| e.error)?;
            // The rename is durable only once the directory entry is.
            if let Some(parent) = parent {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(io::Error::other)??;
        Ok((actual, len))
    }
}

#[async_trait]
impl BlobStore for FolderBlobStore {
    async fn writer(&self, max_bytes: u64) -> Result<Box<dyn BlobWriter>, BlobError> {
        let tmp_dir = self.root.join("tmp");
        let (file, temp) =
            tokio::task::spawn_blocking(move || tempfile::NamedTempFile::new_in(tmp_dir))
                .await
                .map_err(io::Error::other)??
                .into_parts();
        Ok(Box::new(FolderBlobWriter {
            file: tokio::fs::File::from_std(file),
            temp,
            hasher: Hasher::new(),
            len: 0,
            max_bytes,
            root: self.root.clone(),
        }))
    }

    /// Staged on disk, so a batch holds no bytes in memory whatever its size.
    fn batch(&self, _spill_bytes: Option<u64>) -> Result<Box<dyn BlobBatch>, BlobError> {
        Ok(Box::new(folder_batch::FolderBatch::new(
            self.root.clone(),
            self.placing.clone(),
        )))
    }

    async fn get(&self, sha256: &Sha256) -> Result<Option<Blob>, BlobError> {
        let (root, sha) = (self.root.clone(), sha256.clone());
        let opened = tokio::task::spawn_blocking(move || -> io::Result<_> {
            let Some(file) = open_blob(&root, &sha)? else {
                return Ok(None);
            };
            let len = file.metadata()?.len();
            Ok(Some((file, len)))
        })
        .await
        .map_err(io::Error::other)??;
        Ok(opened.map(|(file, len)| Blob::File {
            file: tokio::fs::File::from_std(file),
            len,
        }))
    }

    /// One blocking call for open, size and read: through tokio's file each of them (and
    /// every read until EOF) is a hop to the blocking pool, which dominated the misses of
    /// a many-sites mix (issue 23).
    async fn read(&self, sha256: &Sha256) -> Result<Option<Bytes>, BlobError> {
        let (root, sha) = (self.root.clone(), sha256.clone());
        tokio::task::spawn_blocking(move || read_whole(&root, &sha))
            .await
            .map_err(io::Error::other)?
            .map_err(BlobError::from)
    }

    fn read_now(&self, sha256: &Sha256) -> Option<Result<Option<Bytes>, BlobError>> {
        Some(read_whole(&self.root, sha256).map_err(BlobError::from))
    }

    /// Removes the blob in either layout (uploading again a blob stored in the older one
    /// may have left a copy in each).
    async fn delete(&self, sha256: &Sha256) -> Result<(), BlobError> {
        for path in [
            blob_path(&self.root, sha256),
            legacy_blob_path(&self.root, sha256),
        ] {
            match tokio::fs::remove_file(path).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    async fn remove_stale_temps(&self, older_than: Duration) -> Result<u64, BlobError> {
        let tmp = self.root.join("tmp");
        tokio::task::spawn_blocking(move || folder_batch::remove_stale_temps(&tmp, older_than))
            .await
            .map_err(io::Error::other)?
            .map_err(BlobError::from)
    }
}

/// Reads a whole blob into memory (for small files and rule files).
pub async fn read_to_bytes(blob: Blob) -> Result<Bytes, BlobError> {
    match blob {
        Blob::Bytes(bytes) => Ok(bytes),
        Blob::File { mut file, len } => {
            use tokio::io::AsyncReadExt;
            let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.read_to_end(&mut buf).await?;
            Ok(Bytes::from(buf))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn put(
        store: &FolderBlobStore,
        bytes: &[u8],
        expected: Option<&Sha256>,
    ) -> Result<(Sha256, u64), BlobError> {
        let mut writer = store.writer(1024).await?;
        writer.write(bytes).await?;
        writer.commit(expected).await
    }

    #[tokio::test]
    async fn a_blob_is_stored_under_its_digest_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderBlobStore::open(dir.path()).expect("open");
        let (sha, len) = put(&store, b"hello", None).await.expect("put");
        assert_eq!(
            sha.as_str(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(len, 5);
        let blob = store.get(&sha).await.expect("get").expect("present");
        assert_eq!(
            read_to_bytes(blob).await.expect("read"),
            Bytes::from_static(b"hello")
        );
    }

    #[tokio::test]
    async fn a_wrong_digest_stores_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderBlobStore::open(dir.path()).expect("open");
        let claimed = Sha256::parse(&"0".repeat(64)).expect("sha");
        let err = put(&store, b"hello", Some(&claimed))
            .await
            .expect_err("refused");
        assert!(matches!(err, BlobError::DigestMismatch { .. }));
        assert!(store.get(&claimed).await.expect("get").is_none());
        let leftovers = std::fs::read_dir(dir.path().join("tmp"))
            .expect("tmp")
            .count();
        assert_eq!(leftovers, 0, "temporary file left behind");
    }

    #[tokio::test]
    async fn a_blob_is_stored_one_folder_deep_in_a_folder_laid_out_at_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderBlobStore::open(dir.path()).expect("open");
        let folders = std::fs::read_dir(dir.path()).expect("root").count();
        assert_eq!(folders, 257, "256 fan-out folders and tmp/");

        let (sha, _) = put(&store, b"hello", None).await.expect("put");

        let stored = dir.path().join("2c").join(sha.as_str());
        assert_eq!(std::fs::read(stored).expect("stored file"), b"hello");
        assert_eq!(std::fs::read_dir(dir.path()).expect("root").count(), 257);
    }

    #[tokio::test]
    async fn a_blob_of_the_older_two_level_layout_is_read_kept_and_deleted() {
        // Arrange: a blob as stores before one level of fan-out wrote it.
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderBlobStore::open(dir.path()).expect("open");
        let sha = Sha256::parse("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
            .expect("sha");
        let legacy = dir.path().join("2c").join("f2").join(sha.as_str());
        std::fs::create_dir_all(legacy.parent().expect("parent")).expect("mkdir");
        std::fs::write(&legacy, b"hello").expect("write");

        // Act and Assert: read whole and streamed.
        let read = store.read(&sha).await.expect("read");
        assert_eq!(read, Some(Bytes::from_static(b"hello")));
        let blob = store.get(&sha).await.expect("get").expect("present");
        assert_eq!(
            read_to_bytes(blob).await.expect("bytes"),
            Bytes::from_static(b"hello")
        );
        // Uploaded again: the stored copy counts, no second one is written.
        put(&store, b"hello", Some(&sha)).await.expect("put");
        assert!(!blob_path(dir.path(), &sha).exists());
        // Deleted: gone from the older layout too.
        store.delete(&sha).await.expect("delete");
        assert!(!legacy.exists());
        assert!(store.get(&sha).await.expect("get").is_none());
    }

    #[tokio::test]
    async fn deleting_removes_a_copy_in_each_layout() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderBlobStore::open(dir.path()).expect("open");
        let (sha, _) = put(&store, b"hello", None).await.expect("put");
        let legacy = legacy_blob_path(dir.path(), &sha);
        std::fs::create_dir_all(legacy.parent().expect("parent")).expect("mkdir");
        std::fs::write(&legacy, b"hello").expect("write");

        store.delete(&sha).await.expect("delete");

        assert!(!legacy.exists());
        assert!(!blob_path(dir.path(), &sha).exists());
        assert!(store.read(&sha).await.expect("read").is_none());
    }

    #[tokio::test]
    async fn writes_past_the_limit_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderBlobStore::open(dir.path()).expect("open");
        let mut writer = store.writer(4).await.expect("writer");
        assert!(matches!(
            writer.write(b"hello").await,
            Err(BlobError::TooLarge { limit: 4 })
        ));
    }
}
