//! The platform certificate by DNS-01 (`HOSTING_DNS_UPDATE_SERVER`): `*.<base-domain>`,
//! the base domain and the control host, ordered from the ACME CA with the answers
//! published by RFC 2136 updates, kept as files in the data folder (the key 0600) so a
//! restart serves it at once, renewed like the custom domains' certificates and served
//! as the platform certificate as soon as it is issued.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::certified::Served;
use super::reload::PlatformFiles;
use super::resolver::Certificates;
use crate::certs::acme::{AcmeClient, OrderError, Stage};
use crate::certs::dns01::DnsUpdater;
use crate::certs::seal::Sealer;
use crate::certs::{retry_after, x509};
use crate::config::Config;
use crate::state::App;

/// The names of the platform certificate: the wildcard, the base domain, and the
/// control host when the wildcard does not cover it.
pub fn platform_names(config: &Config) -> Vec<String> {
    let base = config.public.base_domain.to_ascii_lowercase();
    let mut names = vec![format!("*.{base}"), base.clone()];
    let control = config.control_host();
    let covered = control == base
        || control
            .split_once('.')
            .is_some_and(|(_, parent)| parent == base);
    if !covered {
        names.push(control);
    }
    names
}

/// Where the issued certificate is kept: `<data dir>/tls/platform.{pem,key}`.
pub fn files(data_dir: &Path) -> PlatformFiles {
    let dir = data_dir.join("tls");
    PlatformFiles {
        cert: dir.join("platform.pem"),
        key: dir.join("platform.key"),
    }
}

/// The DNS updater the settings describe (checked at start).
pub fn updater(config: &Config) -> Result<Option<DnsUpdater>, String> {
    let Some(server) = config.tls.dns_update_server else {
        return Ok(None);
    };
    let key = config.tls.dns_update_key()?;
    let zone = config
        .tls
        .dns_update_zone
        .clone()
        .unwrap_or_else(|| config.public.base_domain.clone());
    DnsUpdater::new(
        server,
        &zone,
        &key.name,
        &key.algorithm,
        key.secret.to_vec(),
    )
    .map(Some)
    .map_err(|e| format!("HOSTING_DNS_UPDATE_*: {e}"))
}

/// Orders the platform certificate whenever it is missing or due, forever.
pub async fn run(
    app: Arc<App>,
    sealer: Arc<Sealer>,
    certificates: Arc<Certificates>,
    dns: Arc<DnsUpdater>,
) {
    let names = platform_names(&app.config);
    let files = files(&app.config.storage.data_dir);
    let mut failures = 0u32;
    loop {
        let due = certificates.platform().map(|served| {
            x509::renewal_time(
                served.not_before,
                served.not_after,
                app.config.acme.acme_renew_before,
            )
        });
        let now = Utc::now();
        let wait = match due {
            Some(due) if due > now => (due - now)
                .to_std()
                .unwrap_or_default()
                .min(app.config.acme.acme_interval),
            _ => match order(&app, &sealer, &dns, &names, &files).await {
                Ok(served) => {
                    failures = 0;
                    tracing::info!(certificate.serial = %served.serial, certificate.not_after = %served.not_after, names = ?names, "platform certificate issued (DNS-01)");
                    certificates.set_platform(Some(served));
                    app.config.acme.acme_interval
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = retry_after(app.config.acme.acme_retry_base, failures);
                    tracing::warn!(error = %e, failures, retry_in_seconds = wait.as_secs(), "ordering the platform certificate failed; the current one, if any, stays in use");
                    wait
                }
            },
        };
        tokio::time::sleep(wait.max(Duration::from_secs(1))).await;
    }
}

async fn order(
    app: &App,
    sealer: &Sealer,
    dns: &DnsUpdater,
    names: &[String],
    files: &PlatformFiles,
) -> Result<Served, OrderError> {
    let client = AcmeClient::connect(&app.config, app.store.as_ref(), sealer).await?;
    let new = client.order_dns01(names, dns).await?;
    let store = |e: &dyn std::fmt::Display| OrderError::new(Stage::Store, e);
    write_private(&files.key, new.key_pem.as_bytes()).map_err(|e| store(&e))?;
    write_private(&files.cert, new.chain_pem.as_bytes()).map_err(|e| store(&e))?;
    files.load().map_err(|e| store(&e))
}

/// Writes `bytes` to `path` through a 0600 temporary file renamed into place, so a
/// reader (or a crash) never sees half a file.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn the_control_host_is_added_only_when_the_wildcard_does_not_cover_it() {
        let mut config = crate::config::Cli::parse_from(["hosting-app"]).config;
        config.public.base_domain = "hosting.test".into();
        assert_eq!(platform_names(&config), ["*.hosting.test", "hosting.test"]);
        config.public.control_host = Some("app.hosting.test".into());
        assert_eq!(platform_names(&config), ["*.hosting.test", "hosting.test"]);
        config.public.control_host = Some("admin.example.org".into());
        assert_eq!(
            platform_names(&config),
            ["*.hosting.test", "hosting.test", "admin.example.org"]
        );
    }
}
