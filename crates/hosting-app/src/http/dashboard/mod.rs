//! The server-rendered dashboard on the control host (`/login`, `/sites`, `/tokens`,
//! `/account`, `/admin/...`), beside the JSON API under `/api/v1`. It calls the same
//! actions as the API (`crate::actions`); its only JavaScript (`assets/deploy.js`) deploys a
//! folder from the browser through the API's digest protocol, authenticated by the
//! session cookie plus the `X-CSRF-Token` header (see `http::auth::AuthUser`).
//!
//! Every page goes through [`guard`]: it resolves the session, refuses cross-origin and
//! CSRF-less POSTs with a 403 page, and marks every response `no-store, private`.

mod access;
mod account;
mod admin;
mod analytics;
mod assets;
mod audit;
mod charts;
mod domains;
mod hsts;
mod layout;
mod login;
mod quotas;
pub mod session;
mod site;
mod sites;
mod tokens;
mod webhooks;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;

use super::error::ApiError;
use crate::sessions::cookie::{cookie, login_cookie_name};
use crate::sessions::hash::constant_time_eq;
use crate::sessions::lookup::{self, SessionLookup, CSRF_FIELD};
use crate::state::AppState;

/// Largest form body (a password or a site name; never a file).
const MAX_FORM_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/sites", get(sites::list).post(sites::create))
        .route("/sites/{site}", get(site::show))
        .route("/sites/{site}/rollback", post(site::rollback))
        .route("/sites/{site}/delete", post(site::delete))
        .route("/sites/{site}/domains", post(domains::add))
        .route(
            "/sites/{site}/domains/{domain}/verify",
            post(domains::verify),
        )
        .route(
            "/sites/{site}/domains/{domain}/certificate",
            post(domains::certificate),
        )
        .route(
            "/sites/{site}/domains/{domain}/remove",
            post(domains::remove),
        )
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/account", get(account::show))
        .route("/account/password", post(account::change_password))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{id}/disable", post(admin::disable))
        .route("/admin/users/{id}/enable", post(admin::enable))
        .route("/admin/users/{id}/password", post(admin::set_password))
        .route("/admin/users/{id}/quota", post(quotas::set_quota))
        .route("/admin/health", get(admin::health))
        .route("/sites/{site}/analytics", get(analytics::show))
        .route("/sites/{site}/aliases/{alias}/remove", post(access::remove))
        .route("/sites/{site}/protection", post(access::set_protection))
        .route(
            "/sites/{site}/protection/remove",
            post(access::remove_protection),
        )
        .route("/audit", get(audit::show))
        .route(
            "/sites/{site}/webhooks",
            get(webhooks::show).post(webhooks::add),
        )
        .route("/sites/{site}/webhooks/{id}/remove", post(webhooks::remove))
        .route("/sites/{site}/hsts", post(hsts::update))
        .route_layer(middleware::from_fn_with_state(state, guard))
        // Assets are public and immutable: outside the guard, so they stay cacheable.
        .route("/assets/{file}", get(assets::serve))
}

async fn home(session: axum::Extension<SessionLookup>) -> Redirect {
    match session.0 {
        SessionLookup::Active(_) => Redirect::to("/sites"),
        _ => Redirect::to("/login"),
    }
}

/// Session lookup, origin and CSRF checks for every dashboard route, and the headers
/// every dashboard response carries.
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let lookup = lookup::lookup(&state, req.headers()).await;
    let mut req = req;
    if req.method() == Method::POST {
        match check_post(&state, &lookup, req).await {
            Ok(checked) => req = checked,
            Err(refused) => return with_page_headers(refused),
        }
    }
    req.extensions_mut().insert(lookup);
    with_page_headers(next.run(req).await)
}

/// SECURITY: a POST must come from our own pages: no cross-site `Origin` /
/// `Sec-Fetch-Site`, and the form's `csrf` field must equal the session's token (the
/// sign-in form: the double-submit cookie set with the form).
async fn check_post(
    state: &AppState,
    lookup: &SessionLookup,
    req: Request,
) -> Result<Request, Response> {
    if !same_origin(&req) {
        return Err(PageError::csrf().into_response());
    }
    let is_login = req.uri().path() == "/login";
    let expected = match (is_login, lookup) {
        (true, _) => cookie(req.headers(), login_cookie_name(&state.config)),
        (false, SessionLookup::Active(current)) => Some(current.csrf.clone()),
        (false, SessionLookup::Unavailable) => {
            return Err(PageError::sessions_unavailable().into_response())
        }
        (false, SessionLookup::SignedOut) => return Err(Redirect::to("/login").into_response()),
    };
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            PageError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.").into_response()
        })?;
    let sent = url::form_urlencoded::parse(&bytes)
        .find(|(key, _)| key == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    match (expected, sent) {
        (Some(expected), Some(sent)) if constant_time_eq(&expected, &sent) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(PageError::csrf().into_response()),
    }
}

fn same_origin(req: &Request) -> bool {
    let headers = req.headers();
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // Old clients send no Origin; the CSRF token still has to match.
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    url::Url::parse(origin).is_ok_and(|url| {
        let authority = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => return false,
        };
        authority.eq_ignore_ascii_case(host)
    })
}

/// Dashboard pages are personal: never stored by a proxy or the browser cache, never
/// framed, and only our own scripts and styles run.
fn with_page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, private"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// An HTML page response.
fn html(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A 303 to a page of the dashboard (Post/Redirect/Get).
fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// An error shown as a page: the dashboard's counterpart of `ApiError`.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
        }
    }

    pub fn forbidden(message: &str) -> PageError {
        PageError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn csrf() -> PageError {
        PageError::forbidden(
            "This form did not come from this dashboard, or it has expired. \
             Go back, reload the page and try again.",
        )
    }

    pub fn sessions_unavailable() -> PageError {
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is unavailable right now: the session store cannot be reached. \
             API tokens and hostctl keep working. Try again in a moment.",
        )
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        let status = e.status();
        e.log();
        let message = match &e {
            ApiError::Internal { .. } => {
                "Something went wrong on our side; it has been logged.".to_owned()
            }
            ApiError::ServiceUnavailable(_) => {
                "A backing service is unavailable; try again shortly.".to_owned()
            }
            other => other.to_string(),
        };
        PageError { status, message }
    }
}

impl From<crate::actions::ActionError> for PageError {
    fn from(e: crate::actions::ActionError) -> PageError {
        ApiError::from(e).into()
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> PageError {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        html(
            self.status,
            layout::error_page(self.status.as_u16(), title, &self.message),
        )
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;

/// The HTML 404 of the control host (paths that are neither API nor dashboard).
pub fn not_found() -> Response {
    with_page_headers(
        PageError::new(
            StatusCode::NOT_FOUND,
            "There is no page at this address in the dashboard.",
        )
        .into_response(),
    )
}
