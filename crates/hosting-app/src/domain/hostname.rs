//! Custom domain names, validated once at the API edge.

use std::fmt;

/// A custom domain: a lower-case ASCII DNS name with at least two labels, outside the
/// platform's base domain, that is not an IP literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomDomain(String);

impl CustomDomain {
    /// Parses `raw` (case is folded, one trailing dot dropped). `base_domain` and
    /// `control_host` are the platform's own names, which a tenant can never claim.
    pub fn parse(raw: &str, base_domain: &str, control_host: &str) -> Result<CustomDomain, String> {
        let trimmed = raw.trim();
        if !trimmed.is_ascii() {
            return Err(
                "a domain must be ASCII: write an internationalized name in its punycode \
                 form (xn--...)"
                    .into(),
            );
        }
        let name = trimmed
            .strip_suffix('.')
            .unwrap_or(trimmed)
            .to_ascii_lowercase();
        if name.is_empty() || name.len() > 253 {
            return Err("a domain has 1 to 253 characters".into());
        }
        if name.parse::<std::net::Ipv4Addr>().is_ok() || name.contains(':') || name.starts_with('[')
        {
            return Err("an IP address is not a domain".into());
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return Err("a domain needs at least two labels (e.g. example.com)".into());
        }
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return Err("each label of a domain has 1 to 63 characters".into());
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(
                    "a domain has only letters, digits, hyphens and dots (no wildcards)".into(),
                );
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err("a label of a domain cannot start or end with a hyphen".into());
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("the last label of a domain cannot be numeric".into());
        }
        // SECURITY: the platform's own names route to the control plane or to sites by
        // label; a claim on them would let a tenant shadow another tenant's site.
        for own in [base_domain, control_host] {
            if name == own || name.ends_with(&format!(".{own}")) {
                return Err(format!(
                    "{own} and its subdomains belong to the platform; use a site's own host instead"
                ));
            }
        }
        Ok(CustomDomain(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<String, String> {
        CustomDomain::parse(raw, "hosting.test", "hosting.test").map(|d| d.0)
    }

    #[test]
    fn names_are_folded_and_lose_a_trailing_dot() {
        assert_eq!(
            parse("Shop.Example.TEST.").as_deref(),
            Ok("shop.example.test")
        );
        assert_eq!(
            parse("xn--bcher-kva.example").as_deref(),
            Ok("xn--bcher-kva.example")
        );
    }

    #[test]
    fn invalid_and_platform_names_are_refused() {
        for bad in [
            "",
            "localhost",
            "bücher.example",
            "10.0.0.1",
            "[::1]",
            "*.example.com",
            "a..example.com",
            "-a.example.com",
            "hosting.test",
            "blog.hosting.test",
            "example.123",
            "under_score.example.com",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
