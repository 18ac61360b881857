//! Archives that must be accepted, and what the sink and the caller see for them.

use hosting_archive::{read_tar_gz, Limits};

use crate::support::{gz, paths, read, sha256, RawTar};

#[test]
fn a_multi_level_site_reaches_the_sink_file_by_file_with_digests_and_sizes() {
    let index = b"<h1>hello</h1>".as_slice();
    let css = vec![b'a'; 1500];
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("index.html", index),
        ("css/site.css", &css),
        ("a/b/c/deep.txt", b""),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, name, data)
            .expect("append");
    }
    let tar = builder.into_inner().expect("finish tar");

    let mut seen = Vec::new();
    let files = read_tar_gz(
        gz(&tar).as_slice(),
        &Limits::default(),
        &mut |path, size, reader| {
            seen.push((path.to_owned(), size));
            crate::support::hashing_sink(path, size, reader)
        },
    )
    .expect("a plain site is accepted");

    assert_eq!(
        paths(&files),
        ["/index.html", "/css/site.css", "/a/b/c/deep.txt"]
    );
    assert_eq!(files[0].digest, sha256(index));
    assert_eq!(files[1].digest, sha256(&css));
    assert_eq!(files[2].digest, sha256(b""));
    assert_eq!(
        files.iter().map(|f| f.size).collect::<Vec<_>>(),
        [14, 1500, 0]
    );
    assert_eq!(
        seen,
        [
            ("/index.html".into(), 14),
            ("/css/site.css".into(), 1500),
            ("/a/b/c/deep.txt".into(), 0)
        ]
    );
}

#[test]
fn a_leading_dot_slash_and_the_root_directory_entry_are_dropped() {
    let tar = RawTar::new()
        .dir("./")
        .dir("./css/")
        .file("./css/a.css", b"x")
        .file(".//index.html", b"y")
        .finish();

    let files = read(&tar).expect("tar -C dist . output is accepted");

    assert_eq!(paths(&files), ["/css/a.css", "/index.html"]);
}

#[test]
fn a_small_archive_of_zeros_is_not_mistaken_for_a_bomb() {
    let tar = RawTar::new()
        .file("zeros.bin", &vec![0; 900 * 1024])
        .finish();

    let files = read(&tar).expect("under the ratio grace");

    assert_eq!(files[0].size, 900 * 1024);
}

#[test]
fn a_git_archive_style_global_comment_header_is_accepted() {
    let comment = crate::support::pax_record("comment", "0123456789abcdef");
    let tar = RawTar::new()
        .entry(b"pax_global_header", b'g', &comment)
        .file("index.html", b"hi")
        .finish();

    let files = read(&tar).expect("git archive output is accepted");

    assert_eq!(paths(&files), ["/index.html"]);
}
