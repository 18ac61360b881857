//! Uploading many files per request (`POST /deploys/{id}/files`, an uncompressed tar
//! of files named by digest): the required files are cut into batches by count and
//! bytes, a few batches are in flight at once, a failed batch is retried whole, and the
//! progress bar counts bytes and files. A server without the bulk route (404/405) gets
//! the per-file `PUT`s instead, and so does a batch it finds too large (413).

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use backon::Retryable;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use reqwest::StatusCode;

use super::upload::{upload_all, UploadError};
use super::walk::HashedFile;
use crate::client::{self, ApiError, Client};

/// Files per request: half the server's default (5,000). Each batch costs the server a
/// database transaction whose commit rewrites every index page the batch's random
/// digests touch, and two flushes: a 10,001-file first deploy spent 1.17-1.25 s
/// uploading in batches of 1,000 and 1.04-1.14 s in batches of 2,500, four in flight
/// (issue 18, fourth session; BENCHMARKS.md).
pub const BATCH_FILES: usize = 2_500;
/// File bytes per request: well under the server's default (64 MiB). The tar is
/// streamed from disk, so hostctl holds a few chunks per batch in flight, not the batch.
pub const BATCH_BYTES: u64 = 32 * 1024 * 1024;
/// Batches in flight: one being placed by the server while the next ones stream.
pub const IN_FLIGHT: usize = 4;
/// How the files are cut into requests: files per batch (and at most [`BATCH_BYTES`]
/// bytes) and batches in flight (`--batch-files`, `--batches-in-flight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    pub files: usize,
    pub in_flight: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            files: BATCH_FILES,
            in_flight: IN_FLIGHT,
        }
    }
}

/// Bytes per chunk of a streamed request body (progress moves at this grain).
const CHUNK: usize = 64 * 1024;

/// Cuts `files` into batches of at most `max_files` files and `max_bytes` bytes (a file
/// larger than `max_bytes` is a batch of its own), in the given order.
pub fn batches<'a>(
    files: &[&'a HashedFile],
    max_files: usize,
    max_bytes: u64,
) -> Vec<Vec<&'a HashedFile>> {
    let mut batches = Vec::new();
    let mut current: Vec<&HashedFile> = Vec::new();
    let mut bytes = 0u64;
    for file in files {
        let full = current.len() >= max_files || bytes.saturating_add(file.size) > max_bytes;
        if full && !current.is_empty() {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes = bytes.saturating_add(file.size);
        current.push(file);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Uploads `files` in batches; per file (at `concurrency`) when the server has no bulk
/// route. `files` are distinct by digest (see `upload::files_for`).
pub async fn upload_in_batches(
    client: &Client,
    deploy_id: &str,
    files: &[&HashedFile],
    shape: Batching,
    concurrency: usize,
    progress: &ProgressBar,
) -> Result<(), UploadError> {
    let total = files.len() as u64;
    let done = AtomicU64::new(0);
    let count = |n: usize| {
        let done = done.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        progress.set_message(format!("{done}/{total} files"));
    };
    count(0);
    let count = &count;
    let result = futures::stream::iter(batches(files, shape.files, BATCH_BYTES))
        .map(|batch| async move {
            match send_with_retries(client, Some(deploy_id), &batch, progress).await {
                Err(e) if e.status() == Some(StatusCode::PAYLOAD_TOO_LARGE) => {
                    // This server takes less per request than we send: one by one it is.
                    upload_all(client, deploy_id, &batch, concurrency, progress).await?;
                }
                sent => sent.map_err(|source| batch_error(&batch, source))?,
            }
            count(batch.len());
            Ok::<(), BatchFailure>(())
        })
        .buffer_unordered(shape.in_flight)
        .try_collect::<()>()
        .await;
    match result {
        Ok(()) => Ok(()),
        Err(BatchFailure::Unsupported) => {
            upload_all(client, deploy_id, files, concurrency, progress).await?;
            count(files.len());
            Ok(())
        }
        Err(BatchFailure::Upload(e)) => Err(e),
    }
}

/// What the early upload (before the deploy exists) did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Early {
    /// False when the server has no `POST /blobs/missing`: everything goes after the
    /// deploy is created, as before.
    pub supported: bool,
    /// Files (distinct digests) asked about, and of those uploaded.
    pub asked: usize,
    pub uploaded: usize,
    pub bytes: u64,
    pub batches: usize,
    /// The digests uploaded (they count as uploaded in the deploy's summary).
    pub digests: Vec<String>,
}

/// Uploads the files hashing reads, while it reads the rest: per chunk of up to
/// `shape.files` files (or [`BATCH_BYTES`]) one "which of these are missing" call, then
/// the missing files in batches (`POST /blobs`), `shape.in_flight` chunks at a time. The deploy
/// created afterwards then requires nothing, or only what this left out: files over
/// `max_file_bytes` or a batch the server found too large (413), which go to the deploy
/// as before. Stops early, and says so, on a server without the route.
pub async fn upload_early(
    client: &Client,
    fresh: tokio::sync::mpsc::UnboundedReceiver<HashedFile>,
    max_file_bytes: u64,
    shape: Batching,
    progress: &ProgressBar,
) -> Result<Early, UploadError> {
    let early = std::sync::Mutex::new(Early {
        supported: true,
        ..Early::default()
    });
    let chunks = futures::stream::unfold(
        (fresh, HashSet::<String>::new()),
        move |(mut fresh, mut seen)| async move {
            let mut chunk = Vec::new();
            let mut bytes = 0u64;
            while chunk.len() < shape.files && bytes < BATCH_BYTES {
                let Some(file) = fresh.recv().await else {
                    break;
                };
                if file.size <= max_file_bytes && seen.insert(file.sha256.clone()) {
                    bytes += file.size;
                    chunk.push(file);
                }
            }
            (!chunk.is_empty()).then_some((chunk, (fresh, seen)))
        },
    );
    let early_ref = &early;
    let result = chunks
        .map(|chunk| async move {
            let digests = chunk.iter().map(|f| f.sha256.clone()).collect::<Vec<_>>();
            let missing = (|| client.missing_blobs(digests.clone()))
                .retry(client::backoff())
                .when(ApiError::is_retryable)
                .await
                .map_err(|source| batch_error(&chunk.iter().collect::<Vec<_>>(), source))?;
            let missing: HashSet<String> = missing.into_iter().collect();
            let files: Vec<&HashedFile> = chunk
                .iter()
                .filter(|f| missing.contains(&f.sha256))
                .collect();
            let bytes: u64 = files.iter().map(|f| f.size).sum();
            progress.inc_length(bytes);
            for batch in batches(&files, shape.files, BATCH_BYTES) {
                match send_with_retries(client, None, &batch, progress).await {
                    // Too large for this server: left for the deploy, which requires it.
                    Err(e) if e.status() == Some(StatusCode::PAYLOAD_TOO_LARGE) => {
                        progress.dec_length(batch.iter().map(|f| f.size).sum());
                        continue;
                    }
                    sent => sent.map_err(|source| batch_error(&batch, source))?,
                }
                if let Ok(mut early) = early_ref.lock() {
                    early.uploaded += batch.len();
                    early.digests.extend(batch.iter().map(|f| f.sha256.clone()));
                    early.bytes += batch.iter().map(|f| f.size).sum::<u64>();
                    early.batches += 1;
                    progress.set_message(format!("{} files", early.uploaded));
                }
            }
            if let Ok(mut early) = early_ref.lock() {
                early.asked += chunk.len();
            }
            Ok::<(), BatchFailure>(())
        })
        .buffer_unordered(shape.in_flight)
        .try_collect::<()>()
        .await;
    let mut early = early.into_inner().unwrap_or_default();
    match result {
        Ok(()) => Ok(early),
        Err(BatchFailure::Unsupported) => {
            early.supported = false;
            Ok(early)
        }
        Err(BatchFailure::Upload(e)) => Err(e),
    }
}

/// Why the batched upload stopped.
enum BatchFailure {
    /// The server has no bulk route: send every file on its own.
    Unsupported,
    Upload(UploadError),
}

impl From<UploadError> for BatchFailure {
    fn from(e: UploadError) -> Self {
        BatchFailure::Upload(e)
    }
}

fn batch_error(batch: &[&HashedFile], source: ApiError) -> BatchFailure {
    match source.status() {
        Some(StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED) => BatchFailure::Unsupported,
        _ => BatchFailure::Upload(UploadError::Api {
            site_path: format!(
                "a batch of {} files from {}",
                batch.len(),
                batch.first().map_or("", |f| f.site_path.as_str())
            ),
            source,
        }),
    }
}

/// Sends the batch as a tar streamed from disk while it is read, to the deploy or, with
/// `None`, to the caller's uploads (`POST /blobs`), again on transient failures (each
/// attempt reads the files again: nothing of the batch is held whole).
async fn send_with_retries(
    client: &Client,
    deploy_id: Option<&str>,
    batch: &[&HashedFile],
    progress: &ProgressBar,
) -> Result<(), ApiError> {
    let owned: Arc<[HashedFile]> = batch.iter().map(|f| (*f).clone()).collect();
    let attempt = || async {
        let sent = Arc::new(AtomicU64::new(0));
        let body = tar_body(Arc::clone(&owned), progress, &sent);
        let sending = match deploy_id {
            Some(id) => client.upload_batch(id, body).await,
            None => client.upload_blobs(body).await,
        };
        sending.inspect_err(|_| {
            // Whatever this attempt counted will be sent again (or never count).
            progress.dec(sent.load(Ordering::Relaxed));
        })
    };
    attempt
        .retry(client::backoff())
        .when(ApiError::is_retryable)
        .await
}

/// The tar of `files` as a request body, written on a blocking thread a chunk ahead of
/// the network; each file's bytes move the progress bar as they go out. A file that
/// cannot be read ends the body with an error (the request fails, nothing is stored).
fn tar_body(
    files: Arc<[HashedFile]>,
    progress: &ProgressBar,
    sent: &Arc<AtomicU64>,
) -> reqwest::Body {
    let (chunks, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(CHUNKS_AHEAD);
    let progress = progress.clone();
    let sent = Arc::clone(sent);
    tokio::task::spawn_blocking(move || {
        let writer = ChunkWriter {
            chunks: chunks.clone(),
            buffer: Vec::with_capacity(CHUNK),
        };
        let written = write_tar(writer, &files, |bytes| {
            sent.fetch_add(bytes, Ordering::Relaxed);
            progress.inc(bytes);
        });
        if let Err(e) = written {
            // The receiver may be gone already (the request failed first): nothing to tell.
            let _ = chunks.blocking_send(Err(e));
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    reqwest::Body::wrap_stream(stream)
}

/// Chunks of the tar queued for the request body.
const CHUNKS_AHEAD: usize = 4;

/// Writes the uncompressed tar of `files` into `out`, each entry named by its digest,
/// calling `done` with each file's size once its bytes are written.
fn write_tar<W: Write>(
    out: W,
    files: &[HashedFile],
    mut done: impl FnMut(u64),
) -> std::io::Result<W> {
    let mut builder = tar::Builder::new(out);
    for file in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(file.size);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        let reader = std::fs::File::open(&file.disk_path)?;
        // A file that changed size since it was hashed fails here (or, if the size is
        // the same, at the server's digest check), never as a silently wrong deploy.
        builder.append_data(
            &mut header,
            &file.sha256,
            std::io::Read::take(reader, file.size),
        )?;
        done(file.size);
    }
    let mut out = builder.into_inner()?;
    out.flush()?;
    Ok(out)
}

/// A `Write` that hands the request body [`CHUNK`]-sized pieces through a channel.
struct ChunkWriter {
    chunks: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.chunks
            .blocking_send(Ok(Bytes::from(chunk)))
            // The request ended (failed, or the server answered early): stop reading files.
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn file(name: &str, size: u64) -> HashedFile {
        HashedFile {
            site_path: format!("/{name}"),
            disk_path: PathBuf::from(name),
            sha256: name.into(),
            size,
        }
    }

    fn names(batches: &[Vec<&HashedFile>]) -> Vec<Vec<String>> {
        batches
            .iter()
            .map(|b| b.iter().map(|f| f.sha256.clone()).collect())
            .collect()
    }

    #[test]
    fn batches_are_cut_by_count_and_by_bytes() {
        let files = [
            file("a", 10),
            file("b", 10),
            file("c", 10),
            file("d", 25),
            file("e", 1),
        ];
        let refs: Vec<&HashedFile> = files.iter().collect();
        assert_eq!(
            names(&batches(&refs, 2, 30)),
            [vec!["a", "b"], vec!["c"], vec!["d", "e"]]
        );
    }

    #[test]
    fn a_file_over_the_byte_bound_is_a_batch_of_its_own() {
        let files = [file("small", 1), file("huge", 100), file("tail", 1)];
        let refs: Vec<&HashedFile> = files.iter().collect();
        assert_eq!(
            names(&batches(&refs, 10, 50)),
            [vec!["small"], vec!["huge"], vec!["tail"]]
        );
    }

    #[test]
    fn a_tar_names_each_entry_by_its_digest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("index.html");
        std::fs::write(&path, b"hello").expect("write");
        let files = [HashedFile {
            site_path: "/index.html".into(),
            disk_path: path,
            sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into(),
            size: 5,
        }];
        let mut counted = Vec::new();
        let tar = write_tar(Vec::new(), &files, |n| counted.push(n)).expect("tar");
        assert_eq!(counted, [5]);
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive.entries().expect("entries");
        let mut entry = entries.next().expect("one entry").expect("entry");
        assert_eq!(
            entry.path().expect("path").to_str(),
            Some(files[0].sha256.as_str())
        );
        let mut body = String::new();
        std::io::Read::read_to_string(&mut entry, &mut body).expect("read");
        assert_eq!(body, "hello");
    }
}
