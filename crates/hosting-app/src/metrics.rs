//! Every metric the app exports, declared once: its name, type, HELP text and the
//! bounded values of its labels. Call sites name metrics through these constants
//! (`metrics::counter!(crate::metrics::DEPLOYS_TOTAL, ...)`), so a name cannot drift
//! from the alert rules and dashboards in `deploy/` that query it; [`describe`] hands
//! the HELP texts to the exporter. Labels never carry raw hosts or paths: every value
//! a label may take is listed here.

/// How Prometheus reads a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    /// The name in a `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A label and every value it may take.
#[derive(Debug)]
pub struct Label {
    pub name: &'static str,
    pub values: &'static [&'static str],
}

/// One exported metric.
#[derive(Debug)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: &'static [Label],
}

impl Metric {
    /// The `# HELP` and `# TYPE` lines, for the series the app renders itself
    /// (their label sets come and go with the data, so they bypass the recorder).
    pub fn exposition_header(&self) -> String {
        format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n",
            name = self.name,
            help = self.help,
            kind = self.kind.as_str()
        )
    }
}

// Label values shared by several metrics.
pub const ROUTE_CLASSES: [&str; 5] = ["api", "site", "unknown_host", "bad_host", "other"];
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
pub const CACHE_LAYERS: [&str; 2] = ["l1", "l2"];
pub const CACHE_KINDS: [&str; 3] = ["host", "manifest", "file"];
pub const DB_ROLES: [&str; 2] = ["primary", "replica"];

// Serving and the API.
pub const HTTP_REQUESTS_TOTAL: &str = "hosting_http_requests_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "hosting_http_request_duration_seconds";
pub const CACHE_REQUESTS_TOTAL: &str = "hosting_cache_requests_total";
pub const SERVED_BYTES_TOTAL: &str = "hosting_served_bytes_total";
pub const RATE_LIMITED_TOTAL: &str = "hosting_rate_limited_total";
pub const READY: &str = "hosting_ready";
// Deploys and housekeeping.
pub const DEPLOYS_TOTAL: &str = "hosting_deploys_total";
pub const GC_BLOBS_DELETED_TOTAL: &str = "hosting_gc_blobs_deleted_total";
pub const DOMAIN_CHECKS_TOTAL: &str = "hosting_domain_checks_total";
// Databases and Redis.
pub const DB_READS_TOTAL: &str = "hosting_db_reads_total";
pub const DB_PRIMARY_FALLBACKS_TOTAL: &str = "hosting_db_primary_fallbacks_total";
pub const DB_REPLICA_FALLBACKS_TOTAL: &str = "hosting_db_replica_fallbacks_total";
pub const DB_REPLICA_LAG_SECONDS: &str = "hosting_db_replica_lag_seconds";
pub const DB_REPLICA_UP: &str = "hosting_db_replica_up";
pub const DB_POOL_CONNECTIONS: &str = "hosting_db_pool_connections";
pub const DB_POOL_MAX_CONNECTIONS: &str = "hosting_db_pool_max_connections";
pub const REDIS_UP: &str = "hosting_redis_up";
// Certificates.
pub const ACME_ORDERS_TOTAL: &str = "hosting_acme_orders_total";
pub const ACME_FAILURES_TOTAL: &str = "hosting_acme_failures_total";
pub const CERTIFICATE_INSTALLS_TOTAL: &str = "hosting_certificate_installs_total";
pub const CERTIFICATE_INSTALL_LAST_SUCCESS: &str =
    "hosting_certificate_install_last_success_timestamp_seconds";

/// The metrics the Prometheus recorder exports (see [`describe`]).
pub const RECORDED: &[Metric] = &[
    Metric {
        name: HTTP_REQUESTS_TOTAL,
        kind: Kind::Counter,
        help: "HTTP requests answered, by route class and status class.",
        labels: &[
            Label { name: "route", values: &ROUTE_CLASSES },
            Label { name: "status", values: &STATUS_CLASSES },
        ],
    },
    Metric {
        name: HTTP_REQUEST_DURATION_SECONDS,
        kind: Kind::Histogram,
        help: "Seconds from a request's arrival to its response head, by route class.",
        labels: &[Label { name: "route", values: &ROUTE_CLASSES }],
    },
    Metric {
        name: CACHE_REQUESTS_TOTAL,
        kind: Kind::Counter,
        help: "Cache lookups of the serving path, by layer (l1 in-process, l2 Redis), kind of entry and result.",
        labels: &[
            Label { name: "layer", values: &CACHE_LAYERS },
            Label { name: "kind", values: &CACHE_KINDS },
            Label { name: "result", values: &["hit", "miss"] },
        ],
    },
    Metric {
        name: SERVED_BYTES_TOTAL,
        kind: Kind::Counter,
        help: "Body bytes of site files served (HEAD requests excluded).",
        labels: &[],
    },
    Metric {
        name: RATE_LIMITED_TOTAL,
        kind: Kind::Counter,
        help: "API requests refused with 429 by the per-token or per-address rate limit.",
        labels: &[],
    },
    Metric {
        name: READY,
        kind: Kind::Gauge,
        help: "1 when the last /readyz answered ready (accepting traffic, primary database reachable), else 0.",
        labels: &[],
    },
    Metric {
        name: DEPLOYS_TOTAL,
        kind: Kind::Counter,
        help: "Deploys created and published, by result (rejected: a client error; error: a server error).",
        labels: &[
            Label { name: "kind", values: &["create", "publish"] },
            Label { name: "result", values: &["ok", "rejected", "error"] },
        ],
    },
    Metric {
        name: GC_BLOBS_DELETED_TOTAL,
        kind: Kind::Counter,
        help: "Blobs deleted by garbage collection (no deploy references them any more).",
        labels: &[],
    },
    Metric {
        name: DOMAIN_CHECKS_TOTAL,
        kind: Kind::Counter,
        help: "Custom-domain ownership checks, by result.",
        labels: &[Label { name: "result", values: &["verified", "failed"] }],
    },
    Metric {
        name: DB_READS_TOTAL,
        kind: Kind::Counter,
        help: "Database reads routed to the primary or the read replica.",
        labels: &[Label { name: "role", values: &DB_ROLES }],
    },
    Metric {
        name: DB_PRIMARY_FALLBACKS_TOTAL,
        kind: Kind::Counter,
        help: "Reads retried on the replica because the primary could not be reached (a failover in progress).",
        labels: &[],
    },
    Metric {
        name: DB_REPLICA_FALLBACKS_TOTAL,
        kind: Kind::Counter,
        help: "Reads that went to the primary instead of the replica, by reason.",
        labels: &[Label {
            name: "reason",
            values: &[
                "replica unavailable or lagging",
                "replica has not replayed a recent write",
                "replica has not replayed the deploy",
                "replica has not replayed the blob",
                "replica query failed",
            ],
        }],
    },
    Metric {
        name: DB_REPLICA_LAG_SECONDS,
        kind: Kind::Gauge,
        help: "Replication lag the read replica reports for itself, in seconds.",
        labels: &[],
    },
    Metric {
        name: DB_REPLICA_UP,
        kind: Kind::Gauge,
        help: "1 when the read replica answers and keeps up within HOSTING_REPLICA_MAX_LAG, else 0.",
        labels: &[],
    },
    Metric {
        name: DB_POOL_CONNECTIONS,
        kind: Kind::Gauge,
        help: "Open database connections of this replica, by pool role and state.",
        labels: &[
            Label { name: "role", values: &DB_ROLES },
            Label { name: "state", values: &["busy", "idle"] },
        ],
    },
    Metric {
        name: DB_POOL_MAX_CONNECTIONS,
        kind: Kind::Gauge,
        help: "Most connections a database pool of this replica may open, by pool role.",
        labels: &[Label { name: "role", values: &DB_ROLES }],
    },
    Metric {
        name: REDIS_UP,
        kind: Kind::Gauge,
        help: "1 when Redis answered the last health probe, else 0 (serving falls back to origin).",
        labels: &[],
    },
    Metric {
        name: ACME_ORDERS_TOTAL,
        kind: Kind::Counter,
        help: "ACME certificate orders finished, by result.",
        labels: &[Label { name: "result", values: &["issued", "failed"] }],
    },
    Metric {
        name: ACME_FAILURES_TOTAL,
        kind: Kind::Counter,
        help: "Failed ACME orders, by the stage that failed.",
        labels: &[Label {
            name: "stage",
            values: &["account", "order", "challenge", "finalize", "store"],
        }],
    },
    Metric {
        name: CERTIFICATE_INSTALLS_TOTAL,
        kind: Kind::Counter,
        help: "Certificate changes the installer made in HAProxy, by result.",
        labels: &[Label {
            name: "result",
            values: &["added", "replaced", "removed", "failed"],
        }],
    },
    Metric {
        name: CERTIFICATE_INSTALL_LAST_SUCCESS,
        kind: Kind::Gauge,
        help: "Unix time of the certificate installer's last complete round.",
        labels: &[],
    },
];

/// Per-domain certificate expiry, rendered by `certs` itself: its series come and go
/// with domains. The `domain` label is bounded by count (the soonest 500), not by value.
pub const CERTIFICATE_EXPIRY: Metric = Metric {
    name: "hosting_certificate_expiry_timestamp_seconds",
    kind: Kind::Gauge,
    help: "When a custom domain's served certificate expires (the soonest 500).",
    labels: &[Label {
        name: "domain",
        values: &[],
    }],
};

/// Custom-domain certificates by status, rendered with [`CERTIFICATE_EXPIRY`].
pub const CERTIFICATES: Metric = Metric {
    name: "hosting_certificates",
    kind: Kind::Gauge,
    help: "Custom-domain certificates by status.",
    labels: &[Label {
        name: "status",
        values: &["pending", "issued", "failed"],
    }],
};

/// Gives the installed recorder the HELP text of every recorded metric; called once,
/// when the recorder is installed.
pub fn describe() {
    for metric in RECORDED {
        match metric.kind {
            Kind::Counter => ::metrics::describe_counter!(metric.name, metric.help),
            Kind::Gauge => ::metrics::describe_gauge!(metric.name, metric.help),
            Kind::Histogram => ::metrics::describe_histogram!(metric.name, metric.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    /// Records one series of `metric` (each label at its first declared value), so the
    /// exporter renders it.
    fn record_one(metric: &Metric) {
        let labels: Vec<::metrics::Label> = metric
            .labels
            .iter()
            .map(|label| ::metrics::Label::new(label.name, label.values[0]))
            .collect();
        match metric.kind {
            Kind::Counter => ::metrics::counter!(metric.name, labels).increment(1),
            Kind::Gauge => ::metrics::gauge!(metric.name, labels).set(1.0),
            Kind::Histogram => ::metrics::histogram!(metric.name, labels).record(0.001),
        }
    }

    #[test]
    fn every_recorded_metric_is_scraped_with_its_help_text_and_type() {
        // Buckets as in production (telemetry.rs): without them the exporter renders a
        // histogram as a summary.
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.001, 1.0])
            .expect("buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        ::metrics::with_local_recorder(&recorder, || {
            describe();
            RECORDED.iter().for_each(record_one);
        });
        let scraped = handle.render();
        for metric in RECORDED {
            let help = format!("# HELP {} {}\n", metric.name, metric.help);
            let kind = format!("# TYPE {} {}\n", metric.name, metric.kind.as_str());
            assert!(
                scraped.contains(&help),
                "no HELP for {}:\n{scraped}",
                metric.name
            );
            assert!(
                scraped.contains(&kind),
                "no TYPE for {}:\n{scraped}",
                metric.name
            );
        }
    }

    #[test]
    fn declarations_are_unique_described_and_bounded() {
        let all: Vec<&Metric> = RECORDED
            .iter()
            .chain([&CERTIFICATE_EXPIRY, &CERTIFICATES])
            .collect();
        let mut names: Vec<&str> = all.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "a metric is declared twice");
        for metric in &all {
            assert!(metric.name.starts_with("hosting_"), "{}", metric.name);
            assert!(
                !metric.help.trim().is_empty(),
                "{} has no help",
                metric.name
            );
            assert_eq!(
                metric.kind == Kind::Counter,
                metric.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                metric.name
            );
        }
        // Only the self-rendered expiry series has a label bounded by count, not by value.
        for metric in RECORDED.iter().chain([&CERTIFICATES]) {
            for label in metric.labels {
                assert!(
                    !label.values.is_empty(),
                    "{}{{{}}}",
                    metric.name,
                    label.name
                );
            }
        }
    }

    #[test]
    fn self_rendered_series_keep_their_exposition_header() {
        assert_eq!(
            CERTIFICATES.exposition_header(),
            "# HELP hosting_certificates Custom-domain certificates by status.\n\
             # TYPE hosting_certificates gauge\n"
        );
    }

    /// The point of this module: no other file names a metric with a string literal.
    #[test]
    fn no_metric_is_named_by_a_literal_outside_this_module() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut folders = vec![src.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).expect("src is readable") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    folders.push(path);
                    continue;
                }
                if path == src.join("metrics.rs") || path.extension() != Some("rs".as_ref()) {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("a source file");
                let compact: String = text.split_whitespace().collect();
                for macro_name in ["counter!(\"", "gauge!(\"", "histogram!(\""] {
                    if compact.contains(macro_name) {
                        offenders.push(format!("{} ({macro_name}...)", path.display()));
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "metric names as literals: {offenders:?}"
        );
    }

    /// Alert rules and dashboards name metrics and label values as text: a rename here
    /// would silence an alert without failing anything else.
    #[test]
    fn the_alert_rules_and_dashboards_query_only_declared_metrics_and_label_values() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut text = String::new();
        for folder in ["deploy/prometheus/rules", "deploy/grafana/dashboards"] {
            for entry in std::fs::read_dir(repo.join(folder)).expect("the folder exists") {
                let path = entry.expect("a directory entry").path();
                text += &std::fs::read_to_string(&path).expect("a readable file");
            }
        }
        // Dashboards are JSON: their queries' quotes are escaped.
        let text = text.replace("\\\"", "\"");
        let declared: Vec<&Metric> = RECORDED
            .iter()
            .chain([&CERTIFICATE_EXPIRY, &CERTIFICATES])
            .collect();
        let (mut queried, mut values_checked) = (0, 0);
        for (start, _) in text.match_indices("hosting_") {
            let name: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            // Written by the backup jobs (deploy/backup), not by the app.
            if name.starts_with("hosting_backup_") {
                continue;
            }
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| {
                    declared
                        .iter()
                        .any(|m| m.name == *base && m.kind == Kind::Histogram)
                })
                .unwrap_or(&name);
            let Some(metric) = declared.iter().find(|m| m.name == base) else {
                panic!("{name} is queried in deploy/ but not declared in src/metrics.rs");
            };
            queried += 1;
            let rest = &text[start + name.len()..];
            let Some(matchers) = rest.strip_prefix('{').and_then(|r| r.split_once('}')) else {
                continue;
            };
            for matcher in matchers.0.split(',') {
                let Some((label, value)) = matcher.trim().split_once("=\"") else {
                    continue; // a regex or negative matcher
                };
                let value = value.trim_end_matches('"');
                // `!=` matchers and dashboard variables (`$route`) name no fixed value.
                if label.ends_with('!') || value.contains('$') {
                    continue;
                }
                let Some(declared_label) = metric.labels.iter().find(|l| l.name == label) else {
                    panic!("{base} has no label {label} (queried in deploy/)");
                };
                assert!(
                    declared_label.values.is_empty() || declared_label.values.contains(&value),
                    "{base}{{{label}=\"{value}\"}} is queried in deploy/ but {value:?} is not a declared value"
                );
                values_checked += 1;
            }
        }
        assert!(
            queried > 0,
            "no hosting_ metric found in deploy/: wrong folders?"
        );
        assert!(
            values_checked > 0,
            "no label value compared: is the matcher parsing right?"
        );
    }
}
