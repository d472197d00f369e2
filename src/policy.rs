//! The allowlist decision: default deny.
//!
//! Pure: request parts in, [`Decision`] out. Invariants (each pinned by a test below):
//! - a request is allowed only when every table or operation it names is allowlisted for the
//!   verb it implies; anything the parser does not understand is denied;
//! - a column-restricted table is read only through allowed columns (`$select` is added when
//!   absent) and is never written through this version (bodies are not inspected yet);
//! - PATCH on a table without POST carries `If-Match: *`, so the upsert cannot create a row.

use std::fmt;

use http::{HeaderMap, Method};

use crate::config::{Policy, TableRule, Verb};
use crate::odata::{self, KeySpec, ParseError, Query, ResourcePath};

/// What a request touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Table { set: String, verb: Verb },
    Function { name: String },
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Access::Table { set, verb } => write!(f, "{verb} {set}"),
            Access::Function { name } => write!(f, "function {name}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The allowlist does not permit it, or it is not understood: 403.
    Policy,
    /// Malformed or ambiguous: 400.
    Malformed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `None` when allowed.
    pub denial: Option<Denial>,
    pub access: Vec<Access>,
    /// The rule that allowed the request, or why it was denied: one sentence.
    pub reason: String,
    /// `$select` to append because the table has a column list and the request had none.
    pub add_select: Option<String>,
    /// Send `If-Match: *` (PATCH on a table without POST).
    pub if_match_star: bool,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.denial.is_none()
    }

    /// A 400 decision for a reason found outside the URL (for example a refused header).
    pub fn malformed(reason: impl Into<String>) -> Decision {
        Decision::deny(Denial::Malformed, vec![], reason)
    }

    fn deny(kind: Denial, access: Vec<Access>, reason: impl Into<String>) -> Decision {
        Decision {
            denial: Some(kind),
            access,
            reason: reason.into(),
            add_select: None,
            if_match_star: false,
        }
    }

    fn from_parse_error(e: ParseError, access: Vec<Access>) -> Decision {
        match e {
            ParseError::Malformed(m) => Decision::deny(Denial::Malformed, access, m),
            ParseError::NotUnderstood(m) => Decision::deny(Denial::Policy, access, m),
        }
    }
}

/// Decides on one request. `path` is the resource path after `/api/data/{version}/`, raw.
pub fn decide(
    policy: &Policy,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Decision {
    let resource = match odata::parse_path(path) {
        Ok(r) => r,
        Err(e) => return Decision::from_parse_error(e, vec![]),
    };
    let (name, key, count) = match resource {
        ResourcePath::Named { name, key, count } => (name, key, count),
        ResourcePath::Metadata => {
            return Decision::deny(
                Denial::Policy,
                vec![],
                "$metadata is not served by this version",
            );
        }
        ResourcePath::Batch => {
            return Decision::deny(
                Denial::Policy,
                vec![],
                "$batch is not inspected by this version, so it is denied",
            );
        }
    };
    let query = match odata::parse_query(query) {
        Ok(q) => q,
        Err(e) => return Decision::from_parse_error(e, vec![]),
    };
    if let Some(rule) = policy.tables.get(&name) {
        return table(&name, rule, method, key.as_ref(), count, &query, headers);
    }
    if policy.functions.contains(&name) {
        return function(&name, method, key.as_ref(), count);
    }
    if policy.actions.contains(&name) {
        let access = vec![Access::Function { name: name.clone() }];
        return Decision::deny(
            Denial::Policy,
            access,
            format!("action `{name}`: action bodies are not inspected by this version"),
        );
    }
    let verb = implied_verb(method, key.is_some(), count).unwrap_or(Verb::Get);
    let access = vec![Access::Table {
        set: name.clone(),
        verb,
    }];
    Decision::deny(
        Denial::Policy,
        access,
        format!("`{name}` is not in this tenant's allowlist"),
    )
}

fn implied_verb(method: &Method, has_key: bool, count: bool) -> Option<Verb> {
    Some(match (method.as_str(), has_key, count) {
        ("GET" | "HEAD", _, _) => Verb::Get,
        ("POST", false, false) => Verb::Post,
        ("PATCH", true, false) => Verb::Patch,
        ("DELETE", true, false) => Verb::Delete,
        ("PUT", true, false) => Verb::Put,
        _ => return None,
    })
}

fn table(
    set: &str,
    rule: &TableRule,
    method: &Method,
    key: Option<&KeySpec>,
    count: bool,
    query: &Query,
    headers: &HeaderMap,
) -> Decision {
    if matches!(key, Some(KeySpec::Empty)) {
        return Decision::deny(
            Denial::Malformed,
            vec![],
            format!("`{set}()` has an empty key"),
        );
    }
    let Some(verb) = implied_verb(method, key.is_some(), count) else {
        let msg = format!("{method} is not a valid operation on `{set}` in this form");
        return Decision::deny(Denial::Policy, vec![], msg);
    };
    let access = vec![Access::Table {
        set: set.to_string(),
        verb,
    }];
    if verb == Verb::Put {
        let msg = format!(
            "PUT on `{set}` writes a single property; property paths are not inspected by this version"
        );
        return Decision::deny(Denial::Policy, access, msg);
    }
    if !rule.allows(verb) {
        let allowed: Vec<&str> = rule.verbs.iter().map(|v| v.as_str()).collect();
        let msg = format!(
            "{verb} on `{set}` is not allowed (allowed: {})",
            list_or_none(&allowed)
        );
        return Decision::deny(Denial::Policy, access, msg);
    }
    let mut decision = Decision {
        denial: None,
        access: access.clone(),
        reason: format!("allow.{set} permits {verb}"),
        add_select: None,
        if_match_star: false,
    };
    if let Err(reason) = columns(set, rule, verb, query, &mut decision) {
        return Decision::from_parse_error(reason, access);
    }
    if verb == Verb::Patch && !rule.allows(Verb::Post) {
        if header_is_star(headers, http::header::IF_NONE_MATCH) {
            let msg =
                format!("PATCH with If-None-Match: * creates a row in `{set}`, which needs POST");
            return Decision::deny(Denial::Policy, access, msg);
        }
        decision.if_match_star = !headers.contains_key(http::header::IF_MATCH);
    }
    decision
}

/// Checks every column the query reads; fills `add_select` for column-restricted reads.
fn columns(
    set: &str,
    rule: &TableRule,
    verb: Verb,
    query: &Query,
    d: &mut Decision,
) -> Result<(), ParseError> {
    let mut read = query.select()?.unwrap_or_default();
    let selected = !read.is_empty();
    if let Some(f) = query.get("$filter") {
        read.extend(odata::columns_in_filter(f)?);
    }
    if let Some(o) = query.get("$orderby") {
        read.extend(odata::columns_in_orderby(o)?);
    }
    let Some(allowed) = &rule.columns else {
        return Ok(());
    };
    if matches!(verb, Verb::Post | Verb::Patch | Verb::Put) {
        return Err(ParseError::NotUnderstood(format!(
            "`{set}` has a column list and write bodies are not inspected by this version"
        )));
    }
    if let Some(bad) = read.iter().find(|c| !allowed.contains(c)) {
        return Err(ParseError::NotUnderstood(format!(
            "column `{bad}` of `{set}` is not in its column list"
        )));
    }
    if !selected && verb == Verb::Get {
        d.add_select = Some(allowed.join(","));
    }
    Ok(())
}

fn function(name: &str, method: &Method, key: Option<&KeySpec>, count: bool) -> Decision {
    let access = vec![Access::Function {
        name: name.to_string(),
    }];
    if method != Method::GET && method != Method::HEAD {
        return Decision::deny(
            Denial::Policy,
            access,
            format!("function `{name}` is called with GET, not {method}"),
        );
    }
    if count || matches!(key, Some(KeySpec::Guid(_))) {
        return Decision::deny(
            Denial::Malformed,
            access,
            format!("`{name}` is a function: call it as {name}()"),
        );
    }
    Decision {
        denial: None,
        access,
        reason: format!("functions lists {name}"),
        add_select: None,
        if_match_star: false,
    }
}

fn header_is_star(headers: &HeaderMap, name: http::HeaderName) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|p| p.trim() == "*"))
    })
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests;
