//! A site's HSTS setting (`Strict-Transport-Security` over HTTPS): read, set.

use axum::extract::State;
use hosting_api as api;

use super::{Json, Path};
use crate::http::auth::AuthUser;
use crate::http::error::ApiResult;
use crate::state::AppState;
use crate::tls::hsts::{set, setting};

#[utoipa::path(get, path = "/api/v1/sites/{site}/hsts", operation_id = "getHsts", tag = "sites",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    responses(
        (status = 200, description = "The site's HSTS setting (`max_age: 0`: none)", body = api::Hsts),
        (status = 404, description = "No such site of the caller"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
) -> ApiResult<axum::Json<api::Hsts>> {
    Ok(axum::Json(setting(&state, user.id, &site).await?))
}

#[tracing::instrument(skip_all, fields(site.name = %site))]
#[utoipa::path(put, path = "/api/v1/sites/{site}/hsts", operation_id = "setHsts", tag = "sites",
    description = "Send `Strict-Transport-Security` with the site's responses over the \
        platform's HTTPS listener (its hosts and verified custom domains; never over plain \
        HTTP). `max_age: 0` stops it. A `Strict-Transport-Security` rule in the site's \
        `_headers` wins over this setting. Other replicas apply it within \
        `HOSTING_TLS_RELOAD_INTERVAL`.",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    request_body = api::Hsts,
    responses(
        (status = 200, description = "The site's HSTS setting", body = api::Hsts),
        (status = 400, description = "The body is not JSON of this shape"),
        (status = 404, description = "No such site of the caller"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "`max_age` is more than two years"),
    ))]
pub async fn put(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
    Json(body): Json<api::Hsts>,
) -> ApiResult<axum::Json<api::Hsts>> {
    Ok(axum::Json(set(&state, user.id, &site, body).await?))
}
