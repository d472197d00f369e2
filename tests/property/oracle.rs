//! The oracle: what a generated request touches, recorded by the generator as it builds the
//! request (never computed by the classifier), and the judgement of an allowlist against it.
//!
//! Semantics encoded here (the issue's, independently of the classifier):
//! - a table is read (GET) whenever any of its data can come back or be probed: rows returned,
//!   a navigation passed through, a lookup path, a lambda, `$expand`, a fetchXml link-entity, a
//!   bind target, a `$ref`, and a lookup's `FormattedValue` annotation (the target's primary
//!   name column);
//! - a column is needed when it is selected, filtered, ordered, written, used as an alternate
//!   key, joined on, bound through an alias, or navigated through (a single-valued navigation
//!   observes its lookup column `_x_value` on the source table); the primary key never is (the
//!   row is addressable by it and returns it anyway);
//! - a read of every column of a column-restricted table is allowed only as the request's main
//!   read, where the gateway adds `$select` (fetchXml has no main read);
//! - a verb-tunnelling header is always refused.

use dataverse_gateway::config::{Policy, Verb};
use http::Method;

use crate::schema::Schema;

/// The columns of a read that come back in the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned {
    Columns(Vec<String>),
    All,
}

#[derive(Debug, Clone)]
pub struct Need {
    pub table: usize,
    pub verb: Verb,
    pub columns: Vec<String>,
    /// Returns whole rows of the table.
    pub all_columns: bool,
    /// The request's own rows: where the gateway adds `$select` for a column-restricted table.
    pub main_read: bool,
    /// An `EntityDefinitions` read: only the table must be allowlisted.
    pub definition: bool,
    /// Rows of the table come back with these columns (lookups there carry annotations).
    pub returned: Option<Returned>,
}

impl Need {
    pub fn new(table: usize, verb: Verb, columns: Vec<String>) -> Need {
        Need {
            table,
            verb,
            columns,
            all_columns: false,
            main_read: false,
            definition: false,
            returned: None,
        }
    }
}

/// One HTTP request with what it touches.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub body: Option<String>,
    pub headers: Vec<(&'static str, String)>,
    pub needs: Vec<Need>,
    /// In a change set, refers to the row the previous call created: `$REF` in the path or
    /// body stands for that call's Content-ID.
    pub refers_back: bool,
    /// The table a POST creates a row in.
    pub creates: Option<usize>,
    /// `Prefer: odata.include-annotations` asks for `FormattedValue` (or `*`).
    pub annotations: bool,
    /// Must be refused whatever the allowlist says (why).
    pub refused: Option<&'static str>,
    /// The issue lets the gateway refuse this shape instead of classifying it (no over-denial
    /// check), e.g. `$ref` reads with query options.
    pub may_refuse: bool,
    /// A PATCH of a row addressed by its key without the agent's own `If-Match`: the gateway
    /// must add `If-Match: *` when the table does not allow POST.
    pub upsert: Option<usize>,
    /// Unbound functions it calls (each must be in the policy's `functions`).
    pub functions: Vec<String>,
}

impl Call {
    pub fn new(method: Method, path: String) -> Call {
        Call {
            method,
            path,
            query: None,
            body: None,
            headers: vec![],
            needs: vec![],
            refers_back: false,
            creates: None,
            annotations: false,
            refused: None,
            may_refuse: false,
            upsert: None,
            functions: vec![],
        }
    }

    pub fn main_read(&self) -> Option<&Need> {
        self.needs.iter().find(|n| n.main_read)
    }

    pub fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

/// A single request, or several sent as one `$batch`.
#[derive(Debug, Clone)]
pub struct Case {
    pub calls: Vec<Call>,
    /// The `$batch` body, when the calls are sent as one.
    pub batch: Option<String>,
    /// The gateway has not loaded the org's metadata.
    pub no_metadata: bool,
}

/// The reads a `FormattedValue` annotation adds for `need`: each lookup column that comes back
/// shows its target row's primary name. With `policy`, a main read without `$select` returns
/// the listed columns only (the gateway adds `$select`).
pub fn annotation_needs(s: &Schema, need: &Need, policy: Option<&Policy>) -> Vec<Need> {
    let table = &s.tables[need.table];
    let returned: Vec<String> = match &need.returned {
        None => return vec![],
        Some(Returned::Columns(c)) => c.clone(),
        Some(Returned::All) => {
            let listed = policy
                .and_then(|p| p.tables.get(&table.set))
                .and_then(|r| r.columns.clone());
            match listed {
                Some(l) if need.main_read => l,
                _ => table.columns.iter().map(|c| c.name.clone()).collect(),
            }
        }
    };
    let mut out = Vec::new();
    for col in returned {
        for nav in table.singles() {
            if nav.lookup.as_deref() == Some(col.as_str()) {
                let target = &s.tables[nav.target];
                out.push(Need::new(
                    nav.target,
                    Verb::Get,
                    vec![target.primary_name.clone()],
                ));
            }
        }
    }
    out
}

/// Every need of a call, with the annotation reads when `annotated`.
pub fn call_needs(s: &Schema, call: &Call, policy: Option<&Policy>, annotated: bool) -> Vec<Need> {
    let mut all = call.needs.clone();
    if annotated && call.annotations {
        for n in &call.needs {
            all.extend(annotation_needs(s, n, policy));
        }
    }
    all
}

/// Whether the allowlist grants what the oracle says; `Err` names the first thing it does not.
pub fn judge(s: &Schema, policy: &Policy, needs: &[Need]) -> Result<(), String> {
    for n in needs {
        let set = &s.tables[n.table].set;
        let rule = policy
            .tables
            .get(set)
            .ok_or_else(|| format!("{} on `{set}`: not allowlisted", n.verb.as_str()))?;
        if n.definition {
            continue;
        }
        if !rule.allows(n.verb) {
            return Err(format!("{} on `{set}`: verb not allowed", n.verb.as_str()));
        }
        if let Some(cols) = &rule.columns {
            if let Some(c) = n.columns.iter().find(|c| !cols.contains(c)) {
                return Err(format!("column `{c}` of `{set}` is not listed"));
            }
            if n.all_columns && !n.main_read {
                return Err(format!("every column of `{set}` is read (no $select)"));
            }
        }
    }
    Ok(())
}

pub fn column_list_applies(s: &Schema, policy: &Policy, needs: &[Need]) -> bool {
    needs.iter().any(|n| {
        policy
            .tables
            .get(&s.tables[n.table].set)
            .is_some_and(|r| r.columns.is_some())
    })
}
