//! A real ACME server for tests: Debian's `pebble` (Let's Encrypt's test CA) with
//! `pebble-challtestsrv` as its DNS, both on loopback ports of their own.
//!
//! Every name resolves to 127.0.0.1 (challtestsrv's default answer), so Pebble's HTTP-01
//! validation of any domain reaches the app's public listener on `http_port`. Pebble
//! regenerates its root on every start: fetch [`Pebble::root_pem`] after each start.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hosting_api::{self as api, DomainStatus};
use tokio::process::{Child, Command};

use crate::helpers::{free_port, TestApp, ADMIN_TOKEN};

/// Resolves only in Pebble's mock DNS (every name there is 127.0.0.1).
pub const DOMAIN: &str = "shop.acme.test";

/// Settings of an app that orders from `pebble`, in rounds of a second.
pub fn issue_from(config: &mut hosting_app::config::Config, pebble: &Pebble) {
    config.acme.acme_directory = Some(pebble.directory_url());
    config.acme.acme_ca_root = Some(pebble.minica_path());
    config.acme.cert_encryption_key_file = Some(pebble.sealing_key_file());
    config.acme.acme_interval = Duration::from_secs(1);
    config.acme.acme_retry_base = Duration::from_secs(1);
    config.domains.dns_resolver = Some(pebble.dns_addr());
}

/// Claims `DOMAIN` for the site `shop` (pending).
pub async fn shop_domain(app: &TestApp) -> api::Domain {
    let response = app
        .post(ADMIN_TOKEN, "/sites/shop/domains")
        .json(&api::AddDomain {
            name: DOMAIN.into(),
        })
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    response.json().await.expect("domain")
}

/// A site with a live deploy and `DOMAIN` verified for it (TXT record in the mock DNS).
pub async fn verified_site(app: &TestApp, pebble: &Pebble) {
    app.create_site(ADMIN_TOKEN, "shop").await;
    app.deploy_archive(ADMIN_TOKEN, "shop", &[("index.html", b"<h1>shop</h1>")])
        .await;
    let domain = shop_domain(app).await;
    pebble
        .set_txt(
            &domain.verification.txt_name,
            &domain.verification.txt_value,
        )
        .await;
    let verified: api::Domain = app
        .post(ADMIN_TOKEN, &format!("/sites/shop/domains/{DOMAIN}/verify"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("domain");
    assert_eq!(verified.status, DomainStatus::Verified, "{verified:?}");
}

pub async fn domain(app: &TestApp) -> api::Domain {
    let list: api::List<api::Domain> = app
        .get(ADMIN_TOKEN, "/sites/shop/domains")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("list");
    list.items
        .into_iter()
        .find(|d| d.name == DOMAIN)
        .expect("the domain is listed")
}

/// Waits (up to 60 s) until the domain's certificate satisfies `done`.
pub async fn wait_for(
    app: &TestApp,
    pebble: &Pebble,
    what: &str,
    done: impl Fn(&api::Certificate) -> bool,
) -> api::Certificate {
    let started = Instant::now();
    loop {
        let current = domain(app).await.certificate;
        if let Some(certificate) = current.as_ref().filter(|c| done(c)) {
            return certificate.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited 60 s for {what}; certificate now {current:?}\npebble log:\n{}",
            pebble.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub struct Pebble {
    dir: tempfile::TempDir,
    pub dns_port: u16,
    management_port: u16,
    acme_port: u16,
    pebble_management_port: u16,
    /// Where Pebble connects for HTTP-01 validation.
    http_port: u16,
    challtestsrv: Option<Child>,
    pebble: Option<Child>,
    client: reqwest::Client,
    /// (key id, base64url HMAC key): new accounts must carry this external account binding.
    external_account: Option<(String, String)>,
}

fn spawn(command: &mut Command, log: PathBuf) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    let err = log.try_clone().expect("log file");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "starting {:?} failed ({e}): the ACME tests need Debian's `pebble` package \
                 (apt-get install pebble; scripts/test installs it)",
                command.as_std().get_program()
            )
        })
}

async fn wait_tcp(port: u16) {
    // Generous: on a busy two-core CI machine Pebble's start (key generation) can take seconds.
    for _ in 0..1200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nothing listens on 127.0.0.1:{port} after 30 s");
}

impl Pebble {
    /// Ports are chosen now, so the app can be configured before Pebble runs (Pebble
    /// needs the app's port, the app needs Pebble's URL).
    pub fn prepare() -> Pebble {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key, root) = pebble_tls();
        std::fs::write(dir.path().join("cert.pem"), cert).expect("write");
        std::fs::write(dir.path().join("key.pem"), key).expect("write");
        std::fs::write(dir.path().join("minica.pem"), root).expect("write");
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
        std::fs::write(dir.path().join("sealing.key"), hex::encode(key)).expect("write");
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(
                    &std::fs::read(dir.path().join("minica.pem")).expect("read"),
                )
                .expect("minica"),
            )
            .build()
            .expect("client");
        Pebble {
            dir,
            dns_port: free_port(),
            management_port: free_port(),
            acme_port: free_port(),
            pebble_management_port: free_port(),
            http_port: 0,
            challtestsrv: None,
            pebble: None,
            client,
            external_account: None,
        }
    }

    /// From the next start on, Pebble accepts new accounts only with this binding.
    pub fn require_external_account(&mut self, kid: &str, hmac_key: &str) {
        self.external_account = Some((kid.to_owned(), hmac_key.to_owned()));
    }

    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    /// The root that Pebble's own HTTPS certificate chains to (the app must trust it).
    pub fn minica_path(&self) -> PathBuf {
        self.dir.path().join("minica.pem")
    }

    /// A certificate-sealing key file for the apps under test (cluster mode needs one).
    pub fn sealing_key_file(&self) -> PathBuf {
        self.dir.path().join("sealing.key")
    }

    pub fn dns_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.dns_port))
    }

    /// Starts the mock DNS and Pebble, validating HTTP-01 on `http_port`.
    pub async fn start(&mut self, http_port: u16) {
        self.http_port = http_port;
        if self.challtestsrv.is_none() {
            let child = spawn(
                Command::new("pebble-challtestsrv").args([
                    "-dns01",
                    &format!("127.0.0.1:{}", self.dns_port),
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                    "-management",
                    &format!("127.0.0.1:{}", self.management_port),
                    "-defaultIPv4",
                    "127.0.0.1",
                    "-defaultIPv6",
                    "",
                ]),
                self.dir.path().join("challtestsrv.log"),
            );
            self.challtestsrv = Some(child);
            wait_tcp(self.management_port).await;
        }
        self.start_pebble().await;
    }

    /// (Re)starts Pebble alone: a new root CA every time.
    pub async fn start_pebble(&mut self) {
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{}", self.acme_port),
            "managementListenAddress": format!("127.0.0.1:{}", self.pebble_management_port),
            "certificate": "cert.pem",
            "privateKey": "key.pem",
            "httpPort": self.http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": self.external_account.is_some(),
            "externalAccountMACKeys": self
                .external_account
                .iter()
                .map(|(kid, key)| (kid.clone(), serde_json::Value::from(key.clone())))
                .collect::<serde_json::Map<_, _>>(),
            // Short-lived certificates: renewal comes two thirds into the lifetime.
            "certificateValidityPeriod": 3600,
        }});
        std::fs::write(
            self.dir.path().join("pebble.json"),
            serde_json::to_vec(&config).expect("json"),
        )
        .expect("write");
        let child = spawn(
            Command::new("pebble")
                .args([
                    "-config",
                    "pebble.json",
                    "-dnsserver",
                    &format!("127.0.0.1:{}", self.dns_port),
                ])
                .current_dir(self.dir.path())
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .env("PEBBLE_AUTHZREUSE", "0"),
            self.dir.path().join("pebble.log"),
        );
        self.pebble = Some(child);
        wait_tcp(self.acme_port).await;
        for _ in 0..100 {
            if self.client.get(self.directory_url()).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("pebble's directory does not answer; log: {}", self.log());
    }

    /// Stops Pebble (the CA goes away); the DNS stays.
    pub async fn stop_pebble(&mut self) {
        if let Some(mut child) = self.pebble.take() {
            let _ = child.kill().await;
        }
    }

    /// Stops (`SIGSTOP`) or resumes (`SIGCONT`) Pebble's process: while stopped, the app's
    /// requests to the CA are accepted by the kernel and never answered.
    pub fn freeze(&self, frozen: bool) {
        let pid = self
            .pebble
            .as_ref()
            .and_then(Child::id)
            .expect("pebble runs");
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// The root CA of the running Pebble (issued certificates chain to it).
    pub async fn root_pem(&self) -> String {
        let url = format!("https://127.0.0.1:{}/roots/0", self.pebble_management_port);
        self.client
            .get(url)
            .send()
            .await
            .expect("roots request")
            .text()
            .await
            .expect("root")
    }

    /// Publishes a TXT record in the mock DNS.
    pub async fn set_txt(&self, name: &str, value: &str) {
        let response = self
            .client
            .post(format!("http://127.0.0.1:{}/set-txt", self.management_port))
            .json(&serde_json::json!({ "host": format!("{name}."), "value": value }))
            .send()
            .await
            .expect("set-txt");
        assert!(
            response.status().is_success(),
            "set-txt: {}",
            response.status()
        );
    }
}

/// Pebble's own HTTPS certificate for `localhost`/127.0.0.1 and the root it chains to
/// (Debian's package ships none): (cert PEM, key PEM, root PEM).
fn pebble_tls() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let root_key = KeyPair::generate().expect("key");
    let mut root_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params
        .distinguished_name
        .push(DnType::CommonName, "hosting test minica");
    let root = root_params.self_signed(&root_key).expect("root");
    let issuer = Issuer::new(root_params, root_key);
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("params");
    let cert = params.signed_by(&key, &issuer).expect("cert");
    (cert.pem(), key.serialize_pem(), root.pem())
}
