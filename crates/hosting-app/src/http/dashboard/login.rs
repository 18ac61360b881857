//! Sign-in and sign-out.
//!
//! SECURITY: attempts are limited per user name and per client address (counted in
//! Redis across replicas when it is up); passwords are checked with argon2's
//! constant-time verify, against a dummy hash for unknown users; a successful sign-in
//! always starts a new session (the old one is deleted: no session fixation); sign-out
//! deletes the session server-side.

use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{bare, notice};
use super::session;
use super::{html, see_other, PageError};
use crate::http::auth::verify_password;
use crate::http::ratelimit;
use crate::sessions::cookie::{cookie, login_cookie_name, set_cookie};
use crate::sessions::hash::random_secret;
use crate::sessions::lookup::{SessionLookup, CSRF_FIELD};
use crate::sessions::SessionError;
use crate::state::AppState;

/// Sign-in attempts per minute for one user name.
const ATTEMPTS_PER_USER: u64 = 10;
/// Sign-in attempts per minute from one client address.
const ATTEMPTS_PER_ADDRESS: u64 = 30;
/// Lifetime of the sign-in form's CSRF cookie.
const LOGIN_COOKIE_SECONDS: i64 = 3600;

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    signed_out: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// Where to go after signing in: `next` when it is a path of this dashboard, else the
/// sites page.
///
/// SECURITY: browsers drop tabs and newlines from a `Location` and read `\` as `/`, so
/// `/\t/evil.example` or `/\evil.example` lands on `//evil.example`, another origin (an
/// open redirect that phishing borrows our name for). `next` must therefore start with
/// one `/` and, once more percent-decoded (it was decoded once as a query parameter, so a
/// second decoding catches `%2509`), hold no control character, no `\` anywhere and no
/// `//` or `/\` at its start. Only visible ASCII is kept as it is, so the value is
/// always a valid `Location` header (a newline used to make it a 500).
fn safe_next(next: Option<&str>) -> &str {
    const FALLBACK: &str = "/sites";
    let Some(next) = next else {
        return FALLBACK;
    };
    let visible_ascii = next.bytes().all(|b| b.is_ascii_graphic());
    let decoded = percent_encoding::percent_decode_str(next).decode_utf8_lossy();
    let same_origin_path = decoded.starts_with('/')
        && !decoded.starts_with("//")
        && !decoded.contains('\\')
        && !decoded.chars().any(char::is_control);
    if visible_ascii && same_origin_path {
        next
    } else {
        FALLBACK
    }
}

fn login_form(csrf: &str, username: &str, next: &str, message: Option<Markup>) -> Markup {
    bare(
        "Sign in",
        html! {
            section.card {
                h1 { "Sign in" }
                @if let Some(message) = message { (message) }
                form method="post" action="/login" {
                    input type="hidden" name=(CSRF_FIELD) value=(csrf);
                    input type="hidden" name="next" value=(next);
                    label for="username" { "User name" }
                    input #username name="username" type="text" autocomplete="username"
                        autocapitalize="none" spellcheck="false" required autofocus value=(username);
                    label for="password" { "Password" }
                    input #password name="password" type="password"
                        autocomplete="current-password" required;
                    button.primary.wide type="submit" { "Sign in" }
                }
            }
            p.muted.center { "Deploying from a terminal? " code { "hostctl login" } " uses an API token." }
        },
    )
}

/// The sign-in form's CSRF value: the browser's existing cookie, or a new one to set.
fn login_csrf(state: &AppState, headers: &HeaderMap) -> (String, Option<String>) {
    match cookie(headers, login_cookie_name(&state.config)) {
        Some(existing) => (existing, None),
        None => {
            let fresh = random_secret();
            (fresh.clone(), Some(fresh))
        }
    }
}

fn respond(
    state: &AppState,
    status: StatusCode,
    page: Markup,
    new_login_cookie: Option<String>,
) -> Response {
    let mut response = html(status, page);
    if let Some(value) = new_login_cookie {
        let cookie = set_cookie(
            &state.config,
            login_cookie_name(&state.config),
            &value,
            LOGIN_COOKIE_SECONDS,
        );
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

pub async fn form(
    State(state): State<AppState>,
    Extension(lookup): Extension<SessionLookup>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if matches!(lookup, SessionLookup::Active(_)) {
        return see_other(next);
    }
    let message = match (&lookup, query.signed_out.is_some()) {
        (SessionLookup::Unavailable, _) => Some(notice(
            "error",
            "Signing in is unavailable right now: the session store cannot be reached.",
        )),
        (_, true) => Some(notice("ok", "You have been signed out.")),
        _ => None,
    };
    let (csrf, new_cookie) = login_csrf(&state, &headers);
    let page = login_form(&csrf, "", next, message);
    respond(&state, StatusCode::OK, page, new_cookie)
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(lookup): Extension<SessionLookup>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_owned();
    let username = form.username.trim().to_lowercase();
    let (csrf, new_cookie) = login_csrf(&state, &headers);
    let refuse = |status: StatusCode, text: &str| {
        let page = login_form(&csrf, &username, &next, Some(notice("error", text)));
        respond(&state, status, page, new_cookie.clone())
    };
    if username.is_empty() || username.len() > 100 || form.password.len() > 1024 {
        return refuse(StatusCode::UNAUTHORIZED, "Wrong user name or password.");
    }
    // SECURITY: counted before the password is checked, so guessing is slowed either way.
    let ip = ratelimit::client_ip_of(&extensions, &headers)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let by_user = ratelimit::count(&state, &format!("login:u:{username}"), ATTEMPTS_PER_USER).await;
    let by_ip = ratelimit::count(&state, &format!("login:ip:{ip}"), ATTEMPTS_PER_ADDRESS).await;
    if let Err(retry) = by_user.and(by_ip) {
        tracing::warn!(user.name = %username, "sign-in rate limited");
        let mut response = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many sign-in attempts. Try again in {retry} seconds."),
        );
        if let Ok(value) = retry.to_string().parse() {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        return response;
    }
    let user = match state.store.user_by_name(&username).await {
        Ok(user) => user,
        Err(e) => return PageError::from(e).into_response(),
    };
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password = form.password;
    // argon2 is deliberately slow: off the async worker threads.
    let verified = tokio::task::spawn_blocking(move || verify_password(hash.as_deref(), &password))
        .await
        .unwrap_or(false);
    let user = match user {
        Some(user) if verified && !user.disabled => user,
        _ => {
            tracing::info!(user.name = %username, "sign-in refused");
            crate::audit::events::sign_in(&state, &username, false).await;
            return refuse(StatusCode::UNAUTHORIZED, "Wrong user name or password.");
        }
    };
    // Rotation: whatever session the browser had is ended before a new one starts.
    if let SessionLookup::Active(_) = lookup {
        session::end(&state, &headers).await;
    }
    let cookie = match session::start(&state, user.id).await {
        Ok(cookie) => cookie,
        Err(SessionError::Unavailable(cause)) => {
            tracing::warn!(error = %cause, "sign-in refused: session store unavailable");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "Signing in is unavailable right now: the session store cannot be reached. \
                 API tokens keep working.",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "could not start a session");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Signing in failed on our side; it has been logged.",
            );
        }
    };
    tracing::info!(user.name = %user.username, "signed in");
    crate::audit::events::sign_in(&state, &user.username, true).await;
    let mut response = see_other(&next);
    response.headers_mut().append(SET_COOKIE, cookie);
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(&state.config, login_cookie_name(&state.config), "", 0),
    );
    response
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(lookup): Extension<SessionLookup>,
    headers: HeaderMap,
) -> Response {
    session::end(&state, &headers).await;
    if let SessionLookup::Active(session) = &lookup {
        crate::audit::events::sign_out(&state, &session.user).await;
    }
    let mut response = see_other("/login?signed_out=1");
    let (name, value) = session::clear_session_cookie(&state.config);
    response.headers_mut().append(name, value);
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_keeps_paths_of_this_dashboard() {
        for path in [
            "/sites",
            "/sites/blog?done=created",
            "/tokens#new",
            "/a%20b",
        ] {
            assert_eq!(safe_next(Some(path)), path);
        }
    }

    #[test]
    fn next_refuses_anything_that_can_leave_the_origin_or_break_the_header() {
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/%2F/evil.example",
            "/%5Cevil.example",
            "/a\\b",
            "/a\nb",
            "/a%0Ab",
            "/a%0D%0ASet-Cookie:x=1",
            "https://evil.example",
            "evil.example",
            "/caf\u{e9}",
            "/a b",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/sites", "{bad:?} accepted");
        }
        assert_eq!(safe_next(None), "/sites");
    }
}
