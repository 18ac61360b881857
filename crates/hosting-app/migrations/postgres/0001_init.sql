-- Platform state for cluster mode. Times are Unix milliseconds (UTC), as in the SQLite
-- schema, so both stores share one model.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT    NOT NULL CONSTRAINT users_username_key UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash TEXT,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE tokens (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    -- SHA-256 of the secret: tokens are high-entropy, so a fast hash is enough.
    secret_hash  TEXT   NOT NULL CONSTRAINT tokens_secret_hash_key UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX tokens_user_id ON tokens (user_id);

CREATE TABLE sites (
    id             BIGSERIAL PRIMARY KEY,
    owner_id       BIGINT NOT NULL REFERENCES users (id),
    name           TEXT   NOT NULL CONSTRAINT sites_name_key UNIQUE,
    live_deploy_id TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX sites_owner_id ON sites (owner_id);

CREATE TABLE deploys (
    id                  TEXT   PRIMARY KEY,
    -- Insertion order, to break ties between deploys created in the same millisecond.
    seq                 BIGSERIAL,
    site_id             BIGINT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    created_by          BIGINT NOT NULL REFERENCES users (id),
    state               TEXT   NOT NULL CHECK (state IN ('uploading', 'ready', 'expired', 'failed')),
    file_count          BIGINT NOT NULL,
    total_bytes         BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    published_at        BIGINT,
    error               TEXT,
    idempotency_key     TEXT,
    request_fingerprint TEXT,
    CONSTRAINT deploys_idempotency_key UNIQUE (site_id, idempotency_key)
);
CREATE INDEX deploys_site_id ON deploys (site_id, created_at);
CREATE INDEX deploys_state ON deploys (state, created_at);

CREATE TABLE deploy_files (
    deploy_id TEXT   NOT NULL REFERENCES deploys (id) ON DELETE CASCADE,
    path      TEXT   NOT NULL,
    sha256    TEXT   NOT NULL,
    size      BIGINT NOT NULL,
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
    sha256     TEXT   PRIMARY KEY,
    size       BIGINT NOT NULL,
    touched_at BIGINT NOT NULL
);

-- Which owner has uploaded which bytes: `required` is computed against this, never
-- against the global store, so knowing a hash does not give access to the bytes.
CREATE TABLE owner_blobs (
    owner_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sha256   TEXT   NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    PRIMARY KEY (owner_id, sha256)
);
CREATE INDEX owner_blobs_sha256 ON owner_blobs (sha256);

-- File contents when the PostgreSQL blob store is selected (the cluster default): every
-- app replica sees every file, and streaming replication carries them to the replica.
CREATE TABLE blob_contents (
    sha256 TEXT  PRIMARY KEY,
    data   BYTEA NOT NULL
);
-- Already compressed or incompressible data: skip TOAST compression, keep out-of-line storage.
ALTER TABLE blob_contents ALTER COLUMN data SET STORAGE EXTERNAL;
