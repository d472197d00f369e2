//! `$skiptoken`: the paging cookie of a Web API read.
//!
//! Pure. Dataverse pages a read by comparing the columns its paging cookie names with the values
//! the cookie carries (`<contactid last="{...}" />`), so a client that writes its own cookie
//! filters the read on any column it names. Invariant: the columns the cookie names are returned
//! and counted like filtered columns of the read's table, and anything else in the token is
//! refused, naming it. Understood: one `<cookie>` element with `pagenumber`, `pagingcookie` (the
//! inner cookie, percent-encoded once more) and `istracking`; the inner cookie is the one
//! fetchXml's `paging-cookie` carries, read by [`fetchxml::paging_cookie_columns`].

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{ParseError, fetchxml, percent_decode};

/// The columns the paging cookie in a decoded `$skiptoken` value pages on.
pub fn columns(token: &str) -> Result<Vec<String>, ParseError> {
    let bad = |why: String| ParseError::Malformed(format!("`$skiptoken`: {why}"));
    let mut reader = Reader::from_str(token.trim());
    let mut inner = None;
    let mut seen = false;
    loop {
        match reader.read_event().map_err(|e| bad(e.to_string()))? {
            Event::Empty(e) if !seen && e.name().0 == "cookie" => {
                seen = true;
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| bad(e.to_string()))?;
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| bad(e.to_string()))?
                        .into_owned();
                    match attr.key.0 {
                        "pagenumber" if value.bytes().all(|b| b.is_ascii_digit()) => {}
                        "istracking" if matches!(value.as_str(), "True" | "False") => {}
                        "pagingcookie" => inner = Some(percent_decode(&value, false)?),
                        other => {
                            return Err(bad(format!(
                                "the cookie attribute `{other}` (or its value) is not understood"
                            )));
                        }
                    }
                }
            }
            Event::Eof if seen => break,
            _ => return Err(bad("only one <cookie /> element is understood".into())),
        }
    }
    match inner {
        Some(cookie) => fetchxml::paging_cookie_columns(&cookie).map_err(|e| bad(e.to_string())),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nextLink of Microsoft's paging example, decoded once as the query parser does.
    const DATAVERSE: &str = "<cookie pagenumber=\"2\" pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e%253ccontactid%2520last%253d%2522%257bD5026A4D-D01C-ED11-B83E-000D3A572421%257d%2522%2520first%253d%2522%257b49B0BE2E-D01C-ED11-B83E-000D3A572421%257d%2522%2520%252f%253e%253c%252fcookie%253e\" istracking=\"False\" />";

    #[test]
    fn a_dataverse_cookie_pages_on_its_key() {
        let once = percent_decode(DATAVERSE, false).unwrap();
        assert_eq!(columns(&once).unwrap(), vec!["contactid".to_string()]);
    }

    #[test]
    fn a_forged_cookie_names_the_columns_it_compares() {
        let inner = "%3ccookie%20page%3d%221%22%3e%3cstatuscode%20last%3d%223%22%20%2f%3e%3cname%20last%3d%22a%22%20%2f%3e%3c%2fcookie%3e";
        let token =
            format!("<cookie pagenumber=\"2\" pagingcookie=\"{inner}\" istracking=\"False\" />");
        assert_eq!(columns(&token).unwrap(), vec!["statuscode", "name"]);
    }

    #[test]
    fn anything_else_is_refused_by_name() {
        for (token, names) in [
            ("<cookie pagenumber=\"2\" lastid=\"x\" />", "`lastid`"),
            ("<cookie pagenumber=\"two\" />", "`pagenumber`"),
            ("<cookie pagenumber=\"2\" /><cookie />", "one <cookie />"),
            ("<other />", "one <cookie />"),
            ("junk", "one <cookie />"),
            (
                "<cookie pagingcookie=\"%3ccookie%20page%3d%221%22%3e%3cx%20y%3d%221%22%20%2f%3e%3c%2fcookie%3e\" />",
                "`y`",
            ),
        ] {
            let e = columns(token).expect_err(token).to_string();
            assert!(e.contains(names), "{token}: {e}");
        }
    }
}
