//! The part of FetchXML (`<set>?fetchXml=...`) the simulator evaluates, as Dataverse does for it:
//!
//! - `<fetch top="N">` limits the rows (`count` is read the same way);
//! - the root `<entity name>` must be the logical name of the URL's table (else 400);
//! - its `<attribute name>` children are the columns returned, plus the key; `<all-attributes/>`
//!   or NO `<attribute>` element at all returns EVERY column (documented Dataverse behaviour: a
//!   filter or an order naming one column does not limit what comes back);
//! - `<filter>` (type `and`, the default) `<condition attribute operator="eq|ne" value>` on the
//!   root entity filters rows like `$filter` (see `filter`); other conditions, `or` filters and
//!   nested filters are not evaluated.
//!
//! `<link-entity>` subtrees and `<order>` are accepted and not evaluated (no columns of linked
//! rows come back). Malformed XML is a 400. The answer is one page, without a paging cookie.
//!
//! [`parse`] is pure; [`serve`] answers over the store its caller locked (synchronous, no clock).

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use http::{Response, StatusCode};
use serde_json::Value;

use super::data::{Row, Store};
use super::expand::View;
use super::filter::{self, Condition, Literal, Op};
use super::records::{Call, DEFAULT_PAGE, annotations_applied, collection_text};
use super::response::{SimBody, bad_request, odata_text};
use super::schema::Table;

#[derive(Debug, Default, PartialEq)]
pub struct Fetch {
    /// Logical name of the root entity.
    pub entity: String,
    /// The columns asked for; `None`: every column.
    pub columns: Option<Vec<String>>,
    pub conditions: Vec<Condition>,
    pub top: Option<usize>,
}

pub fn parse(xml: &str) -> Result<Fetch, String> {
    let mut reader = Reader::from_str(xml);
    let mut fetch = Fetch::default();
    let (mut columns, mut all) = (Vec::new(), false);
    let mut stack: Vec<String> = Vec::new();
    let mut skipping: Option<usize> = None;
    let mut evaluated = true;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("Invalid FetchXML: {e}"))?;
        let (element, open) = match &event {
            Event::Start(e) => (e, true),
            Event::Empty(e) => (e, false),
            Event::End(_) => {
                stack.pop();
                if skipping.is_some_and(|depth| stack.len() < depth) {
                    skipping = None;
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = element.name().as_ref().to_string();
        let parent = stack.last().map(String::as_str);
        if skipping.is_none() {
            match (parent, name.as_str()) {
                (None, "fetch") => {
                    fetch.top = attribute(element, "top")?
                        .or(attribute(element, "count")?)
                        .and_then(|n| n.parse().ok());
                }
                (Some("fetch"), "entity") => {
                    fetch.entity = attribute(element, "name")?.unwrap_or_default();
                }
                (Some("entity"), "attribute") => {
                    columns.extend(attribute(element, "name")?);
                }
                (Some("entity"), "all-attributes") => all = true,
                (Some("entity"), "filter") => {
                    evaluated = attribute(element, "type")?.is_none_or(|t| t == "and");
                }
                (Some("filter"), "condition") if stack.len() == 3 && evaluated => {
                    fetch.conditions.extend(condition(element)?);
                }
                (_, "link-entity") if open => skipping = Some(stack.len() + 1),
                _ => {}
            }
        }
        if open {
            stack.push(name);
        }
    }
    if fetch.entity.is_empty() {
        return Err("The FetchXML has no <entity name=\"...\"> element.".into());
    }
    fetch.columns = (!all && !columns.is_empty()).then_some(columns);
    Ok(fetch)
}

fn attribute(element: &BytesStart, name: &str) -> Result<Option<String>, String> {
    for attr in element.attributes() {
        let attr = attr.map_err(|e| format!("Invalid FetchXML: {e}"))?;
        if attr.key.as_ref() == name {
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| format!("Invalid FetchXML: {e}"))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// An `eq`/`ne` condition on a root column; `None` for what the simulator does not evaluate.
fn condition(element: &BytesStart) -> Result<Option<Condition>, String> {
    let op = match attribute(element, "operator")?.as_deref() {
        Some("eq") => Op::Eq,
        Some("ne") => Op::Ne,
        _ => return Ok(None),
    };
    let (Some(property), Some(value)) = (
        attribute(element, "attribute")?,
        attribute(element, "value")?,
    ) else {
        return Ok(None);
    };
    let literal = match value.parse::<f64>() {
        Ok(n) if n.is_finite() => Literal::Number(n),
        _ => Literal::Text(value),
    };
    Ok(Some(Condition {
        property,
        op,
        literal,
    }))
}

/// A `fetchXml` read: one page of the rows its conditions keep, with its columns (every column
/// when it names none; see `fetch`).
pub fn serve(call: &Call, store: &Store, table: &'static Table, xml: &str) -> Response<SimBody> {
    let fetch = match parse(xml) {
        Ok(fetch) => fetch,
        Err(message) => return bad_request(&message),
    };
    if fetch.entity != table.logical {
        return bad_request(
            "The entity name specified in FetchXml does not match the entity name in the URL.",
        );
    }
    let columns = fetch.columns.as_deref().unwrap_or_default();
    if let Some(bad) = columns.iter().find(|c| !table.has_column(c)) {
        return bad_request(&format!(
            "'{}' entity doesn't contain attribute with Name = '{bad}'.",
            table.logical
        ));
    }
    let conditions: Vec<_> = fetch
        .conditions
        .into_iter()
        .filter(|c| table.has_column(&c.property))
        .collect();
    let keep = |id: &str, row: &Row| match row.to_json(table, id, None) {
        Value::Object(entity) => filter::matches(&conditions, &entity),
        _ => true,
    };
    let rows = store.page_where(table.set, None, fetch.top.unwrap_or(DEFAULT_PAGE), keep);
    let view = View {
        store,
        select: fetch.columns.as_deref(),
        expand: &[],
        annotations: &call.annotations,
    };
    let mut text = collection_text(call, table, &view, &rows);
    text.push('}');
    let mut response = odata_text(StatusCode::OK, text);
    annotations_applied(call, &mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_attribute_means_every_column() {
        let got = parse(
            r#"<fetch><entity name="opportunity"><filter><condition attribute="name" operator="eq" value="x"/></filter><order attribute="name"/></entity></fetch>"#,
        )
        .expect("fetch");
        assert_eq!(got.entity, "opportunity");
        assert_eq!(
            got.columns, None,
            "a filter and an order do not limit the columns"
        );
        assert_eq!(got.conditions.len(), 1);
        let all = parse(r#"<fetch><entity name="opportunity"><attribute name="name"/><all-attributes/></entity></fetch>"#)
            .expect("fetch");
        assert_eq!(all.columns, None);
    }

    #[test]
    fn attributes_top_and_links() {
        let got = parse(
            r#"<fetch top="2"><entity name="contact"><attribute name="fullname"/><link-entity name="account" from="accountid" to="parentcustomerid"><attribute name="name"/><filter><condition attribute="name" operator="eq" value="x"/></filter></link-entity><filter type="and"><condition attribute="statuscode" operator="eq" value="3"/><condition attribute="x" operator="gt" value="1"/></filter></entity></fetch>"#,
        )
        .expect("fetch");
        assert_eq!(got.top, Some(2));
        assert_eq!(got.columns, Some(vec!["fullname".to_string()]));
        assert_eq!(got.conditions.len(), 1, "{:?}", got.conditions);
        assert_eq!(got.conditions[0].literal, Literal::Number(3.0));
        assert!(parse("<fetch><entity/></fetch>").is_err());
        assert!(parse("<fetch><entity name='a'></fetch>").is_err());
    }
}
