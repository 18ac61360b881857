//! Keeping [`Certificates`] (and the sites' HSTS table) current without a restart: the
//! custom domains' certificates
//! from the database (at once when this replica issued one, and every
//! `HOSTING_TLS_RELOAD_INTERVAL` for the other replicas' orders), and the platform's
//! files when they change on disk.
//!
//! A record or file that does not load changes nothing that is served: the certificate
//! already in use stays until a good one replaces it.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;

use super::certified;
use super::platform_files::PlatformFiles;
use super::resolver::Certificates;
use crate::certs::seal::Sealer;
use crate::state::App;

/// Reloads forever: the domains' certificates, the platform certificate from the store
/// when it is ordered by DNS-01 (`stored_platform`), and, if configured, the platform
/// files (already loaded once at start, when a bad file stopped the start).
pub async fn run(
    app: Arc<App>,
    sealer: Option<Arc<Sealer>>,
    certificates: Arc<Certificates>,
    platform: Option<PlatformFiles>,
    stored_platform: bool,
    hsts: Arc<super::hsts::HstsTable>,
) {
    let interval = app.config.tls.tls_reload_interval;
    let mut changed = app.certificates_changed.subscribe();
    let mut stamp = platform.as_ref().and_then(PlatformFiles::stamp);
    loop {
        reload_domains(&app, sealer.as_deref(), &certificates).await;
        hsts.reload(&app).await;
        if let (true, Some(sealer)) = (stored_platform, &sealer) {
            reload_stored_platform(&app, sealer, &certificates).await;
        }
        if let Some(files) = &platform {
            let now = files.stamp();
            if now != stamp {
                stamp = now;
                match files.load() {
                    Ok(served) => {
                        tracing::info!(certificate.serial = %served.serial, certificate.not_after = %served.not_after, "platform certificate reloaded");
                        certificates.set_platform(Some(served));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the changed platform certificate is not used; the previous one stays")
                    }
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = changed.changed() => {}
        }
    }
}

/// Serves the stored platform certificate (DNS-01) when its serial differs from the one
/// served; one that does not load leaves the served one in place.
pub async fn reload_stored_platform(app: &App, sealer: &Sealer, certificates: &Certificates) {
    let key = super::wildcard::names_key(&app.config);
    let record = match app.store.platform_certificate(&key).await {
        Ok(Some(record)) => record,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "reading the platform certificate failed; the served one stays");
            return;
        }
    };
    let served = certificates.platform();
    if record.serial.is_none() || served.as_ref().map(|s| &s.serial) == record.serial.as_ref() {
        return;
    }
    match super::wildcard::open(&record, sealer) {
        Ok(served) => {
            tracing::info!(certificate.serial = %served.serial, certificate.not_after = %served.not_after, "serving the stored platform certificate");
            certificates.set_platform(Some(served));
        }
        Err(error) => {
            tracing::warn!(%error, "the stored platform certificate does not load; the served one, if any, stays")
        }
    }
}

/// One pass over the database: certificates whose serial changed are opened and
/// loaded, the others kept as they are; domains no longer served are dropped.
pub async fn reload_domains(app: &App, sealer: Option<&Sealer>, certificates: &Certificates) {
    let records = match app.store.served_certificates().await {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!(error = %e, "reading the certificates to serve failed; the loaded ones stay");
            return;
        }
    };
    let current = certificates.domains();
    let mut next = HashMap::with_capacity(records.len());
    let mut unopened = 0usize;
    for record in records {
        let (Some(chain), Some(sealed), Some(serial)) =
            (&record.chain_pem, &record.key_sealed, &record.serial)
        else {
            continue;
        };
        let kept = current.get(&record.domain);
        if let Some(served) = kept.filter(|served| &served.serial == serial) {
            next.insert(record.domain, served.clone());
            continue;
        }
        let Some(sealer) = sealer else {
            unopened += 1;
            continue;
        };
        let loaded = sealer
            .open(&crate::certs::seal::key_context(&record.domain), sealed)
            .map_err(|e| e.to_string())
            .and_then(|key| {
                certified::load(chain.as_bytes(), &key, Utc::now()).map_err(|e| e.to_string())
            });
        match loaded {
            Ok(served) => {
                tracing::info!(domain.name = %record.domain, certificate.serial = %served.serial, "serving a new certificate");
                next.insert(record.domain, Arc::new(served));
            }
            Err(error) => {
                tracing::warn!(domain.name = %record.domain, %error, "a stored certificate does not load; the one served before, if any, stays");
                if let Some(served) = kept {
                    next.insert(record.domain, served.clone());
                }
            }
        }
    }
    if unopened > 0 {
        tracing::warn!(certificates = unopened, "certificates are issued but HOSTING_CERT_ENCRYPTION_KEY_FILE is not set here; they are not served");
    }
    certificates.set_domains(next);
}
