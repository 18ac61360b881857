-- Per-user quotas. An override is NULL (the platform default applies), 0 (unlimited) or
-- the limit. storage_bytes is the user's stored bytes: the sizes of the distinct blobs the
-- user uploaded that one of the user's deploys references. It is kept up to date in the
-- transactions that change it (under the user's row lock), so checking it costs one row.
ALTER TABLE users ADD COLUMN quota_storage_bytes INTEGER CONSTRAINT users_quota_storage_bytes_check CHECK (quota_storage_bytes >= 0);
ALTER TABLE users ADD COLUMN quota_sites INTEGER CONSTRAINT users_quota_sites_check CHECK (quota_sites >= 0);
ALTER TABLE users ADD COLUMN quota_deploys_per_hour INTEGER CONSTRAINT users_quota_deploys_per_hour_check CHECK (quota_deploys_per_hour >= 0);
ALTER TABLE users ADD COLUMN storage_bytes INTEGER NOT NULL DEFAULT 0;

-- One row per deploy created, for the deploys-per-hour quota: unlike deploys, these rows
-- outlive a deleted site, so deleting and re-creating sites does not reset the count.
-- Rows older than an hour are deleted when the user next deploys.
CREATE TABLE deploy_log (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
CREATE INDEX deploy_log_user_id ON deploy_log (user_id, created_at);

UPDATE users SET storage_bytes = (
    SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM owner_blobs o JOIN blobs b ON b.sha256 = o.sha256
    WHERE o.owner_id = users.id AND EXISTS (
        SELECT 1 FROM deploy_files f JOIN deploys d ON d.id = f.deploy_id JOIN sites s ON s.id = d.site_id
        WHERE f.sha256 = o.sha256 AND s.owner_id = users.id));
