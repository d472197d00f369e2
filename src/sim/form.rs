//! Percent-encoding helpers for the simulator: `application/x-www-form-urlencoded` bodies,
//! URL query strings and path segments.
//!
//! Pure: no I/O, no clock. Decoding never fails: a malformed escape (`%zz`, a lone `%`) is kept
//! literally and invalid UTF-8 is replaced, the way lenient servers behave.

/// Decodes a percent-encoded string. With `plus_as_space`, `+` becomes a space (form and query
/// encoding); without it (path segments), `+` stays a `+`.
pub fn decode(input: &str, plus_as_space: bool) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_as_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    match b? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes every byte except RFC 3986 unreserved characters.
pub fn encode(input: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(input.len() * 3);
    for &b in input.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Splits `a=1&b=2` into decoded pairs, in order. Empty pieces are skipped; a piece without
/// `=` has an empty value.
pub fn parse_pairs(input: &str) -> Vec<(String, String)> {
    input
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// A decoded form body with first-wins lookup by field name.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Self(parse_pairs(&String::from_utf8_lossy(body)))
    }

    /// The field's value, `None` when absent. An empty value counts as absent, as in Entra.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(decode("a%20b+c", true), "a b c");
        assert_eq!(decode("a%20b+c", false), "a b+c");
        assert_eq!(decode("%3Ccookie%3E", true), "<cookie>");
        assert_eq!(decode("%e2%82%ac", true), "€");
    }

    #[test]
    fn keeps_malformed_escapes() {
        assert_eq!(decode("100%", true), "100%");
        assert_eq!(decode("%zz%4", true), "%zz%4");
        assert_eq!(decode("%ff", true), "\u{fffd}");
    }

    #[test]
    fn encode_round_trips() {
        let raw = "<cookie pagenumber=\"2\" lastid=\"x/y z\" />";
        let encoded = encode(raw);
        assert!(
            encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"%-._~".contains(&b))
        );
        assert_eq!(decode(&encoded, true), raw);
    }

    #[test]
    fn parses_a_token_request_form() {
        let form = Form::parse(
            b"client_id=abc&scope=http%3A%2F%2F127.0.0.1%3A1%2F.default\
              &client_secret=s%2Bx+y&grant_type=client_credentials&empty=&flag",
        );
        assert_eq!(form.get("client_id"), Some("abc"));
        assert_eq!(form.get("scope"), Some("http://127.0.0.1:1/.default"));
        assert_eq!(form.get("client_secret"), Some("s+x y"));
        assert_eq!(form.get("empty"), None);
        assert_eq!(form.get("flag"), None);
        assert_eq!(form.get("missing"), None);
    }

    #[test]
    fn first_value_wins() {
        let form = Form::parse(b"a=1&a=2");
        assert_eq!(form.get("a"), Some("1"));
    }
}
