//! Limits, checked while streaming: nothing over a limit is inflated or stored.

use std::io::{Read, Write};
use std::sync::OnceLock;

use flate2::write::GzEncoder;
use flate2::Compression;
use hosting_archive::{read_tar_gz, ArchiveError, Limits};

use crate::support::{gz, header, read_with, RawTar};

const BOMB_BYTES: u64 = 200 * 1000 * 1000;

/// 200 MB of zeros in one entry, gzipped while generated (about 200 KB); built once.
fn gzip_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder
            .write_all(&header(b"zeros.bin", b'0', BOMB_BYTES))
            .expect("header");
        let chunk = vec![0u8; 1 << 20];
        let mut left = BOMB_BYTES;
        while left > 0 {
            let n = left.min(chunk.len() as u64);
            encoder.write_all(&chunk[..n as usize]).expect("zeros");
            left -= n;
        }
        encoder.write_all(&[0; 1024]).expect("end marker");
        encoder.finish().expect("finish gzip")
    })
}

/// Reads `tar_gz`, returning the error and how many bytes the sink received.
fn refuse_counting(tar_gz: &[u8], limits: &Limits) -> (ArchiveError, u64) {
    let mut received = 0u64;
    let result = read_tar_gz(tar_gz, limits, &mut |_, _, reader: &mut dyn Read| {
        // Count per read: the error that stops a bomb arrives in the middle of the file.
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf)? {
                0 => return Ok(String::new()),
                n => received += n as u64,
            }
        }
    });
    let err = result.expect_err("the archive must be refused");
    assert!(
        err.is_client_error() && err.is_too_large(),
        "a limit means 413: {err}"
    );
    (err, received)
}

#[test]
fn an_oversized_file_is_refused_before_the_sink_reads_it() {
    let limits = Limits {
        max_file_bytes: 10,
        ..Limits::default()
    };
    let tar_gz = gz(&RawTar::new().file("big.bin", &[7; 11]).finish());

    let (err, received) = refuse_counting(&tar_gz, &limits);

    assert!(
        matches!(
            err,
            ArchiveError::FileTooLarge {
                size: 11,
                limit: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(received, 0);
}

#[test]
fn one_file_more_than_the_limit_is_refused() {
    let limits = Limits {
        max_files: 2,
        ..Limits::default()
    };
    let tar_gz = gz(&RawTar::new()
        .file("a", b"")
        .file("b", b"")
        .file("c", b"")
        .finish());

    let (err, _) = refuse_counting(&tar_gz, &limits);

    assert!(
        matches!(&err, ArchiveError::TooManyFiles { entry, limit: 2 } if entry == "/c"),
        "{err}"
    );
}

#[test]
fn files_that_add_up_past_the_total_are_refused() {
    let limits = Limits {
        max_total_bytes: 100,
        ..Limits::default()
    };
    let tar_gz = gz(&RawTar::new()
        .file("a", &[1; 60])
        .file("b", &[2; 60])
        .finish());

    let (err, received) = refuse_counting(&tar_gz, &limits);

    assert!(matches!(err, ArchiveError::TotalTooLarge { .. }), "{err}");
    assert_eq!(received, 60);
}

#[test]
fn a_gzip_bomb_is_refused_from_its_declared_size_without_inflating_it() {
    let bomb = gzip_bomb();
    assert!(
        bomb.len() < 1_000_000,
        "the bomb is small: {} bytes",
        bomb.len()
    );

    let (err, received) = refuse_counting(bomb, &Limits::default());

    assert!(matches!(err, ArchiveError::FileTooLarge { .. }), "{err}");
    assert_eq!(received, 0);
}

#[test]
fn a_gzip_bomb_within_generous_size_limits_is_stopped_by_the_expansion_ratio() {
    let limits = Limits {
        max_file_bytes: u64::MAX,
        max_total_bytes: u64::MAX,
        ..Limits::default()
    };

    let (err, received) = refuse_counting(gzip_bomb(), &limits);
    println!("the sink received {received} bytes before the ratio stopped the bomb");

    assert!(
        matches!(err, ArchiveError::ExpansionRatio { limit: 200 }),
        "{err}"
    );
    assert!(
        received < 20_000_000,
        "stopped early, after {received} bytes"
    );
}

#[test]
fn a_huge_pax_header_is_refused_while_it_streams() {
    let comment = "c".repeat(100 * 1024);
    let tar_gz = gz(&RawTar::new()
        .file("a.html", b"a")
        .pax(&[("comment", &comment)])
        .file("b.html", b"b")
        .finish());

    let (err, _) = refuse_counting(&tar_gz, &Limits::default());

    assert!(
        matches!(&err, ArchiveError::HeaderTooLarge { after: Some(a), .. } if a == "a.html"),
        "{err}"
    );
}

#[test]
fn a_huge_gnu_long_name_is_refused_while_it_streams() {
    let name = vec![b'n'; 200 * 1024];
    let tar_gz = gz(&RawTar::new()
        .entry(b"././@LongLink", b'L', &name)
        .file("x", b"x")
        .finish());

    let (err, _) = refuse_counting(&tar_gz, &Limits::default());

    assert!(
        matches!(err, ArchiveError::HeaderTooLarge { after: None, .. }),
        "{err}"
    );
}

#[test]
fn too_many_directory_entries_are_refused() {
    let limits = Limits {
        max_files: 1,
        ..Limits::default()
    };
    let tar_gz = gz(&RawTar::new().dir("a/").dir("b/").file("a/x", b"x").finish());

    let (err, _) = refuse_counting(&tar_gz, &limits);

    assert!(
        matches!(err, ArchiveError::TooManyDirectories { .. }),
        "{err}"
    );
    assert!(read_with(
        &gz(&RawTar::new().dir("a/").file("a/x", b"x").finish()),
        &limits
    )
    .is_ok());
}
