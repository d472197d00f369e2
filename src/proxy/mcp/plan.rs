//! A tool call's arguments → the Web API request it makes (pure).
//!
//! Invariant: this module only builds requests; it decides nothing. Every argument is checked
//! for shape (a malformed one is an [`ArgError`] naming it, answered as JSON-RPC invalid
//! params), then placed in the request exactly where the Web API expects it, percent-encoded,
//! so the classifier sees the same request a Web API client would send for the same intent.

use http::Method;
use http::header::{self, HeaderMap, HeaderValue};
use serde_json::{Map, Value};

use super::describe::Described;
use super::tools::Catalogue;

/// A malformed argument: `arg` is its name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument `{arg}`: {why}")]
pub struct ArgError {
    pub arg: String,
    pub why: String,
}

fn bad(arg: &str, why: impl Into<String>) -> ArgError {
    ArgError {
        arg: arg.into(),
        why: why.into(),
    }
}

/// One Web API request: `target` is the resource path and query after `/api/data/{version}/`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebCall {
    pub method: Method,
    pub target: String,
    pub body: Option<Value>,
    /// `Prefer: odata.maxpagesize=N` (queries).
    pub page_size: Option<u32>,
    /// `If-Match: *`: `update` changes an existing row, never creates one (no upsert).
    pub existing_only: bool,
}

impl WebCall {
    /// The body as sent (`application/json`), empty when there is none.
    pub fn body_bytes(&self) -> bytes::Bytes {
        match &self.body {
            Some(v) => bytes::Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            None => bytes::Bytes::new(),
        }
    }

    /// The headers the request carries besides the caller's `Authorization` and `Host`.
    pub fn headers(&self, body_len: usize) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(8);
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        h.insert("odata-version", HeaderValue::from_static("4.0"));
        h.insert("odata-maxversion", HeaderValue::from_static("4.0"));
        if body_len > 0 {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
        }
        if let Some(v) = self
            .page_size
            .and_then(|n| HeaderValue::from_str(&format!("odata.maxpagesize={n}")).ok())
        {
            h.insert("prefer", v);
        }
        if self.existing_only {
            h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        }
        h
    }

    /// `(path, query)` of the target, as the classifier takes them.
    pub fn path_and_query(&self) -> (&str, Option<&str>) {
        match self.target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (&self.target, None),
        }
    }
}

/// What a query still owes the agent after this page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page_size: u32,
    /// Rows still to return in all (`top`), if the agent set a total.
    pub remaining: Option<u64>,
}

/// What a tool call does.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Answered from the allowlist and metadata, labelled by `EntityDefinitions` requests.
    Described(Described),
    /// A query page (a cursor continues it).
    Query(WebCall, Paging, String),
    /// Any other single request.
    Call(WebCall),
    /// `query` with a cursor: verified and turned into a request by the caller.
    Continue(String, Option<u32>),
}

/// Plans one call of `tool` with `args` (a JSON object).
pub fn plan(cat: &Catalogue<'_>, tool: &str, args: &Map<String, Value>) -> Result<Plan, PlanError> {
    Ok(match tool {
        "list_tables" => Plan::Described(cat.list_tables()),
        "describe_table" => {
            let table = table(args)?;
            match cat.describe(table) {
                Ok(v) => Plan::Described(v),
                Err(reason) => return Err(PlanError::Refused(reason)),
            }
        }
        "query" => query(cat, args)?,
        "fetch_xml" => {
            let table = table(args)?;
            let fetch = string(args, "fetch")?.ok_or_else(|| bad("fetch", "required"))?;
            Plan::Call(get(format!("{table}?fetchXml={}", encode(fetch))))
        }
        "get" => {
            let (table, id) = (table(args)?, id(args)?);
            let mut target = format!("{table}({id})");
            if let Some(s) = select(args)? {
                target.push_str("?$select=");
                target.push_str(&encode(&s));
            }
            Plan::Call(get(target))
        }
        "create" => Plan::Call(WebCall {
            method: Method::POST,
            target: table(args)?.to_string(),
            body: Some(record(args)?),
            page_size: None,
            existing_only: false,
        }),
        "update" => Plan::Call(WebCall {
            method: Method::PATCH,
            target: format!("{}({})", table(args)?, id(args)?),
            body: Some(record(args)?),
            page_size: None,
            existing_only: true,
        }),
        "delete" => Plan::Call(WebCall {
            method: Method::DELETE,
            target: format!("{}({})", table(args)?, id(args)?),
            body: None,
            page_size: None,
            existing_only: false,
        }),
        name => operation(cat, name, args)?,
    })
}

/// Why a call was not planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Arg(#[from] ArgError),
    /// No such tool for this caller.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    /// Refused by the allowlist without a request (describe_table of an unlisted table).
    #[error("{0}")]
    Refused(String),
}

fn get(target: String) -> WebCall {
    WebCall {
        method: Method::GET,
        target,
        body: None,
        page_size: None,
        existing_only: false,
    }
}

fn query(cat: &Catalogue<'_>, args: &Map<String, Value>) -> Result<Plan, PlanError> {
    let page_size = match integer(args, "page_size")? {
        None => None,
        Some(n) if (1..=u64::from(cat.page_cap)).contains(&n) => Some(n as u32),
        Some(_) => return Err(bad("page_size", format!("must be 1 to {}", cat.page_cap)).into()),
    };
    if let Some(cursor) = string(args, "cursor")? {
        return Ok(Plan::Continue(cursor.to_string(), page_size));
    }
    let table = table(args)?;
    let page_size = page_size.unwrap_or(cat.page_cap);
    let top = match integer(args, "top")? {
        Some(0) => return Err(bad("top", "must be at least 1").into()),
        t => t,
    };
    let mut options = Vec::new();
    if let Some(s) = select(args)? {
        options.push(("$select", s));
    }
    for (arg, option) in [
        ("filter", "$filter"),
        ("orderby", "$orderby"),
        ("expand", "$expand"),
    ] {
        if let Some(v) = string(args, arg)? {
            options.push((option, v.to_string()));
        }
    }
    // A total within one page is Dataverse's own $top; a larger one is counted by the cursor.
    let remaining = match top {
        Some(t) if t <= u64::from(page_size) => {
            options.push(("$top", t.to_string()));
            None
        }
        t => t,
    };
    let mut target = table.to_string();
    for (i, (k, v)) in options.iter().enumerate() {
        target.push(if i == 0 { '?' } else { '&' });
        target.push_str(k);
        target.push('=');
        target.push_str(&encode(v));
    }
    let call = WebCall {
        page_size: Some(page_size),
        ..get(target)
    };
    Ok(Plan::Query(
        call,
        Paging {
            page_size,
            remaining,
        },
        table.to_string(),
    ))
}

fn operation(
    cat: &Catalogue<'_>,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Plan, PlanError> {
    let Some((name, is_action, op)) = cat.operations().into_iter().find(|(n, ..)| *n == name)
    else {
        return Err(PlanError::UnknownTool(name.to_string()));
    };
    let params = op.map_or(&[][..], |o| &o.parameters[..]);
    for key in args.keys() {
        if !params.iter().any(|(p, _)| p == key) {
            return Err(bad(key, format!("{name} has no such parameter")).into());
        }
    }
    if is_action {
        return Ok(Plan::Call(WebCall {
            method: Method::POST,
            target: name.to_string(),
            body: Some(Value::Object(args.clone())),
            page_size: None,
            existing_only: false,
        }));
    }
    let mut aliases = Vec::new();
    let mut values = Vec::new();
    for (i, (p, ty)) in params.iter().enumerate() {
        let v = args.get(p).ok_or_else(|| bad(p, "required"))?;
        aliases.push(format!("{p}=@p{i}"));
        values.push(format!("@p{i}={}", encode(&literal(p, ty, v)?)));
    }
    let mut target = format!("{name}({})", aliases.join(","));
    if !values.is_empty() {
        target.push('?');
        target.push_str(&values.join("&"));
    }
    Ok(Plan::Call(get(target)))
}

/// An OData literal for a function parameter.
fn literal(name: &str, ty: &str, v: &Value) -> Result<String, ArgError> {
    match (ty, v) {
        ("Edm.Guid", Value::String(s)) if is_guid(s) => Ok(s.clone()),
        ("Edm.Guid", _) => Err(bad(name, "must be a GUID")),
        (_, Value::String(s)) => Ok(format!("'{}'", s.replace('\'', "''"))),
        (_, Value::Number(n)) => Ok(n.to_string()),
        (_, Value::Bool(b)) => Ok(b.to_string()),
        _ => Err(bad(name, format!("must be a {ty} value"))),
    }
}

fn table(args: &Map<String, Value>) -> Result<&str, ArgError> {
    let t = string(args, "table")?.ok_or_else(|| bad("table", "required"))?;
    let ok = !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then_some(t)
        .ok_or_else(|| bad("table", "must be an entity set name (letters, digits, `_`)"))
}

fn id(args: &Map<String, Value>) -> Result<&str, ArgError> {
    let id = string(args, "id")?.ok_or_else(|| bad("id", "required"))?;
    is_guid(id)
        .then_some(id)
        .ok_or_else(|| bad("id", "must be a GUID"))
}

fn record(args: &Map<String, Value>) -> Result<Value, ArgError> {
    match args.get("record") {
        Some(Value::Object(m)) => Ok(Value::Object(m.clone())),
        Some(_) => Err(bad("record", "must be an object of column values")),
        None => Err(bad("record", "required")),
    }
}

fn select(args: &Map<String, Value>) -> Result<Option<String>, ArgError> {
    match args.get("select") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(cols)) if !cols.is_empty() => {
            let cols: Option<Vec<&str>> = cols.iter().map(Value::as_str).collect();
            cols.map(|c| Some(c.join(",")))
                .ok_or_else(|| bad("select", "must be a list of column names"))
        }
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(bad("select", "must be a non-empty list of column names")),
    }
}

fn string<'a>(args: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ArgError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(name, "must be a string")),
    }
}

fn integer(args: &Map<String, Value>, name: &str) -> Result<Option<u64>, ArgError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(name, "must be a positive integer")),
    }
}

pub fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Percent-encodes a query value: everything but RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}
