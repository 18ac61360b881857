//! Path-level password protection from `Basic-Auth` lines of `_headers`.
//!
//! The check runs on the request path before any rule or file lookup, and again on a
//! rewrite's target, so a missing path under a protected pattern gets the same 401 as
//! an existing one and a rewrite cannot reach a protected file from an open path.
//! Protected responses, granted or refused, are marked so shared caches never keep
//! them. Credentials are compared and dropped: never logged or echoed.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;

use super::super::pages::platform_page;
use crate::domain::manifest::SiteManifest;

/// `Cache-Control` of every protected response: neither Nginx's cache nor a browser's
/// shared cache may keep it.
pub const PRIVATE: HeaderValue = HeaderValue::from_static("private, no-store");

/// The outcome of checking one path.
pub enum Access {
    /// No `Basic-Auth` block matches the path.
    Open,
    /// The path is protected and the request carries one of its pairs.
    Granted,
    /// The path is protected and the request's credentials are missing or wrong.
    Denied,
}

impl Access {
    /// Whether the path is password-protected (granted or not).
    pub fn protected(&self) -> bool {
        !matches!(self, Access::Open)
    }
}

/// Checks `path` (decoded) against the deploy's `Basic-Auth` blocks.
pub fn check(manifest: &SiteManifest, path: &str, request: &HeaderMap) -> Access {
    let Some(auth) = manifest.headers.basic_auth(path) else {
        return Access::Open;
    };
    match credentials(request) {
        Some((user, password)) if auth.accepts(&user, &password) => Access::Granted,
        _ => Access::Denied,
    }
}

/// `Authorization: Basic base64(user:password)` (RFC 7617), decoded.
fn credentials(request: &HeaderMap) -> Option<(String, String)> {
    let value = request.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The 401 of a protected path: the same for every path under the pattern, existing
/// or not.
pub fn unauthorized() -> Response {
    let mut response = platform_page(
        StatusCode::UNAUTHORIZED,
        "Password required",
        "This page is password-protected. Sign in with the user name and password you were given.",
    );
    let headers = response.headers_mut();
    headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Protected site\", charset=\"UTF-8\""),
    );
    headers.insert(header::CACHE_CONTROL, PRIVATE);
    response
}

/// Marks a granted response private: whatever `_headers` or an upstream said, no
/// shared cache keeps it.
pub fn mark_private(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, PRIVATE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("value"),
        );
        headers
    }

    #[test]
    fn basic_credentials_are_decoded_and_other_schemes_ignored() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("ann:pa:ss");
        assert_eq!(
            credentials(&with_authorization(&format!("basic {encoded}"))),
            Some(("ann".into(), "pa:ss".into()))
        );
        assert_eq!(
            credentials(&with_authorization(&format!("Bearer {encoded}"))),
            None
        );
        assert_eq!(credentials(&with_authorization("Basic !!!")), None);
        assert_eq!(credentials(&HeaderMap::new()), None);
    }
}
