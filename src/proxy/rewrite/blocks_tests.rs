//! The block masks against byte-by-byte models, on generated blocks dense in the bytes that
//! matter and in their neighbours (which trip the word tricks' carries and borrows).

use super::*;
use crate::proxy::rewrite::tests::Lcg;

/// The bytes looked for, their neighbours in value, and bytes with the high bit set.
const BYTES: [u8; 20] = [
    b'"', b'\\', b'k', b't', b'd', 0x21, 0x23, 0x5b, 0x5d, b'j', b'l', b's', b'u', b'c', b'e',
    0x00, 0x01, 0x80, 0xa2, 0xff,
];

fn naive_mask(block: &[u8; BLOCK], hit: impl Fn(u8) -> bool) -> u64 {
    block
        .iter()
        .enumerate()
        .filter(|(_, b)| hit(**b))
        .fold(0, |m, (i, _)| m | 1 << i)
}

fn naive_marks(block: &[u8; BLOCK]) -> Marks {
    Marks {
        quotes: naive_mask(block, |b| b == b'"'),
        backslashes: naive_mask(block, |b| b == b'\\'),
        key_ends: naive_mask(block, |b| matches!(b, b'k' | b't' | b'd')),
    }
}

#[test]
fn marks_are_exact_on_dense_blocks() {
    let mut rng = Lcg(21);
    for round in 0..20_000 {
        let mut block = [0u8; BLOCK];
        // Runs of one byte (borrows travel along runs) as well as mixed bytes.
        let run = 1 + round % 9;
        for piece in block.chunks_mut(run) {
            let b = BYTES[rng.below(BYTES.len())];
            piece.fill(b);
            if rng.below(3) == 0 {
                piece[0] = BYTES[rng.below(BYTES.len())];
            }
        }
        let want = naive_marks(&block);
        assert_eq!(marks(&block), want, "{block:?}");
        assert_eq!(marks_swar(&block), want, "swar {block:?}");
    }
    for b in 0..=255u8 {
        let block = [b; BLOCK];
        let want = naive_marks(&block);
        assert_eq!(marks(&block), want, "all {b}");
        assert_eq!(marks_swar(&block), want, "swar, all {b}");
    }
}

/// Every single byte value at every position, alone in a block of another byte: the lane
/// compare's bit order and the SWAR borrows at every offset.
#[test]
fn marks_place_every_byte_at_every_position() {
    for filler in [0u8, b'"', b'\\', 0xff] {
        for at in 0..BLOCK {
            for b in 0..=255u8 {
                let mut block = [filler; BLOCK];
                block[at] = b;
                let want = naive_marks(&block);
                assert_eq!(marks(&block), want, "{filler} {at} {b}");
                assert_eq!(marks_swar(&block), want, "swar {filler} {at} {b}");
            }
        }
    }
}

/// Escapes over a sequence of blocks, one bit at a time: a `\` that is not escaped escapes the
/// next byte.
fn naive_escaped(backslashes: &[u64]) -> Vec<u64> {
    let mut pending = false;
    let mut out = vec![0; backslashes.len()];
    for (block, &bs) in backslashes.iter().enumerate() {
        for i in 0..64 {
            let is_backslash = bs >> i & 1 == 1;
            if pending {
                out[block] |= 1 << i;
                pending = false;
            } else if is_backslash {
                pending = true;
            }
        }
    }
    out
}

#[test]
fn escapes_follow_odd_runs_across_blocks() {
    let mut rng = Lcg(22);
    for round in 0..20_000 {
        // Dense masks of runs of every length, some crossing the 64-bit boundary.
        let density = 1 + round % 7;
        let blocks: Vec<u64> = (0..4)
            .map(|_| (0..64).fold(0u64, |m, i| m | u64::from(rng.below(8) < density) << i))
            .collect();
        let mut carry = false;
        let got: Vec<u64> = blocks.iter().map(|&b| escaped(b, &mut carry)).collect();
        assert_eq!(got, naive_escaped(&blocks), "{blocks:x?}");
        // The carry out of the last block: the model run one block further.
        let mut all = blocks.clone();
        all.push(0);
        assert_eq!(carry, naive_escaped(&all)[4] & 1 == 1, "{blocks:x?}");
    }
    for run in 0..=130usize {
        // One run of `run` backslashes ending at bit 63 of the first block or later.
        let bits: Vec<u64> = (0..3)
            .map(|block| {
                (0..64).fold(0u64, |m, i| {
                    let at = block * 64 + i;
                    m | u64::from((130 - run..130).contains(&at)) << i
                })
            })
            .collect();
        let mut carry = false;
        let got: Vec<u64> = bits.iter().map(|&b| escaped(b, &mut carry)).collect();
        assert_eq!(got, naive_escaped(&bits), "run of {run}");
    }
}

#[test]
fn prefix_xor_is_the_running_parity() {
    let mut rng = Lcg(23);
    for _ in 0..10_000 {
        let x = (0..64).fold(0u64, |m, i| m | u64::from(rng.below(5) == 0) << i);
        let mut parity = 0u64;
        let mut want = 0u64;
        for i in 0..64 {
            parity ^= x >> i & 1;
            want |= parity << i;
        }
        assert_eq!(prefix_xor(x), want, "{x:x}");
    }
}

/// `pairs` against its byte loop on dense windows: the pair at every offset, across the
/// 16-byte lanes, and with the window's last byte as a second byte.
#[test]
fn pairs_are_exact_on_dense_windows() {
    let mut rng = Lcg(22);
    let bytes = [b'"', b'h', b'H', b'x', 0x00, 0xa2];
    for _ in 0..20_000 {
        let mut window = [0u8; BLOCK + 1];
        for b in &mut window {
            *b = bytes[rng.below(bytes.len())];
        }
        assert_eq!(
            pairs(&window, b'"', [b'h', b'H']),
            pairs_bytewise(&window, b'"', [b'h', b'H']),
            "{window:?}"
        );
        assert_eq!(
            pairs(&window, b'x', [0x00, 0x00]),
            pairs_bytewise(&window, b'x', [0x00, 0x00]),
            "{window:?}"
        );
    }
}
