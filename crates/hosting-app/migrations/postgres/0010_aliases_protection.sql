-- Deploy aliases (branch deploys): `<alias>--<site>.<base-domain>` serves the deploy the
-- alias points at, beside the live site. Times are Unix milliseconds (UTC).
CREATE TABLE site_aliases (
    site_id    BIGINT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    name       TEXT   NOT NULL,
    deploy_id  TEXT   NOT NULL REFERENCES deploys (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT site_aliases_pkey PRIMARY KEY (site_id, name)
);
CREATE INDEX site_aliases_deploy_id ON site_aliases (deploy_id);

-- Visitor access: a password in front of the whole site ('all') or only its previews and
-- aliases ('previews'). `cookie_key` signs the visitors' cookies; it is replaced with the
-- password, so changing the password signs every visitor out.
CREATE TABLE site_protection (
    site_id       BIGINT NOT NULL PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    scope         TEXT   NOT NULL CHECK (scope IN ('all', 'previews')),
    password_hash TEXT   NOT NULL,
    cookie_key    TEXT   NOT NULL,
    updated_at    BIGINT NOT NULL
);
