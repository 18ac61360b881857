//! Logging and metrics set-up, in one place. Logs are JSON lines on stdout (or text
//! for people: the default when stdout is a terminal); tests stay silent unless
//! `TEST_LOG` is set.

use std::io::IsTerminal;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Buckets for the latencies we serve at: sub-millisecond hits to multi-second uploads.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The log format in effect for `HOSTING_LOG_FORMAT`: `auto` is text for a person at a
/// terminal and JSON lines for a log shipper (Alloy reads a pipe, not a terminal).
pub fn effective_log_format(setting: &str, stdout_is_terminal: bool) -> &'static str {
    match setting {
        "text" => "text",
        "auto" if stdout_is_terminal => "text",
        _ => "json",
    }
}

/// Installs the global log subscriber (once per process): `format` is `json`, `text`
/// or `auto` (see [`effective_log_format`]).
pub fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if effective_log_format(format, std::io::stdout().is_terminal()) == "text" {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
    };
}

/// For one-shot operator commands (`hosting-app admin ...`): text on stderr, warnings
/// and errors only unless `RUST_LOG` says otherwise, so stdout carries just the result
/// (`TOKEN=$(hosting-app admin token admin)` works).
pub fn init_command_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// For tests: logs only when `TEST_LOG` is set.
pub fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        init_logging("text");
    }
}

/// The process-wide Prometheus recorder; every app in the process shares it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .map(|b| b.build_recorder());
            match recorder {
                Ok(recorder) => {
                    let handle = recorder.handle();
                    let _ = metrics::set_global_recorder(recorder);
                    crate::metrics::describe();
                    handle
                }
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// Route classes of `hosting_http_requests_total` (a bounded label).
pub const ROUTE_CLASSES: [&str; 5] = crate::metrics::ROUTE_CLASSES;
const STATUS_CLASSES: [&str; 5] = crate::metrics::STATUS_CLASSES;

/// Metric handles of the per-request path, registered once: looking a labelled metric
/// up by name on every request costs more than the rest of a warm cache hit's bookkeeping.
struct RequestMetrics {
    requests: Vec<[metrics::Counter; 5]>,
    durations: Vec<metrics::Histogram>,
    cache: Vec<metrics::Counter>,
}

const CACHE_LAYERS: [&str; 2] = crate::metrics::CACHE_LAYERS;
const CACHE_KINDS: [&str; crate::metrics::CACHE_KINDS.len()] = crate::metrics::CACHE_KINDS;

fn request_metrics() -> &'static RequestMetrics {
    static METRICS: OnceLock<RequestMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        metrics_handle();
        RequestMetrics {
            requests: ROUTE_CLASSES
                .iter()
                .map(|route| STATUS_CLASSES.map(|status| metrics::counter!(crate::metrics::HTTP_REQUESTS_TOTAL, "route" => *route, "status" => status)))
                .collect(),
            durations: ROUTE_CLASSES
                .iter()
                .map(|route| metrics::histogram!(crate::metrics::HTTP_REQUEST_DURATION_SECONDS, "route" => *route))
                .collect(),
            cache: CACHE_LAYERS
                .iter()
                .flat_map(|layer| {
                    CACHE_KINDS.iter().flat_map(move |kind| {
                        ["hit", "miss"].map(|result| {
                            metrics::counter!(crate::metrics::CACHE_REQUESTS_TOTAL, "layer" => *layer, "kind" => *kind, "result" => result)
                        })
                    })
                })
                .collect(),
        }
    })
}

/// Counts one request of `route` (one of [`ROUTE_CLASSES`]) answered with `status`.
pub fn record_request(route: &str, status: u16, seconds: f64) {
    let metrics = request_metrics();
    let route = ROUTE_CLASSES
        .iter()
        .position(|r| *r == route)
        .unwrap_or(ROUTE_CLASSES.len() - 1);
    let status = usize::from((status / 100).clamp(1, 5) - 1);
    metrics.requests[route][status].increment(1);
    metrics.durations[route].record(seconds);
}

/// Counts one cache lookup: `layer` "l1" or "l2", `kind` "host", "manifest" or "file".
pub fn record_cache_lookup(layer: &str, kind: &str, hit: bool) {
    let layer = usize::from(layer == "l2");
    let kind = CACHE_KINDS.iter().position(|k| *k == kind).unwrap_or(0);
    let index = (layer * CACHE_KINDS.len() + kind) * 2 + usize::from(!hit);
    request_metrics().cache[index].increment(1);
}

#[cfg(test)]
mod tests {
    use super::effective_log_format;

    #[test]
    fn auto_logs_text_on_a_terminal_and_json_otherwise() {
        assert_eq!(effective_log_format("auto", true), "text");
        assert_eq!(effective_log_format("auto", false), "json");
        assert_eq!(effective_log_format("json", true), "json");
        assert_eq!(effective_log_format("text", false), "text");
    }
}
