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
pub const ACCESS_LOG_DROPPED_LINES_TOTAL: &str = "hosting_access_log_dropped_lines_total";
pub const CACHE_BYTES: &str = "hosting_cache_bytes";
pub const CACHE_ENTRIES: &str = "hosting_cache_entries";
pub const CACHE_BUDGET_BYTES: &str = "hosting_cache_budget_bytes";
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
// The app's own HTTPS listener.
pub const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "hosting_tls_handshake_failures_total";
// Certificates.
pub const ACME_ORDERS_TOTAL: &str = "hosting_acme_orders_total";
pub const ACME_FAILURES_TOTAL: &str = "hosting_acme_failures_total";
pub const CERTIFICATE_INSTALLS_TOTAL: &str = "hosting_certificate_installs_total";
pub const CERTIFICATE_INSTALL_LAST_SUCCESS: &str =
    "hosting_certificate_install_last_success_timestamp_seconds";
// Audit log, webhooks and analytics.
pub const AUDIT_ENTRIES_LOST_TOTAL: &str = "hosting_audit_entries_lost_total";
pub const WEBHOOK_DELIVERIES_TOTAL: &str = "hosting_webhook_deliveries_total";
pub const WEBHOOK_QUEUE_PENDING: &str = "hosting_webhook_queue_pending";
pub const WEBHOOK_QUEUE_OLDEST_AGE_SECONDS: &str = "hosting_webhook_queue_oldest_age_seconds";
pub const ANALYTICS_FLUSH_FAILURES_TOTAL: &str = "hosting_analytics_flush_failures_total";

/// The metrics the Prometheus recorder exports (see [`describe`]).
/// S3 requests of the blob store, by operation (`HOSTING_BLOB_STORE=s3`).
pub const BLOB_STORE_OPS: [&str; 6] = ["get", "put", "multipart", "head", "delete", "list"];
pub const BLOB_STORE_UP: &str = "hosting_blob_store_up";
pub const BLOB_STORE_REQUEST_DURATION_SECONDS: &str = "hosting_blob_store_request_duration_seconds";
pub const BLOB_STORE_ERRORS_TOTAL: &str = "hosting_blob_store_errors_total";

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
        name: ACCESS_LOG_DROPPED_LINES_TOTAL,
        kind: Kind::Counter,
        help: "Access log lines dropped because the log writer could not keep up (serving never waits for it).",
        labels: &[],
    },
    Metric {
        name: CACHE_BYTES,
        kind: Kind::Gauge,
        help: "Bytes an in-process cache holds (its weigher: the entries' heap bytes and the cache's own bookkeeping), set at each scrape.",
        labels: &[Label { name: "kind", values: &CACHE_KINDS }],
    },
    Metric {
        name: CACHE_ENTRIES,
        kind: Kind::Gauge,
        help: "Entries an in-process cache holds, set at each scrape.",
        labels: &[Label { name: "kind", values: &CACHE_KINDS }],
    },
    Metric {
        name: CACHE_BUDGET_BYTES,
        kind: Kind::Gauge,
        help: "The share of HOSTING_CACHE_BYTES an in-process cache may hold.",
        labels: &[Label { name: "kind", values: &CACHE_KINDS }],
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
        name: TLS_HANDSHAKE_FAILURES_TOTAL,
        kind: Kind::Counter,
        help: "TLS handshakes the app's HTTPS listener did not complete, by reason: \
               no_certificate (no certificate for the SNI name and no platform one), \
               protocol (the client spoke something else than TLS, or nothing we share), \
               other (the connection closed or timed out first).",
        labels: &[Label {
            name: "reason",
            values: &["no_certificate", "protocol", "other"],
        }],
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
    },    Metric {
        name: BLOB_STORE_UP,
        kind: Kind::Gauge,
        help: "1 when the S3 blob store answered its last request, else 0 (cached files are still served).",
        labels: &[],
    },
    Metric {
        name: BLOB_STORE_REQUEST_DURATION_SECONDS,
        kind: Kind::Histogram,
        help: "Seconds an S3 request of the blob store took, retries included, by operation.",
        labels: &[Label { name: "op", values: &BLOB_STORE_OPS }],
    },
    Metric {
        name: BLOB_STORE_ERRORS_TOTAL,
        kind: Kind::Counter,
        help: "S3 requests of the blob store that failed (a missing object is not a failure), by operation.",
        labels: &[Label { name: "op", values: &BLOB_STORE_OPS }],
    },
    Metric {
        name: AUDIT_ENTRIES_LOST_TOTAL,
        kind: Kind::Counter,
        help: "Audit entries (with their webhook events) that could not be written; each is logged at error level as its only trace.",
        labels: &[],
    },
    Metric {
        name: WEBHOOK_DELIVERIES_TOTAL,
        kind: Kind::Counter,
        help: "Webhook delivery attempts, by result: delivered (2xx), retry (failed, tried again later), failed (given up after the retry window).",
        labels: &[Label { name: "result", values: &["delivered", "retry", "failed"] }],
    },
    Metric {
        name: WEBHOOK_QUEUE_PENDING,
        kind: Kind::Gauge,
        help: "Webhook deliveries waiting in the queue (all replicas), as this replica last read it.",
        labels: &[],
    },
    Metric {
        name: WEBHOOK_QUEUE_OLDEST_AGE_SECONDS,
        kind: Kind::Gauge,
        help: "Seconds since the oldest pending webhook delivery was queued (0 when none waits).",
        labels: &[],
    },
    Metric {
        name: ANALYTICS_FLUSH_FAILURES_TOTAL,
        kind: Kind::Counter,
        help: "Analytics flushes that failed to write; the figures of that interval are lost.",
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
mod tests;
