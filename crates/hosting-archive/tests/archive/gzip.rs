//! The gzip layer, the end of the stream, and how sink failures are classified.

use std::io::{self, Read};

use hosting_archive::{read_tar_gz, ArchiveError, Limits};

use crate::support::{gz, read, read_with, refuse, RawTar};

fn site() -> Vec<u8> {
    RawTar::new().file("index.html", b"<p>hi</p>").finish()
}

fn refuse_bytes(tar_gz: &[u8]) -> ArchiveError {
    let err = read_with(tar_gz, &Limits::default()).expect_err("must be refused");
    assert!(
        err.is_client_error() && !err.is_too_large(),
        "a bad stream is a 400: {err}"
    );
    err
}

#[test]
fn a_truncated_gzip_stream_is_refused() {
    let tar_gz = gz(&site());
    for cut in [tar_gz.len() - 1, tar_gz.len() - 8, tar_gz.len() / 2, 12] {
        let err = refuse_bytes(&tar_gz[..cut]);
        assert!(
            matches!(
                err,
                ArchiveError::CorruptGzip { .. } | ArchiveError::Truncated { .. }
            ),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn a_bad_crc_is_refused() {
    let mut tar_gz = gz(&site());
    let crc_at = tar_gz.len() - 8;
    tar_gz[crc_at] ^= 0xff;
    assert!(matches!(
        refuse_bytes(&tar_gz),
        ArchiveError::CorruptGzip { .. }
    ));
}

#[test]
fn a_second_concatenated_gzip_member_is_refused() {
    let mut tar_gz = gz(&site());
    tar_gz.extend(gz(&RawTar::new().file("hidden.html", b"x").finish()));
    assert!(matches!(refuse_bytes(&tar_gz), ArchiveError::TrailingData));
}

#[test]
fn trailing_garbage_after_the_gzip_member_is_refused() {
    let mut tar_gz = gz(&site());
    tar_gz.extend_from_slice(b"garbage");
    assert!(matches!(refuse_bytes(&tar_gz), ArchiveError::TrailingData));
}

#[test]
fn a_plain_tar_is_refused_as_not_gzip() {
    let err = refuse_bytes(&site());
    assert!(matches!(err, ArchiveError::NotGzip));
    assert!(err.to_string().contains("not a gzip stream"), "{err}");
    assert!(matches!(refuse_bytes(b""), ArchiveError::NotGzip));
}

#[test]
fn an_archive_without_regular_files_is_refused() {
    let err = refuse(&RawTar::new().finish());
    assert_eq!(err.to_string(), "archive contains no files");
    assert!(matches!(
        refuse(&RawTar::new().dir("css/").finish()),
        ArchiveError::Empty
    ));
}

#[test]
fn an_entry_hidden_after_a_lone_zero_block_is_refused() {
    let mut tar = RawTar::new().file("index.html", b"x").0;
    tar.extend_from_slice(&[0; 512]);
    tar.extend(RawTar::new().file("hidden.html", b"y").finish());
    assert!(matches!(refuse(&tar), ArchiveError::DataAfterEnd));
}

#[test]
fn a_tar_cut_inside_file_data_is_refused_as_truncated() {
    let tar = RawTar::new()
        .header(b"index.html", b'0', 5000)
        .data(&[1; 1000])
        .0;
    let err = refuse(&tar);
    assert!(
        matches!(&err, ArchiveError::Truncated { entry: Some(e) } if e == "/index.html"),
        "{err}"
    );
}

#[test]
fn a_sink_failure_is_a_storage_error_not_a_client_error() {
    let tar_gz = gz(&site());
    let err = read_tar_gz(tar_gz.as_slice(), &Limits::default(), &mut |_, _, _| {
        Err(io::Error::other("disk full"))
    })
    .expect_err("the sink failed");
    assert!(matches!(err, ArchiveError::Storage { .. }), "{err}");
    assert!(!err.is_client_error());
    assert_eq!(err.entry(), Some("/index.html"));
}

#[test]
fn a_sink_that_stops_reading_early_is_a_storage_error() {
    let tar_gz = gz(&site());
    let err = read_tar_gz(
        tar_gz.as_slice(),
        &Limits::default(),
        &mut |_, _, reader: &mut dyn Read| {
            let mut first = [0u8; 1];
            reader.read_exact(&mut first)?;
            Ok("partial".to_owned())
        },
    )
    .expect_err("a digest of part of the file is useless");
    assert!(matches!(err, ArchiveError::Storage { .. }), "{err}");
}

#[test]
fn the_sink_can_read_no_more_than_the_entry_size() {
    let tar = RawTar::new()
        .file("a.txt", b"abc")
        .file("b.txt", b"defg")
        .finish();
    let mut bodies = Vec::new();
    read_tar_gz(
        gz(&tar).as_slice(),
        &Limits::default(),
        &mut |_, _, reader: &mut dyn Read| {
            let mut body = Vec::new();
            reader.read_to_end(&mut body)?;
            bodies.push(body);
            Ok(String::new())
        },
    )
    .expect("valid archive");
    assert_eq!(bodies, [b"abc".to_vec(), b"defg".to_vec()]);
    assert!(read(&tar).is_ok());
}
