//! Bytes coming in: one file of a digest deploy (`PUT .../files/{sha256}`), or a
//! whole site as a `.tar.gz`, streamed entry by entry into the blob store and never
//! unpacked onto disk. Both check the owner's storage quota before bytes are committed
//! to the blob store; the store checks again, under the owner's row lock, when it records
//! them (two uploads racing on two replicas cannot both take the last bytes).

use std::collections::HashSet;
use std::io::Read;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use futures::TryStreamExt;
use hosting_api::{DeployState, QuotaKind};
use hosting_archive::{ArchiveError, Limits};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::Path;
use crate::actions::deploys::{create_deploy, owned_deploy, DeployInput};
use crate::actions::quota::owner_quota;
use crate::blobs::{self, BlobBatch, BlobError};
use crate::domain::names::Sha256;
use crate::domain::quota::{QuotaExceeded, QuotaPolicy, Quotas, UserQuota};
use crate::http::auth::AuthUser;
use crate::http::body;
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{
    CreatedDeploy, DeployRecord, ManifestEntry, SiteRecord, StoreError, UploadOutcome,
};

/// `PUT /deploys/{id}/files/{sha256}`: idempotent; the bytes must hash to `sha256`.
#[tracing::instrument(skip_all, fields(deploy.id = %id))]
#[utoipa::path(put, path = "/api/v1/deploys/{id}/files/{sha256}", operation_id = "uploadFile", tag = "deploys", description = "Upload one required file of a deploy; the bytes must hash to `sha256`. Idempotent.",
    params(
        ("id" = hosting_api::schema::DeployId, Path, description = "The deploy's id"),
        ("sha256" = hosting_api::schema::Sha256, Path, description = "SHA-256 of the bytes"),
    ),
    request_body(content = hosting_api::schema::FileBytes, content_type = "application/octet-stream"),
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "The upload could not be read"),
        (status = 403, description = "The storage quota would be exceeded (`/problems/quota-exceeded`)"),
        (status = 404, description = "No such deploy of the caller"),
        (status = 409, description = "The deploy has expired or failed"),
        (status = 413, description = "Larger than the file size limit"),
        (status = 422, description = "The bytes do not hash to `sha256`, or no file of the deploy has this digest"),
    ))]
pub async fn put_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, sha)): Path<(String, String)>,
    body: Body,
) -> ApiResult<StatusCode> {
    let deploy = owned_deploy(&state, user.id, &id).await?;
    let sha256 = Sha256::parse(&sha).map_err(ApiError::Unprocessable)?;
    if matches!(deploy.state, DeployState::Expired | DeployState::Failed) {
        return Err(ApiError::Conflict(format!(
            "deploy {id} is {:?}; create a new deploy",
            deploy.state
        )));
    }
    let quotas = Quotas::from_config(&state.config);
    let quota = owner_quota(&state, user.id).await?;
    let mut left = quotas.storage_left(&quota);
    let limited = left != u64::MAX;
    if limited
        && !state
            .store
            .has_blobs(user.id, std::slice::from_ref(&sha256))
            .await?
            .is_empty()
    {
        // The owner stores these bytes already: they add nothing.
        left = u64::MAX;
    }
    let max_bytes = state.config.limits.max_file_bytes.min(left);
    let _upload = state.blob_gc_lock.read().await;
    let mut writer = state.blobs.writer(max_bytes).await?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| ApiError::BadRequest(format!("reading the upload failed: {e}")))?
    {
        writer.write(&chunk).await.map_err(|e| match e {
            // Refused before the bytes reach the blob store (the writer's temp file goes).
            BlobError::TooLarge { .. } if max_bytes < state.config.limits.max_file_bytes => {
                storage_refusal(&quotas, &quota, left.saturating_add(1))
            }
            BlobError::TooLarge { limit } => {
                ApiError::PayloadTooLarge(format!("a file is at most {limit} bytes"))
            }
            other => other.into(),
        })?;
    }
    let (sha256, size) = writer.commit(Some(&sha256)).await?;
    let recorded = state
        .store
        .record_upload(user.id, &deploy.id, &sha256, size, &quotas)
        .await;
    if let Err(StoreError::QuotaExceeded(_)) = &recorded {
        // Another upload of this owner took the room first: leave the bytes to garbage
        // collection, as for a file no deploy wants.
        state.store.touch_blob(&sha256, size).await?;
    }
    match recorded? {
        UploadOutcome::Accepted { .. } => Ok(StatusCode::NO_CONTENT),
        UploadOutcome::NotInDeploy => {
            // The bytes are already in the blob store: record them (owned by no one) so
            // garbage collection deletes them unless some deploy references them.
            state.store.touch_blob(&sha256, size).await?;
            Err(ApiError::Unprocessable(format!(
                "no file of deploy {id} has the digest {sha256}"
            )))
        }
    }
}

/// The storage problem for adding `adding` bytes that do not fit.
fn storage_refusal(quotas: &Quotas, quota: &UserQuota, adding: u64) -> ApiError {
    match quotas.admit(quota, QuotaKind::StorageBytes, adding) {
        Err(exceeded) => exceeded.into(),
        Ok(()) => ApiError::bug("storage quota refusal that the policy admits"),
    }
}

/// What an upload may still add to its owner's stored bytes, tracked while it streams:
/// a file counts once, and only when the owner does not store it already.
pub(super) struct StorageBudget {
    quotas: Quotas,
    quota: UserQuota,
    /// Hashes that count already (uploaded by the owner, referenced by their deploys).
    counted: HashSet<Sha256>,
    adding: u64,
    refused: Option<QuotaExceeded>,
}

impl StorageBudget {
    /// `counted`: the hashes that add nothing (the owner stores them already).
    pub(super) fn new(quotas: Quotas, quota: UserQuota, counted: HashSet<Sha256>) -> StorageBudget {
        StorageBudget {
            quotas,
            quota,
            counted,
            adding: 0,
            refused: None,
        }
    }

    /// Admits an entry's bytes, or records the refusal.
    pub(super) fn admit(&mut self, sha256: &Sha256, size: u64) -> Result<(), QuotaExceeded> {
        if !self.counted.insert(sha256.clone()) {
            return Ok(());
        }
        let adding = self.adding.saturating_add(size);
        self.quotas
            .admit(&self.quota, QuotaKind::StorageBytes, adding)
            .inspect_err(|refused| self.refused = Some(*refused))?;
        self.adding = adding;
        Ok(())
    }
}

/// Streams a `.tar.gz` into the blob store and records a ready deploy. On any error
/// nothing is recorded: the blobs already written are unreferenced and collected later.
/// Quotas: deploys per hour before reading; storage per entry while streaming, before
/// the entry is committed to the blob store; both again when the deploy is recorded.
pub async fn create_from_archive(
    state: &AppState,
    owner_id: i64,
    site: &SiteRecord,
    body: Body,
    message: Option<String>,
) -> ApiResult<DeployRecord> {
    let quotas = Quotas::from_config(&state.config);
    let quota = owner_quota(state, owner_id).await?;
    if let Err(refused) = quotas.admit(&quota, QuotaKind::DeploysPerHour, 1) {
        body::discard(body).await;
        return Err(refused.into());
    }
    // Tracking costs a query for the owner's files: only when the archive could exceed.
    let budget = if quotas.storage_left(&quota) < state.config.limits.max_deploy_bytes {
        let counted = state.store.counted_blobs(owner_id).await?;
        Some(StorageBudget::new(quotas, quota, counted))
    } else {
        None
    };
    let limits = Limits {
        max_files: state.config.limits.max_files,
        max_file_bytes: state.config.limits.max_file_bytes,
        max_total_bytes: state.config.limits.max_deploy_bytes,
        max_expansion_ratio: state.config.limits.max_expansion_ratio,
        ..Limits::default()
    };
    let reader = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    // Staged, then published with one flush once the whole archive is valid.
    let batch = blobs::batch::start(&state.blobs, Some(state.config.limits.max_batch_bytes))?;
    let max_file_bytes = state.config.limits.max_file_bytes;
    let _upload = state.blob_gc_lock.read().await;
    let handle = tokio::runtime::Handle::current();
    let (result, budget, batch) = tokio::task::spawn_blocking(move || {
        let mut budget = budget;
        let mut batch = batch;
        let mut input = SyncIoBridge::new_with_handle(reader, handle);
        // One copy buffer for every entry: a fresh 64 KiB per entry was page faults in
        // the bulk route's profile (issue 18).
        let mut buf = vec![0u8; COPY_BUFFER];
        let mut sink = |_path: &str, _size: u64, entry: &mut dyn Read| -> std::io::Result<String> {
            stage_entry(
                batch.as_mut(),
                max_file_bytes,
                budget.as_mut(),
                entry,
                &mut buf,
            )
        };
        let result = hosting_archive::read_tar_gz(&mut input, &limits, &mut sink);
        if result.is_err() {
            drain(&mut input);
        }
        (result, budget, batch)
    })
    .await
    .map_err(|e| ApiError::internal("the archive task failed", e))?;
    if let Some(refused) = budget.and_then(|b| b.refused) {
        return Err(refused.into());
    }
    let files = result.map_err(archive_error)?;
    let published = batch.publish().await?;
    // Touched now so garbage collection leaves them alone until the deploy references them.
    state.store.touch_blobs(&published).await?;

    let files = files
        .into_iter()
        .map(|f| {
            let sha256 = Sha256::parse(&f.digest).map_err(|e| {
                ApiError::bug(format!("the archive reader's digest of {}: {e}", f.path))
            })?;
            Ok(ManifestEntry {
                path: f.path,
                sha256,
                size: f.size,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let input = DeployInput {
        files,
        idempotency: None,
        files_uploaded: true,
        message,
    };
    match create_deploy(state, owner_id, site, input).await? {
        CreatedDeploy::Created { deploy, .. } | CreatedDeploy::Replayed { deploy, .. } => {
            Ok(deploy)
        }
        CreatedDeploy::KeyReused => Err(ApiError::bug("archive deploys carry no idempotency key")),
    }
}

/// Bytes moved from an archive entry into the batch at a time.
const COPY_BUFFER: usize = 64 * 1024;

/// Stages one archive entry in the batch, on the blocking thread that reads the archive.
/// With a storage budget, the entry is refused after it is hashed and before anything of
/// the archive is published.
fn stage_entry(
    batch: &mut dyn BlobBatch,
    max_file_bytes: u64,
    budget: Option<&mut StorageBudget>,
    entry: &mut dyn Read,
    buf: &mut [u8],
) -> std::io::Result<String> {
    batch
        .start(None, max_file_bytes)
        .map_err(std::io::Error::other)?;
    loop {
        let n = entry.read(buf)?;
        if n == 0 {
            break;
        }
        batch.write(&buf[..n]).map_err(std::io::Error::other)?;
    }
    let (sha256, size) = batch.finish().map_err(std::io::Error::other)?;
    if let Some(budget) = budget {
        budget.admit(&sha256, size).map_err(std::io::Error::other)?;
    }
    Ok(sha256.to_string())
}

/// Reads on (bounded) after a refused archive, so the client, or a proxy streaming its
/// upload, gets the 4xx instead of a broken pipe (see `http::body`).
pub(super) fn drain(input: &mut impl Read) {
    let _ = std::io::copy(
        &mut input.take(crate::http::body::DRAIN_LIMIT),
        &mut std::io::sink(),
    );
}

fn archive_error(e: ArchiveError) -> ApiError {
    if !e.is_client_error() {
        return ApiError::internal("reading the archive failed", e);
    }
    let detail = format!("the archive was refused, nothing was published: {e}");
    if e.is_too_large() {
        ApiError::PayloadTooLarge(detail)
    } else {
        ApiError::BadRequest(detail)
    }
}
