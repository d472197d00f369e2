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
//! Pure functions on integers and byte arrays, without `unsafe`. On x86-64, [`marks`] is SSE2
//! (part of the base target) through `safe_arch`, which wraps the intrinsics in safe functions:
//! one compare and one movemask per 16 bytes and character ([`marks_sse2`], ~40 instructions
//! per block). Elsewhere it is SWAR on `u64`s ([`marks_swar`], ~170), compiled and tested on
//! x86-64 too.
//!
//! Why a dependency for this: SSE2 intrinsics are `unsafe` to call, and no portable
//! formulation compiles to them reliably. The closest, a 16-byte mask gathered four bits at a
//! time in a function never inlined, gives one `pcmpeqb` and one `pmovmskb` with LLVM 22, but
//! only because of how the back end happens to fold bit extractions: two such masks in one
//! function already come out as ~50 scalar instructions each. It measured ~80 instructions per
//! block (the calls), and a compiler upgrade could silently make it slower than SWAR.

/// Bytes per block.
pub(super) const BLOCK: usize = 64;

/// What [`marks`] finds in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Marks {
    /// `"` bytes, escaped or not.
    pub quotes: u64,
    /// `\` bytes.
    pub backslashes: u64,
    /// `k`, `t` and `d` bytes: the last bytes of the annotations, so a closing quote after
    /// none of them cannot close an annotation key.
    pub key_ends: u64,
}

/// The quotes, backslashes and annotation-ending bytes of a 64-byte block.
#[inline]
pub(super) fn marks(block: &[u8; BLOCK]) -> Marks {
    #[cfg(target_arch = "x86_64")]
    return marks_sse2(block);
    #[cfg(not(target_arch = "x86_64"))]
    return marks_swar(block);
}

/// [`marks`] 16 bytes at a time: a byte compare against each character and the compare's
/// top bits as a 16-bit mask (`pcmpeqb`, `pmovmskb`).
#[cfg(target_arch = "x86_64")]
fn marks_sse2(block: &[u8; BLOCK]) -> Marks {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let quote = set_splat_i8_m128i(b'"' as i8);
    let backslash = set_splat_i8_m128i(b'\\' as i8);
    let [k, t, d] = [b'k', b't', b'd'].map(|c| set_splat_i8_m128i(c as i8));
    let bits = |m| u64::from(move_mask_i8_m128i(m) as u16);
    let (lanes, _) = block.as_chunks::<16>();
    let (mut quotes, mut backslashes, mut key_ends) = (0u64, 0u64, 0u64);
    for (n, lane) in lanes.iter().enumerate() {
        let lane = load_unaligned_m128i(lane);
        quotes |= bits(cmp_eq_mask_i8_m128i(lane, quote)) << (16 * n);
        backslashes |= bits(cmp_eq_mask_i8_m128i(lane, backslash)) << (16 * n);
        let ends = bitor_m128i(
            bitor_m128i(cmp_eq_mask_i8_m128i(lane, k), cmp_eq_mask_i8_m128i(lane, t)),
            cmp_eq_mask_i8_m128i(lane, d),
        );
        key_ends |= bits(ends) << (16 * n);
    }
    Marks {
        quotes,
        backslashes,
        key_ends,
    }
}

/// [`marks`] eight bytes at a time in a `u64` (SWAR): ~300 instructions per block.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn marks_swar(block: &[u8; BLOCK]) -> Marks {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let (words, _) = block.as_chunks::<8>();
    // Bits set for the bytes that are NOT the character; inverted once at the end.
    let (mut quotes, mut backslashes, mut key_ends) = (0u64, 0u64, 0u64);
    for (n, word) in words.iter().enumerate() {
        let w = u64::from_le_bytes(*word);
        let low = w & LOW7;
        // A byte's high bit ends up set when any of its bits differs from the character's:
        // the low seven through the carry of the addition, the eighth (the character's is 0)
        // through the `| w`.
        let other = |c: u8| (((low ^ (ONES * u64::from(c))) + LOW7) | w) & !LOW7;
        quotes |= gather(other(b'"')) << (8 * n);
        backslashes |= gather(other(b'\\')) << (8 * n);
        key_ends |= gather(other(b'k') & other(b't') & other(b'd')) << (8 * n);
    }
    Marks {
        quotes: !quotes,
        backslashes: !backslashes,
        key_ends: !key_ends,
    }
}

/// The high bits of the eight bytes of `w` (no other bit set) as an 8-bit mask, byte 0 lowest.
fn gather(w: u64) -> u64 {
    w.wrapping_mul(0x0002_0408_1020_4081) >> 56
}

/// Bit `i`: byte `i` of `window` is `first` and byte `i + 1` is `then[0]` or `then[1]`, for the
/// 64 positions of a block (the window's last byte is only ever a second byte). Exact, like
/// [`marks`]; SSE2 on x86-64 (two overlapping loads per 16 bytes), a byte loop elsewhere.
#[inline]
pub(super) fn pairs(window: &[u8; BLOCK + 1], first: u8, then: [u8; 2]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    return pairs_sse2(window, first, then);
    #[cfg(not(target_arch = "x86_64"))]
    return pairs_bytewise(window, first, then);
}

#[cfg(target_arch = "x86_64")]
fn pairs_sse2(window: &[u8; BLOCK + 1], first: u8, then: [u8; 2]) -> u64 {
    use safe_arch::{
        bitand_m128i, bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let first = set_splat_i8_m128i(first as i8);
    let (then0, then1) = (
        set_splat_i8_m128i(then[0] as i8),
        set_splat_i8_m128i(then[1] as i8),
    );
    // The block's bytes and, one byte on, the bytes that follow each of them.
    let [here @ .., _] = window;
    let [_, next @ ..] = window;
    let (here, _) = here.as_chunks::<16>();
    let (next, _) = next.as_chunks::<16>();
    let mut mask = 0u64;
    for (n, (here, next)) in here.iter().zip(next).enumerate() {
        let (here, next) = (load_unaligned_m128i(here), load_unaligned_m128i(next));
        let seconds = bitor_m128i(
            cmp_eq_mask_i8_m128i(next, then0),
            cmp_eq_mask_i8_m128i(next, then1),
        );
        let both = bitand_m128i(cmp_eq_mask_i8_m128i(here, first), seconds);
        mask |= u64::from(move_mask_i8_m128i(both) as u16) << (16 * n);
    }
    mask
}

/// [`pairs`] one byte at a time.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn pairs_bytewise(window: &[u8; BLOCK + 1], first: u8, then: [u8; 2]) -> u64 {
    window
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] == first && (w[1] == then[0] || w[1] == then[1]))
        .fold(0, |m, (i, _)| m | 1 << i)
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
