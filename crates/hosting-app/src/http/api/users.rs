//! Users: who am I (with quota usage), and the admin's user management, quotas included.

use axum::extract::State;
use axum::http::StatusCode;
use hosting_api as api;
use hosting_api::Role;

use super::{token_view, user_view, Json, Path};
use crate::actions::quota::user_quota;
use crate::domain::names::validate_username;
use crate::domain::quota::QuotaOverrides;
use crate::http::auth::{hash_password, AdminUser, AuthUser};
use crate::http::error::{ApiError, ApiResult};
use crate::sessions::hash::{generate_token, hash_token};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/whoami", operation_id = "whoami", tag = "users",
    responses((status = 200, description = "The user the token belongs to, with their quota usage and limits", body = api::WhoAmI)))]
pub async fn whoami(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<axum::Json<api::WhoAmI>> {
    let quota = user_quota(&state, user.id).await?;
    Ok(axum::Json(api::WhoAmI {
        user: user_view(&user),
        quota,
    }))
}

/// `GET /users/{id}/quota` (admin).
#[utoipa::path(get, path = "/api/v1/users/{id}/quota", operation_id = "getUserQuota", tag = "users", description = "A user's quota usage and limits. Needs an admin token.",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Usage and the limits that apply", body = api::Quota),
        (status = 403, description = "The caller is not an admin"),
        (status = 404, description = "No such user"),
    ))]
pub async fn get_quota(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<api::Quota>> {
    Ok(axum::Json(user_quota(&state, id).await?))
}

/// `PUT /users/{id}/quota` (admin): replaces the user's overrides (null = platform default,
/// 0 = unlimited). Lowering a limit below the usage refuses further growth; nothing stored
/// is deleted.
#[utoipa::path(put, path = "/api/v1/users/{id}/quota", operation_id = "setUserQuota", tag = "users",
    description = "Replace a user's quota overrides: `null` or absent = the platform default, `0` = unlimited. Needs an admin token.",
    params(("id" = i64, Path, description = "The user's id")),
    request_body = api::SetQuota,
    responses(
        (status = 200, description = "Usage and the limits that now apply", body = api::Quota),
        (status = 400, description = "The body is not JSON of this shape"),
        (status = 403, description = "The caller is not an admin"),
        (status = 404, description = "No such user"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
#[tracing::instrument(skip_all, fields(user.id = id))]
pub async fn put_quota(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    Json(body): Json<api::SetQuota>,
) -> ApiResult<axum::Json<api::Quota>> {
    let overrides = QuotaOverrides {
        storage_bytes: body.storage_bytes,
        sites: body.sites,
        deploys_per_hour: body.deploys_per_hour,
    };
    if !state.store.set_user_quota(id, &overrides).await? {
        return Err(ApiError::not_found(format!("user {id}")));
    }
    tracing::info!(?overrides, "user quota set");
    crate::audit::events::quota_set(&state, &admin, id, &overrides).await;
    Ok(axum::Json(user_quota(&state, id).await?))
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
    AdminUser(admin): AdminUser,
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
    crate::audit::events::user_changed(&state, &admin, &user, true).await;
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
    crate::audit::events::user_changed(&state, &admin, &user, false).await;
    Ok(axum::Json(user_view(&user)))
}
