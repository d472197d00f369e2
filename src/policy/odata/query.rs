//! Query options.
//!
//! Every option is decoded the way the server decodes it (`%XX`, `+` as space). Duplicate
//! options, unknown `$` options, unknown parameters and case variants such as `$Select` are
//! malformed: the gateway must never decide on one reading while Dataverse applies another.

use std::borrow::Cow;

use smallvec::SmallVec;

use super::{
    NAME_BYTE, NAME_DIGIT, NAME_START, ParseError, is_identifier, percent_decode_in, split_byte,
};

/// System query options Dataverse accepts.
pub const OPTIONS: &[&str] = &[
    "$select",
    "$filter",
    "$orderby",
    "$top",
    "$count",
    "$skiptoken",
    "$deltatoken",
    "$expand",
    "$apply",
];
/// Non-`$` parameters that carry a query of their own.
pub const QUERY_PARAMETERS: &[&str] = &["fetchXml", "savedQuery", "userQuery", "sql"];

/// A decoded name and value: borrowed from the raw query when there was nothing to decode, from
/// the caller's scratch buffer when it was decoded there.
pub type Pair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// The bytes of scratch buffer [`parse_query_into`] decodes a query of fewer bytes into, all its
/// names and values, without an allocation (the queries its table scan splits).
pub const QUERY_SCRATCH: usize = TABLE_SCAN_BELOW;

/// The decoded query options, in order; parameter aliases (`@p1=...`) separately. Names and
/// values borrow from the raw query unless decoding changed them, then from the scratch buffer
/// they were decoded into, or own them (a long query's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query<'a> {
    /// Inline up to four (the usual request's), so they cost no allocation.
    pub options: SmallVec<[Pair<'a>; 4]>,
    pub aliases: Vec<Pair<'a>>,
}

impl Query<'_> {
    /// Inlined: callers name a constant option, which is then compared without a call.
    #[inline(always)]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    pub fn alias(&self, name: &str) -> Option<&str> {
        self.aliases
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// The `$select` list of `value`, each a plain column, handed to `each` in order
    /// (surrounding whitespace trimmed); an item that is not a plain column name is an error,
    /// raised before `each` sees any later item.
    ///
    /// One pass over [`NAME_BYTE`] while the items are plain (identifiers, see
    /// [`is_identifier`], between single commas: nothing to trim or check), each handed over
    /// at its comma; from the first item that is not, the items are trimmed and checked.
    pub fn select_items<'v>(
        value: &'v str,
        mut each: impl FnMut(&'v str),
    ) -> Result<(), ParseError> {
        let bytes = value.as_bytes();
        // Where the current item starts.
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            match NAME_BYTE[usize::from(b)] {
                NAME_START => {}
                NAME_DIGIT if i > start => {}
                0 if b == b',' && i > start => {
                    each(&value[start..i]);
                    start = i + 1;
                }
                _ => return checked_items(value, start, each),
            }
        }
        if start == bytes.len() {
            // An empty list, or an empty last item: checked (and refused) below.
            return checked_items(value, start, each);
        }
        each(&value[start..]);
        Ok(())
    }
}

/// The items of `value` from byte `from` (the start of an item) on, trimmed and checked.
fn checked_items<'v>(
    value: &'v str,
    from: usize,
    mut each: impl FnMut(&'v str),
) -> Result<(), ParseError> {
    for item in split_byte(&value[from..], b',') {
        let item = trim(item);
        if !is_identifier(item) {
            return Err(ParseError::NotUnderstood(format!(
                "`$select={value}`: only plain column names are inspected"
            )));
        }
        each(item);
    }
    Ok(())
}

/// `s.trim()`, without its character-by-character search when `s` starts and ends with a
/// byte that is not whitespace in any encoding (an ASCII letter, digit or `_`, as a column
/// name does).
fn trim(s: &str) -> &str {
    let plain = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(first), Some(last)) if plain(first) && plain(last) => s,
        _ => s.trim(),
    }
}

/// Below this length a query is split in one pass over a byte-class table; longer ones (a
/// fetchXml, a long filter) with `memchr` searches, which are faster there.
const TABLE_SCAN_BELOW: usize = 128;

/// What a byte of a raw query can mean to the table scan (0: an ordinary byte).
const AMP: u8 = 1;
const EQUALS: u8 = 2;
/// `%` or `+`: the name or value must be decoded.
const ESCAPE: u8 = 4;
/// A byte that may be (or start) a control character: C0, DEL, or `C2` (C1 characters).
const CONTROL: u8 = 8;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = CONTROL;
        b += 1;
    }
    t[0x7f] = CONTROL;
    t[0xc2] = CONTROL;
    t[b'&' as usize] = AMP;
    t[b'=' as usize] = EQUALS;
    t[b'%' as usize] = ESCAPE;
    t[b'+' as usize] = ESCAPE;
    t
};

/// One `name=value` of the raw query, with what the split saw of it.
struct RawOption<'a> {
    name: &'a str,
    value: &'a str,
    /// The name, the value, may hold an escape (else they are used as they are).
    escaped: (bool, bool),
    /// The value may hold a control character (else the decoded value is checked only when
    /// decoding changed it).
    control: bool,
}

/// The options of `raw`, every decoded name and value on the heap.
pub fn parse_query(raw: Option<&str>) -> Result<Query<'_>, ParseError> {
    let mut query = Query::default();
    parse_query_into(raw, &mut [], &mut query)?;
    Ok(query)
}

/// [`parse_query`] into `query` (empty) where it lies: the options are held inline, so a
/// `Query` returned and moved costs copies the classifier's own one does not. Names and values
/// that must be decoded are decoded into `scratch` while it has room (all of them when `raw` is
/// shorter than [`QUERY_SCRATCH`] and `scratch` that long), so they cost no allocation; the
/// others own their decoded text. The same `Query` either way.
pub fn parse_query_into<'a>(
    raw: Option<&'a str>,
    mut scratch: &'a mut [u8],
    query: &mut Query<'a>,
) -> Result<(), ParseError> {
    debug_assert!(query.options.is_empty() && query.aliases.is_empty());
    let Some(raw) = raw else { return Ok(()) };
    if raw.len() < TABLE_SCAN_BELOW {
        table_split(raw, |o| add(query, &mut scratch, o))?;
    } else {
        for part in split_byte(raw, b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match super::find_byte(b'=', part.as_bytes()) {
                Some(eq) => (&part[..eq], &part[eq + 1..]),
                None => (part, ""),
            };
            // The decoder and the control check search for themselves.
            let escaped = (true, true);
            add(
                query,
                &mut scratch,
                RawOption {
                    name,
                    value,
                    escaped,
                    control: true,
                },
            )?;
        }
    }
    check_values(query)
}

/// The non-empty options of `raw` in one pass per option over [`CLASS`]: its end, its first
/// `=`, and whether its name or value holds an escape or a control candidate.
fn table_split<'a>(
    raw: &'a str,
    mut each: impl FnMut(RawOption<'a>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let bytes = raw.as_bytes();
    let mut start = 0;
    while start <= bytes.len() {
        let mut end = start;
        let mut eq = None;
        let (mut name_class, mut value_class) = (0u8, 0u8);
        while end < bytes.len() {
            let class = CLASS[usize::from(bytes[end])];
            if class != 0 {
                if class == AMP {
                    break;
                }
                match eq {
                    None if class == EQUALS => eq = Some(end),
                    None => name_class |= class,
                    Some(_) => value_class |= class,
                }
            }
            end += 1;
        }
        let begin = start;
        start = end + 1;
        if begin == end {
            continue;
        }
        let (name, value) = match eq {
            Some(eq) => (&raw[begin..eq], &raw[eq + 1..end]),
            None => (&raw[begin..end], ""),
        };
        each(RawOption {
            name,
            value,
            escaped: (name_class & ESCAPE != 0, value_class & ESCAPE != 0),
            control: value_class & CONTROL != 0,
        })?;
    }
    Ok(())
}

/// Decodes one option (into `scratch` while it has room), checks it and adds it to `query`.
fn add<'a>(
    query: &mut Query<'a>,
    scratch: &mut &'a mut [u8],
    o: RawOption<'a>,
) -> Result<(), ParseError> {
    let mut decode = |s: &'a str, escaped: bool| match escaped {
        true => percent_decode_in(s, true, scratch),
        false => Ok(Cow::Borrowed(s)),
    };
    let name = decode(o.name, o.escaped.0)?;
    let value = decode(o.value, o.escaped.1)?;
    // A value without escapes is itself: checked only when the split saw a candidate.
    let candidates = o.control || o.escaped.1;
    if candidates && super::has_control(&value, b"\n\r\t") {
        return Err(ParseError::Malformed(format!(
            "control characters in `{name}`"
        )));
    }
    let seen = query.options.iter().any(|(n, _)| *n == name)
        || query
            .aliases
            .iter()
            .any(|(n, _)| name.strip_prefix('@') == Some(n.as_ref()));
    if seen {
        return Err(ParseError::Malformed(format!(
            "query option `{name}` appears twice"
        )));
    }
    if let Some(alias) = name.strip_prefix('@') {
        if !is_identifier(alias) {
            return Err(ParseError::Malformed(format!(
                "`{name}` is not a valid parameter alias"
            )));
        }
        let alias = match name {
            Cow::Borrowed(n) => Cow::Borrowed(&n[1..]),
            Cow::Owned(ref n) => Cow::Owned(n[1..].to_string()),
        };
        query.aliases.push((alias, value));
        return Ok(());
    }
    check_name(&name)?;
    query.options.push((name, value));
    Ok(())
}

fn check_values(query: &Query<'_>) -> Result<(), ParseError> {
    // Both found in one pass (names compared inline, with constant lengths), then checked in
    // this order whatever their order in the query.
    let (mut top, mut count) = (None, None);
    for (name, value) in &query.options {
        match name.as_ref() {
            "$top" => top = Some(value.as_ref()),
            "$count" => count = Some(value.as_ref()),
            _ => {}
        }
    }
    if let Some(top) = top
        && top.parse::<u32>().is_err()
    {
        return Err(ParseError::Malformed(format!(
            "`$top={top}` is not a whole number"
        )));
    }
    if let Some(count) = count
        && count != "true"
        && count != "false"
    {
        return Err(ParseError::Malformed(format!(
            "`$count={count}` must be true or false"
        )));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ParseError> {
    if OPTIONS.contains(&name) || QUERY_PARAMETERS.contains(&name) {
        return Ok(());
    }
    let case_variant = OPTIONS
        .iter()
        .chain(QUERY_PARAMETERS)
        .find(|k| k.eq_ignore_ascii_case(name));
    if let Some(k) = case_variant {
        return Err(ParseError::Malformed(format!(
            "`{name}` must be written exactly `{k}`"
        )));
    }
    Err(ParseError::Malformed(format!(
        "unknown query option `{name}`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParseError::*;

    #[test]
    fn control_characters_in_values_are_refused_but_cr_lf_and_tab() {
        assert!(parse_query(Some("$filter=%C2%85")).is_err());
        assert!(parse_query(Some("$filter=%7F")).is_err());
        assert!(parse_query(Some("$filter=%C2%A0%0D%0A%09")).is_ok());
    }

    #[test]
    fn decodes_like_the_server() {
        let q = parse_query(Some(
            "%24select=fullname,emailaddress1&$filter=fullname+eq+'a%26b'&@p1='x'",
        ))
        .unwrap();
        assert_eq!(q.get("$select"), Some("fullname,emailaddress1"));
        assert_eq!(q.get("$filter"), Some("fullname eq 'a&b'"));
        assert_eq!(q.alias("p1"), Some("'x'"));
        assert_eq!(
            select_list("fullname, emailaddress1").unwrap(),
            vec!["fullname", "emailaddress1"]
        );
        assert!(matches!(select_list("a/b"), Err(NotUnderstood(_))));
    }

    /// The straightforward reading the one-pass scan replaced: split at `&`, then at the
    /// first `=`, decode both, check the decoded value for control characters.
    fn reference(raw: &str) -> Result<Vec<(String, String)>, ()> {
        let mut out = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = crate::policy::odata::percent_decode(name, true).map_err(|_| ())?;
            let value = crate::policy::odata::percent_decode(value, true).map_err(|_| ())?;
            if crate::policy::odata::has_control(&value, b"\n\r\t") {
                return Err(());
            }
            out.push((name, value));
        }
        Ok(out)
    }

    /// The options and aliases of a parsed query, or its error, as owned strings (a `Query`
    /// is invariant in its lifetime: two parsed from different buffers do not compare).
    /// `raw` parsed with `room` bytes of scratch, as [`owned`] gives it.
    fn parsed_in(raw: &str, room: usize) -> Result<[Vec<(String, String)>; 2], ParseError> {
        let mut scratch = vec![0u8; room];
        let mut query = Query::default();
        let got = parse_query_into(Some(raw), &mut scratch, &mut query);
        owned(got.as_ref().map(|()| &query))
    }

    fn owned(q: Result<&Query<'_>, &ParseError>) -> Result<[Vec<(String, String)>; 2], ParseError> {
        let pairs = |v: &[Pair<'_>]| {
            v.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        q.map(|q| [pairs(&q.options), pairs(&q.aliases)])
            .map_err(Clone::clone)
    }

    #[test]
    fn one_pass_scan_reads_as_split_decode_and_check() {
        // Every string of up to five pieces over an alphabet of the bytes the scan tells apart.
        let alphabet = [
            "a",
            "&",
            "=",
            "%",
            "+",
            "%41",
            "%2B",
            "%C2%85",
            "%c3%a9",
            "%0a",
            "\u{85}",
            "\u{1}",
            "\u{7f}",
            "é",
            "&$top=1",
            "&@a=",
            "&%24filter=",
        ];
        let inputs = crate::policy::odata::strings_over(&alphabet, 5);
        // Each input short (the table scan) and padded past TABLE_SCAN_BELOW (the searches).
        let pad = format!("@pad={}", "x".repeat(TABLE_SCAN_BELOW));
        let inputs = inputs
            .iter()
            .flat_map(|raw| [format!("$select={raw}"), format!("{pad}&$select={raw}")]);
        for raw in inputs {
            let got = parse_query(Some(&raw));
            // Decoded into a scratch buffer with room for all, or for some only (the others
            // on the heap): the same query, the same error.
            for room in [QUERY_SCRATCH, 4] {
                assert_eq!(parsed_in(&raw, room), owned(got.as_ref()), "{raw:?} {room}");
            }
            let want = reference(&raw);
            match (&got, &want) {
                (Ok(q), Ok(w)) => {
                    let pairs = |v: &[Pair<'_>]| -> Vec<(String, String)> {
                        v.iter()
                            .map(|(n, v)| (n.to_string(), v.to_string()))
                            .collect()
                    };
                    let (aliases, options): (Vec<_>, Vec<_>) =
                        w.iter().cloned().partition(|(n, _)| n.starts_with('@'));
                    let aliases: Vec<_> = aliases
                        .into_iter()
                        .map(|(n, v)| (n[1..].to_string(), v))
                        .collect();
                    assert_eq!(pairs(&q.options), options, "{raw:?}");
                    assert_eq!(pairs(&q.aliases), aliases, "{raw:?}");
                }
                // Names and values are checked further after the split (unknown, repeated).
                (Err(ParseError::Malformed(m)), Ok(_))
                    if !m.contains("control") && !m.contains("URL") => {}
                (Err(_), Err(())) => {}
                _ => panic!("{raw:?}: {got:?} against {want:?}"),
            }
        }
    }

    /// The items [`Query::select_items`] hands out.
    fn select_list(value: &str) -> Result<Vec<String>, ParseError> {
        let mut items = Vec::new();
        Query::select_items(value, |i| items.push(i.to_string()))?;
        Ok(items)
    }

    /// Whether `value` is a plain list: identifiers (see [`is_identifier`]) separated by single
    /// commas, nothing else, at least one. One pass over [`NAME_BYTE`].
    fn plain_list(value: &str) -> bool {
        // At the start of an item (where a digit, a comma or the end are not plain).
        let mut at_start = true;
        for &b in value.as_bytes() {
            match NAME_BYTE[usize::from(b)] {
                NAME_START => at_start = false,
                NAME_DIGIT if !at_start => {}
                0 if b == b',' && !at_start => at_start = true,
                _ => return false,
            }
        }
        !at_start
    }

    /// `select_list` as it read before its one-pass check of plain lists.
    fn select_reference(value: &str) -> Option<Vec<String>> {
        value
            .split(',')
            .map(|item| is_identifier(item.trim()).then(|| item.trim().to_string()))
            .collect()
    }

    #[test]
    fn plain_select_lists_read_as_trimmed_and_checked_items() {
        let alphabet = [
            "a", "_", "Z", "1", ",", " ", "\u{a0}", ".", "/", "é", "*", "ab1",
        ];
        let inputs = crate::policy::odata::strings_over(&alphabet, 5);
        let mut plain = 0;
        for value in &inputs {
            let is_plain = plain_list(value);
            let got = select_list(value);
            let want = select_reference(value);
            // Before an error, `each` saw only items before the first bad one.
            let mut seen = Vec::new();
            if Query::select_items(value, |i| seen.push(i.to_string())).is_err() {
                let good: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .take_while(|i| is_identifier(i))
                    .map(str::to_string)
                    .collect();
                assert!(
                    good.starts_with(&seen),
                    "{value:?}: {seen:?} before the error"
                );
            }
            if is_plain {
                plain += 1;
                assert!(want.is_some(), "{value:?}");
            }
            match (got, want) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "{value:?}"),
                (Err(NotUnderstood(_)), None) => {}
                (got, want) => panic!("{value:?}: {got:?} against {want:?}"),
            }
        }
        assert!(plain > 1_000, "{plain}");
    }

    /// Values decoded into the scratch buffer up to its last byte, and one past it (on the
    /// heap), empty values among them: as on the heap.
    #[test]
    fn scratch_decoding_at_its_limit() {
        let room = 16;
        for len in [0, 1, room - 1, room, room + 1] {
            for unit in ["%41", "+", "%c3%a9", "%2B", "a"] {
                // `len` bytes: whole escapes, then letters.
                let mut value = unit.repeat(len / unit.len());
                value.push_str(&"a".repeat(len - value.len()));
                for raw in [
                    format!("$filter={value}"),
                    format!("$filter={value}&$orderby={value}"),
                    format!("@p={value}&$filter=@p"),
                    format!("$filter=&%24orderby={value}"),
                ] {
                    let heap = parse_query(Some(&raw));
                    assert_eq!(parsed_in(&raw, room), owned(heap.as_ref()), "{raw:?}");
                }
            }
        }
    }

    #[test]
    fn top_and_count_values_are_checked_top_first() {
        let err = |q: &str| match parse_query(Some(q)) {
            Err(Malformed(m)) => m,
            other => panic!("{q}: {other:?}"),
        };
        for q in [
            "$count=maybe&$top=ten",
            "$top=ten&$count=maybe",
            "$top=-1",
            "$top=%2B1x",
        ] {
            assert!(err(q).starts_with("`$top="), "{q}: {}", err(q));
        }
        for q in ["$count=maybe&$top=10", "$top=10&$count=True", "$count="] {
            assert!(err(q).starts_with("`$count="), "{q}: {}", err(q));
        }
        let q = parse_query(Some("$top=10&$count=true&$select=a")).unwrap();
        assert_eq!((q.get("$top"), q.get("$count")), (Some("10"), Some("true")));
        assert!(parse_query(Some("$top=4294967295&$count=false")).is_ok());
        assert!(parse_query(Some("$top=4294967296")).is_err());
    }

    #[test]
    fn trim_is_str_trim() {
        for s in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\u{a0}a\u{3000}",
            "a\u{a0}",
            "_x_",
            "a b",
            "\ta\n",
            "é",
        ] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    #[test]
    fn check_name_accepts_exactly_the_listed_names() {
        for name in OPTIONS.iter().chain(QUERY_PARAMETERS) {
            assert_eq!(check_name(name), Ok(()), "{name}");
            let upper = name.to_uppercase();
            assert!(check_name(&upper).is_err(), "{upper}");
            assert!(
                check_name(&name[1..]).is_err(),
                "{name} without its first byte"
            );
            assert!(check_name(&format!("{name}x")).is_err(), "{name}x");
        }
        for name in ["", "$", "$Select", "$search", "$skip", "fetchxml", "@p"] {
            assert!(check_name(name).is_err(), "{name}");
        }
    }

    #[test]
    fn rejects_ambiguity() {
        let err = |q: &str| parse_query(Some(q)).unwrap_err();
        for q in [
            "$select=a&$select=b",
            "$select=a&%24select=b",
            "$Select=a",
            "$EXPAND=x",
            "FetchXml=x",
            "$foo=1",
            "tag=x",
            "$top=ten",
            "$filter=%zz",
            "@p1=1&%40p1=2",
            "@1x=1",
            "$filter=a%00",
        ] {
            assert!(matches!(err(q), Malformed(_)), "{q}");
        }
    }
}
