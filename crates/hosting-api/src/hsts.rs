//! Wire type of a site's HSTS setting (`Strict-Transport-Security`).

use serde::{Deserialize, Serialize};

/// Longest max-age accepted: two years, what browsers' preload lists ask for at most.
pub const HSTS_MAX_AGE_LIMIT: u32 = 63_072_000;

/// A site's `Strict-Transport-Security`, sent by the platform with the site's responses
/// over HTTPS only (on its hosts and verified custom domains). Body and answer of
/// `PUT /api/v1/sites/{site}/hsts`; `max_age: 0` turns it off.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Hsts {
    /// Seconds browsers keep to HTTPS for the host; 0 = no header.
    #[cfg_attr(feature = "openapi", schema(maximum = 63072000))]
    #[serde(deserialize_with = "crate::whole_u32")]
    pub max_age: u32,
    /// Adds `includeSubDomains`.
    #[serde(default)]
    pub include_subdomains: bool,
}
