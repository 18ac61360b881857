-- TLS certificates of custom domains (ACME), one row per domain that has or needs one,
-- and the platform's ACME accounts. Times are Unix milliseconds (UTC). Private keys and
-- account credentials are sealed by the application before they get here.
CREATE TABLE certificates (
    domain_id       INTEGER PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    status          TEXT    NOT NULL
        CONSTRAINT certificates_status_check CHECK (status IN ('pending', 'issued', 'failed')),
    -- Leaf and intermediates (public).
    chain_pem       TEXT,
    key_sealed      BLOB,
    serial          TEXT,
    issuer          TEXT,
    not_before      INTEGER,
    not_after       INTEGER,
    issued_at       INTEGER,
    -- Consecutive failed orders, for the retry backoff.
    failures        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    -- When the next order (renewal or retry) is due.
    next_attempt_at INTEGER NOT NULL,
    -- An app replica working on an order holds it until then.
    lease_until     INTEGER,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX certificates_next_attempt_at ON certificates (next_attempt_at);

-- One ACME account per directory URL, shared by every app replica.
CREATE TABLE acme_accounts (
    directory          TEXT    PRIMARY KEY,
    credentials_sealed BLOB    NOT NULL,
    created_at         INTEGER NOT NULL
);
