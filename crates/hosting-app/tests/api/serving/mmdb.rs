//! A minimal MaxMind DB writer, so the GeoIP tests carry their own database: an IPv4
//! tree of 24-bit records mapping networks to `{"country": {"iso_code": ...}}`, the
//! record shape of GeoIP2 / GeoLite2 Country. The format (MaxMind DB spec 2.0): the
//! binary search tree, 16 zero bytes, the data section, then the metadata marker and
//! a map describing the tree.

/// A record of a tree node: another node, nothing, or data at an offset.
#[derive(Clone, Copy)]
enum Record {
    Empty,
    Node(usize),
    Data(usize),
}

/// An IPv4 database where each `(network, prefix length, country)` maps to that country.
pub fn country_db(networks: &[([u8; 4], u8, &str)]) -> Vec<u8> {
    let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
    let mut data = Vec::new();
    for (network, prefix, country) in networks {
        let offset = data.len();
        map(&mut data, 1);
        string(&mut data, "country");
        map(&mut data, 1);
        string(&mut data, "iso_code");
        string(&mut data, country);
        let bits = u32::from_be_bytes(*network);
        let mut node = 0;
        for depth in 0..*prefix {
            let side = usize::from(bits >> (31 - depth) & 1 == 1);
            if depth + 1 == *prefix {
                nodes[node][side] = Record::Data(offset);
                break;
            }
            node = match nodes[node][side] {
                Record::Node(next) => next,
                _ => {
                    nodes.push([Record::Empty; 2]);
                    let next = nodes.len() - 1;
                    nodes[node][side] = Record::Node(next);
                    next
                }
            };
        }
    }

    let count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for record in node {
            let value = match *record {
                Record::Empty => count,
                Record::Node(next) => next,
                Record::Data(offset) => count + 16 + offset,
            };
            let value = u32::try_from(value).expect("fits");
            out.extend_from_slice(&value.to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    map(&mut out, 9);
    string(&mut out, "binary_format_major_version");
    uint16(&mut out, 2);
    string(&mut out, "binary_format_minor_version");
    uint16(&mut out, 0);
    string(&mut out, "build_epoch");
    // uint64 is an extended type (9 = 7 + 2): size 8 in the first byte.
    out.extend_from_slice(&[8, 2]);
    out.extend_from_slice(&1_700_000_000u64.to_be_bytes());
    string(&mut out, "database_type");
    string(&mut out, "GeoLite2-Country");
    string(&mut out, "description");
    map(&mut out, 0);
    string(&mut out, "ip_version");
    uint16(&mut out, 4);
    string(&mut out, "languages");
    // array is extended type 11 (7 + 4), here empty.
    out.extend_from_slice(&[0, 4]);
    string(&mut out, "node_count");
    out.push((6 << 5) | 4);
    out.extend_from_slice(&u32::try_from(count).expect("fits").to_be_bytes());
    string(&mut out, "record_size");
    uint16(&mut out, 24);
    out
}

fn map(out: &mut Vec<u8>, pairs: u8) {
    assert!(pairs < 29);
    out.push((7 << 5) | pairs);
}

fn string(out: &mut Vec<u8>, text: &str) {
    assert!(text.len() < 29);
    out.push((2 << 5) | u8::try_from(text.len()).expect("short"));
    out.extend_from_slice(text.as_bytes());
}

fn uint16(out: &mut Vec<u8>, value: u16) {
    out.push((5 << 5) | 2);
    out.extend_from_slice(&value.to_be_bytes());
}
