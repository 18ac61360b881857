//! Visitor access of a site (a password in front of the whole site or its previews and
//! aliases): read, set, remove. The sign-in page itself is `http::visitor`.

use axum::extract::State;
use axum::http::StatusCode;
use hosting_api as api;

use super::{Json, Path};
use crate::actions::protection::{protect, protection, unprotect};
use crate::http::auth::AuthUser;
use crate::http::error::ApiResult;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/sites/{site}/protection", operation_id = "getProtection", tag = "sites",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    responses(
        (status = 200, description = "Whether and where visitors need the password", body = api::Protection),
        (status = 404, description = "No such site of the caller"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
) -> ApiResult<axum::Json<api::Protection>> {
    Ok(axum::Json(protection(&state, user.id, &site).await?))
}

#[tracing::instrument(skip_all, fields(site.name = %site))]
#[utoipa::path(put, path = "/api/v1/sites/{site}/protection", operation_id = "protectSite", tag = "sites",
    description = "Password-protect the site (`scope: all`) or only its previews and aliases \
        (`scope: previews`). Visitors sign in at `/.hosting/visitor-login` on the site's host. \
        A new password signs every visitor out.",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    request_body = api::SetProtection,
    responses(
        (status = 200, description = "The site's visitor access", body = api::Protection),
        (status = 400, description = "The body is not JSON of this shape"),
        (status = 404, description = "No such site of the caller"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "The password is shorter than 8 or longer than 1024 characters"),
    ))]
pub async fn put(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
    Json(body): Json<api::SetProtection>,
) -> ApiResult<axum::Json<api::Protection>> {
    let view = protect(&state.0, user.id, &site, &body.password, body.scope).await?;
    Ok(axum::Json(view))
}

#[tracing::instrument(skip_all, fields(site.name = %site))]
#[utoipa::path(delete, path = "/api/v1/sites/{site}/protection", operation_id = "unprotectSite", tag = "sites",
    description = "Make the site public again (also when it was not protected).",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    responses(
        (status = 204, description = "The site is public"),
        (status = 404, description = "No such site of the caller"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
) -> ApiResult<StatusCode> {
    unprotect(&state.0, user.id, &site).await?;
    Ok(StatusCode::NO_CONTENT)
}
