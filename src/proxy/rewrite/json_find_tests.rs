//! The rewriter's searches (eight bytes at a time, then `memchr`) agree with a byte-by-byte
//! search at every length and position, around bytes that trip the word trick's false flags.

use super::{find, find2};

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
