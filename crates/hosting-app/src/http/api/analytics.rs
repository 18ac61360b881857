//! `GET /api/v1/sites/{site}/analytics`: a site's traffic figures (issue 20), for its
//! owner or an admin.

use axum::extract::State;
use chrono::{DateTime, Utc};
use hosting_api as api;
use serde::Deserialize;

use super::{Path, Query};
use crate::analytics::report::{self, RangeQuery, ReportError};
use crate::http::auth::AuthUser;
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct RangeParams {
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    #[serde(default)]
    to: Option<DateTime<Utc>>,
    #[serde(default)]
    granularity: Option<api::AnalyticsGranularity>,
}

#[tracing::instrument(skip_all, fields(site.name = %site))]
#[utoipa::path(get, path = "/api/v1/sites/{site}/analytics", operation_id = "getSiteAnalytics", tag = "analytics",
    description = "Requests, page views, unique visitors, bytes, status classes and top pages, referrers and 404s \
        of a site over [`from`, `to`), counted by the server (no script, no cookie). Figures lag by at most \
        `HOSTING_ANALYTICS_FLUSH_INTERVAL`. Without `granularity`, the finest one kept that gives at most 400 points.",
    params(
        ("site" = api::schema::SiteName, Path, description = "The site's name"),
        ("from" = Option<DateTime<Utc>>, Query, nullable = false, description = "Start (RFC 3339); default `to` minus 7 days"),
        ("to" = Option<DateTime<Utc>>, Query, nullable = false, description = "End, exclusive (RFC 3339); default now"),
        ("granularity" = Option<api::AnalyticsGranularity>, Query, nullable = false, description = "Span of each point: `minute` (kept a day), `hour` (90 days), `day` (2 years), by default"),
    ),
    responses(
        (status = 200, description = "The site's figures", body = api::SiteAnalytics),
        (status = 400, description = "A malformed time, `from` not before `to`, a granularity no longer kept for `from`, or more than 2,000 points"),
        (status = 404, description = "No such site of the caller (admins: no such site)"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
    Query(params): Query<RangeParams>,
) -> ApiResult<axum::Json<api::SiteAnalytics>> {
    let site = report::readable_site(&state, &user, &site).await?;
    let query = RangeQuery {
        from: params.from,
        to: params.to,
        granularity: params.granularity,
    };
    let range = report::range(&state, query, Utc::now()).map_err(report_error)?;
    let figures = report::report(&state, &site, range)
        .await
        .map_err(report_error)?;
    Ok(axum::Json(figures))
}

fn report_error(e: ReportError) -> ApiError {
    match e {
        ReportError::BadRange(message) => ApiError::BadRequest(message),
        ReportError::Store(e) => e.into(),
    }
}
