//! The org's base URL as a prefix pattern, and the byte-at-a-time cursor that the streaming
//! rewriters use to match it. Also the one-shot [`rewrite_url`] for header values.
//!
//! Invariant: a partial match never spans more than [`Origin::max_raw_len`] raw bytes.

/// The `from` side of a rewrite: `scheme://host[:port]`, trailing `/` removed.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    pattern: Box<[u8]>,
    /// Bytes `..ci_len` (scheme and authority) compare ASCII-case-insensitively; any path after
    /// them compares exactly.
    ci_len: usize,
}

impl Origin {
    pub(super) fn new(from: &str) -> Self {
        let pattern = from.trim_end_matches('/').as_bytes();
        let authority = pattern
            .windows(3)
            .position(|w| w == b"://")
            .map_or(0, |i| i + 3);
        let ci_len = pattern[authority..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(pattern.len(), |i| authority + i);
        Self {
            pattern: pattern.into(),
            ci_len,
        }
    }

    /// An empty `from` never matches anything.
    pub(super) fn is_empty(&self) -> bool {
        self.pattern.is_empty()
    }

    /// The pattern: `from` without its trailing `/`.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.pattern
    }

    /// Whether `raw` is exactly the pattern (scheme and authority in any ASCII case), as
    /// [`Cursor`] would hold it byte by byte without escapes.
    pub(super) fn is(&self, raw: &[u8]) -> bool {
        // The usual case (the same case as configured) in one comparison.
        raw == &*self.pattern
            || raw.len() == self.pattern.len()
                && raw.iter().enumerate().all(|(i, &b)| self.accepts(i, b))
    }

    /// The most raw bytes a partial match can hold: the pattern with every `/` JSON-escaped as
    /// `\/`, plus the `\` of an escaped `/` that must follow it.
    pub(super) fn max_raw_len(&self) -> usize {
        let slashes = self.pattern.iter().filter(|&&b| b == b'/').count();
        self.pattern.len() + slashes + 1
    }

    /// Whether a match could start at byte `b`.
    pub(super) fn could_start(&self, b: u8) -> bool {
        !self.is_empty() && (self.accepts(0, b) || (b == b'\\' && self.expects(0) == b'/'))
    }

    /// The bytes [`Self::could_start`] accepts, when they are at most two (a letter in either
    /// case, or one byte): `None` for an empty origin or one that starts with `/` (whose match
    /// may also start with the `\` of `\/`).
    pub(super) fn starts(&self) -> Option<[u8; 2]> {
        let &first = self.pattern.first()?;
        if first == b'/' {
            return None;
        }
        Some(if self.ci_len > 0 {
            [first.to_ascii_lowercase(), first.to_ascii_uppercase()]
        } else {
            [first, first]
        })
    }

    /// Length of the origin prefix of a header value, when it is followed by `/` or the end.
    pub(super) fn prefix_len(&self, value: &[u8]) -> Option<usize> {
        let n = self.pattern.len();
        let head = value.get(..n)?;
        let matches = head.iter().enumerate().all(|(i, &b)| self.accepts(i, b));
        let boundary = matches!(value.get(n), None | Some(b'/'));
        (!self.is_empty() && matches && boundary).then_some(n)
    }

    /// The byte expected at `index`: the pattern, then the `/` that must follow it.
    fn expects(&self, index: usize) -> u8 {
        self.pattern.get(index).copied().unwrap_or(b'/')
    }

    fn accepts(&self, index: usize, b: u8) -> bool {
        match self.pattern.get(index) {
            Some(p) if index < self.ci_len => p.eq_ignore_ascii_case(&b),
            Some(&p) => p == b,
            None => false,
        }
    }
}

/// What one byte did to a [`Cursor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Still a possible match: hold the byte back.
    Hold,
    /// Cannot match: release what was held, and this byte.
    Mismatch,
    /// The whole origin was seen and this byte is the `/` after it (`escaped`: written `\/`).
    Matched { escaped: bool },
}

/// Progress through an [`Origin`], reading raw bytes in which `/` may be written `\/`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Cursor {
    matched: usize,
    escape: bool,
}

impl Cursor {
    pub(super) fn step(&mut self, origin: &Origin, b: u8) -> Step {
        if self.escape {
            self.escape = false;
            return if b == b'/' {
                self.advance(origin, b, true)
            } else {
                Step::Mismatch
            };
        }
        if b == b'\\' {
            if origin.expects(self.matched) != b'/' {
                return Step::Mismatch;
            }
            self.escape = true;
            return Step::Hold;
        }
        self.advance(origin, b, false)
    }

    fn advance(&mut self, origin: &Origin, b: u8, escaped: bool) -> Step {
        if self.matched == origin.pattern.len() {
            return if b == b'/' {
                Step::Matched { escaped }
            } else {
                Step::Mismatch
            };
        }
        if origin.accepts(self.matched, b) {
            self.matched += 1;
            Step::Hold
        } else {
            Step::Mismatch
        }
    }

    /// The whole origin was seen and no escape is pending: a match if the value ends here.
    pub(super) fn is_complete(&self, origin: &Origin) -> bool {
        self.matched == origin.pattern.len() && !self.escape
    }

    /// The last byte was a `\` still waiting for its `/`.
    pub(super) fn is_escaping(&self) -> bool {
        self.escape
    }
}

/// Rewrites a header value (`OData-EntityId`, `Location`) that starts with `from` followed by
/// `/` or the end. `None` when it does not match. `to`'s trailing `/` is dropped, so the `/`
/// that followed `from` is kept exactly once.
pub fn rewrite_url(value: &str, from: &str, to: &str) -> Option<String> {
    let n = Origin::new(from).prefix_len(value.as_bytes())?;
    let rest = value.get(n..)?;
    Some(format!("{}{rest}", to.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "https://org.crm.dynamics.com";
    const TO: &str = "http://gw.local:8080/contoso";

    #[test]
    fn header_values_are_rewritten_by_origin_prefix() {
        let cases = [
            (
                "https://org.crm.dynamics.com/api/data/v9.2/accounts(1)",
                Some("/api/data/v9.2/accounts(1)"),
            ),
            ("https://org.crm.dynamics.com", Some("")),
            (
                "HTTPS://ORG.Crm.Dynamics.COM/api/data/v9.2/Accounts",
                Some("/api/data/v9.2/Accounts"),
            ),
            ("https://org.crm.dynamics.com.evil.net/api", None),
            ("https://org.crm.dynamics.com:8443/api", None),
            ("https://org.crm.dynamics.comx", None),
            ("http://org.crm.dynamics.com/api", None),
            ("https://org.crm.dynamics.co", None),
            ("/api/data/v9.2/accounts", None),
            ("", None),
        ];
        for (value, rest) in cases {
            let want = rest.map(|r| format!("{TO}{r}"));
            assert_eq!(rewrite_url(value, FROM, TO), want, "{value}");
        }
    }

    #[test]
    fn trailing_slashes_on_from_and_to_are_ignored() {
        let got = rewrite_url(
            "https://org.crm.dynamics.com/x",
            "https://org.crm.dynamics.com/",
            "http://gw/",
        );
        assert_eq!(got.as_deref(), Some("http://gw/x"));
    }

    #[test]
    fn empty_from_never_matches() {
        assert_eq!(rewrite_url("/api", "", TO), None);
        assert_eq!(rewrite_url("", "", TO), None);
    }

    #[test]
    fn a_path_in_from_compares_exactly() {
        let origin = Origin::new("https://Host/Base");
        assert_eq!(origin.prefix_len(b"https://host/Base/x"), Some(17));
        assert_eq!(origin.prefix_len(b"https://host/base/x"), None);
    }

    #[test]
    fn cursor_accepts_escaped_slashes_and_reports_the_terminator() {
        let origin = Origin::new("https://a.b");
        let mut cursor = Cursor::default();
        let raw = br"HTTPS:\/\/A.b\/";
        let steps: Vec<Step> = raw.iter().map(|&b| cursor.step(&origin, b)).collect();
        assert!(steps[..raw.len() - 1].iter().all(|s| *s == Step::Hold));
        assert_eq!(steps.last(), Some(&Step::Matched { escaped: true }));
        assert_eq!(origin.max_raw_len(), "https://a.b".len() + 2 + 1);
    }

    #[test]
    fn cursor_rejects_escapes_where_no_slash_is_expected() {
        let origin = Origin::new("https://a.b");
        let mut cursor = Cursor::default();
        assert_eq!(cursor.step(&origin, b'h'), Step::Hold);
        assert_eq!(cursor.step(&origin, b'\\'), Step::Mismatch);
    }
}
