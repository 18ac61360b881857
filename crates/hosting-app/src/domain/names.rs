//! Validated newtypes for the names that cross the API boundary, parsed once at the
//! edge so the rest of the code can trust them.

use std::fmt;

use rand::RngCore;

/// Site names that would shadow platform hosts or confuse users.
const RESERVED_SITE_NAMES: &[&str] = &["www", "api", "admin", "app", "dashboard", "status", "mail"];

/// Longest site name: `<16-char deploy id>--<site>` must still fit one 63-byte DNS label.
pub const MAX_SITE_NAME: usize = 45;

/// A site name: one DNS label (lower-case letters, digits, single hyphens).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SiteName(String);

impl SiteName {
    pub fn parse(raw: &str) -> Result<SiteName, String> {
        let name = raw.trim();
        if name.is_empty() || name.len() > MAX_SITE_NAME {
            return Err(format!("a site name has 1 to {MAX_SITE_NAME} characters"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("a site name has only lower-case letters, digits and hyphens".into());
        }
        if name.starts_with('-') || name.ends_with('-') {
            return Err("a site name cannot start or end with a hyphen".into());
        }
        // `--` separates a deploy id from the site in preview hosts.
        if name.contains("--") {
            return Err("a site name cannot contain two hyphens in a row".into());
        }
        if RESERVED_SITE_NAMES.contains(&name) {
            return Err(format!("the site name {name:?} is reserved"));
        }
        Ok(SiteName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A lower-case hex SHA-256 digest.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(String);

impl TryFrom<String> for Sha256 {
    type Error = String;

    fn try_from(raw: String) -> Result<Sha256, String> {
        Sha256::parse(&raw)
    }
}

impl From<Sha256> for String {
    fn from(sha: Sha256) -> String {
        sha.0
    }
}

impl Sha256 {
    pub fn parse(raw: &str) -> Result<Sha256, String> {
        if raw.len() == 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Sha256(raw.to_owned()))
        } else {
            Err(format!("{raw:?} is not a lower-case hex SHA-256 digest"))
        }
    }

    pub fn from_digest(digest: &[u8]) -> Sha256 {
        Sha256(hex::encode(digest))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A deploy id: 16 lower-case hex characters, unguessable enough that preview hosts are not enumerable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeployId(String);

impl DeployId {
    pub fn generate() -> DeployId {
        let mut bytes = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut bytes);
        DeployId(hex::encode(bytes))
    }

    pub fn parse(raw: &str) -> Result<DeployId, String> {
        if raw.len() == 16
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(DeployId(raw.to_owned()))
        } else {
            Err(format!("{raw:?} is not a deploy id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeployId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file's path inside a deploy: starts with `/`, no empty, `.` or `..` segments,
/// no backslashes or control characters. The same rules as the archive reader.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeployPath(String);

impl DeployPath {
    pub fn parse(raw: &str) -> Result<DeployPath, String> {
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(format!("file path {raw:?} must start with '/'"));
        };
        // SECURITY: the archive crate's path rules (no `..`, drive prefix, backslash or
        // control character; bounded lengths), so both deploy routes accept the same paths.
        if rest.is_empty() {
            return Err(format!("file path {raw:?} names no file"));
        }
        hosting_archive::check_site_path(raw)
            .map_err(|problem| format!("file path {raw:?}: {problem}"))?;
        Ok(DeployPath(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A username: 1-64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn validate_username(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() || name.len() > 64 {
        return Err("a username has 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err("a username has only letters, digits, '.', '_', '-' and '@'".into());
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_names_are_dns_labels() {
        assert!(SiteName::parse("blog").is_ok());
        assert!(SiteName::parse("my-blog-2").is_ok());
        for bad in [
            "",
            "Blog",
            "-blog",
            "blog-",
            "my--blog",
            "blog.example",
            "bl_og",
            "www",
            &"a".repeat(46),
        ] {
            assert!(SiteName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn digests_must_be_lower_case_hex_of_the_right_length() {
        let good = "a".repeat(64);
        assert!(Sha256::parse(&good).is_ok());
        assert!(Sha256::parse(&"A".repeat(64)).is_err());
        assert!(Sha256::parse(&"a".repeat(63)).is_err());
        assert!(Sha256::parse(&"g".repeat(64)).is_err());
    }

    #[test]
    fn deploy_ids_round_trip() {
        let id = DeployId::generate();
        assert_eq!(DeployId::parse(id.as_str()), Ok(id));
        assert!(DeployId::parse("../etc").is_err());
    }

    #[test]
    fn deploy_paths_refuse_traversal_and_odd_characters() {
        assert!(DeployPath::parse("/index.html").is_ok());
        assert!(DeployPath::parse("/a/b/c.css").is_ok());
        for bad in [
            "index.html",
            "/",
            "/a//b",
            "/../x",
            "/a/./b",
            "/a\\b",
            "/a\u{0}b",
            "/dir/",
            "/C:/x",
            "/c:x.html",
        ] {
            assert!(DeployPath::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
