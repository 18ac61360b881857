//! The bucket's few operations on blobs, each timed and counted: the one place the S3
//! client is called, and where its errors become `BlobError`s.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload, WriteMultipart};

use crate::blobs::BlobError;
use crate::domain::names::Sha256;
use crate::metrics::{BLOB_STORE_ERRORS_TOTAL, BLOB_STORE_REQUEST_DURATION_SECONDS, BLOB_STORE_UP};

/// Parts of a multipart upload sent at once.
const PART_CONCURRENCY: usize = 4;

pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    part_bytes: u64,
}

impl Bucket {
    pub(super) fn new(store: Arc<dyn ObjectStore>, prefix: &str, part_bytes: u64) -> Bucket {
        Bucket {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
            part_bytes,
        }
    }

    /// `<prefix>/<sha256>`
    pub fn path(&self, sha256: &Sha256) -> Path {
        Path::from(format!("{}/{}", self.prefix, sha256.as_str()))
    }

    /// Writes verified bytes under their digest: one PUT, or a multipart upload above
    /// the part size. Either way the object appears whole or not at all.
    pub async fn put(&self, sha256: &Sha256, bytes: Bytes) -> Result<(), BlobError> {
        let path = self.path(sha256);
        if (bytes.len() as u64) <= self.part_bytes {
            let put = self.store.put(&path, PutPayload::from(bytes));
            return observe("put", put).await.map(drop).map_err(failed("put"));
        }
        let upload = async {
            let part = usize::try_from(self.part_bytes).unwrap_or(usize::MAX);
            let mut writer =
                WriteMultipart::new_with_chunk_size(self.store.put_multipart(&path).await?, part);
            for chunk in bytes.chunks(part) {
                if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                    // Leaves no parts behind to be billed or stored.
                    let _ = writer.abort().await;
                    return Err(e);
                }
                writer.write(chunk);
            }
            writer.finish().await
        };
        observe("multipart", upload)
            .await
            .map(drop)
            .map_err(failed("multipart"))
    }

    /// The whole object, or `None` when it does not exist.
    pub async fn get(&self, sha256: &Sha256) -> Result<Option<Bytes>, BlobError> {
        let path = self.path(sha256);
        let get = async { self.store.get(&path).await?.bytes().await };
        found(observe("get", get).await).map_err(failed("get"))
    }

    /// `range` of the object (a Range request on a file too large to cache).
    pub async fn get_range(
        &self,
        sha256: &Sha256,
        range: Range<u64>,
    ) -> Result<Option<Bytes>, BlobError> {
        let path = self.path(sha256);
        let get = self.store.get_range(&path, range);
        found(observe("get", get).await).map_err(failed("get"))
    }

    /// The object's size, or `None` when it does not exist.
    pub async fn size(&self, sha256: &Sha256) -> Result<Option<u64>, BlobError> {
        let path = self.path(sha256);
        let head = self.store.head(&path);
        let meta = found(observe("head", head).await).map_err(failed("head"))?;
        Ok(meta.map(|meta| meta.size))
    }

    /// Deletes objects with DeleteObjects (the client sends up to 1,000 keys a request);
    /// objects already gone count as deleted.
    pub async fn delete_many(&self, shas: &[Sha256]) -> Result<(), BlobError> {
        if shas.is_empty() {
            return Ok(());
        }
        let paths: Vec<Path> = shas.iter().map(|sha| self.path(sha)).collect();
        let delete = async {
            let stream = futures::stream::iter(paths.into_iter().map(Ok)).boxed();
            self.store
                .delete_stream(stream)
                .filter(|result| {
                    let missing = matches!(result, Err(object_store::Error::NotFound { .. }));
                    std::future::ready(!missing)
                })
                .try_for_each(|_| std::future::ready(Ok(())))
                .await
        };
        observe("delete", delete).await.map_err(failed("delete"))
    }

    /// The digests stored under the prefix, in no particular order (verification).
    pub fn list(&self) -> impl futures::Stream<Item = Result<(String, u64), BlobError>> + '_ {
        let prefix = Path::from(self.prefix.clone());
        self.store.list(Some(&prefix)).map(|item| {
            item.map(|meta| {
                let name = meta.location.filename().unwrap_or_default().to_owned();
                (name, meta.size)
            })
            .map_err(failed("list"))
        })
    }

    /// Whether the store answers: a HEAD of a key that need not exist.
    pub async fn probe(&self) -> Result<(), BlobError> {
        let path = Path::from(format!("{}/.probe", self.prefix));
        let head = self.store.head(&path);
        found(observe("head", head).await)
            .map(drop)
            .map_err(failed("head"))
    }
}

/// A missing object as `None`.
fn found<T>(result: object_store::Result<T>) -> object_store::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Any failure of the store is an outage to the caller (503): unreachable, quorum lost,
/// throttled or refusing the credentials, none of it is the request's fault.
fn failed(op: &'static str) -> impl Fn(object_store::Error) -> BlobError {
    move |e| BlobError::Unavailable(format!("S3 {op} failed: {e}"))
}

/// Times one call and records whether the store answered (a missing object is an answer).
async fn observe<T>(
    op: &'static str,
    call: impl Future<Output = object_store::Result<T>>,
) -> object_store::Result<T> {
    let started = Instant::now();
    let result = call.await;
    metrics::histogram!(BLOB_STORE_REQUEST_DURATION_SECONDS, "op" => op)
        .record(started.elapsed().as_secs_f64());
    match &result {
        Ok(_) | Err(object_store::Error::NotFound { .. }) => {
            metrics::gauge!(BLOB_STORE_UP).set(1.0);
        }
        Err(e) => {
            tracing::warn!(op, error = %e, "S3 request failed");
            metrics::counter!(BLOB_STORE_ERRORS_TOTAL, "op" => op).increment(1);
            metrics::gauge!(BLOB_STORE_UP).set(0.0);
        }
    }
    result
}
