//! The dashboard's cookies: the session cookie and the sign-in form's double-submit
//! cookie.
//!
//! SECURITY: cookies are `HttpOnly; SameSite=Lax; Path=/`, and with
//! `HOSTING_PUBLIC_SCHEME=https` also `Secure` with the `__Host-` prefix (no `Domain`, so
//! site subdomains - tenant content - can neither read nor overwrite them).

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};

use crate::config::Config;

fn secure(config: &Config) -> bool {
    config.public.public_scheme == crate::config::PublicScheme::Https
}

pub fn session_cookie_name(config: &Config) -> &'static str {
    if secure(config) {
        "__Host-hosting_session"
    } else {
        "hosting_session"
    }
}

pub fn login_cookie_name(config: &Config) -> &'static str {
    if secure(config) {
        "__Host-hosting_login"
    } else {
        "hosting_login"
    }
}

/// A `Set-Cookie` value with the dashboard's attributes; `max_age` 0 deletes the cookie.
pub fn set_cookie(config: &Config, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let cookie = Cookie::build((name, value))
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure(config))
        .build();
    HeaderValue::from_str(&cookie.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// The value of cookie `name` in the request, if any.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; hosting_session=xyz"));
        headers.append(COOKIE, HeaderValue::from_static("b=2;c=3"));
        assert_eq!(cookie(&headers, "hosting_session").as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "c").as_deref(), Some("3"));
        assert_eq!(cookie(&headers, "hosting"), None);
    }

    #[test]
    fn cookies_are_secure_and_host_prefixed_behind_tls() {
        let mut config = Config::for_tests("/tmp/unused");
        let plain = set_cookie(&config, session_cookie_name(&config), "v", 60);
        assert_eq!(
            plain.to_str().expect("ascii"),
            "hosting_session=v; HttpOnly; SameSite=Lax; Path=/; Max-Age=60"
        );
        config.public.public_scheme = crate::config::PublicScheme::Https;
        let tls = set_cookie(&config, session_cookie_name(&config), "v", 60);
        assert_eq!(
            tls.to_str().expect("ascii"),
            "__Host-hosting_session=v; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=60"
        );
    }
}
