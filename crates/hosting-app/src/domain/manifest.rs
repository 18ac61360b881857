//! A deploy as the serving path sees it: its files by path, its `_redirects` and
//! `_headers` rules, and how a request path resolves to a file. Built once per deploy
//! and cached; deploys never change, so neither does this, and what every response of a
//! file needs (content type, validators) is computed here once rather than per request.
//!
//! Stored compactly, because the manifest cache holds thousands of them (issue 23): one
//! string holds every path, the files are one sorted slice (binary search, no hash-table
//! slack), a digest is its 32 bytes (its hex and the ETag are made when a response needs
//! them), and content types are shared by every manifest of the process. [`SiteManifest::weight`]
//! counts what this really holds, so the cache's byte budget bounds the process.

use std::collections::HashMap;
use std::mem::size_of;
use std::sync::{Mutex, OnceLock};

use axum::http::HeaderValue;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hosting_rules::{HeaderRules, Redirects};

use super::names::Sha256;
use crate::store::ManifestEntry;

/// Rule files are configuration, not content: they are never served.
pub const REDIRECTS_FILE: &str = "/_redirects";
pub const HEADERS_FILE: &str = "/_headers";
pub const NOT_FOUND_FILE: &str = "/404.html";

/// Smaller files gain nothing from compression.
const MIN_COMPRESS_BYTES: u64 = 256;

/// A file's content hash as bytes: the key of its blob and of the byte cache.
pub type Digest = [u8; 32];

/// The digest of a parsed `Sha256` (64 lower-case hex digits, checked at parse time).
pub fn digest_of(sha256: &Sha256) -> Digest {
    let mut digest = [0u8; 32];
    // A `Sha256` is always 64 hex digits, so this cannot fail; zeros would only make a
    // miss in the byte cache, never serve another file's bytes, since reads go by hex.
    let _ = hex::decode_to_slice(sha256.as_str(), &mut digest);
    digest
}

/// A file of a deploy, with the parts of its responses that never change.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    digest: Digest,
    pub size: u64,
    /// Index of its content type in the manifest's table ([`SiteManifest::content_type`]).
    content_type: u16,
    /// Worth compressing on the fly (a textual type, not tiny).
    pub compressible: bool,
    /// A precompressed `.br` or `.gz` sibling exists in the deploy.
    pub has_encoded_sibling: bool,
}

impl FileRef {
    /// A file whose content type is `types[content_type]`.
    fn new(sha256: &Sha256, size: u64, types: &[HeaderValue], content_type: u16) -> FileRef {
        let type_text = types
            .get(usize::from(content_type))
            .and_then(|t| t.to_str().ok())
            .unwrap_or_default();
        FileRef {
            digest: digest_of(sha256),
            size,
            content_type,
            compressible: size >= MIN_COMPRESS_BYTES && is_compressible(type_text),
            has_encoded_sibling: false,
        }
    }

    /// The content hash as bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The content hash as the blob store names it.
    pub fn sha256(&self) -> Sha256 {
        Sha256::from_digest(&self.digest)
    }

    /// The strong validator of the identity bytes: the content hash.
    pub fn etag(&self) -> HeaderValue {
        etag(&self.digest, None)
    }
}

/// `"<hex digest>"`, or `"<hex digest>.<suffix>"` for a representation made here (an
/// on-the-fly encoding): an ETag made per response costs one small allocation, where
/// keeping it in the manifest cost 106 bytes per file of every cached deploy.
pub fn etag(digest: &Digest, suffix: Option<&str>) -> HeaderValue {
    // Exactly the length: `Bytes` from a vector with spare capacity allocates again.
    let mut tag = vec![b'"'; 66 + suffix.map_or(0, |s| s.len() + 1)];
    let _ = hex::encode_to_slice(digest, &mut tag[1..65]);
    if let Some(suffix) = suffix {
        tag[65] = b'.';
        tag[66..66 + suffix.len()].copy_from_slice(suffix.as_bytes());
    }
    HeaderValue::from_maybe_shared(Bytes::from(tag))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// The content type of `path` as a header value shared by the whole process: a deploy's
/// thousands of files have a handful of types, so each manifest holds only a reference.
fn shared_content_type(path: &str) -> HeaderValue {
    static TYPES: OnceLock<Mutex<HashMap<String, HeaderValue>>> = OnceLock::new();
    let text = content_type_for(path);
    let types = TYPES.get_or_init(|| Mutex::new(HashMap::new()));
    let Ok(mut types) = types.lock() else {
        return header_value(&text);
    };
    if let Some(found) = types.get(&text) {
        return found.clone();
    }
    let value = header_value(&text);
    // Extensions are the deploys' to choose, but mime_guess maps them onto a fixed table:
    // the map stays as small as that table.
    types.insert(text, value.clone());
    value
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::copy_from_slice(text.as_bytes()))
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// Content type by extension, with a charset for text.
pub fn content_type_for(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let essence = mime.essence_str();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            essence,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "image/svg+xml"
                | "application/manifest+json"
        );
    if textual {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_owned()
    }
}

fn is_compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("");
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/manifest+json"
                | "application/wasm"
                | "image/svg+xml"
                | "image/x-icon"
                | "font/ttf"
                | "font/otf"
                | "application/vnd.ms-fontobject"
        )
}

/// A file and where its path lies in [`SiteManifest`]'s path string.
#[derive(Debug)]
struct Entry {
    start: u32,
    len: u32,
    file: FileRef,
}

#[derive(Debug)]
pub struct SiteManifest {
    pub deploy_id: String,
    /// When the deploy's content was created: every file's `Last-Modified`.
    pub last_modified: DateTime<Utc>,
    pub last_modified_header: HeaderValue,
    /// Every path, one after another; entries point into it.
    paths: String,
    /// Sorted by path.
    files: Box<[Entry]>,
    /// The deploy's distinct content types (their bytes shared by the process).
    types: Box<[HeaderValue]>,
    pub redirects: Redirects,
    pub headers: HeaderRules,
    /// Bytes of the `_redirects` and `_headers` files the rules were parsed from.
    rules_bytes: u64,
}

/// Where a request path leads before any rule is applied.
#[derive(Debug, PartialEq)]
pub enum Resolved<'a> {
    File {
        path: String,
        file: &'a FileRef,
    },
    /// `/docs` names the folder `/docs/`: redirect so relative links in its index work.
    AddSlash,
    Missing,
}

/// Heap bytes the allocator hands out per allocation beyond what was asked (size-class
/// rounding and headers, averaged), counted for each allocation a weight includes.
const ALLOCATION_SLACK: usize = 16;

/// What the parsed rules hold per byte of their source text, measured on representative
/// files (`tests/cache_weights.rs`: ~10 with 128 per redirect rule on top): rules keep
/// their patterns, targets and header values as owned strings, plus vectors of parts.
const RULES_BYTES_PER_SOURCE_BYTE: u64 = 12;

impl SiteManifest {
    pub fn new(
        deploy_id: String,
        last_modified: DateTime<Utc>,
        mut entries: Vec<ManifestEntry>,
        redirects: Redirects,
        headers: HeaderRules,
    ) -> SiteManifest {
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        entries.dedup_by(|a, b| a.path == b.path);
        let mut paths = String::with_capacity(entries.iter().map(|e| e.path.len()).sum());
        let mut files: Vec<Entry> = Vec::with_capacity(entries.len());
        let mut types: Vec<HeaderValue> = Vec::new();
        for e in &entries {
            let start = u32::try_from(paths.len()).unwrap_or(u32::MAX);
            paths.push_str(&e.path);
            let content_type = shared_content_type(&e.path);
            // A deploy has a handful of types: a linear search beats a map here.
            let index = match types.iter().position(|t| *t == content_type) {
                Some(i) => i,
                None => {
                    types.push(content_type);
                    types.len() - 1
                }
            };
            let index = u16::try_from(index).unwrap_or(u16::MAX);
            files.push(Entry {
                start,
                len: u32::try_from(e.path.len()).unwrap_or(u32::MAX),
                file: FileRef::new(&e.sha256, e.size, &types, index),
            });
        }
        let mut manifest = SiteManifest {
            deploy_id,
            last_modified,
            last_modified_header: header_value(&httpdate::fmt_http_date(last_modified.into())),
            paths,
            files: files.into_boxed_slice(),
            types: types.into_boxed_slice(),
            redirects,
            headers,
            rules_bytes: 0,
        };
        let with_siblings: Vec<usize> = (0..manifest.files.len())
            .filter(|&i| {
                let path = manifest.path_at(i);
                manifest.index_of(&format!("{path}.br")).is_some()
                    || manifest.index_of(&format!("{path}.gz")).is_some()
            })
            .collect();
        for i in with_siblings {
            manifest.files[i].file.has_encoded_sibling = true;
        }
        manifest
    }

    /// Sets the rules parsed from the deploy's `_redirects` and `_headers`, whose source
    /// was `source_bytes` long (what they hold is weighed from it).
    pub fn set_rules(&mut self, redirects: Redirects, headers: HeaderRules, source_bytes: u64) {
        self.redirects = redirects;
        self.headers = headers;
        self.rules_bytes = source_bytes;
    }

    /// The `Content-Type` of one of this manifest's files.
    pub fn content_type(&self, file: &FileRef) -> HeaderValue {
        self.types
            .get(usize::from(file.content_type))
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"))
    }

    fn path_at(&self, i: usize) -> &str {
        let entry = &self.files[i];
        let start = entry.start as usize;
        &self.paths[start..start + entry.len as usize]
    }

    fn index_of(&self, path: &str) -> Option<usize> {
        self.files
            .binary_search_by(|e| {
                let start = e.start as usize;
                self.paths[start..start + e.len as usize].cmp(path)
            })
            .ok()
    }

    /// A servable file at exactly `path`.
    pub fn file(&self, path: &str) -> Option<&FileRef> {
        if path == REDIRECTS_FILE || path == HEADERS_FILE {
            return None;
        }
        self.entry(path)
    }

    /// The raw entry, rule files included (to load the rules themselves).
    pub fn entry(&self, path: &str) -> Option<&FileRef> {
        self.index_of(path).map(|i| &self.files[i].file)
    }

    /// Index files and clean URLs: `/` and `/dir/` -> `index.html`; `/about` ->
    /// `/about.html`, or a redirect to `/about/` when only `/about/index.html` exists.
    pub fn resolve(&self, path: &str) -> Resolved<'_> {
        if path.ends_with('/') {
            let index = format!("{path}index.html");
            return match self.file(&index) {
                Some(file) => Resolved::File { path: index, file },
                None => Resolved::Missing,
            };
        }
        if let Some(file) = self.file(path) {
            return Resolved::File {
                path: path.to_owned(),
                file,
            };
        }
        let html = format!("{path}.html");
        if let Some(file) = self.file(&html) {
            return Resolved::File { path: html, file };
        }
        if self.file(&format!("{path}/index.html")).is_some() {
            return Resolved::AddSlash;
        }
        Resolved::Missing
    }

    pub fn exists(&self, path: &str) -> bool {
        !matches!(self.resolve(path), Resolved::Missing)
    }

    /// The heap bytes this manifest holds, for the byte-bounded cache: the struct (in its
    /// `Arc`), the path string, the file slice, the deploy id and header value, and the
    /// parsed rules (estimated from their source). Content types are shared and not
    /// counted. `tests/cache_weights.rs` checks this against a counting allocator.
    pub fn weight(&self) -> u64 {
        let fixed = size_of::<SiteManifest>() + 2 * size_of::<usize>();
        let heap = self.paths.capacity()
            + self.files.len() * size_of::<Entry>()
            + self.types.len() * size_of::<HeaderValue>()
            + self.deploy_id.capacity()
            + self.last_modified_header.len();
        // The rows a manifest is built from are freed once it is built; the holes they
        // leave cost about an allocation's slack per file (measured).
        let allocations = 6 + self.files.len();
        let rules = self.rules_bytes.saturating_mul(RULES_BYTES_PER_SOURCE_BYTE)
            + (self.redirects.len() * 128) as u64;
        (fixed + heap + allocations * ALLOCATION_SLACK) as u64 + rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(paths: &[&str]) -> SiteManifest {
        let entries = paths
            .iter()
            .map(|p| ManifestEntry {
                path: (*p).to_owned(),
                sha256: Sha256::parse(&"a".repeat(64)).expect("sha"),
                size: 1,
            })
            .collect();
        SiteManifest::new(
            "d".into(),
            Utc::now(),
            entries,
            Redirects::default(),
            HeaderRules::default(),
        )
    }

    fn resolved_path(m: &SiteManifest, path: &str) -> Option<String> {
        match m.resolve(path) {
            Resolved::File { path, .. } => Some(path),
            _ => None,
        }
    }

    #[test]
    fn folders_serve_their_index() {
        let m = manifest(&["/index.html", "/docs/index.html"]);
        assert_eq!(resolved_path(&m, "/").as_deref(), Some("/index.html"));
        assert_eq!(
            resolved_path(&m, "/docs/").as_deref(),
            Some("/docs/index.html")
        );
        assert_eq!(m.resolve("/docs"), Resolved::AddSlash);
    }

    #[test]
    fn clean_urls_find_the_html_file() {
        let m = manifest(&["/about.html", "/about/team.html"]);
        assert_eq!(resolved_path(&m, "/about").as_deref(), Some("/about.html"));
        assert_eq!(
            resolved_path(&m, "/about/team").as_deref(),
            Some("/about/team.html")
        );
        assert_eq!(m.resolve("/missing"), Resolved::Missing);
    }

    #[test]
    fn a_file_keeps_its_digest_and_its_validators_are_made_from_it() {
        let hex = "0123456789abcdef".repeat(4);
        let sha = Sha256::parse(&hex).expect("sha");
        let m = SiteManifest::new(
            "d".into(),
            Utc::now(),
            vec![ManifestEntry {
                path: "/a.css".into(),
                sha256: sha.clone(),
                size: 300,
            }],
            Redirects::default(),
            HeaderRules::default(),
        );
        let file = m.entry("/a.css").expect("file");
        assert_eq!(file.sha256(), sha);
        assert_eq!(file.etag(), format!("\"{hex}\"").as_str());
        assert_eq!(
            etag(file.digest(), Some("br")),
            format!("\"{hex}.br\"").as_str()
        );
        assert_eq!(m.content_type(file), "text/css; charset=utf-8");
        assert!(file.compressible);
    }

    #[test]
    fn paths_are_found_in_any_input_order_and_siblings_are_marked() {
        let m = manifest(&["/z.html", "/a.js.gz", "/a.js", "/m/index.html", "/b.html"]);
        for path in ["/z.html", "/a.js", "/a.js.gz", "/m/index.html", "/b.html"] {
            assert!(m.entry(path).is_some(), "{path}");
        }
        assert!(m.entry("/c.html").is_none());
        assert!(m.entry("/a.j").is_none());
        assert!(m.entry("/a.js").is_some_and(|f| f.has_encoded_sibling));
        assert!(m.entry("/b.html").is_some_and(|f| !f.has_encoded_sibling));
        assert_eq!(m.resolve("/m"), Resolved::AddSlash);
    }

    #[test]
    fn rule_files_are_never_served() {
        let m = manifest(&["/_redirects", "/_headers"]);
        assert_eq!(m.resolve("/_redirects"), Resolved::Missing);
        assert_eq!(m.resolve("/_headers"), Resolved::Missing);
        assert!(m.entry("/_redirects").is_some());
    }
}
