//! Deploy aliases and visitor access (protected sites): the statements, rows and records,
//! written once for both databases. Which deploy an alias may point at, and what a
//! password must look like, is decided above (`actions::aliases`, `actions::protection`).

use chrono::{DateTime, Utc};
use hosting_api::ProtectionScope;

use super::columns::time;

/// A named pointer from `<name>--<site>.<base-domain>` to one deploy of the site.
#[derive(Debug, Clone)]
pub struct AliasRecord {
    pub name: String,
    pub deploy_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A site's visitor access, as the serving path needs it.
#[derive(Debug, Clone)]
pub struct ProtectionRecord {
    pub site_id: i64,
    pub scope: ProtectionScope,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Hex key that signs visitors' cookies; replaced with the password.
    pub cookie_key: String,
    pub updated_at: DateTime<Utc>,
}

/// Upserts alias `$2` of site `$1` to deploy `$3` at time `$4`, only when the site
/// belongs to owner `$5` and the deploy is a ready deploy of that site.
pub(super) const UPSERT: &str = "INSERT INTO site_aliases \
     (site_id, name, deploy_id, created_at, updated_at) \
     SELECT $1, $2, $3, $4, $4 WHERE EXISTS (SELECT 1 FROM sites s JOIN deploys d \
     ON d.site_id = s.id WHERE s.id = $1 AND s.owner_id = $5 AND d.id = $3 AND d.state = 'ready') \
     ON CONFLICT (site_id, name) DO UPDATE SET deploy_id = excluded.deploy_id, \
     updated_at = excluded.updated_at";
pub(super) const OF_SITE: &str = "SELECT a.name, a.deploy_id, a.created_at, a.updated_at \
     FROM site_aliases a JOIN sites s ON s.id = a.site_id \
     WHERE s.owner_id = $1 AND a.site_id = $2 ORDER BY a.name";
pub(super) const DELETE: &str = "DELETE FROM site_aliases WHERE site_id = $1 AND name = $2 \
     AND site_id IN (SELECT id FROM sites WHERE owner_id = $3)";
/// The deploy alias `$2` of site `$1` serves (a `LiveRow`).
pub(super) const DEPLOY: &str = "SELECT s.id AS site_id, d.id AS deploy_id, d.created_at \
     FROM site_aliases a JOIN sites s ON s.id = a.site_id JOIN deploys d ON d.id = a.deploy_id \
     WHERE s.name = $1 AND a.name = $2 AND d.state = 'ready'";

/// Sets site `$1`'s protection when the site belongs to owner `$6`.
pub(super) const SET_PROTECTION: &str = "INSERT INTO site_protection \
     (site_id, scope, password_hash, cookie_key, updated_at) \
     SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM sites WHERE id = $1 AND owner_id = $6) \
     ON CONFLICT (site_id) DO UPDATE SET scope = excluded.scope, \
     password_hash = excluded.password_hash, cookie_key = excluded.cookie_key, \
     updated_at = excluded.updated_at";
pub(super) const DELETE_PROTECTION: &str = "DELETE FROM site_protection WHERE site_id = $1 \
     AND site_id IN (SELECT id FROM sites WHERE owner_id = $2)";
macro_rules! protection_columns {
    () => {
        "SELECT p.site_id, p.scope, p.password_hash, p.cookie_key, p.updated_at \
         FROM site_protection p JOIN sites s ON s.id = p.site_id"
    };
}
pub(super) const PROTECTION_OF_OWNER: &str = concat!(
    protection_columns!(),
    " WHERE s.owner_id = $1 AND p.site_id = $2"
);
pub(super) const PROTECTION_OF_SITE: &str = concat!(protection_columns!(), " WHERE s.name = $1");
/// Only a verified domain serves its site, so only it is asked about.
pub(super) const PROTECTION_OF_DOMAIN: &str = concat!(
    protection_columns!(),
    " JOIN domains m ON m.site_id = s.id WHERE m.name = $1 AND m.status = 'verified'"
);

#[derive(sqlx::FromRow)]
pub(super) struct AliasRow {
    name: String,
    deploy_id: String,
    created_at: i64,
    updated_at: i64,
}

impl From<AliasRow> for AliasRecord {
    fn from(row: AliasRow) -> AliasRecord {
        AliasRecord {
            name: row.name,
            deploy_id: row.deploy_id,
            created_at: time(row.created_at),
            updated_at: time(row.updated_at),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ProtectionRow {
    site_id: i64,
    scope: String,
    password_hash: String,
    cookie_key: String,
    updated_at: i64,
}

impl From<ProtectionRow> for ProtectionRecord {
    fn from(row: ProtectionRow) -> ProtectionRecord {
        ProtectionRecord {
            site_id: row.site_id,
            // The column's CHECK allows only these two; an unknown word protects everything.
            scope: if row.scope == "previews" {
                ProtectionScope::Previews
            } else {
                ProtectionScope::All
            },
            password_hash: row.password_hash,
            cookie_key: row.cookie_key,
            updated_at: time(row.updated_at),
        }
    }
}
