//! Deploys: the digest protocol (create, then upload what is required, then publish),
//! the one-shot `.tar.gz` upload, history, publish and rollback.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hosting_api as api;
use serde::Deserialize;
use sha2::Digest;

use super::upload::create_from_archive;
use super::{deploy_view, Path, Query};
use crate::actions::deploys::{
    self, create_deploy, deploy_message, owned_deploy, rollback_target, DeployInput,
};
use crate::actions::sites::{forget_new_site, owned_site, site_for_archive};
use crate::http::auth::AuthUser;
use crate::http::body::{self, BodyError};
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{CreatedDeploy, SiteRecord};

/// Largest JSON file list: 20,000 entries of ~100 bytes fit with room to spare.
const MAX_MANIFEST_JSON_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct CreateParams {
    /// Archive deploys publish unless `publish=false`.
    #[serde(default)]
    publish: Option<bool>,
    /// A note stored with the deploy (for archives; a JSON file list carries `message`).
    #[serde(default)]
    message: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/sites/{site}/deploys", operation_id = "listDeploys", tag = "deploys", description = "Deploy history, newest first.",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    responses(
        (status = 200, description = "The site's deploys", body = api::List<api::Deploy>),
        (status = 404, description = "No such site of the caller"),
    ))]
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

#[utoipa::path(get, path = "/api/v1/deploys/{id}", operation_id = "getDeploy", tag = "deploys",
    params(("id" = api::schema::DeployId, Path, description = "The deploy's id")),
    responses(
        (status = 200, description = "The deploy", body = api::Deploy),
        (status = 404, description = "No such deploy of the caller"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<api::Deploy>> {
    let deploy = owned_deploy(&state, user.id, &id).await?;
    Ok(axum::Json(deploy_view(&state, &deploy)))
}

/// `POST /sites/{site}/deploys`: a JSON file list, or a `.tar.gz` of the site.
#[tracing::instrument(skip_all, fields(site.name = %site))]
#[utoipa::path(post, path = "/api/v1/sites/{site}/deploys", operation_id = "createDeploy", tag = "deploys",
    description = "Create a deploy, either with a JSON file list (the digest protocol: the answer lists \
        the hashes to upload with `PUT /api/v1/deploys/{id}/files/{sha256}`, then publish; \
        `Idempotency-Key` makes a retry answer the same deploy) or with a `.tar.gz` of the site \
        (`Content-Type: application/gzip`), published unless `?publish=false`; an archive creates \
        the site when the caller has none of that name. `message` (or `?message=`) is stored with the deploy.",
    params(
        ("site" = api::schema::SiteName, Path, description = "The site's name"),
        ("publish" = Option<bool>, Query, description = "Archive deploys: publish once stored (default true)"),
        ("message" = Option<String>, Query, nullable = false, max_length = 500, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$", description = "A note stored with the deploy (archives; a file list carries `message` in its body)"),
        ("Idempotency-Key" = Option<api::schema::IdempotencyKey>, Header, nullable = false, description = "JSON file lists: a retry with the same key and list answers the deploy the first request created"),
    ),
    request_body(content(
        (api::CreateDeploy = "application/json"),
        (api::schema::SiteArchive = "application/gzip"),
    )),
    responses(
        (status = 201, description = "Created: with `required` for a file list; an archive's deploy is ready (and live unless `publish=false`)", body = api::schema::CreatedOrArchivedDeploy),
        (status = 200, description = "A retry with the same `Idempotency-Key` and file list: the deploy the first request created", body = api::CreatedDeploy),
        (status = 400, description = "Malformed JSON, a refused archive (the problem names the entry), paths that collide (case, Unicode normalization, file and folder), a message too long or not one line, or a malformed `Idempotency-Key`"),
        (status = 403, description = "A quota would be exceeded (`/problems/quota-exceeded`: which quota, its limit and the usage)"),
        (status = 404, description = "No such site of the caller"),
        (status = 413, description = "Over a limit: files per deploy, bytes per file or per deploy, archive expansion"),
        (status = 415, description = "Neither `application/json` nor `application/gzip`"),
        (status = 422, description = "An invalid file path or digest, an empty list, an invalid site name for a new site (archives), or an `Idempotency-Key` reused with another list"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
    Query(params): Query<CreateParams>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let media_type = body::media_type(&headers);
    let is_archive = matches!(
        media_type.as_str(),
        "application/gzip" | "application/x-gzip" | "application/x-tar+gzip"
    );
    let found = match deploy_message(params.message) {
        // Like `hostctl deploy`, a one-shot archive deploy creates its site, so the
        // README's curl example works on a fresh server.
        Ok(message) if is_archive => site_for_archive(&state, user.id, &site)
            .await
            .map(|found| (found, message)),
        Ok(message) => owned_site(&state, user.id, &site)
            .await
            .map(|site| ((site, false), message)),
        Err(refused) => Err(refused),
    };
    let ((site, created_site), query_message) = match found {
        Ok(found) => found,
        Err(refused) => {
            body::discard(body).await;
            return Err(refused.into());
        }
    };
    let response = match media_type.as_str() {
        "application/json" => {
            let created =
                create_from_manifest(&state, user.id, &site, &headers, body, query_message).await;
            if let Err(e) = &created {
                record_failure(&state, user.id, &site, e).await;
            }
            created
        }
        _ if is_archive => {
            let deployed =
                deploy_archive(&state, user.id, &site, params.publish, body, query_message).await;
            if let Err(e) = &deployed {
                record_failure(&state, user.id, &site, e).await;
            }
            if deployed.is_err() && created_site {
                // A failed first deploy leaves no empty site behind.
                forget_new_site(&state, user.id, &site).await;
            }
            deployed
        }
        _ => {
            body::discard(body).await;
            Err(ApiError::UnsupportedMediaType(
                "send a JSON file list (`application/json`) or a site archive (`application/gzip`)"
                    .into(),
            ))
        }
    };
    metrics::counter!(crate::metrics::DEPLOYS_TOTAL, "kind" => "create", "result" => result_label(&response)).increment(1);
    response
}

/// A refused or failed deploy of `site` (audit entry and `deploy.failed`), with what the
/// client was told, or a generic cause for a server error (its detail is logged).
async fn record_failure(state: &AppState, owner_id: i64, site: &SiteRecord, error: &ApiError) {
    let why = if error.status().is_server_error() {
        "the deploy failed on the server".to_owned()
    } else {
        error.to_string()
    };
    crate::audit::events::deploy_failed(state, owner_id, site, &why).await;
}

/// The archive branch of `create`: stream it into a deploy, publish unless told not to.
async fn deploy_archive(
    state: &AppState,
    owner_id: i64,
    site: &SiteRecord,
    publish: Option<bool>,
    body: Body,
    message: Option<String>,
) -> ApiResult<Response> {
    let deploy = create_from_archive(state, owner_id, site, body, message).await?;
    let deploy = if publish.unwrap_or(true) {
        deploys::publish(&state.0, owner_id, &deploy.id).await?
    } else {
        deploy
    };
    Ok((StatusCode::CREATED, axum::Json(deploy_view(state, &deploy))).into_response())
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
    query_message: Option<String>,
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
    let files = deploys::file_list(state, &request.files)?;
    let message = deploy_message(request.message)?.or(query_message);
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
    let input = DeployInput {
        files,
        idempotency,
        files_uploaded: false,
        message,
    };
    let (status, deploy, required) = match create_deploy(state, owner_id, site, input).await? {
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

#[utoipa::path(post, path = "/api/v1/deploys/{id}/publish", operation_id = "publishDeploy", tag = "deploys", description = "Make a ready deploy the site's live one, atomically.",
    params(("id" = api::schema::DeployId, Path, description = "The deploy's id")),
    responses(
        (status = 200, description = "The deploy, now live", body = api::Deploy),
        (status = 404, description = "No such deploy of the caller"),
        (status = 409, description = "The deploy still waits for files, or has expired or failed"),
    ))]
pub async fn publish(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<api::Deploy>> {
    let deploy = deploys::publish(&state.0, user.id, &id).await?;
    Ok(axum::Json(deploy_view(&state, &deploy)))
}

#[utoipa::path(post, path = "/api/v1/sites/{site}/rollback", operation_id = "rollback", tag = "deploys", description = "Publish an earlier deploy: `deploy_id`, or by default the one live before the current one.",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    request_body(content = Option<api::Rollback>, description = "Optional; an empty body rolls back to the deploy live before"),
    responses(
        (status = 200, description = "The deploy, now live", body = api::Deploy),
        (status = 400, description = "The body is not JSON of this shape"),
        (status = 404, description = "No such site or deploy of the caller"),
        (status = 409, description = "No earlier deploy, or the deploy cannot be published"),
        (status = 413, description = "The body is too large"),
        (status = 422, description = "The deploy belongs to another site"),
    ))]
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
    let target = rollback_target(&state, user.id, &site, request.deploy_id.as_deref()).await?;
    let deploy = deploys::publish(&state.0, user.id, &target.id).await?;
    crate::audit::events::deploy_rolled_back(&state, user.id, &deploy).await;
    Ok(axum::Json(deploy_view(&state, &deploy)))
}
