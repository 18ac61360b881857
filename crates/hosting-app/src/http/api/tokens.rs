//! API tokens: created with the secret shown once, listed without it, revoked.

use axum::extract::State;
use axum::http::StatusCode;
use hosting_api as api;

use super::{token_view, Json, Path};
use crate::audit::{self, Actor};
use crate::http::auth::AuthUser;
use crate::http::error::{ApiError, ApiResult};
use crate::sessions::hash::{generate_token, hash_token};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/tokens", operation_id = "listTokens", tag = "tokens",
    responses((status = 200, description = "The caller's API tokens (never their secrets)", body = api::List<api::Token>)))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<axum::Json<api::List<api::Token>>> {
    let tokens = state.store.list_tokens(user.id).await?;
    Ok(axum::Json(api::List {
        items: tokens.iter().map(token_view).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/tokens", operation_id = "createToken", tag = "tokens",
    request_body = api::CreateToken,
    responses(
        (status = 201, description = "The token; its secret is shown this once", body = api::CreatedToken),
        (status = 400, description = "The body is not JSON of this shape"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "Invalid token name"),
    ))]
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
    let event = audit::events::token("token.create", user.id, token.id, Some(name));
    audit::record(&state, Actor::User(&user), event).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(api::CreatedToken {
            token: token_view(&token),
            secret,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", operation_id = "revokeToken", tag = "tokens", description = "Revoke an API token.",
    params(("id" = i64, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such token of the caller"),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    if state.store.delete_token(user.id, id).await? {
        let event = audit::events::token("token.revoke", user.id, id, None);
        audit::record(&state, Actor::User(&user), event).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("token {id}")))
    }
}
