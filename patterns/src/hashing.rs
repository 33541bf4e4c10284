//! Hash functions with fixed, specified algorithms.
//!
//! Template ids must not change with the Rust version or the process, so they
//! use FNV-1a (64-bit), fully specified by its offset basis and prime. The
//! in-memory maps use a fast multiplicative hasher with a fixed seed, which
//! also keeps every decision of the miner independent of random state.

use std::hash::{BuildHasherDefault, Hasher};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a of `bytes`.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Folded 64×64→128-bit multiply (the wyhash mixing step).
#[inline]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

const LANE1: u64 = 0xa076_1d64_78bd_642f;
const LANE2: u64 = 0xe703_7ed1_a0b4_28db;
const FINAL1: u64 = 0x8ebc_6af0_9c88_c6e3;
const FINAL2: u64 = 0x5899_65cc_7537_4cc3;

/// A 128-bit fingerprint of `bytes` (two wyhash-style lanes), used as the key
/// of the miner's cache of masked lines instead of the text itself: no key
/// to allocate or compare, and a collision chance (about n²/2¹²⁹) far below
/// that of the 64-bit template ids themselves.
#[inline]
pub(crate) fn fingerprint(bytes: &[u8]) -> u128 {
    let (mut a, mut b) = (LANE1, LANE2);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let w = u64::from_le_bytes(w);
        a = mum(a ^ w, LANE2);
        b = mum(b ^ w.rotate_left(32), LANE1);
    }
    let rest = chunks.remainder();
    let mut w = [0u8; 8];
    w[..rest.len()].copy_from_slice(rest);
    let w = u64::from_le_bytes(w) ^ ((bytes.len() as u64) << 3);
    a = mum(mum(a ^ w, FINAL1), FINAL2 ^ bytes.len() as u64);
    b = mum(
        mum(b ^ w.rotate_left(32), FINAL2),
        FINAL1 ^ bytes.len() as u64,
    );
    (u128::from(a) << 64) | u128::from(b)
}

/// A word-at-a-time multiplicative hasher (the `FxHash` scheme) for maps keyed
/// by masked lines and tokens. Not for anything persisted.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        // Map keys of this width are fingerprints, random already.
        self.add((i as u64) ^ ((i >> 64) as u64));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_tell_near_identical_lines_apart() {
        let mut seen = std::collections::HashSet::new();
        let base = "Failed password for <*> from <*> port <*> ssh2";
        for i in 0..base.len() {
            for c in [b'x', b' ', b'0'] {
                let mut v = base.as_bytes().to_vec();
                v[i] = c;
                seen.insert((fingerprint(&v), v));
            }
            seen.insert((
                fingerprint(&base.as_bytes()[..i]),
                base.as_bytes()[..i].to_vec(),
            ));
        }
        let distinct_inputs: std::collections::HashSet<_> =
            seen.iter().map(|(_, v)| v.clone()).collect();
        let distinct_prints: std::collections::HashSet<_> = seen.iter().map(|(f, _)| *f).collect();
        assert_eq!(distinct_inputs.len(), distinct_prints.len());
        assert_eq!(fingerprint(b"abc"), fingerprint(b"abc"));
        assert_ne!(fingerprint(b""), fingerprint(b"\0"));
    }

    #[test]
    fn fnv1a64_matches_the_published_vectors() {
        // Test vectors from the FNV reference (draft-eastlake-fnv).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
