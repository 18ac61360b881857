//! Uploading files before their deploy exists, so a client can send the first chunks of
//! a large folder while it is still hashing the rest (Cloudflare's Pages upload works
//! this way: "which of these are missing", then the buckets, then the deployment):
//!
//! - `POST /blobs/missing`: which of these digests the caller has never uploaded;
//! - `POST /blobs`: an uncompressed tar of files named by digest, as
//!   `POST /deploys/{id}/files` takes, stored for the caller whatever deploy comes next.
//!
//! Both are scoped to the caller: a digest counts as present only if this owner uploaded
//! those bytes (DESIGN.md section 3), so neither answers for another tenant's files. The
//! deploy created afterwards finds the files present and requires nothing. Blobs no deploy
//! references yet do not count towards the stored bytes; each request is checked against
//! the storage left, and garbage collection takes them after its grace period (twice the
//! request timeout, at least a minute) if no deploy names them by then.

use std::collections::HashSet;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hosting_api::{self as api, MAX_MISSING_QUERY};

use super::bulk::{stage, FileBatch, TAR};
use super::upload::StorageBudget;
use super::Json;
use crate::actions::quota::owner_quota;
use crate::domain::names::Sha256;
use crate::domain::quota::Quotas;
use crate::http::auth::AuthUser;
use crate::http::body;
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `POST /blobs/missing`: the digests of the list the caller has not uploaded.
#[tracing::instrument(skip_all)]
#[utoipa::path(post, path = "/api/v1/blobs/missing", operation_id = "missingBlobs", tag = "deploys",
    description = "Which of these digests the caller still has to upload (at most 5,000 per \
        request). A client hashing a large folder asks this per chunk of files and sends the \
        missing ones with `POST /api/v1/blobs` before it creates the deploy, which then \
        requires nothing. Only the caller's own uploads count as present.",
    request_body = hosting_api::MissingQuery,
    responses(
        (status = 200, description = "The digests to upload, sorted", body = hosting_api::Missing),
        (status = 400, description = "Not a list of at most 5,000 SHA-256 digests"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn missing(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(query): Json<api::MissingQuery>,
) -> ApiResult<axum::Json<api::Missing>> {
    if query.digests.len() > MAX_MISSING_QUERY {
        return Err(ApiError::BadRequest(format!(
            "ask about at most {MAX_MISSING_QUERY} digests per request; this one has {}",
            query.digests.len()
        )));
    }
    let mut digests = query
        .digests
        .iter()
        .map(|raw| {
            Sha256::parse(raw).map_err(|e| ApiError::BadRequest(format!("digest {raw:?}: {e}")))
        })
        .collect::<ApiResult<Vec<Sha256>>>()?;
    digests.sort();
    digests.dedup();
    let present = state.store.has_blobs(user.id, &digests).await?;
    let missing = digests
        .into_iter()
        .filter(|sha| !present.contains(sha))
        .map(|sha| sha.as_str().to_owned())
        .collect();
    Ok(axum::Json(api::Missing { missing }))
}

/// `POST /blobs`: stores every entry of the tar for the caller, or none.
#[tracing::instrument(skip_all)]
#[utoipa::path(post, path = "/api/v1/blobs", operation_id = "uploadBlobs", tag = "deploys",
    description = "Upload files before the deploy that lists them exists: an uncompressed tar \
        (`application/x-tar`) of regular files, each named by the SHA-256 of its bytes, as for \
        `POST /api/v1/deploys/{id}/files` (same limits per request, same verification; one \
        refused entry and nothing of the request is stored). A deploy created afterwards with \
        these digests does not require them. Files no deploy references are collected after a \
        grace period (twice the request timeout, at least a minute). Idempotent.",
    request_body(content = FileBatch, content_type = "application/x-tar"),
    responses(
        (status = 204, description = "Every file stored and recorded for the caller"),
        (status = 400, description = "Not a readable tar, an entry that is not a regular file named by a SHA-256, a digest twice, or no entry"),
        (status = 403, description = "The storage quota would be exceeded (`/problems/quota-exceeded`)"),
        (status = 413, description = "More files or bytes than one request may hold, or a file over the file size limit"),
        (status = 415, description = "Not `application/x-tar`"),
        (status = 422, description = "An entry's bytes do not hash to its name"),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    if body::media_type(&headers) != TAR {
        body::discard(body).await;
        return Err(ApiError::UnsupportedMediaType(format!(
            "send the files as an uncompressed tar (`{TAR}`) of entries named by their SHA-256"
        )));
    }
    let quotas = Quotas::from_config(&state.config);
    let quota = match owner_quota(&state, user.id).await {
        Ok(quota) => quota,
        Err(e) => {
            body::discard(body).await;
            return Err(e.into());
        }
    };
    // Near the quota, every entry counts while it streams (the client sends only what
    // `missing` named); the store counts exactly, bytes the owner has already excluded.
    let budget = (quotas.storage_left(&quota) < state.config.limits.max_batch_bytes)
        .then(|| StorageBudget::new(quotas, quota, HashSet::new()));
    let _upload = state.blob_gc_lock.read().await;
    let (published, _) = stage(&state, None, budget, body).await?;
    let quotas = Quotas::from_config(&state.config);
    let recorded = state
        .store
        .record_owned_uploads(user.id, &published, &quotas)
        .await;
    if recorded.is_err() {
        // Not recorded for the owner: the bytes are left to garbage collection.
        state.store.touch_blobs(&published).await?;
    }
    recorded?;
    Ok(StatusCode::NO_CONTENT)
}
