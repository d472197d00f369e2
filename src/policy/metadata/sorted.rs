//! The members of an entity type: names kept sorted in one vector.
//!
//! Guarantees: iteration is in byte order of the names (the order of the `BTreeSet` and
//! `BTreeMap` these replace, which the classifier's outputs follow); each name is held once.
//! A [`NameList`] (the columns, looked up for every name a request gives) is found through a
//! small open-addressing index of 32-bit positions beside the names: one hash of the name, and
//! about one comparison. A [`Members`] map (the navigation properties) is found by binary
//! search, comparing eight bytes at a time. No tree nodes, so a large CSDL holds less.

use std::cmp::Ordering;
use std::hash::Hasher;

use super::hash::NameHasher;

/// Byte order of `a` and `b` (as `<[u8]>::cmp`), eight bytes at a time.
#[inline]
fn compare(a: &[u8], b: &[u8]) -> Ordering {
    let (mut a, mut b) = (a, b);
    while let (Some((x, ra)), Some((y, rb))) =
        (a.split_first_chunk::<8>(), b.split_first_chunk::<8>())
    {
        match u64::from_be_bytes(*x).cmp(&u64::from_be_bytes(*y)) {
            Ordering::Equal => (a, b) = (ra, rb),
            other => return other,
        }
    }
    // One of them has fewer than eight bytes left: their first eight (or fewer), zero-padded,
    // differ where the bytes differ; equal, the shorter is a prefix of the other.
    word(a).cmp(&word(b)).then(a.len().cmp(&b.len()))
}

/// The first eight bytes of `s` (fewer, padded with zeros) as a big-endian number.
#[inline]
fn word(s: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    for (to, from) in w.iter_mut().zip(s) {
        *to = *from;
    }
    u64::from_be_bytes(w)
}

fn position<T>(items: &[T], key: impl Fn(&T) -> &str, name: &str) -> Result<usize, usize> {
    items.binary_search_by(|item| compare(key(item).as_bytes(), name.as_bytes()))
}

/// A sorted set of names (an entity type's structural properties).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameList {
    names: Vec<String>,
    /// The index: `position + 1` of a name in `names`, or 0 for an empty slot, at the slot the
    /// high bits of the name's [`NameHasher`] hash pick or the first free one after it
    /// (linear probing, wrapping). A power of two at least twice as long as `names`, so at most
    /// half full: a probe run ends at an empty slot after about one comparison on average, and
    /// always ends. Empty for an empty list. Built from the CSDL and only read with request
    /// data, so a request cannot lengthen a run (see [`super::hash`]). The same memory as
    /// the eight-byte sort keys it replaced, to twice that.
    slots: Box<[u32]>,
}

/// The slot of `name` in an index of `2^bits` slots (`bits` ≥ 1).
#[inline]
fn home(name: &str, bits: u32) -> usize {
    let mut h = NameHasher::default();
    h.write(name.as_bytes());
    // The multiply leaves its best-mixed bits at the top.
    (h.finish() >> (64 - bits)) as usize
}

impl NameList {
    pub fn contains(&self, name: &str) -> bool {
        let len = self.slots.len();
        if len == 0 {
            return false;
        }
        let mask = len - 1;
        let mut at = home(name, len.trailing_zeros());
        loop {
            match self.slots[at] {
                0 => return false,
                taken => {
                    if self.names[taken as usize - 1] == name {
                        return true;
                    }
                }
            }
            at = (at + 1) & mask;
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.names.iter()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The index of `names` (sorted, deduplicated). Past 2^32 - 2 names (beyond any CSDL the
    /// gateway accepts) the rest would go unindexed: not found, so refused, never allowed.
    fn index(names: &[String]) -> Box<[u32]> {
        if names.is_empty() {
            return Box::default();
        }
        let len = (names.len() * 2).next_power_of_two();
        let (mask, bits) = (len - 1, len.trailing_zeros());
        let mut slots = vec![0u32; len].into_boxed_slice();
        for (i, name) in names.iter().enumerate() {
            let Ok(taken) = u32::try_from(i + 1) else {
                break;
            };
            let mut at = home(name, bits);
            while slots[at] != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = taken;
        }
        slots
    }
}

impl<'a> IntoIterator for &'a NameList {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.names.iter()
    }
}

impl<V> FromIterator<(String, V)> for Members<V> {
    /// Sorted by name; of a name given twice, the last value is kept (as a map collects).
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut members = Members::default();
        for (name, value) in iter {
            members.insert(name, value);
        }
        members.shrink_to_fit();
        members
    }
}

impl FromIterator<String> for NameList {
    /// Sorted and deduplicated, without spare capacity (held for the model's lifetime).
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        let mut names: Vec<String> = iter.into_iter().collect();
        names.sort_unstable_by(|a, b| compare(a.as_bytes(), b.as_bytes()));
        names.dedup();
        names.shrink_to_fit();
        let slots = NameList::index(&names);
        NameList { names, slots }
    }
}

/// A sorted map from names (an entity type's navigation properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members<V> {
    entries: Vec<(String, V)>,
}

impl<V> Default for Members<V> {
    fn default() -> Self {
        Members {
            entries: Vec::new(),
        }
    }
}

impl<V> Members<V> {
    pub fn get(&self, name: &str) -> Option<&V> {
        let i = position(&self.entries, |(n, _)| n, name).ok()?;
        Some(&self.entries[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        position(&self.entries, |(n, _)| n, name).is_ok()
    }

    /// Inserts or replaces, returning the value replaced.
    pub fn insert(&mut self, name: String, value: V) -> Option<V> {
        match position(&self.entries, |(n, _)| n, &name) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (name, value));
                None
            }
        }
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut V) -> bool) {
        self.entries.retain_mut(|(n, v)| keep(n, v));
    }

    /// Drops spare capacity (the model is held for its lifetime).
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.into_iter()
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<'a, V> IntoIterator for &'a Members<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, V)>,
        fn(&'a (String, V)) -> (&'a String, &'a V),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(n, v)| (n, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn compares_as_byte_slices_do() {
        let words = [
            "",
            "a",
            "ab",
            "abcdefgh",
            "abcdefghi",
            "abcdefgh\u{0}",
            "abcdefgg",
            "abcdefgi",
            "abcdefghabcdefgh",
            "abcdefghabcdefgha",
            "b",
            "_a_value",
            "é",
            "zzzzzzzzz",
            "A",
            "a\u{0}",
            "a\u{0}\u{0}",
            "ab\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}c",
            "abcdefgh\u{0}\u{0}",
            "\u{7f}",
            "\u{0}",
        ];
        for a in words {
            for b in words {
                assert_eq!(compare(a.as_bytes(), b.as_bytes()), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn a_list_finds_names_that_share_their_first_eight_bytes() {
        let words = [
            "",
            "a",
            "a\u{0}",
            "abcdefg",
            "abcdefgh",
            "abcdefgh\u{0}",
            "abcdefgha",
            "abcdefghb",
            "abcdefghab",
            "abcdefghabcdefgh",
            "abcdefghabcdefghz",
            "abcdefgi",
            "abcdefgg",
            "emailaddress1",
            "emailaddress2",
            "emailaddress3",
            "é",
            "éé",
        ];
        for keep in 0..words.len() {
            // Every other name from `keep` on: each probe is in it or next to one that is.
            let kept: Vec<String> = words[keep..]
                .iter()
                .step_by(2)
                .map(|w| w.to_string())
                .collect();
            let list: NameList = kept.iter().cloned().collect();
            let set: BTreeSet<String> = kept.into_iter().collect();
            for probe in words.iter().flat_map(|w| [w.to_string(), format!("{w}x")]) {
                assert_eq!(
                    list.contains(&probe),
                    set.contains(&probe),
                    "{probe:?} in {set:?}"
                );
            }
        }
    }

    #[test]
    fn behave_as_the_btree_collections() {
        let names: Vec<String> = (0..300u32)
            .map(|i| format!("n{}_{}", i.wrapping_mul(2654435761) % 97, i % 7))
            .collect();
        let list: NameList = names.iter().cloned().collect();
        let set: BTreeSet<String> = names.iter().cloned().collect();
        assert!(list.iter().eq(set.iter()));
        assert_eq!(list.len(), set.len());
        let mut members = Members::default();
        let mut map = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(members.insert(n.clone(), i), map.insert(n.clone(), i));
        }
        assert!(members.iter().eq(map.iter()));
        for probe in names
            .iter()
            .map(String::as_str)
            .chain(["", "n", "n1_", "zz"])
        {
            assert_eq!(list.contains(probe), set.contains(probe), "{probe}");
            assert_eq!(members.get(probe), map.get(probe), "{probe}");
            assert_eq!(members.contains_key(probe), map.contains_key(probe));
        }
        members.retain(|_, v| *v % 2 == 0);
        map.retain(|_, v| *v % 2 == 0);
        assert!((&members).into_iter().eq(map.iter()));
        assert_eq!(members.len(), map.len());
        assert!(Members::<u8>::default().is_empty() && NameList::default().is_empty());
    }
}
