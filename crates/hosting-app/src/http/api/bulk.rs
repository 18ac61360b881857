//! `POST /deploys/{id}/files`: many required files of a digest deploy in one request, as
//! an uncompressed tar whose entries are named by their SHA-256. Each entry is hashed
//! while it streams into a blob batch; a bad entry fails the whole request, naming it,
//! and nothing of the request becomes visible. A valid request is published with one
//! flush and recorded in one transaction (see `blobs::batch`), so its cost per file is a
//! fraction of a `PUT` each. Limits: `HOSTING_MAX_BATCH_FILES` and
//! `HOSTING_MAX_BATCH_BYTES` per request, the per-file limit per entry; the owner's
//! storage quota is checked from each entry's header, before its bytes are staged.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Read;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures::TryStreamExt;
use hosting_api::DeployState;
use tokio_util::io::{StreamReader, SyncIoBridge};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::upload::{drain, StorageBudget};
use super::Path;
use crate::actions::deploys::owned_deploy;
use crate::actions::quota::owner_quota;
use crate::blobs::{self, BlobBatch, BlobError};
use crate::domain::names::Sha256;
use crate::domain::quota::{QuotaExceeded, Quotas};
use crate::http::auth::AuthUser;
use crate::http::body;
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{StoreError, UploadOutcome};

/// The media type of a bulk upload.
pub const TAR: &str = "application/x-tar";

/// `POST /deploys/{id}/files`: stores every entry of the tar, or none.
#[tracing::instrument(skip_all, fields(deploy.id = %id))]
#[utoipa::path(post, path = "/api/v1/deploys/{id}/files", operation_id = "uploadFiles", tag = "deploys",
    description = "Upload many required files of a deploy at once: an uncompressed tar \
        (`application/x-tar`) of regular files, each named by the SHA-256 of its bytes and \
        one of the deploy's digests. Every entry is verified while it streams; if one is \
        refused, the problem names it and nothing of the request is stored. At most \
        `HOSTING_MAX_BATCH_FILES` files and `HOSTING_MAX_BATCH_BYTES` bytes per request. \
        Idempotent; `PUT /api/v1/deploys/{id}/files/{sha256}` uploads one file.",
    params(("id" = hosting_api::schema::DeployId, Path, description = "The deploy's id")),
    request_body(content = FileBatch, content_type = "application/x-tar"),
    responses(
        (status = 204, description = "Every file stored and recorded"),
        (status = 400, description = "Not a readable tar, an entry that is not a regular file named by a SHA-256, a digest twice, or no entry"),
        (status = 403, description = "The storage quota would be exceeded (`/problems/quota-exceeded`)"),
        (status = 404, description = "No such deploy of the caller"),
        (status = 409, description = "The deploy has expired or failed"),
        (status = 413, description = "More files or bytes than one request may hold, or a file over the file size limit"),
        (status = 415, description = "Not `application/x-tar`"),
        (status = 422, description = "An entry's bytes do not hash to its name, or no file of the deploy has its digest"),
    ))]
pub async fn upload_files(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let received = receive(&state, user.id, &id, &headers, body).await;
    if let Err(e) = &received {
        record_refusal(&state, user.id, &id, e).await;
    }
    received
}

/// A refused batch of a deploy that takes files (not another tenant's, not one that has
/// already expired or failed) is a failed deploy: audit entry and `deploy.failed`.
async fn record_refusal(state: &AppState, owner_id: i64, id: &str, error: &ApiError) {
    if matches!(error.status(), StatusCode::NOT_FOUND | StatusCode::CONFLICT) {
        return;
    }
    let Ok(deploy) = owned_deploy(state, owner_id, id).await else {
        return;
    };
    let why = if error.status().is_server_error() {
        "the upload failed on the server".to_owned()
    } else {
        error.to_string()
    };
    let actor = crate::audit::Actor::Id(owner_id);
    crate::audit::events::deploy_failed_on(state, actor, "deploy.upload", &deploy, &why).await;
}

/// The body of `upload_files`: check, stage, publish and record the batch.
async fn receive(
    state: &AppState,
    owner_id: i64,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let prepared = prepare(state, owner_id, id, headers).await;
    let (deploy_id, wanted, budget) = match prepared {
        Ok(prepared) => prepared,
        Err(refused) => {
            body::discard(body).await;
            return Err(refused);
        }
    };
    let started = std::time::Instant::now();
    let _upload = state.blob_gc_lock.read().await;
    let (published, read) = stage(state, Some(wanted), budget, body).await?;
    let flushed = started.elapsed();
    let quotas = Quotas::from_config(&state.config);
    let recorded = state
        .store
        .record_uploads(owner_id, &deploy_id, &published, &quotas)
        .await;
    if let Err(StoreError::QuotaExceeded(_)) = &recorded {
        // Another upload of this owner took the room first: the bytes are left to
        // garbage collection, as for files no deploy wants.
        state.store.touch_blobs(&published).await?;
    }
    let recorded = recorded?;
    tracing::debug!(
        files = published.len(),
        read_ms = read.as_millis(),
        publish_ms = (flushed.saturating_sub(read)).as_millis(),
        record_ms = (started.elapsed() - flushed).as_millis(),
        "bulk upload stored"
    );
    match recorded {
        UploadOutcome::Accepted { .. } => Ok(StatusCode::NO_CONTENT),
        UploadOutcome::NotInDeploy => Err(ApiError::bug("a batch entry outside its deploy")),
    }
}

/// Reads the tar `body` into a blob batch and publishes it (one flush for the batch):
/// the stored blobs and how long reading took. With `wanted`, every entry must be one of
/// those digests. The caller holds `blob_gc_lock` until the blobs are recorded.
pub(super) async fn stage(
    state: &AppState,
    wanted: Option<HashSet<Sha256>>,
    budget: Option<StorageBudget>,
    body: Body,
) -> ApiResult<(Vec<(Sha256, u64)>, std::time::Duration)> {
    let limits = BatchLimits {
        files: state.config.limits.max_batch_files,
        bytes: state.config.limits.max_batch_bytes,
        file_bytes: state.config.limits.max_file_bytes,
    };
    let started = std::time::Instant::now();
    let batch = blobs::batch::start(&state.blobs, None)?;
    let reader = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    let handle = tokio::runtime::Handle::current();
    let staged = tokio::task::spawn_blocking(move || {
        let mut input = SyncIoBridge::new_with_handle(reader, handle);
        let mut staging = Staging {
            batch,
            wanted,
            limits,
            budget,
            names: HashSet::new(),
            bytes: 0,
            buf: vec![0u8; COPY_BUFFER],
        };
        let result = staging.read_tar(&mut input);
        if result.is_err() {
            drain(&mut input);
        }
        result.map(|()| staging.batch)
    })
    .await
    .map_err(|e| ApiError::internal("the upload task failed", e))?;
    let staged = staged?;
    let read = started.elapsed();
    Ok((staged.publish().await?, read))
}

/// Checks before the body is read: the caller's deploy, still taking files, the media
/// type; the deploy's digests and the storage budget when the quota could be reached.
async fn prepare(
    state: &AppState,
    owner_id: i64,
    id: &str,
    headers: &HeaderMap,
) -> ApiResult<(String, HashSet<Sha256>, Option<StorageBudget>)> {
    let deploy = owned_deploy(state, owner_id, id).await?;
    if body::media_type(headers) != TAR {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send the files as an uncompressed tar (`{TAR}`) of entries named by their SHA-256"
        )));
    }
    if matches!(deploy.state, DeployState::Expired | DeployState::Failed) {
        return Err(ApiError::Conflict(format!(
            "deploy {id} is {:?}; create a new deploy",
            deploy.state
        )));
    }
    let wanted = state.store.deploy_digests(&deploy.id).await?;
    let quotas = Quotas::from_config(&state.config);
    let quota = owner_quota(state, owner_id).await?;
    let budget = if quotas.storage_left(&quota) < state.config.limits.max_batch_bytes {
        // Bytes the owner stores already add nothing, as the store counts them.
        let listed: Vec<Sha256> = wanted.iter().cloned().collect();
        let counted = state.store.has_blobs(owner_id, &listed).await?;
        Some(StorageBudget::new(quotas, quota, counted))
    } else {
        None
    };
    Ok((deploy.id, wanted, budget))
}

/// Bounds of one request.
struct BatchLimits {
    files: u64,
    bytes: u64,
    file_bytes: u64,
}

/// Why a bulk upload was refused; every entry error names the entry.
#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error("reading the upload failed: {0}")]
    Read(std::io::Error),
    #[error("entry {0:?} is not named by a lower-case hex SHA-256")]
    NotADigest(String),
    #[error("entry {0:?} is not a regular file")]
    NotAFile(String),
    #[error("entry {0} appears twice")]
    Twice(Sha256),
    #[error("entry {0}: no file of this deploy has this digest")]
    NotInDeploy(Sha256),
    #[error("entry {0}: its bytes hash to {1}")]
    Mismatch(Sha256, String),
    #[error("entry {0}: a file is at most {1} bytes")]
    FileTooLarge(Sha256, u64),
    #[error("one request holds at most {0} files")]
    TooManyFiles(u64),
    #[error("one request holds at most {0} bytes of files")]
    TooManyBytes(u64),
    #[error("the upload holds no file")]
    Empty,
    #[error(transparent)]
    Quota(QuotaExceeded),
    #[error(transparent)]
    Blob(BlobError),
}

impl From<BatchError> for ApiError {
    fn from(e: BatchError) -> ApiError {
        let detail = format!("{e}; nothing of this request was stored");
        match e {
            BatchError::Read(_)
            | BatchError::NotADigest(_)
            | BatchError::NotAFile(_)
            | BatchError::Twice(_)
            | BatchError::Empty => ApiError::BadRequest(detail),
            BatchError::NotInDeploy(_) | BatchError::Mismatch(..) => {
                ApiError::Unprocessable(detail)
            }
            BatchError::FileTooLarge(..)
            | BatchError::TooManyFiles(_)
            | BatchError::TooManyBytes(_) => ApiError::PayloadTooLarge(detail),
            BatchError::Quota(exceeded) => exceeded.into(),
            BatchError::Blob(e) => e.into(),
        }
    }
}

/// One request being read into a batch, on a blocking thread.
struct Staging {
    batch: Box<dyn BlobBatch>,
    /// The deploy's digests (`None`: any digest, for `POST /blobs`).
    wanted: Option<HashSet<Sha256>>,
    limits: BatchLimits,
    budget: Option<StorageBudget>,
    names: HashSet<Sha256>,
    bytes: u64,
    /// One copy buffer for every entry of the request.
    buf: Vec<u8>,
}

/// Bytes moved from the request into the batch at a time.
const COPY_BUFFER: usize = 64 * 1024;

impl Staging {
    fn read_tar(&mut self, input: &mut impl Read) -> Result<(), BatchError> {
        let mut archive = tar::Archive::new(input);
        for entry in archive.entries().map_err(BatchError::Read)? {
            let mut entry = entry.map_err(BatchError::Read)?;
            let sha256 = self.admit(&entry)?;
            let size = entry.size();
            self.batch
                .start(Some(sha256.clone()), size)
                .map_err(BatchError::Blob)?;
            self.copy(&sha256, &mut entry)?;
        }
        if self.names.is_empty() {
            return Err(BatchError::Empty);
        }
        Ok(())
    }

    /// The entry's digest, once its header passes every rule (before any of its bytes).
    fn admit(&mut self, entry: &tar::Entry<'_, impl Read>) -> Result<Sha256, BatchError> {
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let bare = name.strip_prefix("./").unwrap_or(&name);
        let sha256 = Sha256::parse(bare).map_err(|_| BatchError::NotADigest(name.clone()))?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous()) {
            return Err(BatchError::NotAFile(name));
        }
        if self
            .wanted
            .as_ref()
            .is_some_and(|wanted| !wanted.contains(&sha256))
        {
            return Err(BatchError::NotInDeploy(sha256));
        }
        if !self.names.insert(sha256.clone()) {
            return Err(BatchError::Twice(sha256));
        }
        if self.names.len() as u64 > self.limits.files {
            return Err(BatchError::TooManyFiles(self.limits.files));
        }
        let size = entry.size();
        if size > self.limits.file_bytes {
            return Err(BatchError::FileTooLarge(sha256, self.limits.file_bytes));
        }
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > self.limits.bytes {
            return Err(BatchError::TooManyBytes(self.limits.bytes));
        }
        if let Some(budget) = &mut self.budget {
            budget.admit(&sha256, size).map_err(BatchError::Quota)?;
        }
        Ok(sha256)
    }

    /// Streams the entry's bytes into the batch; its digest is checked at the end.
    fn copy(&mut self, sha256: &Sha256, entry: &mut impl Read) -> Result<(), BatchError> {
        loop {
            let n = entry.read(&mut self.buf).map_err(BatchError::Read)?;
            if n == 0 {
                break;
            }
            self.batch.write(&self.buf[..n]).map_err(BatchError::Blob)?;
        }
        match self.batch.finish() {
            Ok(_) => Ok(()),
            Err(BlobError::DigestMismatch { actual, .. }) => {
                Err(BatchError::Mismatch(sha256.clone(), actual))
            }
            Err(e) => Err(BatchError::Blob(e)),
        }
    }
}

/// The request body of a bulk upload, for the OpenAPI document.
pub struct FileBatch;

impl PartialSchema for FileBatch {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .content_media_type(TAR)
            .description(Some(
                "An uncompressed tar of regular files, each named by the lower-case hex \
                 SHA-256 of its bytes (a digest the deploy lists).",
            ))
            .into()
    }
}

impl ToSchema for FileBatch {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("FileBatch")
    }
}
