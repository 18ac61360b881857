-- TLS certificates of custom domains (ACME), one row per domain that has or needs one,
-- and the platform's ACME accounts. Times are Unix milliseconds (UTC). Private keys and
-- account credentials are sealed by the application before they get here.
CREATE TABLE certificates (
    domain_id       BIGINT  PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    status          TEXT    NOT NULL
        CONSTRAINT certificates_status_check CHECK (status IN ('pending', 'issued', 'failed')),
    -- Leaf and intermediates (public).
    chain_pem       TEXT,
    key_sealed      BYTEA,
    serial          TEXT,
    issuer          TEXT,
    not_before      BIGINT,
    not_after       BIGINT,
    issued_at       BIGINT,
    -- Consecutive failed orders, for the retry backoff.
    failures        BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT,
    -- When the next order (renewal or retry) is due.
    next_attempt_at BIGINT  NOT NULL,
    -- An app replica working on an order holds it until then.
    lease_until     BIGINT,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX certificates_next_attempt_at ON certificates (next_attempt_at);

-- One ACME account per directory URL, shared by every app replica.
CREATE TABLE acme_accounts (
    directory          TEXT   PRIMARY KEY,
    credentials_sealed BYTEA  NOT NULL,
    created_at         BIGINT NOT NULL
);
