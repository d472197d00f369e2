//! `list_tables` and `describe_table`: the facts come from the allowlist and the metadata
//! (pure); display names, descriptions and choice values, which CSDL lacks, are read from
//! Dataverse's `EntityDefinitions` by the label requests planned here and merged by
//! [`super::labels`].
//!
//! Invariant: they show only what the allowlist grants — a restricted table's other columns,
//! and lookups to tables outside the allowlist, are left out, and labels are merged only into
//! columns already shown, so a hidden column's labels never appear. The label requests are
//! ordinary Web API requests the pipeline classifies and decides like any other (it allows
//! `EntityDefinitions` of allowlisted tables); when one is refused or fails, the answer keeps
//! the metadata's facts and says the labels are unavailable.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::plan::{WebCall, encode};
use super::tools::Catalogue;

/// Logical names per filtered `EntityDefinitions` listing (`list_tables`).
pub const NAMES_PER_LISTING: usize = 20;

/// A table answer from the metadata, and the requests that add its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub facts: Value,
    pub labels: LabelPlan,
}

/// Which `EntityDefinitions` requests label a [`Described`] answer.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelPlan {
    /// No request (no metadata loaded, or nothing to label).
    None,
    /// `list_tables`: filtered listings of these logical names.
    Tables(Vec<WebCall>),
    /// `describe_table` of this logical name: its definition, then its attributes, then the
    /// option sets of the choice columns shown (see [`option_call`]).
    Table(String),
}

/// `GET` of a path under `/api/data/{version}/`.
fn get(target: String) -> WebCall {
    WebCall {
        method: http::Method::GET,
        target,
        body: None,
        page_size: None,
        existing_only: false,
    }
}

/// `EntityDefinitions(LogicalName='x')`: the table's display name and description.
pub fn table_call(logical: &str) -> WebCall {
    get(format!(
        "EntityDefinitions(LogicalName='{logical}')?$select=LogicalName,DisplayName,Description"
    ))
}

/// The table's attributes: display names, descriptions and attribute types.
pub fn attributes_call(logical: &str) -> WebCall {
    get(format!(
        "EntityDefinitions(LogicalName='{logical}')/Attributes?$select=LogicalName,DisplayName,\
         Description,AttributeType,AttributeTypeName"
    ))
}

/// The options of the table's attributes of one choice type (`PicklistAttributeMetadata`,
/// `StateAttributeMetadata`, `StatusAttributeMetadata`, `MultiSelectPicklistAttributeMetadata`):
/// a local option set or a global one, whichever the column uses.
pub fn option_call(logical: &str, cast: &str) -> WebCall {
    get(format!(
        "EntityDefinitions(LogicalName='{logical}')/Attributes/Microsoft.Dynamics.CRM.{cast}\
         ?$select=LogicalName&$expand=OptionSet($select=Options),GlobalOptionSet($select=Options)"
    ))
}

/// Filtered listings of the tables' display names and descriptions, [`NAMES_PER_LISTING`] a
/// request.
pub fn listing_calls(logicals: &[&str]) -> Vec<WebCall> {
    logicals
        .chunks(NAMES_PER_LISTING)
        .map(|names| {
            let filter: Vec<String> = names
                .iter()
                .map(|n| format!("LogicalName eq '{n}'"))
                .collect();
            get(format!(
                "EntityDefinitions?$filter={}&$select=LogicalName,DisplayName,Description",
                encode(&filter.join(" or "))
            ))
        })
        .collect()
}

impl Catalogue<'_> {
    /// `list_tables`: every allowlisted table with its key and verbs (and column restriction).
    pub fn list_tables(&self) -> Described {
        let mut logicals = Vec::new();
        let tables: Vec<Value> = self
            .policy
            .tables
            .iter()
            .filter(|(set, _)| self.metadata.is_none_or(|m| m.entity_set(set).is_some()))
            .map(|(set, rule)| {
                let logical = self
                    .metadata
                    .and_then(|m| m.entity_set(set))
                    .map(|t| t.logical_name.as_str());
                logicals.extend(logical);
                let key = self.metadata.zip(logical).and_then(|(m, l)| m.key_of(l));
                json!({
                    "table": set,
                    "logical_name": logical,
                    "key": key,
                    "verbs": rule.verbs.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
                    "columns": rule.columns,
                })
            })
            .collect();
        let labels = match logicals.is_empty() {
            true => LabelPlan::None,
            false => LabelPlan::Tables(listing_calls(&logicals)),
        };
        Described {
            facts: json!({ "tables": tables }),
            labels,
        }
    }

    /// `describe_table`: the allowed columns with their types, the key and the lookups (with
    /// their targets) of one allowlisted table. `Err` when the table is not in the allowlist
    /// (the same words the Web API uses).
    pub fn describe(&self, set: &str) -> Result<Described, String> {
        let Some(rule) = self.policy.tables.get(set) else {
            return Err(format!(
                "`{set}`: the table is not in this tenant's allowlist"
            ));
        };
        let verbs: Vec<&str> = rule.verbs.iter().map(|v| v.as_str()).collect();
        let Some(meta) = self.metadata else {
            return Ok(Described {
                facts: json!({
                    "table": set,
                    "verbs": verbs,
                    "columns": rule.columns,
                    "note": "this gateway has no metadata for the tenant loaded: columns unknown",
                }),
                labels: LabelPlan::None,
            });
        };
        let Some(ty) = meta.entity_set(set) else {
            return Err(format!("`{set}`: the metadata has no such table"));
        };
        let logical = ty.logical_name.clone();
        let allowed = |c: &str| {
            rule.columns
                .as_ref()
                .is_none_or(|cols| cols.iter().any(|x| x == c))
        };
        let mut columns = BTreeMap::new();
        let mut lookups = Vec::new();
        for t in meta.ancestry(&logical) {
            for c in t.properties.iter().filter(|c| allowed(c)) {
                let ty = meta.column_type(&logical, c).map(|t| t.as_str());
                columns
                    .entry(c.as_str())
                    .or_insert_with(|| json!({"name": c, "type": ty}));
            }
            for (nav, n) in &t.navigation {
                let target_set = meta.set_of(&n.target);
                let reachable = target_set.is_some_and(|s| self.policy.tables.contains_key(s));
                let column_ok = n.lookup.as_deref().is_none_or(allowed);
                if !reachable || !column_ok {
                    continue;
                }
                lookups.push(json!({
                    "navigation": nav,
                    "column": n.lookup,
                    "target": n.target,
                    "target_table": target_set,
                    "collection": n.collection,
                }));
            }
        }
        let facts = json!({
            "table": set,
            "logical_name": logical,
            "verbs": verbs,
            "key": meta.key_of(&logical).unwrap_or(&[]),
            "columns": columns.into_values().collect::<Vec<_>>(),
            "lookups": lookups,
        });
        Ok(Described {
            facts,
            labels: LabelPlan::Table(logical),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_are_chunked_and_filter_by_logical_name_only() {
        let names: Vec<String> = (0..45).map(|i| format!("t{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let calls = listing_calls(&refs);
        assert_eq!(calls.len(), 3);
        assert_eq!(
            calls[2].target,
            "EntityDefinitions?$filter=LogicalName%20eq%20%27t40%27%20or%20LogicalName%20eq%20%27t41%27%20or%20LogicalName%20eq%20%27t42%27%20or%20LogicalName%20eq%20%27t43%27%20or%20LogicalName%20eq%20%27t44%27&$select=LogicalName,DisplayName,Description"
        );
        assert!(calls.iter().all(|c| c.method == http::Method::GET));
    }
}
