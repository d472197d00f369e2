//! Tokens of an OData expression.
//!
//! Pure. The lexer yields exactly the token kinds of [`Tok`]; any other character is an error
//! naming it. Literals are recognised only by their complete shape: a quoted string, a number,
//! a date, a time of day, a date-time or a GUID (`f3c2...` starting with a letter included, any
//! case). A word that is none of these is a [`Tok::Word`], which the parser must account for.

use std::borrow::Cow;

use smallvec::SmallVec;

use crate::policy::odata::{NAME_BYTE, ParseError};

/// A token, borrowing from the expression's text (`Copy`: the parser reads tokens by value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Tok<'a> {
    /// An identifier or a dotted qualified name (`Microsoft.Dynamics.CRM.In`).
    Word(&'a str),
    /// `@name`.
    Alias(&'a str),
    /// `'text'`: what is between the quotes, as written (`''` for each quote in the text;
    /// [`text`] decodes it).
    Text(&'a str),
    /// `"text"`: a JSON string, only valid inside an array literal.
    Json,
    /// A number, date, time of day, date-time or GUID.
    Literal,
    Open,
    Close,
    Comma,
    Slash,
    Colon,
    Equals,
    LBracket,
    RBracket,
    /// Negation: `-` not followed by a digit.
    Minus,
}

/// The bytes a word continues with: identifier bytes ([`NAME_BYTE`]) and `.` (qualified
/// names), one table load per byte.
static WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = NAME_BYTE[b] != 0 || b == b'.' as usize;
        b += 1;
    }
    t
};

/// Whether a [`Tok::Word`] is an OData simple identifier. A word starts with a letter or `_`
/// and continues with [`WORD`] bytes, so it is one exactly when it holds no `.`: one byte
/// search instead of a character-class test per byte.
pub(super) fn plain_word(word: &str) -> bool {
    debug_assert!(
        word.as_bytes()
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    );
    // `find_byte`, not `contains` (which calls `memchr`, dearer on a short name).
    crate::policy::odata::find_byte(b'.', word.as_bytes()).is_none()
}

fn not(msg: String) -> ParseError {
    ParseError::NotUnderstood(msg)
}

/// The tokens of one expression: inline up to 16 (`fullname ne null and statecode eq 0` is
/// seven), so the usual filter costs no allocation.
pub(super) type Toks<'a> = SmallVec<[Tok<'a>; 16]>;

pub(super) fn tokenize(expr: &str) -> Result<Toks<'_>, ParseError> {
    let mut toks = Toks::new();
    tokenize_into(expr, &mut toks)?;
    Ok(toks)
}

/// [`tokenize`] into `toks` where it lies (the parser's own), not moved out of a return value.
pub(super) fn tokenize_into<'a>(expr: &'a str, toks: &mut Toks<'a>) -> Result<(), ParseError> {
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        i += 1;
        let tok = match c {
            b' ' | b'\t' => continue,
            b'\'' => {
                let end = single_quoted(expr, start)?;
                i = end;
                Tok::Text(&expr[start + 1..end - 1])
            }
            b'"' => {
                i = double_quoted(expr, start)?;
                Tok::Json
            }
            b'(' => Tok::Open,
            b')' => Tok::Close,
            b',' => Tok::Comma,
            b'/' => Tok::Slash,
            b':' => Tok::Colon,
            b'=' => Tok::Equals,
            b'[' => Tok::LBracket,
            b']' => Tok::RBracket,
            b'-' if !b.get(i).is_some_and(u8::is_ascii_digit) => Tok::Minus,
            _ if guid_at(b, start) => {
                i = start + 36;
                Tok::Literal
            }
            b'0'..=b'9' | b'-' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b"-:.+".contains(&b[i])) {
                    i += 1;
                }
                let word = &expr[start..i];
                if !is_literal(word) {
                    return Err(not(format!("`{word}` in `{expr}` is not a literal")));
                }
                Tok::Literal
            }
            b'@' | b'$' | b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                while i < b.len() && WORD[usize::from(b[i])] {
                    i += 1;
                }
                let word = &expr[start..i];
                match (c, word.get(1..).unwrap_or_default()) {
                    (b'@', name) if super::is_identifier(name) => Tok::Alias(name),
                    (b'@' | b'$', _) => {
                        return Err(not(format!("`{word}` in `{expr}` is not inspected")));
                    }
                    _ => Tok::Word(word),
                }
            }
            _ => {
                return Err(ParseError::Malformed(format!(
                    "unexpected character `{}` in `{expr}`",
                    expr[start..].chars().next().unwrap_or('?')
                )));
            }
        };
        toks.push(tok);
    }
    Ok(())
}

/// `'...'` starting at `start` (`''` inside is one quote): the index after the closing quote.
fn single_quoted(expr: &str, start: usize) -> Result<usize, ParseError> {
    let bytes = expr.as_bytes();
    let mut i = start + 1;
    while let Some(at) = crate::policy::odata::find_byte(b'\'', &bytes[i..]) {
        i += at;
        if bytes.get(i + 1) == Some(&b'\'') {
            i += 2;
            continue;
        }
        return Ok(i + 1);
    }
    Err(ParseError::Malformed(format!(
        "unterminated string literal in `{expr}`"
    )))
}

/// The text of a [`Tok::Text`], decoded: each `''` is one quote (borrowed when there is none).
pub(super) fn text(raw: &str) -> Cow<'_, str> {
    match crate::policy::odata::find_byte(b'\'', raw.as_bytes()) {
        None => Cow::Borrowed(raw),
        Some(_) => Cow::Owned(raw.replace("''", "'")),
    }
}

/// `"..."` (JSON escapes) starting at `start`: the index after the closing quote.
fn double_quoted(expr: &str, start: usize) -> Result<usize, ParseError> {
    let bytes = expr.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Ok(i + 1),
            b'\\' => match bytes.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u')
                    if bytes
                        .get(i + 2..i + 6)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                {
                    i += 6
                }
                _ => {
                    return Err(ParseError::Malformed(format!(
                        "invalid escape in a JSON string in `{expr}`"
                    )));
                }
            },
            _ => i += 1,
        }
    }
    Err(ParseError::Malformed(format!(
        "unterminated string literal in `{expr}`"
    )))
}

/// A GUID (8-4-4-4-12 hex digits, any case) at `start`, not followed by a name character.
fn guid_at(b: &[u8], start: usize) -> bool {
    let Some(candidate) = b.get(start..start + 36) else {
        return false;
    };
    let shape = candidate.iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    });
    let ends = b
        .get(start + 36)
        .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.' || *c == b'-'));
    shape && ends
}

/// A number, date, time of day, date-time (with or without offset) or GUID, in full.
fn is_literal(word: &str) -> bool {
    (word.len() == 36 && guid_at(word.as_bytes(), 0))
        || is_number(word)
        || is_time(word)
        || match word.split_once('T') {
            Some((date, time)) => is_date(date) && is_time_with_offset(time),
            None => is_date(word),
        }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_number(word: &str) -> bool {
    let s = word.strip_prefix('-').unwrap_or(word);
    let s = s
        .strip_suffix(['m', 'M', 'd', 'D', 'f', 'F', 'l', 'L'])
        .unwrap_or(s);
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(digits)
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    matches!(parts.as_slice(), [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2
        && digits(y) && digits(m) && digits(d))
}

/// `hh:mm`, `hh:mm:ss`, `hh:mm:ss.fffffff`.
fn is_time(s: &str) -> bool {
    let (hms, frac) = s.split_once('.').map_or((s, None), |(a, b)| (a, Some(b)));
    let parts: Vec<&str> = hms.split(':').collect();
    let shape = (2..=3).contains(&parts.len()) && parts.iter().all(|p| p.len() == 2 && digits(p));
    shape && frac.is_none_or(|f| digits(f) && parts.len() == 3)
}

fn is_time_with_offset(s: &str) -> bool {
    if let Some(t) = s.strip_suffix(['Z', 'z']) {
        return is_time(t);
    }
    match s.rfind(['+', '-']) {
        Some(at) => is_time(&s[..at]) && is_time(&s[at + 1..]) && s[at + 1..].len() == 5,
        None => is_time(s),
    }
}

pub(super) fn describe(t: &Tok<'_>) -> String {
    match t {
        Tok::Word(w) => format!("`{w}`"),
        Tok::Alias(a) => format!("`@{a}`"),
        Tok::Text(s) => format!("`'{}'`", text(s)),
        Tok::Json => "a double-quoted string".into(),
        Tok::Literal => "a literal".into(),
        Tok::Open => "`(`".into(),
        Tok::Close => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Slash => "`/`".into(),
        Tok::Colon => "`:`".into(),
        Tok::Equals => "`=`".into(),
        Tok::LBracket => "`[`".into(),
        Tok::RBracket => "`]`".into(),
        Tok::Minus => "`-`".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_read_whole_and_decoded_on_use() {
        let toks = tokenize("a eq 'O''Brien' or b eq '' or c eq ''''").unwrap();
        let texts: Vec<&str> = toks
            .iter()
            .filter_map(|t| match t {
                Tok::Text(s) => Some(*s),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["O''Brien", "", "''"]);
        let decoded: Vec<Cow<'_, str>> = texts.iter().map(|t| text(t)).collect();
        assert_eq!(decoded, ["O'Brien", "", "'"]);
        assert!(matches!(decoded[1], Cow::Borrowed(_)));
        assert!(tokenize("a eq 'x''").is_err());
        assert!(tokenize("a eq 'x").is_err());
    }

    #[test]
    fn a_plain_word_is_an_identifier() {
        let text = "a a.b _x x_1 Microsoft.Dynamics.CRM.In a. _ abc9.d z__ Q";
        let toks = tokenize(text).unwrap();
        assert_eq!(toks.len(), 10);
        for t in toks {
            let Tok::Word(w) = t else { panic!("{t:?}") };
            assert_eq!(plain_word(w), crate::policy::odata::is_identifier(w), "{w}");
        }
    }
}
