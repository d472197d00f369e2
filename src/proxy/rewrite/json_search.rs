//! The byte-by-byte lexer's searches: the next `"` (between strings) or the next `"` or `\`
//! (inside one), eight bytes at a time in a `u64` for the first few words, then `memchr`. And
//! the last-chunk search: the last `"` followed by a byte that could start the origin
//! ([`rfind_pair`], 64 bytes at a time as masks).

use super::super::blocks::{self, BLOCK};

/// Bytes searched eight at a time (SWAR, in a `u64`) before handing a search to `memchr`: JSON
/// strings and the gaps between them are mostly short, and `memchr`'s set-up costs more than a
/// short scan.
const SHORT: usize = 32;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `w` equal to `b`, except that bytes after (more significant
/// than) a match may be flagged falsely: only the lowest flag is exact, and it is the only one
/// used (the first match).
fn flags(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The first byte of `hay` for which `flagged` (over eight bytes, little-endian) says yes.
fn find_by(hay: &[u8], flagged: impl Fn(u64) -> u64, one: impl Fn(u8) -> bool) -> Option<usize> {
    let head = &hay[..hay.len().min(SHORT)];
    let mut words = head.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let m = flagged(u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    if let Some(n) = words.remainder().iter().position(|&b| one(b)) {
        return Some(at + n);
    }
    None
}

pub(super) fn find(a: u8, hay: &[u8]) -> Option<usize> {
    match find_by(hay, |w| flags(w, a), |b| b == a) {
        Some(n) => Some(n),
        None if hay.len() > SHORT => memchr::memchr(a, &hay[SHORT..]).map(|n| n + SHORT),
        None => None,
    }
}

pub(super) fn find2(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
    // The lowest flag of the union is the first match of either byte.
    match find_by(hay, |w| flags(w, a) | flags(w, b), |x| x == a || x == b) {
        Some(n) => Some(n),
        None if hay.len() > SHORT => memchr::memchr2(a, b, &hay[SHORT..]).map(|n| n + SHORT),
        None => None,
    }
}

/// How many second bytes [`rfind_pair`] looks at with `memrchr2` (fast where they are rare, as
/// `h` is in most records) before it goes on a block at a time (a fixed cost per byte, however
/// dense they are).
const SPARSE_TRIES: usize = 8;

/// The last `i` with `hay[i] == first` and `hay[i + 1]` one of `then`.
pub(super) fn rfind_pair(hay: &[u8], first: u8, then: [u8; 2]) -> Option<usize> {
    // Every second byte at or after `end` has been looked at.
    let mut end = hay.len();
    for _ in 0..SPARSE_TRIES {
        let second = memchr::memrchr2(then[0], then[1], &hay[..end])?;
        if second > 0 && hay[second - 1] == first {
            return Some(second - 1);
        }
        end = second;
    }
    rfind_pair_blocks(&hay[..end], first, then)
}

/// [`rfind_pair`] from the end a block at a time.
fn rfind_pair_blocks(hay: &[u8], first: u8, then: [u8; 2]) -> Option<usize> {
    // Positions `..end` can start a pair (the last byte has no byte after it).
    let mut end = hay.len().checked_sub(1)?;
    let short = end % BLOCK;
    if short > 0 {
        // The positions after the last whole block: padded, and the padding's bits cleared.
        let start = end - short;
        let mut window = [0u8; BLOCK + 1];
        window[..=short].copy_from_slice(&hay[start..=end]);
        let mask = blocks::pairs(&window, first, then) & ((1u64 << short) - 1);
        if mask != 0 {
            return Some(start + 63 - mask.leading_zeros() as usize);
        }
        end = start;
    }
    while end > 0 {
        let start = end - BLOCK;
        // `start + BLOCK + 1 <= hay.len()`: the window holds the byte after the block.
        let window = hay[start..].first_chunk::<{ BLOCK + 1 }>()?;
        let mask = blocks::pairs(window, first, then);
        if mask != 0 {
            return Some(start + 63 - mask.leading_zeros() as usize);
        }
        end = start;
    }
    None
}

#[cfg(test)]
#[path = "json_find_tests.rs"]
mod tests;
