//! Which tenant a request is for, decided by the `Host` header alone.
//!
//! SECURITY: `X-Forwarded-Host` and `Forwarded` are never read: any client can set
//! them, and the proxies key their caches on `Host`, so honouring them would let one
//! tenant's request fill another tenant's cache entry.

use axum::http::{header, Request};

use crate::domain::names::{DeployId, SiteName};

#[derive(Debug, Clone, PartialEq)]
pub enum HostKind {
    /// The API and dashboard.
    Control,
    /// `<site>.<base-domain>`: the site's live deploy.
    Site(SiteName),
    /// `<deploy>--<site>.<base-domain>`: one deploy of a site.
    Preview(SiteName, DeployId),
    /// A host outside the base domain: maybe a tenant's verified custom domain.
    Custom(String),
    /// Anything else: the platform's 404.
    Unknown,
}

/// The request's host, lower-cased, without port or trailing dot.
///
/// SECURITY: an absolute-form request target (`GET http://a.example/ HTTP/1.1`) or an
/// HTTP/2 `:authority` wins over the `Host` header (RFC 9112 3.2.2), exactly as nginx's
/// `$host` does, so the proxies' cache key and our routing can never disagree.
pub fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = match req.uri().authority() {
        Some(authority) => authority.host().to_owned(),
        None => req.headers().get(header::HOST)?.to_str().ok()?.to_owned(),
    };
    normalize_host(&raw)
}

pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let without_port = if let Some(rest) = raw.strip_prefix('[') {
        // IPv6 literal: `[::1]:3000`
        let end = rest.find(']')?;
        &raw[..end + 2]
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = without_port.trim_end_matches('.').to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':'));
    valid.then_some(host)
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
    if let Some((deploy, site)) = label.split_once("--") {
        return match (DeployId::parse(deploy), SiteName::parse(site)) {
            (Ok(deploy), Ok(site)) => HostKind::Preview(site, deploy),
            _ => HostKind::Unknown,
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
    fn an_absolute_form_target_wins_over_the_host_header_as_in_nginx() {
        let req = Request::builder()
            .uri("http://Other.localhost:8080/x")
            .header(header::HOST, "blog.localhost")
            .body(())
            .expect("request");
        assert_eq!(request_host(&req).as_deref(), Some("other.localhost"));
        let origin_form = Request::builder()
            .uri("/x")
            .header(header::HOST, "Blog.localhost:3000")
            .body(())
            .expect("request");
        assert_eq!(
            request_host(&origin_form).as_deref(),
            Some("blog.localhost")
        );
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
        assert_eq!(kind("xyz--blog.localhost"), HostKind::Unknown);
        assert_eq!(kind("www.localhost"), HostKind::Unknown);
    }
}
