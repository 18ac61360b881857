//! A deploy as the serving path sees it: its files by path, its `_redirects` and
//! `_headers` rules, and how a request path resolves to a file. Built once per deploy
//! and cached; deploys never change, so neither does this, and what every response of a
//! file needs (content type, validators) is computed here once rather than per request.

use std::collections::HashMap;

use axum::http::HeaderValue;
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

/// A file of a deploy, with the parts of its responses that never change.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    pub sha256: Sha256,
    pub size: u64,
    pub content_type: HeaderValue,
    /// The strong validator of the identity bytes: the content hash.
    pub etag: HeaderValue,
    /// Worth compressing on the fly (a textual type, not tiny).
    pub compressible: bool,
    /// A precompressed `.br` or `.gz` sibling exists in the deploy.
    pub has_encoded_sibling: bool,
}

impl FileRef {
    pub fn new(path: &str, sha256: Sha256, size: u64) -> FileRef {
        let content_type = content_type_for(path);
        let compressible = size >= MIN_COMPRESS_BYTES && is_compressible(&content_type);
        FileRef {
            etag: header_value(&format!("\"{sha256}\"")),
            content_type: header_value(&content_type),
            sha256,
            size,
            compressible,
            has_encoded_sibling: false,
        }
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text)
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

#[derive(Debug)]
pub struct SiteManifest {
    pub deploy_id: String,
    /// When the deploy's content was created: every file's `Last-Modified`.
    pub last_modified: DateTime<Utc>,
    pub last_modified_header: HeaderValue,
    files: HashMap<String, FileRef>,
    pub redirects: Redirects,
    pub headers: HeaderRules,
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

impl SiteManifest {
    pub fn new(
        deploy_id: String,
        last_modified: DateTime<Utc>,
        entries: Vec<ManifestEntry>,
        redirects: Redirects,
        headers: HeaderRules,
    ) -> SiteManifest {
        let mut files: HashMap<String, FileRef> = entries
            .into_iter()
            .map(|e| {
                let file = FileRef::new(&e.path, e.sha256, e.size);
                (e.path, file)
            })
            .collect();
        let with_siblings: Vec<String> = files
            .keys()
            .filter(|path| {
                files.contains_key(&format!("{path}.br"))
                    || files.contains_key(&format!("{path}.gz"))
            })
            .cloned()
            .collect();
        for path in with_siblings {
            if let Some(file) = files.get_mut(&path) {
                file.has_encoded_sibling = true;
            }
        }
        let last_modified_header = header_value(&httpdate::fmt_http_date(last_modified.into()));
        SiteManifest {
            deploy_id,
            last_modified,
            last_modified_header,
            files,
            redirects,
            headers,
        }
    }

    /// A servable file at exactly `path`.
    pub fn file(&self, path: &str) -> Option<&FileRef> {
        if path == REDIRECTS_FILE || path == HEADERS_FILE {
            return None;
        }
        self.files.get(path)
    }

    /// The raw entry, rule files included (to load the rules themselves).
    pub fn entry(&self, path: &str) -> Option<&FileRef> {
        self.files.get(path)
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

    /// Approximate bytes held, for the byte-bounded cache.
    pub fn weight(&self) -> u32 {
        let files: usize = self.files.keys().map(|k| k.len() + 64 + 48).sum();
        u32::try_from(files + 1024 + self.redirects.len() * 128).unwrap_or(u32::MAX)
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
    fn rule_files_are_never_served() {
        let m = manifest(&["/_redirects", "/_headers"]);
        assert_eq!(m.resolve("/_redirects"), Resolved::Missing);
        assert_eq!(m.resolve("/_headers"), Resolved::Missing);
        assert!(m.entry("/_redirects").is_some());
    }
}
