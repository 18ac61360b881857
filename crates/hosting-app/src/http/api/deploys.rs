//! Deploys: the digest protocol (create, then upload what is required, then publish),
//! the one-shot `.tar.gz` upload, history, publish and rollback.

use std::collections::HashSet;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hosting_api as api;
use hosting_api::DeployState;
use serde::Deserialize;
use sha2::Digest;

use super::sites::owned_site;
use super::{deploy_view, Path, Query};
use crate::domain::names::{DeployId, DeployPath, Sha256};
use crate::http::auth::AuthUser;
use crate::http::body::{self, BodyError};
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{CreatedDeploy, DeployRecord, ManifestEntry, NewDeploy, SiteRecord};

/// Largest JSON file list: 20,000 entries of ~100 bytes fit with room to spare.
const MAX_MANIFEST_JSON_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct CreateParams {
    /// Archive deploys publish unless `publish=false`.
    #[serde(default)]
    publish: Option<bool>,
}

pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
) -> ApiResult<axum::Json<api::List<api::Deploy>>> {
    let site = owned_site(&state, user.id, &site).await?;
    let deploys = state.store.list_deploys(user.id, site.id).await?;
    Ok(axum::Json(api::List {
        items: deploys.iter().map(|d| deploy_view(&state, d)).collect(),
    }))
}

pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<api::Deploy>> {
    let deploy = owned_deploy(&state, user.id, &id).await?;
    Ok(axum::Json(deploy_view(&state, &deploy)))
}

/// The caller's deploy `raw`, or 404 (also for another tenant's).
pub async fn owned_deploy(state: &AppState, owner_id: i64, raw: &str) -> ApiResult<DeployRecord> {
    let id = DeployId::parse(raw).map_err(|_| ApiError::not_found(format!("deploy {raw:?}")))?;
    state
        .store
        .deploy(owner_id, id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("deploy {raw:?}")))
}

/// `POST /sites/{site}/deploys`: a JSON file list, or a `.tar.gz` of the site.
#[tracing::instrument(skip_all, fields(site.name = %site))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
    Query(params): Query<CreateParams>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let site = match owned_site(&state, user.id, &site).await {
        Ok(site) => site,
        Err(refused) => {
            body::discard(body).await;
            return Err(refused);
        }
    };
    let response = match body::media_type(&headers).as_str() {
        "application/json" => create_from_manifest(&state, user.id, &site, &headers, body).await,
        "application/gzip" | "application/x-gzip" | "application/x-tar+gzip" => {
            let deploy = super::upload::create_from_archive(&state, user.id, &site, body).await?;
            let deploy = if params.publish.unwrap_or(true) {
                publish_deploy(&state, user.id, &deploy.id).await?
            } else {
                deploy
            };
            Ok((
                StatusCode::CREATED,
                axum::Json(deploy_view(&state, &deploy)),
            )
                .into_response())
        }
        _ => {
            body::discard(body).await;
            Err(ApiError::UnsupportedMediaType(
                "send a JSON file list (`application/json`) or a site archive (`application/gzip`)"
                    .into(),
            ))
        }
    };
    metrics::counter!("hosting_deploys_total", "kind" => "create", "result" => result_label(&response)).increment(1);
    response
}

fn result_label<T>(result: &ApiResult<T>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) if e.status().is_client_error() => "rejected",
        Err(_) => "error",
    }
}

async fn create_from_manifest(
    state: &AppState,
    owner_id: i64,
    site: &SiteRecord,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let bytes = body::read_limited(body, MAX_MANIFEST_JSON_BYTES)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge { .. } => ApiError::PayloadTooLarge(format!(
                "the file list is larger than {MAX_MANIFEST_JSON_BYTES} bytes"
            )),
            BodyError::Read(e) => {
                ApiError::BadRequest(format!("reading the file list failed: {e}"))
            }
        })?;
    let request: api::CreateDeploy = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let files = validate_file_list(state, &request)?;
    let idempotency = match headers.get(api::IDEMPOTENCY_KEY) {
        Some(key) => {
            let key = key
                .to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                    )
                })?;
            let fingerprint = hex::encode(sha2::Sha256::digest(&bytes));
            Some((key.to_owned(), fingerprint))
        }
        None => None,
    };
    let new = NewDeploy {
        id: DeployId::generate(),
        site_id: site.id,
        owner_id,
        created_by: owner_id,
        files,
        idempotency,
        files_uploaded: false,
    };
    let quotas = crate::domain::quota::Quotas::from_config(&state.config);
    let (status, deploy, required) = match state.store.create_deploy(new, &quotas).await? {
        CreatedDeploy::Created { deploy, required } => (StatusCode::CREATED, deploy, required),
        CreatedDeploy::Replayed { deploy, required } => (StatusCode::OK, deploy, required),
        CreatedDeploy::KeyReused => {
            return Err(ApiError::Unprocessable(
                "this Idempotency-Key was already used with a different file list".into(),
            ))
        }
    };
    let created = api::CreatedDeploy {
        deploy: deploy_view(state, &deploy),
        required: required.into_iter().map(|sha| sha.to_string()).collect(),
    };
    Ok((status, axum::Json(created)).into_response())
}

fn validate_file_list(
    state: &AppState,
    request: &api::CreateDeploy,
) -> ApiResult<Vec<ManifestEntry>> {
    if request.files.is_empty() {
        return Err(ApiError::Unprocessable(
            "a deploy has at least one file".into(),
        ));
    }
    if request.files.len() as u64 > state.config.max_files {
        return Err(ApiError::PayloadTooLarge(format!(
            "a deploy has at most {} files; this one has {}",
            state.config.max_files,
            request.files.len()
        )));
    }
    let mut folded = HashSet::new();
    let mut files = Vec::with_capacity(request.files.len());
    for (path, sha) in &request.files {
        let path = DeployPath::parse(path).map_err(ApiError::Unprocessable)?;
        // Paths differing only in case would collide on case-insensitive file systems and caches.
        if !folded.insert(path.as_str().to_lowercase()) {
            return Err(ApiError::Unprocessable(format!(
                "file path {:?} collides with another path that differs only in case",
                path.as_str()
            )));
        }
        let sha256 = Sha256::parse(sha)
            .map_err(|e| ApiError::Unprocessable(format!("file {:?}: {e}", path.as_str())))?;
        files.push(ManifestEntry {
            path: path.into_string(),
            sha256,
            size: 0,
        });
    }
    Ok(files)
}

/// Publishes a ready deploy and makes every cache see it at once.
pub async fn publish_deploy(state: &AppState, owner_id: i64, id: &str) -> ApiResult<DeployRecord> {
    let deploy = owned_deploy(state, owner_id, id).await?;
    match deploy.state {
        DeployState::Ready => {}
        DeployState::Uploading => {
            let missing = state.store.missing_blobs(&deploy.id).await?.len();
            return Err(ApiError::Conflict(format!(
                "deploy {} is still waiting for {missing} file(s); upload them first",
                deploy.id
            )));
        }
        DeployState::Expired | DeployState::Failed => {
            return Err(ApiError::Conflict(format!(
                "deploy {} is {:?} and cannot be published",
                deploy.id, deploy.state
            )))
        }
    }
    let published = state
        .store
        .publish(owner_id, &deploy.id)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("deploy {} cannot be published", deploy.id)))?;
    state.0.invalidate_site(&published.site_name).await;
    metrics::counter!("hosting_deploys_total", "kind" => "publish", "result" => "ok").increment(1);
    tracing::info!(site.name = %published.site_name, deploy.id = %published.id, "deploy published");
    Ok(published)
}

pub async fn publish(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<api::Deploy>> {
    let deploy = publish_deploy(&state, user.id, &id).await?;
    Ok(axum::Json(deploy_view(&state, &deploy)))
}

pub async fn rollback(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
    body: Body,
) -> ApiResult<axum::Json<api::Deploy>> {
    let site = owned_site(&state, user.id, &site).await?;
    // The body is optional: empty means "the deploy live before this one".
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| ApiError::PayloadTooLarge("the rollback body is too large".into()))?;
    let request: api::Rollback = if bytes.iter().all(u8::is_ascii_whitespace) {
        api::Rollback::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
    };
    let target = match request.deploy_id {
        Some(id) => {
            let deploy = owned_deploy(&state, user.id, &id).await?;
            if deploy.site_id != site.id {
                return Err(ApiError::Unprocessable(format!(
                    "deploy {id} belongs to another site"
                )));
            }
            deploy
        }
        None => state
            .store
            .previous_live(user.id, site.id)
            .await?
            .ok_or_else(|| {
                ApiError::Conflict(format!(
                    "site {:?} has no earlier deploy to roll back to",
                    site.name
                ))
            })?,
    };
    let deploy = publish_deploy(&state, user.id, &target.id).await?;
    Ok(axum::Json(deploy_view(&state, &deploy)))
}
