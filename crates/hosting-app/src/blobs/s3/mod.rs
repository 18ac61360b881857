//! Blobs in an S3 object store (`HOSTING_BLOB_STORE=s3`; Garage in our tests and
//! deployments): every file is the object `<prefix>/<sha256>`, written only once its
//! digest is verified. Rewriting a key therefore writes the same bytes, which is why no
//! conditional PUT is needed (Garage ignores `If-None-Match`, see
//! `research/garage-on-loopback.md`): every compare-and-swap stays in the database.
//!
//! One request to a three-node Garage takes ~45 ms, so a batch uploads its files in
//! parallel ([`batch`]) and concurrent cold reads of one blob share one GET
//! ([`coalesce`]). Every failure but a missing object is `BlobError::Unavailable`: the
//! store is a dependency, so its outages are 503s, never 500s.

mod batch;
mod bucket;
mod coalesce;

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use secrecy::ExposeSecret;

use super::batch::{MemoryUpload, StagedBatch};
use super::{Blob, BlobBatch, BlobError, BlobStore, BlobWriter};
use crate::config::S3;
use crate::domain::names::Sha256;

pub use bucket::Bucket;

/// How long a connection attempt to the store may take: an unreachable node should
/// fail a request (and let the retry go elsewhere) long before the request timeout.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Retries of a failed request (connection refused, 5xx, timeouts), with backoff.
const MAX_RETRIES: usize = 3;

pub struct S3BlobStore {
    bucket: Arc<Bucket>,
    concurrency: usize,
    reads: coalesce::Coalesce,
}

impl S3BlobStore {
    /// The store the settings name; nothing is sent until the first request.
    pub fn open(settings: &S3) -> Result<S3BlobStore, BlobError> {
        let setting = |value: &Option<String>, name: &str| {
            value
                .clone()
                .ok_or_else(|| BlobError::Unavailable(format!("{name} is not set")))
        };
        let endpoint = setting(&settings.s3_endpoint, "HOSTING_S3_ENDPOINT")?;
        let secret = |value: &Option<crate::config::Secret>, name: &str| {
            value
                .as_ref()
                .map(|s| s.expose_secret().to_owned())
                .ok_or_else(|| BlobError::Unavailable(format!("{name} is not set")))
        };
        let options = ClientOptions::new()
            .with_allow_http(endpoint.starts_with("http://"))
            .with_timeout(settings.s3_timeout)
            .with_connect_timeout(CONNECT_TIMEOUT);
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: std::time::Duration::from_millis(100),
                max_backoff: std::time::Duration::from_secs(1),
                base: 2.0,
            },
            max_retries: MAX_RETRIES,
            retry_timeout: settings.s3_timeout,
        };
        // Never `with_conditional_put`: Garage would silently overwrite (see the module doc).
        let store = AmazonS3Builder::new()
            .with_endpoint(&endpoint)
            .with_bucket_name(setting(&settings.s3_bucket, "HOSTING_S3_BUCKET")?)
            .with_region(&settings.s3_region)
            .with_access_key_id(secret(
                &settings.s3_access_key_id,
                "HOSTING_S3_ACCESS_KEY_ID",
            )?)
            .with_secret_access_key(secret(
                &settings.s3_secret_access_key,
                "HOSTING_S3_SECRET_ACCESS_KEY",
            )?)
            .with_virtual_hosted_style_request(false)
            .with_checksum_algorithm(Checksum::SHA256)
            // Garage answers object tagging with 501.
            .with_disable_tagging(true)
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .map_err(|e| BlobError::Unavailable(format!("configuring the S3 client: {e}")))?;
        Ok(S3BlobStore::new(
            Arc::new(store),
            &settings.s3_prefix,
            settings.s3_multipart_threshold,
            settings.s3_concurrency,
        ))
    }

    /// A store on any `object_store` backend (tests use the in-memory one).
    pub fn new(
        store: Arc<dyn object_store::ObjectStore>,
        prefix: &str,
        part_bytes: u64,
        concurrency: usize,
    ) -> S3BlobStore {
        S3BlobStore {
            bucket: Arc::new(Bucket::new(store, prefix, part_bytes)),
            concurrency: concurrency.max(1),
            reads: coalesce::Coalesce::default(),
        }
    }

    /// The bucket, for the operator commands (migration, verification).
    pub fn bucket(&self) -> &Arc<Bucket> {
        &self.bucket
    }
}

/// Holds an upload in memory (at most the per-file limit, as the PostgreSQL store does)
/// and hashes it as it arrives; nothing reaches the bucket before the digest is checked.
struct S3BlobWriter {
    bucket: Arc<Bucket>,
    upload: MemoryUpload,
}

#[async_trait]
impl BlobWriter for S3BlobWriter {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.upload.write(chunk)
    }

    async fn commit(
        self: Box<Self>,
        expected: Option<&Sha256>,
    ) -> Result<(Sha256, u64), BlobError> {
        let (actual, bytes) = self.upload.verify(expected)?;
        let len = bytes.len() as u64;
        self.bucket.put(&actual, Bytes::from(bytes)).await?;
        Ok((actual, len))
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn writer(&self, max_bytes: u64) -> Result<Box<dyn BlobWriter>, BlobError> {
        Ok(Box::new(S3BlobWriter {
            bucket: self.bucket.clone(),
            upload: MemoryUpload::new(max_bytes),
        }))
    }

    /// Staged in memory and uploaded in parallel (see [`batch`]).
    fn batch(&self, spill_bytes: Option<u64>) -> Result<Box<dyn BlobBatch>, BlobError> {
        let sink = batch::S3Sink {
            bucket: self.bucket.clone(),
            concurrency: self.concurrency,
        };
        Ok(Box::new(StagedBatch::new(sink, spill_bytes)?))
    }

    async fn get(&self, sha256: &Sha256) -> Result<Option<Blob>, BlobError> {
        Ok(self.read(sha256).await?.map(Blob::Bytes))
    }

    /// Concurrent misses of one blob share one GET.
    async fn read(&self, sha256: &Sha256) -> Result<Option<Bytes>, BlobError> {
        let bucket = self.bucket.clone();
        let sha = sha256.clone();
        self.reads
            .run(sha256, async move { bucket.get(&sha).await })
            .await
    }

    fn ranged_reads(&self) -> bool {
        true
    }

    async fn read_range(
        &self,
        sha256: &Sha256,
        range: Range<u64>,
    ) -> Result<Option<Bytes>, BlobError> {
        self.bucket.get_range(sha256, range).await
    }

    async fn delete(&self, sha256: &Sha256) -> Result<(), BlobError> {
        self.bucket.delete_many(std::slice::from_ref(sha256)).await
    }

    /// DeleteObjects, up to 1,000 keys a request.
    async fn delete_many(&self, shas: &[Sha256]) -> Result<(), BlobError> {
        self.bucket.delete_many(shas).await
    }

    async fn probe(&self) -> Option<Result<(), BlobError>> {
        Some(self.bucket.probe().await)
    }
}

#[cfg(test)]
mod tests;
