//! Uploading many files per request (`POST /deploys/{id}/files`, an uncompressed tar
//! of files named by digest): the required files are cut into batches by count and
//! bytes, a few batches are in flight at once, a failed batch is retried whole, and the
//! progress bar counts bytes and files. A server without the bulk route (404/405) gets
//! the per-file `PUT`s instead, and so does a batch it finds too large (413).

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

/// Files per request: well under the server's default (5,000), so a batch stays a few
/// seconds of work even on a slow link.
pub const BATCH_FILES: usize = 2_500;
/// File bytes per request: well under the server's default (64 MiB); what hostctl holds
/// in memory per batch in flight.
pub const BATCH_BYTES: u64 = 32 * 1024 * 1024;
/// Batches in flight: one being written by the server while the next ones stream.
pub const IN_FLIGHT: usize = 3;
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
    let result = futures::stream::iter(batches(files, BATCH_FILES, BATCH_BYTES))
        .map(|batch| async move {
            match send_with_retries(client, deploy_id, &batch, progress).await {
                Err(e) if e.status() == Some(StatusCode::PAYLOAD_TOO_LARGE) => {
                    // This server takes less per request than we send: one by one it is.
                    upload_all(client, deploy_id, &batch, concurrency, progress).await?;
                }
                sent => sent.map_err(|source| batch_error(&batch, source))?,
            }
            count(batch.len());
            Ok::<(), BatchFailure>(())
        })
        .buffer_unordered(IN_FLIGHT)
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

/// Builds the batch's tar once, then sends it, again on transient failures.
async fn send_with_retries(
    client: &Client,
    deploy_id: &str,
    batch: &[&HashedFile],
    progress: &ProgressBar,
) -> Result<(), ApiError> {
    let owned: Vec<HashedFile> = batch.iter().map(|f| (*f).clone()).collect();
    let content: u64 = owned.iter().map(|f| f.size).sum();
    let tar = tokio::task::spawn_blocking(move || tar_of(&owned))
        .await
        .map_err(|e| read_failure(std::io::Error::other(e)))?
        .map_err(read_failure)?;
    let attempt = || async {
        let sent = Arc::new(AtomicU64::new(0));
        let body = counted_body(tar.clone(), content, progress, &sent);
        client.upload_batch(deploy_id, body).await.inspect_err(|_| {
            // Whatever this attempt counted will be sent again (or never count).
            progress.dec(sent.load(Ordering::Relaxed));
        })
    };
    attempt
        .retry(client::backoff())
        .when(ApiError::is_retryable)
        .await
}

/// A file that cannot be read for the tar, as the error a failed upload reports.
fn read_failure(e: std::io::Error) -> ApiError {
    ApiError::Status {
        status: StatusCode::BAD_REQUEST,
        body: format!("reading a file of the batch failed: {e}"),
    }
}

/// The uncompressed tar of `files`, each entry named by its digest.
fn tar_of(files: &[HashedFile]) -> std::io::Result<Bytes> {
    let bytes: u64 = files.iter().map(|f| f.size + 1024).sum();
    let mut builder = tar::Builder::new(Vec::with_capacity(usize::try_from(bytes).unwrap_or(0)));
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
    }
    Ok(Bytes::from(builder.into_inner()?))
}

/// The tar as a streamed body that moves the progress bar by the files' bytes it carries
/// (the tar's headers and padding are spread over them).
fn counted_body(
    tar: Bytes,
    content: u64,
    progress: &ProgressBar,
    sent: &Arc<AtomicU64>,
) -> reqwest::Body {
    let total = tar.len() as u64;
    let progress = progress.clone();
    let sent = Arc::clone(sent);
    let mut offset = 0usize;
    let chunks = std::iter::from_fn(move || {
        if offset >= tar.len() {
            return None;
        }
        let end = (offset + CHUNK).min(tar.len());
        let chunk = tar.slice(offset..end);
        offset = end;
        // Content bytes up to `end`, minus those counted already.
        let through = (u128::from(content) * end as u128 / u128::from(total.max(1))) as u64;
        let step = through.saturating_sub(sent.load(Ordering::Relaxed));
        sent.fetch_add(step, Ordering::Relaxed);
        progress.inc(step);
        Some(Ok::<Bytes, std::io::Error>(chunk))
    });
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
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
        let tar = tar_of(&files).expect("tar");
        let mut archive = tar::Archive::new(tar.as_ref());
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
