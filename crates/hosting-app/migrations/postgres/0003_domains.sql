-- Custom domains of sites. A name belongs to at most one site platform-wide; the owner
-- is the site's. Times are Unix milliseconds (UTC).
CREATE TABLE domains (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT    NOT NULL CONSTRAINT domains_name_key UNIQUE,
    site_id       BIGINT  NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'verified', 'failed')),
    status_detail TEXT,
    -- Random token proving control (TXT record value and HTTP token body).
    token         TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    checked_at    BIGINT,
    verified_at   BIGINT,
    -- Consecutive failed checks, for the re-check backoff.
    failures      BIGINT  NOT NULL DEFAULT 0,
    next_check_at BIGINT  NOT NULL
);
CREATE INDEX domains_site_id ON domains (site_id);
CREATE INDEX domains_next_check_at ON domains (next_check_at);
