//! Query options, `Prefer` and the paging cookie of collection reads.
//!
//! Honoured: `$select`, `$top`, `$skiptoken` and `Prefer: odata.maxpagesize=N`; `$filter` and
//! `$expand` are kept (decoded) for the handlers that understand a simple form of them (see
//! `filter` and `definitions`). Every other option (`$orderby`, `$count`, ...) is accepted and
//! ignored. All options but `$skiptoken` are carried into `@odata.nextLink` unchanged, so a
//! client's next page request looks like the first.
//! `$top` wins over `maxpagesize`: a `$top` read is a single page without a nextLink.
//!
//! The skiptoken is opaque to clients; inside it is a Dataverse-like cookie
//! `<cookie pagenumber="N" lastid="<guid>" />` carrying the last id served (keyset paging).
//!
//! Pure: no I/O, no clock.

use super::form::{decode, encode};

/// Options of a collection or record read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub select: Option<Vec<String>>,
    pub top: Option<usize>,
    pub skip: Option<Cookie>,
    /// The decoded `$filter` expression.
    pub filter: Option<String>,
    /// The decoded `$expand` expression.
    pub expand: Option<String>,
    /// The raw `key=value` pieces other than `$skiptoken`, for the nextLink.
    pub carried: Vec<String>,
}

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub page: u32,
    pub last_id: String,
}

/// A query option Dataverse would reject with 400.
#[derive(Debug, PartialEq, Eq)]
pub struct BadQuery(pub String);

pub fn parse(raw: Option<&str>) -> Result<Query, BadQuery> {
    let mut query = Query::default();
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
    Ok(query)
}

impl Cookie {
    /// The cookie as it appears, percent-encoded, after `$skiptoken=`.
    pub fn encode(&self) -> String {
        encode(&format!(
            "<cookie pagenumber=\"{}\" lastid=\"{}\" />",
            self.page, self.last_id
        ))
    }

    /// Parses a decoded skiptoken value.
    pub fn parse(decoded: &str) -> Option<Self> {
        let inner = decoded
            .trim()
            .strip_prefix("<cookie ")?
            .strip_suffix("/>")?;
        let page = attribute(inner, "pagenumber")?.parse().ok()?;
        let last_id = attribute(inner, "lastid")?.to_ascii_lowercase();
        super::schema::is_guid(&last_id).then_some(Self { page, last_id })
    }
}

fn attribute<'a>(inner: &'a str, name: &str) -> Option<&'a str> {
    let start = inner.find(&format!("{name}=\""))? + name.len() + 2;
    let len = inner[start..].find('"')?;
    Some(&inner[start..start + len])
}

/// The page size asked for with `Prefer: odata.maxpagesize=N` (N ≥ 1), if any.
pub fn max_page_size<'a>(prefer: impl IntoIterator<Item = &'a str>) -> Option<usize> {
    prefer
        .into_iter()
        .flat_map(|h| h.split(','))
        .filter_map(|p| p.trim().strip_prefix("odata.maxpagesize="))
        .find_map(|n| n.trim().parse().ok())
        .filter(|n| *n > 0)
}

/// True when any `Prefer` header asks for `return=representation`.
pub fn wants_representation<'a>(prefer: impl IntoIterator<Item = &'a str>) -> bool {
    prefer
        .into_iter()
        .flat_map(|h| h.split(','))
        .any(|p| p.trim() == "return=representation")
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
            last_id: ID.into(),
        };
        let q = next_query(&["$select=fullname".to_string()], &cookie);
        assert!(q.starts_with("$select=fullname&$skiptoken=%3Ccookie%20pagenumber%3D%223%22"));
    }

    #[test]
    fn prefer_parsing() {
        assert_eq!(
            max_page_size(["odata.include-annotations=\"*\", odata.maxpagesize=2"]),
            Some(2)
        );
        assert_eq!(max_page_size(["odata.maxpagesize=0"]), None);
        assert_eq!(max_page_size(["return=representation"]), None);
        assert!(wants_representation([
            "odata.maxpagesize=2,return=representation"
        ]));
        assert!(!wants_representation(["return=minimal"]));
    }
}
