//! The allowlist part of a tenant: `allow`, `functions`, `actions`.

use super::sections::BROAD_TABLES;
use super::*;

impl Reader {
    pub(super) fn policy(&mut self, m: &mut Map<'_>, path: &str) -> Policy {
        let mut policy = Policy::default();
        if let Some(node) = m.take("allow") {
            let p = join(path, "allow");
            if let Some(mut allow) = self.map(node, &p) {
                for (key, value) in allow.entries() {
                    let tp = join(&p, &key.name);
                    if !valid_identifier(&key.name) {
                        let msg = format!("`{}` is not an entity set name", key.name);
                        self.error(key.pos, &tp, msg);
                        continue;
                    }
                    if let Some(rule) = self.table_rule(value, &tp) {
                        self.table_warnings(&key.name, &rule, key.pos, &tp);
                        policy.tables.insert(key.name.clone(), rule);
                    }
                }
            }
        }
        policy.functions = self.operation_names(m.take("functions"), &join(path, "functions"));
        policy.actions = self.operation_names(m.take("actions"), &join(path, "actions"));
        let p = join(path, "allow_metadata");
        policy.allow_metadata = m
            .take("allow_metadata")
            .and_then(|n| self.boolean(n, &p))
            .unwrap_or(false);
        let p = join(path, "allow_all_entity_definitions");
        policy.allow_all_entity_definitions = m
            .take("allow_all_entity_definitions")
            .and_then(|n| self.boolean(n, &p))
            .unwrap_or(false);
        if let Some(n) = m.take("allow_uninspectable") {
            let p = join(path, "allow_uninspectable");
            for (kind, pos) in self.strings(n, &p).unwrap_or_default() {
                if ["savedQuery", "userQuery", "sql"].contains(&kind.as_str()) {
                    let msg = format!(
                        "`{kind}` queries run server-side and cannot be inspected: the allowlist cannot limit what they read"
                    );
                    self.warn(pos, &p, msg);
                    policy.allow_uninspectable.push(kind);
                } else {
                    self.error(
                        pos,
                        &p,
                        format!("`{kind}` is not one of savedQuery, userQuery, sql"),
                    );
                }
            }
        }
        for (name, pos) in policy
            .actions
            .iter()
            .chain(&policy.functions)
            .filter(|n| SPANNING_OPERATIONS.contains(&n.as_str()))
            .map(|n| (n.clone(), m.pos))
            .collect::<Vec<_>>()
        {
            self.warn(pos, path, format!("`{name}` takes table names or queries: allowing it can reach tables outside the allowlist"));
        }
        policy
    }

    fn table_rule(&mut self, node: &Node, path: &str) -> Option<TableRule> {
        match &node.value {
            Value::Seq(_) => Some(TableRule {
                verbs: self.verbs(node, path)?,
                columns: None,
            }),
            Value::Map(_) => {
                let mut m = self.map(node, path)?;
                let verbs = match m.take("verbs") {
                    Some(n) => self.verbs(n, &join(path, "verbs")),
                    None => {
                        self.error(m.pos, path, "missing required key `verbs`");
                        None
                    }
                };
                let columns = m.take("columns").and_then(|n| {
                    let cp = join(path, "columns");
                    let cols = self.strings(n, &cp)?;
                    for (c, pos) in &cols {
                        if !valid_identifier(c) {
                            self.error(*pos, &cp, format!("`{c}` is not a column name"));
                        }
                    }
                    if cols.is_empty() {
                        self.error(
                            n.pos,
                            &cp,
                            "an empty column list allows nothing: remove the table instead",
                        );
                    }
                    Some(cols.into_iter().map(|(c, _)| c).collect())
                });
                self.finish(m, &["verbs", "columns"]);
                Some(TableRule {
                    verbs: verbs?,
                    columns,
                })
            }
            other => {
                let msg = format!(
                    "expected a list of verbs or a mapping, found {}",
                    other.kind()
                );
                self.error(node.pos, path, msg);
                None
            }
        }
    }

    fn verbs(&mut self, node: &Node, path: &str) -> Option<Vec<Verb>> {
        let mut verbs = Vec::new();
        for (s, pos) in self.strings(node, path)? {
            match Verb::parse(&s) {
                Some(v) if verbs.contains(&v) => self.warn(pos, path, format!("{v} listed twice")),
                Some(v) => verbs.push(v),
                None => self.error(
                    pos,
                    path,
                    format!("`{s}` is not one of GET, POST, PATCH, PUT, DELETE"),
                ),
            }
        }
        verbs.sort();
        Some(verbs)
    }

    fn table_warnings(&mut self, table: &str, rule: &TableRule, pos: Pos, path: &str) {
        if BROAD_TABLES.contains(&table) {
            let msg =
                format!("`{table}` spans records of many other tables: allowing it exposes them");
            self.warn(pos, path, msg);
        }
        if rule.allows(Verb::Patch) && !rule.allows(Verb::Post) {
            let msg = "PATCH without POST: PATCH is an upsert in Dataverse, so the gateway sends it with \
                       If-Match: * to keep it from creating rows";
            self.warn(pos, path, msg);
        }
        if rule.verbs.is_empty() {
            self.warn(
                pos,
                path,
                "no verbs: the table is listed but nothing is allowed",
            );
        }
    }

    fn operation_names(&mut self, node: Option<&Node>, path: &str) -> Vec<String> {
        let Some(node) = node else { return Vec::new() };
        let Some(names) = self.strings(node, path) else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for (name, pos) in names {
            if !valid_identifier(&name) {
                self.error(
                    pos,
                    path,
                    format!("`{name}` is not a function or action name"),
                );
            } else if out.contains(&name) {
                self.warn(pos, path, format!("`{name}` listed twice"));
            } else {
                out.push(name);
            }
        }
        out
    }
}

/// Operations that take table names or queries as parameters, so they can reach tables the
/// allowlist does not name (see docs/policy.md).
const SPANNING_OPERATIONS: &[&str] = &[
    "BulkDelete",
    "RetrieveTotalRecordCount",
    "InitializeFrom",
    "RetrievePrincipalAccess",
    "ExecuteCosmosSqlQuery",
    "searchquery",
    "searchsuggest",
    "searchautocomplete",
];

/// OData simple identifier: a letter or `_`, then letters, digits, `_`.
pub(crate) fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 128
}
