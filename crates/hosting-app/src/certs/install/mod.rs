//! Installs custom-domain certificates into the running HAProxy without a reload, and on
//! disk, so that a restart or reload serves the same ones.
//!
//! For every domain it owns the installer keeps:
//! - `<cert_dir>/<domain>.pem`: chain (leaf first) + private key, mode 0600;
//! - the line `<haproxy_cert_dir>/<domain>.pem` in `<cert_dir>/crt-list.txt` (sorted);
//! - a HAProxy certificate of that name, in HAProxy's crt-list `<haproxy_cert_dir>/crt-list.txt`
//!   (the path must be spelled exactly as in `haproxy.cfg`);
//! - the line `<domain>` in `<cert_dir>/tls-hosts.txt`, and the pattern in HAProxy's ACL
//!   file `<haproxy_cert_dir>/tls-hosts.txt`, once HAProxy serves the domain's certificate:
//!   plain HTTP to a custom domain moves to HTTPS only then (haproxy.cfg), so a domain whose
//!   certificate is still on its way, or cannot be had, stays reachable over HTTP.
//!
//! The cert dir belongs to the installer: every `<domain>.pem` there that is not desired is
//! removed, so the platform's default certificate (`crt` in haproxy.cfg) lives elsewhere.
//!
//! Disk first, then the runtime API: a change made only at runtime is lost on the next
//! reload. Files are written to a temp file in the same folder, fsynced and renamed.
//!
//! HAProxy 2.6.12 has ONE global certificate transaction, and `set ssl cert B` while A's is
//! open silently puts B's certificate into A's transaction (research doc §0.3). Hence: one
//! reconcile at a time (a mutex), any open transaction aborted before each `set` and after
//! any failure, and every reply checked exactly.
//!
//! Outcomes: a domain HAProxy refuses goes to [`InstallReport::failed`], its files go back
//! to what they were before this reconcile (HAProxy refuses to START with a crt-list entry
//! it cannot load), and the next domains go on. If HAProxy cannot be reached the files are
//! still written (its next start loads them) and `reconcile` returns
//! [`InstallError::RuntimeApi`]; the next reconcile then loads them at runtime.

mod files;

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::PathBuf;

use tokio::sync::Mutex;
use zeroize::Zeroizing;

use super::haproxy::{
    first_line, parse_acl_patterns, parse_cert_list, parse_crt_list, parse_served_serial, reply_is,
    reply_succeeded, RuntimeApi, RuntimeApiError,
};
use super::x509::normalize_serial;
use files::{
    blocking, persist_file, remove_pem_files_except, restore_file, write_lists, Previous,
    CRT_LIST_FILE, TLS_HOSTS_FILE,
};

/// A certificate HAProxy should serve for a custom domain.
pub struct DesiredCertificate {
    /// Lower-case host name, already validated (letters, digits, '-', '.').
    pub domain: String,
    /// Chain (leaf first) followed by the private key, PEM.
    pub bundle_pem: Zeroizing<String>,
    /// Leaf serial, upper-case hex, no separators.
    pub serial: String,
}

// SECURITY: no derive: the bundle holds the private key.
impl fmt::Debug for DesiredCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DesiredCertificate")
            .field("domain", &self.domain)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

/// What one reconcile did, by domain name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InstallReport {
    pub added: Vec<String>,
    pub replaced: Vec<String>,
    pub removed: Vec<String>,
    /// (domain, reason); the domain keeps whatever HAProxy served before.
    pub failed: Vec<(String, String)>,
}

impl InstallReport {
    fn done(&mut self, result: &'static str, domain: &str, serial: &str) {
        tracing::info!(domain.name = %domain, certificate.serial = %serial, "certificate {result}");
        metrics::counter!(crate::metrics::CERTIFICATE_INSTALLS_TOTAL, "result" => result)
            .increment(1);
        let list = match result {
            "added" => &mut self.added,
            "replaced" => &mut self.replaced,
            _ => &mut self.removed,
        };
        list.push(domain.to_owned());
    }

    fn failed(&mut self, domain: &str, reason: String) {
        tracing::warn!(domain.name = %domain, reason = %reason, "certificate not installed");
        metrics::counter!(crate::metrics::CERTIFICATE_INSTALLS_TOTAL, "result" => "failed")
            .increment(1);
        self.failed.push((domain.to_owned(), reason));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot update the certificate folder {}: {source}", dir.display())]
    Disk {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The files are up to date; HAProxy loads them on its next start or reload.
    #[error(
        "HAProxy runtime API unreachable (certificate files are written for its next start): {0}"
    )]
    RuntimeApi(#[from] RuntimeApiError),
    #[error("HAProxy answered `{command}` with: {reply}")]
    UnexpectedReply { command: String, reply: String },
}

/// Why one domain's runtime step stopped: HAProxy is gone (stop everything), or it
/// refused this domain (record it, go on with the next).
enum StepError {
    Api(RuntimeApiError),
    Refused(String),
}

impl From<RuntimeApiError> for StepError {
    fn from(e: RuntimeApiError) -> Self {
        Self::Api(e)
    }
}

/// Keeps the custom-domain certificates on disk and in a running HAProxy in line.
pub struct Installer {
    cert_dir: PathBuf,
    /// `<haproxy_cert_dir>/`: the prefix of every HAProxy certificate name we own.
    name_prefix: String,
    api: RuntimeApi,
    /// One reconcile at a time: HAProxy 2.6 has a single certificate transaction.
    one_at_a_time: Mutex<()>,
}

impl Installer {
    /// `cert_dir`: where this process writes `<domain>.pem` files and `crt-list.txt`;
    /// `haproxy_cert_dir`: the same folder as HAProxy sees it (may differ in containers).
    /// Neither may contain whitespace (crt-list lines are split on it).
    pub fn new(cert_dir: PathBuf, haproxy_cert_dir: PathBuf, api: RuntimeApi) -> Self {
        let name_prefix = format!(
            "{}/",
            haproxy_cert_dir.to_string_lossy().trim_end_matches('/')
        );
        Self {
            cert_dir,
            name_prefix,
            api,
            one_at_a_time: Mutex::new(()),
        }
    }

    /// Makes disk and the running HAProxy match `desired` exactly: adds new domains,
    /// replaces those whose served serial differs, removes those not desired.
    pub async fn reconcile(
        &self,
        desired: &[DesiredCertificate],
    ) -> Result<InstallReport, InstallError> {
        let _one_at_a_time = self.one_at_a_time.lock().await;
        let mut report = InstallReport::default();
        // 1. Disk.
        let mut wanted = BTreeSet::new();
        let mut staged = Vec::new();
        for cert in desired {
            if let Err(reason) = check_desired(cert) {
                report.failed(&cert.domain, reason);
            } else if !wanted.insert(cert.domain.clone()) {
                report.failed(&cert.domain, "listed twice".to_owned());
            } else {
                let (path, bundle) = (self.pem_path(&cert.domain), cert.bundle_pem.clone());
                match blocking(move || persist_file(&path, bundle.as_bytes())).await {
                    Ok(previous) => staged.push((cert, previous)),
                    Err(e) => report.failed(&cert.domain, format!("cannot write its file: {e}")),
                }
            }
        }
        let (dir, keep) = (self.cert_dir.clone(), wanted.clone());
        let removed_from_disk = blocking(move || remove_pem_files_except(&dir, &keep))
            .await
            .map_err(|e| self.disk_error(e))?;
        self.write_lists(&wanted).await?;

        // 2. Runtime API.
        let result = self
            .apply_runtime(&staged, &wanted, &removed_from_disk, &mut report)
            .await;
        if result.is_err() {
            // Files restored after a refusal, before HAProxy went away, change the lists.
            self.write_lists(&wanted).await?;
        }
        result.map(|()| report)
    }

    async fn apply_runtime(
        &self,
        staged: &[(&DesiredCertificate, Previous)],
        wanted: &BTreeSet<String>,
        removed_from_disk: &BTreeSet<String>,
        report: &mut InstallReport,
    ) -> Result<(), InstallError> {
        let crt_list = self.crt_list_name();
        let unexpected = |command: &str, reply: &str| InstallError::UnexpectedReply {
            command: command.to_owned(),
            reply: first_line(reply).to_owned(),
        };
        let reply = self.api.command("show ssl cert").await?;
        let loaded: BTreeSet<String> = parse_cert_list(&reply)
            .ok_or_else(|| unexpected("show ssl cert", &reply))?
            .names
            .into_iter()
            .collect();
        let command = format!("show ssl crt-list {crt_list}");
        let reply = self.api.command(&command).await?;
        let listed: BTreeSet<String> = parse_crt_list(&reply, &crt_list)
            .ok_or_else(|| unexpected(&command, &reply))?
            .into_iter()
            .collect();

        for domain in removed_from_disk
            .iter()
            .filter(|d| !loaded.contains(&self.haproxy_name(d)))
        {
            report.done("removed", domain, "-");
        }
        for (cert, previous) in staged {
            match self.install(cert, &loaded, &listed).await {
                Ok(Some(result)) => report.done(result, &cert.domain, &cert.serial),
                Ok(None) => {}
                Err(StepError::Api(e)) => return Err(e.into()),
                Err(StepError::Refused(reason)) => {
                    self.restore(&cert.domain, previous).await;
                    report.failed(&cert.domain, reason);
                }
            }
        }
        // Disk first again (files restored after a refusal change the lists); then the
        // installed ones move to HTTPS, and removed ones stop before their certificate goes.
        let served = self.write_lists(wanted).await?;
        self.sync_tls_hosts(&served).await?;
        let stale = loaded
            .iter()
            .filter_map(|name| self.owned_domain(name))
            .filter(|d| !wanted.contains(*d));
        for domain in stale {
            match self.uninstall(domain, &listed).await {
                Ok(()) => report.done("removed", domain, "-"),
                Err(StepError::Api(e)) => return Err(e.into()),
                Err(StepError::Refused(reason)) => report.failed(domain, reason),
            }
        }
        Ok(())
    }

    /// Makes HAProxy's TLS-hosts ACL hold exactly `served`. A configuration without that
    /// ACL (an older haproxy.cfg) only gets a warning: it sends every host to HTTPS.
    async fn sync_tls_hosts(&self, served: &BTreeSet<String>) -> Result<(), InstallError> {
        let acl = self.tls_hosts_name();
        let command = format!("show acl {acl}");
        let reply = self.api.command(&command).await?;
        let Some(patterns) = parse_acl_patterns(&reply) else {
            tracing::warn!(acl = %acl, reply = %first_line(&reply), "HAProxy has no TLS-hosts ACL; plain HTTP to custom domains is redirected by its configuration alone");
            return Ok(());
        };
        let present: BTreeSet<String> = patterns.into_iter().collect();
        let changes = served
            .difference(&present)
            .map(|domain| format!("add acl {acl} {domain}"))
            .chain(
                present
                    .difference(served)
                    .filter(|pattern| valid_domain(pattern))
                    .map(|domain| format!("del acl {acl} {domain}")),
            );
        for command in changes {
            let reply = self.api.command(&command).await?;
            if !reply.trim().is_empty() {
                return Err(InstallError::UnexpectedReply {
                    reply: first_line(&reply).to_owned(),
                    command,
                });
            }
        }
        Ok(())
    }

    /// Adds or replaces one certificate at runtime; `None` if HAProxy already serves it.
    async fn install(
        &self,
        cert: &DesiredCertificate,
        loaded: &BTreeSet<String>,
        listed: &BTreeSet<String>,
    ) -> Result<Option<&'static str>, StepError> {
        let name = self.haproxy_name(&cert.domain);
        let (is_loaded, is_listed) = (loaded.contains(&name), listed.contains(&name));
        let served = match is_loaded {
            true => parse_served_serial(&self.api.command(&format!("show ssl cert {name}")).await?),
            false => None,
        };
        let up_to_date = served == Some(normalize_serial(&cert.serial));
        if is_listed && up_to_date {
            return Ok(None);
        }
        if !is_loaded {
            self.expect(&format!("new ssl cert {name}"), None, |r| {
                reply_is(r, &format!("New empty certificate store '{name}'!"))
            })
            .await?;
        }
        if !up_to_date {
            // Never "Transaction updated": that may be someone else's certificate (§0.3).
            self.abort_open_transaction().await?;
            let payload = payload(&cert.bundle_pem);
            self.expect(&format!("set ssl cert {name}"), Some(&payload), |r| {
                reply_is(r, &format!("Transaction created for certificate {name}!"))
            })
            .await?;
            self.expect(&format!("commit ssl cert {name}"), None, reply_succeeded)
                .await?;
        }
        if !is_listed {
            let command = format!("add ssl crt-list {} {name}", self.crt_list_name());
            self.expect(&command, None, reply_succeeded).await?;
        }
        Ok(Some(if is_listed { "replaced" } else { "added" }))
    }

    async fn uninstall(&self, domain: &str, listed: &BTreeSet<String>) -> Result<(), StepError> {
        let (name, crt_list) = (self.haproxy_name(domain), self.crt_list_name());
        if listed.contains(&name) {
            self.expect(&format!("del ssl crt-list {crt_list} {name}"), None, |r| {
                reply_is(
                    r,
                    &format!("Entry '{name}' deleted in crtlist '{crt_list}'!"),
                )
            })
            .await?;
        }
        self.abort_open_transaction().await?;
        self.expect(&format!("del ssl cert {name}"), None, |r| {
            reply_is(r, &format!("Certificate '{name}' deleted!"))
        })
        .await
    }

    /// Runs one command and checks its reply; on any other reply aborts whatever
    /// transaction is open, so that nobody commits a half-done (or mixed-up) one.
    async fn expect(
        &self,
        command: &str,
        payload: Option<&str>,
        ok: impl Fn(&str) -> bool,
    ) -> Result<(), StepError> {
        let reply = match payload {
            Some(payload) => self.api.command_with_payload(command, payload).await?,
            None => self.api.command(command).await?,
        };
        if ok(&reply) {
            return Ok(());
        }
        self.abort_open_transaction().await?;
        // Observed on 2.6.12: a payload larger than tune.bufsize (16 kB) gets no reply at all.
        let hint = match payload.is_some() && reply.trim().is_empty() {
            true => " (payload larger than HAProxy's tune.bufsize?)",
            false => "",
        };
        Err(StepError::Refused(format!(
            "`{command}`: {}{hint}",
            first_line(&reply)
        )))
    }

    /// Aborts the transaction `show ssl cert` reports open, if any (left by a failed
    /// update, a crash between `set` and `commit`, or an operator).
    async fn abort_open_transaction(&self) -> Result<(), StepError> {
        let reply = self.api.command("show ssl cert").await?;
        let list = parse_cert_list(&reply).ok_or_else(|| {
            StepError::Refused(format!("`show ssl cert`: {}", first_line(&reply)))
        })?;
        let Some(name) = list.transaction else {
            return Ok(());
        };
        tracing::warn!(certificate.name = %name, "aborting an open HAProxy certificate transaction");
        let reply = self.api.command(&format!("abort ssl cert {name}")).await?;
        match reply_is(
            &reply,
            &format!("Transaction aborted for certificate '{name}'!"),
        ) {
            true => Ok(()),
            false => Err(StepError::Refused(format!(
                "`abort ssl cert {name}`: {}",
                first_line(&reply)
            ))),
        }
    }

    /// Puts a domain's file back as it was before this reconcile (HAProxy refused the new one).
    async fn restore(&self, domain: &str, previous: &Previous) {
        let Previous::Written(old) = previous else {
            return;
        };
        let (path, old) = (self.pem_path(domain), old.clone());
        let restored =
            blocking(move || restore_file(&path, old.as_ref().map(|o| o.as_slice()))).await;
        if let Err(e) = restored {
            tracing::error!(domain.name = %domain, error = %e, "cannot restore the certificate file HAProxy refused");
        }
    }

    /// Writes the crt-list and the TLS-hosts list of the wanted domains that have a file;
    /// returns those domains.
    async fn write_lists(
        &self,
        wanted: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>, InstallError> {
        let (dir, prefix, wanted) = (
            self.cert_dir.clone(),
            self.name_prefix.clone(),
            wanted.clone(),
        );
        blocking(move || write_lists(&dir, &prefix, &wanted))
            .await
            .map_err(|e| self.disk_error(e))
    }

    fn disk_error(&self, source: io::Error) -> InstallError {
        InstallError::Disk {
            dir: self.cert_dir.clone(),
            source,
        }
    }

    fn pem_path(&self, domain: &str) -> PathBuf {
        self.cert_dir.join(format!("{domain}.pem"))
    }

    fn haproxy_name(&self, domain: &str) -> String {
        format!("{}{domain}.pem", self.name_prefix)
    }

    fn crt_list_name(&self) -> String {
        format!("{}{CRT_LIST_FILE}", self.name_prefix)
    }

    fn tls_hosts_name(&self) -> String {
        format!("{}{TLS_HOSTS_FILE}", self.name_prefix)
    }

    /// The domain of a HAProxy certificate name this installer owns.
    fn owned_domain<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_prefix(&self.name_prefix)?
            .strip_suffix(".pem")
            .filter(|d| valid_domain(d))
    }
}

/// SECURITY: the domain becomes a file name and part of admin-socket commands.
fn valid_domain(domain: &str) -> bool {
    domain.len() <= 253
        && domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.contains("..")
        && domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Refuses what HAProxy would refuse (or serve under the wrong serial) before it is persisted.
fn check_desired(cert: &DesiredCertificate) -> Result<(), String> {
    if !valid_domain(&cert.domain) {
        return Err("not a valid lower-case host name".to_owned());
    }
    let serial = normalize_serial(&cert.serial);
    if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("serial {:?} is not hex", cert.serial));
    }
    let leaf =
        leaf_serial(&cert.bundle_pem).ok_or("the bundle does not start with a PEM certificate")?;
    if leaf != serial {
        return Err(format!("the bundle's leaf has serial {leaf}, not {serial}"));
    }
    if !cert.bundle_pem.contains("PRIVATE KEY-----") {
        return Err("the bundle has no private key".to_owned());
    }
    Ok(())
}

fn leaf_serial(bundle: &str) -> Option<String> {
    // SECURITY: only a certificate is decoded; a leading key block would be copied unzeroized.
    if !bundle
        .trim_start()
        .starts_with("-----BEGIN CERTIFICATE-----")
    {
        return None;
    }
    super::x509::leaf_info(bundle).ok().map(|leaf| leaf.serial)
}

/// The bundle as a runtime-API payload: blank lines (legal between PEM blocks) would end it early.
fn payload(bundle: &str) -> Zeroizing<String> {
    let mut payload = Zeroizing::new(String::with_capacity(bundle.len()));
    for line in bundle.lines().filter(|l| !l.trim().is_empty()) {
        payload.push_str(line);
        payload.push('\n');
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::haproxy::RuntimeApiAddr;

    #[test]
    fn only_lower_case_host_names_are_accepted() {
        for good in ["a.test", "shop.customer-one.test", "xn--bcher-kva.example"] {
            assert!(valid_domain(good), "{good}");
        }
        for bad in [
            "",
            "default",
            "A.test",
            ".a.test",
            "-a.test",
            "a..test",
            "a/b.test",
            "../x.test",
            "a.test\n",
        ] {
            assert!(!valid_domain(bad), "{bad:?}");
        }
    }

    #[test]
    fn payload_drops_blank_lines_between_pem_blocks() {
        let bundle = "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n\n \n-----BEGIN PRIVATE KEY-----\nBB\n-----END PRIVATE KEY-----\n\n";
        assert_eq!(
            payload(bundle).as_str(),
            "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nBB\n-----END PRIVATE KEY-----\n"
        );
    }

    #[test]
    fn a_bundle_not_starting_with_a_certificate_is_refused() {
        let cert = |bundle: &str| DesiredCertificate {
            domain: "a.test".into(),
            bundle_pem: Zeroizing::new(bundle.into()),
            serial: "01".into(),
        };
        assert!(check_desired(&cert(
            "-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----\n"
        ))
        .is_err());
        assert!(check_desired(&cert("garbage")).is_err());
        assert!(!format!("{:?}", cert("SECRET")).contains("SECRET"));
    }

    #[test]
    fn haproxy_names_map_back_to_owned_domains_only() {
        let api = RuntimeApi::new(RuntimeApiAddr::Unix("/x.sock".into()));
        let installer = Installer::new("/data/certs".into(), "/etc/haproxy/certs/".into(), api);
        assert_eq!(
            installer.haproxy_name("a.test"),
            "/etc/haproxy/certs/a.test.pem"
        );
        assert_eq!(installer.crt_list_name(), "/etc/haproxy/certs/crt-list.txt");
        assert_eq!(
            installer.owned_domain("/etc/haproxy/certs/a.test.pem"),
            Some("a.test")
        );
        assert_eq!(installer.owned_domain("/etc/haproxy/default.pem"), None);
        assert_eq!(
            installer.owned_domain("/etc/haproxy/certs/sub/a.test.pem"),
            None
        );
        assert_eq!(
            installer.owned_domain("/etc/haproxy/certs/crt-list.txt"),
            None
        );
    }
}
