//! `GET /api/v1/limits`: the deploy limits this server enforces, so a client (hostctl) can
//! refuse an oversized folder before it creates a site or a deploy.

use axum::extract::State;
use axum::Json;
use hosting_api as api;

use crate::http::auth::AuthUser;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/limits", operation_id = "getLimits", tag = "deploys",
    description = "What one deploy may hold (files, file size, total size), so a client can check a folder first.",
    responses((status = 200, description = "The deploy limits of this server", body = api::Limits)))]
pub async fn get(State(state): State<AppState>, AuthUser(_user): AuthUser) -> Json<api::Limits> {
    Json(api::Limits {
        max_files: state.config.limits.max_files,
        max_file_bytes: state.config.limits.max_file_bytes,
        max_deploy_bytes: state.config.limits.max_deploy_bytes,
    })
}
