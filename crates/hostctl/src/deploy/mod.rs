//! The client half of the digest deploy protocol (DESIGN.md section 3): find and hash the
//! files, tell the server the digests, upload only what it lacks (in batches, `bulk`).

pub mod bulk;
pub mod cache;
pub mod hashing;
pub mod limits;
pub mod progress;
pub mod timings;
pub mod upload;
pub mod walk;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use hosting_api::CreateDeploy;
use sha2::{Digest, Sha256};

use walk::HashedFile;

/// A fresh `Idempotency-Key` for one logical "create deploy" request.
///
/// It only has to be unique per attempt, not secret: time, process id and the request's
/// own inputs make a collision between two invocations practically impossible without
/// pulling in a random-number crate.
pub fn idempotency_key(dir: &Path, site: &str, attempt: u32) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(nanos.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(dir.as_os_str().as_encoded_bytes());
    hasher.update(site.as_bytes());
    hasher.update(attempt.to_le_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// The request body of `POST /sites/{site}/deploys`: the digest map and the message.
pub fn digest_map(files: &[HashedFile], message: Option<String>) -> CreateDeploy {
    let files: BTreeMap<String, String> = files
        .iter()
        .map(|f| (f.site_path.clone(), f.sha256.clone()))
        .collect();
    CreateDeploy { files, message }
}

/// How many files the upload touched: a file counts as uploaded when its hash was
/// `required`, even if another file with the same bytes carried them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCounts {
    pub total: usize,
    pub uploaded: usize,
    pub unchanged: usize,
}

impl FileCounts {
    /// Counts `files` against the server's `required` list.
    pub fn new(files: &[HashedFile], required: &[String]) -> Self {
        let required: HashSet<&str> = required.iter().map(String::as_str).collect();
        let uploaded = files
            .iter()
            .filter(|f| required.contains(f.sha256.as_str()))
            .count();
        FileCounts {
            total: files.len(),
            uploaded,
            unchanged: files.len() - uploaded,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn file(path: &str, sha: &str) -> HashedFile {
        HashedFile {
            site_path: path.into(),
            disk_path: PathBuf::from(path),
            sha256: sha.into(),
            size: 1,
        }
    }

    #[test]
    fn files_sharing_a_required_hash_all_count_as_uploaded() {
        let files = [file("/a", "h1"), file("/b", "h1"), file("/c", "h2")];
        let counts = FileCounts::new(&files, &["h1".to_owned()]);
        assert_eq!(
            counts,
            FileCounts {
                total: 3,
                uploaded: 2,
                unchanged: 1
            }
        );
    }

    #[test]
    fn the_digest_map_is_keyed_by_site_path() {
        let map = digest_map(&[file("/index.html", "h1")], None);
        assert_eq!(map.files.get("/index.html").map(String::as_str), Some("h1"));
    }

    #[test]
    fn idempotency_keys_differ_between_attempts() {
        let dir = Path::new("public");
        assert_ne!(
            idempotency_key(dir, "blog", 0),
            idempotency_key(dir, "blog", 1)
        );
        assert_eq!(idempotency_key(dir, "blog", 0).len(), 32);
    }
}
