//! The JSON lexer's fast path: between strings and in strings that are no annotation value, 64
//! bytes at a time as bit masks ([`blocks`]). It stops at the closing quote of an annotation key,
//! so the byte-by-byte lexer handles what follows a key (`:`, the value), and hands back any
//! block with a backslash between strings, where the masks' rule (every `\` escapes) is not the
//! lexer's (`\` escapes only inside a string).
//!
//! Why a block without such a backslash gives exactly the byte-by-byte lexer's result: the two
//! agree on every byte up to the first backslash the lexer reads between strings, and at that
//! backslash they still agree that it lies between strings, so the masks see it there and the
//! block is handed back.

use super::super::blocks::{self, BLOCK};
use super::{After, JsonRewriter, State};

/// Where the fast path stopped.
pub(super) enum Skim {
    /// Lexed up to here (the end of the chunk, or past an annotation key's closing quote).
    To(usize),
    /// The block `from..to` must be lexed byte by byte, from the state the lexer is in (lexed
    /// up to `from`).
    Bytewise { from: usize, to: usize },
}

impl JsonRewriter {
    /// Lexes `chunk` from `i`, in state `Between(Other)` or `Str`, block by block. `start` is
    /// where the current string's raw bytes start (see `Run::start`), kept up to date.
    pub(super) fn skim(&mut self, chunk: &[u8], mut i: usize, start: &mut usize) -> Skim {
        let (mut inside, mut carry) = match self.state {
            State::Str { escape } => (true, escape),
            _ => (false, false),
        };
        let mut padded = [0u8; BLOCK];
        while let Some(rest) = chunk.get(i..).filter(|rest| !rest.is_empty()) {
            let (block, len) = match rest.first_chunk::<BLOCK>() {
                Some(block) => (block, BLOCK),
                None => {
                    // The chunk's last bytes, once per chunk; zeros are neither `"` nor `\`.
                    padded[..rest.len()].copy_from_slice(rest);
                    (&padded, rest.len())
                }
            };
            let marks = blocks::marks(block);
            let (was_inside, was_carry) = (inside, carry);
            let escaped = blocks::escaped(marks.backslashes, &mut carry);
            let quotes = marks.quotes & !escaped;
            // Bit set: inside a string after this byte (opening quote and content).
            let strings = blocks::prefix_xor(quotes) ^ 0u64.wrapping_sub(u64::from(inside));
            if marks.backslashes & !strings != 0 {
                self.state = if was_inside {
                    State::Str { escape: was_carry }
                } else {
                    State::Between(After::Other)
                };
                return Skim::Bytewise {
                    from: i,
                    to: i + len,
                };
            }
            let opens = quotes & strings;
            // Every annotation ends in `k`, `t` or `d`: only the closing quotes right after one
            // of those are looked at. The byte before the block's first is the previous
            // block's last, or at the chunk's start in the tail: then the full check.
            let before_first = i == 0 || matches!(chunk[i - 1], b'k' | b't' | b'd');
            let after_end = marks.key_ends << 1 | u64::from(before_first);
            let mut closes = quotes & !strings & after_end;
            while closes != 0 {
                let at = closes.trailing_zeros();
                closes &= closes - 1;
                let close = i + at as usize;
                let opened = opens & ((1u64 << at) - 1);
                if opened != 0 {
                    *start = i + BLOCK - opened.leading_zeros() as usize;
                }
                if self.is_annotation_key(*start, &chunk[..close]) {
                    self.state = State::Between(After::Key);
                    return Skim::To(close + 1);
                }
            }
            if opens != 0 {
                *start = i + BLOCK - opens.leading_zeros() as usize;
            }
            inside = strings >> (len - 1) & 1 == 1;
            if len < BLOCK {
                // The byte after a short block's end is escaped when the block ends in an odd
                // run of backslashes (the padding holds none).
                carry = escaped >> len & 1 == 1;
            }
            i += len;
        }
        self.state = if inside {
            State::Str { escape: carry }
        } else {
            State::Between(After::Other)
        };
        Skim::To(i)
    }
}
