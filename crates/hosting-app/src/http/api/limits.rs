//! `GET /api/v1/limits`: the deploy limits this server enforces, so a client (hostctl) can
//! refuse an oversized folder before it creates a site or a deploy.

use axum::extract::State;
use axum::Json;
use hosting_api as api;

use crate::http::auth::AuthUser;
use crate::state::AppState;

pub async fn get(State(state): State<AppState>, AuthUser(_user): AuthUser) -> Json<api::Limits> {
    Json(api::Limits {
        max_files: state.config.max_files,
        max_file_bytes: state.config.max_file_bytes,
        max_deploy_bytes: state.config.max_deploy_bytes,
    })
}
