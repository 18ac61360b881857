//! The hot path: a request on a site host becomes a file of the deploy that host
//! points at. Host -> deploy, deploy -> manifest and file bytes all come from the
//! in-process cache once warm, so a warm request touches no database.

mod access;
mod content;
mod error;
pub mod path;
mod proxy;
mod refresh;
mod respond;
mod tiers;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hosting_api::ProtectionScope;
use hosting_rules::{HeaderRules, MatchKind, Redirects, Visitor};

use self::access::Access;
use self::error::ServeError;
pub use self::respond::site_cache_control;
use self::respond::{file_response, identity_bytes, FileToServe};
use super::host::HostKind;
use super::pages::{not_found, platform_page};
use super::ratelimit::client_ip_of;
use crate::cache::{CachedDeploy, HostEntry};
use crate::domain::manifest::{
    Resolved, SiteManifest, HEADERS_FILE, NOT_FOUND_FILE, REDIRECTS_FILE,
};
use crate::state::{host_key, AppState};
use crate::store::{LiveDeploy, ManifestEntry, ProtectionRecord};

/// Largest `_redirects` / `_headers` file read; more is a mistake or an attack.
const MAX_RULES_FILE_BYTES: u64 = 1024 * 1024;

/// Serves one request for a site or preview host, whose deploy `deploy` was found in the
/// host entry that the visitor check read ([`host_entry`]).
pub async fn serve_site(
    state: &AppState,
    host: &str,
    deploy: Option<Arc<LiveDeploy>>,
    req: Request<Body>,
) -> Response {
    let readable = matches!(*req.method(), Method::GET | Method::HEAD);
    let target = match deploy {
        Some(target) => target,
        None if readable => return not_found(),
        None => return method_not_allowed(),
    };
    let deploy = match manifest_for(state, &target).await {
        Ok(deploy) => deploy,
        Err(e) => return unavailable(&e),
    };
    // The request moves on below; its path is borrowed from a clone of the URI (a
    // reference count), so a normal path is never copied.
    let uri = req.uri().clone();
    let path = match path::decode_path(uri.path()) {
        Ok(path) => path,
        Err(reason) => return platform_page(StatusCode::BAD_REQUEST, "Bad request", reason),
    };
    let request = access::check(&deploy.manifest, &path, req.headers());
    if matches!(request, Access::Denied) {
        return access::unauthorized();
    }
    let mut response = route(
        state,
        &target,
        &deploy,
        host,
        &path,
        req,
        request.protected(),
    )
    .await;
    if request.protected() {
        access::mark_private(&mut response);
    }
    response
}

/// The one outcome of a request whose path passed the access check: a rule, a file,
/// a trailing-slash redirect or the 404 page.
async fn route(
    state: &AppState,
    live: &LiveDeploy,
    deploy: &Arc<CachedDeploy>,
    host: &str,
    path: &str,
    req: Request<Body>,
    protected: bool,
) -> Response {
    let manifest = &deploy.manifest;
    let is_head = req.method() == Method::HEAD;
    let readable = is_head || req.method() == Method::GET;
    let query = req.uri().query();
    let visitor = visitor(state, manifest, &req);
    let rule = manifest
        .redirects
        .find_for(path, query, &visitor, |p| manifest.exists(p));
    if let Some(rule) = rule.as_ref().filter(|r| r.kind == MatchKind::Proxy) {
        let to = proxy::Forward {
            site_id: live.site_id,
            host,
            target: &rule.target,
            protected,
        };
        // Boxed: the proxy's client future would make every request's future large.
        return Box::pin(proxy::forward(state, to, req)).await;
    }
    // Only proxy rules pass other methods on; the deploy's own files are read-only.
    if !readable {
        return method_not_allowed();
    }
    let headers = req.headers();
    if let Some(rule) = rule {
        return match rule.kind {
            MatchKind::Redirect => redirect(
                state,
                StatusCode::from_u16(rule.status).unwrap_or(StatusCode::MOVED_PERMANENTLY),
                &rule.target,
            ),
            MatchKind::Rewrite | MatchKind::Custom | MatchKind::Proxy => {
                let status = StatusCode::from_u16(rule.status).unwrap_or(StatusCode::OK);
                let Ok(rewritten) = path::normalize_path(&rule.target) else {
                    return not_found_response(state, deploy, headers, is_head).await;
                };
                // A rewrite may not reach a protected file from an open path.
                let target_access = access::check(manifest, &rewritten, headers);
                if matches!(target_access, Access::Denied) {
                    return access::unauthorized();
                }
                let mut response = match resolve_rewrite(manifest, &rewritten) {
                    Some((file_path, file)) => {
                        let target = FileToServe {
                            deploy,
                            rules_path: &rewritten,
                            file_path: &file_path,
                            file: &file,
                            status,
                        };
                        file_response(state, headers, is_head, target).await
                    }
                    None => not_found_response(state, deploy, headers, is_head).await,
                };
                if target_access.protected() {
                    access::mark_private(&mut response);
                }
                response
            }
        };
    }

    match manifest.resolve(path) {
        Resolved::File {
            path: file_path,
            file,
        } => {
            let target = FileToServe {
                deploy,
                rules_path: path,
                file_path: &file_path,
                file,
                status: StatusCode::OK,
            };
            file_response(state, headers, is_head, target).await
        }
        Resolved::AddSlash => {
            let location = match query {
                Some(q) => format!("{}/?{q}", path::encode_path(path)),
                None => format!("{}/", path::encode_path(path)),
            };
            redirect(state, StatusCode::MOVED_PERMANENTLY, &location)
        }
        Resolved::Missing => not_found_response(state, deploy, headers, is_head).await,
    }
}

/// What the rules' conditions may ask about the visitor, looked up only when some
/// rule of the deploy has such a condition.
fn visitor(state: &AppState, manifest: &SiteManifest, req: &Request<Body>) -> Visitor {
    let redirects = &manifest.redirects;
    let language = redirects
        .uses_language()
        .then(|| req.headers().get(header::ACCEPT_LANGUAGE))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(Visitor::preferred_language);
    let country = redirects
        .uses_country()
        .then(|| client_ip_of(req.extensions(), req.headers()))
        .flatten()
        .and_then(|ip| state.routing.country(ip));
    Visitor { language, country }
}

fn method_not_allowed() -> Response {
    let mut response = platform_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "Sites accept GET and HEAD only.",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// A rewrite target resolves like a request path; a folder serves its index.
fn resolve_rewrite(
    manifest: &SiteManifest,
    target: &str,
) -> Option<(String, crate::domain::manifest::FileRef)> {
    match manifest.resolve(target) {
        Resolved::File { path, file } => Some((path, file.clone())),
        Resolved::AddSlash => match manifest.resolve(&format!("{target}/")) {
            Resolved::File { path, file } => Some((path, file.clone())),
            _ => None,
        },
        Resolved::Missing => None,
    }
}

async fn not_found_response(
    state: &AppState,
    deploy: &Arc<CachedDeploy>,
    headers: &axum::http::HeaderMap,
    is_head: bool,
) -> Response {
    match deploy.manifest.file(NOT_FOUND_FILE) {
        Some(file) => {
            let target = FileToServe {
                deploy,
                rules_path: NOT_FOUND_FILE,
                file_path: NOT_FOUND_FILE,
                file,
                status: StatusCode::NOT_FOUND,
            };
            file_response(state, headers, is_head, target).await
        }
        None => not_found(),
    }
}

fn redirect(state: &AppState, status: StatusCode, location: &str) -> Response {
    // A `Location` is a URI: non-ASCII (a rule's literal `/café`) and control bytes are
    // percent-encoded; existing escapes are left alone.
    let location =
        percent_encoding::utf8_percent_encode(location, percent_encoding::CONTROLS).to_string();
    let Ok(location) = HeaderValue::from_str(&location) else {
        return platform_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Bad redirect",
            "A redirect rule produced an invalid location.",
        );
    };
    let mut response = status.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&site_cache_control(
            state.config.cache.proxy_cache_seconds.as_secs(),
        ))
        .unwrap_or(HeaderValue::from_static("no-cache")),
    );
    response
}

fn unavailable(cause: &ServeError) -> Response {
    tracing::warn!(error = %cause, "site lookup failed");
    let mut response = platform_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "This site cannot be served right now. Please retry in a few seconds.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// The deploy a host points at and its visitor access, through the host cache. An entry
/// past the TTL is still answered from while the background refresher looks it up again
/// ([`refresh`]): a missed invalidation is corrected within the TTL plus one lookup, and
/// no request whose host is cached waits for the database, fresh or stale.
pub async fn host_entry(
    state: &AppState,
    host: &str,
    kind: &HostKind,
) -> Result<HostEntry, ServeError> {
    if let Some(entry) = state.cache.hosts.get(host).await {
        crate::telemetry::record_cache_lookup("l1", "host", true);
        if state.cache.begin_refresh(host, &entry) {
            refresh::refresh_later(state, host);
        }
        return Ok(entry);
    }
    // Boxed, as every path a hit does not take: see `tiers::l1`.
    Box::pin(missing_host_entry(state, host, kind)).await
}

/// A host entry the cache does not hold: looked up through the tiers and cached.
async fn missing_host_entry(
    state: &AppState,
    host: &str,
    kind: &HostKind,
) -> Result<HostEntry, ServeError> {
    let invalidations = state.cache.host_invalidations();
    let entry = tiers::l1(&state.cache.hosts, "host", &host.to_owned(), || async {
        fresh_host_entry(state, host, kind).await
    })
    .await?;
    // An invalidation that arrived after the lookup read its rows but before the cache
    // took the entry found nothing to drop: drop what may be stale now, rather than keep
    // it until the TTL (five minutes embedded).
    if state.cache.host_invalidations() != invalidations {
        state.cache.hosts.invalidate(host).await;
    }
    Ok(entry)
}

/// The host's deploy from the tiers below L1 and its visitor access from the store,
/// looked up again if an invalidation raced them.
async fn fresh_host_entry(
    state: &AppState,
    host: &str,
    kind: &HostKind,
) -> Result<HostEntry, ServeError> {
    let mut attempt = 1;
    loop {
        let invalidations = state.cache.host_invalidations();
        let (found, protection) = tokio::try_join!(
            look_up_host(state, host, kind),
            look_up_protection(state, kind)
        )?;
        if state.cache.host_invalidations() == invalidations || attempt == HOST_LOOKUP_ATTEMPTS {
            return Ok(HostEntry::new(
                found.map(Arc::new),
                protection.map(Arc::new),
            ));
        }
        attempt += 1;
    }
}

/// The visitor access that applies to a host of this kind (`None`: public). Read from
/// the store, never the shared cache: the record holds the password hash and the key
/// that signs visitors' cookies.
async fn look_up_protection(
    state: &AppState,
    kind: &HostKind,
) -> Result<Option<ProtectionRecord>, ServeError> {
    let store = &state.store;
    let found = match kind {
        HostKind::Site(site) | HostKind::Preview(site, _) | HostKind::Alias(site, _) => {
            store.site_protection(site.as_str()).await?
        }
        HostKind::Custom(domain) => store.domain_protection(domain).await?,
        HostKind::Control | HostKind::Unknown => None,
    };
    Ok(found.filter(|protection| protection_applies(protection.scope, kind)))
}

/// Whether a site's visitor access covers a host of this kind.
fn protection_applies(scope: ProtectionScope, kind: &HostKind) -> bool {
    match scope {
        ProtectionScope::All => true,
        ProtectionScope::Previews => matches!(kind, HostKind::Preview(..) | HostKind::Alias(..)),
    }
}

/// Lookups of a host raced by invalidations are repeated at most this often (the TTL
/// bounds what the last one may keep).
const HOST_LOOKUP_ATTEMPTS: u32 = 3;

/// The deploy a host points at, from the shared cache or the store (which fills it).
async fn look_up_host(
    state: &AppState,
    host: &str,
    kind: &HostKind,
) -> Result<Option<LiveDeploy>, ServeError> {
    let l2 = tiers::L2 {
        shared: &state.shared,
        kind: "host",
        key: host_key(host),
        ttl: state.cache.host_ttl(),
    };
    let found = tiers::l2(l2, |_| true, async {
        let store = &state.store;
        let found = match kind {
            HostKind::Site(site) => store.live_deploy(site.as_str()).await,
            HostKind::Preview(site, deploy) => {
                store.preview_deploy(site.as_str(), deploy.as_str()).await
            }
            HostKind::Alias(site, alias) => store.alias_deploy(site.as_str(), alias.as_str()).await,
            // Only a verified domain resolves (the store checks the status).
            HostKind::Custom(name) => store.domain_live_deploy(name).await,
            HostKind::Control | HostKind::Unknown => Ok(None),
        };
        Ok(tiers::Json(found?))
    })
    .await?;
    Ok(found.0)
}

/// A deploy's manifest and rules, through the manifest cache (with the headers
/// prebuilt for its files as they get served).
async fn manifest_for(
    state: &AppState,
    target: &LiveDeploy,
) -> Result<Arc<CachedDeploy>, ServeError> {
    tiers::l1(
        &state.cache.manifests,
        "manifest",
        &target.deploy_id,
        || async {
            load_manifest(state, target)
                .await
                .map(|manifest| Arc::new(state.cache.deploy(manifest)))
        },
    )
    .await
}

/// Manifests never change: the shared cache keeps them a day.
const SHARED_MANIFEST_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

async fn manifest_entries(
    state: &AppState,
    deploy_id: &str,
) -> Result<Vec<ManifestEntry>, ServeError> {
    let l2 = tiers::L2 {
        shared: &state.shared,
        kind: "manifest",
        key: format!("manifest:{deploy_id}"),
        ttl: SHARED_MANIFEST_TTL,
    };
    let keep = |entries: &tiers::Json<Vec<ManifestEntry>>| !entries.0.is_empty();
    let entries = tiers::l2(l2, keep, async {
        Ok(tiers::Json(state.store.manifest(deploy_id).await?))
    })
    .await?;
    Ok(entries.0)
}

async fn load_manifest(state: &AppState, target: &LiveDeploy) -> Result<SiteManifest, ServeError> {
    let entries = manifest_entries(state, &target.deploy_id).await?;
    let mut manifest = SiteManifest::new(
        target.deploy_id.clone(),
        target.created_at,
        entries,
        Redirects::default(),
        HeaderRules::default(),
    );
    let mut redirects = Redirects::default();
    let mut headers = HeaderRules::default();
    let mut source_bytes = 0;
    if let Some(text) = rules_text(state, &manifest, REDIRECTS_FILE).await? {
        let (rules, warnings) = Redirects::parse(&text);
        log_rule_warnings(target, REDIRECTS_FILE, &warnings);
        redirects = rules;
        source_bytes += text.len() as u64;
    }
    if let Some(text) = rules_text(state, &manifest, HEADERS_FILE).await? {
        let (rules, warnings) = HeaderRules::parse(&text);
        log_rule_warnings(target, HEADERS_FILE, &warnings);
        headers = rules;
        source_bytes += text.len() as u64;
    }
    manifest.set_rules(redirects, headers, source_bytes);
    Ok(manifest)
}

async fn rules_text(
    state: &AppState,
    manifest: &SiteManifest,
    path: &str,
) -> Result<Option<String>, ServeError> {
    let Some(file) = manifest.entry(path) else {
        return Ok(None);
    };
    if file.size > MAX_RULES_FILE_BYTES {
        tracing::warn!(deploy.id = %manifest.deploy_id, file = path, "rules file too large; ignored");
        return Ok(None);
    }
    let bytes = identity_bytes(state, file).await?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

fn log_rule_warnings(target: &LiveDeploy, file: &str, warnings: &[hosting_rules::ParseWarning]) {
    for warning in warnings.iter().take(20) {
        tracing::info!(deploy.id = %target.deploy_id, file, line = warning.line, "skipped rule: {}", warning.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_scope_leaves_the_live_site_and_custom_domains_public() {
        let site = crate::domain::names::SiteName::parse("blog").expect("name");
        let deploy = crate::domain::names::DeployId::parse("0123456789abcdef").expect("id");
        assert!(!protection_applies(
            ProtectionScope::Previews,
            &HostKind::Site(site.clone())
        ));
        assert!(!protection_applies(
            ProtectionScope::Previews,
            &HostKind::Custom("a.example".into())
        ));
        assert!(protection_applies(
            ProtectionScope::Previews,
            &HostKind::Preview(site.clone(), deploy)
        ));
        assert!(protection_applies(
            ProtectionScope::All,
            &HostKind::Site(site)
        ));
    }
}
