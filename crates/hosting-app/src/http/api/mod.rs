//! The JSON API under `/api/v1` on the control host: one module per resource.

pub(crate) mod aliases;
mod analytics;
pub(crate) mod audit;
mod blobs;
mod bulk;
pub(crate) mod deploys;
pub(crate) mod domains;
mod hsts;
mod limits;
mod openapi;
pub(crate) mod protection;
pub(crate) mod sites;
pub(crate) mod tokens;
mod upload;
pub(crate) mod users;
pub(crate) mod webhooks;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::Router;
use hosting_api as api;

pub use openapi::openapi_document;

use super::body::{self, BodyError};
use super::error::ApiError;
use crate::state::{App, AppState};
use crate::store::{DeployRecord, SiteRecord, TokenRecord, UserRecord};

/// The API's routes: the table in `openapi.rs`, which the OpenAPI document describes.
pub fn router() -> Router<AppState> {
    let (router, _document) = openapi::api_routes().split_for_parts();
    router
}

/// JSON request bodies up to this size (as `axum::Json`); the deploy route's file list
/// has a limit of its own.
const MAX_JSON_BYTES: usize = 2 * 1024 * 1024;

/// A JSON request body (`application/json` or `application/*+json`) whose rejections are
/// problem+json. A refused body is read on (bounded) before the answer, so a proxy
/// streaming it relays the 4xx instead of a reset connection (see `http::body`).
pub struct Json<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, _: &S) -> Result<Self, ApiError> {
        let content_type = body::media_type(request.headers());
        let is_json = content_type == "application/json"
            || (content_type.starts_with("application/") && content_type.ends_with("+json"));
        if !is_json {
            body::discard(request.into_body()).await;
            return Err(ApiError::UnsupportedMediaType(
                "send the body as `Content-Type: application/json`".into(),
            ));
        }
        let bytes = body::read_limited(request.into_body(), MAX_JSON_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { limit } => {
                    ApiError::PayloadTooLarge(format!("the JSON body is larger than {limit} bytes"))
                }
                BodyError::Read(e) => ApiError::BadRequest(format!("reading the body failed: {e}")),
            })?;
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// `axum::extract::Path` whose rejections are problem+json.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query` whose rejections are problem+json.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::NotFound(format!("invalid path: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::BadRequest(format!("invalid query string: {}", rejection.body_text()))
    }
}

pub(crate) fn user_view(user: &UserRecord) -> api::User {
    api::User {
        id: user.id,
        username: user.username.clone(),
        role: user.role,
        disabled: user.disabled,
        created_at: user.created_at,
    }
}

pub(crate) fn token_view(token: &TokenRecord) -> api::Token {
    api::Token {
        id: token.id,
        name: token.name.clone(),
        created_at: token.created_at,
        last_used_at: token.last_used_at,
    }
}

pub(crate) fn site_view(app: &App, site: &SiteRecord) -> api::Site {
    api::Site {
        name: site.name.clone(),
        url: app.site_url(&site.name),
        live_deploy_id: site.live_deploy_id.clone(),
        created_at: site.created_at,
        updated_at: site.updated_at,
    }
}

pub(crate) fn deploy_view(app: &App, deploy: &DeployRecord) -> api::Deploy {
    api::Deploy {
        id: deploy.id.clone(),
        site: deploy.site_name.clone(),
        state: deploy.state,
        live: deploy.live,
        file_count: deploy.file_count,
        total_bytes: deploy.total_bytes,
        created_by: deploy.created_by.clone(),
        created_at: deploy.created_at,
        published_at: deploy.published_at,
        preview_url: app.preview_url(&deploy.site_name, &deploy.id),
        error: deploy.error.clone(),
        message: deploy.message.clone(),
    }
}
