//! Query options, `Prefer` and the paging cookie of collection reads.
//!
//! Honoured: `$select`, `$top`, `$skiptoken` and `Prefer: odata.maxpagesize=N` (see `prefer`);
//! `$filter`, `$expand` and `fetchXml` are kept (decoded) for the handlers that understand a
//! simple form of them (see `filter`, `expand`, `fetch` and `definitions`). Parameter aliases
//! (`@p=value`) are bound in `$filter` as Dataverse binds them: the alias is replaced by its
//! value's text, so an alias whose value is a property path (`@p1=revenue`) IS that column, and a
//! literal value is that literal; a `$filter` naming an undefined alias is a 400. Every other
//! option (`$orderby`, `$count`, ...) is accepted and ignored. All options but `$skiptoken` are
//! carried into `@odata.nextLink` unchanged, so a client's next page request looks like the first.
//! `$top` wins over `maxpagesize`: a `$top` read is a single page without a nextLink.
//!
//! The skiptoken is opaque to clients; inside it is Dataverse's own cookie,
//! `<cookie pagenumber="N" pagingcookie="<percent-encoded inner cookie>" istracking="False" />`,
//! whose inner cookie `<cookie page="N-1"><KEY last="{GUID}" /></cookie>` names the table's
//! primary key and the last id served (keyset paging).
//!
//! Pure: no I/O, no clock.

use super::form::{decode, encode};

/// Options of a collection or record read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub select: Option<Vec<String>>,
    pub top: Option<usize>,
    pub skip: Option<Cookie>,
    /// The decoded `$filter` expression, parameter aliases bound.
    pub filter: Option<String>,
    /// The decoded `fetchXml` query.
    pub fetch_xml: Option<String>,
    /// The decoded `$expand` expression.
    pub expand: Option<String>,
    /// The raw `key=value` pieces other than `$skiptoken`, for the nextLink.
    pub carried: Vec<String>,
}

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub page: u32,
    /// The primary key column the inner cookie names.
    pub key: String,
    pub last_id: String,
}

/// A query option Dataverse would reject with 400.
#[derive(Debug, PartialEq, Eq)]
pub struct BadQuery(pub String);

pub fn parse(raw: Option<&str>) -> Result<Query, BadQuery> {
    let mut query = Query::default();
    let mut aliases = Vec::new();
    for piece in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let (key, value) = (decode(k, true), decode(v, true));
        match key.as_str() {
            "$select" => {
                let columns: Vec<String> = value.split(',').map(|c| c.trim().to_string()).collect();
                if columns.iter().any(String::is_empty) {
                    return Err(BadQuery(format!("Invalid $select value '{value}'.")));
                }
                query.select = Some(columns);
            }
            "$top" => {
                let top = value
                    .trim()
                    .parse()
                    .map_err(|_| BadQuery(format!("Invalid value '{value}' for $top.")))?;
                query.top = Some(top);
            }
            "$filter" => query.filter = Some(value),
            "$expand" => query.expand = Some(value),
            "fetchXml" => query.fetch_xml = Some(value),
            alias if alias.starts_with('@') => {
                aliases.push((alias[1..].to_string(), value));
            }
            "$skiptoken" => {
                let cookie = Cookie::parse(&value)
                    .ok_or_else(|| BadQuery("The skiptoken is not valid.".into()))?;
                query.skip = Some(cookie);
                continue;
            }
            _ => {}
        }
        query.carried.push(piece.to_string());
    }
    if let Some(filter) = &query.filter {
        query.filter = Some(bind_aliases(filter, &aliases)?);
    }
    Ok(query)
}

/// Replaces each `@name` outside quoted literals by the text of the alias's value.
fn bind_aliases(expression: &str, aliases: &[(String, String)]) -> Result<String, BadQuery> {
    let mut out = String::with_capacity(expression.len());
    let mut quoted = false;
    let mut chars = expression.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c != '@' || quoted {
            out.push(c);
            continue;
        }
        let mut end = i + 1;
        while let Some((j, n)) = chars.peek().copied() {
            if !(n.is_ascii_alphanumeric() || n == '_') {
                break;
            }
            end = j + n.len_utf8();
            chars.next();
        }
        let name = &expression[i + 1..end];
        match aliases.iter().find(|(alias, _)| alias == name) {
            Some((_, value)) => out.push_str(value.trim()),
            None => {
                return Err(BadQuery(format!(
                    "The parameter alias '@{name}' is not defined in the query."
                )));
            }
        }
    }
    Ok(out)
}

impl Cookie {
    /// The cookie as it appears, percent-encoded, after `$skiptoken=`.
    pub fn encode(&self) -> String {
        let inner = format!(
            "<cookie page=\"{}\"><{} last=\"{{{}}}\" /></cookie>",
            self.page.saturating_sub(1),
            self.key,
            self.last_id.to_ascii_uppercase()
        );
        encode(&format!(
            "<cookie pagenumber=\"{}\" pagingcookie=\"{}\" istracking=\"False\" />",
            self.page,
            encode(&inner)
        ))
    }

    /// Parses a decoded skiptoken value.
    pub fn parse(decoded: &str) -> Option<Self> {
        let outer = decoded
            .trim()
            .strip_prefix("<cookie ")?
            .strip_suffix("/>")?;
        let page = attribute(outer, "pagenumber")?.parse().ok()?;
        let inner = decode(attribute(outer, "pagingcookie")?, false);
        let column = inner
            .trim()
            .strip_prefix("<cookie ")?
            .split_once('>')?
            .1
            .strip_prefix('<')?;
        let (key, rest) = column.split_once(' ')?;
        let last_id = attribute(rest, "last")?
            .trim_matches(['{', '}'])
            .to_ascii_lowercase();
        super::schema::is_guid(&last_id).then(|| Self {
            page,
            key: key.to_string(),
            last_id,
        })
    }
}

fn attribute<'a>(inner: &'a str, name: &str) -> Option<&'a str> {
    let start = inner.find(&format!("{name}=\""))? + name.len() + 2;
    let len = inner[start..].find('"')?;
    Some(&inner[start..start + len])
}

/// The query string of the next page's link: carried options, then the new skiptoken.
pub fn next_query(carried: &[String], next: &Cookie) -> String {
    let mut parts = carried.to_vec();
    parts.push(format!("$skiptoken={}", next.encode()));
    parts.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "c0000000-0000-4000-8000-000000000003";

    #[test]
    fn cookie_round_trips_through_a_url() {
        let cookie = Cookie {
            page: 2,
            key: "contactid".into(),
            last_id: ID.into(),
        };
        let encoded = cookie.encode();
        assert!(!encoded.contains(['<', '"', ' ', '=']));
        let query = parse(Some(&format!("$skiptoken={encoded}"))).expect("query");
        assert_eq!(query.skip, Some(cookie));
        assert!(query.carried.is_empty());
    }

    #[test]
    fn bad_cookies_are_rejected() {
        for bad in [
            "junk",
            "<cookie pagenumber=\"x\" lastid=\"y\" />",
            "<cookie pagenumber=\"2\" />",
            "<cookie pagenumber=\"2\" pagingcookie=\"%3ccookie%20page%3d%221%22%3e%3c%2fcookie%3e\" />",
        ] {
            assert!(Cookie::parse(bad).is_none(), "{bad}");
        }
        assert!(parse(Some("$skiptoken=junk")).is_err());
    }

    #[test]
    fn select_top_and_ignored_options() {
        let raw = "%24select=fullname,%20emailaddress1&$top=3&$filter=statecode%20eq%200";
        let query = parse(Some(raw)).expect("query");
        assert_eq!(
            query.select,
            Some(vec!["fullname".to_string(), "emailaddress1".to_string()])
        );
        assert_eq!(query.top, Some(3));
        assert_eq!(query.filter.as_deref(), Some("statecode eq 0"));
        assert_eq!(query.carried.len(), 3);
        assert!(parse(Some("$top=many")).is_err());
        assert!(parse(Some("$select=a,,b")).is_err());
    }

    #[test]
    fn next_query_keeps_options_and_replaces_the_token() {
        let cookie = Cookie {
            page: 3,
            key: "contactid".into(),
            last_id: ID.into(),
        };
        let q = next_query(&["$select=fullname".to_string()], &cookie);
        assert!(q.starts_with("$select=fullname&$skiptoken=%3Ccookie%20pagenumber%3D%223%22"));
    }

    #[test]
    fn aliases_bind_as_columns_or_literals() {
        let q = parse(Some("$filter=@p1%20ne%20@p3&@p1=revenue&@p3=5")).expect("query");
        assert_eq!(q.filter.as_deref(), Some("revenue ne 5"));
        let q = parse(Some("$filter=contains(@p,'@x')&@p=description")).expect("query");
        assert_eq!(q.filter.as_deref(), Some("contains(description,'@x')"));
        let q = parse(Some("@s='a b'&$filter=name eq @s")).expect("query");
        assert_eq!(q.filter.as_deref(), Some("name eq 'a b'"));
        assert!(parse(Some("$filter=name eq @missing")).is_err());
        assert_eq!(q.carried.len(), 2, "aliases are carried into the next link");
    }
}
