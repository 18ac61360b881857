//! Hostile `.tar.gz` deploys: each is refused with a problem naming what is wrong,
//! the live site keeps serving what it served, and no deploy is recorded.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use super::{history, page};
use crate::helpers::{assert_problem, sha256_hex, TestApp, ADMIN_TOKEN};

/// A tar stream written block by block, so tests can write what `tar::Builder` refuses.
#[derive(Default)]
struct RawTar(Vec<u8>);

impl RawTar {
    fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name.as_bytes(), b'0', data)
    }

    /// Any entry type with raw name bytes (at most 100) and its data.
    fn entry(mut self, name: &[u8], typeflag: u8, data: &[u8]) -> Self {
        self.0
            .extend_from_slice(&header(name, typeflag, data.len() as u64));
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
        self
    }

    /// A PAX extended header (`x`) with one record.
    fn pax(self, key: &str, value: &str) -> Self {
        let body = format!(" {key}={value}\n");
        let mut digits = 1;
        while (digits + body.len()).to_string().len() != digits {
            digits += 1;
        }
        let record = format!("{}{body}", digits + body.len());
        self.entry(b"PaxHeaders/entry", b'x', record.as_bytes())
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0; 1024]);
        self.0
    }
}

/// One ustar header block with raw name bytes.
fn header(name: &[u8], typeflag: u8, size: u64) -> [u8; 512] {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::new(typeflag));
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    if matches!(typeflag, b'1' | b'2') {
        header.as_old_mut().linkname[..10].copy_from_slice(b"index.html");
    }
    header.set_cksum();
    *header.as_bytes()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).expect("write to Vec");
    encoder.finish().expect("finish gzip")
}

/// A site "blog" with one live deploy serving "live" at /index.html.
async fn live_site(app: &TestApp) {
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"live")])
        .await;
}

/// Posts `bytes` as an archive deploy; asserts the refusal (`status`, a detail containing
/// `needle`), that the live content is unchanged and that no deploy was recorded.
async fn assert_refused(
    app: &TestApp,
    what: &str,
    bytes: &[u8],
    status: u16,
    needle: &str,
) -> String {
    let response = app.post_archive(ADMIN_TOKEN, "blog", bytes).await;
    assert_eq!(response.status(), status, "{what}: unexpected status");
    let detail = assert_problem(response, status).await;
    assert!(
        detail.contains(needle),
        "{what}: the detail {detail:?} does not name {needle:?}"
    );
    assert_eq!(
        page(app, "blog", "/index.html").await,
        (200, "live".into()),
        "{what}: live content changed"
    );
    assert_eq!(
        history(app, ADMIN_TOKEN, "blog").await.len(),
        1,
        "{what}: a deploy was recorded"
    );
    detail
}

#[tokio::test]
async fn archives_with_escaping_or_malformed_paths_are_refused_and_nothing_changes() {
    let app = TestApp::spawn().await;
    live_site(&app).await;
    let cases: [(&str, &[u8]); 3] = [
        ("a parent directory", b"../evil.html"),
        ("an absolute path", b"/etc/evil.html"),
        ("a backslash", b"dir\\evil.html"),
    ];
    for (what, name) in cases {
        let tar = RawTar::default()
            .file("index.html", b"evil")
            .entry(name, b'0', b"evil")
            .finish();
        let needle = String::from_utf8_lossy(name).replace('\\', "\\\\");
        assert_refused(&app, what, &gz(&tar), 400, &needle).await;
    }
}

#[tokio::test]
async fn archives_with_links_devices_or_fifos_are_refused_and_nothing_changes() {
    let app = TestApp::spawn().await;
    live_site(&app).await;
    for (what, typeflag, needle) in [
        ("a symlink", b'2', "symbolic link"),
        ("a hardlink", b'1', "hard link"),
        ("a character device", b'3', "device"),
        ("a FIFO", b'6', "FIFO"),
    ] {
        let tar = RawTar::default()
            .file("index.html", b"evil")
            .entry(b"thing", typeflag, b"")
            .finish();
        let detail = assert_refused(&app, what, &gz(&tar), 400, "\"thing\"").await;
        assert!(
            detail.to_lowercase().contains(&needle.to_lowercase()),
            "{what}: {detail}"
        );
    }
}

#[tokio::test]
async fn duplicate_and_case_colliding_paths_are_refused_and_nothing_changes() {
    let app = TestApp::spawn().await;
    live_site(&app).await;
    let duplicate = RawTar::default()
        .file("index.html", b"one")
        .file("index.html", b"two")
        .finish();
    assert_refused(&app, "a duplicate path", &gz(&duplicate), 400, "duplicate").await;
    let colliding = RawTar::default()
        .file("A.html", b"upper")
        .file("a.html", b"lower")
        .finish();
    assert_refused(
        &app,
        "case-colliding paths",
        &gz(&colliding),
        400,
        "collides",
    )
    .await;

    // What was streamed into the blob store before the refusal is garbage, and collected.
    let cutoff = chrono::Utc::now() + chrono::Duration::seconds(1);
    hosting_app::gc::collect_blobs(&app.state, cutoff)
        .await
        .expect("collect");
    for bytes in [&b"one"[..], b"upper"] {
        assert!(
            !app.blob_stored(&sha256_hex(bytes)).await,
            "{bytes:?} left behind"
        );
    }
    assert!(app.blob_stored(&sha256_hex(b"live")).await);
    assert_eq!(
        page(&app, "blog", "/index.html").await,
        (200, "live".into())
    );
}

#[tokio::test]
async fn broken_or_empty_gzip_streams_are_refused_and_nothing_changes() {
    let app = TestApp::spawn().await;
    live_site(&app).await;
    let site = gz(&RawTar::default().file("index.html", b"evil").finish());

    let detail = assert_refused(&app, "a truncated gzip", &site[..site.len() / 2], 400, "").await;
    assert!(
        detail.contains("gzip") || detail.contains("truncated"),
        "{detail}"
    );
    let mut concatenated = site.clone();
    concatenated.extend(gz(&RawTar::default().file("hidden.html", b"x").finish()));
    assert_refused(&app, "two gzip members", &concatenated, 400, "gzip member").await;
    assert_refused(
        &app,
        "not gzip at all",
        b"<html>this is not an archive</html>",
        400,
        "not a gzip",
    )
    .await;
    assert_refused(
        &app,
        "an empty archive",
        &gz(&RawTar::default().finish()),
        400,
        "no files",
    )
    .await;
}

#[tokio::test]
async fn an_oversized_file_is_refused_and_nothing_changes() {
    let app = TestApp::spawn_with(|c| c.limits.max_file_bytes = 1024).await;
    live_site(&app).await;
    let tar = RawTar::default().file("big.bin", &[7u8; 2048]).finish();
    assert_refused(&app, "an oversized file", &gz(&tar), 413, "big.bin").await;
}

#[tokio::test]
async fn too_many_files_are_refused_and_nothing_changes() {
    let app = TestApp::spawn_with(|c| c.limits.max_files = 3).await;
    live_site(&app).await;
    let mut tar = RawTar::default();
    for i in 0..4 {
        tar = tar.file(&format!("f{i}.html"), b"x");
    }
    assert_refused(
        &app,
        "too many files",
        &gz(&tar.finish()),
        413,
        "more than 3 files",
    )
    .await;
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_and_nothing_changes() {
    // Arrange: 50 MB of zeros in one entry, about 50 KB compressed
    let app = TestApp::spawn_with(|c| c.limits.max_deploy_bytes = 10 * 1024 * 1024).await;
    live_site(&app).await;
    const BOMB: u64 = 50 * 1000 * 1000;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(&header(b"zeros.bin", b'0', BOMB))
        .expect("header");
    let chunk = vec![0u8; 1 << 20];
    let mut left = BOMB;
    while left > 0 {
        let n = left.min(chunk.len() as u64);
        encoder.write_all(&chunk[..n as usize]).expect("zeros");
        left -= n;
    }
    encoder.write_all(&[0; 1024]).expect("end marker");
    let bomb = encoder.finish().expect("gzip");

    // Act / Assert
    assert_refused(&app, "a gzip bomb", &bomb, 413, "bytes").await;
}

#[tokio::test]
async fn a_huge_pax_header_is_refused_and_nothing_changes() {
    let app = TestApp::spawn().await;
    live_site(&app).await;
    let comment = "c".repeat(100 * 1024);
    let tar = RawTar::default()
        .file("a.html", b"a")
        .pax("comment", &comment)
        .file("b.html", b"b")
        .finish();
    assert_refused(&app, "a huge PAX header", &gz(&tar), 413, "headers").await;
}
