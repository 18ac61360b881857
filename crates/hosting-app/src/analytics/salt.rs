//! The daily salt of the visitor hash. A visitor is the hash of address and user agent
//! keyed with a random salt per UTC day, shared by every replica through the database
//! (so a visitor served by two replicas is one visitor) and deleted once the day is
//! over, after which no hash can be recomputed. Only HyperLogLog registers of the
//! hashes are ever stored.
//!
//! XXH3 keyed with a 192-byte secret is the hash: fast enough for the serving path (a
//! few nanoseconds), and with a secret unknown outside the database and thrown away
//! daily, what it would take to reverse it no longer exists.

use rand::RngCore;
use xxhash_rust::xxh3::xxh3_64_with_secret;

/// Bytes of a salt (XXH3's default secret size; at least 136 are required).
pub const SALT_BYTES: usize = 192;
/// Longest user agent hashed; the rest adds nothing to who the visitor is.
const MAX_AGENT_BYTES: usize = 512;
pub const DAY_SECONDS: i64 = 86_400;

/// The salts of the days requests may fall on (today and tomorrow, fetched ahead).
#[derive(Debug, Default)]
pub struct DaySalts {
    days: Vec<(i64, Vec<u8>)>,
}

impl DaySalts {
    /// `days`: (start of the UTC day in unix seconds, salt); salts of the wrong size are ignored.
    pub fn new(days: Vec<(i64, Vec<u8>)>) -> DaySalts {
        DaySalts {
            days: days
                .into_iter()
                .filter(|(_, salt)| salt.len() >= SALT_BYTES)
                .collect(),
        }
    }

    /// Whether the salt of the day holding `unix_seconds` is known.
    pub fn covers(&self, unix_seconds: i64) -> bool {
        let day = day_of(unix_seconds);
        self.days.iter().any(|(d, _)| *d == day)
    }

    /// The visitor's hash for the day holding `unix_seconds`; `None` before that day's
    /// salt is known (the visitor is then not counted, rather than counted unsalted).
    pub fn hash(&self, unix_seconds: i64, visitor: (&[u8], &[u8])) -> Option<u64> {
        self.hash_with(&mut Vec::new(), unix_seconds, visitor)
    }

    /// [`DaySalts::hash`], assembling the input in `scratch` (the serving path passes a
    /// buffer it keeps, so a request neither allocates nor clears one).
    pub fn hash_with(
        &self,
        scratch: &mut Vec<u8>,
        unix_seconds: i64,
        (address, agent): (&[u8], &[u8]),
    ) -> Option<u64> {
        let day = day_of(unix_seconds);
        let (_, salt) = self.days.iter().find(|(d, _)| *d == day)?;
        let agent = &agent[..agent.len().min(MAX_AGENT_BYTES)];
        let address = &address[..address.len().min(16)];
        scratch.clear();
        // The length first, so no address and agent pair reads as another.
        scratch.push(address.len() as u8);
        scratch.extend_from_slice(address);
        scratch.extend_from_slice(agent);
        Some(xxh3_64_with_secret(scratch, salt))
    }
}

/// A new random salt.
pub fn random_salt() -> Vec<u8> {
    let mut salt = vec![0u8; SALT_BYTES];
    rand::thread_rng().fill_bytes(&mut salt);
    salt
}

/// The start (unix seconds) of the UTC day holding `unix_seconds`.
pub fn day_of(unix_seconds: i64) -> i64 {
    unix_seconds - unix_seconds.rem_euclid(DAY_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_visitor_hashes_alike_within_a_day_and_differently_the_next() {
        let salts = DaySalts::new(vec![(0, random_salt()), (DAY_SECONDS, random_salt())]);
        let visitor: (&[u8], &[u8]) = (&[192, 0, 2, 1], b"Mozilla/5.0");
        let morning = salts.hash(10, visitor);
        assert!(morning.is_some());
        assert_eq!(morning, salts.hash(DAY_SECONDS - 1, visitor));
        assert_ne!(morning, salts.hash(DAY_SECONDS + 10, visitor));
        assert_ne!(morning, salts.hash(10, (&[192, 0, 2, 2], b"Mozilla/5.0")));
    }

    #[test]
    fn a_reused_buffer_hashes_as_a_fresh_one() {
        let salts = DaySalts::new(vec![(0, random_salt())]);
        let mut scratch = b"left over from a longer visitor".to_vec();
        for visitor in [
            (&[10u8, 0, 0, 1][..], &b"curl/8"[..]),
            (&[1u8; 16][..], &b""[..]),
        ] {
            assert_eq!(
                salts.hash_with(&mut scratch, 5, visitor),
                salts.hash(5, visitor)
            );
        }
        // The address length is part of the input: moving a byte across is another visitor.
        assert_ne!(
            salts.hash(5, (&[1, 2], b"x")),
            salts.hash(5, (&[1], &[2, b'x']))
        );
    }

    #[test]
    fn without_the_day_s_salt_no_visitor_is_hashed() {
        let salts = DaySalts::new(vec![(0, random_salt())]);
        assert_eq!(salts.hash(DAY_SECONDS * 2, (&[1], b"x")), None);
        assert!(!salts.covers(DAY_SECONDS * 2));
        assert!(salts.covers(5));
    }
}
