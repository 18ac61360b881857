//! Custom domains of a tenant's sites: claim, verify, order a certificate, remove, and
//! how they are shown (with their certificates).

use std::sync::Arc;

use chrono::Utc;
use hosting_api::{self as api, DomainStatus};

use super::sites::owned_site;
use super::{ActionError, ActionResult};
use crate::audit::{self, Actor};
use crate::certs;
use crate::domain::hostname::CustomDomain;
use crate::domains::{self, HTTP_VERIFY_PREFIX};
use crate::state::App;
use crate::store::{CertificateRecord, DomainRecord, NewDomain};

pub fn domain_view(domain: &DomainRecord, certificate: Option<api::Certificate>) -> api::Domain {
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
pub async fn domain_response(app: &App, domain: &DomainRecord) -> ActionResult<api::Domain> {
    let record = if app.config.acme.acme_directory.is_some() {
        app.store.certificate(domain.id).await?
    } else {
        None
    };
    Ok(domain_with_certificate(app, domain, record.as_ref()))
}

/// `domain` with its certificate row (if any): see [`domain_response`].
fn domain_with_certificate(
    app: &App,
    domain: &DomainRecord,
    record: Option<&CertificateRecord>,
) -> api::Domain {
    let certificate = match record {
        _ if app.config.acme.acme_directory.is_none() => None,
        Some(record) => Some(certs::certificate_view(record)),
        None if domain.status == DomainStatus::Verified => Some(certs::pending_view()),
        None => None,
    };
    domain_view(domain, certificate)
}

/// The caller's site's domains with their certificates.
pub async fn site_domains(
    app: &App,
    owner_id: i64,
    site_id: i64,
) -> ActionResult<Vec<api::Domain>> {
    let domains = app.store.list_domains(owner_id, site_id).await?;
    let certificates = if app.config.acme.acme_directory.is_some() {
        app.store.site_certificates(site_id).await?
    } else {
        Vec::new()
    };
    Ok(domains
        .iter()
        .map(|domain| {
            let record = certificates.iter().find(|c| c.domain_id == domain.id);
            domain_with_certificate(app, domain, record)
        })
        .collect())
}

/// The caller's domain `name` of the caller's site `site`, or not found.
async fn owned_domain(
    app: &App,
    owner_id: i64,
    site: &str,
    name: &str,
) -> ActionResult<DomainRecord> {
    let site = owned_site(app, owner_id, site).await?;
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    app.store
        .domain(owner_id, site.id, &name)
        .await?
        .ok_or_else(|| ActionError::not_found(format!("domain {name:?} of site {:?}", site.name)))
}

/// Claims `name` for the caller's site `site` (pending until verified).
pub async fn add_domain(
    app: &Arc<App>,
    owner_id: i64,
    site: &str,
    name: &str,
) -> ActionResult<DomainRecord> {
    let site = owned_site(app, owner_id, site).await?;
    let name = CustomDomain::parse(name, &app.config.public.base_domain, &app.control_host)
        .map_err(ActionError::Invalid)?;
    let now = Utc::now();
    let domain = app
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
    crate::publish::invalidate_host(app, &domain.name).await;
    audit::record(
        app,
        Actor::Id(owner_id),
        audit::events::domain("domain.add", &domain),
    )
    .await;
    Ok(domain)
}

/// Removes the caller's domain; it stops serving at once (its certificate goes with it).
pub async fn remove_domain(
    app: &Arc<App>,
    owner_id: i64,
    site: &str,
    name: &str,
) -> ActionResult<()> {
    let domain = owned_domain(app, owner_id, site, name).await?;
    if !app
        .store
        .delete_domain(owner_id, domain.site_id, &domain.name)
        .await?
    {
        return Err(ActionError::not_found(format!("domain {name:?}")));
    }
    crate::publish::invalidate_host(app, &domain.name).await;
    audit::record(
        app,
        Actor::Id(owner_id),
        audit::events::domain("domain.remove", &domain),
    )
    .await;
    Ok(())
}

/// Checks the caller's domain's ownership now (TXT record, then HTTP token); the
/// updated record.
pub async fn verify_domain(
    app: &Arc<App>,
    owner_id: i64,
    site: &str,
    name: &str,
) -> ActionResult<DomainRecord> {
    let domain = owned_domain(app, owner_id, site, name).await?;
    let check = domains::check_and_record(app, &domain).await?;
    audit::events::domain_checked(app, Actor::Id(owner_id), &domain, &check).await;
    owned_domain(app, owner_id, site, name).await
}

/// Makes the caller's verified domain's certificate order due now (a conflict unless
/// ACME is on and the domain is verified).
pub async fn order_certificate(
    app: &App,
    owner_id: i64,
    site: &str,
    name: &str,
) -> ActionResult<DomainRecord> {
    let domain = owned_domain(app, owner_id, site, name).await?;
    if app.config.acme.acme_directory.is_none() {
        return Err(ActionError::Conflict(
            "this platform does not issue certificates (HOSTING_ACME_DIRECTORY is not set): \
             HTTPS serves the platform's own certificate"
                .into(),
        ));
    }
    if domain.status != DomainStatus::Verified {
        return Err(ActionError::Conflict(format!(
            "domain {:?} is not verified yet: certificates are ordered for verified domains only",
            domain.name
        )));
    }
    app.store.request_certificate(domain.id, Utc::now()).await?;
    tracing::info!(domain.name = %domain.name, "certificate order requested");
    audit::events::certificate_requested(app, owner_id, &domain).await;
    Ok(domain)
}
