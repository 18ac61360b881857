//! Resource limits for one archive, and the running tally checked against them.
//!
//! Every limit is checked from the tar header *before* the entry's bytes are read, so an
//! over-limit archive is refused without inflating or storing anything it claims to hold.

use crate::error::ArchiveError;

/// Bounds applied to one deploy archive while it streams.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Maximum number of regular files (directory entries are bounded by the same number).
    pub max_files: u64,
    /// Maximum size of one regular file, in bytes.
    pub max_file_bytes: u64,
    /// Maximum sum of all regular files' sizes, in bytes.
    pub max_total_bytes: u64,
    /// uncompressed/compressed bytes
    pub max_expansion_ratio: u64,
    /// bytes of one entry's headers incl. PAX/GNU long-name extensions
    pub max_header_bytes: u64,
}

impl Default for Limits {
    /// 20,000 files, 25 MiB per file, 500 MiB in total, expansion ratio 200, 64 KiB of
    /// headers per entry (DESIGN.md section 3).
    fn default() -> Self {
        Self {
            max_files: 20_000,
            max_file_bytes: 25 * 1024 * 1024,
            max_total_bytes: 500 * 1024 * 1024,
            max_expansion_ratio: 200,
            max_header_bytes: 64 * 1024,
        }
    }
}

/// Counts of what the archive has declared so far.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    files: u64,
    directories: u64,
    total_bytes: u64,
}

impl Tally {
    /// Accounts for one regular file before any of its bytes are read.
    pub(crate) fn add_file(
        &mut self,
        limits: &Limits,
        path: &str,
        size: u64,
    ) -> Result<(), ArchiveError> {
        // SECURITY: file count is capped before the sink runs (Go CVE-2021-33196 class:
        // unbounded member counts exhaust memory and the blob store).
        if self.files >= limits.max_files {
            return Err(ArchiveError::TooManyFiles {
                entry: path.to_owned(),
                limit: limits.max_files,
            });
        }
        // SECURITY: the size comes from the header (PAX `size` applied by the tar crate)
        // and is checked before the sink sees a byte; the reader handed to the sink is
        // limited to exactly this size, so the check cannot be outrun.
        if size > limits.max_file_bytes {
            return Err(ArchiveError::FileTooLarge {
                entry: path.to_owned(),
                size,
                limit: limits.max_file_bytes,
            });
        }
        // SECURITY: many files each under the per-file cap must not add up past the
        // per-deploy cap (the second bomb shape in the reliability anchors, 1a).
        let total = self.total_bytes.saturating_add(size);
        if total > limits.max_total_bytes {
            return Err(ArchiveError::TotalTooLarge {
                entry: path.to_owned(),
                limit: limits.max_total_bytes,
            });
        }
        self.files += 1;
        self.total_bytes = total;
        Ok(())
    }

    /// Accounts for one directory entry.
    pub(crate) fn add_directory(
        &mut self,
        limits: &Limits,
        path: &str,
    ) -> Result<(), ArchiveError> {
        // SECURITY: directory entries carry no data but still cost a header read and a
        // name-table slot each; without a cap, millions of them would be free to send.
        if self.directories >= limits.max_files {
            return Err(ArchiveError::TooManyDirectories {
                entry: path.to_owned(),
                limit: limits.max_files,
            });
        }
        self.directories += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limits_match_the_design() {
        let limits = Limits::default();
        assert_eq!(limits.max_files, 20_000);
        assert_eq!(limits.max_file_bytes, 25 << 20);
        assert_eq!(limits.max_total_bytes, 500 << 20);
        assert_eq!(limits.max_expansion_ratio, 200);
        assert_eq!(limits.max_header_bytes, 64 << 10);
    }

    #[test]
    fn files_under_the_per_file_cap_are_still_refused_once_their_sum_passes_the_total() {
        let limits = Limits {
            max_file_bytes: 10,
            max_total_bytes: 15,
            ..Limits::default()
        };
        let mut tally = Tally::default();
        tally.add_file(&limits, "/a", 10).expect("first file fits");
        let err = tally
            .add_file(&limits, "/b", 10)
            .expect_err("sum is over the total");
        assert!(matches!(err, ArchiveError::TotalTooLarge { .. }), "{err}");
    }

    #[test]
    fn the_file_after_the_last_allowed_one_is_refused() {
        let limits = Limits {
            max_files: 1,
            ..Limits::default()
        };
        let mut tally = Tally::default();
        tally.add_file(&limits, "/a", 0).expect("first file fits");
        let err = tally
            .add_file(&limits, "/b", 0)
            .expect_err("second file is one too many");
        assert!(err.is_too_large(), "{err}");
    }
}
