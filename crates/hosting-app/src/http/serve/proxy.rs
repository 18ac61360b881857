//! Proxy rules (`/api/* https://api.example.com/:splat 200`): the request is sent on
//! to the target and the answer streamed back, both ways without buffering.
//!
//! What goes out: the visitor's method, headers and body, less hop-by-hop headers and
//! the client's own `X-Forwarded-*` / `Forwarded` / `X-Real-IP` (any client can set
//! them), plus `X-Forwarded-For` (the client address the app trusts), `-Proto` (the
//! public scheme) and `-Host` (the site host). What comes back: the upstream's status
//! (redirects included, never followed), headers less hop-by-hop ones, and body.
//! Proxied responses never enter the app's caches, and `_headers` rules do not apply
//! to them: the upstream owns its headers.
//!
//! SECURITY: targets must resolve to public addresses (the guard of custom-domain
//! verification), unless listed in `HOSTING_PROXY_ALLOWED_PRIVATE_HOSTS`; names are
//! checked by the client's resolver (`routing.rs`), IP literals here.

use std::error::Error as _;
use std::net::IpAddr;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use axum::response::Response;
use futures::StreamExt;

use super::super::error::problem_response;
use super::super::ratelimit::client_ip_of;
use crate::domains::verify::{error_chain, is_public};
use crate::routing::TargetRefused;
use crate::state::AppState;

/// Where one request goes.
pub struct Forward<'a> {
    pub site_id: i64,
    /// The site host the visitor asked for (`X-Forwarded-Host`).
    pub host: &'a str,
    /// The rule's target with placeholders and the query substituted.
    pub target: &'a str,
    /// The path is password-protected: the visitor's `Authorization` (the site's
    /// password) is not passed on.
    pub protected: bool,
}

/// Headers that describe one connection, not the message (RFC 9110 7.6.1): never
/// passed on in either direction.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Request headers a client could use to pose as someone else to the upstream.
const CLIENT_FORWARDING: [HeaderName; 5] = [
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
    header::FORWARDED,
    HeaderName::from_static("x-real-ip"),
];

/// Sends `req` to the rule's target and streams the answer back.
pub async fn forward(state: &AppState, to: Forward<'_>, req: Request<Body>) -> Response {
    let Ok(url) = reqwest::Url::parse(to.target) else {
        return problem(
            StatusCode::BAD_GATEWAY,
            "proxy-target-invalid",
            "the proxy rule's target is not a valid URL",
        );
    };
    if let Some(refused) = refused_literal(state, &url) {
        tracing::warn!(site.id = to.site_id, upstream = %refused.0, "proxy target refused");
        return refused_response(&refused);
    }
    let Some(slot) = state.routing.proxy_slots.try_take(to.site_id) else {
        let mut response = problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "proxy-busy",
            "this site has too many proxied requests in flight; retry shortly",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    let client = client_ip_of(req.extensions(), req.headers());
    let (parts, body) = req.into_parts();
    let mut headers = outbound_headers(&parts.headers);
    if to.protected {
        headers.remove(header::AUTHORIZATION);
    }
    add_forwarding(state, &mut headers, client, to.host);
    let has_body = parts.headers.contains_key(header::CONTENT_LENGTH)
        || parts.headers.contains_key(header::TRANSFER_ENCODING);
    let upstream_host = url.host_str().unwrap_or_default().to_owned();
    let mut outbound = state
        .routing
        .proxy_client
        .request(parts.method, url)
        .headers(headers);
    if has_body {
        outbound = outbound.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }

    let timeout = state.config.routing.proxy_response_timeout;
    let upstream = match tokio::time::timeout(timeout, outbound.send()).await {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(e)) => return failed(to.site_id, &upstream_host, &e.without_url()),
        Err(_) => {
            tracing::warn!(site.id = to.site_id, upstream = %upstream_host, "proxy upstream timed out");
            return timed_out();
        }
    };

    let status = upstream.status();
    let mut headers = upstream.headers().clone();
    strip_hop_by_hop(&mut headers);
    // The slot is held by the body: it is freed when the last byte is sent or the
    // visitor goes away, not when the headers are.
    let body = upstream.bytes_stream().map(move |chunk| {
        let _held = &slot;
        chunk
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The visitor's headers less hop-by-hop ones, `Host` (the target's is set) and the
/// client's own forwarding claims.
fn outbound_headers(request: &HeaderMap) -> HeaderMap {
    let mut headers = request.clone();
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    for name in &CLIENT_FORWARDING {
        headers.remove(name);
    }
    headers
}

/// Removes hop-by-hop headers, and those the `Connection` header names, in place.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
    // `Upgrade` is hop-by-hop too; a proxied request is never upgraded.
    headers.remove(header::UPGRADE);
}

fn add_forwarding(state: &AppState, headers: &mut HeaderMap, client: Option<IpAddr>, host: &str) {
    if let Some(ip) = client {
        if let Ok(value) = HeaderValue::from_str(&ip.to_string()) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), value);
        }
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(state.config.public.public_scheme.as_str()),
    );
    if let Ok(value) = HeaderValue::from_str(host) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), value);
    }
}

/// An IP-literal target that is not public (and not allowed); names are checked when
/// the client resolves them.
fn refused_literal(state: &AppState, url: &reqwest::Url) -> Option<TargetRefused> {
    let ip = match url.host()? {
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
        url::Host::Domain(_) => return None,
    };
    let host = url.host_str().unwrap_or_default();
    (!is_public(ip) && !state.config.routing.allows_private(host))
        .then(|| TargetRefused(host.to_owned()))
}

/// An upstream that could not be reached: refused target, timeout or connection error.
fn failed(site_id: i64, upstream: &str, e: &reqwest::Error) -> Response {
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<TargetRefused>() {
            tracing::warn!(site.id = site_id, upstream, "proxy target refused");
            return refused_response(refused);
        }
        source = cause.source();
    }
    if e.is_timeout() {
        tracing::warn!(site.id = site_id, upstream, "proxy upstream timed out");
        return timed_out();
    }
    tracing::warn!(site.id = site_id, upstream, error = %error_chain(e), "proxy upstream failed");
    problem(
        StatusCode::BAD_GATEWAY,
        "proxy-upstream-failed",
        "the upstream server of this proxy rule could not be reached",
    )
}

fn refused_response(refused: &TargetRefused) -> Response {
    problem(
        StatusCode::BAD_GATEWAY,
        "proxy-target-refused",
        &format!(
            "the proxy rule's target {} resolves to no public address",
            refused.0
        ),
    )
}

fn timed_out() -> Response {
    problem(
        StatusCode::GATEWAY_TIMEOUT,
        "proxy-timeout",
        "the upstream server of this proxy rule did not answer in time",
    )
}

fn problem(status: StatusCode, kind: &str, detail: &str) -> Response {
    let mut response = problem_response(status, kind, Some(detail.to_owned()));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic eA=="),
            ("x-forwarded-for", "6.6.6.6"),
            ("host", "blog.example"),
            ("accept", "text/plain"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let out = outbound_headers(&headers);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, vec!["accept"]);
    }
}
