//! Sites: create, list, get, delete. Every query is filtered by the caller.

use axum::extract::State;
use axum::http::StatusCode;
use hosting_api as api;

use super::{site_view, Json, Path};
use crate::actions::sites::{create_site, delete_site, owned_site};
use crate::domain::names::SiteName;
use crate::http::auth::AuthUser;
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/sites", operation_id = "listSites", tag = "sites",
    responses((status = 200, description = "The caller's sites", body = api::List<api::Site>)))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<axum::Json<api::List<api::Site>>> {
    let sites = state.store.list_sites(user.id).await?;
    Ok(axum::Json(api::List {
        items: sites.iter().map(|s| site_view(&state, s)).collect(),
    }))
}

#[tracing::instrument(skip_all, fields(site.name = %body.name))]
#[utoipa::path(post, path = "/api/v1/sites", operation_id = "createSite", tag = "sites",
    request_body = api::CreateSite,
    responses(
        (status = 201, description = "The new site", body = api::Site),
        (status = 400, description = "The body is not JSON of this shape"),
        (status = 403, description = "The sites quota would be exceeded (`/problems/quota-exceeded`)"),
        (status = 409, description = "The name is taken"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "Invalid site name"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(body): Json<api::CreateSite>,
) -> ApiResult<(StatusCode, axum::Json<api::Site>)> {
    let name = SiteName::parse(&body.name).map_err(ApiError::Unprocessable)?;
    let site = create_site(&state, user.id, &name).await?;
    Ok((StatusCode::CREATED, axum::Json(site_view(&state, &site))))
}

#[utoipa::path(get, path = "/api/v1/sites/{site}", operation_id = "getSite", tag = "sites",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    responses(
        (status = 200, description = "The site", body = api::Site),
        (status = 404, description = "No such site of the caller"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
) -> ApiResult<axum::Json<api::Site>> {
    let site = owned_site(&state, user.id, &site).await?;
    Ok(axum::Json(site_view(&state, &site)))
}

#[tracing::instrument(skip_all, fields(site.name = %site))]
#[utoipa::path(delete, path = "/api/v1/sites/{site}", operation_id = "deleteSite", tag = "sites", description = "Delete a site, its deploys and its domains.",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such site of the caller"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
) -> ApiResult<StatusCode> {
    let record = owned_site(&state, user.id, &site).await?;
    if !delete_site(&state.0, user.id, &record).await? {
        return Err(ApiError::not_found(format!("site {site:?}")));
    }
    Ok(StatusCode::NO_CONTENT)
}
