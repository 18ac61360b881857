//! API authentication: bearer tokens, stored only as hashes, resolved to a user by
//! an extractor, so a handler that takes `AuthUser` cannot run unauthenticated.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::Method;
use hosting_api::Role;

use super::error::ApiError;
use crate::sessions::hash::{constant_time_eq, generate_token, hash_token};
use crate::sessions::lookup::{self, SessionLookup, CSRF_HEADER};
use crate::state::AppState;
use crate::store::UserRecord;

/// Hashes a dashboard password with argon2id and a random salt.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    if password.chars().count() < 10 {
        return Err(ApiError::Unprocessable(
            "a password has at least 10 characters".into(),
        ));
    }
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ApiError::internal("password hashing failed", e.to_string()))
}

/// A hash of a random password, verified against when a user does not exist or has no
/// password, so a failed sign-in takes as long whatever the reason.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(generate_token().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .unwrap_or_default()
});

/// Checks `password` against an argon2id hash in constant time (argon2's own verify).
/// With no hash (unknown user, or one without a password) a dummy hash is verified
/// instead and the answer is false, so timing does not reveal which users exist.
pub fn verify_password(hash: Option<&str>, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let (hash, real) = match hash {
        Some(hash) => (hash, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let matches = argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    real && matches
}

/// The user a valid bearer token belongs to - or, for the dashboard's upload script, a
/// signed-in browser session (see `from_request_parts`).
#[derive(Debug, Clone)]
pub struct AuthUser(pub UserRecord);

/// An authenticated admin.
#[derive(Debug, Clone)]
pub struct AdminUser(pub UserRecord);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return session_user(parts, state).await;
        };
        let header = header.to_str().map_err(|_| ApiError::Unauthorized)?;
        let (scheme, secret) = header
            .trim()
            .split_once(' ')
            .ok_or(ApiError::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") || secret.trim().is_empty() {
            return Err(ApiError::Unauthorized);
        }
        let user = state
            .store
            .authenticate(&hash_token(secret.trim()))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(AuthUser(user))
    }
}

/// No bearer token: the dashboard's session cookie. SECURITY: a browser sends cookies
/// with cross-site requests too, so anything but GET / HEAD also needs the session's
/// CSRF token in `X-CSRF-Token`, which another origin cannot read. A bearer token, when
/// sent, always wins, and an invalid one is never retried as a cookie.
async fn session_user(parts: &Parts, state: &AppState) -> Result<AuthUser, ApiError> {
    match lookup::lookup(state, &parts.headers).await {
        SessionLookup::Active(current) => {
            let safe = matches!(parts.method, Method::GET | Method::HEAD);
            let token_ok = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|sent| constant_time_eq(sent, &current.csrf));
            if !safe && !token_ok {
                return Err(ApiError::Forbidden(
                    "a browser session needs its CSRF token in the X-CSRF-Token header".into(),
                ));
            }
            Ok(AuthUser(current.user))
        }
        SessionLookup::SignedOut | SessionLookup::Unavailable => Err(ApiError::Unauthorized),
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        if user.role != Role::Admin {
            return Err(ApiError::Forbidden("this needs an admin token".into()));
        }
        Ok(AdminUser(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_passwords_are_refused_and_long_ones_hash_with_argon2id() {
        assert!(hash_password("short").is_err());
        let hash = hash_password("a long enough password").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(Some(&hash), "a long enough password"));
        assert!(!verify_password(Some(&hash), "a long enough passwore"));
        assert!(!verify_password(None, "a long enough password"));
        assert!(!verify_password(Some("not a hash"), "x"));
    }
}
