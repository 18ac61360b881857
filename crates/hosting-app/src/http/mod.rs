//! The public listener: requests are dispatched by `Host` to the API (control host)
//! or to site serving, under one middleware stack (request ids, timeouts, panic
//! catching, access log and request metrics).

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

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rand::RngCore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use self::error::problem_response;
use self::host::{classify, request_host, HostKind};
use crate::state::AppState;

const REQUEST_ID: &str = "x-request-id";

/// The public router. Dispatch by host runs before any route matching: a site request
/// goes straight to the serving path, and only the control host pays for the API and
/// dashboard routers, their request timeouts and body limits.
pub fn public_router(state: AppState) -> Router {
    let timeout = state.config.listeners.request_timeout;
    let control = api::router()
        .merge(dashboard::router(state.clone()))
        .fallback(control_fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RequestBodyTimeoutLayer::new(timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(middleware::map_response(describe_timeouts))
        .with_state(state.clone());
    Router::new()
        .fallback_service(control)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            dispatch_by_host,
        ))
        .layer(middleware::from_fn(access_log))
        .layer(PropagateRequestIdLayer::new(
            REQUEST_ID.parse().expect("static header name"),
        ))
        .layer(SetRequestIdLayer::new(
            REQUEST_ID.parse().expect("static header name"),
            RandomRequestId,
        ))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked");
                problem_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    Some("the server failed to handle this request".into()),
                )
            },
        ))
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

/// Which kind of route served a request: a bounded metric label.
#[derive(Clone, Copy)]
struct RouteClass(&'static str);

async fn dispatch_by_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let host = match request_host(&req) {
        Ok(host) => host,
        Err(refused) => {
            let mut response = problem_response(
                StatusCode::BAD_REQUEST,
                "bad-request",
                Some(refused.to_string()),
            );
            response.extensions_mut().insert(RouteClass("bad_host"));
            return response;
        }
    };
    let kind = classify(&host, &state.control_host, &state.config.public.base_domain);
    let (class, mut response) = match kind {
        HostKind::Control if ratelimit::exempt(&req) => ("api", next.run(req).await),
        HostKind::Control => match ratelimit::check(&state, ratelimit::subject(&req)).await {
            Some(refused) => ("api", refused),
            None => ("api", next.run(req).await),
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
                acme_challenge(&state, &domain, req.uri().path()).await,
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
                api::domains::serve_token(&state, &domain, req.uri().path()).await,
            )
        }
        site => (
            "site",
            serve::serve_site(state.clone(), host, site, req).await,
        ),
    };
    response.extensions_mut().insert(RouteClass(class));
    response
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

/// One JSON log line and the request metrics per request.
async fn access_log(req: Request<Body>, next: Next) -> Response {
    let started = Instant::now();
    // The request's fields are copied only when the line will be written.
    let logged = tracing::enabled!(tracing::Level::INFO).then(|| {
        let request_id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (
            req.method().clone(),
            req.uri().path().to_owned(),
            request_host(&req).unwrap_or_default(),
            request_id,
        )
    });
    let response = next.run(req).await;
    let elapsed = started.elapsed();
    let status = response.status();
    let class = response
        .extensions()
        .get::<RouteClass>()
        .map_or("other", |c| c.0);
    crate::telemetry::record_request(class, status.as_u16(), elapsed.as_secs_f64());
    if let Some((method, path, host, request_id)) = logged {
        tracing::info!(
            request_id = %request_id,
            method = %method,
            host = %host,
            path = %path,
            status = status.as_u16(),
            route = class,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    }
    response
}

/// Request ids: 16 random hex characters, unless the client (a proxy) sent one.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let mut bytes = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut bytes);
        HeaderValue::from_str(&hex::encode(bytes))
            .ok()
            .map(RequestId::new)
    }
}
