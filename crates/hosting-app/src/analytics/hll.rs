//! A HyperLogLog sketch (Flajolet et al. 2007, with linear counting for small sets):
//! how unique visitors are counted without keeping who they were. A visitor is a 64-bit
//! salted hash; the sketch keeps, per register, only the longest run of leading zeros
//! seen, so no hash can be read back out of it.
//!
//! 4,096 registers give a standard error of 1.04 / sqrt(4096) = 1.6%. Sketches of the
//! same registers merge by taking each register's maximum, which is how replicas and
//! minutes add up. Stored sketches are sparse (index, rank pairs) while few registers
//! are set, since most minutes of most sites see a handful of visitors.

/// Index bits: 2^12 registers.
const PRECISION: u32 = 12;
const REGISTERS: usize = 1 << PRECISION;
/// Encoding tags (the first byte of a stored sketch).
const SPARSE: u8 = 1;
const DENSE: u8 = 2;

/// Set registers kept as (index, rank) pairs before a sketch turns dense: 4,096 bytes
/// of registers per host and minute were most of the tally's memory at thousands of
/// sites (and three times that per flush, one per granularity), for minutes that saw a
/// handful of visitors (issue 23).
const SPARSE_MAX: usize = 256;

/// The registers of one sketch: the set ones, sorted by index, while few are set; else
/// all of them.
#[derive(Clone)]
pub struct Sketch {
    registers: Registers,
}

#[derive(Clone)]
enum Registers {
    Sparse(Vec<(u16, u8)>),
    Dense(Box<[u8; REGISTERS]>),
}

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sketch(~{})", self.estimate())
    }
}

/// Sketches are equal when their registers are, however they are kept.
impl PartialEq for Sketch {
    fn eq(&self, other: &Sketch) -> bool {
        self.set().eq(other.set())
    }
}

impl Eq for Sketch {}

impl Default for Sketch {
    fn default() -> Sketch {
        Sketch {
            registers: Registers::Sparse(Vec::new()),
        }
    }
}

impl Sketch {
    /// Counts one (already hashed, uniformly distributed) item.
    pub fn insert(&mut self, hash: u64) {
        let index = (hash >> (64 - PRECISION)) as u16;
        // The remaining bits, with a sentinel so an all-zero rest still ends.
        let rest = (hash << PRECISION) | (1 << (PRECISION - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        self.raise(index, rank);
    }

    /// Raises register `index` to `rank` (registers only grow).
    fn raise(&mut self, index: u16, rank: u8) {
        match &mut self.registers {
            Registers::Dense(registers) => {
                let register = &mut registers[usize::from(index)];
                *register = (*register).max(rank);
            }
            Registers::Sparse(pairs) => match pairs.binary_search_by_key(&index, |&(i, _)| i) {
                Ok(at) => pairs[at].1 = pairs[at].1.max(rank),
                Err(at) if pairs.len() < SPARSE_MAX => pairs.insert(at, (index, rank)),
                Err(_) => {
                    let mut registers = Box::new([0u8; REGISTERS]);
                    for &(i, r) in pairs.iter() {
                        registers[usize::from(i)] = r;
                    }
                    registers[usize::from(index)] = rank;
                    self.registers = Registers::Dense(registers);
                }
            },
        }
    }

    /// The set registers, as (index, rank) in index order.
    fn set(&self) -> Box<dyn Iterator<Item = (u16, u8)> + '_> {
        match &self.registers {
            Registers::Sparse(pairs) => Box::new(pairs.iter().copied()),
            Registers::Dense(registers) => Box::new(
                registers
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| **r != 0)
                    .map(|(i, r)| (i as u16, *r)),
            ),
        }
    }

    /// Adds everything `other` has seen.
    pub fn merge(&mut self, other: &Sketch) {
        match (&mut self.registers, &other.registers) {
            (Registers::Dense(mine), Registers::Dense(theirs)) => {
                for (mine, theirs) in mine.iter_mut().zip(theirs.iter()) {
                    *mine = (*mine).max(*theirs);
                }
            }
            (_, Registers::Sparse(theirs)) => {
                for &(index, rank) in theirs {
                    self.raise(index, rank);
                }
            }
            (Registers::Sparse(_), Registers::Dense(_)) => {
                let mut merged = other.clone();
                merged.merge(self);
                *self = merged;
            }
        }
    }

    /// Forgets every item: a sparse sketch keeps its allocation for reuse, a dense one
    /// gives its registers back.
    pub fn clear(&mut self) {
        match &mut self.registers {
            Registers::Sparse(pairs) => pairs.clear(),
            Registers::Dense(_) => self.registers = Registers::Sparse(Vec::new()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.set().next().is_none()
    }

    /// The estimated number of distinct items inserted.
    pub fn estimate(&self) -> u64 {
        let m = REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let (mut sum, mut set) = (0.0f64, 0u32);
        for (_, rank) in self.set() {
            sum += 2f64.powi(-i32::from(rank));
            set += 1;
        }
        // Every register left at zero adds 2^0.
        let zeros = REGISTERS as u32 - set;
        sum += f64::from(zeros);
        let raw = alpha * m * m / sum;
        // Small sets: linear counting is far more precise while registers are still empty.
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / f64::from(zeros)).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }

    /// The stored form: sparse while that is shorter, else all registers.
    pub fn encode(&self) -> Vec<u8> {
        let set = self.set().count();
        if set * 3 < REGISTERS {
            let mut out = Vec::with_capacity(1 + set * 3);
            out.push(SPARSE);
            for (index, rank) in self.set() {
                out.extend_from_slice(&index.to_be_bytes());
                out.push(rank);
            }
            out
        } else {
            let mut out = Vec::with_capacity(1 + REGISTERS);
            out.push(DENSE);
            match &self.registers {
                Registers::Dense(registers) => out.extend_from_slice(&registers[..]),
                Registers::Sparse(_) => {
                    out.resize(1 + REGISTERS, 0);
                    for (index, rank) in self.set() {
                        out[1 + usize::from(index)] = rank;
                    }
                }
            }
            out
        }
    }

    /// Reads a stored sketch; an empty value is an empty sketch, anything malformed an error.
    pub fn decode(bytes: &[u8]) -> Result<Sketch, SketchError> {
        let mut sketch = Sketch::default();
        match bytes.split_first() {
            None => {}
            Some((&SPARSE, pairs)) if pairs.len() % 3 == 0 => {
                for pair in pairs.chunks_exact(3) {
                    let index = u16::from_be_bytes([pair[0], pair[1]]);
                    if usize::from(index) >= REGISTERS {
                        return Err(SketchError);
                    }
                    sketch.raise(index, pair[2]);
                }
            }
            Some((&DENSE, registers)) if registers.len() == REGISTERS => {
                let mut dense = Box::new([0u8; REGISTERS]);
                dense.copy_from_slice(registers);
                sketch.registers = Registers::Dense(dense);
            }
            Some(_) => return Err(SketchError),
        }
        Ok(sketch)
    }
}

/// A stored sketch that is not one this module wrote.
#[derive(Debug, thiserror::Error)]
#[error("malformed HyperLogLog sketch")]
pub struct SketchError;

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: well-mixed 64-bit values from a counter, as the salted hash gives.
    fn mixed(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    fn sketch_of(items: std::ops::Range<u64>) -> Sketch {
        let mut sketch = Sketch::default();
        for i in items {
            sketch.insert(mixed(i));
        }
        sketch
    }

    #[test]
    fn estimates_stay_within_three_standard_errors_from_tens_to_a_million() {
        // 1.04 / sqrt(4096) = 1.625%; three of them bound a single estimate with 99.7%
        // confidence, and the seeds are fixed, so this never flaps.
        for n in [10u64, 100, 1_000, 5_000, 20_000, 100_000, 1_000_000] {
            let estimate = sketch_of(0..n).estimate() as f64;
            let error = (estimate - n as f64).abs() / n as f64;
            assert!(error <= 3.0 * 0.01625, "n = {n}: estimate {estimate}");
        }
    }

    #[test]
    fn repeated_items_count_once() {
        let mut sketch = sketch_of(0..500);
        for i in 0..500 {
            sketch.insert(mixed(i));
        }
        let estimate = sketch.estimate();
        assert!((490..=510).contains(&estimate), "estimate {estimate}");
    }

    #[test]
    fn merged_sketches_count_the_union_not_the_sum() {
        let mut a = sketch_of(0..30_000);
        let b = sketch_of(20_000..50_000);
        a.merge(&b);
        let estimate = a.estimate() as f64;
        assert!(
            (estimate - 50_000.0).abs() / 50_000.0 <= 3.0 * 0.01625,
            "{estimate}"
        );
    }

    #[test]
    fn sparse_and_dense_encodings_read_back_the_same_registers() {
        for n in [0u64, 3, 200, 50_000] {
            let sketch = sketch_of(0..n);
            let encoded = sketch.encode();
            assert_eq!(Sketch::decode(&encoded).expect("decodes"), sketch);
            let expected_tag = if n < 1_000 { SPARSE } else { DENSE };
            assert_eq!(encoded[0], expected_tag, "n = {n}");
        }
        assert!(Sketch::decode(&[]).expect("empty").is_empty());
    }

    #[test]
    fn a_sketch_kept_sparse_counts_and_merges_as_a_dense_one() {
        // Below, across and far past the point where a sketch turns dense.
        for n in [1u64, 100, 300, 5_000] {
            let sparse = sketch_of(0..n);
            let mut dense = Sketch::decode(&sketch_of(0..0).encode()).expect("empty");
            let mut registers = Box::new([0u8; REGISTERS]);
            for (index, rank) in sparse.set() {
                registers[usize::from(index)] = rank;
            }
            dense.registers = Registers::Dense(registers);
            assert_eq!(sparse.estimate(), dense.estimate(), "n = {n}");
            assert_eq!(sparse.encode(), dense.encode(), "n = {n}");
            let other = sketch_of(n / 2..n + 200);
            let (mut a, mut b) = (sparse.clone(), dense.clone());
            a.merge(&other);
            b.merge(&other);
            assert_eq!(a, b, "n = {n}");
            let mut c = other.clone();
            c.merge(&dense);
            assert_eq!(c, a, "n = {n}: merging a dense sketch into a sparse one");
        }
    }

    #[test]
    fn malformed_bytes_are_refused() {
        assert!(Sketch::decode(&[SPARSE, 0xFF, 0xFF, 3]).is_err());
        assert!(Sketch::decode(&[DENSE, 1, 2]).is_err());
        assert!(Sketch::decode(&[9]).is_err());
    }
}
