//! OData request parsing: the resource path and the query options of a Dataverse Web API call,
//! reduced to what the policy needs to decide.
//!
//! Pure: no I/O. Invariants:
//! - the classification is made on exactly the bytes that are forwarded (the raw path and query
//!   are never re-encoded), after the same percent-decoding Dataverse applies;
//! - anything this parser does not fully understand is reported as [`ParseError::NotUnderstood`]
//!   so that the policy denies it — it never guesses;
//! - malformed or ambiguous input (bad escapes, duplicate or unknown `$` options) is
//!   [`ParseError::Malformed`].

pub mod expand;
pub mod expr;
pub mod fetchxml;
pub mod path;
mod query;
pub mod skiptoken;

pub use expand::{ExpandItem, parse_expand};
pub use path::{Head, KeySpec, NAMESPACE, ResourcePath, Segment, parse_path};
pub use query::{
    OPTIONS, Pair, QUERY_PARAMETERS, QUERY_SCRATCH, Query, parse_query, parse_query_into,
};

use std::borrow::Cow;

/// Why a request cannot be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The request is malformed or ambiguous: 400.
    #[error("{0}")]
    Malformed(String),
    /// Valid OData the gateway does not inspect yet, so it may reach other tables: 403.
    #[error("{0}")]
    NotUnderstood(String),
}

/// Percent-decodes `s`; `plus_as_space` applies the query-string convention.
pub fn percent_decode(s: &str, plus_as_space: bool) -> Result<String, ParseError> {
    percent_decode_cow(s, plus_as_space).map(Cow::into_owned)
}

/// [`percent_decode`], borrowing `s` when it has nothing to decode (most names and values).
pub fn percent_decode_cow(s: &str, plus_as_space: bool) -> Result<Cow<'_, str>, ParseError> {
    // No scratch room: a decoded result on the heap.
    percent_decode_in(s, plus_as_space, &mut &mut [][..])
}

/// [`percent_decode_cow`], a decoded result written into the front of `scratch` (which is then
/// split off it) when `s` fits there, so that it costs no allocation; into a `String` otherwise
/// ([`decode_ascii`], or [`decode_bytes`] where that leaves it). The same result and the same
/// errors either way (the escapes read by [`hex_pair`]'s rules, the result checked to be UTF-8).
/// After an error `scratch` is left empty: nothing is decoded after one.
pub fn percent_decode_in<'a>(
    s: &'a str,
    plus_as_space: bool,
    scratch: &mut &'a mut [u8],
) -> Result<Cow<'a, str>, ParseError> {
    let bytes = s.as_bytes();
    let found = match plus_as_space {
        true => find_byte2(b'%', b'+', bytes),
        false => find_byte(b'%', bytes),
    };
    let Some(first) = found else {
        return Ok(Cow::Borrowed(s));
    };
    if bytes.len() > scratch.len() {
        return match decode_ascii(s, first, plus_as_space) {
            Some(decoded) => Ok(Cow::Owned(decoded)),
            None => decode_bytes(s, first, plus_as_space).map(Cow::Owned),
        };
    }
    let buf = std::mem::take(scratch);
    let written = decode_into(bytes, first, plus_as_space, buf)?;
    let (used, rest) = buf.split_at_mut(written);
    let used: &'a [u8] = used;
    let decoded = std::str::from_utf8(used).map_err(|_| invalid_utf8())?;
    *scratch = rest;
    Ok(Cow::Borrowed(decoded))
}

/// Decodes `bytes` (escaped from `first` on) into the front of `out`, which holds at least as
/// many bytes (a decoded string is never longer); the number of bytes written.
fn decode_into(
    bytes: &[u8],
    first: usize,
    plus_as_space: bool,
    out: &mut [u8],
) -> Result<usize, ParseError> {
    let out = &mut out[..bytes.len()];
    out[..first].copy_from_slice(&bytes[..first]);
    let (mut i, mut j) = (first, first);
    while i < bytes.len() {
        let b = match bytes[i] {
            b'%' => {
                let pair = bytes.get(i + 1..i + 3);
                let byte = match pair {
                    Some(&[high, low]) if HEX[usize::from(high)] | HEX[usize::from(low)] < 16 => {
                        HEX[usize::from(high)] * 16 + HEX[usize::from(low)]
                    }
                    // A `+` sign (see `hex_pair`), or an invalid escape.
                    _ => pair.and_then(hex_pair).ok_or_else(invalid_escape)?,
                };
                i += 3;
                byte
            }
            b'+' if plus_as_space => {
                i += 1;
                b' '
            }
            b => {
                i += 1;
                b
            }
        };
        out[j] = b;
        j += 1;
    }
    Ok(j)
}

fn invalid_escape() -> ParseError {
    ParseError::Malformed("the URL contains an invalid percent-encoding".into())
}

fn invalid_utf8() -> ParseError {
    ParseError::Malformed("the URL decodes to invalid UTF-8".into())
}

/// The usual decoding, where every byte of `s` and every escape in it is ASCII: straight into
/// a `String`, one `char` per byte, so that the result needs no UTF-8 validation. `None` at the
/// first byte that is not (a non-ASCII character, an escape of a byte above `7F`, a `+` sign
/// in an escape or an invalid one): [`decode_bytes`] decodes and reports those.
fn decode_ascii(s: &str, first: usize, plus_as_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    out.push_str(&s[..first]);
    let mut i = first;
    while i < bytes.len() {
        let b = match bytes[i] {
            b'%' => {
                let (&high, &low) = (bytes.get(i + 1)?, bytes.get(i + 2)?);
                let (high, low) = (HEX[usize::from(high)], HEX[usize::from(low)]);
                if high >= 8 || low >= 16 {
                    return None;
                }
                i += 3;
                high * 16 + low
            }
            b'+' if plus_as_space => {
                i += 1;
                b' '
            }
            b if b.is_ascii() => {
                i += 1;
                b
            }
            _ => return None,
        };
        out.push(char::from(b));
    }
    Some(out)
}

/// The value of each hexadecimal digit, 16 for any other byte.
static HEX: [u8; 256] = {
    let mut t = [16u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'a'..=b'f' => c - b'a' + 10,
            c @ b'A'..=b'F' => c - b'A' + 10,
            _ => 16,
        };
        b += 1;
    }
    t
};

/// [`percent_decode_cow`] of any `s` from its first escape at `first`: [`decode_into`] a
/// vector on the heap, the result checked to be UTF-8.
fn decode_bytes(s: &str, first: usize, plus_as_space: bool) -> Result<String, ParseError> {
    let mut out = vec![0; s.len()];
    let written = decode_into(s.as_bytes(), first, plus_as_space, &mut out)?;
    out.truncate(written);
    String::from_utf8(out).map_err(|_| invalid_utf8())
}

/// The byte two characters after a `%` stand for, read as `u8::from_str_radix(h, 16)` reads
/// them (which the decoder used before): two hexadecimal digits, or `+` and one digit (its
/// optional sign; `-` is not one for an unsigned number). Anything else is `None`.
fn hex_pair(h: &[u8]) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    match *h {
        [b'+', low] => digit(low),
        [high, low] => Some(digit(high)? * 16 + digit(low)?),
        _ => None,
    }
}

/// Whether `s` holds a control character (`char::is_control`: C0, DEL and C1) other than the
/// ASCII ones in `allowed`, found on the bytes: C1 characters (U+0080 to U+009F) are encoded
/// `C2 80` to `C2 9F`, and in valid UTF-8 a `C2` byte always starts a character.
pub fn has_control(s: &str, allowed: &[u8]) -> bool {
    let b = s.as_bytes();
    // Most strings hold none of the candidate bytes: one simple pass says so (without an early
    // exit, so that it runs many bytes at a time).
    let candidates = b.iter().fold(false, |seen, &c| {
        seen | (c < 0x20) | (c == 0x7f) | (c == 0xc2)
    });
    if !candidates {
        return false;
    }
    b.iter().enumerate().any(|(i, &c)| match c {
        0..=0x1f | 0x7f => !allowed.contains(&c),
        0xc2 => b.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)),
        _ => false,
    })
}

/// `s` split at every `sep`, an ASCII byte (as `str::split` with that char, without the
/// general pattern machinery: these strings are short and split on every request).
pub fn split_byte(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    debug_assert!(sep.is_ascii());
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match find_byte(sep, r.as_bytes()) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// Below this length a plain loop finds a byte faster than `memchr`, whose dispatch and set-up
/// cost more than they save on the short names and values of a URL.
const SHORT: usize = 64;

/// The first `b` in `bytes` (`memchr` on long input).
#[inline]
pub fn find_byte(b: u8, bytes: &[u8]) -> Option<usize> {
    match bytes.len() < SHORT {
        true => bytes.iter().position(|&c| c == b),
        false => memchr::memchr(b, bytes),
    }
}

/// The first `a` or `b` in `bytes` (`memchr2` on long input).
#[inline]
pub fn find_byte2(a: u8, b: u8, bytes: &[u8]) -> Option<usize> {
    match bytes.len() < SHORT {
        true => bytes.iter().position(|&c| c == a || c == b),
        false => memchr::memchr2(a, b, bytes),
    }
}

/// What a byte can be in an OData simple identifier ([`NAME_BYTE`]): anywhere (an ASCII
/// letter or `_`), after the first byte only (an ASCII digit), or not at all (0).
pub(crate) const NAME_START: u8 = 1;
pub(crate) const NAME_DIGIT: u8 = 2;

/// [`NAME_START`], [`NAME_DIGIT`] or 0 for each byte: one load per byte where a name is checked.
pub(crate) static NAME_BYTE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            t[b] = NAME_START;
        } else if c.is_ascii_digit() {
            t[b] = NAME_DIGIT;
        }
        b += 1;
    }
    t
};

/// OData simple identifier.
pub fn is_identifier(s: &str) -> bool {
    // ASCII only, so bytes are characters.
    match s.as_bytes().split_first() {
        Some((first, rest)) => {
            NAME_BYTE[usize::from(*first)] == NAME_START
                && rest.iter().all(|&c| NAME_BYTE[usize::from(c)] != 0)
        }
        None => false,
    }
}

/// Every string of up to `pieces` pieces drawn from `alphabet` (the empty one included): the
/// inputs the differential tests of the fast paths here run on.
#[cfg(test)]
pub(crate) fn strings_over(alphabet: &[&str], pieces: usize) -> Vec<String> {
    let mut all = vec![String::new()];
    let mut frontier = vec![String::new()];
    for _ in 0..pieces {
        frontier = frontier
            .iter()
            .flat_map(|s| alphabet.iter().map(move |a| format!("{s}{a}")))
            .collect();
        all.extend(frontier.iter().cloned());
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_as_char_is_control_finds_them() {
        for c in (0u32..0x2_0000).filter_map(char::from_u32) {
            let text = format!("a{c}é");
            assert_eq!(has_control(&text, &[]), c.is_control(), "{:x}", c as u32);
            let tab = c.is_control() && c != '\t';
            assert_eq!(has_control(&text, b"\t"), tab, "{:x}", c as u32);
        }
    }

    #[test]
    fn is_identifier_is_the_odata_simple_identifier() {
        let reference = |s: &str| match s.as_bytes().split_first() {
            Some((first, rest)) => {
                (first.is_ascii_alphabetic() || *first == b'_')
                    && rest.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
            }
            None => false,
        };
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for s in [vec![a], vec![a, b], vec![b'x', a, b]] {
                    if let Ok(s) = std::str::from_utf8(&s) {
                        assert_eq!(is_identifier(s), reference(s), "{s:?}");
                    }
                }
            }
        }
        assert!(!is_identifier(""));
        assert!(!is_identifier("é"));
    }

    #[test]
    fn split_byte_splits_as_str_split_does() {
        for s in ["", "a", "&", "a&&b&", "&a", "é&ü&", "$select=a&$top=1"] {
            let want: Vec<&str> = s.split('&').collect();
            assert_eq!(split_byte(s, b'&').collect::<Vec<_>>(), want, "{s:?}");
        }
    }

    #[test]
    fn a_hex_pair_reads_as_from_str_radix_read_it() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let pair = [a, b];
                let radix = std::str::from_utf8(&pair)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                assert_eq!(hex_pair(&pair), radix, "{pair:?}");
            }
        }
        assert_eq!(hex_pair(b"f"), None);
        assert_eq!(hex_pair(b""), None);
    }

    /// Every string of up to four pieces over an alphabet of escapes, valid and not, decodes
    /// on the ASCII path as on the byte path (or leaves it to the byte path).
    #[test]
    fn ascii_decoding_reads_as_byte_decoding() {
        let alphabet = [
            "a", "+", "%", "%2", "%20", "%2B", "%2b", "%41", "%7F", "%7f", "%80", "%C2", "%C2%85",
            "%c3%a9", "%+1", "%+a", "%-1", "%zz", "%0", "%00", "%0A", "é", "\u{85}", "=", "&",
        ];
        let inputs = strings_over(&alphabet, 4);
        let mut ascii = 0;
        for s in &inputs {
            for plus in [false, true] {
                let Some(first) = find_byte2(b'%', if plus { b'+' } else { b'%' }, s.as_bytes())
                else {
                    assert_eq!(percent_decode_cow(s, plus), Ok(Cow::Borrowed(s.as_str())));
                    continue;
                };
                let bytes = decode_bytes(s, first, plus);
                if let Some(fast) = decode_ascii(s, first, plus) {
                    ascii += 1;
                    assert_eq!(Ok(&fast), bytes.as_ref(), "{s:?} {plus}");
                }
                assert_eq!(percent_decode(s, plus), bytes, "{s:?} {plus}");
            }
        }
        assert!(ascii > 10_000, "{ascii}");
    }

    /// Decoding into a scratch buffer gives what decoding on the heap gives, the same value or
    /// the same error, whatever room the buffer has: none, one byte less than the raw string,
    /// exactly its length, more. A decoded result lies at the buffer's front, which is split off
    /// by its length; a string with nothing to decode is itself, the buffer untouched.
    #[test]
    fn decoding_into_scratch_reads_as_decoding_on_the_heap() {
        let alphabet = [
            "a",
            "+",
            "%",
            "%2",
            "%20",
            "%2B",
            "%2b",
            "%41",
            "%7F",
            "%80",
            "%C2%85",
            "%c3%a9",
            "%E2%82%AC",
            "%+1",
            "%zz",
            "%00",
            "%0A",
            "é",
            "\u{85}",
            "=",
        ];
        let mut into_scratch = 0;
        for s in &strings_over(&alphabet, 4) {
            for plus in [false, true] {
                let heap = percent_decode(s, plus);
                let mut room = vec![0, s.len().saturating_sub(1), s.len(), s.len() + 5];
                room.dedup();
                for room in room {
                    let mut buf = vec![0u8; room];
                    let buf_start = buf.as_ptr();
                    let mut scratch = &mut buf[..];
                    let got = percent_decode_in(s, plus, &mut scratch);
                    assert_eq!(
                        got.as_deref().map_err(Clone::clone),
                        heap.as_deref().map_err(Clone::clone),
                        "{s:?} {plus} {room}"
                    );
                    let Ok(got) = got else { continue };
                    match got {
                        Cow::Borrowed(b) if std::ptr::eq(b, s.as_str()) => {
                            assert_eq!(scratch.len(), room, "{s:?} {plus} {room}");
                        }
                        Cow::Borrowed(b) => {
                            into_scratch += 1;
                            assert!(s.len() <= room, "{s:?} {plus} {room}");
                            assert_eq!(b.as_ptr(), buf_start, "{s:?} {plus} {room}");
                            assert_eq!(scratch.len(), room - b.len(), "{s:?} {plus} {room}");
                        }
                        Cow::Owned(_) => assert!(s.len() > room, "{s:?} {plus} {room}"),
                    }
                }
            }
        }
        assert!(into_scratch > 100_000, "{into_scratch}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", true).unwrap(), "a b c");
        assert_eq!(percent_decode("a+b", false).unwrap(), "a+b");
        assert!(percent_decode("%zz", false).is_err());
        assert!(percent_decode("%2", false).is_err());
        assert!(percent_decode("%ff", false).is_err());
    }
}
