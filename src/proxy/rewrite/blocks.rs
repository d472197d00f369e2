//! A JSON text read 64 bytes at a time as bit masks (bit `i` = byte `i` of the block): where its
//! `"` and `\` are, which bytes a run of backslashes escapes, and which bytes lie inside strings.
//! The technique is simdjson's, on one `u64` per property; what the JSON lexer does with the
//! masks is in [`super::json`].
//!
//! Invariants (each pinned by a test against a byte-by-byte model):
//! - [`marks`] is exact: a bit is set if and only if its byte is the character. Bytes past the
//!   end of a short block are zero, which is none of them.
//! - [`escaped`] marks the bytes that follow an odd run of backslashes, with the run allowed to
//!   start in an earlier block (`carry`), exactly as a lexer reading one byte at a time and
//!   treating every `\` as an escape would.
//! - [`prefix_xor`] of the unescaped quotes is "inside a string after this byte": an opening
//!   quote and a string's content have the bit, a closing quote and what lies between strings do
//!   not.
//!
//! Pure functions on integers and byte arrays, portable (no `unsafe`, no processor-specific
//! intrinsics). On x86-64, [`marks`] is written so that LLVM compiles each 16 bytes to one SSE2
//! compare and one movemask per character ([`marks_lanes`]); elsewhere it is SWAR on `u64`s
//! ([`marks_swar`]). Both are compiled everywhere and tested against the same model.

/// Bytes per block.
pub(super) const BLOCK: usize = 64;

/// What [`marks`] finds in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Marks {
    /// `"` bytes, escaped or not.
    pub quotes: u64,
    /// `\` bytes.
    pub backslashes: u64,
}

/// The quotes and backslashes of a 64-byte block.
#[inline]
pub(super) fn marks(block: &[u8; BLOCK]) -> Marks {
    #[cfg(target_arch = "x86_64")]
    return marks_lanes(block);
    #[cfg(not(target_arch = "x86_64"))]
    return marks_swar(block);
}

/// [`marks`] 16 bytes at a time through [`lane_mask`]: on x86-64 (SSE2 is part of the base
/// target) about 80 instructions per block, half of [`marks_swar`]'s.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn marks_lanes(block: &[u8; BLOCK]) -> Marks {
    let (lanes, _) = block.as_chunks::<16>();
    let (mut quotes, mut backslashes) = (0u64, 0u64);
    for (n, lane) in lanes.iter().enumerate() {
        quotes |= lane_mask::<b'"'>(lane) << (16 * n);
        backslashes |= lane_mask::<b'\\'>(lane) << (16 * n);
    }
    Marks {
        quotes,
        backslashes,
    }
}

/// Bit `i` set when `lane[i]` is `C`. Written for LLVM's x86-64 back end, which turns it into
/// one `pcmpeqb` and one `pmovmskb` (four instructions with the load and the return): the bits
/// are gathered four at a time by shifts, shallow enough for the back end to see each bit land
/// where the movemask puts it (one chain of sixteen, or one `|=` per bit, is not folded). Never
/// inlined: with two of these in one function the SLP vectoriser merges their compares into one
/// 32-byte compare, whose second half the back end no longer folds (~50 scalar instructions).
/// Elsewhere it is plain code: correct, not fast.
#[inline(never)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn lane_mask<const C: u8>(lane: &[u8; 16]) -> u64 {
    let (nibbles, _) = lane.as_chunks::<4>();
    let mask = nibbles.iter().rev().fold(0u32, |mask, nibble| {
        let bits = nibble
            .iter()
            .rev()
            .fold(0u32, |bits, &b| (bits << 1) | u32::from(b == C));
        (mask << 4) | bits
    });
    u64::from(mask)
}

/// [`marks`] eight bytes at a time in a `u64` (SWAR): ~170 instructions per block.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn marks_swar(block: &[u8; BLOCK]) -> Marks {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const QUOTE: u64 = 0x2222_2222_2222_2222;
    const BACKSLASH: u64 = 0x5c5c_5c5c_5c5c_5c5c;
    let (words, _) = block.as_chunks::<8>();
    // Bits set for the bytes that are NOT the character; inverted once at the end.
    let (mut quotes, mut backslashes) = (0u64, 0u64);
    for (n, word) in words.iter().enumerate() {
        let w = u64::from_le_bytes(*word);
        let low = w & LOW7;
        // A byte's high bit ends up set when any of its bits differs from the character's:
        // the low seven through the carry of the addition, the eighth (the character's is 0)
        // through the `| w`.
        let other_quote = (((low ^ QUOTE) + LOW7) | w) & !LOW7;
        let other_backslash = (((low ^ BACKSLASH) + LOW7) | w) & !LOW7;
        quotes |= gather(other_quote) << (8 * n);
        backslashes |= gather(other_backslash) << (8 * n);
    }
    Marks {
        quotes: !quotes,
        backslashes: !backslashes,
    }
}

/// The high bits of the eight bytes of `w` (no other bit set) as an 8-bit mask, byte 0 lowest.
fn gather(w: u64) -> u64 {
    w.wrapping_mul(0x0002_0408_1020_4081) >> 56
}

/// The bytes of a block escaped by a backslash: those right after a run of backslashes of odd
/// length. `carry` says whether the block's first byte is escaped (the previous block ended in
/// an odd run) and becomes the same for the next block.
pub(super) fn escaped(backslashes: u64, carry: &mut bool) -> u64 {
    const ODD: u64 = 0xaaaa_aaaa_aaaa_aaaa;
    let first = u64::from(*carry);
    if backslashes == 0 {
        *carry = false;
        return first;
    }
    // simdjson's `json_escape_scanner`: a subtraction turns runs starting on even bits into a
    // mask of their odd positions, and XOR with the odd bits corrects runs starting on odd bits.
    let potential = backslashes & !first;
    let code = ((potential << 1) | ODD).wrapping_sub(potential) ^ ODD;
    let escaped = code ^ (backslashes | first);
    *carry = (code & backslashes) >> 63 == 1;
    escaped
}

/// Bit `i` of the result is the XOR of bits `0..=i` of `x`.
pub(super) fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

#[cfg(test)]
#[path = "blocks_tests.rs"]
mod tests;
