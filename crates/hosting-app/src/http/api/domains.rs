//! Custom domains of a site: add, list, remove, verify now. Every query is filtered by
//! the caller (another tenant's site is a 404).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hosting_api::{self as api, DomainStatus};

use super::sites::owned_site;
use super::{Json, Path};
use crate::certs;
use crate::domain::hostname::CustomDomain;
use crate::domains::{self, HTTP_VERIFY_PREFIX};
use crate::http::auth::AuthUser;
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{CertificateRecord, DomainRecord, NewDomain};

pub(crate) fn domain_view(
    domain: &DomainRecord,
    certificate: Option<api::Certificate>,
) -> api::Domain {
    api::Domain {
        name: domain.name.clone(),
        site: domain.site_name.clone(),
        status: domain.status,
        status_detail: domain.status_detail.clone(),
        verification: api::DomainVerification {
            txt_name: domains::txt_name(&domain.name),
            txt_value: domain.token.clone(),
            http_path: format!("{HTTP_VERIFY_PREFIX}{}", domain.token),
            http_token: domain.token.clone(),
        },
        created_at: domain.created_at,
        verified_at: domain.verified_at,
        checked_at: domain.checked_at,
        certificate,
    }
}

/// A domain with its certificate: shown while the platform issues certificates (ACME on)
/// and the domain is verified, or a certificate was issued for it before.
pub(crate) async fn domain_response(
    state: &AppState,
    domain: &DomainRecord,
) -> ApiResult<api::Domain> {
    let record = if state.config.acme.acme_directory.is_some() {
        state.store.certificate(domain.id).await?
    } else {
        None
    };
    Ok(domain_with_certificate(state, domain, record.as_ref()))
}

/// `domain` with its certificate row (if any): see [`domain_response`].
fn domain_with_certificate(
    state: &AppState,
    domain: &DomainRecord,
    record: Option<&CertificateRecord>,
) -> api::Domain {
    let certificate = match record {
        _ if state.config.acme.acme_directory.is_none() => None,
        Some(record) => Some(certs::certificate_view(record)),
        None if domain.status == DomainStatus::Verified => Some(certs::pending_view()),
        None => None,
    };
    domain_view(domain, certificate)
}

/// The caller's domain `name` of the caller's site `site`, or 404.
async fn owned_domain(
    state: &AppState,
    owner_id: i64,
    site: &str,
    name: &str,
) -> ApiResult<DomainRecord> {
    let site = owned_site(state, owner_id, site).await?;
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    state
        .store
        .domain(owner_id, site.id, &name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("domain {name:?} of site {:?}", site.name)))
}

/// The caller's site's domains with their certificates (API and dashboard).
pub(crate) async fn site_domains(
    state: &AppState,
    owner_id: i64,
    site_id: i64,
) -> ApiResult<Vec<api::Domain>> {
    let domains = state.store.list_domains(owner_id, site_id).await?;
    let certificates = if state.config.acme.acme_directory.is_some() {
        state.store.site_certificates(site_id).await?
    } else {
        Vec::new()
    };
    Ok(domains
        .iter()
        .map(|domain| {
            let record = certificates.iter().find(|c| c.domain_id == domain.id);
            domain_with_certificate(state, domain, record)
        })
        .collect())
}

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
    let domain = add_domain(&state, user.id, &site, &body.name).await?;
    Ok((StatusCode::CREATED, axum::Json(domain_view(&domain, None))))
}

/// Claims `name` for the caller's site `site` (pending until verified).
pub(crate) async fn add_domain(
    state: &AppState,
    owner_id: i64,
    site: &str,
    name: &str,
) -> ApiResult<DomainRecord> {
    let site = owned_site(state, owner_id, site).await?;
    let name = CustomDomain::parse(name, &state.config.public.base_domain, &state.control_host)
        .map_err(ApiError::Unprocessable)?;
    let now = Utc::now();
    let domain = state
        .store
        .add_domain(NewDomain {
            owner_id,
            site_id: site.id,
            name: name.as_str().to_owned(),
            token: domains::new_token(),
            next_check_at: now,
            replace_unverified_before: now - domains::CLAIM_GRACE,
        })
        .await?;
    // A replaced claim was never verified, but a cached "not served" entry is dropped anyway.
    state.0.invalidate_host(&domain.name).await;
    Ok(domain)
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
    remove_domain(&state, user.id, &site, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the caller's domain; it stops serving at once (its certificate goes with it).
pub(crate) async fn remove_domain(
    state: &AppState,
    owner_id: i64,
    site: &str,
    name: &str,
) -> ApiResult<()> {
    let domain = owned_domain(state, owner_id, site, name).await?;
    if !state
        .store
        .delete_domain(owner_id, domain.site_id, &domain.name)
        .await?
    {
        return Err(ApiError::not_found(format!("domain {name:?}")));
    }
    state.0.invalidate_host(&domain.name).await;
    Ok(())
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
    let updated = verify_domain(&state, user.id, &site, &name).await?;
    Ok(axum::Json(domain_response(&state, &updated).await?))
}

/// Checks the caller's domain's ownership now; the updated record.
pub(crate) async fn verify_domain(
    state: &AppState,
    owner_id: i64,
    site: &str,
    name: &str,
) -> ApiResult<DomainRecord> {
    let domain = owned_domain(state, owner_id, site, name).await?;
    domains::check_and_record(&state.0, &domain).await?;
    owned_domain(state, owner_id, site, name).await
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

/// Makes the caller's verified domain's certificate order due now (409 unless ACME is on
/// and the domain is verified).
pub(crate) async fn order_certificate(
    state: &AppState,
    owner_id: i64,
    site: &str,
    name: &str,
) -> ApiResult<DomainRecord> {
    let domain = owned_domain(state, owner_id, site, name).await?;
    if state.config.acme.acme_directory.is_none() {
        return Err(ApiError::Conflict(
            "this platform does not issue certificates (HOSTING_ACME_DIRECTORY is not set): \
             HTTPS serves the platform's own certificate"
                .into(),
        ));
    }
    if domain.status != DomainStatus::Verified {
        return Err(ApiError::Conflict(format!(
            "domain {:?} is not verified yet: certificates are ordered for verified domains only",
            domain.name
        )));
    }
    state
        .store
        .request_certificate(domain.id, Utc::now())
        .await?;
    tracing::info!(domain.name = %domain.name, "certificate order requested");
    Ok(domain)
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
