-- The audit log: one row per state change or refused attempt, never updated; rows older
-- than the retention setting are deleted by the periodic task. Actor, site and owner are
-- copied, not referenced, so an entry outlives the user or site it names.
-- Times are Unix milliseconds (UTC).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    -- The user who acted (NULL: the platform itself, or an unknown user name).
    actor_id    INTEGER,
    -- The user name at the time, `system`, or the name a failed sign-in gave.
    actor       TEXT    NOT NULL,
    client_addr TEXT,
    -- `site.create`, `deploy.publish`, `session.sign_in`, ...
    action      TEXT    NOT NULL,
    -- What was acted on: `site:blog`, `deploy:<id>`, `user:alice`, ...
    target      TEXT    NOT NULL,
    site        TEXT,
    -- The owner of the target: who besides admins may read the entry.
    owner_id    INTEGER,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('success', 'failure')),
    detail      TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_owner_id ON audit_log (owner_id, id);
CREATE INDEX audit_log_actor_id ON audit_log (actor_id, id);
