//! Sites' HSTS settings (`site_hsts`): the statements, written once for both databases.

/// `$1` site, `$2` its owner, `$3` max-age, `$4` includeSubDomains, `$5` now; nothing
/// when the site is not the owner's.
pub(super) const SET: &str = "INSERT INTO site_hsts \
     (site_id, max_age, include_subdomains, updated_at) \
     SELECT id, $3, $4, $5 FROM sites WHERE id = $1 AND owner_id = $2 \
     ON CONFLICT (site_id) DO UPDATE SET max_age = excluded.max_age, \
     include_subdomains = excluded.include_subdomains, updated_at = excluded.updated_at";
pub(super) const DELETE: &str = "DELETE FROM site_hsts WHERE site_id = \
     (SELECT id FROM sites WHERE id = $1 AND owner_id = $2)";
pub(super) const OF_SITE: &str = "SELECT h.max_age, h.include_subdomains FROM site_hsts h \
     JOIN sites s ON s.id = h.site_id WHERE h.site_id = $1 AND s.owner_id = $2";
/// Every host that sends HSTS: the sites' names and their verified custom domains.
pub(super) const HOSTS: &str = "SELECT s.name AS site, NULL AS domain, h.max_age, \
     h.include_subdomains FROM site_hsts h JOIN sites s ON s.id = h.site_id \
     UNION ALL SELECT s.name AS site, d.name AS domain, h.max_age, h.include_subdomains \
     FROM site_hsts h JOIN sites s ON s.id = h.site_id JOIN domains d ON d.site_id = h.site_id \
     WHERE d.status = 'verified'";

/// One [`HOSTS`] row: a site (`domain` none) or one of its custom domains, and its HSTS.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HstsHost {
    pub site: String,
    pub domain: Option<String>,
    pub max_age: i64,
    pub include_subdomains: bool,
}
