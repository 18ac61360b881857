//! Checking a hashed folder against the server's deploy limits (`GET /api/v1/limits`)
//! before anything is created, so an oversized file fails fast with sizes a person reads.

use hosting_api::Limits;

use super::walk::HashedFile;
use crate::output::human_size;

/// Why the folder cannot be deployed to this server as it is.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("the folder has {count} files; the server accepts at most {max} in one deploy")]
    TooManyFiles { count: usize, max: u64 },
    #[error(
        "{path} is {}; the server accepts files up to {}{}",
        human_size(*size), human_size(*max), others_note(*others)
    )]
    FileTooLarge {
        path: String,
        size: u64,
        max: u64,
        /// How many other files are over the limit too.
        others: usize,
    },
}

fn others_note(others: usize) -> String {
    match others {
        0 => String::new(),
        1 => " (1 more file is too large)".to_owned(),
        n => format!(" ({n} more files are too large)"),
    }
}

/// Checks the file count and each file's size; names the largest file over the limit.
pub fn check(files: &[HashedFile], limits: &Limits) -> Result<(), LimitError> {
    if files.len() as u64 > limits.max_files {
        return Err(LimitError::TooManyFiles {
            count: files.len(),
            max: limits.max_files,
        });
    }
    let mut too_large: Vec<&HashedFile> = files
        .iter()
        .filter(|f| f.size > limits.max_file_bytes)
        .collect();
    too_large.sort_by_key(|f| std::cmp::Reverse(f.size));
    match too_large.first() {
        Some(largest) => Err(LimitError::FileTooLarge {
            path: largest.site_path.clone(),
            size: largest.size,
            max: limits.max_file_bytes,
            others: too_large.len() - 1,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn file(path: &str, size: u64) -> HashedFile {
        HashedFile {
            site_path: path.into(),
            disk_path: PathBuf::from(path),
            sha256: "h".into(),
            size,
        }
    }

    const LIMITS: Limits = Limits {
        max_files: 3,
        max_file_bytes: 1024 * 1024,
        max_deploy_bytes: 10 * 1024 * 1024,
    };

    #[test]
    fn the_largest_oversized_file_is_named_in_human_units() {
        let files = [
            file("/a.bin", 2 * 1024 * 1024),
            file("/b.bin", 3 * 1024 * 1024),
            file("/ok", 10),
        ];
        let err = check(&files, &LIMITS).expect_err("too large");
        assert_eq!(
            err.to_string(),
            "/b.bin is 3.00 MiB; the server accepts files up to 1.00 MiB (1 more file is too large)"
        );
    }

    #[test]
    fn too_many_files_are_refused_and_a_fitting_folder_passes() {
        let files: Vec<HashedFile> = (0..4).map(|i| file(&format!("/{i}"), 1)).collect();
        assert!(matches!(
            check(&files, &LIMITS),
            Err(LimitError::TooManyFiles { count: 4, max: 3 })
        ));
        assert!(check(&files[..3], &LIMITS).is_ok());
    }
}
