//! Name tables that refuse duplicates, case/Unicode collisions and file/directory
//! conflicts, so every site path maps to exactly one file on any filesystem or CDN.
//!
//! The one place these rules live: the archive reader uses them for `.tar.gz` entries,
//! and the server's digest route for the paths of a JSON file list, so both ways to
//! deploy refuse the same pairs with the same error.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

use crate::error::ArchiveError;

/// The site paths of one deploy seen so far, keyed by their folded form (see [`fold`]):
/// add each file (and directory) once; a path that another one already takes is refused.
#[derive(Debug, Default)]
pub struct Names {
    /// folded path -> site path of each regular file.
    files: HashMap<String, String>,
    /// folded path -> site path of each directory, explicit or implied by a file's parents.
    directories: HashMap<String, String>,
}

impl Names {
    /// Records a regular file (a site path such as `/css/site.css`), refusing it if its
    /// path is already taken: the same path, one differing only in case or Unicode
    /// normalization (NFC / NFD), or a directory.
    pub fn add_file(&mut self, path: &str) -> Result<(), ArchiveError> {
        let key = fold(path);
        if let Some(other) = self.files.get(&key) {
            // SECURITY: duplicates are the overwrite vehicle of RUSTSEC-2018-0002 and make
            // "last one wins" listings order-dependent (Android CVE-2013-4787).
            return Err(if other == path {
                ArchiveError::DuplicatePath {
                    entry: path.to_owned(),
                }
            } else {
                // SECURITY: case-insensitive filesystems and CDNs would conflate these
                // (git CVE-2014-9390: `.Git`, NFD/NFC forms on HFS+).
                ArchiveError::CollidingPath {
                    entry: path.to_owned(),
                    other: other.clone(),
                }
            });
        }
        // SECURITY: a file where a directory is (or will be) cannot be stored or served
        // unambiguously.
        if let Some(other) = self.directories.get(&key) {
            return Err(conflict(path, other));
        }
        self.add_parents(path)?;
        self.files.insert(key, path.to_owned());
        Ok(())
    }

    /// Records a directory entry, refusing it if a file already has its path.
    pub fn add_directory(&mut self, path: &str) -> Result<(), ArchiveError> {
        self.add_parents(path)?;
        self.add_dir_key(path)
    }

    /// Records every proper parent of `path` as a directory.
    fn add_parents(&mut self, path: &str) -> Result<(), ArchiveError> {
        let mut end = 0;
        while let Some(offset) = path[end + 1..].find('/') {
            end += 1 + offset;
            self.add_dir_key(&path[..end])
                .map_err(|_| self.conflict_with_file(path, &path[..end]))?;
        }
        Ok(())
    }

    /// Inserts one directory, failing when a file holds its folded path.
    fn add_dir_key(&mut self, dir: &str) -> Result<(), ArchiveError> {
        let key = fold(dir);
        if let Some(other) = self.files.get(&key) {
            return Err(conflict(dir, other));
        }
        // Repeated and case-variant directory entries are harmless: only files collide.
        self.directories
            .entry(key)
            .or_insert_with(|| dir.to_owned());
        Ok(())
    }

    /// The conflict error for `path`, whose parent `dir` is already a file.
    fn conflict_with_file(&self, path: &str, dir: &str) -> ArchiveError {
        let other = self
            .files
            .get(&fold(dir))
            .cloned()
            .unwrap_or_else(|| dir.to_owned());
        conflict(path, &other)
    }
}

fn conflict(entry: &str, other: &str) -> ArchiveError {
    ArchiveError::FileDirectoryConflict {
        entry: entry.to_owned(),
        other: other.to_owned(),
    }
}

/// The collision key: NFD, lower-case, then NFC, so `Café`, `café` and `cafe\u{301}`
/// share one key whatever form the case mapping sees.
pub(crate) fn fold(path: &str) -> String {
    path.nfd()
        .collect::<String>()
        .to_lowercase()
        .nfc()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_files_in_nested_folders_are_accepted() {
        let mut names = Names::default();
        names.add_directory("/css").expect("dir");
        names.add_file("/css/site.css").expect("file");
        names.add_file("/index.html").expect("file");
        names.add_file("/css/deep/x.css").expect("file");
    }

    #[test]
    fn the_same_file_twice_is_a_duplicate() {
        let mut names = Names::default();
        names.add_file("/a.html").expect("first");
        let err = names.add_file("/a.html").expect_err("duplicate");
        assert!(matches!(err, ArchiveError::DuplicatePath { .. }), "{err}");
    }

    #[test]
    fn case_and_normalization_variants_collide() {
        let mut names = Names::default();
        names.add_file("/Caf\u{e9}.html").expect("first");
        let err = names.add_file("/cafe\u{301}.html").expect_err("collision");
        assert!(matches!(err, ArchiveError::CollidingPath { .. }), "{err}");
    }

    #[test]
    fn a_file_cannot_share_a_path_with_a_directory_in_either_order() {
        let mut names = Names::default();
        names.add_file("/docs/a.html").expect("file");
        let err = names
            .add_file("/Docs")
            .expect_err("file over implied directory");
        assert!(
            matches!(err, ArchiveError::FileDirectoryConflict { .. }),
            "{err}"
        );

        let mut names = Names::default();
        names.add_file("/docs").expect("file");
        let err = names
            .add_file("/docs/a.html")
            .expect_err("file under a file");
        assert!(
            matches!(err, ArchiveError::FileDirectoryConflict { .. }),
            "{err}"
        );
        let err = names
            .add_directory("/docs")
            .expect_err("directory over a file");
        assert!(
            matches!(err, ArchiveError::FileDirectoryConflict { .. }),
            "{err}"
        );
    }

    #[test]
    fn repeated_directory_entries_are_harmless() {
        let mut names = Names::default();
        names.add_directory("/css").expect("first");
        names.add_directory("/css").expect("again");
        names.add_directory("/CSS").expect("case variant");
    }
}
