//! API tokens: created with the secret shown once, listed without it, revoked.

use axum::extract::State;
use axum::http::StatusCode;
use hosting_api as api;

use super::{token_view, Json, Path};
use crate::http::auth::{generate_token, hash_token, AuthUser};
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<axum::Json<api::List<api::Token>>> {
    let tokens = state.store.list_tokens(user.id).await?;
    Ok(axum::Json(api::List {
        items: tokens.iter().map(token_view).collect(),
    }))
}

pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(body): Json<api::CreateToken>,
) -> ApiResult<(StatusCode, axum::Json<api::CreatedToken>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::Unprocessable(
            "a token name has 1 to 100 printable characters".into(),
        ));
    }
    let secret = generate_token();
    let token = state
        .store
        .create_token(user.id, name, &hash_token(&secret))
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(api::CreatedToken {
            token: token_view(&token),
            secret,
        }),
    ))
}

pub async fn revoke(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    if state.store.delete_token(user.id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("token {id}")))
    }
}
