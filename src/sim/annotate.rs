//! The instance annotations Dataverse adds to a row's properties when the request's
//! `Prefer: odata.include-annotations=...` asks for them (see `prefer` for the patterns):
//!
//! - on a lookup column `_x_value` (not null): `OData.Community.Display.V1.FormattedValue`, the
//!   primary name of the row it points at (an account's `name`, a user's `fullname`: data of
//!   ANOTHER table, which is why a gateway must count it as a read of that table),
//!   `Microsoft.Dynamics.CRM.lookuplogicalname` (that row's table) and
//!   `Microsoft.Dynamics.CRM.associatednavigationproperty` (the navigation property that
//!   reaches it);
//! - on a choice column (`statuscode`): `FormattedValue`, the option's label;
//! - on a money column: `FormattedValue`, the amount as `$1,234.50`.
//!
//! Each annotation is the property name, `@`, the term (`_parentcustomerid_value@OData.Community.
//! Display.V1.FormattedValue`), and is added only for properties present in the row (a `$select`
//! that leaves a column out leaves its annotations out). Nested rows (`$expand`) are annotated
//! by their caller with the same preference.
//!
//! Pure: no I/O, no clock.

use serde_json::{Map, Value};

use super::attributes::{is_money, status_label};
use super::data::Store;
use super::prefer::Annotations;
use super::schema::{Table, table as table_of};

pub const FORMATTED: &str = "OData.Community.Display.V1.FormattedValue";
pub const LOGICAL_NAME: &str = "Microsoft.Dynamics.CRM.lookuplogicalname";
pub const NAVIGATION: &str = "Microsoft.Dynamics.CRM.associatednavigationproperty";

/// Adds the wanted annotations to `entity`, a row of `table` as JSON.
pub fn apply(entity: &mut Map<String, Value>, table: &Table, store: &Store, wanted: &Annotations) {
    if wanted.none() {
        return;
    }
    let mut added: Vec<(String, Value)> = Vec::new();
    let mut add = |column: &str, term: &str, value: Value| {
        if wanted.wants(term) {
            added.push((format!("{column}@{term}"), value));
        }
    };
    for column in table.columns {
        let Some(value) = entity.get(*column).filter(|v| !v.is_null()) else {
            continue;
        };
        if let Some(id) = value.as_str().filter(|_| column.starts_with('_')) {
            if let Some((logical, nav, name)) = pointed_at(table, column, id, store) {
                add(column, FORMATTED, name);
                add(column, LOGICAL_NAME, Value::String(logical.into()));
                add(column, NAVIGATION, Value::String(nav.into()));
            }
        } else if *column == "statuscode" {
            if let Some(label) = value.as_i64().and_then(|v| status_label(table, v)) {
                add(column, FORMATTED, Value::String(label.into()));
            }
        } else if is_money(column)
            && let Some(amount) = value.as_f64()
        {
            add(column, FORMATTED, Value::String(money(amount)));
        }
    }
    entity.extend(added);
}

/// The table (logical name), navigation property and primary name of the row a lookup column
/// points at; a polymorphic lookup is resolved by where the id exists.
fn pointed_at(
    table: &Table,
    column: &str,
    id: &str,
    store: &Store,
) -> Option<(&'static str, &'static str, Value)> {
    table
        .lookups
        .iter()
        .filter(|l| l.column == column)
        .find_map(|lookup| {
            let target = table_of(lookup.target_set)?;
            let row = store.get(target.set, id)?;
            let name = row
                .fields
                .get(target.primary_name)
                .cloned()
                .unwrap_or(Value::Null);
            Some((target.logical, lookup.nav, name))
        })
}

/// `1234.5` → `$1,234.50` (the en-US currency format of the org's base currency).
fn money(amount: f64) -> String {
    let cents = (amount.abs() * 100.0).round() as u64;
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if amount < 0.0 { "-" } else { "" };
    format!("{sign}${grouped}.{:02}", cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::schema::table;
    use crate::sim::seed::{account_id, contact_id, seeded_store};

    fn row_json(set: &str, id: &str, store: &Store) -> Map<String, Value> {
        let t = table(set).expect("table");
        match store.get(set, id).expect("row").to_json(t, id, None) {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn lookups_carry_the_other_rows_name_and_table() {
        let store = seeded_store(&["app"]);
        let mut contact = row_json("contacts", &contact_id(1), &store);
        let all = Annotations::from_prefer(["odata.include-annotations=\"*\""]);
        apply(&mut contact, table("contacts").expect("t"), &store, &all);
        let key = "_parentcustomerid_value";
        assert_eq!(contact[key], account_id(1));
        assert_eq!(contact[&format!("{key}@{FORMATTED}")], "Contoso Ltd");
        assert_eq!(contact[&format!("{key}@{LOGICAL_NAME}")], "account");
        assert_eq!(
            contact[&format!("{key}@{NAVIGATION}")],
            "parentcustomerid_account"
        );
        assert_eq!(
            contact[&format!("_createdby_value@{FORMATTED}")],
            "Alex Wilber"
        );
    }

    #[test]
    fn only_wanted_terms_on_present_properties() {
        let store = seeded_store(&["app"]);
        let contacts = table("contacts").expect("t");
        let mut plain = row_json("contacts", &contact_id(1), &store);
        let before = plain.clone();
        apply(&mut plain, contacts, &store, &Annotations::default());
        assert_eq!(plain, before, "no preference, no annotation");
        let logical_only =
            Annotations::from_prefer(["odata.include-annotations=\"Microsoft.Dynamics.CRM.*\""]);
        let mut row = row_json("contacts", &contact_id(1), &store);
        row.remove("_createdby_value");
        apply(&mut row, contacts, &store, &logical_only);
        let added: std::collections::BTreeSet<&str> = row
            .keys()
            .filter(|k| k.contains('@') && !k.starts_with('@'))
            .map(String::as_str)
            .collect();
        let want = [
            format!("_parentcustomerid_value@{NAVIGATION}"),
            format!("_parentcustomerid_value@{LOGICAL_NAME}"),
        ];
        assert_eq!(added, want.iter().map(String::as_str).collect(), "{row:?}");
    }

    #[test]
    fn choices_and_money_are_formatted() {
        let store = seeded_store(&["app"]);
        let opportunities = table("opportunities").expect("t");
        let (id, _) = store.all("opportunities").remove(4);
        let mut row = row_json("opportunities", &id, &store);
        let formatted =
            Annotations::from_prefer([&*format!("odata.include-annotations=\"{FORMATTED}\"")]);
        apply(&mut row, opportunities, &store, &formatted);
        assert_eq!(row[&format!("statuscode@{FORMATTED}")], "Won");
        assert_eq!(row[&format!("estimatedvalue@{FORMATTED}")], "$2,100.00");
        assert_eq!(
            row[&format!("_parentaccountid_value@{FORMATTED}")],
            "Litware Inc"
        );
        assert!(!row.contains_key(&format!("_parentaccountid_value@{LOGICAL_NAME}")));
        assert_eq!(money(1_500_000.0), "$1,500,000.00");
        assert_eq!(money(95.5), "$95.50");
        assert_eq!(money(-0.25), "-$0.25");
    }
}
