//! Building and running the application, shared by the binary and the tests so
//! both boot the same way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hosting_api::Role;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::blobs::{BlobStore, FolderBlobStore, PgBlobStore, S3BlobStore};
use crate::certs::haproxy::{RuntimeApi, RuntimeApiAddr};
use crate::certs::install::Installer;
use crate::certs::seal::Sealer;
use crate::config::{BlobStoreKind, Config, InstallerSettings};
use crate::http::auth::hash_password;
use crate::sessions::hash::{generate_token, hash_token};
use crate::sessions::RedisSessions;
use crate::shared::{Disabled, RedisShared, SharedState};
use crate::state::{App, AppState};
use crate::store::{PgStore, SqliteStore, Store};
use crate::{certs, gc, http};

/// How long a stopping replica waits for its certificate issuer to give back its lease.
const ISSUER_STOP_LIMIT: Duration = Duration::from_secs(15);

pub struct Application {
    app: Arc<App>,
    redis: Option<Arc<RedisShared>>,
    /// Seals certificate private keys; set when this replica issues or installs them.
    sealer: Option<Arc<Sealer>>,
    installer: Option<Installer>,
    public: TcpListener,
    mgmt: TcpListener,
    /// The HTTPS listener and what it serves (`HOSTING_TLS_LISTEN`).
    tls: Option<(TcpListener, crate::tls::Https)>,
    /// The first admin's token when this start created it and generated the token.
    pub bootstrap_token: Option<String>,
}

/// The backends a configuration selects: SQLite + blob folder (embedded), or PostgreSQL
/// (with its blob store or a shared folder) in cluster mode.
pub async fn open_backends(
    config: &Config,
) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn BlobStore>)> {
    let folder = || -> anyhow::Result<Arc<dyn BlobStore>> {
        let blobs =
            FolderBlobStore::open(&config.storage.data_dir.join("blobs")).with_context(|| {
                format!(
                    "opening the blob folder in {}",
                    config.storage.data_dir.display()
                )
            })?;
        Ok(Arc::new(blobs))
    };
    if !config.is_cluster() {
        let store = SqliteStore::open(&config.storage.data_dir)
            .await
            .with_context(|| {
                format!(
                    "opening the database in {}",
                    config.storage.data_dir.display()
                )
            })?;
        return Ok((Arc::new(store), folder()?));
    }
    let store = PgStore::connect(config)
        .await
        .context("connecting to PostgreSQL")?;
    let blobs: Arc<dyn BlobStore> = match config.blob_store_kind() {
        BlobStoreKind::Postgres => Arc::new(PgBlobStore::new(store.pools())),
        BlobStoreKind::Folder => folder()?,
        BlobStoreKind::S3 => {
            Arc::new(S3BlobStore::open(&config.s3).context("opening the S3 blob store")?)
        }
    };
    Ok((Arc::new(store), blobs))
}

/// The shared state in effect, and Redis itself when configured (for its subscriber).
pub struct Shared {
    pub state: Arc<dyn SharedState>,
    pub redis: Option<Arc<RedisShared>>,
}

/// Redis when configured, else nothing shared.
pub fn open_shared(config: &Config) -> anyhow::Result<Shared> {
    match &config.redis.redis_url {
        Some(url) => {
            let redis = RedisShared::new(url.expose_secret(), &config.redis.redis_prefix)
                .map_err(anyhow::Error::msg)?;
            Ok(Shared {
                state: redis.clone(),
                redis: Some(redis),
            })
        }
        None => Ok(Shared {
            state: Arc::new(Disabled),
            redis: None,
        }),
    }
}

impl Application {
    /// Binds the listeners first, then opens the backends and, last, creates the first
    /// admin: a start that fails (a port already taken, a bad setting) creates nothing,
    /// so the first admin's token is printed by the start that really serves.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        config.validate()?;
        // Installs the recorder before anything records a metric.
        crate::telemetry::metrics_handle();
        let public = bind(
            config.listeners.listen,
            "the public listener (API, dashboard, sites)",
            "HOSTING_LISTEN (--listen)",
        )
        .await?;
        let mgmt = bind(
            config.listeners.mgmt_listen,
            "the management listener (/metrics, /healthz, /readyz)",
            "HOSTING_MGMT_LISTEN (--mgmt-listen)",
        )
        .await?;
        let tls = match config.tls.tls_listen {
            Some(addr) => {
                let listener = bind(
                    addr,
                    "the HTTPS listener",
                    "HOSTING_TLS_LISTEN (--tls-listen)",
                )
                .await?;
                // A bad platform certificate stops the start here, with the file named.
                let https = crate::tls::Https::open(&config).context("starting HTTPS")?;
                Some((listener, https))
            }
            None => None,
        };
        let (store, blobs) = open_backends(&config).await?;
        // Embedded, this server is the blob folder's one writer: what `tmp` holds was left
        // by a crash. A shared folder's leftovers wait for garbage collection's grace.
        if !config.is_cluster() {
            crate::blobs::batch::sweep_stale_temps(blobs.as_ref(), Duration::ZERO).await;
        }
        let Shared {
            state: shared,
            redis,
        } = open_shared(&config)?;
        let sealer = certs::open_sealer(&config)?;
        let installer = match config.installer.settings() {
            Some(InstallerSettings {
                dir,
                haproxy_dir,
                runtime_api: api,
            }) => {
                let addr: RuntimeApiAddr = api
                    .parse()
                    .map_err(|e| anyhow::anyhow!("HOSTING_HAPROXY_RUNTIME_API {api:?}: {e}"))?;
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating HOSTING_CERT_DIR {}", dir.display()))?;
                Some(Installer::new(dir, haproxy_dir, RuntimeApi::new(addr)))
            }
            None => None,
        };
        // With port 0 (tests), public URLs must carry the port actually bound.
        let mut config = config;
        config.listeners.listen = public.local_addr().context("reading the bound address")?;
        config.listeners.mgmt_listen = mgmt.local_addr().context("reading the bound address")?;
        if let Some((listener, _)) = &tls {
            config.tls.tls_listen =
                Some(listener.local_addr().context("reading the bound address")?);
        }
        // Last fallible step: nothing after it can fail and lose the token it generates.
        let bootstrap_token = bootstrap_admin(store.as_ref(), &config).await?;
        let webhook_sealer = match &sealer {
            Some(sealer) => Some(sealer.clone()),
            None => crate::webhooks::secrets::open_sealer(&config)?,
        };
        let mut app = App::new(config, store, blobs, shared).with_webhook_sealer(webhook_sealer);
        if let Some(redis) = &redis {
            // Cluster mode: sessions are shared by every replica and expire in Redis.
            app = app.with_sessions(Arc::new(RedisSessions(redis.clone())));
        }
        let app = Arc::new(app);
        Ok(Application {
            app,
            redis,
            sealer,
            installer,
            public,
            mgmt,
            tls,
            bootstrap_token,
        })
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.public
            .local_addr()
            .unwrap_or_else(|_| self.app.config.listeners.listen)
    }

    pub fn mgmt_addr(&self) -> SocketAddr {
        self.mgmt
            .local_addr()
            .unwrap_or_else(|_| self.app.config.listeners.mgmt_listen)
    }

    /// The HTTPS listener's address, when the app serves TLS itself.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    pub fn state(&self) -> AppState {
        AppState(self.app.clone())
    }

    /// Serves until SIGTERM / Ctrl-C: readiness turns false first, then (after the
    /// configured drain delay) the listener closes and in-flight requests finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` resolves, with the same graceful sequence.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = AppState(self.app.clone());
        let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
        if !self.app.config.domains.domain_check_interval.is_zero() {
            tokio::spawn(crate::domains::run_periodically(
                self.app.clone(),
                self.app.config.domains.domain_check_interval,
            ));
        }
        let issuer = match (&self.sealer, &self.app.config.acme.acme_directory) {
            (Some(sealer), Some(_)) => Some(tokio::spawn(certs::run_issuer(
                self.app.clone(),
                sealer.clone(),
                stopping_rx.clone(),
            ))),
            _ => None,
        };
        if let Some(installer) = self.installer {
            tokio::spawn(certs::run_installer(
                self.app.clone(),
                self.sealer.clone(),
                installer,
            ));
        }
        if !self.app.config.limits.gc_interval.is_zero() {
            tokio::spawn(gc::run_periodically(
                self.app.clone(),
                self.app.config.limits.gc_interval,
            ));
        }
        let events = &self.app.config.events;
        if !events.audit_prune_interval.is_zero() {
            tokio::spawn(crate::audit::run_periodically(
                self.app.clone(),
                events.audit_prune_interval,
            ));
        }
        if !events.webhook_poll_interval.is_zero() {
            tokio::spawn(crate::webhooks::run_deliveries(
                self.app.clone(),
                events.webhook_poll_interval,
            ));
        }
        if let Some(redis) = self.redis.clone() {
            let on_event = {
                let app = self.app.clone();
                move |event| {
                    let app = app.clone();
                    tokio::spawn(
                        async move { crate::publish::apply_invalidation(&app, event).await },
                    );
                }
            };
            // Invalidations may have been missed while disconnected: start afresh.
            let on_resubscribe = {
                let app = self.app.clone();
                move || app.cache.forget_all_hosts()
            };
            tokio::spawn(redis.subscribe(on_event, on_resubscribe));
        }
        let app = self.app.clone();
        let drain = app.config.listeners.shutdown_drain;
        tokio::spawn(async move {
            stop.await;
            tracing::info!(
                drain_seconds = drain.as_secs(),
                "shutting down: no longer ready"
            );
            app.stop_accepting();
            tokio::time::sleep(drain).await;
            let _ = stopping_tx.send(true);
        });
        // Both listeners stop together, once the drain delay has passed.
        let stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        };
        let limits = http::listener::Limits::from_config(&self.app.config);
        let mgmt = http::listener::serve(
            self.mgmt,
            http::mgmt::router(state.clone()),
            limits,
            stopped(stopping_rx.clone()),
        );
        let https = self
            .tls
            .as_ref()
            .map(|(listener, https)| http::HttpsRedirect {
                certificates: https.certificates.clone(),
                port: listener.local_addr().map_or(443, |addr| addr.port()),
                hsts: hsts_header(self.app.config.tls.tls_hsts),
                site_hsts: https.hsts.clone(),
            });
        // Requests carry the peer address, so rate limits (API, sign-in) count per client.
        let service = http::public_router(state, https).context("starting the access log")?;
        let secure = match self.tls {
            Some((listener, https)) => {
                https.keep_current(&self.app, self.sealer.as_ref());
                let acceptor = tokio_rustls::TlsAcceptor::from(https.server_config);
                Some(http::listener::serve_tls(
                    listener,
                    acceptor,
                    service.clone(),
                    limits,
                    stopped(stopping_rx.clone()),
                ))
            }
            None => None,
        };
        let public = http::listener::serve(self.public, service, limits, stopped(stopping_rx));
        let secure = async move {
            match secure {
                Some(serving) => serving.await,
                None => Ok(()),
            }
        };
        tracing::info!("serving");
        let (public, mgmt, secure) = tokio::join!(public, mgmt, secure);
        if let Some(issuer) = issuer {
            // It lets an order under way finish (a few seconds at most) or gives its lease back.
            if tokio::time::timeout(ISSUER_STOP_LIMIT, issuer)
                .await
                .is_err()
            {
                tracing::warn!("the certificate issuer did not stop in time");
            }
        }
        public.context("public listener")?;
        mgmt.context("management listener")?;
        secure.context("HTTPS listener")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// `Strict-Transport-Security` for a max-age (none for zero).
fn hsts_header(max_age: Duration) -> Option<axum::http::HeaderValue> {
    (!max_age.is_zero()).then(|| {
        axum::http::HeaderValue::from_str(&format!("max-age={}", max_age.as_secs()))
            .unwrap_or(axum::http::HeaderValue::from_static("max-age=31536000"))
    })
}

/// Binds `addr` for `what`; a failure names the setting that chooses another address.
async fn bind(addr: SocketAddr, what: &str, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        let mut example = addr;
        example.set_port(addr.port().wrapping_add(1).max(1));
        format!(
            "cannot listen on {addr} for {what}: set {setting} to a free address, e.g. {example}"
        )
    })
}

/// With an empty database, creates the first admin and its token (the configured one,
/// or a generated one that is returned so it can be shown once).
///
/// `HOSTING_ADMIN_PASSWORD` becomes the first admin's dashboard password; on an existing
/// database it is set only for an `admin` account that has no password yet, so a
/// password changed in the dashboard is never overwritten by a restart.
async fn bootstrap_admin(store: &dyn Store, config: &Config) -> anyhow::Result<Option<String>> {
    let password_hash = match &config.admin.admin_password {
        Some(password) => Some(
            hash_password(password.expose_secret())
                .map_err(|e| anyhow::anyhow!("HOSTING_ADMIN_PASSWORD: {e}"))?,
        ),
        None => None,
    };
    if store.count_users().await? > 0 {
        if let Some(hash) = &password_hash {
            if let Some(admin) = store.user_by_name("admin").await? {
                if admin.role == Role::Admin && admin.password_hash.is_none() {
                    store.set_password(admin.id, hash).await?;
                    tracing::info!(user.name = %admin.username, "set the admin's dashboard password");
                    let system = crate::audit::Actor::System;
                    crate::audit::events::password_set(store, system, &admin, None).await;
                }
            }
        }
        return Ok(None);
    }
    let admin = store
        .create_user("admin", Role::Admin, password_hash.as_deref())
        .await?;
    let (secret, generated) = match &config.admin.admin_token {
        Some(token) => (token.expose_secret().to_owned(), false),
        None => (generate_token(), true),
    };
    let token = store
        .create_token(admin.id, "bootstrap", &hash_token(&secret))
        .await?;
    tracing::info!(user.name = %admin.username, "created the first admin account");
    crate::audit::events::first_admin(store, &admin, token.id).await;
    Ok(generated.then_some(secret))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
