//! `list_tables` and `describe_table`: answered from the allowlist and the metadata (pure; no
//! request to Dataverse). They show only what the allowlist grants: a restricted table's other
//! columns, and lookups to tables outside the allowlist, are left out.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::tools::Catalogue;

impl Catalogue<'_> {
    /// `list_tables`: every allowlisted table with its verbs (and column restriction).
    pub fn list_tables(&self) -> Value {
        let tables: Vec<Value> = self
            .policy
            .tables
            .iter()
            .filter(|(set, _)| self.metadata.is_none_or(|m| m.entity_set(set).is_some()))
            .map(|(set, rule)| {
                let logical = self
                    .metadata
                    .and_then(|m| m.entity_set(set))
                    .map(|t| t.logical_name.clone());
                json!({
                    "table": set,
                    "logical_name": logical,
                    "verbs": rule.verbs.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
                    "columns": rule.columns,
                })
            })
            .collect();
        json!({ "tables": tables })
    }

    /// `describe_table`: the allowed columns, key and lookups of one allowlisted table.
    /// `Err` when the table is not in the allowlist (the same words the Web API uses).
    pub fn describe(&self, set: &str) -> Result<Value, String> {
        let Some(rule) = self.policy.tables.get(set) else {
            return Err(format!(
                "`{set}`: the table is not in this tenant's allowlist"
            ));
        };
        let Some(meta) = self.metadata else {
            return Ok(json!({
                "table": set,
                "verbs": rule.verbs.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
                "columns": rule.columns,
                "note": "this gateway has no metadata for the tenant loaded: columns unknown",
            }));
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
        let mut columns = BTreeSet::new();
        let mut lookups = Vec::new();
        for t in meta.ancestry(&logical) {
            columns.extend(t.properties.iter().filter(|c| allowed(c)).cloned());
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
        Ok(json!({
            "table": set,
            "logical_name": logical,
            "verbs": rule.verbs.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
            "key": meta.key_of(&logical).unwrap_or(&[]),
            "columns": columns,
            "lookups": lookups,
        }))
    }
}
