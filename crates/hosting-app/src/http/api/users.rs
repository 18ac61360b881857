//! Users: who am I, and the admin's user management.

use axum::extract::State;
use axum::http::StatusCode;
use hosting_api as api;
use hosting_api::Role;

use super::{token_view, user_view, Json, Path};
use crate::domain::names::validate_username;
use crate::http::auth::{generate_token, hash_password, hash_token, AdminUser, AuthUser};
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/whoami", operation_id = "whoami", tag = "users",
    responses((status = 200, description = "The user the token belongs to", body = api::User)))]
pub async fn whoami(AuthUser(user): AuthUser) -> axum::Json<api::User> {
    axum::Json(user_view(&user))
}

#[utoipa::path(get, path = "/api/v1/users", operation_id = "listUsers", tag = "users", description = "Needs an admin token.",
    responses(
        (status = 200, description = "Every user", body = api::List<api::User>),
        (status = 403, description = "The caller is not an admin"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<axum::Json<api::List<api::User>>> {
    let users = state.store.list_users().await?;
    Ok(axum::Json(api::List {
        items: users.iter().map(user_view).collect(),
    }))
}

#[tracing::instrument(skip_all, fields(user.name = %body.username))]
#[utoipa::path(post, path = "/api/v1/users", operation_id = "createUser", tag = "users", description = "Needs an admin token.",
    request_body = api::CreateUser,
    responses(
        (status = 201, description = "The user and its first API token (the secret is shown once)", body = api::CreatedUser),
        (status = 400, description = "The body is not JSON of this shape"),
        (status = 403, description = "The caller is not an admin"),
        (status = 409, description = "The username is taken"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "Invalid username or password"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(body): Json<api::CreateUser>,
) -> ApiResult<(StatusCode, axum::Json<api::CreatedUser>)> {
    let username = validate_username(&body.username).map_err(ApiError::Unprocessable)?;
    let password_hash = body.password.as_deref().map(hash_password).transpose()?;
    let user = state
        .store
        .create_user(
            &username,
            body.role.unwrap_or(Role::Member),
            password_hash.as_deref(),
        )
        .await?;
    let secret = generate_token();
    let token = state
        .store
        .create_token(user.id, "initial", &hash_token(&secret))
        .await?;
    let created = api::CreatedUser {
        user: user_view(&user),
        token: api::CreatedToken {
            token: token_view(&token),
            secret,
        },
    };
    Ok((StatusCode::CREATED, axum::Json(created)))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", operation_id = "updateUser", tag = "users", description = "Disable or enable a user. Needs an admin token.",
    params(("id" = i64, Path, description = "The user's id")),
    request_body = api::UpdateUser,
    responses(
        (status = 200, description = "The updated user", body = api::User),
        (status = 400, description = "The body is not JSON of this shape"),
        (status = 403, description = "The caller is not an admin"),
        (status = 404, description = "No such user"),
        (status = 409, description = "An admin cannot disable their own account"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn update(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    Json(body): Json<api::UpdateUser>,
) -> ApiResult<axum::Json<api::User>> {
    if id == admin.id && body.disabled {
        return Err(ApiError::Conflict(
            "an admin cannot disable their own account".into(),
        ));
    }
    let user = state
        .store
        .set_user_disabled(id, body.disabled)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id}")))?;
    Ok(axum::Json(user_view(&user)))
}
