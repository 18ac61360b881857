//! A real HAProxy for tests (`/usr/sbin/haproxy`, Debian's), on a loopback port of its
//! own, with a TLS frontend the app's certificate installer fills: a default certificate
//! for names nothing else covers and the installer's crt-list. The default one names
//! `default.invalid` only, as `deploy/haproxy/make-self-signed-cert DIR default.invalid`
//! makes it: for a name both cover, HAProxy 2.6 keeps serving the bind line's own `crt`
//! (checked by hand), so it must not name the platform's domains.
//! Every request over TLS answers 200 `haproxy`. Killed when dropped.
//! `tests/haproxy_certs.rs` has the installer's own, finer tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::helpers::free_port;

pub struct Haproxy {
    dir: tempfile::TempDir,
    /// The TLS frontend.
    pub addr: SocketAddr,
    _child: Child,
}

impl Haproxy {
    pub async fn start() -> Haproxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        std::fs::create_dir(dir.path().join("certs")).expect("mkdir");
        std::fs::write(dir.path().join("certs/crt-list.txt"), "").expect("crt-list");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["default.invalid".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let default = format!("{}{}", cert.pem(), key.serialize_pem());
        std::fs::write(dir.path().join("default.pem"), default).expect("default cert");
        let d = dir.path().display();
        let config = format!(
            "global\n    stats socket {d}/admin.sock mode 600 level admin\n\
             defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
             frontend fe_tls\n    bind {addr} ssl crt {d}/default.pem crt-list {d}/certs/crt-list.txt alpn h2,http/1.1\n\
             \x20   http-request return status 200 content-type text/plain string haproxy\n"
        );
        std::fs::write(dir.path().join("haproxy.cfg"), config).expect("config");
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("log");
        let child = Command::new("/usr/sbin/haproxy")
            .arg("-db")
            .arg("-f")
            .arg(dir.path().join("haproxy.cfg"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("starting /usr/sbin/haproxy (Debian's haproxy; scripts/test installs it)");
        let haproxy = Haproxy {
            dir,
            addr,
            _child: child,
        };
        for _ in 0..200 {
            if haproxy.runtime_api_path().exists()
                && tokio::net::TcpStream::connect(addr).await.is_ok()
            {
                return haproxy;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("haproxy does not answer on {addr}; log:\n{}", haproxy.log());
    }

    /// The folder the installer writes into (HAProxy sees it under the same path).
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    fn runtime_api_path(&self) -> PathBuf {
        self.dir.path().join("admin.sock")
    }

    /// `HOSTING_HAPROXY_RUNTIME_API`.
    pub fn runtime_api(&self) -> String {
        format!("unix:{}", self.runtime_api_path().display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}
