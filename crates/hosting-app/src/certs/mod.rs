//! Custom-domain certificates: ordering them from an ACME CA once a domain is verified,
//! renewing them ahead of expiry (with backoff on failure), keeping them sealed in the
//! database, and installing them into HAProxy.
//!
//! Two loops, both optional:
//! - the issuer (every replica when `HOSTING_ACME_DIRECTORY` is set): takes a per-domain
//!   lease in the database, orders with HTTP-01, stores the chain and the sealed key;
//! - the installer (one replica per HAProxy, `HOSTING_HAPROXY_RUNTIME_API` +
//!   `HOSTING_CERT_DIR`): makes HAProxy's files and runtime state match the database.
//!
//! A failed renewal changes nothing that is served: the current certificate stays in the
//! database and in HAProxy until a new one replaces it.

pub mod acme;
pub mod backoff;
pub mod challenge;
pub mod dns01;
pub mod gauges;
pub mod haproxy;
pub mod install;
pub mod seal;
pub mod stopping;
pub mod x509;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hosting_api::{self as api, CertificateStatus};
use zeroize::Zeroizing;

use self::acme::{AcmeClient, OrderError, Stage};
use self::backoff::retry_after;
use self::install::{DesiredCertificate, Installer};
use self::seal::{key_context, Sealer};
use self::stopping::{stopped, STOPPING_ORDER_GRACE};
use crate::state::App;
use crate::store::{CertificateFailure, CertificateRecord, DueCertificate, IssuedCertificate};

/// An issuer holds a domain's order this long at most (then another replica may retry).
const LEASE: Duration = Duration::from_secs(600);

/// Longest an order may take (the CA validates and signs meanwhile).
const ORDER_TIMEOUT: Duration = Duration::from_secs(300);

/// Orders started per issuer round.
const BATCH: u32 = 20;

/// Per-domain expiry series exported at most (the soonest to expire), so the label set
/// stays bounded however many domains there are.
const EXPIRY_SERIES_MAX: u32 = 500;

/// The key that seals private keys: the configured file, or in embedded mode one created
/// in the data folder. `None` when nothing here handles certificates.
pub fn open_sealer(config: &crate::config::Config) -> Result<Option<Arc<Sealer>>, seal::SealError> {
    if config.acme.acme_directory.is_none()
        && config.installer.settings().is_none()
        && config.tls.tls_listen.is_none()
    {
        return Ok(None);
    }
    let sealer = match &config.acme.cert_encryption_key_file {
        Some(path) => Sealer::from_key_file(path)?,
        // Replicas share no data folder: a key made here would open nothing of theirs.
        None if config.is_cluster() => return Ok(None),
        None => {
            Sealer::from_key_file_or_create(&config.storage.data_dir.join(seal::DEFAULT_KEY_FILE))?
        }
    };
    Ok(Some(Arc::new(sealer)))
}

/// The API's view of a stored certificate.
pub fn certificate_view(record: &CertificateRecord) -> api::Certificate {
    api::Certificate {
        status: record.status,
        serial: record.serial.clone(),
        issuer: record.issuer.clone(),
        not_before: record.not_before,
        not_after: record.not_after,
        issued_at: record.issued_at,
        failures: record.failures,
        last_error: record.last_error.clone(),
        next_attempt_at: Some(record.next_attempt_at),
    }
}

/// The view of a verified domain that has no certificate row yet (its order is due).
pub fn pending_view() -> api::Certificate {
    api::Certificate {
        status: CertificateStatus::Pending,
        serial: None,
        issuer: None,
        not_before: None,
        not_after: None,
        issued_at: None,
        failures: 0,
        last_error: None,
        next_attempt_at: None,
    }
}

async fn refresh_gauges(app: &App) {
    let (expiries, counts) = match (
        app.store.certificate_expiries(EXPIRY_SERIES_MAX).await,
        app.store.certificate_counts().await,
    ) {
        (Ok(expiries), Ok(counts)) => (expiries, counts),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "reading certificate figures failed");
            return;
        }
    };
    let mut text = String::new();
    text.push_str(&crate::metrics::CERTIFICATE_EXPIRY.exposition_header());
    for (domain, not_after) in &expiries {
        // Domain names are [a-z0-9.-] (validated), so they need no label escaping.
        let _ = writeln!(
            text,
            "hosting_certificate_expiry_timestamp_seconds{{domain=\"{domain}\"}} {}",
            not_after.timestamp()
        );
    }
    text.push_str(&crate::metrics::CERTIFICATES.exposition_header());
    for status in [
        CertificateStatus::Pending,
        CertificateStatus::Issued,
        CertificateStatus::Failed,
    ] {
        let count = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        let label = crate::store::certificate_status_str(status);
        let _ = writeln!(text, "hosting_certificates{{status=\"{label}\"}} {count}");
    }
    app.certificate_gauges.set(text);
}

/// Orders certificates that are due, forever (every `HOSTING_ACME_INTERVAL`).
///
/// Returns once `stopping` turns true. An order under way then gets
/// [`STOPPING_ORDER_GRACE`] to finish; past that it is abandoned and its lease given back,
/// so another replica orders at once instead of after the lease runs out.
pub async fn run_issuer(
    app: Arc<App>,
    sealer: Arc<Sealer>,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    let platform = match crate::tls::wildcard::updater(&app.config) {
        Ok(Some(dns)) => Some(tokio::spawn(crate::tls::wildcard::run(
            app.clone(),
            sealer.clone(),
            Arc::new(dns),
            stopping.clone(),
        ))),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "the platform certificate is not ordered");
            None
        }
    };
    issue_domain_certificates(&app, &sealer, stopping).await;
    // The platform order stops the same way (its lease given back) before the issuer counts
    // as stopped.
    if let Some(platform) = platform {
        let _ = platform.await;
    }
}

/// The custom domains' part of [`run_issuer`].
async fn issue_domain_certificates(
    app: &App,
    sealer: &Sealer,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let interval = app.config.acme.acme_interval;
    let mut client: Option<AcmeClient> = None;
    loop {
        refresh_gauges(app).await;
        let due = match app.store.certificates_due(Utc::now(), BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "listing certificates due failed");
                Vec::new()
            }
        };
        let attempted = !due.is_empty();
        for domain in due {
            // A replica shutting down (not ready any more, which comes before `stopping`)
            // starts no new order.
            if !app.is_accepting() {
                return;
            }
            let now = Utc::now();
            let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
            match app
                .store
                .lease_certificate(domain.domain_id, now, until)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(domain.name = %domain.domain, error = %e, "taking a certificate lease failed");
                    continue;
                }
            }
            let started = std::time::Instant::now();
            let order = order_renewing_a_lost_account(app, &mut client, sealer, &domain);
            tokio::pin!(order);
            let outcome = tokio::select! {
                outcome = &mut order => outcome,
                () = stopped(&mut stopping) => {
                    // Most orders take seconds: finish one that is nearly done (a certificate
                    // the CA issued and nobody stored would count against its limits).
                    match tokio::time::timeout(STOPPING_ORDER_GRACE, &mut order).await {
                        Ok(outcome) => {
                            finish_order(app, &domain, started, outcome).await;
                        }
                        Err(_) => {
                            if let Err(e) = app.store.release_certificate_lease(domain.domain_id, until).await {
                                tracing::warn!(domain.name = %domain.domain, error = %e, "giving back a certificate lease failed");
                            }
                            tracing::info!(domain.name = %domain.domain, "stopping: certificate order abandoned, lease given back");
                        }
                    }
                    return;
                }
            };
            finish_order(app, &domain, started, outcome).await;
        }
        if attempted {
            refresh_gauges(app).await;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stopped(&mut stopping) => return,
        }
    }
}

/// Counts and logs an order's outcome; a failure is recorded for the retry backoff.
async fn finish_order(
    app: &App,
    domain: &DueCertificate,
    started: std::time::Instant,
    outcome: Result<IssuedCertificate, OrderError>,
) {
    match outcome {
        Ok(issued) => {
            metrics::counter!(crate::metrics::ACME_ORDERS_TOTAL, "result" => "issued").increment(1);
            tracing::info!(
                domain.name = %domain.domain,
                certificate.serial = %issued.serial,
                certificate.not_after = %issued.not_after,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "certificate issued"
            );
            app.certificates_changed.send_replace(());
        }
        Err(e) => record_failure(app, domain, &e).await,
    }
}

/// [`order_with`], and if the CA has forgotten the platform's account (a test CA
/// restarted, or it was deactivated) a new one is made and the order placed once more.
async fn order_renewing_a_lost_account(
    app: &App,
    client: &mut Option<AcmeClient>,
    sealer: &Sealer,
    due: &DueCertificate,
) -> Result<IssuedCertificate, OrderError> {
    let outcome = order_with(app, client, sealer, due).await;
    if !outcome.as_ref().is_err_and(|e| e.account_gone) {
        return outcome;
    }
    if let Some(gone) = client.take() {
        if let Err(e) = gone.forget(app.store.as_ref()).await {
            tracing::warn!(error = %e, "forgetting the ACME account failed");
        }
    }
    order_with(app, client, sealer, due).await
}

/// One order for one domain with the platform's account (connected on first use),
/// stored when it succeeds.
async fn order_with(
    app: &App,
    client: &mut Option<AcmeClient>,
    sealer: &Sealer,
    due: &DueCertificate,
) -> Result<IssuedCertificate, OrderError> {
    let acme = match client {
        Some(acme) => acme,
        None => client.insert(AcmeClient::connect(&app.config, app.store.as_ref(), sealer).await?),
    };
    tracing::info!(domain.name = %due.domain, "ordering a certificate");
    let new = tokio::time::timeout(
        ORDER_TIMEOUT,
        acme.order(&due.domain, &app.challenges, app.shared.as_ref()),
    )
    .await
    .unwrap_or_else(|_| Err(OrderError::new(Stage::Finalize, "the order timed out")))?;
    store_issued(app, sealer, due, new).await
}

async fn store_issued(
    app: &App,
    sealer: &Sealer,
    due: &DueCertificate,
    new: acme::NewCertificate,
) -> Result<IssuedCertificate, OrderError> {
    let leaf = x509::leaf_info(&new.chain_pem).map_err(|e| OrderError::new(Stage::Finalize, e))?;
    if !leaf.dns_names.iter().any(|name| name == &due.domain) {
        return Err(OrderError::new(
            Stage::Finalize,
            "the issued certificate does not name the domain",
        ));
    }
    let key_sealed = sealer
        .seal(&key_context(&due.domain), new.key_pem.as_bytes())
        .map_err(|e| OrderError::new(Stage::Store, e))?;
    let renew_before = app.config.acme.acme_renew_before;
    let issued = IssuedCertificate {
        chain_pem: new.chain_pem,
        key_sealed,
        serial: leaf.serial,
        issuer: leaf.issuer,
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        issued_at: Utc::now(),
        next_attempt_at: x509::renewal_time(leaf.not_before, leaf.not_after, renew_before),
    };
    app.store
        .record_certificate_issued(due.domain_id, &issued)
        .await
        .map_err(|e| OrderError::new(Stage::Store, e))?;
    crate::audit::events::certificate(app, due.domain_id, &due.domain, None).await;
    Ok(issued)
}

async fn record_failure(app: &App, due: &DueCertificate, error: &OrderError) {
    metrics::counter!(crate::metrics::ACME_ORDERS_TOTAL, "result" => "failed").increment(1);
    metrics::counter!(crate::metrics::ACME_FAILURES_TOTAL, "stage" => error.stage.as_str())
        .increment(1);
    let failures = due.failures.saturating_add(1);
    let wait = retry_after(app.config.acme.acme_retry_base, failures);
    tracing::warn!(
        domain.name = %due.domain,
        failures,
        retry_in_seconds = wait.as_secs(),
        error = %error,
        "certificate order failed; the current certificate, if any, stays in use"
    );
    let failure = CertificateFailure {
        error: error.to_string(),
        failures,
        next_attempt_at: Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
    };
    if let Err(e) = app
        .store
        .record_certificate_failure(due.domain_id, &failure)
        .await
    {
        tracing::warn!(domain.name = %due.domain, error = %e, "recording a certificate failure failed");
    }
    crate::audit::events::certificate(app, due.domain_id, &due.domain, Some(&failure.error)).await;
}

/// Makes HAProxy serve what the database holds, every `HOSTING_CERT_SYNC_INTERVAL` and
/// at once when this replica issued a certificate.
pub async fn run_installer(app: Arc<App>, sealer: Option<Arc<Sealer>>, installer: Installer) {
    let interval = app.config.installer.cert_sync_interval;
    let mut changed = app.certificates_changed.subscribe();
    loop {
        match desired_certificates(&app, sealer.as_deref()).await {
            Ok(desired) => match installer.reconcile(&desired).await {
                Ok(report) => {
                    metrics::gauge!(crate::metrics::CERTIFICATE_INSTALL_LAST_SUCCESS)
                        .set(Utc::now().timestamp() as f64);
                    if !(report.added.is_empty()
                        && report.replaced.is_empty()
                        && report.removed.is_empty()
                        && report.failed.is_empty())
                    {
                        tracing::info!(?report, "certificates installed into HAProxy");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "installing certificates into HAProxy failed"),
            },
            Err(e) => tracing::error!(error = %e, "reading the certificates to install failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = changed.changed() => {}
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum DesiredError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(
        "the private key of {1}'s certificate: {0}; nothing is installed or removed until it opens"
    )]
    Key(seal::SealError, String),
    #[error(
        "certificates are issued but HOSTING_CERT_ENCRYPTION_KEY_FILE is not set here; \
         nothing is installed or removed until it is"
    )]
    NoKey,
}

async fn desired_certificates(
    app: &App,
    sealer: Option<&Sealer>,
) -> Result<Vec<DesiredCertificate>, DesiredError> {
    let served = app.store.served_certificates().await?;
    let platform = app
        .store
        .platform_certificate(&crate::tls::wildcard::names_key(&app.config))
        .await?
        .filter(|record| record.chain_pem.is_some());
    let sealer = match (sealer, served.is_empty() && platform.is_none()) {
        (Some(sealer), _) => sealer,
        (None, true) => return Ok(Vec::new()),
        (None, false) => return Err(DesiredError::NoKey),
    };
    let mut desired = Vec::with_capacity(served.len());
    for record in served {
        let (Some(chain), Some(sealed), Some(serial)) =
            (&record.chain_pem, &record.key_sealed, &record.serial)
        else {
            continue;
        };
        // A key that does not open means a wrong HOSTING_CERT_ENCRYPTION_KEY_FILE here:
        // the whole round is skipped, since leaving the domain out would REMOVE its
        // certificate from HAProxy.
        let opened = sealer
            .open(&key_context(&record.domain), sealed)
            .map_err(|e| DesiredError::Key(e, record.domain.clone()))?;
        let key = std::str::from_utf8(&opened)
            .map_err(|_| DesiredError::Key(seal::SealError::Open, record.domain.clone()))?;
        let mut bundle = Zeroizing::new(String::with_capacity(chain.len() + key.len() + 1));
        bundle.push_str(chain.trim_end());
        bundle.push('\n');
        bundle.push_str(key);
        desired.push(DesiredCertificate {
            domain: record.domain.clone(),
            bundle_pem: bundle,
            serial: serial.clone(),
        });
    }
    // The platform certificate goes in under the base domain's name (never a custom
    // domain's): HAProxy picks it by its names, the wildcard included.
    if let Some(record) = platform {
        let base = app.config.public.base_domain.to_ascii_lowercase();
        let opened = crate::tls::wildcard::bundle(&record, sealer)
            .map_err(|e| DesiredError::Key(e, format!("*.{base}")))?;
        if let Some((bundle_pem, serial)) = opened {
            desired.push(DesiredCertificate {
                domain: base,
                bundle_pem,
                serial,
            });
        }
    }
    Ok(desired)
}
