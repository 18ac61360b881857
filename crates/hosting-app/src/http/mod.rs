//! The public listener: requests are dispatched by `Host` to the API (control host)
//! or to site serving. Every request gets a request id, panic catching, the request
//! metrics and an access log line; only the control host pays for the API and
//! dashboard routers, their layers, request timeouts and body limits.

pub mod access_log;
pub mod api;
pub mod auth;
pub mod body;
pub mod dashboard;
pub mod error;
pub mod host;
pub mod listener;
pub mod mgmt;
pub mod pages;
pub mod ratelimit;
pub mod serve;
pub mod visitor;

use std::io::IsTerminal;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::future::BoxFuture;
use futures::FutureExt;
use rand::RngCore;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use self::access_log::{AccessLog, Entry};
use self::error::problem_response;
use self::host::{classify, request_host, HostKind};
use crate::state::AppState;

/// A name made once: a `&str` name is parsed and hashed as text on every use.
static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The public listener's handler: dispatch by host at the connection's service, before
/// any router. Site requests (the hot path) go straight to serving; the API's router and
/// its boxed layer stack cost as much as the rest of a warm hit (issue 17).
#[derive(Clone)]
pub struct PublicService(Arc<Public>);

struct Public {
    state: AppState,
    control: Router,
    access_log: AccessLog,
    analytics: crate::analytics::Analytics,
    https: Option<HttpsRedirect>,
}

/// The app's own HTTPS listener, as the public service sees it: which names go to
/// HTTPS, on which port, and the control host's HSTS header.
#[derive(Clone)]
pub struct HttpsRedirect {
    pub certificates: Arc<crate::tls::Certificates>,
    /// The port in redirects (none when 443).
    pub port: u16,
    /// `Strict-Transport-Security` of the control host's HTTPS responses (`HOSTING_TLS_HSTS`).
    pub hsts: Option<HeaderValue>,
    /// The sites' own HSTS settings.
    pub site_hsts: Arc<crate::tls::hsts::HstsTable>,
}

/// The public handler, with its access log writer started (`HOSTING_ACCESS_LOG`);
/// `https` when the app serves TLS itself.
pub fn public_router(
    state: AppState,
    https: Option<HttpsRedirect>,
) -> std::io::Result<PublicService> {
    let text = crate::telemetry::effective_log_format(
        state.config.logging.log_format.as_str(),
        std::io::stdout().is_terminal(),
    ) == "text";
    let access_log = AccessLog::start(&state.config.logging.access_log, text)?;
    Ok(PublicService(Arc::new(Public {
        control: control_router(state.clone()),
        analytics: crate::analytics::Analytics::start(&state),
        state,
        access_log,
        https,
    })))
}

/// The API and the dashboard, with their request timeouts.
fn control_router(state: AppState) -> Router {
    let timeout = state.config.listeners.request_timeout;
    api::router()
        .merge(dashboard::router(state.clone()))
        .fallback(control_fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RequestBodyTimeoutLayer::new(timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(middleware::map_response(describe_timeouts))
        .layer(middleware::from_fn(api::audit::client_scope))
        .with_state(state)
}

impl listener::Handler for PublicService {
    fn handle(&self, mut req: Request<Body>) -> BoxFuture<'static, Response> {
        let this = self.0.clone();
        Box::pin(async move {
            let started = Instant::now();
            let request_id = request_id(&mut req);
            // Copied only when the line will be written.
            let logged = this
                .access_log
                .enabled()
                .then(|| (req.method().clone(), req.uri().clone()));
            let visit = (this.analytics).visit(&req, || {
                ratelimit::client_ip_of(req.extensions(), req.headers())
            });
            let (route, host, response) =
                match AssertUnwindSafe(dispatch(&this, req)).catch_unwind().await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        tracing::error!("a request handler panicked");
                        let response = problem_response(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "internal",
                            Some("the server failed to handle this request".into()),
                        );
                        ("other", String::new(), response)
                    }
                };
            let mut response = response;
            let elapsed = started.elapsed();
            let status = response.status().as_u16();
            crate::telemetry::record_request(route, status, elapsed.as_secs_f64());
            this.analytics.record(visit, route, &host, &response);
            if let Some((method, uri)) = logged {
                this.access_log.record(&Entry {
                    request_id: request_id.to_str().unwrap_or(""),
                    method: method.as_str(),
                    host: &host,
                    path: uri.path(),
                    status,
                    route,
                    duration: elapsed,
                });
            }
            response
                .headers_mut()
                .insert(REQUEST_ID.clone(), request_id);
            response
        })
    }
}

/// The request's id: the one a proxy sent, else 16 random hex characters (set on the
/// request too, for the handlers' logs).
fn request_id(req: &mut Request<Body>) -> HeaderValue {
    if let Some(id) = req.headers().get(&REQUEST_ID) {
        return id.clone();
    }
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut text = [0u8; 16];
    let _ = hex::encode_to_slice(bytes, &mut text);
    let id = HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static("0"));
    req.headers_mut().insert(REQUEST_ID.clone(), id.clone());
    id
}

/// Answers one request by its host: the route class (a bounded metric label), the
/// normalized host (for the access log) and the response.
async fn dispatch(public: &Public, req: Request) -> (&'static str, String, Response) {
    let state = &public.state;
    let host = match request_host(&req) {
        Ok(host) => host,
        Err(refused) => {
            let response = problem_response(
                StatusCode::BAD_REQUEST,
                "bad-request",
                Some(refused.to_string()),
            );
            return ("bad_host", String::new(), response);
        }
    };
    let kind = classify(&host, &state.control_host, &state.config.public.base_domain);
    let secure = req.extensions().get::<listener::Secure>().is_some();
    if let Some(https) = &public.https {
        if !secure && !matches!(kind, HostKind::Unknown) {
            if let Some(response) = to_https(https, &host, &req) {
                let class = if matches!(kind, HostKind::Control) {
                    "api"
                } else {
                    "site"
                };
                return (class, host, response);
            }
        }
    }
    let hsts = match (&public.https, &kind) {
        (Some(https), HostKind::Control) if secure => https.hsts.clone(),
        (
            Some(https),
            HostKind::Site(site) | HostKind::Preview(site, _) | HostKind::Alias(site, _),
        ) if secure => https.site_hsts.for_site(site.as_str()),
        (Some(https), HostKind::Custom(domain)) if secure => https.site_hsts.for_domain(domain),
        _ => None,
    };
    let (class, mut response) = match kind {
        HostKind::Control if ratelimit::exempt(&req) => {
            ("api", listener::Handler::handle(&public.control, req).await)
        }
        HostKind::Control => match ratelimit::check(state, ratelimit::subject(&req)).await {
            Some(refused) => ("api", refused),
            None => ("api", listener::Handler::handle(&public.control, req).await),
        },
        HostKind::Unknown => ("unknown_host", pages::not_found()),
        HostKind::Custom(domain)
            if req
                .uri()
                .path()
                .starts_with(crate::certs::challenge::ACME_CHALLENGE_PREFIX) =>
        {
            (
                "site",
                acme_challenge(state, &domain, req.uri().path()).await,
            )
        }
        HostKind::Custom(domain)
            if req
                .uri()
                .path()
                .starts_with(crate::domains::HTTP_VERIFY_PREFIX) =>
        {
            (
                "site",
                api::domains::serve_token(state, &domain, req.uri().path()).await,
            )
        }
        site => match visitor::gate(state, &host, &site, req).await {
            visitor::Gate::Answer(response) => ("site", response),
            visitor::Gate::Serve {
                req,
                deploy,
                private,
            } => {
                let response = serve::serve_site(state, &host, deploy, req).await;
                (
                    "site",
                    if private {
                        visitor::private(response)
                    } else {
                        response
                    },
                )
            }
        },
    };
    // A site's own `_headers` rule wins over its setting.
    if let Some(hsts) = hsts {
        response
            .headers_mut()
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(hsts);
    }
    (class, host, response)
}

/// The plain listener's redirect to HTTPS, the rule HAProxy follows too: a name whose
/// certificate the TLS listener serves goes to HTTPS, except the ACME HTTP-01 and
/// domain-check paths (the CA and the checks ask over plain HTTP, and a name being
/// verified or issued has no certificate yet, or one about to expire).
fn to_https(https: &HttpsRedirect, host: &str, req: &Request) -> Option<Response> {
    let path = req.uri().path();
    if path.starts_with(crate::certs::challenge::ACME_CHALLENGE_PREFIX)
        || path.starts_with(crate::domains::HTTP_VERIFY_PREFIX)
        || !https.certificates.covers(host)
    {
        return None;
    }
    let target = req
        .uri()
        .path_and_query()
        .map_or("/", axum::http::uri::PathAndQuery::as_str);
    let location = match https.port {
        443 => format!("https://{host}{target}"),
        port => format!("https://{host}:{port}{target}"),
    };
    // The host passed the host rule and the target the request line's, so this only
    // fails on bytes hyper let through that a header may not carry: then no redirect.
    let location = HeaderValue::try_from(location).ok()?;
    Some(
        (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, location)],
        )
            .into_response(),
    )
}

/// A known path with the wrong method: problem+json (the router's own 405 has no body).
async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    problem_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        Some(format!("{} does not accept this method", uri.path())),
    )
}

/// The timeout layer answers with a bare status; give it the problem+json every error has.
async fn describe_timeouts(response: Response) -> Response {
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && !response
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        return problem_response(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            Some("the request took longer than the server allows (HOSTING_REQUEST_TIMEOUT)".into()),
        );
    }
    response
}

/// Unknown paths of the control host: problem+json under `/api/`, a page elsewhere.
async fn control_fallback(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        use axum::response::IntoResponse;
        error::ApiError::NotFound(format!("no API route {}", uri.path())).into_response()
    } else {
        dashboard::not_found()
    }
}

/// `GET /.well-known/acme-challenge/<token>` on a custom domain: the key authorization
/// of an order in progress for this very domain (any replica knows it), else 404.
async fn acme_challenge(state: &AppState, host: &str, path: &str) -> Response {
    let token = path
        .strip_prefix(crate::certs::challenge::ACME_CHALLENGE_PREFIX)
        .unwrap_or_default();
    match state
        .challenges
        .answer(state.shared.as_ref(), host, token)
        .await
    {
        Some(key_authorization) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/plain"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            key_authorization,
        )
            .into_response(),
        None => pages::not_found(),
    }
}
