//! A real authoritative DNS server for tests: Debian's Knot (`knotd`), on a loopback port
//! of its own, serving one zone that accepts RFC 2136 updates signed with one TSIG key.
//! Pebble can be pointed at it (`-dnsserver`) to validate DNS-01 answers.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::helpers::free_port;

/// The zone Knot serves; every name in it is 127.0.0.1.
pub const ZONE: &str = "hosting.test";
pub const KEY_NAME: &str = "acme-update";
pub const ALGORITHM: &str = "hmac-sha256";

pub struct Knot {
    dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub secret: Vec<u8>,
    _child: Child,
}

impl Knot {
    pub async fn start() -> Knot {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut secret = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut secret);
        let path = dir.path().display().to_string();
        let config = format!(
            "server:\n    listen: {ip}@{port}\n    rundir: {path}\n\
             database:\n    storage: {path}\n\
             log:\n  - target: stderr\n    any: info\n\
             key:\n  - id: {KEY_NAME}\n    algorithm: {ALGORITHM}\n    secret: {secret}\n\
             acl:\n  - id: acme\n    key: {KEY_NAME}\n    action: update\n\
             zone:\n  - domain: {ZONE}\n    storage: {path}\n    file: {ZONE}.zone\n    acl: acme\n",
            ip = addr.ip(),
            port = addr.port(),
            secret = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &secret),
        );
        std::fs::write(dir.path().join("knot.conf"), config).expect("write");
        let zone = format!(
            "$ORIGIN {ZONE}.\n$TTL 60\n\
             @ SOA ns.{ZONE}. admin.{ZONE}. 1 3600 600 86400 60\n\
             @ NS ns.{ZONE}.\nns A 127.0.0.1\n@ A 127.0.0.1\n* A 127.0.0.1\n"
        );
        std::fs::write(dir.path().join(format!("{ZONE}.zone")), zone).expect("write");
        let log = std::fs::File::create(dir.path().join("knot.log")).expect("log");
        let child = Command::new("knotd")
            .args(["-c", &dir.path().join("knot.conf").display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting knotd failed ({e}): the DNS-01 tests need Debian's `knot` \
                     package (apt-get install knot knot-dnsutils; scripts/test installs it)"
                )
            });
        let knot = Knot {
            dir,
            addr,
            secret,
            _child: child,
        };
        for _ in 0..100 {
            if knot.txt("ns").await.is_some() {
                return knot;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("knotd does not answer on {addr}; log:\n{}", knot.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }

    /// The TXT values of `<label>.<ZONE>` as Knot answers them (`kdig`), or `None` when
    /// Knot does not answer yet.
    pub async fn txt(&self, label: &str) -> Option<Vec<String>> {
        let output = Command::new("kdig")
            .args([
                &format!("@{}", self.addr.ip()),
                "-p",
                &self.addr.port().to_string(),
                "+short",
                "+timeout=1",
                "+retry=0",
                "TXT",
                &format!("{label}.{ZONE}."),
            ])
            .output()
            .await
            .expect("kdig (Debian's knot-dnsutils) runs");
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&output.stdout);
        if text.contains("timed out") || text.contains("failed") {
            return None;
        }
        let mut values: Vec<String> = text
            .lines()
            .map(|line| line.trim().trim_matches('"').to_owned())
            .filter(|line| !line.is_empty())
            .collect();
        values.sort();
        Some(values)
    }
}
