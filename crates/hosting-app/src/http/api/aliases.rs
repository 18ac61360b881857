//! Deploy aliases of a site: list, point at a deploy (create or move), remove. Every
//! query is filtered by the caller (another tenant's site is a 404).

use axum::extract::State;
use axum::http::StatusCode;
use hosting_api as api;

use super::{Json, Path};
use crate::actions::aliases::{list_aliases, remove_alias, set_alias};
use crate::http::auth::AuthUser;
use crate::http::error::ApiResult;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/sites/{site}/aliases", operation_id = "listAliases", tag = "sites",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    responses(
        (status = 200, description = "The site's deploy aliases, by name", body = api::List<api::Alias>),
        (status = 404, description = "No such site of the caller"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
) -> ApiResult<axum::Json<api::List<api::Alias>>> {
    let items = list_aliases(&state, user.id, &site).await?;
    Ok(axum::Json(api::List { items }))
}

#[tracing::instrument(skip_all, fields(site.name = %site, alias.name = %alias))]
#[utoipa::path(put, path = "/api/v1/sites/{site}/aliases/{alias}", operation_id = "setAlias", tag = "sites",
    description = "Point an alias at a ready deploy of the site: `<alias>--<site>.<base-domain>` \
        serves it at once; the live site is untouched. Creates the alias or moves it.",
    params(
        ("site" = api::schema::SiteName, Path, description = "The site's name"),
        ("alias" = api::schema::AliasName, Path, description = "The alias"),
    ),
    request_body = api::SetAlias,
    responses(
        (status = 200, description = "The alias, now pointing at the deploy", body = api::Alias),
        (status = 400, description = "The body is not JSON of this shape"),
        (status = 404, description = "No such site or deploy of the caller"),
        (status = 409, description = "The deploy is not ready"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "Not a valid alias name, or the deploy belongs to another site"),
    ))]
pub async fn put(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((site, alias)): Path<(String, String)>,
    Json(body): Json<api::SetAlias>,
) -> ApiResult<axum::Json<api::Alias>> {
    let alias = set_alias(&state.0, user.id, &site, &alias, &body.deploy_id).await?;
    Ok(axum::Json(alias))
}

#[tracing::instrument(skip_all, fields(site.name = %site, alias.name = %alias))]
#[utoipa::path(delete, path = "/api/v1/sites/{site}/aliases/{alias}", operation_id = "removeAlias", tag = "sites",
    description = "Remove an alias; its host stops serving at once.",
    params(
        ("site" = api::schema::SiteName, Path, description = "The site's name"),
        ("alias" = api::schema::AliasName, Path, description = "The alias"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such alias of the caller's site"),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((site, alias)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    remove_alias(&state.0, user.id, &site, &alias).await?;
    Ok(StatusCode::NO_CONTENT)
}
