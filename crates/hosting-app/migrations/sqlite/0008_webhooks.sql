-- Deploy webhooks of sites, their durable delivery queue and the log of every attempt.
-- Times are Unix milliseconds (UTC).
CREATE TABLE webhooks (
    id         INTEGER PRIMARY KEY,
    site_id    INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    url        TEXT    NOT NULL,
    -- The subscribed event types, comma-separated with a comma at each end
    -- (`,deploy.published,domain.verified,`), so one LIKE matches an event.
    events     TEXT    NOT NULL,
    -- `whsec_<base64>`: the signing key must be readable to sign, so it is not hashed.
    secret     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhooks_site_id ON webhooks (site_id);

-- One message to one endpoint, enqueued with the event; retried until delivered or
-- given up. A replica claims a row by setting lease_until; a lease that runs out (a
-- crashed replica) makes the row claimable again, so nothing queued is lost.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The Standard Webhooks `webhook-id`: the same on every retry of this message.
    message_id      TEXT    NOT NULL CONSTRAINT webhook_deliveries_message_id_key UNIQUE,
    event           TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    completed_at    INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook_id ON webhook_deliveries (webhook_id, id);

CREATE TABLE webhook_attempts (
    id            INTEGER PRIMARY KEY,
    delivery_id   INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    at            INTEGER NOT NULL,
    -- The receiver's HTTP status; NULL when no answer came (refused, timed out).
    status_code   INTEGER,
    duration_ms   INTEGER NOT NULL,
    error         TEXT
);
CREATE INDEX webhook_attempts_delivery_id ON webhook_attempts (delivery_id, id);
