-- The platform's own certificate (`*.<base-domain>`, the base domain, the control host),
-- ordered by DNS-01 by one replica under a lease and served by all of them (their TLS
-- listeners and HAProxy through the installer). One row per set of names (`names`:
-- space-separated, as ordered), so a changed base domain orders a new one. Times are
-- Unix milliseconds (UTC); the private key is sealed by the application.
CREATE TABLE platform_certificates (
    names           TEXT    PRIMARY KEY,
    chain_pem       TEXT,
    key_sealed      BYTEA,
    serial          TEXT,
    not_before      BIGINT,
    not_after       BIGINT,
    issued_at       BIGINT,
    failures        BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at BIGINT  NOT NULL,
    lease_until     BIGINT,
    updated_at      BIGINT  NOT NULL
);

-- A site's Strict-Transport-Security, sent with its responses over HTTPS only. No row:
-- no header from the platform (a `_headers` rule may still set one).
CREATE TABLE site_hsts (
    site_id            BIGINT  NOT NULL PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    max_age            BIGINT  NOT NULL CHECK (max_age > 0),
    include_subdomains BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at         BIGINT  NOT NULL
);
