//! Sites: create, list, get, delete. Every query is filtered by the caller.

use axum::extract::State;
use axum::http::StatusCode;
use hosting_api as api;

use super::{site_view, Json, Path};
use crate::domain::names::SiteName;
use crate::domain::quota::Quotas;
use crate::http::auth::AuthUser;
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::SiteRecord;

/// The caller's site named `raw`, or 404 (also for another tenant's site: existence is not revealed).
pub async fn owned_site(state: &AppState, owner_id: i64, raw: &str) -> ApiResult<SiteRecord> {
    let name = SiteName::parse(raw).map_err(|_| ApiError::not_found(format!("site {raw:?}")))?;
    state
        .store
        .site(owner_id, name.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("site {raw:?}")))
}

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
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(body): Json<api::CreateSite>,
) -> ApiResult<(StatusCode, axum::Json<api::Site>)> {
    let name = SiteName::parse(&body.name).map_err(ApiError::Unprocessable)?;
    let site = create_owned_site(&state, user.id, &name).await?;
    Ok((StatusCode::CREATED, axum::Json(site_view(&state, &site))))
}

/// Creates a site for `owner_id` if the sites quota admits it: the one way to create a
/// site (API, dashboard, and any route that creates a missing site).
pub async fn create_owned_site(
    state: &AppState,
    owner_id: i64,
    name: &SiteName,
) -> ApiResult<SiteRecord> {
    let quotas = Quotas::from_config(&state.config);
    Ok(state
        .store
        .create_site(owner_id, name.as_str(), &quotas)
        .await?)
}

pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
) -> ApiResult<axum::Json<api::Site>> {
    let site = owned_site(&state, user.id, &site).await?;
    Ok(axum::Json(site_view(&state, &site)))
}

#[tracing::instrument(skip_all, fields(site.name = %site))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
) -> ApiResult<StatusCode> {
    let record = owned_site(&state, user.id, &site).await?;
    // Read before the delete cascades them away, so their cached hosts can be dropped.
    let domains = state
        .store
        .site_domains(&record.name)
        .await
        .unwrap_or_default();
    if !state.store.delete_site(user.id, &record.name).await? {
        return Err(ApiError::not_found(format!("site {site:?}")));
    }
    state.0.invalidate_site(&record.name).await;
    for domain in domains {
        state.0.invalidate_host(&domain).await;
    }
    Ok(StatusCode::NO_CONTENT)
}
