//! Browser sessions of the dashboard: starting and ending them, and the extractors of
//! the signed-in user. The cookie, the lookup and the hashing are in `crate::sessions`.
//!
//! SECURITY:
//! - The cookie holds 256 random bits; the store keeps only their SHA-256.
//! - Every session has a synchronizer CSRF token; every POST form sends it in the `csrf`
//!   field and the upload script in `X-CSRF-Token`. The sign-in form, which has no session
//!   yet, is protected by a double-submit cookie instead.

use axum::extract::FromRequestParts;
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use hosting_api::Role;

use super::PageError;
use crate::config::Config;
use crate::sessions::cookie::{cookie, session_cookie_name, set_cookie};
use crate::sessions::hash::{hash_token, random_secret};
pub use crate::sessions::lookup::CurrentSession;
use crate::sessions::lookup::SessionLookup;
use crate::sessions::SessionError;
use crate::state::AppState;
use crate::store::SessionRecord;

/// Absolute lifetime of a session: sign in again after this.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);

/// Starts a new session for `user_id`; returns the cookie to set. The caller deletes
/// any previous session first (rotation on sign-in).
pub async fn start(state: &AppState, user_id: i64) -> Result<HeaderValue, SessionError> {
    let id = random_secret();
    let record = SessionRecord {
        user_id,
        csrf_token: random_secret(),
        expires_at: Utc::now() + SESSION_TTL,
    };
    state.sessions.create(&hash_token(&id), &record).await?;
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
        if let Err(e) = state.sessions.delete(&hash_token(&id)).await {
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
