//! Query options.
//!
//! Every option is decoded the way the server decodes it (`%XX`, `+` as space). Duplicate
//! options, unknown `$` options, unknown parameters and case variants such as `$Select` are
//! malformed: the gateway must never decide on one reading while Dataverse applies another.

use std::borrow::Cow;

use super::{ParseError, is_identifier, percent_decode_cow, split_byte};

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

/// A decoded name and value: borrowed from the raw query when there was nothing to decode.
pub type Pair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// The decoded query options, in order; parameter aliases (`@p1=...`) separately. Names and
/// values borrow from the raw query unless decoding changed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query<'a> {
    pub options: Vec<Pair<'a>>,
    pub aliases: Vec<Pair<'a>>,
}

impl Query<'_> {
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

    /// The `$select` list of `value`, each a plain column.
    pub fn select_list(value: &str) -> Result<Vec<String>, ParseError> {
        split_byte(value, b',')
            .map(|item| {
                let item = item.trim();
                if is_identifier(item) {
                    Ok(item.to_string())
                } else {
                    Err(ParseError::NotUnderstood(format!(
                        "`$select={value}`: only plain column names are inspected"
                    )))
                }
            })
            .collect()
    }
}

pub fn parse_query(raw: Option<&str>) -> Result<Query<'_>, ParseError> {
    let mut query = Query::default();
    let Some(raw) = raw else { return Ok(query) };
    for part in split_byte(raw, b'&') {
        if part.is_empty() {
            continue;
        }
        let (name, value) = match super::find_byte(b'=', part.as_bytes()) {
            Some(eq) => (&part[..eq], &part[eq + 1..]),
            None => (part, ""),
        };
        let name = percent_decode_cow(name, true)?;
        let value = percent_decode_cow(value, true)?;
        if super::has_control(&value, b"\n\r\t") {
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
            continue;
        }
        check_name(&name)?;
        query.options.push((name, value));
    }
    check_values(&query)?;
    Ok(query)
}

fn check_values(query: &Query<'_>) -> Result<(), ParseError> {
    if let Some(top) = query.get("$top")
        && top.parse::<u32>().is_err()
    {
        return Err(ParseError::Malformed(format!(
            "`$top={top}` is not a whole number"
        )));
    }
    if let Some(count) = query.get("$count")
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
            Query::select_list("fullname, emailaddress1").unwrap(),
            vec!["fullname", "emailaddress1"]
        );
        assert!(matches!(Query::select_list("a/b"), Err(NotUnderstood(_))));
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
