//! The platform certificate by DNS-01 (`HOSTING_DNS_UPDATE_SERVER`): `*.<base-domain>`,
//! the base domain and the control host, ordered from the ACME CA with the answers
//! published by RFC 2136 updates, and renewed like the custom domains' certificates.
//!
//! It lives in the shared store (chain and sealed key, `platform_certificates`), so in
//! cluster mode one replica orders it, under a lease, and every replica serves it: its
//! TLS listener through the reloader (`reload.rs`), HAProxy through the installer
//! (`certs::desired_certificates`). Embedded mode also keeps it as files in the data
//! folder (the key 0600): a cache the TLS listener serves at once on a restart, and what
//! a server from before the store kept it in (imported on the first start).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::certified::{self, Served};
use super::platform_files::PlatformFiles;
use crate::certs::acme::{AcmeClient, OrderError, Stage};
use crate::certs::backoff::retry_after;
use crate::certs::dns01::DnsUpdater;
use crate::certs::seal::{SealError, Sealer};
use crate::certs::stopping::{stopped, STOPPING_ORDER_GRACE};
use crate::certs::x509;
use crate::config::Config;
use crate::state::App;
use crate::store::{CertificateFailure, IssuedCertificate, PlatformCertificateRecord};

/// A replica holds the platform order this long at most (then another one may retry).
const LEASE: Duration = Duration::from_secs(600);

/// Longest an order may take (the DNS answers propagate, the CA validates and signs).
const ORDER_TIMEOUT: Duration = Duration::from_secs(300);

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
    let key = config.tls.dns_update_key().map_err(|e| e.to_string())?;
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

/// The stored row's key: the names, space-separated, as ordered.
pub fn names_key(config: &Config) -> String {
    platform_names(config).join(" ")
}

/// The sealing context of the platform certificate's private key.
fn key_context(key: &str) -> String {
    format!("platform-certificate:{key}")
}

/// Opens a stored platform certificate and checks it as the listener would serve it.
pub fn open(record: &PlatformCertificateRecord, sealer: &Sealer) -> Result<Served, String> {
    let (Some(chain), Some(sealed)) = (&record.chain_pem, &record.key_sealed) else {
        return Err("not issued yet".into());
    };
    let key = sealer
        .open(&key_context(&record.names), sealed)
        .map_err(|e| e.to_string())?;
    certified::load(chain.as_bytes(), &key, Utc::now()).map_err(|e| e.to_string())
}

/// The stored chain followed by its opened private key, PEM (what HAProxy loads), and
/// the leaf's serial; `None` before the first order succeeds.
pub fn bundle(
    record: &PlatformCertificateRecord,
    sealer: &Sealer,
) -> Result<Option<(zeroize::Zeroizing<String>, String)>, SealError> {
    let (Some(chain), Some(sealed), Some(serial)) =
        (&record.chain_pem, &record.key_sealed, &record.serial)
    else {
        return Ok(None);
    };
    let key = sealer.open(&key_context(&record.names), sealed)?;
    let key = std::str::from_utf8(&key).map_err(|_| SealError::Open)?;
    let mut pem = zeroize::Zeroizing::new(String::with_capacity(chain.len() + key.len() + 1));
    pem.push_str(chain.trim_end());
    pem.push('\n');
    pem.push_str(key);
    Ok(Some((pem, serial.clone())))
}

/// Orders the platform certificate whenever the stored one is missing or due and no
/// other replica is ordering it, until `stopping` turns true. An order under way then
/// gets [`STOPPING_ORDER_GRACE`] to finish; past that it is abandoned and its lease given
/// back, so another replica orders at once instead of after the lease runs out.
pub async fn run(
    app: Arc<App>,
    sealer: Arc<Sealer>,
    dns: Arc<DnsUpdater>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let names = platform_names(&app.config);
    let key = names_key(&app.config);
    if !app.config.is_cluster() {
        import_cached(&app, &sealer, &key).await;
    }
    loop {
        let wait = round(&app, &sealer, &dns, &names, &key, &mut stopping).await;
        tokio::select! {
            () = tokio::time::sleep(wait.max(Duration::from_secs(1))) => {}
            () = stopped(&mut stopping) => return,
        }
    }
}

/// One look at the stored certificate, and an order if it is due; returns how long to
/// wait before the next look.
async fn round(
    app: &App,
    sealer: &Sealer,
    dns: &DnsUpdater,
    names: &[String],
    key: &str,
    stopping: &mut tokio::sync::watch::Receiver<bool>,
) -> Duration {
    let interval = app.config.acme.acme_interval;
    let now = Utc::now();
    let stored = match app.store.platform_certificate(key).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(error = %e, "reading the platform certificate failed");
            return interval;
        }
    };
    if let Some(due) = stored.as_ref().map(|r| r.next_attempt_at) {
        if due > now {
            return (due - now).to_std().unwrap_or_default().min(interval);
        }
    }
    // A replica shutting down (not ready any more, which comes before `stopping`) starts
    // no new order.
    if !app.is_accepting() {
        return interval;
    }
    let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
    match app.store.lease_platform_certificate(key, now, until).await {
        Ok(true) => {}
        // Another replica is ordering it; its reloader and installer pick it up.
        Ok(false) => return interval,
        Err(e) => {
            tracing::warn!(error = %e, "taking the platform certificate's lease failed");
            return interval;
        }
    }
    let ordered = tokio::time::timeout(ORDER_TIMEOUT, order(app, sealer, dns, names, key));
    tokio::pin!(ordered);
    let ordered = tokio::select! {
        ordered = &mut ordered => ordered,
        () = stopped(stopping) => match tokio::time::timeout(STOPPING_ORDER_GRACE, &mut ordered).await {
            Ok(ordered) => ordered,
            Err(_) => {
                if let Err(e) = app.store.release_platform_certificate_lease(key, until).await {
                    tracing::warn!(error = %e, "giving back the platform certificate's lease failed");
                }
                tracing::info!("stopping: platform certificate order abandoned, lease given back");
                return interval;
            }
        },
    };
    let ordered =
        ordered.unwrap_or_else(|_| Err(OrderError::new(Stage::Finalize, "the order timed out")));
    match ordered {
        Ok(issued) => {
            metrics::counter!(crate::metrics::ACME_ORDERS_TOTAL, "result" => "issued").increment(1);
            tracing::info!(certificate.serial = %issued.serial, certificate.not_after = %issued.not_after, names = ?names, "platform certificate issued (DNS-01)");
            // This replica's reloader and installer take it at once.
            app.certificates_changed.send_replace(());
            interval
        }
        Err(e) => {
            metrics::counter!(crate::metrics::ACME_ORDERS_TOTAL, "result" => "failed").increment(1);
            metrics::counter!(crate::metrics::ACME_FAILURES_TOTAL, "stage" => e.stage.as_str())
                .increment(1);
            let failures = stored.map_or(0, |r| r.failures).saturating_add(1);
            let wait = retry_after(app.config.acme.acme_retry_base, failures);
            tracing::warn!(error = %e, failures, retry_in_seconds = wait.as_secs(), "ordering the platform certificate failed; the current one, if any, stays in use");
            let failure = CertificateFailure {
                error: e.to_string(),
                failures,
                next_attempt_at: Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
            };
            if let Err(e) = app
                .store
                .record_platform_certificate_failure(key, &failure)
                .await
            {
                tracing::warn!(error = %e, "recording the platform certificate's failure failed");
            }
            wait
        }
    }
}

/// One order, stored (and cached as files in embedded mode) when it succeeds.
async fn order(
    app: &App,
    sealer: &Sealer,
    dns: &DnsUpdater,
    names: &[String],
    key: &str,
) -> Result<IssuedCertificate, OrderError> {
    let client = AcmeClient::connect(&app.config, app.store.as_ref(), sealer).await?;
    let new = client.order_dns01(names, dns).await?;
    let stage = |e: &dyn std::fmt::Display| OrderError::new(Stage::Store, e);
    let issued =
        sealed(app, sealer, key, &new.chain_pem, new.key_pem.as_bytes()).map_err(|e| stage(&e))?;
    app.store
        .record_platform_certificate_issued(key, &issued)
        .await
        .map_err(|e| stage(&e))?;
    if !app.config.is_cluster() {
        let files = files(&app.config.storage.data_dir);
        // The store has it: a cache that cannot be written only slows the next start.
        let cached = write_private(&files.key, new.key_pem.as_bytes())
            .and_then(|()| write_private(&files.cert, new.chain_pem.as_bytes()));
        if let Err(e) = cached {
            tracing::warn!(error = %e, "caching the platform certificate in the data folder failed");
        }
    }
    Ok(issued)
}

/// The row to store for a chain and its key: the key sealed, renewal time from the leaf.
fn sealed(
    app: &App,
    sealer: &Sealer,
    key: &str,
    chain_pem: &str,
    key_pem: &[u8],
) -> Result<IssuedCertificate, String> {
    let leaf = x509::leaf_info(chain_pem).map_err(|e| e.to_string())?;
    let key_sealed = sealer
        .seal(&key_context(key), key_pem)
        .map_err(|e| e.to_string())?;
    Ok(IssuedCertificate {
        chain_pem: chain_pem.to_owned(),
        key_sealed,
        serial: leaf.serial,
        issuer: leaf.issuer,
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        issued_at: Utc::now(),
        next_attempt_at: x509::renewal_time(
            leaf.not_before,
            leaf.not_after,
            app.config.acme.acme_renew_before,
        ),
    })
}

/// A server from before the store kept the certificate as files only: stores them, so
/// it is not ordered again (embedded mode, nothing stored yet, the files still good).
async fn import_cached(app: &App, sealer: &Sealer, key: &str) {
    if !matches!(app.store.platform_certificate(key).await, Ok(None)) {
        return;
    }
    let files = files(&app.config.storage.data_dir);
    let (Ok(served), Ok(chain), Ok(key_pem)) = (
        files.load(),
        std::fs::read_to_string(&files.cert),
        std::fs::read(&files.key).map(zeroize::Zeroizing::new),
    ) else {
        return;
    };
    if !platform_names(&app.config)
        .iter()
        .all(|name| served.names.contains(name))
    {
        return;
    }
    let now = Utc::now();
    let imported = match sealed(app, sealer, key, &chain, &key_pem) {
        Ok(issued) => issued,
        Err(e) => {
            tracing::warn!(error = %e, "the cached platform certificate is not imported");
            return;
        }
    };
    let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
    let stored = match app.store.lease_platform_certificate(key, now, until).await {
        Ok(true) => app
            .store
            .record_platform_certificate_issued(key, &imported)
            .await
            .map_err(|e| e.to_string()),
        Ok(false) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    match stored {
        Ok(()) => {
            tracing::info!(certificate.serial = %imported.serial, "the cached platform certificate is now kept in the database")
        }
        Err(e) => tracing::warn!(error = %e, "importing the cached platform certificate failed"),
    }
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
