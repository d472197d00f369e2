//! A fast, deterministic hasher for the metadata's name indexes.
//!
//! The indexes are looked up several times for every request (entity set, type, operation
//! names), with keys that are short identifiers. SipHash, the standard library's default, is
//! built to resist hash flooding by chosen keys; these maps are built once from the org's CSDL
//! (the tenant's own, trusted configuration) and only *read* with request data, so a crafted
//! request cannot degrade them: a lookup hashes one key and compares it with the few entries of
//! one bucket. The function is the multiply-rotate hash rustc uses (FxHash), eight bytes at a
//! time.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by names from the CSDL.
pub type NameMap<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;
/// A set of names from the CSDL.
pub type NameSet<K> = HashSet<K, BuildHasherDefault<NameHasher>>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Default, Clone, Copy)]
pub struct NameHasher {
    hash: u64,
}

impl NameHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

/// The last one to seven bytes of a name as one number, without a variable-length copy (a
/// call to `memcpy`): from four bytes on, the first four and the last four (overlapping, so
/// every byte is in); below, the first, middle and last byte (every byte again). With the
/// length hashed first, different tails of the same length give different numbers.
#[inline]
fn tail(rest: &[u8]) -> u64 {
    let n = rest.len();
    let four = |at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&rest[at..at + 4]);
        u64::from(u32::from_le_bytes(w))
    };
    if n >= 4 {
        four(0) | four(n - 4) << 32
    } else {
        u64::from(rest[0]) | u64::from(rest[n / 2]) << 8 | u64::from(rest[n - 1]) << 16
    }
}

impl Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.add(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            self.add(tail(rest));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_differ_only_in_length_or_tail_are_told_apart() {
        let names = [
            "a",
            "a\0",
            "contact",
            "contacts",
            "contactsX",
            "",
            "abcdefgh",
            "abcdefghi",
        ];
        let map: NameMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i))
            .collect();
        assert_eq!(map.len(), names.len());
        for (i, n) in names.iter().enumerate() {
            assert_eq!(map.get(*n), Some(&i), "{n:?}");
        }
        assert_eq!(map.get("contactsx"), None);
    }

    #[test]
    fn every_byte_of_a_tail_counts() {
        // Two tails of the same length that differ in one byte never make the same number.
        for n in 1..8 {
            let base: Vec<u8> = (0..n as u8).map(|i| b'a' + i).collect();
            for at in 0..n {
                let mut other = base.clone();
                other[at] ^= 0x20;
                assert_ne!(tail(&base), tail(&other), "{n} {at}");
            }
        }
    }
}
