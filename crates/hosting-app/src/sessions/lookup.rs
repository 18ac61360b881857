//! Which user a browser session cookie signs in: used by the dashboard's pages and by
//! the API's session fallback (the dashboard's upload script).
//!
//! SECURITY: a session store that cannot be reached means "signed out" (fail closed).

use axum::http::HeaderMap;

use super::cookie::{cookie, session_cookie_name};
use super::hash::hash_token;
use super::store::SessionError;
use crate::state::App;
use crate::store::UserRecord;

/// Header the upload script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field of the CSRF token in the dashboard's forms.
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

/// Resolves the session cookie to a signed-in, enabled user.
pub async fn lookup(app: &App, headers: &HeaderMap) -> SessionLookup {
    let Some(id) = cookie(headers, session_cookie_name(&app.config)) else {
        return SessionLookup::SignedOut;
    };
    let id_hash = hash_token(&id);
    let record = match app.sessions.get(&id_hash).await {
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
    match app.store.user_by_id(record.user_id).await {
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
