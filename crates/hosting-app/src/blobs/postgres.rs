//! Blobs in PostgreSQL (the cluster default): every app replica sees every file, and
//! streaming replication carries the bytes to the read replica. Files are bounded by
//! the per-file deploy limit (25 MiB by default), which a `bytea` holds comfortably.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;

use super::batch::{BlobBatch, MemoryUpload, StagedBatch, StagedSink};
use super::{Blob, BlobError, BlobStore, BlobWriter};
use crate::domain::names::Sha256;
use crate::store::Pools;

pub struct PgBlobStore {
    pools: Arc<Pools>,
}

impl PgBlobStore {
    pub fn new(pools: Arc<Pools>) -> PgBlobStore {
        PgBlobStore { pools }
    }
}

/// Unreachable database (I/O, pool exhausted or closed, connection and shutdown SQLSTATEs,
/// a read-only former primary) -> `Unavailable` (503); anything else is an internal error.
fn storage_error(e: sqlx::Error) -> BlobError {
    // 25006: a read-only former primary, which cannot take the write right now.
    let read_only =
        matches!(&e, sqlx::Error::Database(db) if db.code().as_deref() == Some("25006"));
    let unavailable = crate::store::is_unreachable(&e) || read_only;
    if unavailable {
        BlobError::Unavailable(e.to_string())
    } else {
        BlobError::Io(std::io::Error::other(e))
    }
}

struct PgBlobWriter {
    pools: Arc<Pools>,
    upload: MemoryUpload,
}

#[async_trait]
impl BlobWriter for PgBlobWriter {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.upload.write(chunk)
    }

    /// Writes the bytes and touches the blob's row in one transaction, the row first:
    /// garbage collection locks the same row, so it can never delete the bytes between
    /// this upload and the row that records it.
    async fn commit(
        self: Box<Self>,
        expected: Option<&Sha256>,
    ) -> Result<(Sha256, u64), BlobError> {
        let (actual, bytes) = self.upload.verify(expected)?;
        let len = bytes.len() as u64;
        let mut tx = self.pools.primary.begin().await.map_err(storage_error)?;
        sqlx::query(
            "INSERT INTO blobs (sha256, size, touched_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at",
        )
        .bind(actual.as_str())
        .bind(len as i64)
        .bind(Utc::now().timestamp_millis())
        .execute(&mut *tx)
        .await
        .map_err(storage_error)?;
        sqlx::query("INSERT INTO blob_contents (sha256, data) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING")
            .bind(actual.as_str())
            .bind(&bytes)
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        tx.commit().await.map_err(storage_error)?;
        Ok((actual, len))
    }
}

/// Followed by arrays of digests, sizes and times: a batch's rows in one statement.
const UPSERT_ROWS: &str = "INSERT INTO blobs (sha256, size, touched_at) \
     SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) \
     ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at";
const INSERT_CONTENTS: &str = "INSERT INTO blob_contents (sha256, data) \
     SELECT * FROM UNNEST($1::text[], $2::bytea[]) ON CONFLICT (sha256) DO NOTHING";

/// Writes blobs and touches their rows in one transaction, rows first and in digest
/// order (see [`PgBlobWriter::commit`]; two batches lock shared rows in the same order).
async fn insert_all(pools: &Pools, mut blobs: Vec<(Sha256, Vec<u8>)>) -> Result<(), BlobError> {
    if blobs.is_empty() {
        return Ok(());
    }
    blobs.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let shas: Vec<&str> = blobs.iter().map(|(sha, _)| sha.as_str()).collect();
    let sizes: Vec<i64> = blobs.iter().map(|(_, data)| data.len() as i64).collect();
    let now = vec![Utc::now().timestamp_millis(); blobs.len()];
    let data: Vec<&[u8]> = blobs.iter().map(|(_, data)| data.as_slice()).collect();
    let mut tx = pools.primary.begin().await.map_err(storage_error)?;
    sqlx::query(UPSERT_ROWS)
        .bind(&shas)
        .bind(&sizes)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(storage_error)?;
    sqlx::query(INSERT_CONTENTS)
        .bind(&shas)
        .bind(&data)
        .execute(&mut *tx)
        .await
        .map_err(storage_error)?;
    tx.commit().await.map_err(storage_error)
}

/// A batch's entries written with [`insert_all`]: one transaction and two statements.
struct PgSink(Arc<Pools>);

#[async_trait]
impl StagedSink for PgSink {
    async fn store(&self, entries: Vec<(Sha256, Vec<u8>)>) -> Result<(), BlobError> {
        insert_all(&self.0, entries).await
    }
}

#[async_trait]
impl BlobStore for PgBlobStore {
    fn batch(&self, spill_bytes: Option<u64>) -> Result<Box<dyn BlobBatch>, BlobError> {
        let batch = StagedBatch::new(PgSink(self.pools.clone()), spill_bytes)?;
        Ok(Box::new(batch))
    }

    async fn writer(&self, max_bytes: u64) -> Result<Box<dyn BlobWriter>, BlobError> {
        Ok(Box::new(PgBlobWriter {
            pools: self.pools.clone(),
            upload: MemoryUpload::new(max_bytes),
        }))
    }

    /// Blobs never change, so the replica is asked first and a miss there (not yet
    /// replayed, or down) is retried on the primary.
    async fn get(&self, sha256: &Sha256) -> Result<Option<Blob>, BlobError> {
        const QUERY: &str = "SELECT data FROM blob_contents WHERE sha256 = $1";
        if let Some(replica) = self.pools.immutable_read() {
            match sqlx::query_scalar::<_, Vec<u8>>(QUERY)
                .bind(sha256.as_str())
                .fetch_optional(replica)
                .await
            {
                Ok(Some(data)) => {
                    metrics::counter!(crate::metrics::DB_READS_TOTAL, "role" => "replica")
                        .increment(1);
                    return Ok(Some(Blob::Bytes(Bytes::from(data))));
                }
                Ok(None) => self.pools.fell_back("replica has not replayed the blob"),
                Err(_) => self.pools.fell_back("replica query failed"),
            }
        }
        let data = sqlx::query_scalar::<_, Vec<u8>>(QUERY)
            .bind(sha256.as_str())
            .fetch_optional(&self.pools.primary)
            .await
            .map_err(storage_error)?;
        Ok(data.map(|d| Blob::Bytes(Bytes::from(d))))
    }

    async fn delete(&self, sha256: &Sha256) -> Result<(), BlobError> {
        sqlx::query("DELETE FROM blob_contents WHERE sha256 = $1")
            .bind(sha256.as_str())
            .execute(&self.pools.primary)
            .await
            .map_err(storage_error)?;
        Ok(())
    }
}
