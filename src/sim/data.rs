//! The in-memory row store of one simulator.
//!
//! [`Store`] holds rows per entity set; ids are lowercase GUID strings and rows are ordered by
//! id, which is what keyset paging relies on. Every insert or update gives the row a fresh,
//! strictly increasing version (its ETag).
//!
//! Pure: no I/O, no clock.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::schema::{TABLES, Table};

/// A stored row: its version (ETag) and its non-key columns.
#[derive(Debug, Clone)]
pub struct Row {
    pub version: u64,
    pub fields: Map<String, Value>,
}

impl Row {
    /// The row as Dataverse returns it: ETag, key, and the selected (or all) columns; columns
    /// never set come back as `null`.
    pub fn to_json(&self, table: &Table, id: &str, select: Option<&[String]>) -> Value {
        let mut out = Map::new();
        out.insert(
            "@odata.etag".into(),
            Value::String(format!("W/\"{}\"", self.version)),
        );
        out.insert(table.key.into(), Value::String(id.into()));
        let wanted = |c: &str| select.is_none_or(|s| s.iter().any(|x| x == c));
        for column in table.columns.iter().filter(|c| wanted(c)) {
            out.insert(
                (*column).into(),
                self.fields.get(*column).cloned().unwrap_or(Value::Null),
            );
        }
        Value::Object(out)
    }
}

/// All rows of one simulator, per entity set. Cloning it takes a snapshot (a change set restores
/// one when it fails).
#[derive(Debug, Clone)]
pub struct Store {
    tables: HashMap<&'static str, BTreeMap<String, Row>>,
    next_version: u64,
}

impl Store {
    pub fn empty() -> Self {
        let tables = TABLES.iter().map(|t| (t.set, BTreeMap::new())).collect();
        Self {
            tables,
            next_version: 1000,
        }
    }

    fn rows(&self, set: &str) -> Option<&BTreeMap<String, Row>> {
        self.tables.get(set)
    }

    /// Up to `limit` rows with ids greater than `after`, in id order.
    pub fn page(&self, set: &str, after: Option<&str>, limit: usize) -> Vec<(String, Row)> {
        self.page_where(set, after, limit, |_, _| true)
    }

    /// Like [`Store::page`], counting only rows for which `keep(id, row)` holds.
    pub fn page_where(
        &self,
        set: &str,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(&str, &Row) -> bool,
    ) -> Vec<(String, Row)> {
        let Some(rows) = self.rows(set) else {
            return Vec::new();
        };
        rows.iter()
            .filter(|(id, _)| after.is_none_or(|a| id.as_str() > a))
            .filter(|(id, row)| keep(id, row))
            .take(limit)
            .map(|(id, row)| (id.clone(), row.clone()))
            .collect()
    }

    pub fn get(&self, set: &str, id: &str) -> Option<&Row> {
        self.rows(set)?.get(&id.to_ascii_lowercase())
    }

    /// The id of the first row whose columns equal every `(column, value)` pair. Values compare
    /// as strings, case-insensitively (Dataverse's default collation).
    pub fn find(&self, table: &Table, pairs: &[(String, String)]) -> Option<String> {
        let rows = self.rows(table.set)?;
        rows.iter()
            .find(|(id, row)| {
                pairs.iter().all(|(col, want)| {
                    let have = if col == table.key {
                        Some(id.to_string())
                    } else {
                        row.fields
                            .get(col)
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    };
                    have.is_some_and(|h| h.eq_ignore_ascii_case(want))
                })
            })
            .map(|(id, _)| id.clone())
    }

    /// Inserts or replaces the whole row. Returns the new version.
    pub fn put(&mut self, set: &str, id: &str, fields: Map<String, Value>) -> u64 {
        self.next_version += 1;
        let version = self.next_version;
        if let Some(rows) = self.tables.get_mut(set) {
            rows.insert(id.to_ascii_lowercase(), Row { version, fields });
        }
        version
    }

    /// Merges `fields` into an existing row, or creates it. Returns the new version.
    pub fn merge(&mut self, set: &str, id: &str, fields: Map<String, Value>) -> u64 {
        let mut merged = self
            .get(set, id)
            .map(|r| r.fields.clone())
            .unwrap_or_default();
        merged.extend(fields);
        self.put(set, id, merged)
    }

    pub fn delete(&mut self, set: &str, id: &str) -> bool {
        self.tables
            .get_mut(set)
            .is_some_and(|rows| rows.remove(&id.to_ascii_lowercase()).is_some())
    }

    /// All rows of a table, for the annotations stream (small: only written rows live here).
    pub fn all(&self, set: &str) -> Vec<(String, Row)> {
        self.page(set, None, usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::schema::{seeded_id, table};
    use serde_json::json;

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn paging_is_keyset_by_id() {
        let mut store = Store::empty();
        for n in 1..=5 {
            store.put("contacts", &seeded_id("c0000000", n), Map::new());
        }
        let first = store.page("contacts", None, 2);
        assert_eq!(first.len(), 2);
        let rest = store.page("contacts", Some(&first[1].0), 10);
        assert_eq!(rest.len(), 3);
        assert!(rest.iter().all(|(id, _)| id > &first[1].0));
    }

    #[test]
    fn versions_increase_and_merge_keeps_columns() {
        let mut store = Store::empty();
        let id = seeded_id("c0000000", 1);
        let v1 = store.put(
            "contacts",
            &id,
            fields(json!({"firstname": "Ann", "lastname": "Lee"})),
        );
        let v2 = store.merge("contacts", &id, fields(json!({"lastname": "Ng"})));
        assert!(v2 > v1);
        let row = store
            .get("contacts", &id.to_uppercase())
            .cloned()
            .expect("row");
        assert_eq!(row.fields["firstname"], "Ann");
        assert_eq!(row.fields["lastname"], "Ng");
        assert!(store.delete("contacts", &id));
        assert!(!store.delete("contacts", &id));
    }

    #[test]
    fn find_by_alternate_key_ignores_case() {
        let mut store = Store::empty();
        let id = seeded_id("c0000000", 7);
        store.put(
            "contacts",
            &id,
            fields(json!({"emailaddress1": "Joe@Example.com"})),
        );
        let contacts = table("contacts").expect("table");
        let key = vec![("emailaddress1".to_string(), "joe@example.com".to_string())];
        assert_eq!(store.find(contacts, &key), Some(id.clone()));
        let by_pk = vec![("contactid".to_string(), id.to_uppercase())];
        assert_eq!(store.find(contacts, &by_pk), Some(id));
        assert_eq!(
            store.find(contacts, &[("emailaddress1".into(), "x".into())]),
            None
        );
    }

    #[test]
    fn select_limits_columns_but_keeps_key_and_etag() {
        let contacts = table("contacts").expect("table");
        let row = Row {
            version: 7,
            fields: fields(json!({"fullname": "A B", "firstname": "A"})),
        };
        let select = vec!["fullname".to_string()];
        let json = row.to_json(contacts, "id-1", Some(&select));
        assert_eq!(
            json,
            json!({"@odata.etag": "W/\"7\"", "contactid": "id-1", "fullname": "A B"})
        );
        let all = row.to_json(contacts, "id-1", None);
        assert_eq!(all["lastname"], Value::Null);
    }
}
