//! A second, strict look at the raw header blocks of each entry, refusing whatever GNU
//! tar could read differently from the tar crate.
//!
//! The tar crate (>= 0.4.45) applies PAX `size` and `path` and GNU long names itself; we
//! keep its answer. But where it is lenient (first duplicate keyword wins, malformed PAX
//! records skipped, `+12` accepted as a number, GNU sparse keywords and PAX global
//! headers ignored) GNU tar would list a different archive: the CVE-2025-62518 class of
//! parser differential. Refusing those inputs keeps both listings equal.

use tar::Header;

const BLOCK: usize = 512;

/// Checks the header blocks of one entry: zero or more extension headers (`x`, `g`, `L`,
/// `K`) and then the entry's own header, as captured by `stream.rs`. `path` and `size`
/// are what the tar crate reports for the entry.
pub(crate) fn check(blocks: &[u8], path: &[u8], size: u64) -> Result<(), String> {
    let mut offset = 0;
    let mut local_pending = false;
    let mut pax_seen = false;
    while let Some(block) = blocks.get(offset..offset + BLOCK) {
        check_number(&block[124..136], "size")?;
        check_magic(block)?;
        if offset + BLOCK == blocks.len() {
            return Ok(());
        }
        let header = Header::from_byte_slice(block);
        let data_len = header.entry_size().map_err(|e| e.to_string())?;
        let data_len =
            usize::try_from(data_len).map_err(|_| "extension header too large".to_owned())?;
        let data = blocks
            .get(offset + BLOCK..offset + BLOCK + data_len)
            .ok_or_else(|| "extension header data is incomplete".to_owned())?;
        match block[156] {
            b'x' => {
                if pax_seen {
                    return Err("two PAX headers for one entry".to_owned());
                }
                pax_seen = true;
                local_pending = true;
                check_records(data, Scope::Local { path, size })?;
            }
            b'g' => {
                // SECURITY: an `x`/`L` before a global header would describe the global
                // header to one parser and the next file to another.
                if local_pending {
                    return Err(
                        "a PAX global header between an entry's extension headers".to_owned()
                    );
                }
                check_records(data, Scope::Global)?;
            }
            b'L' | b'K' => local_pending = true,
            other => {
                return Err(format!(
                    "unexpected header type {:?} before the entry",
                    char::from(other)
                ))
            }
        }
        offset += BLOCK + data_len.div_ceil(BLOCK) * BLOCK;
    }
    Err("incomplete header sequence".to_owned())
}

/// Where a PAX record applies.
enum Scope<'a> {
    /// `x`: to the next entry, which the tar crate says has this path and size.
    Local { path: &'a [u8], size: u64 },
    /// `g`: to every later entry in GNU tar, to none in the tar crate.
    Global,
}

/// Parses PAX records (`<len> <key>=<value>\n`) exactly, checking each keyword.
fn check_records(mut data: &[u8], scope: Scope<'_>) -> Result<(), String> {
    let mut seen_path = false;
    let mut seen_size = false;
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|b| *b == b' ')
            .ok_or("PAX record without a length")?;
        let len = parse_decimal(&data[..space]).ok_or("PAX record with a bad length")?;
        let record = data
            .get(..usize::try_from(len).map_err(|_| "PAX record too long")?)
            .filter(|r| r.len() > space + 1 && r.ends_with(b"\n"))
            .ok_or("PAX record with a wrong length")?;
        let body = &record[space + 1..record.len() - 1];
        // SECURITY: the tar crate splits records on '\n', so a newline inside a value
        // (legal PAX) would make it see different records than GNU tar.
        if body.contains(&b'\n') {
            return Err("PAX record containing a newline".to_owned());
        }
        let eq = body
            .iter()
            .position(|b| *b == b'=')
            .ok_or("PAX record without '='")?;
        let (key, value) = (&body[..eq], &body[eq + 1..]);
        // SECURITY: GNU.sparse.* renames the entry and rewrites its data map in GNU tar
        // only; GNU.dumpdir / GNU.volume.* are GNU-only semantics too.
        if key.starts_with(b"GNU.") {
            return Err(format!(
                "GNU-specific PAX keyword {:?}",
                String::from_utf8_lossy(key)
            ));
        }
        match (&scope, key) {
            (Scope::Global, b"path" | b"size" | b"linkpath") => {
                // SECURITY: GNU tar applies these to every later entry, the tar crate
                // ignores them: the two would list different archives.
                return Err(format!(
                    "PAX global header sets {:?}",
                    String::from_utf8_lossy(key)
                ));
            }
            (Scope::Local { path, .. }, b"path") => {
                // SECURITY: duplicates resolve first-wins in the tar crate, last-wins in
                // GNU tar; and GNU tar prefers PAX `path` over a GNU long name while the
                // tar crate prefers the long name. Require one unambiguous answer.
                if std::mem::replace(&mut seen_path, true) {
                    return Err("duplicate PAX 'path' keyword".to_owned());
                }
                if value != *path {
                    return Err(
                        "PAX 'path' disagrees with the entry's other name headers".to_owned()
                    );
                }
            }
            (Scope::Local { size, .. }, b"size") => {
                // SECURITY: CVE-2025-62518 / CVE-2026-33055: the PAX size must be the one
                // the parser advanced by; the tar crate silently ignores a size it cannot
                // parse and takes the first of duplicates.
                if std::mem::replace(&mut seen_size, true) {
                    return Err("duplicate PAX 'size' keyword".to_owned());
                }
                if parse_decimal(value) != Some(*size) {
                    return Err(
                        "PAX 'size' is not the plain decimal size the entry was read with"
                            .to_owned(),
                    );
                }
            }
            _ => {}
        }
        data = &data[record.len()..];
    }
    Ok(())
}

/// ASCII digits only (no sign, no spaces), as a u64.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A numeric header field must be base-256 or octal digits padded by spaces/NULs.
fn check_number(field: &[u8], name: &str) -> Result<(), String> {
    // SECURITY: the tar crate accepts `+17` and other Rust-isms GNU tar refuses, and
    // would then place the next header somewhere GNU tar does not.
    match field.first() {
        Some(0xff) => Err(format!("negative {name} field")),
        Some(b) if b & 0x80 != 0 => Ok(()),
        _ => {
            let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
            let mut digits = &field[..end];
            while let [b' ', rest @ ..] = digits {
                digits = rest;
            }
            while let [rest @ .., b' '] = digits {
                digits = rest;
            }
            if !digits.is_empty() && digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
                Ok(())
            } else {
                Err(format!("{name} field is not an octal number"))
            }
        }
    }
}

/// A `ustar\0` magic must come with version `00`.
fn check_magic(block: &[u8]) -> Result<(), String> {
    // SECURITY: GNU tar honours the ustar `prefix` field on the magic alone, the tar
    // crate only with version "00"; other versions would give two different names.
    if &block[257..263] == b"ustar\0" && &block[263..265] != b"00" {
        return Err("ustar header with an unknown version".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One PAX record; its length counts its own digits.
    fn record(key: &str, value: &str) -> Vec<u8> {
        let body = format!(" {key}={value}\n");
        let mut digits = 1;
        while (digits + body.len()).to_string().len() != digits {
            digits += 1;
        }
        format!("{}{body}", digits + body.len()).into_bytes()
    }

    #[test]
    fn well_formed_records_that_agree_with_the_entry_pass() {
        let mut data = record("path", "a.html");
        data.extend(record("size", "5"));
        data.extend(record("comment", "made by git archive"));
        check_records(
            &data,
            Scope::Local {
                path: b"a.html",
                size: 5,
            },
        )
        .expect("valid");
    }

    #[test]
    fn a_size_the_parser_did_not_use_is_refused() {
        let data = record("size", "+5");
        assert!(check_records(
            &data,
            Scope::Local {
                path: b"a",
                size: 5
            }
        )
        .is_err());
        let data = [record("size", "5"), record("size", "7")].concat();
        assert!(check_records(
            &data,
            Scope::Local {
                path: b"a",
                size: 5
            }
        )
        .is_err());
    }

    #[test]
    fn global_headers_may_carry_comments_but_not_paths_or_sizes() {
        check_records(&record("comment", "abc"), Scope::Global).expect("comment is fine");
        assert!(check_records(&record("path", "x"), Scope::Global).is_err());
        assert!(check_records(&record("size", "1"), Scope::Global).is_err());
    }

    #[test]
    fn gnu_sparse_keywords_and_malformed_records_are_refused() {
        let local = || Scope::Local {
            path: b"a",
            size: 0,
        };
        assert!(check_records(&record("GNU.sparse.name", "a"), local()).is_err());
        assert!(check_records(b"99 path=a\n", local()).is_err());
        assert!(check_records(b"12 path=a\nb\n", local()).is_err());
        assert!(check_records(b"\n", local()).is_err());
    }

    #[test]
    fn numeric_fields_must_be_plain_octal() {
        assert!(check_number(b"00000000012\0", "size").is_ok());
        assert!(check_number(b"     12 \0\0\0\0", "size").is_ok());
        assert!(check_number(b"+0000000012\0", "size").is_err());
        assert!(check_number(b"\0\0\0\0\0\0\0\0\0\0\0\0", "size").is_err());
        assert!(check_number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "size").is_ok());
    }
}
