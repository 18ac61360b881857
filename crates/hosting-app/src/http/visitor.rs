//! Visitor access of protected sites: the check at host dispatch, before serving, and the
//! platform's sign-in page at [`LOGIN_PATH`] on the site's own host.
//!
//! SECURITY:
//! - Without a valid cookie every path of a protected host gets the same answer (the
//!   sign-in page, 401), so a visitor cannot learn which paths exist.
//! - The cookie is `v1.<expiry>.<HMAC-SHA256(site key, host, expiry)>`: it is only valid
//!   on the host it was issued for (the MAC covers the host, and the cookie has no
//!   `Domain`), until its expiry, and while the password is unchanged (the key is
//!   replaced with the password). `HttpOnly; SameSite=Lax`, and `Secure` when the
//!   request came over TLS.
//! - Every protected response is `Cache-Control: private, no-store` with `Vary: Cookie`,
//!   so no shared cache (Nginx's included) stores it.
//! - Sign-in attempts are counted per host and per client address before the password is
//!   checked (the API's rate-limit counters).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use maud::{html, Markup, DOCTYPE};
use sha2::Sha256;

use super::host::HostKind;
use super::ratelimit;
use super::serve;
use crate::cache::HostEntry;
use crate::config::PublicScheme;
use crate::sessions::cookie::cookie;
use crate::state::AppState;
use crate::store::{LiveDeploy, ProtectionRecord};

/// The sign-in page, on every host of a protected site.
pub const LOGIN_PATH: &str = "/.hosting/visitor-login";
const COOKIE_NAME: &str = "hosting_visitor";
/// How long a sign-in lasts.
const COOKIE_SECONDS: u64 = 12 * 60 * 60;
/// Sign-in attempts a minute on one host, and from one client address.
const ATTEMPTS_PER_HOST: u64 = 30;
const ATTEMPTS_PER_ADDRESS: u64 = 10;
/// A sign-in form is a password and a path; anything larger is not one.
const MAX_FORM_BYTES: usize = 8 * 1024;
const PRIVATE: HeaderValue = HeaderValue::from_static("private, no-store");

/// What dispatch does with a site request.
pub enum Gate {
    /// Serve it from `deploy` (the host's entry, read once for both); `private` when the
    /// host is protected (the response is then marked so).
    Serve {
        req: Request,
        deploy: Option<Arc<LiveDeploy>>,
        private: bool,
    },
    /// Answer it without serving (the sign-in page, a refusal).
    Answer(Response),
}

/// The visitor check of a request for a site host, from the host's cache entry (its
/// visitor access rides with its deploy, refreshed and invalidated with it).
pub async fn gate(state: &AppState, host: &str, kind: &HostKind, req: Request) -> Gate {
    let (deploy, protection) = match serve::host_entry(state, host, kind).await {
        Ok(HostEntry {
            deploy,
            protection: Some(protection),
            ..
        }) => (deploy, protection),
        Ok(HostEntry {
            deploy,
            protection: None,
            ..
        }) => {
            return Gate::Serve {
                req,
                deploy,
                private: false,
            }
        }
        Err(e) => {
            // SECURITY: fail closed; a protected site must not be served unchecked.
            tracing::warn!(error = %e, host = %host, "reading a site's visitor access failed");
            return Gate::Answer(private(super::pages::platform_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "This site cannot be reached right now. Try again in a moment.",
            )));
        }
    };
    if req.uri().path() == LOGIN_PATH {
        return Gate::Answer(login(state, host, &protection, req).await);
    }
    if signed_in(&protection, host, req.headers(), now()) {
        return Gate::Serve {
            req,
            deploy,
            private: true,
        };
    }
    let next = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    Gate::Answer(page(StatusCode::UNAUTHORIZED, &next, None))
}

/// Marks a response of a protected host as never to be stored by a shared cache.
pub fn private(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, PRIVATE);
    headers.append(header::VARY, HeaderValue::from_static("Cookie"));
    response
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The MAC of a cookie for `host` valid until `expires` (Unix seconds).
fn mac(protection: &ProtectionRecord, host: &str, expires: u64) -> Option<Hmac<Sha256>> {
    let key = hex::decode(&protection.cookie_key).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("v1\n{host}\n{expires}").as_bytes());
    Some(mac)
}

fn cookie_value(protection: &ProtectionRecord, host: &str, expires: u64) -> Option<String> {
    let tag = mac(protection, host, expires)?.finalize().into_bytes();
    Some(format!("v1.{expires}.{}", hex::encode(tag)))
}

/// Whether the request carries a valid, unexpired visitor cookie for this very host.
fn signed_in(protection: &ProtectionRecord, host: &str, headers: &HeaderMap, now: u64) -> bool {
    let Some(value) = cookie(headers, COOKIE_NAME) else {
        return false;
    };
    let mut parts = value.splitn(3, '.');
    let (Some("v1"), Some(expires), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(expires), Ok(tag)) = (expires.parse::<u64>(), hex::decode(tag)) else {
        return false;
    };
    expires > now
        && mac(protection, host, expires).is_some_and(|mac| mac.verify_slice(&tag).is_ok())
}

/// `GET` shows the sign-in form; `POST` checks the password.
async fn login(
    state: &AppState,
    host: &str,
    protection: &ProtectionRecord,
    req: Request,
) -> Response {
    if req.method() != Method::POST {
        let next = req
            .uri()
            .query()
            .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "next"))
            .map_or_else(|| "/".to_owned(), |(_, v)| v.into_owned());
        return page(StatusCode::OK, &safe_next(&next), None);
    }
    let secure = over_tls(state, &req);
    let ip = ratelimit::client_ip_of(req.extensions(), req.headers())
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    // SECURITY: counted before the password is checked, so guessing is slowed either way.
    let by_host = ratelimit::count(state, &format!("visitor:h:{host}"), ATTEMPTS_PER_HOST).await;
    let by_ip = ratelimit::count(state, &format!("visitor:ip:{ip}"), ATTEMPTS_PER_ADDRESS).await;
    let (password, next) = form(req.into_body()).await;
    let next = safe_next(&next);
    if let Err(retry) = by_host.and(by_ip) {
        tracing::warn!(host = %host, "visitor sign-in rate limited");
        let mut response = page(
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            Some(&format!("Too many attempts. Try again in {retry} s.")),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return response;
    }
    let hash = protection.password_hash.clone();
    let matches =
        tokio::task::spawn_blocking(move || super::auth::verify_password(Some(&hash), &password))
            .await
            .unwrap_or(false);
    let expires = now() + COOKIE_SECONDS;
    let value = matches
        .then(|| cookie_value(protection, host, expires))
        .flatten();
    let Some(value) = value else {
        return page(StatusCode::UNAUTHORIZED, &next, Some("Wrong password."));
    };
    let cookie = cookie::Cookie::build((COOKIE_NAME, value))
        .path("/")
        .max_age(cookie::time::Duration::seconds(COOKIE_SECONDS as i64))
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(secure)
        .build();
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let (Ok(location), Ok(set_cookie)) = (
        HeaderValue::from_str(&next),
        HeaderValue::from_str(&cookie.to_string()),
    ) {
        headers.insert(header::LOCATION, location);
        headers.insert(header::SET_COOKIE, set_cookie);
    }
    private(response)
}

/// `password` and `next` of a sign-in form (empty when absent or unreadable).
async fn form(body: Body) -> (String, String) {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return (String::new(), String::new());
    };
    let (mut password, mut next) = (String::new(), String::new());
    for (key, value) in url::form_urlencoded::parse(&bytes) {
        match key.as_ref() {
            "password" => password = value.into_owned(),
            "next" => next = value.into_owned(),
            _ => {}
        }
    }
    (password, next)
}

/// Where to go after signing in: a path of this host only (visible ASCII, one leading
/// `/`, no `\`), else `/`. SECURITY: never another host (`//evil.example`), and never
/// something that cannot be a header value.
fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.bytes().all(|b| b.is_ascii_graphic())
        && next != LOGIN_PATH
        && !next.starts_with(&format!("{LOGIN_PATH}?"));
    if ok {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

/// Whether the visitor reached us over TLS: the platform's public scheme is HTTPS, or a
/// proxy of ours (a loopback or private peer, as for `X-Real-IP`) says so.
fn over_tls(state: &AppState, req: &Request) -> bool {
    if state.config.public.public_scheme == PublicScheme::Https {
        return true;
    }
    let from_proxy = ratelimit::client_ip_of(req.extensions(), &HeaderMap::new()).is_some_and(
        |peer| match peer {
            std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
            std::net::IpAddr::V6(v6) => v6.is_loopback(),
        },
    );
    from_proxy
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// The sign-in page (the same for every path but the `next` it returns to).
fn page(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let markup: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { "Protected site" }
                style { (STYLE) }
            }
            body {
                main {
                    h1 { "This site is protected" }
                    p { "Enter the password the site's owner gave you." }
                    @if let Some(error) = error { p.error role="alert" { (error) } }
                    form method="post" action=(LOGIN_PATH) {
                        input type="hidden" name="next" value=(next);
                        label for="password" { "Password" }
                        input #password type="password" name="password" required autofocus autocomplete="current-password";
                        button type="submit" { "Continue" }
                    }
                    p { small { "hosting" } }
                }
            }
        }
    };
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    private(response)
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;\
margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;\
background:#f6f7f9;color:#1d2330}main{max-width:24rem;padding:2rem}\
h1{font-size:1.4rem}p{line-height:1.5;color:#4a5568}.error{color:#b42318}\
label{display:block;margin:.5rem 0 .25rem}input[type=password]{width:100%;padding:.5rem;\
box-sizing:border-box}button{margin-top:1rem;padding:.5rem 1rem}";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use hosting_api::ProtectionScope;

    fn protection(key: &str) -> ProtectionRecord {
        ProtectionRecord {
            site_id: 1,
            scope: ProtectionScope::All,
            password_hash: String::new(),
            cookie_key: key.to_owned(),
            updated_at: Utc::now(),
        }
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let cookie = format!("{COOKIE_NAME}={value}");
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&cookie).expect("ascii"),
        );
        headers
    }

    #[test]
    fn a_cookie_is_valid_only_on_its_host_with_its_key_until_it_expires() {
        let site = protection(&"11".repeat(32));
        let value = cookie_value(&site, "blog.localhost", 2_000).expect("cookie");
        let headers = with_cookie(&value);
        assert!(signed_in(&site, "blog.localhost", &headers, 1_000));
        assert!(!signed_in(
            &site,
            "staging--blog.localhost",
            &headers,
            1_000
        ));
        assert!(!signed_in(&site, "blog.localhost", &headers, 2_000));
        let new_password = protection(&"22".repeat(32));
        assert!(!signed_in(&new_password, "blog.localhost", &headers, 1_000));
        // A later expiry with the old tag is refused: the expiry is signed too.
        let forged = value.replacen("2000", "9000", 1);
        assert!(!signed_in(
            &site,
            "blog.localhost",
            &with_cookie(&forged),
            1_000
        ));
        assert!(!signed_in(
            &site,
            "blog.localhost",
            &HeaderMap::new(),
            1_000
        ));
    }

    #[test]
    fn only_paths_of_the_same_host_are_returned_to() {
        assert_eq!(safe_next("/docs/a?b=c"), "/docs/a?b=c");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "/a b",
            "",
            LOGIN_PATH,
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }
}
