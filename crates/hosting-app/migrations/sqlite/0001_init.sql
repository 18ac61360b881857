-- Platform state for embedded mode. Times are Unix milliseconds (UTC).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL CONSTRAINT users_username_key UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    disabled      INTEGER NOT NULL DEFAULT 0,
    password_hash TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    -- SHA-256 of the secret: tokens are high-entropy, so a fast hash is enough.
    secret_hash  TEXT    NOT NULL CONSTRAINT tokens_secret_hash_key UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX tokens_user_id ON tokens (user_id);

CREATE TABLE sites (
    id             INTEGER PRIMARY KEY,
    owner_id       INTEGER NOT NULL REFERENCES users (id),
    name           TEXT    NOT NULL CONSTRAINT sites_name_key UNIQUE,
    live_deploy_id TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX sites_owner_id ON sites (owner_id);

CREATE TABLE deploys (
    id                  TEXT    PRIMARY KEY,
    site_id             INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    created_by          INTEGER NOT NULL REFERENCES users (id),
    state               TEXT    NOT NULL CHECK (state IN ('uploading', 'ready', 'expired', 'failed')),
    file_count          INTEGER NOT NULL,
    total_bytes         INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    published_at        INTEGER,
    error               TEXT,
    idempotency_key     TEXT,
    request_fingerprint TEXT,
    CONSTRAINT deploys_idempotency_key UNIQUE (site_id, idempotency_key)
);
CREATE INDEX deploys_site_id ON deploys (site_id, created_at);
CREATE INDEX deploys_state ON deploys (state, created_at);

CREATE TABLE deploy_files (
    deploy_id TEXT    NOT NULL REFERENCES deploys (id) ON DELETE CASCADE,
    path      TEXT    NOT NULL,
    sha256    TEXT    NOT NULL,
    size      INTEGER NOT NULL,
    PRIMARY KEY (deploy_id, path)
);
CREATE INDEX deploy_files_sha256 ON deploy_files (sha256);

-- Hashes a deploy still waits for.
CREATE TABLE deploy_missing (
    deploy_id TEXT NOT NULL REFERENCES deploys (id) ON DELETE CASCADE,
    sha256    TEXT NOT NULL,
    PRIMARY KEY (deploy_id, sha256)
);

-- Every blob in the blob store; touched_at protects fresh uploads from garbage collection.
CREATE TABLE blobs (
    sha256     TEXT    PRIMARY KEY,
    size       INTEGER NOT NULL,
    touched_at INTEGER NOT NULL
);

-- Which owner has uploaded which bytes: `required` is computed against this, never
-- against the global store, so knowing a hash does not give access to the bytes.
CREATE TABLE owner_blobs (
    owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sha256   TEXT    NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    PRIMARY KEY (owner_id, sha256)
);
CREATE INDEX owner_blobs_sha256 ON owner_blobs (sha256);
