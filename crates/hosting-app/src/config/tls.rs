//! HTTPS served by the app itself (no HAProxy in front): the TLS listener, the
//! platform's own certificate files, how often certificates are reloaded and HSTS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::ExposeSecret;

use super::error::{ConfigError, ConfigErrors, Needed, Problems, Setting, Value};
use super::secret::Secret;

/// The TLS listener's settings; all off by default (plain HTTP behind a proxy).
#[derive(Debug, Clone, Args)]
pub struct Tls {
    /// Address of the HTTPS listener (sites, API, dashboard over TLS; HTTP/2 and HTTP/1.1),
    /// e.g. `0.0.0.0:443`; unset = no TLS in the app. Once a name has a certificate, the
    /// plain listener redirects it here (except ACME and domain-check paths).
    #[arg(long, env = "HOSTING_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,

    /// PEM file with the platform's certificate chain (leaf first), served for the
    /// platform's names and for any name that has no certificate of its own; with
    /// HOSTING_TLS_KEY_FILE. Reloaded when it changes.
    #[arg(long, env = "HOSTING_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM file with the private key of HOSTING_TLS_CERT_FILE.
    #[arg(long, env = "HOSTING_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// Seconds between reloads of the certificates the TLS listener serves (from the
    /// database, and the platform files if they changed); a certificate this replica
    /// issues is loaded at once.
    #[arg(long, env = "HOSTING_TLS_RELOAD_INTERVAL", default_value = "30", value_parser = super::duration::parse)]
    pub tls_reload_interval: Duration,

    /// HSTS max-age in seconds sent with the control host's HTTPS responses; 0 = no
    /// Strict-Transport-Security header (sites can set their own in `_headers`).
    #[arg(long, env = "HOSTING_TLS_HSTS", default_value = "0", value_parser = super::duration::parse)]
    pub tls_hsts: Duration,

    /// `IP:PORT` of the DNS server that takes RFC 2136 updates for the base domain's zone:
    /// the platform then orders `*.<base-domain>` and the control host by DNS-01 from
    /// HOSTING_ACME_DIRECTORY, renews it like the others and serves it as the platform
    /// certificate (instead of HOSTING_TLS_CERT_FILE), on the TLS listener and through the
    /// HAProxy installer. Kept in the database: in cluster mode one replica orders it.
    #[arg(long, env = "HOSTING_DNS_UPDATE_SERVER")]
    pub dns_update_server: Option<SocketAddr>,

    /// The zone the updates go to; the base domain when unset.
    #[arg(long, env = "HOSTING_DNS_UPDATE_ZONE")]
    pub dns_update_zone: Option<String>,

    /// The TSIG key of the updates as `algorithm:name:base64-secret` (nsupdate's `-y`
    /// form, e.g. `hmac-sha256:acme-update:...`).
    #[arg(long, env = "HOSTING_DNS_UPDATE_KEY", hide_env_values = true)]
    pub dns_update_key: Option<Secret>,

    /// File holding HOSTING_DNS_UPDATE_KEY (a secret); wins over it.
    #[arg(long, env = "HOSTING_DNS_UPDATE_KEY_FILE")]
    pub dns_update_key_file: Option<PathBuf>,
}

/// A TSIG key as `algorithm:name:secret`.
pub struct TsigKey {
    pub algorithm: String,
    pub name: String,
    pub secret: zeroize::Zeroizing<Vec<u8>>,
}

impl Tls {
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        let (cert, key) = (
            Setting("HOSTING_TLS_CERT_FILE"),
            Setting("HOSTING_TLS_KEY_FILE"),
        );
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(path), None) => problems.push(ConfigError::Needs {
                setting: cert,
                value: Value::path(path),
                needed: Needed::All(vec![key]),
                reason: "the two go together",
            }),
            (None, Some(path)) => problems.push(ConfigError::Needs {
                setting: key,
                value: Value::path(path),
                needed: Needed::All(vec![cert]),
                reason: "the two go together",
            }),
            _ => {}
        }
        if let (Some(path), None) = (&self.tls_cert_file, self.tls_listen) {
            problems.push(ConfigError::Needs {
                setting: cert,
                value: Value::path(path),
                needed: Needed::All(vec![Setting("HOSTING_TLS_LISTEN")]),
                reason: "the listener that serves it",
            });
        }
        if let Some(server) = self.dns_update_server {
            let setting = Setting("HOSTING_DNS_UPDATE_SERVER");
            if self.tls_cert_file.is_some() {
                problems.push(ConfigError::Excludes {
                    setting,
                    value: Value::shown(server),
                    other: cert,
                    reason: "a platform certificate by DNS-01, or one from a file",
                });
            }
            problems.merge(self.dns_update_key());
        }
        problems.check(self.tls_reload_interval.is_zero(), || {
            ConfigError::invalid(
                Setting("HOSTING_TLS_RELOAD_INTERVAL"),
                Value::duration(self.tls_reload_interval),
                "must be greater than zero",
            )
        });
        problems.finish()
    }
}

impl Tls {
    /// Reads `HOSTING_DNS_UPDATE_KEY_FILE` into the key.
    pub fn load_secret_files(&mut self) -> Result<(), ConfigErrors> {
        if let Some(path) = &self.dns_update_key_file {
            let key = super::read_secret_file(Setting("HOSTING_DNS_UPDATE_KEY_FILE"), path)?;
            self.dns_update_key = Some(Secret::from(key));
        }
        Ok(())
    }

    /// The TSIG key of the DNS updates. The base64 decoder's error is not kept as the
    /// source: it quotes a character of the key.
    pub fn dns_update_key(&self) -> Result<TsigKey, ConfigError> {
        use base64::Engine;
        let setting = Setting("HOSTING_DNS_UPDATE_KEY");
        let Some(text) = &self.dns_update_key else {
            return Err(ConfigError::Needs {
                setting: Setting("HOSTING_DNS_UPDATE_SERVER"),
                value: self
                    .dns_update_server
                    .map(Value::shown)
                    .unwrap_or_else(|| Value::text("")),
                needed: Needed::Any(vec![setting, Setting("HOSTING_DNS_UPDATE_KEY_FILE")]),
                reason: "the TSIG key the updates are signed with",
            });
        };
        let mut parts = text.expose_secret().trim().splitn(3, ':');
        let (Some(algorithm), Some(name), Some(secret)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(ConfigError::invalid(
                setting,
                Value::secret(text),
                "is not algorithm:name:base64-secret",
            ));
        };
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret)
            .map_err(|_| {
                ConfigError::invalid(setting, Value::secret(text), "its secret is not base64")
            })?;
        Ok(TsigKey {
            algorithm: algorithm.to_owned(),
            name: name.to_owned(),
            secret: zeroize::Zeroizing::new(secret),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::config::{Cli, Config};

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["hosting-app"];
        all.extend_from_slice(args);
        Cli::parse_from(all).config
    }

    #[test]
    fn the_platform_files_go_together_and_need_the_listener() {
        let only_cert = config(&["--tls-listen", "127.0.0.1:0", "--tls-cert-file", "a.pem"]);
        assert!(only_cert.validate().is_err());
        let no_listener = config(&["--tls-cert-file", "a.pem", "--tls-key-file", "a.key"]);
        assert!(no_listener.validate().is_err());
        let both = config(&[
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert-file",
            "a.pem",
            "--tls-key-file",
            "a.key",
        ]);
        both.validate().expect("valid");
    }

    #[test]
    fn a_dns_update_key_is_algorithm_name_and_base64_secret() {
        let dns01 = |key: &str| {
            config(&[
                "--tls-listen",
                "127.0.0.1:0",
                "--acme-directory",
                "https://ca.example/dir",
                "--dns-update-server",
                "127.0.0.1:53",
                "--dns-update-key",
                key,
            ])
        };
        let good = dns01("hmac-sha256:acme-update:c2VjcmV0LXNlY3JldC1zZWNyZXQ=");
        good.validate().expect("valid");
        let key = good.tls.dns_update_key().expect("key");
        assert_eq!(
            (key.algorithm.as_str(), key.name.as_str()),
            ("hmac-sha256", "acme-update")
        );
        assert_eq!(key.secret.as_slice(), b"secret-secret-secret");
        assert!(
            dns01("acme-update:c2VjcmV0").validate().is_err(),
            "no algorithm"
        );
        assert!(dns01("hmac-sha256:acme-update:not base64!")
            .validate()
            .is_err());
        // The secret never shows in the logged view of the settings.
        assert!(!format!("{good:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn dns01_needs_acme_and_the_listener_and_excludes_a_certificate_file() {
        let without_acme = config(&[
            "--tls-listen",
            "127.0.0.1:0",
            "--dns-update-server",
            "127.0.0.1:53",
            "--dns-update-key",
            "hmac-sha256:k:c2VjcmV0",
        ]);
        assert!(without_acme.validate().is_err());
        let with_file = config(&[
            "--tls-listen",
            "127.0.0.1:0",
            "--acme-directory",
            "https://ca.example/dir",
            "--dns-update-server",
            "127.0.0.1:53",
            "--dns-update-key",
            "hmac-sha256:k:c2VjcmV0",
            "--tls-cert-file",
            "a.pem",
            "--tls-key-file",
            "a.key",
        ]);
        assert!(with_file.validate().is_err());
    }
}
