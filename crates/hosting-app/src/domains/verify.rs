//! The two ownership checks. Either one passing is enough.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;

use crate::config::Config;

/// Path prefix under which the platform answers HTTP verification tokens on any host.
pub const HTTP_VERIFY_PREFIX: &str = "/.well-known/hosting-verify/";

/// `_hosting-verify.<domain>`: where the TXT record of a claim goes.
pub fn txt_name(domain: &str) -> String {
    format!("_hosting-verify.{domain}")
}

/// Time allowed to each check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest body read from an HTTP-token response.
const MAX_TOKEN_BODY: usize = 1024;

/// `Ok(method)` when the TXT record or the HTTP token proves control of `domain`,
/// else why neither did.
pub async fn check_ownership(
    config: &Config,
    domain: &str,
    token: &str,
) -> Result<&'static str, String> {
    let dns = check_txt(config, domain, token).await;
    if dns.is_ok() {
        return Ok("DNS TXT record");
    }
    let http = check_http(config, domain, token).await;
    if http.is_ok() {
        return Ok("HTTP token");
    }
    Err(format!(
        "{}; {}",
        dns.err().unwrap_or_default(),
        http.err().unwrap_or_default()
    ))
}

fn resolver(config: &Config) -> Result<TokioResolver, String> {
    let builder = match config.domains.dns_resolver {
        Some(addr) => {
            let servers = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], servers),
                TokioConnectionProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio()
            .map_err(|e| format!("no DNS resolver configured: {e}"))?,
    };
    let mut builder = builder;
    // A check must see the record the owner just created, not a cached absence.
    builder.options_mut().cache_size = 0;
    builder.options_mut().timeout = Duration::from_secs(3);
    Ok(builder.build())
}

async fn check_txt(config: &Config, domain: &str, token: &str) -> Result<(), String> {
    let name = format!("{}.", txt_name(domain));
    let resolver = resolver(config)?;
    let lookup = match tokio::time::timeout(CHECK_TIMEOUT, resolver.txt_lookup(name.as_str())).await
    {
        Err(_) => return Err(format!("DNS: looking up TXT {name} timed out")),
        Ok(Err(e)) if e.is_no_records_found() => {
            return Err(format!("DNS: no TXT record at {}", txt_name(domain)))
        }
        Ok(Err(e)) => return Err(format!("DNS: looking up TXT {name} failed: {e}")),
        Ok(Ok(lookup)) => lookup,
    };
    let found = lookup.iter().any(|txt| {
        let value: Vec<u8> = txt
            .txt_data()
            .iter()
            .flat_map(|part| part.iter().copied())
            .collect();
        value == token.as_bytes()
    });
    if found {
        Ok(())
    } else {
        Err(format!(
            "DNS: the TXT record at {} does not hold the expected value",
            txt_name(domain)
        ))
    }
}

/// Where the HTTP check connects: the configured address (port 0: this app's own
/// listener), or the domain's own DNS resolution.
fn http_override(config: &Config) -> Option<SocketAddr> {
    let addr = config.domains.verify_http_addr?;
    if addr.port() != 0 {
        return Some(addr);
    }
    let own = config.listeners.listen;
    let ip = if own.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        own.ip()
    };
    Some(SocketAddr::new(ip, own.port()))
}

async fn check_http(config: &Config, domain: &str, token: &str) -> Result<(), String> {
    let url = format!("http://{domain}{HTTP_VERIFY_PREFIX}{token}");
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CHECK_TIMEOUT)
        .user_agent("hosting-domain-verifier");
    let addr = match http_override(config) {
        Some(addr) => addr,
        None => public_address(config, domain).await?,
    };
    // The connection goes to the address checked above, not to a second resolution.
    builder = builder.resolve(domain, addr);
    let client = builder
        .build()
        .map_err(|e| format!("HTTP: building the client failed: {e}"))?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("HTTP: GET {url} failed: {}", error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(format!("HTTP: GET {url} answered {}", response.status()));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("HTTP: reading {url} failed: {e}"))?;
    let body = &body[..body.len().min(MAX_TOKEN_BODY)];
    if String::from_utf8_lossy(body).trim() == token {
        Ok(())
    } else {
        Err(format!("HTTP: {url} did not answer the expected token"))
    }
}

/// The domain's first public address, port 80.
///
/// SECURITY: the check is a request the platform makes on a tenant's behalf; a domain
/// resolving to loopback or a private network must not turn it into a probe of the
/// platform's internal services.
async fn public_address(config: &Config, domain: &str) -> Result<SocketAddr, String> {
    let resolver = resolver(config)?;
    let fqdn = format!("{domain}.");
    let ips = match tokio::time::timeout(CHECK_TIMEOUT, resolver.lookup_ip(fqdn.as_str())).await {
        Err(_) => return Err(format!("HTTP: resolving {domain} timed out")),
        Ok(Err(e)) if e.is_no_records_found() => {
            return Err(format!("HTTP: {domain} has no A or AAAA record"))
        }
        Ok(Err(e)) => return Err(format!("HTTP: resolving {domain} failed: {e}")),
        Ok(Ok(ips)) => ips,
    };
    ips.iter()
        .find(|ip| is_public(*ip))
        .map(|ip| SocketAddr::new(ip, 80))
        .ok_or_else(|| format!("HTTP: {domain} resolves to no public address"))
}

pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| !is_public(IpAddr::V4(v4))))
        }
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_probed() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = private.parse().expect("ip");
            assert!(!is_public(ip), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1"] {
            let ip: IpAddr = public.parse().expect("ip");
            assert!(is_public(ip), "{public}");
        }
    }
}
