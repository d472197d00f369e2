//! The tools one tenant's allowlist and metadata give an MCP caller (pure).
//!
//! Invariant: a tool is listed only when the policy could allow a request it makes, and a table
//! appears in a tool's enum only when the allowlist grants that tool's verb on it (and, when the
//! tenant's metadata is loaded, the metadata knows the table). The catalogue is a convenience for
//! the agent, never a gate: every request a tool call makes is still classified and decided by
//! the pipeline, so a call naming a table outside the enum is refused there, with its reason.
//!
//! Tools: `list_tables` and `describe_table` (answered from the allowlist and metadata, labelled
//! by `EntityDefinitions` requests: see `describe`), `query` and `fetch_xml` (GET), `get`, `create`, `update`, `delete`,
//! and one tool per allowlisted unbound function or action.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::{Policy, Verb};
use crate::policy::metadata::{Metadata, Operation};

/// Rows per `query` call when the caller does not say: the MCP page size cap's default.
pub const DEFAULT_PAGE_CAP: u32 = 50;

/// One tool as `tools/list` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: String,
    #[serde(rename = "inputSchema")]
    pub input_schema: Value,
}

/// The fixed tools (functions and actions come from the allowlist).
pub const BUILT_IN: [&str; 8] = [
    "list_tables",
    "describe_table",
    "query",
    "fetch_xml",
    "get",
    "create",
    "update",
    "delete",
];

/// What the caller of one tenant may see.
pub struct Catalogue<'a> {
    pub policy: &'a Policy,
    pub metadata: Option<&'a Metadata>,
    pub page_cap: u32,
}

impl Catalogue<'_> {
    /// Entity sets the allowlist grants `verb` on (and the metadata knows, when loaded).
    pub fn tables_with(&self, verb: Verb) -> Vec<&str> {
        self.policy
            .tables
            .iter()
            .filter(|(set, rule)| rule.allows(verb) && self.known(set))
            .map(|(set, _)| set.as_str())
            .collect()
    }

    fn known(&self, set: &str) -> bool {
        self.metadata.is_none_or(|m| m.entity_set(set).is_some())
    }

    /// Allowlisted unbound functions and actions the metadata declares (all of them, with no
    /// parameters known, when no metadata is loaded).
    pub fn operations(&self) -> Vec<(&str, bool, Option<&Operation>)> {
        let mut out = Vec::new();
        for (names, is_action) in [
            (&self.policy.functions, false),
            (&self.policy.actions, true),
        ] {
            for name in names {
                if BUILT_IN.contains(&name.as_str()) || !valid_tool_name(name) {
                    continue;
                }
                let op = self.metadata.map(|m| match is_action {
                    true => m.unbound_action(name),
                    false => m.unbound_function(name),
                });
                match op {
                    Some(None) => continue, // not in the metadata: every call would be refused
                    Some(Some(op)) => out.push((name.as_str(), is_action, Some(op))),
                    None => out.push((name.as_str(), is_action, None)),
                }
            }
        }
        out
    }

    /// Whether [`Catalogue::tools`] lists `name` (without building the schemas).
    pub fn lists(&self, name: &str) -> bool {
        let any = |verb| {
            self.policy
                .tables
                .iter()
                .any(|(s, r)| r.allows(verb) && self.known(s))
        };
        match name {
            "list_tables" | "describe_table" => self.policy.tables.keys().any(|s| self.known(s)),
            "query" | "fetch_xml" | "get" => any(Verb::Get),
            "create" => any(Verb::Post),
            "update" => any(Verb::Patch),
            "delete" => any(Verb::Delete),
            _ => self.operations().iter().any(|(n, ..)| *n == name),
        }
    }

    /// Every tool usable by this tenant's caller, in a deterministic order.
    pub fn tools(&self) -> Vec<Tool> {
        let mut tools = Vec::new();
        let readable = self.tables_with(Verb::Get);
        let any_table = self.policy.tables.keys().any(|s| self.known(s));
        if any_table {
            tools.push(self.list_tables_tool());
            tools.push(self.describe_table());
        }
        if !readable.is_empty() {
            tools.push(self.query(&readable));
            tools.push(self.fetch_xml(&readable));
            tools.push(self.get(&readable));
        }
        for (verb, name) in [
            (Verb::Post, "create"),
            (Verb::Patch, "update"),
            (Verb::Delete, "delete"),
        ] {
            let tables = self.tables_with(verb);
            if !tables.is_empty() {
                tools.push(self.write(name, verb, &tables));
            }
        }
        for (name, is_action, op) in self.operations() {
            tools.push(operation_tool(name, is_action, op));
        }
        tools
    }

    fn restrictions(&self, tables: &[&str]) -> String {
        let restricted: Vec<String> = tables
            .iter()
            .filter_map(|t| {
                let cols = self.policy.tables.get(*t)?.columns.as_ref()?;
                Some(format!("{t}: {}", cols.join(", ")))
            })
            .collect();
        match restricted.is_empty() {
            true => String::new(),
            false => format!(" Only these columns: {}.", restricted.join("; ")),
        }
    }

    fn list_tables_tool(&self) -> Tool {
        Tool {
            name: "list_tables".into(),
            description: "The tables this gateway allows, with the verbs allowed on each, display names and descriptions.".into(),
            input_schema: json!({"type": "object", "properties": {}}),
        }
    }

    fn describe_table(&self) -> Tool {
        let tables: Vec<&str> = self
            .policy
            .tables
            .keys()
            .map(String::as_str)
            .filter(|s| self.known(s))
            .collect();
        Tool {
            name: "describe_table".into(),
            description:
                "The allowed columns of one table with their types, display names and choice values, \
                 its key and its lookups with their targets."
                    .into(),
            input_schema: object([("table", table_schema(&tables))], &["table"]),
        }
    }

    fn query(&self, tables: &[&str]) -> Tool {
        let cap = self.page_cap;
        Tool {
            name: "query".into(),
            description: format!(
                "Read rows of one allowed table (OData $select, $filter, $orderby, $expand). At most \
                 {cap} rows per call; pass the returned `cursor` to continue.{}",
                self.restrictions(tables)
            ),
            input_schema: object(
                [
                    ("table", table_schema(tables)),
                    (
                        "select",
                        json!({"type": "array", "items": {"type": "string"}, "description": "Columns to return."}),
                    ),
                    (
                        "filter",
                        json!({"type": "string", "description": "OData $filter expression."}),
                    ),
                    (
                        "orderby",
                        json!({"type": "string", "description": "OData $orderby, e.g. `createdon desc`."}),
                    ),
                    (
                        "expand",
                        json!({"type": "string", "description": "OData $expand of allowed lookups."}),
                    ),
                    (
                        "top",
                        json!({"type": "integer", "minimum": 1, "description": "Rows in all, over every page."}),
                    ),
                    (
                        "page_size",
                        json!({"type": "integer", "minimum": 1, "maximum": cap, "description": "Rows per call."}),
                    ),
                    (
                        "cursor",
                        json!({"type": "string", "description": "The `cursor` of the previous result: continues that query (the other arguments are ignored)."}),
                    ),
                ],
                &[],
            ),
        }
    }

    fn fetch_xml(&self, tables: &[&str]) -> Tool {
        Tool {
            name: "fetch_xml".into(),
            description: format!(
                "Run a FetchXML query on one allowed table; every table it names must allow reads.{}",
                self.restrictions(tables)
            ),
            input_schema: object(
                [
                    ("table", table_schema(tables)),
                    (
                        "fetch",
                        json!({"type": "string", "description": "The <fetch> document."}),
                    ),
                ],
                &["table", "fetch"],
            ),
        }
    }

    fn get(&self, tables: &[&str]) -> Tool {
        Tool {
            name: "get".into(),
            description: format!("Read one row by its id.{}", self.restrictions(tables)),
            input_schema: object(
                [
                    ("table", table_schema(tables)),
                    ("id", id_schema()),
                    (
                        "select",
                        json!({"type": "array", "items": {"type": "string"}}),
                    ),
                ],
                &["table", "id"],
            ),
        }
    }

    fn write(&self, name: &str, verb: Verb, tables: &[&str]) -> Tool {
        let (what, record) = match verb {
            Verb::Post => ("Create one row", true),
            Verb::Patch => ("Update one existing row", true),
            _ => ("Delete one row", false),
        };
        let mut props = vec![("table", table_schema(tables))];
        let mut required = vec!["table"];
        if verb != Verb::Post {
            props.push(("id", id_schema()));
            required.push("id");
        }
        if record {
            props.push((
                "record",
                json!({"type": "object", "description": "Column values (lookups as `nav@odata.bind`)."}),
            ));
            required.push("record");
        }
        Tool {
            name: name.into(),
            description: format!("{what} in an allowed table.{}", self.restrictions(tables)),
            input_schema: object(props, &required),
        }
    }
}

fn operation_tool(name: &str, is_action: bool, op: Option<&Operation>) -> Tool {
    let mut props = Map::new();
    let mut required = Vec::new();
    for (param, ty) in op.map_or(&[][..], |o| &o.parameters[..]) {
        props.insert(param.clone(), param_schema(ty));
        required.push(Value::String(param.clone()));
    }
    let kind = if is_action { "action" } else { "function" };
    Tool {
        name: name.into(),
        description: format!("Call the Dataverse {kind} {name} (allowed by this gateway)."),
        input_schema: json!({"type": "object", "properties": props, "required": required}),
    }
}

/// JSON Schema for an OData parameter type.
pub fn param_schema(ty: &str) -> Value {
    match ty {
        "Edm.Boolean" => json!({"type": "boolean"}),
        "Edm.Int16" | "Edm.Int32" | "Edm.Int64" | "Edm.Byte" => json!({"type": "integer"}),
        "Edm.Decimal" | "Edm.Double" | "Edm.Single" => json!({"type": "number"}),
        "Edm.Guid" => id_schema(),
        "Edm.String" | "Edm.DateTimeOffset" | "Edm.Date" => {
            json!({"type": "string", "description": ty})
        }
        other => json!({"description": other}),
    }
}

fn table_schema(tables: &[&str]) -> Value {
    json!({"type": "string", "enum": tables, "description": "Entity set name."})
}

fn id_schema() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn object<'k>(props: impl IntoIterator<Item = (&'k str, Value)>, required: &[&str]) -> Value {
    let props: Map<String, Value> = props.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    json!({"type": "object", "properties": props, "required": required})
}

/// Names MCP clients accept (letters, digits, `_`, `-`, `.`; 1 to 128).
pub fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
