//! Entry types, path rules and name collisions: each refused with an error naming the entry.

use hosting_archive::{ArchiveError, ForbiddenKind, PathProblem};

use crate::support::{refuse, RawTar};

fn path_problem(name: &[u8]) -> (String, PathProblem, String) {
    match refuse(
        &RawTar::new()
            .file("ok.html", b"ok")
            .entry(name, b'0', b"x")
            .finish(),
    ) {
        ArchiveError::InvalidPath { entry, problem } => {
            let shown = ArchiveError::InvalidPath {
                entry: entry.clone(),
                problem,
            }
            .to_string();
            (entry, problem, shown)
        }
        other => panic!("expected a path error, got {other}"),
    }
}

fn forbidden(typeflag: u8) -> ForbiddenKind {
    match refuse(
        &RawTar::new()
            .entry(b"thing", typeflag, b"")
            .file("index.html", b"x")
            .finish(),
    ) {
        ArchiveError::ForbiddenType { entry, kind } => {
            assert_eq!(entry, "thing");
            kind
        }
        other => panic!("expected a forbidden type, got {other}"),
    }
}

#[test]
fn a_parent_directory_entry_is_refused_as_escaping_the_root() {
    let (entry, problem, shown) = path_problem(b"../etc/passwd");
    assert_eq!(entry, "../etc/passwd");
    assert_eq!(problem, PathProblem::ParentComponent);
    assert!(
        shown.starts_with(r#"entry "../etc/passwd": path escapes the archive root"#),
        "{shown}"
    );
}

#[test]
fn a_parent_component_inside_the_path_is_refused_too() {
    assert_eq!(
        path_problem(b"a/../../escape.txt").1,
        PathProblem::ParentComponent
    );
}

#[test]
fn an_absolute_entry_is_refused() {
    assert_eq!(path_problem(b"/etc/escape.txt").1, PathProblem::Absolute);
}

#[test]
fn a_backslash_in_a_name_is_refused() {
    assert_eq!(path_problem(b"..\\..\\x").1, PathProblem::Backslash);
}

#[test]
fn a_windows_drive_prefix_is_refused() {
    assert_eq!(path_problem(b"C:/x").1, PathProblem::DrivePrefix);
    assert_eq!(path_problem(b"c:x").1, PathProblem::DrivePrefix);
}

#[test]
fn a_non_utf8_name_is_refused() {
    let (entry, problem, _) = path_problem(b"caf\xe9.html");
    assert_eq!(problem, PathProblem::NotUtf8);
    assert_eq!(entry, "caf\u{fffd}.html");
}

#[test]
fn a_control_character_in_a_name_is_refused() {
    assert_eq!(
        path_problem(b"a\x1bb.html").1,
        PathProblem::ControlCharacter
    );
}

#[test]
fn an_empty_name_is_refused() {
    assert_eq!(path_problem(b"").1, PathProblem::Empty);
}

#[test]
fn a_symlink_is_refused() {
    assert_eq!(forbidden(b'2'), ForbiddenKind::SymbolicLink);
}

#[test]
fn a_hardlink_is_refused() {
    assert_eq!(forbidden(b'1'), ForbiddenKind::HardLink);
}

#[test]
fn a_character_device_is_refused() {
    assert_eq!(forbidden(b'3'), ForbiddenKind::CharacterDevice);
}

#[test]
fn a_block_device_is_refused() {
    assert_eq!(forbidden(b'4'), ForbiddenKind::BlockDevice);
}

#[test]
fn a_fifo_is_refused() {
    assert_eq!(forbidden(b'6'), ForbiddenKind::Fifo);
}

#[test]
fn a_contiguous_file_and_an_unknown_type_are_refused() {
    assert_eq!(forbidden(b'7'), ForbiddenKind::Contiguous);
    assert_eq!(forbidden(b'Z'), ForbiddenKind::Other(b'Z'));
}

#[test]
fn a_symlink_error_names_the_entry_and_the_rule() {
    let err = refuse(&RawTar::new().entry(b"link", b'2', b"").finish());
    assert_eq!(
        err.to_string(),
        r#"entry "link": symbolic links are not allowed (only regular files and directories)"#
    );
    assert_eq!(err.entry(), Some("link"));
    assert!(!err.is_too_large());
}

#[test]
fn a_duplicate_path_is_refused() {
    let err = refuse(
        &RawTar::new()
            .file("index.html", b"a")
            .file("./index.html", b"b")
            .finish(),
    );
    assert!(
        matches!(&err, ArchiveError::DuplicatePath { entry } if entry == "/index.html"),
        "{err}"
    );
}

#[test]
fn paths_differing_only_in_case_collide() {
    let err = refuse(
        &RawTar::new()
            .file("A.html", b"a")
            .file("a.html", b"b")
            .finish(),
    );
    assert!(
        matches!(&err, ArchiveError::CollidingPath { entry, other } if entry == "/a.html" && other == "/A.html"),
        "{err}"
    );
}

#[test]
fn nfc_and_nfd_spellings_of_one_name_collide() {
    let nfc = "caf\u{e9}.html";
    let nfd = "cafe\u{301}.html";
    let err = refuse(&RawTar::new().file(nfc, b"a").file(nfd, b"b").finish());
    assert!(matches!(err, ArchiveError::CollidingPath { .. }), "{err}");
}

#[test]
fn a_file_named_like_a_directory_entry_is_refused_and_vice_versa() {
    let err = refuse(&RawTar::new().dir("docs/").file("docs", b"x").finish());
    assert!(
        matches!(err, ArchiveError::FileDirectoryConflict { .. }),
        "{err}"
    );
    let err = refuse(&RawTar::new().file("docs", b"x").dir("docs/").finish());
    assert!(
        matches!(err, ArchiveError::FileDirectoryConflict { .. }),
        "{err}"
    );
}

#[test]
fn a_pax_path_that_disagrees_with_a_gnu_long_name_is_refused() {
    // GNU tar prefers the PAX path, the tar crate the long name: the two would differ.
    let tar = RawTar::new()
        .pax(&[("path", "from-pax.html")])
        .entry(b"././@LongLink", b'L', b"from-long-name.html\0")
        .file("short.html", b"x")
        .finish();
    let err = refuse(&tar);
    assert!(
        matches!(err, ArchiveError::UnsupportedHeader { .. }),
        "{err}"
    );
}

#[test]
fn a_gnu_sparse_pax_keyword_is_refused() {
    let tar = RawTar::new()
        .pax(&[("GNU.sparse.name", "real.html")])
        .file("GNUSparseFile.0/real.html", b"x")
        .finish();
    let err = refuse(&tar);
    assert!(
        matches!(err, ArchiveError::UnsupportedHeader { .. }),
        "{err}"
    );
}
