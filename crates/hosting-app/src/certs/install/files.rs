//! The installer's files: `<domain>.pem` bundles, `crt-list.txt` and `tls-hosts.txt` in
//! the cert dir. Every write goes to a temp file in the same folder (mode 0600), fsynced
//! and renamed, so HAProxy never loads a half-written file, even after a crash.

use std::collections::BTreeSet;
use std::fs::{self, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use super::valid_domain;

/// HAProxy's crt-list of the custom-domain certificates (named as in `haproxy.cfg`).
pub(super) const CRT_LIST_FILE: &str = "crt-list.txt";
/// The domains whose certificate HAProxy serves: its ACL sends their plain HTTP to HTTPS.
pub(super) const TLS_HOSTS_FILE: &str = "tls-hosts.txt";

/// A domain's file before this reconcile, to put back if HAProxy refuses the new one.
pub(super) enum Previous {
    Unchanged,
    Written(Option<Zeroizing<Vec<u8>>>),
}

/// Runs file I/O off the async workers; a panicked task becomes an I/O error.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

/// Writes `bundle` to `path` unless it already holds exactly that.
pub(super) fn persist_file(path: &Path, bundle: &[u8]) -> io::Result<Previous> {
    let old = match fs::read(path) {
        Ok(old) => Some(Zeroizing::new(old)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if old.as_ref().is_some_and(|old| old.as_slice() == bundle) {
        return Ok(Previous::Unchanged);
    }
    write_atomic(path, bundle)?;
    Ok(Previous::Written(old))
}

/// Puts `path` back to `old`: its former content, or no file at all.
pub(super) fn restore_file(path: &Path, old: Option<&[u8]>) -> io::Result<()> {
    match old {
        Some(old) => write_atomic(path, old),
        None => fs::remove_file(path),
    }
}

/// A temp file in the same folder (mode 0600), fsynced, renamed over `path`; then the
/// folder is fsynced so the rename survives a crash.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("a file path without a folder"))?;
    let mut file = tempfile::Builder::new()
        .prefix(".")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}

/// Writes the crt-list (`<prefix><domain>.pem` lines) and the TLS-hosts list of the
/// wanted domains that have a file in `dir`; returns those domains.
pub(super) fn write_lists(
    dir: &Path,
    prefix: &str,
    wanted: &BTreeSet<String>,
) -> io::Result<BTreeSet<String>> {
    let served = served_domains(dir, wanted)?;
    let crt_list: String = served
        .iter()
        .map(|d| format!("{prefix}{d}.pem\n"))
        .collect();
    let tls_hosts: String = served.iter().map(|d| format!("{d}\n")).collect();
    write_if_changed(&dir.join(CRT_LIST_FILE), &crt_list)?;
    write_if_changed(&dir.join(TLS_HOSTS_FILE), &tls_hosts)?;
    Ok(served)
}

/// The wanted domains whose file is on disk: what HAProxy serves (or will on its next start).
fn served_domains(dir: &Path, wanted: &BTreeSet<String>) -> io::Result<BTreeSet<String>> {
    Ok(pem_domains(dir)?.intersection(wanted).cloned().collect())
}

/// Rewrites `path` (atomically) unless it already holds `text`.
fn write_if_changed(path: &Path, text: &str) -> io::Result<()> {
    match fs::read_to_string(path) {
        Ok(current) if current == text => Ok(()),
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => write_atomic(path, text.as_bytes()),
    }
}

/// The domains with a `<domain>.pem` in `dir`.
fn pem_domains(dir: &Path) -> io::Result<BTreeSet<String>> {
    let mut domains = BTreeSet::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let domain = name
            .to_str()
            .and_then(|n| n.strip_suffix(".pem"))
            .filter(|d| valid_domain(d));
        domains.extend(domain.map(str::to_owned));
    }
    Ok(domains)
}

/// Removes every `<domain>.pem` in `dir` not in `keep` (the cert dir belongs to the
/// installer); returns the domains removed.
pub(super) fn remove_pem_files_except(
    dir: &Path,
    keep: &BTreeSet<String>,
) -> io::Result<BTreeSet<String>> {
    let stale: BTreeSet<String> = pem_domains(dir)?.difference(keep).cloned().collect();
    for domain in &stale {
        fs::remove_file(dir.join(format!("{domain}.pem")))?;
    }
    if !stale.is_empty() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_0600_and_rewritten_only_when_they_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.test.pem");
        assert!(matches!(
            persist_file(&path, b"one"),
            Ok(Previous::Written(None))
        ));
        assert!(matches!(
            persist_file(&path, b"one"),
            Ok(Previous::Unchanged)
        ));
        match persist_file(&path, b"two") {
            Ok(Previous::Written(Some(old))) => assert_eq!(old.as_slice(), b"one"),
            _ => panic!("expected the old content back"),
        }
        let mode = fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            pem_domains(dir.path()).expect("list"),
            BTreeSet::from(["a.test".to_owned()])
        );
        let removed = remove_pem_files_except(dir.path(), &BTreeSet::new()).expect("remove");
        assert_eq!(removed, BTreeSet::from(["a.test".to_owned()]));
        assert_eq!(
            fs::read_dir(dir.path()).expect("read_dir").count(),
            0,
            "no temp files left"
        );
    }
}
