//! A deploy as the serving path sees it: its files by path, its `_redirects` and
//! `_headers` rules, and how a request path resolves to a file. Built once per deploy
//! and cached; deploys never change, so neither does this.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hosting_rules::{HeaderRules, Redirects};

use super::names::Sha256;
use crate::store::ManifestEntry;

/// Rule files are configuration, not content: they are never served.
pub const REDIRECTS_FILE: &str = "/_redirects";
pub const HEADERS_FILE: &str = "/_headers";
pub const NOT_FOUND_FILE: &str = "/404.html";

#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    pub sha256: Sha256,
    pub size: u64,
}

#[derive(Debug)]
pub struct SiteManifest {
    pub deploy_id: String,
    /// When the deploy's content was created: every file's `Last-Modified`.
    pub last_modified: DateTime<Utc>,
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
        let files = entries
            .into_iter()
            .map(|e| {
                (
                    e.path,
                    FileRef {
                        sha256: e.sha256,
                        size: e.size,
                    },
                )
            })
            .collect();
        SiteManifest {
            deploy_id,
            last_modified,
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
