//! Approximate distinct counting for feature views: a HyperLogLog that stays exact while small.
//!
//! A view keeps one sketch per key, feature and window bucket, so most sketches see a handful
//! of values: they are kept as the sorted list of their values' hashes (exact, a few bytes) and
//! become 2^11 HyperLogLog registers (2 KiB, about 2.3 % standard error) only past
//! [`SPARSE_LIMIT`] values. Sketches merge, which is how a sliding window combines its buckets.
//!
//! Written here rather than taken from a crate because the sketch is stored per bucket and must
//! serialize compactly with serde and hash identically across builds; the crates we looked at
//! either hash with the standard library's unspecified hasher or have no sparse form.

use serde::{Deserialize, Serialize};

/// Register index bits: 2^11 registers.
const P: u32 = 11;
const M: usize = 1 << P;
/// Exact hashes kept before switching to registers (at 8 bytes each, the size of 1/4 of them).
const SPARSE_LIMIT: usize = 256;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Sketch {
    /// Sorted, distinct 64-bit hashes.
    Sparse(Vec<u64>),
    /// One register per bucket: the longest run of leading zeros seen, plus one.
    Dense(Vec<u8>),
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch::Sparse(Vec::new())
    }
}

/// A 64-bit hash that is the same in every build: FNV-1a, then a SplitMix64 finaliser to
/// spread its bits.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn register(h: u64) -> (usize, u8) {
    let index = (h >> (64 - P)) as usize;
    let rest = h << P;
    let rank = (rest.leading_zeros().min(64 - P) + 1) as u8;
    (index, rank)
}

impl Sketch {
    pub(crate) fn insert(&mut self, h: u64) {
        match self {
            Sketch::Sparse(hashes) => {
                if let Err(at) = hashes.binary_search(&h) {
                    hashes.insert(at, h);
                    if hashes.len() > SPARSE_LIMIT {
                        self.densify();
                    }
                }
            }
            Sketch::Dense(regs) => {
                let (i, r) = register(h);
                if regs[i] < r {
                    regs[i] = r;
                }
            }
        }
    }

    fn densify(&mut self) {
        if let Sketch::Sparse(hashes) = self {
            let mut regs = vec![0u8; M];
            for h in hashes.iter() {
                let (i, r) = register(*h);
                regs[i] = regs[i].max(r);
            }
            *self = Sketch::Dense(regs);
        }
    }

    pub(crate) fn merge(&mut self, other: &Sketch) {
        match other {
            Sketch::Sparse(hashes) => hashes.iter().for_each(|h| self.insert(*h)),
            Sketch::Dense(theirs) => {
                self.densify();
                if let Sketch::Dense(ours) = self {
                    for (a, b) in ours.iter_mut().zip(theirs) {
                        *a = (*a).max(*b);
                    }
                }
            }
        }
    }

    pub(crate) fn estimate(&self) -> u64 {
        match self {
            Sketch::Sparse(hashes) => hashes.len() as u64,
            Sketch::Dense(regs) => {
                let m = M as f64;
                let alpha = 0.7213 / (1.0 + 1.079 / m);
                let sum: f64 = regs.iter().map(|r| 2f64.powi(-i32::from(*r))).sum();
                let raw = alpha * m * m / sum;
                let zeros = regs.iter().filter(|r| **r == 0).count();
                // Small cardinalities: linear counting is more accurate than the raw estimate.
                let estimate = if raw <= 2.5 * m && zeros > 0 {
                    m * (m / zeros as f64).ln()
                } else {
                    raw
                };
                estimate.round() as u64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(range: std::ops::Range<u64>) -> Sketch {
        let mut s = Sketch::default();
        for i in range {
            s.insert(hash(format!("customer-{i}").as_bytes()));
        }
        s
    }

    #[test]
    fn small_sets_are_exact_and_repeats_do_not_count() {
        let mut s = sketch_of(0..200);
        s.merge(&sketch_of(100..250));
        assert_eq!(s.estimate(), 250);
        assert!(matches!(s, Sketch::Sparse(_)));
    }

    #[test]
    fn large_sets_are_within_a_few_percent() {
        for n in [1_000u64, 20_000, 500_000] {
            let s = sketch_of(0..n);
            let e = s.estimate() as f64;
            let error = (e - n as f64).abs() / n as f64;
            assert!(error < 0.05, "{n} values estimated as {e}");
        }
    }

    #[test]
    fn merging_halves_equals_the_whole() {
        let mut a = sketch_of(0..30_000);
        a.merge(&sketch_of(15_000..60_000));
        assert_eq!(a.estimate(), sketch_of(0..60_000).estimate());
        let mut sparse = sketch_of(0..10);
        sparse.merge(&sketch_of(0..60_000));
        assert_eq!(sparse.estimate(), sketch_of(0..60_000).estimate());
    }
}
