//! Custom domains of a site: add, list, remove, verify now. Every query is filtered by
//! the caller (another tenant's site is a 404).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hosting_api as api;

use super::{Json, Path};
use crate::actions::custom_domains::{
    add_domain, domain_response, domain_view, order_certificate, remove_domain, site_domains,
    verify_domain,
};
use crate::actions::sites::owned_site;
use crate::domains::HTTP_VERIFY_PREFIX;
use crate::http::auth::AuthUser;
use crate::http::error::ApiResult;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/sites/{site}/domains", operation_id = "listDomains", tag = "domains",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    responses(
        (status = 200, description = "The site's custom domains", body = api::List<api::Domain>),
        (status = 404, description = "No such site of the caller"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
) -> ApiResult<axum::Json<api::List<api::Domain>>> {
    let site = owned_site(&state, user.id, &site).await?;
    let items = site_domains(&state, user.id, site.id).await?;
    Ok(axum::Json(api::List { items }))
}

#[tracing::instrument(skip_all, fields(site.name = %site, domain.name = %body.name))]
#[utoipa::path(post, path = "/api/v1/sites/{site}/domains", operation_id = "addDomain", tag = "domains", description = "Claim a custom domain for a site; it serves once verified.",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    request_body = api::AddDomain,
    responses(
        (status = 201, description = "The pending domain, with how to verify it", body = api::Domain),
        (status = 400, description = "The body is not JSON of this shape"),
        (status = 404, description = "No such site of the caller"),
        (status = 409, description = "The domain is verified or claimed for another site"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "Not a domain this platform lets a tenant claim"),
    ))]
pub async fn add(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
    Json(body): Json<api::AddDomain>,
) -> ApiResult<(StatusCode, axum::Json<api::Domain>)> {
    let domain = add_domain(&state.0, user.id, &site, &body.name).await?;
    Ok((StatusCode::CREATED, axum::Json(domain_view(&domain, None))))
}

#[tracing::instrument(skip_all, fields(site.name = %site, domain.name = %name))]
#[utoipa::path(delete, path = "/api/v1/sites/{site}/domains/{domain}", operation_id = "removeDomain", tag = "domains", description = "Remove a custom domain; it stops serving at once.",
    params(
        ("site" = api::schema::SiteName, Path, description = "The site's name"),
        ("domain" = api::schema::DomainName, Path, description = "The domain"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such domain of the caller's site"),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((site, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    remove_domain(&state.0, user.id, &site, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks ownership now (TXT record, then HTTP token) and answers the updated domain.
#[tracing::instrument(skip_all, fields(site.name = %site, domain.name = %name))]
#[utoipa::path(post, path = "/api/v1/sites/{site}/domains/{domain}/verify", operation_id = "verifyDomain", tag = "domains", description = "Check domain ownership now (DNS TXT record or HTTP token).",
    params(
        ("site" = api::schema::SiteName, Path, description = "The site's name"),
        ("domain" = api::schema::DomainName, Path, description = "The domain"),
    ),
    responses(
        (status = 200, description = "The domain after the check", body = api::Domain),
        (status = 404, description = "No such domain of the caller's site"),
    ))]
pub async fn verify(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((site, name)): Path<(String, String)>,
) -> ApiResult<axum::Json<api::Domain>> {
    let updated = verify_domain(&state.0, user.id, &site, &name).await?;
    Ok(axum::Json(domain_response(&state, &updated).await?))
}

/// Orders the domain's certificate now: the first one, a retry after failures, or an
/// early renewal. The issuer picks it up within `HOSTING_ACME_INTERVAL`.
#[tracing::instrument(skip_all, fields(site.name = %site, domain.name = %name))]
#[utoipa::path(post, path = "/api/v1/sites/{site}/domains/{domain}/certificate", operation_id = "orderCertificate", tag = "domains", description = "Order the domain's certificate now (first order, retry or early renewal).",
    params(
        ("site" = api::schema::SiteName, Path, description = "The site's name"),
        ("domain" = api::schema::DomainName, Path, description = "The domain"),
    ),
    responses(
        (status = 202, description = "The order is due; the issuer picks it up shortly", body = api::Domain),
        (status = 404, description = "No such domain of the caller's site"),
        (status = 409, description = "The domain is not verified, or the platform does not issue certificates"),
    ))]
pub async fn request_certificate(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((site, name)): Path<(String, String)>,
) -> ApiResult<(StatusCode, axum::Json<api::Domain>)> {
    let domain = order_certificate(&state, user.id, &site, &name).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(domain_response(&state, &domain).await?),
    ))
}

/// `GET /.well-known/hosting-verify/<token>` on a custom domain: the token, when it is
/// the one of a claim on this very host. Proves the domain routes to the platform.
pub async fn serve_token(state: &AppState, host: &str, path: &str) -> Response {
    let asked = path.strip_prefix(HTTP_VERIFY_PREFIX).unwrap_or_default();
    match state.store.domain_token(host).await {
        Ok(Some(token)) if !asked.is_empty() && token == asked => {
            let mut response = (StatusCode::OK, Body::from(token)).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Ok(_) => crate::http::pages::not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "looking up a verification token failed");
            crate::http::pages::platform_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "Try again shortly.",
            )
        }
    }
}
