//! Helpers: a raw tar writer, gzip, and sinks.

use std::io::{self, Read, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use hosting_archive::{read_tar_gz, ArchiveError, ArchiveFile, Limits};
use sha2::{Digest, Sha256};

/// A tar stream written block by block, so tests can write what `tar::Builder` refuses.
#[derive(Default)]
pub struct RawTar(pub Vec<u8>);

impl RawTar {
    pub fn new() -> Self {
        Self::default()
    }

    /// A regular file.
    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name.as_bytes(), b'0', data)
    }

    /// A directory entry.
    pub fn dir(self, name: &str) -> Self {
        self.entry(name.as_bytes(), b'5', b"")
    }

    /// Any entry type with raw name bytes (at most 100) and its data.
    pub fn entry(mut self, name: &[u8], typeflag: u8, data: &[u8]) -> Self {
        self.0
            .extend_from_slice(&header(name, typeflag, data.len() as u64));
        self.data(data)
    }

    /// A header alone, with any declared size.
    pub fn header(mut self, name: &[u8], typeflag: u8, size: u64) -> Self {
        self.0.extend_from_slice(&header(name, typeflag, size));
        self
    }

    /// Data blocks, zero-padded to 512 bytes.
    pub fn data(mut self, data: &[u8]) -> Self {
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
        self
    }

    /// A PAX extended header (`x`) with these records.
    pub fn pax(self, records: &[(&str, &str)]) -> Self {
        let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        self.entry(b"PaxHeaders/entry", b'x', &data)
    }

    /// The end-of-archive marker: two zero blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0; 1024]);
        self.0
    }
}

/// One ustar header block with raw name bytes.
pub fn header(name: &[u8], typeflag: u8, size: u64) -> [u8; 512] {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::new(typeflag));
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_cksum();
    *header.as_bytes()
}

/// One PAX record; its length counts its own digits.
pub fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut digits = 1;
    while (digits + body.len()).to_string().len() != digits {
        digits += 1;
    }
    format!("{}{body}", digits + body.len()).into_bytes()
}

/// Gzips `data` as one member.
pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).expect("write to Vec");
    encoder.finish().expect("finish gzip")
}

/// Hex sha256 of `data`.
pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A sink that hashes with sha256, as the server's blob store does.
pub fn hashing_sink(_path: &str, _size: u64, reader: &mut dyn Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(reader, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Reads a `.tar.gz` with `limits` and the hashing sink.
pub fn read_with(tar_gz: &[u8], limits: &Limits) -> Result<Vec<ArchiveFile>, ArchiveError> {
    read_tar_gz(tar_gz, limits, &mut hashing_sink)
}

/// Gzips a tar and reads it with the default limits.
pub fn read(tar: &[u8]) -> Result<Vec<ArchiveFile>, ArchiveError> {
    read_with(&gz(tar), &Limits::default())
}

/// Gzips a tar that must be refused and returns the error.
pub fn refuse(tar: &[u8]) -> ArchiveError {
    let err = read(tar).expect_err("the archive must be refused");
    assert!(
        err.is_client_error(),
        "a bad archive is the client's fault: {err}"
    );
    err
}

/// The site paths of accepted files.
pub fn paths(files: &[ArchiveFile]) -> Vec<&str> {
    files.iter().map(|f| f.path.as_str()).collect()
}
