-- Per-site analytics (issue 20): additive figures per bucket (a minute, an hour or a
-- day), unique visitors as a HyperLogLog sketch, bounded top lists, and the daily salts
-- of the visitor hash (deleted once their day is over: no visitor can be recomputed).
CREATE TABLE analytics_buckets (
    site_id      INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    granularity  TEXT    NOT NULL,
    bucket_start INTEGER NOT NULL,
    requests     INTEGER NOT NULL DEFAULT 0,
    page_views   INTEGER NOT NULL DEFAULT 0,
    bytes_sent   INTEGER NOT NULL DEFAULT 0,
    status_1xx   INTEGER NOT NULL DEFAULT 0,
    status_2xx   INTEGER NOT NULL DEFAULT 0,
    status_3xx   INTEGER NOT NULL DEFAULT 0,
    status_4xx   INTEGER NOT NULL DEFAULT 0,
    status_5xx   INTEGER NOT NULL DEFAULT 0,
    visitors     BLOB    NOT NULL,
    CONSTRAINT analytics_buckets_pkey PRIMARY KEY (site_id, granularity, bucket_start)
);
CREATE INDEX analytics_buckets_age ON analytics_buckets (granularity, bucket_start);

CREATE TABLE analytics_top (
    site_id      INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    granularity  TEXT    NOT NULL,
    bucket_start INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    count        INTEGER NOT NULL,
    CONSTRAINT analytics_top_pkey PRIMARY KEY (site_id, granularity, bucket_start, kind, key)
);
CREATE INDEX analytics_top_age ON analytics_top (granularity, bucket_start);

CREATE TABLE analytics_salts (
    day  INTEGER PRIMARY KEY,
    salt BLOB    NOT NULL
);
