//! `$expand` of single-valued navigation properties (lookups) on rows, and the one function that
//! renders a row the way a response shows it: its selected columns, its expansions and the
//! annotations the request asked for (see `annotate`).
//!
//! Grammar served: `nav` or `nav($select=a,b)`, comma-separated; other options inside the
//! parentheses are accepted and ignored. An expanded lookup is the row it points at (its key,
//! ETag and selected or all columns, annotated like the outer row) or `null`. A name that is
//! not a single-valued navigation property of the table (collection-valued ones included) is
//! not expanded; `$select` naming a column the target lacks is a 400, as in Dataverse.
//!
//! Pure: no I/O, no clock.

use serde_json::Value;

use super::annotate;
use super::data::{Row, Store};
use super::prefer::Annotations;
use super::response::Fault;
use super::schema::{Lookup, Table, table as table_of};

/// One lookup to expand, with its own `$select`.
#[derive(Debug, PartialEq, Eq)]
pub struct Expansion {
    pub lookup: &'static Lookup,
    pub target: &'static Table,
    pub select: Option<Vec<String>>,
}

/// The single-valued expansions of `expand` on `table`.
pub fn parse(table: &'static Table, expand: Option<&str>) -> Result<Vec<Expansion>, Fault> {
    let mut out = Vec::new();
    for item in split_top(expand.unwrap_or_default(), ',') {
        let (name, options) = match item.split_once('(') {
            Some((name, rest)) => (name.trim(), rest.strip_suffix(')').unwrap_or(rest)),
            None => (item.trim(), ""),
        };
        let Some(lookup) = table.lookup(name) else {
            continue;
        };
        let Some(target) = table_of(lookup.target_set) else {
            continue;
        };
        let mut select = None;
        for option in split_top(options, ';') {
            if let Some(columns) = option.trim().strip_prefix("$select=") {
                let columns: Vec<String> =
                    columns.split(',').map(|c| c.trim().to_string()).collect();
                if let Some(bad) = columns.iter().find(|c| !target.has_column(c)) {
                    return Err(Fault::bad_request(format!(
                        "Could not find a property named '{bad}' on type 'Microsoft.Dynamics.CRM.{}'.",
                        target.logical
                    )));
                }
                select = Some(columns);
            }
        }
        out.push(Expansion {
            lookup,
            target,
            select,
        });
    }
    Ok(out)
}

/// What a response shows of one row.
pub struct View<'a> {
    pub store: &'a Store,
    pub select: Option<&'a [String]>,
    pub expand: &'a [Expansion],
    pub annotations: &'a Annotations,
}

impl View<'_> {
    /// The row as JSON: selected columns, expansions, annotations.
    pub fn render(&self, table: &Table, id: &str, row: &Row) -> Value {
        let mut json = row.to_json(table, id, self.select);
        if let Value::Object(entity) = &mut json {
            for e in self.expand {
                let nested = self.nested(e, row);
                entity.insert(e.lookup.nav.to_string(), nested);
            }
            annotate::apply(entity, table, self.store, self.annotations);
        }
        json
    }

    fn nested(&self, e: &Expansion, row: &Row) -> Value {
        let linked = row
            .fields
            .get(e.lookup.column)
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        let Some((id, linked)) = linked.and_then(|id| {
            let row = self.store.get(e.target.set, &id)?;
            Some((id, row))
        }) else {
            return Value::Null;
        };
        let inner = View {
            select: e.select.as_deref(),
            expand: &[],
            ..*self
        };
        inner.render(e.target, &id, linked)
    }
}

/// Splits on `separator` outside parentheses and single quotes.
fn split_top(text: &str, separator: char) -> Vec<&str> {
    let (mut depth, mut quoted, mut start) = (0usize, false, 0);
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            c if c == separator && !quoted && depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out.retain(|s| !s.trim().is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::annotate::FORMATTED;
    use crate::sim::schema::table;
    use crate::sim::seed::{account_id, contact_id, seeded_store};

    fn contacts() -> &'static Table {
        table("contacts").expect("contacts")
    }

    #[test]
    fn parses_lookups_with_their_select() {
        let got = parse(
            contacts(),
            Some("parentcustomerid_account($select=name,revenue;$top=1),createdby,nope,x(y)"),
        )
        .expect("expand");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].target.set, "accounts");
        assert_eq!(
            got[0].select,
            Some(vec!["name".to_string(), "revenue".to_string()])
        );
        assert_eq!(
            (got[1].lookup.nav, got[1].select.as_ref()),
            ("createdby", None)
        );
        assert!(parse(contacts(), Some("parentcustomerid_account($select=nope)")).is_err());
        assert!(parse(contacts(), None).expect("none").is_empty());
    }

    #[test]
    fn renders_expanded_rows_with_annotations() {
        let store = seeded_store(&["app"]);
        let expand = parse(
            contacts(),
            Some("parentcustomerid_account($select=name,_primarycontactid_value)"),
        )
        .expect("expand");
        let annotations = Annotations::from_prefer(["odata.include-annotations=\"*\""]);
        let select = vec!["fullname".to_string()];
        let view = View {
            store: &store,
            select: Some(&select),
            expand: &expand,
            annotations: &annotations,
        };
        let id = contact_id(2);
        let row = store.get("contacts", &id).expect("row");
        let json = view.render(contacts(), &id, row);
        let account = &json["parentcustomerid_account"];
        assert_eq!(account["accountid"], account_id(2));
        assert_eq!(account["name"], "Fabrikam Inc");
        assert!(account.get("revenue").is_none());
        assert_eq!(
            account[&format!("_primarycontactid_value@{FORMATTED}")],
            "Susanna Stubberod"
        );
        assert!(
            json.get("_parentcustomerid_value").is_none(),
            "not selected"
        );
        assert!(
            json.get(format!("_parentcustomerid_value@{FORMATTED}"))
                .is_none()
        );
    }
}
