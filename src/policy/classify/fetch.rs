//! `fetchXml=` reads: the tables and columns [`fetchxml::parse`] accounts for, as uses.
//!
//! Pure. The query is the whole request: no other query option or parameter alias may
//! accompany it (Dataverse would apply it in ways the XML does not show). Every table of the
//! query is a GET with the columns it names there, under the names column lists use (a lookup's
//! `_x_value`); a table whose every column comes back is marked so, and never gets the added
//! `$select` (it cannot be combined with FetchXML).

use super::*;
use crate::policy::odata::fetchxml;

/// `fetchXml=`: the whole query is in the parameter, so nothing may accompany it (another
/// option would be resolved by Dataverse in ways the XML does not show, or ignored).
pub(super) fn classify(
    xml: &str,
    q: &Query,
    set: &str,
    logical: &str,
    meta: &Metadata,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let others: Vec<String> = q
        .options
        .iter()
        .map(|(n, _)| n.to_string())
        .filter(|n| n != "fetchXml")
        .chain(q.aliases.iter().map(|(n, _)| format!("@{n}")))
        .collect();
    if !others.is_empty() {
        return Err(ParseError::Malformed(format!(
            "fetchXml cannot be combined with other query options (`{}`): put the whole query in the FetchXML",
            others.join("`, `")
        )));
    }
    let f = fetchxml::parse(xml).map_err(|e| ParseError::Malformed(e.to_string()))?;
    if f.entity != logical {
        return Err(ParseError::Malformed(format!(
            "fetchXml queries `{}` but the URL names `{set}`",
            f.entity
        )));
    }
    for t in &f.tables {
        let tset = meta.shared_set_of(&t.logical_name).ok_or_else(|| {
            not(format!(
                "fetchXml names `{}`, which is not a table of this org",
                t.logical_name
            ))
        })?;
        // Room for every name, each possibly written as its `_x_value`.
        let mut columns = Columns::with_capacity(t.columns.iter().map(|c| c.len() + 7).sum());
        for c in &t.columns {
            web_api_column(meta, &t.logical_name, c, &mut columns)?;
        }
        out.touch_set(tset, Verb::Get, columns, t.all_attributes);
    }
    Ok(())
}

/// FetchXML names a lookup by its logical name (`parentaccountid`), the Web API and column
/// lists by its value property (`_parentaccountid_value`): the same column is counted under
/// the one name, so one column list entry covers both query languages. A name that is neither
/// is refused: FetchXML also accepts columns the Web API metadata does not show, such as a
/// lookup's virtual name column (`parentcustomeridname`: the related row's primary name).
fn web_api_column(
    meta: &Metadata,
    logical: &str,
    column: &str,
    out: &mut Columns,
) -> Result<(), ParseError> {
    if meta.has_property(logical, column) {
        out.push(column);
        return Ok(());
    }
    let value = format!("_{column}_value");
    if meta.has_property(logical, &value) {
        out.push(&value);
        return Ok(());
    }
    Err(not(format!(
        "fetchXml names `{column}`, which is not a column of {logical} in the org's metadata"
    )))
}
