//! The management listener (internal port): Prometheus metrics, liveness and readiness.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::state::AppState;
use crate::telemetry::metrics_handle;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.cache.export_metrics();
    let mut text = metrics_handle().render();
    // Per-domain certificate expiry is rendered apart: its series come and go with domains.
    text.push_str(&state.certificate_gauges.render());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Liveness: the process answers.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Readiness: accepting traffic (not shutting down) and the primary database answers.
async fn readyz(State(state): State<AppState>) -> Response {
    let database = state.store.ping().await;
    let accepting = state.is_accepting();
    let ready = accepting && database.is_ok();
    metrics::gauge!(crate::metrics::READY).set(if ready { 1.0 } else { 0.0 });
    // Redis, the replica and an object store are reported but do not fail readiness:
    // without them the app still serves (from origin, from the primary, from its caches).
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "accepting": accepting,
        "database": match &database { Ok(()) => "ok".to_owned(), Err(e) => e.to_string() },
        "replica": state.store.replica_status(),
        "redis": state.shared.status(),
        "blobs": match state.blobs.probe().await {
            None => "ok".to_owned(),
            Some(Ok(())) => "ok".to_owned(),
            Some(Err(e)) => e.to_string(),
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
