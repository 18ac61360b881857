//! Wire types of deploy aliases (branch deploys) and visitor access (protected sites).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use crate::schema;

/// Longest alias name: `<alias>--<site>` must fit one 63-byte DNS label with the longest
/// site name (45), exactly like a 16-character deploy id.
pub const MAX_ALIAS_NAME: usize = 16;

/// A deploy alias: `<name>--<site>.<base-domain>` serves `deploy_id`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alias {
    #[cfg_attr(feature = "openapi", schema(value_type = schema::AliasName))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = schema::SiteName))]
    pub site: String,
    #[cfg_attr(feature = "openapi", schema(value_type = schema::DeployId))]
    pub deploy_id: String,
    /// `http(s)://<name>--<site>.<base-domain>/`
    pub url: String,
    pub created_at: DateTime<Utc>,
    /// When the alias last moved to a deploy.
    pub updated_at: DateTime<Utc>,
}

/// Body of `PUT /api/v1/sites/{site}/aliases/{alias}`: point the alias at a ready deploy
/// of the site (created when it does not exist yet).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetAlias {
    #[cfg_attr(feature = "openapi", schema(value_type = schema::DeployId))]
    pub deploy_id: String,
}

/// Which hosts of a site ask visitors for the password.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProtectionScope {
    /// Every host: the site, its custom domains, previews and aliases.
    #[default]
    All,
    /// Only deploy previews and aliases; the live site stays public.
    Previews,
}

impl ProtectionScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectionScope::All => "all",
            ProtectionScope::Previews => "previews",
        }
    }
}

/// Body of `PUT /api/v1/sites/{site}/protection`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetProtection {
    /// The password visitors type (at least 8 characters); stored only as an argon2id hash.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
    #[serde(default)]
    pub scope: ProtectionScope,
}

/// A site's visitor access (never the password).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Protection {
    #[cfg_attr(feature = "openapi", schema(value_type = schema::SiteName))]
    pub site: String,
    /// `false`: anyone may visit; `scope` is then meaningless.
    pub protected: bool,
    pub scope: ProtectionScope,
    pub updated_at: Option<DateTime<Utc>>,
}
