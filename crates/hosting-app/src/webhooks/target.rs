//! Where a webhook may be sent. SECURITY: a webhook is a request the platform makes on a
//! tenant's behalf, from inside the platform's networks; a target on loopback or a
//! private network would turn it into a probe of internal services (the database, Redis,
//! the cloud metadata address). The address rule is the one of HTTP domain verification
//! (`domains::is_public`); the name is resolved once per attempt and the connection made
//! to the address checked, so a DNS answer cannot change between check and use.

use std::net::{IpAddr, SocketAddr};

use url::{Host, Url};

/// Checks what can be known without DNS: scheme, no credentials, and a literal address
/// or `localhost` only when private targets are allowed.
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http and https URLs can be called".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed; put a token in the path".into());
    }
    let private = match url.host() {
        None => return Err("the URL has no host".into()),
        Some(Host::Ipv4(ip)) => !crate::domains::is_public(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => !crate::domains::is_public(IpAddr::V6(ip)),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if private && !allow_private {
        return Err(
            "the target is not a public address (HOSTING_WEBHOOK_ALLOW_PRIVATE allows it)".into(),
        );
    }
    Ok(())
}

/// The address to connect to for `url`: its literal address, or the first address its
/// name resolves to, refused when not public (unless allowed).
pub async fn resolve(url: &Url, allow_private: bool) -> Result<SocketAddr, String> {
    check_url(url, allow_private)?;
    let host = url.host_str().ok_or("the URL has no host")?;
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("resolving {host} failed: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|addr| allow_private || crate::domains::is_public(addr.ip()))
        .copied()
        .ok_or_else(|| format!("{host} resolves to no public address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> Url {
        Url::parse(raw).expect("url")
    }

    #[test]
    fn private_and_odd_targets_are_refused_unless_allowed() {
        for refused in [
            "http://127.0.0.1:8080/hook",
            "http://10.0.0.5/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://localhost:3000/",
        ] {
            assert!(check_url(&url(refused), false).is_err(), "{refused}");
            assert!(check_url(&url(refused), true).is_ok(), "{refused}");
        }
        for never in [
            "ftp://example.com/",
            "http://user:pw@example.com/",
            "file:///etc/passwd",
        ] {
            assert!(check_url(&url(never), true).is_err(), "{never}");
        }
        assert!(check_url(&url("https://hooks.example.com/x"), false).is_ok());
    }

    #[tokio::test]
    async fn a_name_is_refused_when_it_resolves_privately() {
        let refused = resolve(&url("http://127.0.0.1:9/"), false).await;
        assert!(refused.is_err());
        let allowed = resolve(&url("http://127.0.0.1:9/"), true).await;
        assert_eq!(allowed, Ok(SocketAddr::from(([127, 0, 0, 1], 9))));
    }
}
