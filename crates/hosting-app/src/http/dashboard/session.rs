//! Browser sessions of the dashboard: the cookie, the lookup of the signed-in user, and
//! CSRF tokens.
//!
//! SECURITY:
//! - The cookie holds 256 random bits; the store keeps only their SHA-256.
//! - Cookies are `HttpOnly; SameSite=Lax; Path=/`, and with `HOSTING_PUBLIC_SCHEME=https`
//!   also `Secure` with the `__Host-` prefix (no `Domain`, so site subdomains - tenant
//!   content - can neither read nor overwrite them).
//! - Every session has a synchronizer CSRF token; every POST form sends it in the `csrf`
//!   field and the upload script in `X-CSRF-Token`. The sign-in form, which has no session
//!   yet, is protected by a double-submit cookie instead.
//! - A session store that cannot be reached means "signed out" (fail closed).

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use chrono::Utc;
use cookie::{Cookie, SameSite};
use hosting_api::Role;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::PageError;
use crate::config::Config;
use crate::sessions::SessionError;
use crate::state::AppState;
use crate::store::{SessionRecord, UserRecord};

/// Absolute lifetime of a session: sign in again after this.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);
/// Header the upload script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field of the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// A signed-in browser session.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub id_hash: String,
    pub user: UserRecord,
    pub csrf: String,
}

/// What the request's session cookie amounts to.
#[derive(Debug, Clone)]
pub enum SessionLookup {
    SignedOut,
    Active(CurrentSession),
    /// The session store is unreachable: treated as signed out, with an explanation.
    Unavailable,
}

/// 256 random bits, URL-safe.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Compares secrets in constant time (`subtle`), so timing reveals nothing of the
/// expected value (only its length, which is public: every token has the same).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

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

/// Resolves the session cookie to a signed-in, enabled user.
pub async fn lookup(state: &AppState, headers: &HeaderMap) -> SessionLookup {
    let Some(id) = cookie(headers, session_cookie_name(&state.config)) else {
        return SessionLookup::SignedOut;
    };
    let id_hash = hash_id(&id);
    let record = match state.sessions.get(&id_hash).await {
        Ok(Some(record)) => record,
        Ok(None) => return SessionLookup::SignedOut,
        Err(SessionError::Unavailable(cause)) => {
            tracing::warn!(error = %cause, "session store unavailable: browser sessions refused");
            return SessionLookup::Unavailable;
        }
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            return SessionLookup::SignedOut;
        }
    };
    match state.store.user_by_id(record.user_id).await {
        Ok(Some(user)) if !user.disabled => SessionLookup::Active(CurrentSession {
            id_hash,
            user,
            csrf: record.csrf_token,
        }),
        Ok(_) => SessionLookup::SignedOut,
        Err(e) => {
            tracing::warn!(error = %e, "user lookup for a session failed");
            SessionLookup::Unavailable
        }
    }
}

/// Starts a new session for `user_id`; returns the cookie to set. The caller deletes
/// any previous session first (rotation on sign-in).
pub async fn start(state: &AppState, user_id: i64) -> Result<HeaderValue, SessionError> {
    let id = random_secret();
    let record = SessionRecord {
        user_id,
        csrf_token: random_secret(),
        expires_at: Utc::now() + SESSION_TTL,
    };
    state.sessions.create(&hash_id(&id), &record).await?;
    Ok(set_cookie(
        &state.config,
        session_cookie_name(&state.config),
        &id,
        SESSION_TTL.num_seconds(),
    ))
}

/// Ends the request's session server-side, if it has one.
pub async fn end(state: &AppState, headers: &HeaderMap) {
    if let Some(id) = cookie(headers, session_cookie_name(&state.config)) {
        if let Err(e) = state.sessions.delete(&hash_id(&id)).await {
            tracing::warn!(error = %e, "could not delete a session");
        }
    }
}

/// `Set-Cookie` that removes the session cookie from the browser.
pub fn clear_session_cookie(config: &Config) -> (axum::http::HeaderName, HeaderValue) {
    (
        SET_COOKIE,
        set_cookie(config, session_cookie_name(config), "", 0),
    )
}

/// Extractor: the signed-in user's session; anyone else is sent to the sign-in page.
pub struct SignedIn(pub CurrentSession);

/// Extractor: a signed-in admin; other users get a 403 page.
pub struct AdminSignedIn(pub CurrentSession);

fn current(parts: &Parts) -> Result<CurrentSession, Box<Response>> {
    match parts.extensions.get::<SessionLookup>() {
        Some(SessionLookup::Active(session)) => Ok(session.clone()),
        Some(SessionLookup::Unavailable) => {
            Err(Box::new(PageError::sessions_unavailable().into_response()))
        }
        _ => {
            let next = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let target = format!(
                "/login?next={}",
                percent_encoding::utf8_percent_encode(&next, percent_encoding::NON_ALPHANUMERIC)
            );
            Err(Box::new(Redirect::to(&target).into_response()))
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Response> {
        current(parts).map(SignedIn).map_err(|r| *r)
    }
}

impl FromRequestParts<AppState> for AdminSignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Response> {
        let session = current(parts).map_err(|r| *r)?;
        if session.user.role != Role::Admin {
            return Err(PageError::forbidden("This page is for administrators.").into_response());
        }
        Ok(AdminSignedIn(session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several_and_compared_in_constant_time() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; hosting_session=xyz"));
        headers.append(COOKIE, HeaderValue::from_static("b=2;c=3"));
        assert_eq!(cookie(&headers, "hosting_session").as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "c").as_deref(), Some("3"));
        assert_eq!(cookie(&headers, "hosting"), None);
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
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
