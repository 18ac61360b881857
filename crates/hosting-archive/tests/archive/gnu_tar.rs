//! Our entry list must equal GNU tar's for the same bytes (CVE-2025-62518 class).

use std::io::Write;
use std::process::Command;

use crate::support::{gz, header, paths, read, RawTar};

/// Regular-file paths as `tar -tzf` lists them (`./` stripped, directories dropped), or
/// `None` when GNU tar is not installed.
fn gnu_tar_list(tar_gz: &[u8]) -> Option<Vec<String>> {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(tar_gz).expect("write archive");
    let output = match Command::new("tar").arg("-tzf").arg(file.path()).output() {
        Ok(output) => output,
        Err(e) => {
            println!("note: GNU tar not found ({e}); skipping the cross-check");
            return None;
        }
    };
    assert!(
        output.status.success(),
        "tar failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listing = String::from_utf8(output.stdout).expect("utf-8 listing");
    Some(
        listing
            .lines()
            .map(|line| line.strip_prefix("./").unwrap_or(line))
            .filter(|line| !line.is_empty() && !line.ends_with('/'))
            .map(|line| format!("/{line}"))
            .collect(),
    )
}

/// Reads `tar` with us and with GNU tar, asserts both list `expected`.
fn assert_same_listing(tar: &[u8], expected: &[&str]) {
    let ours = read(tar).expect("the archive is accepted");
    assert_eq!(paths(&ours), expected);
    if let Some(theirs) = gnu_tar_list(&gz(tar)) {
        assert_eq!(theirs, expected, "GNU tar lists the same files");
    }
}

#[test]
fn a_plain_nested_archive_lists_the_same_as_gnu_tar() {
    let tar = RawTar::new()
        .dir("./")
        .dir("./css/")
        .file("./css/a.css", b"a")
        .file("./index.html", b"i")
        .finish();
    assert_same_listing(&tar, &["/css/a.css", "/index.html"]);
}

#[test]
fn a_gnu_long_name_lists_the_same_as_gnu_tar() {
    let long = format!("{}/{}.html", "d".repeat(90), "f".repeat(60));
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, &long, b"long".as_slice())
        .expect("append long name");
    let tar = builder.into_inner().expect("finish");
    assert_same_listing(&tar, &[format!("/{long}").as_str()]);
}

#[test]
fn a_pax_path_longer_than_the_ustar_field_lists_the_same_as_gnu_tar() {
    let long = format!("{}/page.html", "p".repeat(150));
    let tar = RawTar::new()
        .pax(&[("path", &long)])
        .file("truncated-name", b"x")
        .finish();
    assert_same_listing(&tar, &[format!("/{long}").as_str()]);
}

/// A PAX `size` overriding the ustar size, whose data holds a fake header: a parser that
/// ignores the PAX size (CVE-2025-62518) lists `smuggled.html`.
fn smuggling_archive(ustar_size: u64) -> Vec<u8> {
    let mut data = header(b"smuggled.html", b'0', 5).to_vec();
    data.extend_from_slice(b"evil!");
    data.resize(1024, 0);
    RawTar::new()
        .pax(&[("size", "1024")])
        .header(b"real.bin", b'0', ustar_size)
        .data(&data)
        .file("after.html", b"after")
        .finish()
}

#[test]
fn a_pax_size_over_a_zero_ustar_size_lists_the_same_as_gnu_tar() {
    assert_same_listing(&smuggling_archive(0), &["/real.bin", "/after.html"]);
}

#[test]
fn a_pax_size_over_a_nonzero_ustar_size_lists_the_same_as_gnu_tar() {
    assert_same_listing(&smuggling_archive(512), &["/real.bin", "/after.html"]);
}

#[test]
fn archives_written_by_gnu_tar_itself_are_accepted_with_the_same_listing() {
    let site = tempfile::tempdir().expect("temp dir");
    // 150 bytes: a GNU long name, a PAX path, or a ustar prefix/name split.
    let long = format!("{}/{}.html", "l".repeat(80), "n".repeat(64));
    for (name, body) in [
        ("index.html", "i"),
        ("css/site.css", "c"),
        (long.as_str(), "l"),
    ] {
        let path = site.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, body).expect("write");
    }
    for format in ["gnu", "pax", "ustar"] {
        let out = tempfile::NamedTempFile::new().expect("temp file");
        let status = Command::new("tar")
            .args([&format!("--format={format}"), "--sort=name", "-czf"])
            .arg(out.path())
            .arg("-C")
            .arg(site.path())
            .arg(".")
            .stderr(std::process::Stdio::null())
            .status();
        let Ok(status) = status else {
            println!("note: GNU tar not found; skipping the cross-check");
            return;
        };
        let tar_gz = std::fs::read(out.path()).expect("read archive");
        assert!(status.success(), "tar --format={format} failed");
        let ours = crate::support::read_with(&tar_gz, &hosting_archive::Limits::default())
            .unwrap_or_else(|e| panic!("--format={format} archive refused: {e}"));
        let theirs = gnu_tar_list(&tar_gz).expect("tar is installed");
        assert_eq!(paths(&ours), theirs, "--format={format}");
        assert_eq!(ours.len(), 3, "--format={format}");
    }
}
