//! The certificate installer against a real HAProxy (`/usr/sbin/haproxy`, 2.6 on Debian 12)
//! started on loopback by each test, checked with real TLS handshakes (`openssl s_client`
//! with SNI). No mocks. Run: `cargo test -p hosting-app --features cluster-tests --test haproxy_certs`.
//!
//! Each test has its own HAProxy, port and temp folder. The installer writes into
//! `<tmp>/certs`; HAProxy sees the same folder as `<tmp>/haproxy-certs` (a symlink), the
//! way a container mounts it elsewhere.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hosting_app::certs::haproxy::{RuntimeApi, RuntimeApiAddr};
use hosting_app::certs::install::{DesiredCertificate, InstallError, InstallReport, Installer};
use rcgen::{CertificateParams, DnType, KeyPair, SerialNumber};
use zeroize::Zeroizing;

/// A HAProxy in foreground mode (`-db`), killed by PID when dropped.
struct Haproxy {
    dir: tempfile::TempDir,
    port: u16,
    /// Plain HTTP, redirecting to HTTPS exactly the hosts in the TLS-hosts ACL (as the
    /// shipped haproxy.cfg does for custom domains); anything else answers 200.
    http_port: u16,
    child: Option<Child>,
}

fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Haproxy {
    fn start() -> Self {
        Self::start_with(true)
    }

    /// `tls_hosts_acl: false` is a configuration from before the TLS-hosts ACL.
    fn start_with(tls_hosts_acl: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (port, http_port) = (unused_port(), unused_port());
        fs::create_dir(dir.path().join("certs")).expect("mkdir");
        std::os::unix::fs::symlink(dir.path().join("certs"), dir.path().join("haproxy-certs"))
            .expect("symlink");
        fs::write(dir.path().join("certs/crt-list.txt"), "").expect("crt-list");
        fs::write(dir.path().join("certs/tls-hosts.txt"), "").expect("tls-hosts");
        fs::write(
            dir.path().join("default.pem"),
            TestCert::new("default.invalid", &[0x0D])
                .desired()
                .bundle_pem
                .as_str(),
        )
        .expect("default cert");
        let d = dir.path().display();
        let config = format!(
            "global\n    stats socket {d}/admin.sock mode 600 level admin\n    stats timeout 30s\n\
             defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
             frontend fe_tls\n    bind 127.0.0.1:{port} ssl crt {d}/default.pem crt-list {d}/haproxy-certs/crt-list.txt\n\
             \x20   http-request return status 200 content-type text/plain lf-string \"pid=%pid\\n\"\n\
             frontend fe_http\n    bind 127.0.0.1:{http_port}\n"
        );
        let config = match tls_hosts_acl {
            true => config + &format!(
                "    acl tls_host req.hdr(host),lower,field(1,:) -f {d}/haproxy-certs/tls-hosts.txt\n\
                 \x20   http-request redirect scheme https code 301 if tls_host\n"
            ),
            false => config,
        } + "    http-request return status 200 content-type text/plain string plain\n";
        fs::write(dir.path().join("haproxy.cfg"), config).expect("config");
        let mut haproxy = Self {
            dir,
            port,
            http_port,
            child: None,
        };
        haproxy.run();
        haproxy
    }

    /// Starts (or restarts) HAProxy on the same config, and waits until it answers.
    fn run(&mut self) {
        let log = fs::File::create(self.path("haproxy.log")).expect("log");
        let child = Command::new("/usr/sbin/haproxy")
            .arg("-db")
            .arg("-f")
            .arg(self.path("haproxy.cfg"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn haproxy");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(self.path("admin.sock")).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
        {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            let log = fs::read_to_string(self.path("haproxy.log")).unwrap_or_default();
            assert!(exited.is_none(), "haproxy exited ({exited:?}):\n{log}");
            assert!(Instant::now() < deadline, "haproxy did not come up:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_file(self.path("admin.sock"));
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn api(&self) -> RuntimeApi {
        let addr = format!("unix:{}", self.path("admin.sock").display());
        RuntimeApi::new(addr.parse::<RuntimeApiAddr>().expect("address"))
    }

    fn installer(&self) -> Installer {
        Installer::new(self.path("certs"), self.path("haproxy-certs"), self.api())
    }

    /// The serial (upper-case hex) of the certificate served for `sni` (`None`: no SNI).
    fn served_serial(&self, sni: Option<&str>) -> String {
        let mut s_client = Command::new("openssl");
        s_client.args(["s_client", "-connect", &format!("127.0.0.1:{}", self.port)]);
        match sni {
            Some(name) => s_client.args(["-servername", name]),
            None => s_client.arg("-noservername"),
        };
        let handshake = s_client
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .expect("openssl s_client");
        let mut x509 = Command::new("openssl")
            .args(["x509", "-noout", "-serial"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl x509");
        std::io::Write::write_all(&mut x509.stdin.take().expect("stdin"), &handshake.stdout)
            .expect("pipe");
        let out = x509.wait_with_output().expect("openssl x509");
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        line.strip_prefix("serial=")
            .unwrap_or_else(|| panic!("no serial in {line:?}"))
            .to_owned()
    }

    async fn worker_pid(&self) -> String {
        let info = self.api().command("show info").await.expect("show info");
        info.lines()
            .find_map(|l| l.strip_prefix("Pid: "))
            .expect("Pid line")
            .to_owned()
    }

    /// The status of a plain-HTTP request for `host` (301: moved to HTTPS).
    fn http_status(&self, host: &str) -> u16 {
        use std::io::{Read, Write};
        let mut stream =
            std::net::TcpStream::connect(("127.0.0.1", self.http_port)).expect("connect");
        write!(
            stream,
            "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {response:?}"))
    }

    fn tls_hosts(&self) -> String {
        fs::read_to_string(self.path("certs/tls-hosts.txt")).expect("tls-hosts")
    }

    fn crt_list(&self) -> String {
        fs::read_to_string(self.path("certs/crt-list.txt")).expect("crt-list")
    }

    fn crt_list_line(&self, domain: &str) -> String {
        format!(
            "{}\n",
            self.path("haproxy-certs")
                .join(format!("{domain}.pem"))
                .display()
        )
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A self-signed certificate for one domain with a chosen serial.
struct TestCert {
    domain: String,
    pem: String,
    key_pem: String,
    serial: String,
}

impl TestCert {
    fn new(domain: &str, serial: &[u8]) -> Self {
        let mut params = CertificateParams::new(vec![domain.to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, domain);
        params.serial_number = Some(SerialNumber::from_slice(serial));
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("certificate");
        Self {
            domain: domain.to_owned(),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: hex::encode_upper(serial),
        }
    }

    fn desired(&self) -> DesiredCertificate {
        DesiredCertificate {
            domain: self.domain.clone(),
            bundle_pem: Zeroizing::new(format!("{}{}", self.pem, self.key_pem)),
            serial: self.serial.clone(),
        }
    }
}

fn names(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn certificates_are_added_replaced_and_removed_without_a_reload() {
    let haproxy = Haproxy::start();
    let installer = haproxy.installer();
    let default_serial = haproxy.served_serial(Some("unknown.test"));
    let pid = haproxy.worker_pid().await;
    let one = TestCert::new("one.test", &[0x01, 0x11]);
    // High bit set: the DER integer (and HAProxy's `Serial:`) gets a leading 00.
    let two = TestCert::new("two.test", &[0x92, 0x22]);

    // Add two.
    let report = installer
        .reconcile(&[one.desired(), two.desired()])
        .await
        .expect("reconcile");
    assert_eq!(names(&report.added), ["one.test", "two.test"]);
    assert!(
        report.replaced.is_empty() && report.removed.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    assert_eq!(haproxy.served_serial(Some("one.test")), "0111");
    assert_eq!(haproxy.served_serial(Some("two.test")), "9222");
    assert_eq!(haproxy.served_serial(Some("unknown.test")), default_serial);
    assert_eq!(haproxy.served_serial(None), default_serial);
    assert_eq!(
        haproxy.crt_list(),
        haproxy.crt_list_line("one.test") + &haproxy.crt_list_line("two.test")
    );
    assert_eq!(haproxy.tls_hosts(), "one.test\ntwo.test\n");
    assert_eq!(haproxy.http_status("one.test"), 301);
    assert_eq!(haproxy.http_status("TWO.test:80"), 301);
    assert_eq!(haproxy.http_status("unknown.test"), 200);
    for file in [
        "certs/one.test.pem",
        "certs/two.test.pem",
        "certs/crt-list.txt",
        "certs/tls-hosts.txt",
    ] {
        let mode = fs::metadata(haproxy.path(file))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }

    // The same desired state again: nothing to do.
    let report = installer
        .reconcile(&[one.desired(), two.desired()])
        .await
        .expect("reconcile");
    assert_eq!(report, InstallReport::default());

    // Replace one (renewal: a new serial).
    let one_renewed = TestCert::new("one.test", &[0x01, 0x12]);
    let report = installer
        .reconcile(&[one_renewed.desired(), two.desired()])
        .await
        .expect("reconcile");
    assert_eq!(names(&report.replaced), ["one.test"]);
    assert!(
        report.added.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    assert_eq!(haproxy.served_serial(Some("one.test")), "0112");
    assert_eq!(haproxy.served_serial(Some("two.test")), "9222");

    // Remove two.
    let report = installer
        .reconcile(&[one_renewed.desired()])
        .await
        .expect("reconcile");
    assert_eq!(names(&report.removed), ["two.test"]);
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(haproxy.served_serial(Some("two.test")), default_serial);
    assert_eq!(haproxy.served_serial(Some("one.test")), "0112");
    assert!(!haproxy.path("certs/two.test.pem").exists());
    assert_eq!(haproxy.crt_list(), haproxy.crt_list_line("one.test"));
    assert_eq!(haproxy.tls_hosts(), "one.test\n");
    assert_eq!(haproxy.http_status("two.test"), 200, "plain HTTP again");
    assert_eq!(haproxy.http_status("one.test"), 301);

    assert_eq!(haproxy.worker_pid().await, pid, "no reload, no restart");
}

#[tokio::test]
async fn a_stale_open_transaction_is_aborted_before_installing() {
    let haproxy = Haproxy::start();
    let default_serial = haproxy.served_serial(None);
    // Left open by a crashed updater: another certificate's payload in the default's transaction.
    let intruder = TestCert::new("intruder.test", &[0x66]).desired();
    let default_name = haproxy.path("default.pem").display().to_string();
    let reply = haproxy
        .api()
        .command_with_payload(
            &format!("set ssl cert {default_name}"),
            &intruder.bundle_pem,
        )
        .await
        .expect("set");
    assert_eq!(
        reply.trim_end(),
        format!("Transaction created for certificate {default_name}!")
    );

    let three = TestCert::new("three.test", &[0x33]);
    let report = haproxy
        .installer()
        .reconcile(&[three.desired()])
        .await
        .expect("reconcile");

    assert_eq!(names(&report.added), ["three.test"], "{report:?}");
    assert_eq!(haproxy.served_serial(Some("three.test")), "33");
    assert_eq!(
        haproxy.served_serial(None),
        default_serial,
        "the stale transaction was not committed"
    );
    let list = haproxy
        .api()
        .command("show ssl cert")
        .await
        .expect("show ssl cert");
    assert!(!list.contains("# transaction"), "{list}");
}

#[tokio::test]
async fn a_certificate_haproxy_refuses_fails_alone_and_leaves_no_file_behind() {
    let haproxy = Haproxy::start();
    let good = TestCert::new("good.test", &[0x47]);
    let other = TestCert::new("other.test", &[0x48]);
    // The certificate of one key with the private key of another: HAProxy refuses the commit.
    let mut mismatched = TestCert::new("bad.test", &[0x4B]);
    mismatched.key_pem = other.key_pem.clone();

    let report = haproxy
        .installer()
        .reconcile(&[mismatched.desired(), good.desired()])
        .await
        .expect("reconcile");

    assert_eq!(names(&report.added), ["good.test"]);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].0, "bad.test");
    assert!(report.failed[0].1.contains("commit ssl cert"), "{report:?}");
    assert!(
        !haproxy.path("certs/bad.test.pem").exists(),
        "a refused bundle must not stay on disk"
    );
    assert_eq!(haproxy.crt_list(), haproxy.crt_list_line("good.test"));
    assert_eq!(haproxy.tls_hosts(), "good.test\n");
    assert_eq!(
        haproxy.http_status("bad.test"),
        200,
        "no certificate, no redirect"
    );
    assert_eq!(haproxy.http_status("good.test"), 301);
    let list = haproxy
        .api()
        .command("show ssl cert")
        .await
        .expect("show ssl cert");
    assert!(!list.contains("# transaction"), "{list}");
    assert_eq!(haproxy.served_serial(Some("good.test")), "47");
}

#[tokio::test]
async fn certificates_survive_a_restart_and_need_no_second_install() {
    let mut haproxy = Haproxy::start();
    let one = TestCert::new("one.test", &[0x0A, 0x01]);
    let two = TestCert::new("two.test", &[0x0A, 0x02]);
    let report = haproxy
        .installer()
        .reconcile(&[one.desired(), two.desired()])
        .await
        .expect("reconcile");
    assert_eq!(report.added.len(), 2, "{report:?}");

    haproxy.stop();
    haproxy.run();

    assert_eq!(haproxy.served_serial(Some("one.test")), "0A01");
    assert_eq!(haproxy.served_serial(Some("two.test")), "0A02");
    assert_eq!(
        haproxy.http_status("two.test"),
        301,
        "the ACL file is loaded too"
    );
    let report = haproxy
        .installer()
        .reconcile(&[one.desired(), two.desired()])
        .await
        .expect("reconcile");
    assert_eq!(
        report,
        InstallReport::default(),
        "HAProxy loaded the same names"
    );
}

#[tokio::test]
async fn with_haproxy_down_the_files_are_written_and_served_after_its_start() {
    let mut haproxy = Haproxy::start();
    haproxy.stop();
    let one = TestCert::new("one.test", &[0x5E]);

    let result = haproxy.installer().reconcile(&[one.desired()]).await;

    assert!(
        matches!(result, Err(InstallError::RuntimeApi(_))),
        "{result:?}"
    );
    assert!(haproxy.path("certs/one.test.pem").exists());
    assert_eq!(haproxy.crt_list(), haproxy.crt_list_line("one.test"));
    haproxy.run();
    assert_eq!(haproxy.served_serial(Some("one.test")), "5E");
    assert_eq!(haproxy.http_status("one.test"), 301);
}

#[tokio::test]
async fn a_configuration_without_the_tls_hosts_acl_still_gets_its_certificates() {
    let haproxy = Haproxy::start_with(false);
    let one = TestCert::new("one.test", &[0x7A]);

    let report = haproxy
        .installer()
        .reconcile(&[one.desired()])
        .await
        .expect("reconcile");

    assert_eq!(names(&report.added), ["one.test"], "{report:?}");
    assert_eq!(haproxy.served_serial(Some("one.test")), "7A");
    assert_eq!(
        haproxy.tls_hosts(),
        "one.test\n",
        "ready for the next start"
    );
    assert_eq!(haproxy.http_status("one.test"), 200);
}
