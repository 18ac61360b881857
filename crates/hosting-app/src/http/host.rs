//! Which tenant a request is for, decided by the `Host` header alone.
//!
//! SECURITY: `X-Forwarded-Host` and `Forwarded` are never read: any client can set
//! them, and the proxies key their caches on `Host`, so honouring them would let one
//! tenant's request fill another tenant's cache entry.

use axum::http::{header, Request, Version};

use crate::actions::aliases::AliasName;
use crate::domain::names::{DeployId, SiteName};

#[derive(Debug, Clone, PartialEq)]
pub enum HostKind {
    /// The API and dashboard.
    Control,
    /// `<site>.<base-domain>`: the site's live deploy.
    Site(SiteName),
    /// `<deploy>--<site>.<base-domain>`: one deploy of a site.
    Preview(SiteName, DeployId),
    /// `<alias>--<site>.<base-domain>`: the deploy a site's alias points at. Alias names
    /// are never 16 hex characters, so an alias host is never a preview host.
    Alias(SiteName, AliasName),
    /// A host outside the base domain: maybe a tenant's verified custom domain.
    Custom(String),
    /// Anything else: the platform's 404.
    Unknown,
}

/// Why a request names no usable host: answered 400 (RFC 9112 section 3.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("the request has no Host header")]
    Missing,
    #[error("the request has {0} Host headers; send exactly one")]
    Repeated(usize),
    #[error("the Host header {0:?} is not a valid host name with an optional port")]
    Invalid(String),
    #[error("the request target's authority {0:?} is not a valid host with an optional port")]
    InvalidAuthority(String),
}

/// The request's host under the one rule the app and the proxies share
/// (docs/code-map.md, "Request flow"): see [`normalize_host`].
///
/// SECURITY: a request must carry exactly one valid `Host` header (RFC 9112 3.2): with
/// two, a proxy that picks the other one would route or cache the response as another
/// tenant's. An absolute-form request target (`GET http://a.example/ HTTP/1.1`) or an
/// HTTP/2 `:authority` then wins over the `Host` header (RFC 9112 3.2.2), exactly as
/// nginx's `$host` does, so the proxies' cache key and our routing never disagree. Over
/// HTTP/2 the `:authority` alone is enough.
pub fn request_host<B>(req: &Request<B>) -> Result<String, HostError> {
    let mut headers = req.headers().get_all(header::HOST).iter();
    let first = headers.next();
    let count = usize::from(first.is_some()) + headers.count();
    if count > 1 {
        return Err(HostError::Repeated(count));
    }
    // HTTP/2 names the host in `:authority`; HTTP/1 must send `Host` even with an
    // absolute-form target.
    if first.is_none() && req.version() < Version::HTTP_2 {
        return Err(HostError::Missing);
    }
    let from_header = first
        .map(|value| {
            let raw = String::from_utf8_lossy(value.as_bytes());
            normalize_host(&raw).ok_or_else(|| HostError::Invalid(raw.into_owned()))
        })
        .transpose()?;
    match (req.uri().authority(), from_header) {
        (Some(authority), _) => {
            // SECURITY: `user@host` is how phishing URLs hide the real host (RFC 9110 4.2.4).
            let raw = authority.as_str();
            let host = (!raw.contains('@')).then(|| normalize_host(raw)).flatten();
            host.ok_or_else(|| HostError::InvalidAuthority(raw.to_owned()))
        }
        (None, Some(host)) => Ok(host),
        (None, None) => Err(HostError::Missing),
    }
}

/// The one host rule: ASCII lower case, the port removed (`:` and 1 to 5 digits), then
/// one trailing dot removed. What remains is an IPv6 literal in brackets, or dot-separated
/// labels of 1 to 63 letters, digits or `-` (253 characters at most; the proxies' regex
/// in deploy/nginx and deploy/haproxy is the same rule). Anything else
/// (a second port, a letter in the port, an empty label, a space, a slash, non-ASCII) is
/// `None`: the request is answered 400, never routed.
pub fn normalize_host(raw: &str) -> Option<String> {
    let (host, port) = split_port(raw)?;
    if let Some(port) = port {
        if !(1..=5).contains(&port.len()) || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    if host.starts_with('[') {
        return Some(host.to_ascii_lowercase());
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let valid = (1..=253).contains(&host.len())
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    valid.then_some(host)
}

/// `host[:port]` -> host and port: the port is everything after the first `:` (after
/// the closing bracket of an IPv6 literal), so `a.example:80:80` has the port `80:80`.
fn split_port(raw: &str) -> Option<(&str, Option<&str>)> {
    if raw.starts_with('[') {
        let end = raw.find(']')?;
        let (literal, rest) = raw.split_at(end + 1);
        literal[1..end].parse::<std::net::Ipv6Addr>().ok()?;
        if rest.is_empty() {
            return Some((literal, None));
        }
        return Some((literal, Some(rest.strip_prefix(':')?)));
    }
    Some(match raw.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (raw, None),
    })
}

/// Classifies a normalized host against the control host and base domain. IP
/// literals reach the control plane so `curl http://127.0.0.1:3000/api/v1/...` works.
pub fn classify(host: &str, control_host: &str, base_domain: &str) -> HostKind {
    if host == control_host || is_ip_literal(host) {
        return HostKind::Control;
    }
    let Some(label) = host
        .strip_suffix(base_domain)
        .and_then(|rest| rest.strip_suffix('.'))
    else {
        // Custom domains have at least two labels and never end with the base domain
        // (`evil<base-domain>` is refused when a domain is added, so it never verifies).
        return if host.contains('.') && host != base_domain {
            HostKind::Custom(host.to_owned())
        } else {
            HostKind::Unknown
        };
    };
    if label.contains('.') {
        return HostKind::Unknown;
    }
    if let Some((prefix, site)) = label.split_once("--") {
        let Ok(site) = SiteName::parse(site) else {
            return HostKind::Unknown;
        };
        if let Ok(deploy) = DeployId::parse(prefix) {
            return HostKind::Preview(site, deploy);
        }
        return match AliasName::parse(prefix) {
            Ok(alias) => HostKind::Alias(site, alias),
            Err(_) => HostKind::Unknown,
        };
    }
    match SiteName::parse(label) {
        Ok(site) => HostKind::Site(site),
        Err(_) => HostKind::Unknown,
    }
}

fn is_ip_literal(host: &str) -> bool {
    host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(host: &str) -> HostKind {
        classify(
            &normalize_host(host).expect("valid host"),
            "localhost",
            "localhost",
        )
    }

    #[test]
    fn hosts_are_lower_cased_and_lose_port_and_trailing_dot() {
        assert_eq!(
            normalize_host("Blog.LocalHost:3000").as_deref(),
            Some("blog.localhost")
        );
        assert_eq!(
            normalize_host("blog.localhost.").as_deref(),
            Some("blog.localhost")
        );
        assert_eq!(normalize_host("[::1]:3000").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host("evil.com/x"), None);
        assert_eq!(normalize_host("host:notaport"), None);
    }

    #[test]
    fn malformed_hosts_are_refused() {
        for bad in [
            "",
            ".",
            "a.example:80:80",
            "a.example:",
            "a.example:123456",
            "a.example:8o",
            "a..example",
            ".a.example",
            "a.example..",
            "a example",
            "a.example\\x",
            "caf\u{e9}.example",
            "[::1",
            "[not-v6]",
            "[::1]x",
            "[::1]:",
            "a_b.example",
        ] {
            assert_eq!(normalize_host(bad), None, "{bad:?} accepted");
        }
        assert_eq!(
            normalize_host("A-b.Example.:8080").as_deref(),
            Some("a-b.example")
        );
        assert_eq!(normalize_host("[::1]").as_deref(), Some("[::1]"));
    }

    #[test]
    fn an_absolute_form_target_wins_over_the_host_header_as_in_nginx() {
        let req = Request::builder()
            .uri("http://Other.localhost:8080/x")
            .header(header::HOST, "blog.localhost")
            .body(())
            .expect("request");
        assert_eq!(request_host(&req).as_deref(), Ok("other.localhost"));
        let origin_form = Request::builder()
            .uri("/x")
            .header(header::HOST, "Blog.localhost:3000")
            .body(())
            .expect("request");
        assert_eq!(request_host(&origin_form).as_deref(), Ok("blog.localhost"));
    }

    #[test]
    fn a_request_needs_exactly_one_valid_host_header() {
        let request = |hosts: &[&str], uri: &str| {
            let mut builder = Request::builder().uri(uri);
            for host in hosts {
                builder = builder.header(header::HOST, *host);
            }
            request_host(&builder.body(()).expect("request"))
        };
        assert_eq!(request(&[], "/"), Err(HostError::Missing));
        assert_eq!(request(&[], "http://a.localhost/"), Err(HostError::Missing));
        assert_eq!(
            request(&["a.localhost", "b.localhost"], "/"),
            Err(HostError::Repeated(2))
        );
        assert!(matches!(
            request(&["a.example:80:80"], "/"),
            Err(HostError::Invalid(_))
        ));
        // Absolute form: the target's authority routes, but the Host header must still be
        // there once and valid (RFC 9112 3.2), and userinfo is refused.
        assert_eq!(
            request(&["x.localhost"], "http://a.localhost/").as_deref(),
            Ok("a.localhost")
        );
        assert!(matches!(
            request(&["x.localhost", "y.localhost"], "http://a.localhost/"),
            Err(HostError::Repeated(2))
        ));
        assert!(matches!(
            request(&["x.localhost"], "http://user@a.localhost/"),
            Err(HostError::InvalidAuthority(_))
        ));
    }

    #[test]
    fn the_base_domain_and_ip_literals_are_the_control_host() {
        assert_eq!(kind("localhost:3000"), HostKind::Control);
        assert_eq!(kind("127.0.0.1:3000"), HostKind::Control);
        assert_eq!(kind("[::1]:3000"), HostKind::Control);
    }

    #[test]
    fn subdomains_are_sites_and_previews() {
        assert_eq!(
            kind("blog.localhost"),
            HostKind::Site(SiteName::parse("blog").expect("name"))
        );
        assert_eq!(
            kind("0123456789abcdef--blog.localhost"),
            HostKind::Preview(
                SiteName::parse("blog").expect("name"),
                DeployId::parse("0123456789abcdef").expect("id")
            )
        );
    }

    #[test]
    fn other_names_before_the_double_hyphen_are_aliases() {
        assert_eq!(
            kind("staging--blog.localhost"),
            HostKind::Alias(
                SiteName::parse("blog").expect("name"),
                AliasName::parse("staging").expect("alias")
            )
        );
        // Sixteen hex characters are a deploy id, never an alias.
        assert!(matches!(
            kind("abcdefabcdefabcd--blog.localhost"),
            HostKind::Preview(..)
        ));
    }

    #[test]
    fn hosts_outside_the_base_domain_may_be_custom_domains() {
        assert_eq!(
            kind("Shop.Example.com"),
            HostKind::Custom("shop.example.com".into())
        );
    }

    #[test]
    fn other_hosts_are_unknown() {
        assert_eq!(kind("a.b.localhost"), HostKind::Unknown);
        assert_eq!(kind("evillocalhost"), HostKind::Unknown);
        assert_eq!(kind("www--blog.localhost"), HostKind::Unknown);
        assert_eq!(kind("-x--blog.localhost"), HostKind::Unknown);
        assert_eq!(kind("staging--blog-.localhost"), HostKind::Unknown);
        assert_eq!(kind("www.localhost"), HostKind::Unknown);
    }
}
