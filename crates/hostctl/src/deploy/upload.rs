//! Uploading the files a new deploy still needs: bounded concurrency, each body streamed
//! from disk, retried on transient failures (`backon`), counted into a progress bar.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use backon::Retryable;
use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use tokio_util::io::ReaderStream;

use super::walk::HashedFile;
use crate::client::{self, ApiError, Client};

/// Read size when streaming a file body.
const CHUNK: usize = 64 * 1024;

/// Why the upload phase failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot read {}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("uploading {site_path} failed")]
    Api { site_path: String, source: ApiError },
    /// The server asked for bytes we never offered: a server bug, not ours to paper over.
    #[error("the server asked for a file that is not part of this deploy (sha256 {0})")]
    UnknownHash(String),
}

impl UploadError {
    /// Whether another attempt may succeed (see [`ApiError::is_retryable`]).
    fn is_retryable(&self) -> bool {
        matches!(self, UploadError::Api { source, .. } if source.is_retryable())
    }
}

/// The distinct files behind `required`, one per hash (several site paths may share one).
pub fn files_for<'a>(
    required: &[String],
    files: &'a [HashedFile],
) -> Result<Vec<&'a HashedFile>, UploadError> {
    let by_hash: HashMap<&str, &HashedFile> =
        files.iter().map(|f| (f.sha256.as_str(), f)).collect();
    let mut seen = HashSet::new();
    required
        .iter()
        .filter(|hash| seen.insert(hash.as_str()))
        .map(|hash| {
            by_hash
                .get(hash.as_str())
                .copied()
                .ok_or_else(|| UploadError::UnknownHash(hash.clone()))
        })
        .collect()
}

/// Uploads `files` to deploy `deploy_id`, at most `concurrency` at a time.
pub async fn upload_all(
    client: &Client,
    deploy_id: &str,
    files: &[&HashedFile],
    concurrency: usize,
    progress: &ProgressBar,
) -> Result<(), UploadError> {
    futures::stream::iter(files)
        .map(|file| upload_one(client, deploy_id, file, progress))
        .buffer_unordered(concurrency.max(1))
        .try_for_each(|()| async { Ok(()) })
        .await
}

async fn upload_one(
    client: &Client,
    deploy_id: &str,
    file: &HashedFile,
    progress: &ProgressBar,
) -> Result<(), UploadError> {
    let attempt = || async {
        let sent = Arc::new(AtomicU64::new(0));
        let body = file_body(file, progress, &sent).await?;
        client
            .upload_file(deploy_id, &file.sha256, file.size, body)
            .await
            .map_err(|source| {
                // Whatever this attempt streamed will be sent again (or never count).
                progress.dec(sent.load(Ordering::Relaxed));
                UploadError::Api {
                    site_path: file.site_path.clone(),
                    source,
                }
            })
    };
    attempt
        .retry(client::backoff())
        .when(UploadError::is_retryable)
        .await
}

/// Streams the file from disk, counting bytes into the progress bar as they are read.
async fn file_body(
    file: &HashedFile,
    progress: &ProgressBar,
    sent: &Arc<AtomicU64>,
) -> Result<reqwest::Body, UploadError> {
    let handle = tokio::fs::File::open(&file.disk_path)
        .await
        .map_err(|source| UploadError::Open {
            path: file.disk_path.clone(),
            source,
        })?;
    let progress = progress.clone();
    let sent = Arc::clone(sent);
    let stream = ReaderStream::with_capacity(handle, CHUNK).inspect_ok(move |chunk| {
        let len = chunk.len() as u64;
        sent.fetch_add(len, Ordering::Relaxed);
        progress.inc(len);
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, sha: &str) -> HashedFile {
        HashedFile {
            site_path: path.into(),
            disk_path: PathBuf::from(path),
            sha256: sha.into(),
            size: 1,
        }
    }

    #[test]
    fn each_required_hash_is_uploaded_once_even_if_files_share_it() {
        let files = [file("/a", "h1"), file("/b", "h1"), file("/c", "h2")];
        let required = vec!["h1".to_owned(), "h1".to_owned()];
        let picked = files_for(&required, &files).expect("ok");
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].sha256, "h1");
    }

    #[test]
    fn a_hash_we_did_not_offer_is_an_error() {
        let files = [file("/a", "h1")];
        let err = files_for(&["nope".to_owned()], &files).expect_err("unknown");
        assert!(matches!(err, UploadError::UnknownHash(h) if h == "nope"));
    }
}
