//! Per-site HSTS (`Strict-Transport-Security`): the owner's setting (read and changed
//! through the API, hostctl and the dashboard) and the table the public service asks
//! when it answers a site over the app's own HTTPS listener. Never sent over plain HTTP:
//! a browser ignores it there (RFC 6797 8.1), and a proxy in front that terminates TLS
//! sets its own.
//!
//! The table is reloaded with the certificates (`reload.rs`): at once on the replica
//! where the setting changed, within `HOSTING_TLS_RELOAD_INTERVAL` on the others. So a
//! warm request still runs no database query.

use std::collections::HashMap;

use arc_swap::ArcSwap;
use axum::http::HeaderValue;
use hosting_api as api;

use crate::actions::sites::owned_site;
use crate::actions::{ActionError, ActionResult};
use crate::state::App;

/// The header value of a setting; `None` when it is off.
pub fn header(max_age: u64, include_subdomains: bool) -> Option<HeaderValue> {
    if max_age == 0 {
        return None;
    }
    let value = match include_subdomains {
        true => format!("max-age={max_age}; includeSubDomains"),
        false => format!("max-age={max_age}"),
    };
    HeaderValue::from_str(&value).ok()
}

/// The sites (by name) and verified custom domains (by name) that send HSTS over HTTPS.
#[derive(Debug, Default)]
pub struct HstsTable {
    sites: ArcSwap<HashMap<String, HeaderValue>>,
    domains: ArcSwap<HashMap<String, HeaderValue>>,
}

impl HstsTable {
    /// The header of a site's responses (its own host, previews and aliases).
    pub fn for_site(&self, site: &str) -> Option<HeaderValue> {
        self.sites.load().get(site).cloned()
    }

    /// The header of a custom domain's responses.
    pub fn for_domain(&self, domain: &str) -> Option<HeaderValue> {
        self.domains.load().get(domain).cloned()
    }

    /// Reads the table again; a failed read keeps the one in use.
    pub async fn reload(&self, app: &App) {
        let hosts = match app.store.hsts_hosts().await {
            Ok(hosts) => hosts,
            Err(e) => {
                tracing::warn!(error = %e, "reading the sites' HSTS settings failed; the loaded ones stay");
                return;
            }
        };
        let (mut sites, mut domains) = (HashMap::new(), HashMap::new());
        for host in hosts {
            let max_age = u64::try_from(host.max_age).unwrap_or(0);
            let Some(value) = header(max_age, host.include_subdomains) else {
                continue;
            };
            match host.domain {
                Some(domain) => domains.insert(domain, value),
                None => sites.insert(host.site, value),
            };
        }
        self.sites.store(sites.into());
        self.domains.store(domains.into());
    }
}

/// The caller's site's setting (`max_age: 0` when it sends none).
pub async fn setting(app: &App, owner_id: i64, site: &str) -> ActionResult<api::Hsts> {
    let site = owned_site(app, owner_id, site).await?;
    let stored = app.store.site_hsts(owner_id, site.id).await?;
    Ok(
        stored.map_or_else(api::Hsts::default, |(max_age, include_subdomains)| {
            api::Hsts {
                max_age: u32::try_from(max_age).unwrap_or(api::HSTS_MAX_AGE_LIMIT),
                include_subdomains,
            }
        }),
    )
}

/// Sets (or with `max_age: 0` removes) the caller's site's HSTS; this replica's table
/// follows at once, the others' on their next reload.
pub async fn set(
    app: &App,
    owner_id: i64,
    site: &str,
    wanted: api::Hsts,
) -> ActionResult<api::Hsts> {
    let site = owned_site(app, owner_id, site).await?;
    if wanted.max_age > api::HSTS_MAX_AGE_LIMIT {
        return Err(ActionError::Invalid(format!(
            "max_age is at most {} seconds (two years)",
            api::HSTS_MAX_AGE_LIMIT
        )));
    }
    match wanted.max_age {
        0 => app.store.delete_site_hsts(owner_id, site.id).await?,
        max_age => {
            app.store
                .set_site_hsts(
                    owner_id,
                    site.id,
                    i64::from(max_age),
                    wanted.include_subdomains,
                )
                .await?
        }
    }
    app.certificates_changed.send_replace(());
    Ok(match wanted.max_age {
        0 => api::Hsts::default(),
        _ => wanted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_says_the_max_age_and_subdomains_only_when_asked_and_nothing_for_zero() {
        assert_eq!(header(0, true), None);
        assert_eq!(header(300, false).expect("header"), "max-age=300");
        assert_eq!(
            header(31_536_000, true).expect("header"),
            "max-age=31536000; includeSubDomains"
        );
    }
}
