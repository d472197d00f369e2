//! The rewriter's searches (eight bytes at a time, then `memchr`) agree with a byte-by-byte
//! search at every length and position, around bytes that trip the word trick's false flags.

use super::{find, find2, rfind_pair, rfind_pair_blocks};

/// Bytes next to `"` and `\` in value, with and without the high bit, and zero.
const NOISE: [u8; 8] = [0x21, 0x23, 0x5b, 0x5d, 0xa2, 0xdc, 0x00, 0x01];

fn naive(hay: &[u8], hit: impl Fn(u8) -> bool) -> Option<usize> {
    hay.iter().position(|&b| hit(b))
}

#[test]
fn searches_find_the_first_match_at_every_length_and_position() {
    for len in 0..80 {
        for fill in NOISE {
            let base = vec![fill; len];
            assert_eq!(
                find(b'"', &base),
                naive(&base, |b| b == b'"'),
                "{len} {fill}"
            );
            for at in 0..len {
                for (first, second) in [(b'"', b'\\'), (b'\\', b'"'), (b'"', b'"')] {
                    let mut hay = base.clone();
                    hay[at] = first;
                    if at + 1 < len {
                        hay[at + 1] = second;
                    }
                    if at + 9 < len {
                        hay[at + 9] = second;
                    }
                    let want1 = naive(&hay, |b| b == b'"');
                    let want2 = naive(&hay, |b| b == b'"' || b == b'\\');
                    assert_eq!(find(b'"', &hay), want1, "find {len} {at} {fill}");
                    assert_eq!(find2(b'"', b'\\', &hay), want2, "find2 {len} {at} {fill}");
                }
            }
        }
    }
}

fn naive_rfind_pair(hay: &[u8], first: u8, then: [u8; 2]) -> Option<usize> {
    hay.windows(2)
        .rposition(|w| w[0] == first && then.contains(&w[1]))
}

/// The last-pair search against a byte-by-byte one: every length around the block sizes, a
/// pair at every position (alone, or with a decoy pair or a lone first byte elsewhere), and the
/// pair split across every block end; on a filler of second bytes (`h`) the search goes on a
/// block at a time after its sparse tries. The block search alone too.
#[test]
fn the_last_pair_is_found_at_every_length_and_position() {
    let then = [b'h', b'H'];
    for len in 0..200 {
        for fill in [b'x', b'"', b'h', 0x00] {
            let base = vec![fill; len];
            assert_eq!(
                rfind_pair(&base, b'"', then),
                naive_rfind_pair(&base, b'"', then),
                "{len} {fill}"
            );
            for at in 0..len {
                for second in [b'h', b'H', b'x', b'"'] {
                    for decoy in [None, Some(at / 2), Some(at.saturating_sub(64))] {
                        let mut hay = base.clone();
                        if let Some(d) = decoy.filter(|&d| d + 1 < len) {
                            hay[d] = b'"';
                            hay[d + 1] = b'H';
                        }
                        hay[at] = b'"';
                        if at + 1 < len {
                            hay[at + 1] = second;
                        }
                        let want = naive_rfind_pair(&hay, b'"', then);
                        assert_eq!(
                            rfind_pair(&hay, b'"', then),
                            want,
                            "{len} {at} {fill} {second} {decoy:?}"
                        );
                        assert_eq!(
                            rfind_pair_blocks(&hay, b'"', then),
                            want,
                            "blocks {len} {at} {fill} {second} {decoy:?}"
                        );
                    }
                }
            }
        }
    }
}
