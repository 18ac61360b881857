//! API rate limits: a fixed one-minute window per token (authenticated requests) or
//! per client address (the rest). Counted in Redis so the limit holds across every
//! replica; with Redis unavailable each replica counts on its own.

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ConnectInfo;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderValue, Request};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::counters::WINDOW;
use crate::sessions::hash::hash_token;
use crate::state::App;

/// File uploads of a deploy are not counted: a first deploy of a 20,000-file site is
/// 20,000 uploads, and each must match a hash of a deploy the caller created (itself
/// counted), so they cannot be used to hammer anything else.
pub fn exempt<B>(req: &Request<B>) -> bool {
    req.method() == axum::http::Method::PUT
        && req
            .uri()
            .path()
            .strip_prefix("/api/v1/deploys/")
            .is_some_and(|rest| rest.split('/').nth(1) == Some("files"))
}

/// Who a request is counted against: its token, or its client address.
pub fn subject<B>(req: &Request<B>) -> String {
    if let Some(token) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        // A hash prefix: the counter key must never contain the secret itself.
        return format!("t:{}", &hash_token(token.trim())[..16]);
    }
    format!(
        "ip:{}",
        client_ip(req).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    )
}

/// The peer address, or `X-Real-IP` when the peer is one of our proxies (a loopback or
/// private address) - the proxies set it from the connection they accepted.
fn client_ip<B>(req: &Request<B>) -> Option<IpAddr> {
    client_ip_of(req.extensions(), req.headers())
}

/// [`client_ip`] from a request's parts.
pub fn client_ip_of(extensions: &http::Extensions, headers: &http::HeaderMap) -> Option<IpAddr> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    let behind_proxy = match peer {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => v6.is_loopback(),
    };
    if behind_proxy {
        if let Some(real) = headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
        {
            return Some(real);
        }
    }
    Some(peer)
}

/// Counts one event against `key` in the current one-minute window (shared across
/// replicas when Redis is up). `Err(seconds until the window ends)` past `limit`.
pub async fn count(app: &App, key: &str, limit: u64) -> Result<(), u64> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let key = format!("rl:{key}:{}", now / WINDOW.as_secs());
    let count = match app.shared.increment(&key, WINDOW).await {
        Some(count) => count,
        None => app.local_counters.increment(&key),
    };
    if count <= limit {
        Ok(())
    } else {
        metrics::counter!(crate::metrics::RATE_LIMITED_TOTAL).increment(1);
        Err(WINDOW.as_secs() - now % WINDOW.as_secs())
    }
}

/// `Some(response)` when `subject` (see [`subject`]) is over its limit.
pub async fn check(app: &App, subject: String) -> Option<Response> {
    let limit = app.config.limits.rate_limit_per_minute;
    if limit == 0 {
        return None;
    }
    let retry_after = count(app, &subject, limit).await.err()?;
    let mut response = ApiError::TooManyRequests(format!(
        "more than {limit} API requests a minute; retry in {retry_after} s"
    ))
    .into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from(retry_after),
    );
    Some(response)
}
