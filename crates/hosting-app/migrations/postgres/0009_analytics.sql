-- Per-site analytics (issue 20): additive figures per bucket (a minute, an hour or a
-- day), unique visitors as a HyperLogLog sketch, bounded top lists, and the daily salts
-- of the visitor hash (deleted once their day is over: no visitor can be recomputed).
CREATE TABLE analytics_buckets (
    site_id      BIGINT  NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    granularity  TEXT    NOT NULL,
    bucket_start BIGINT  NOT NULL,
    requests     BIGINT  NOT NULL DEFAULT 0,
    page_views   BIGINT  NOT NULL DEFAULT 0,
    bytes_sent   BIGINT  NOT NULL DEFAULT 0,
    status_1xx   BIGINT  NOT NULL DEFAULT 0,
    status_2xx   BIGINT  NOT NULL DEFAULT 0,
    status_3xx   BIGINT  NOT NULL DEFAULT 0,
    status_4xx   BIGINT  NOT NULL DEFAULT 0,
    status_5xx   BIGINT  NOT NULL DEFAULT 0,
    visitors     BYTEA   NOT NULL,
    CONSTRAINT analytics_buckets_pkey PRIMARY KEY (site_id, granularity, bucket_start)
);
CREATE INDEX analytics_buckets_age ON analytics_buckets (granularity, bucket_start);

CREATE TABLE analytics_top (
    site_id      BIGINT  NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    granularity  TEXT    NOT NULL,
    bucket_start BIGINT  NOT NULL,
    kind         TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    count        BIGINT  NOT NULL,
    CONSTRAINT analytics_top_pkey PRIMARY KEY (site_id, granularity, bucket_start, kind, key)
);
CREATE INDEX analytics_top_age ON analytics_top (granularity, bucket_start);

CREATE TABLE analytics_salts (
    day  BIGINT  PRIMARY KEY,
    salt BYTEA   NOT NULL
);
