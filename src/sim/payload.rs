//! Turns a write body (POST/PATCH JSON) into the columns to store, the way Dataverse validates it.
//!
//! Accepted members: declared columns; the primary key (a GUID); `<nav>@odata.bind` for the
//! table's single-valued lookups, pointing at `<set>(<guid>)` in relative, `/`-rooted or absolute
//! form (it sets the lookup's `_x_value` column); other annotations (`@odata.type`, ...) are
//! ignored. Anything else is rejected with the error Dataverse sends.
//!
//! Pure: no I/O, no clock.

use serde_json::{Map, Value};

use super::response::Fault;
use super::schema::{Table, is_guid};

/// A rejected payload: Dataverse's error code and message (always HTTP 400).
#[derive(Debug, PartialEq, Eq)]
pub struct BadPayload {
    pub code: &'static str,
    pub message: String,
}

impl From<BadPayload> for Fault {
    fn from(e: BadPayload) -> Self {
        Fault {
            status: http::StatusCode::BAD_REQUEST,
            code: e.code,
            message: e.message,
        }
    }
}

/// The columns to write and, when the body names it, the primary key.
#[derive(Debug, Default, PartialEq)]
pub struct Payload {
    pub fields: Map<String, Value>,
    pub id: Option<String>,
}

/// The `0x80040333` rejection of a payload, with `detail` after Dataverse's standard prefix.
pub fn malformed(table: &Table, detail: String) -> BadPayload {
    BadPayload {
        code: "0x80040333",
        message: format!(
            "Error identified in Payload provided by the user for Entity :'{}'. {detail}",
            table.set
        ),
    }
}

pub fn parse(table: &Table, body: &[u8]) -> Result<Payload, BadPayload> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => parse_object(table, object),
        Ok(_) => Err(malformed(
            table,
            "The payload must be a JSON object.".into(),
        )),
        Err(e) => Err(malformed(table, format!("Invalid JSON: {e}."))),
    }
}

/// Like [`parse`], for a body already read as a JSON object (e.g. one item of `Targets`).
pub fn parse_object(table: &Table, object: Map<String, Value>) -> Result<Payload, BadPayload> {
    let mut payload = Payload::default();
    for (name, value) in object {
        if let Some(nav) = name.strip_suffix("@odata.bind") {
            let (column, id) = bind(table, nav, &value)?;
            payload.fields.insert(column.into(), Value::String(id));
        } else if name.contains('@') {
            continue;
        } else if name == table.key {
            match value.as_str().filter(|v| is_guid(v)) {
                Some(id) => payload.id = Some(id.to_ascii_lowercase()),
                None => return Err(malformed(table, format!("'{name}' must be a GUID."))),
            }
        } else if table.has_column(&name) {
            payload.fields.insert(name, value);
        } else {
            return Err(undeclared(table, &name));
        }
    }
    Ok(payload)
}

fn undeclared(table: &Table, name: &str) -> BadPayload {
    BadPayload {
        code: "0x80060888",
        message: format!(
            "The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{}'. Make sure to only use \
             property names that are defined by the type.",
            table.logical
        ),
    }
}

/// Resolves `nav@odata.bind: "<set>(<guid>)"` to the lookup column and the target id.
fn bind(table: &Table, nav: &str, value: &Value) -> Result<(&'static str, String), BadPayload> {
    let lookup = table.lookup(nav).ok_or_else(|| undeclared(table, nav))?;
    let bad = || BadPayload {
        code: "0x80060888",
        message: format!(
            "The value of '{nav}@odata.bind' is not a valid reference to an entity in '{}'.",
            lookup.target_set
        ),
    };
    let url = value.as_str().ok_or_else(bad)?;
    let last = url.rsplit('/').next().unwrap_or(url);
    let inner = last
        .strip_prefix(lookup.target_set)
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.strip_suffix(')'));
    match inner {
        Some(id) if is_guid(id) => Ok((lookup.column, id.to_ascii_lowercase())),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::schema::table;

    const ACCOUNT: &str = "a0000000-0000-4000-8000-000000000001";

    fn contacts() -> &'static Table {
        table("contacts").expect("table")
    }

    #[test]
    fn columns_key_and_binds() {
        let body = format!(
            r#"{{"firstname":"Ann","contactid":"C0000000-0000-4000-8000-0000000000FF",
                "parentcustomerid_account@odata.bind":"https://org/api/data/v9.2/accounts({ACCOUNT})",
                "@odata.type":"Microsoft.Dynamics.CRM.contact"}}"#
        );
        let payload = parse(contacts(), body.as_bytes()).expect("payload");
        assert_eq!(
            payload.id.as_deref(),
            Some("c0000000-0000-4000-8000-0000000000ff")
        );
        assert_eq!(payload.fields["firstname"], "Ann");
        assert_eq!(payload.fields["_parentcustomerid_value"], ACCOUNT);
        assert_eq!(payload.fields.len(), 2);
        let relative =
            format!(r#"{{"parentcustomerid_account@odata.bind":"/accounts({ACCOUNT})"}}"#);
        assert!(parse(contacts(), relative.as_bytes()).is_ok());
    }

    #[test]
    fn rejections_carry_dataverse_codes() {
        let code = |body: &str| {
            parse(contacts(), body.as_bytes())
                .map(|_| ())
                .map_err(|e| e.code)
        };
        assert_eq!(code("{not json"), Err("0x80040333"));
        assert_eq!(code("[1]"), Err("0x80040333"));
        assert_eq!(code(r#"{"contactid":"nope"}"#), Err("0x80040333"));
        assert_eq!(code(r#"{"bogus":1}"#), Err("0x80060888"));
        assert_eq!(
            code(r#"{"nope@odata.bind":"/accounts(x)"}"#),
            Err("0x80060888")
        );
        let wrong_set =
            format!(r#"{{"parentcustomerid_account@odata.bind":"/contacts({ACCOUNT})"}}"#);
        assert_eq!(code(&wrong_set), Err("0x80060888"));
        assert_eq!(code(r#"{"lastname":"Lee"}"#), Ok(()));
    }
}
