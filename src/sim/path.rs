//! Parses the part of a Dataverse URL path after `/api/data/v9.2/` into a typed [`Target`].
//!
//! Supported shapes: `` (service document), `$metadata`, `$batch`, `WhoAmI`, `WhoAmI()`,
//! `RetrieveVersion()`; `<set>`, `<set>/Microsoft.Dynamics.CRM.{Create,Update,Upsert}Multiple`;
//! records `<set>(<guid>)`, `<set>(<key>=<guid>)` and alternate keys `<set>(col='text',col2=123)`,
//! each optionally followed by `/<column>`, `/<column>/$value` or `/<single-valued navigation>`;
//! and `EntityDefinitions...`, whose grammar is `definitions`'s. Anything else is
//! [`Target::NotFound`] naming the first segment the simulator does not serve. Names are
//! case-sensitive, as in Dataverse. Each segment is percent-decoded after splitting on `/`, so an
//! encoded `%2F` inside a key value stays part of the value.
//!
//! Pure: no I/O, no clock.

use super::definitions::{self, Definitions};
use super::form::decode;
use super::schema::{Lookup, Table, is_guid, table};

/// The namespace qualifying bound operations and metadata casts.
pub const NAMESPACE: &str = "Microsoft.Dynamics.CRM.";

/// How a single row is addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// The primary key, lowercased.
    Id(String),
    /// Alternate key columns and their (unquoted) values, in URL order.
    Columns(Vec<(String, String)>),
}

/// The collection-bound bulk actions `CreateMultiple`, `UpdateMultiple` and `UpsertMultiple`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bulk {
    Create,
    Update,
    Upsert,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    ServiceDocument,
    Metadata,
    Batch,
    WhoAmI,
    RetrieveVersion,
    Collection(&'static Table),
    Record(&'static Table, Key),
    /// `<set>(<key>)/<column>`, or its raw value (`/$value`) when `raw`.
    Property {
        table: &'static Table,
        key: Key,
        column: &'static str,
        raw: bool,
    },
    /// `<set>(<key>)/<nav>`: the row a lookup points at, in another table.
    Navigation(&'static Table, Key, &'static Lookup),
    Action(&'static Table, Bulk),
    Definitions(Definitions),
    /// The first segment the simulator does not know.
    NotFound(String),
}

/// A syntactically broken key, e.g. `contacts(foo`; Dataverse answers 400.
#[derive(Debug, PartialEq, Eq)]
pub struct BadKey(pub String);

pub fn parse(rest: &str) -> Result<Target, BadKey> {
    let segments: Vec<String> = rest.split('/').map(|s| decode(s, false)).collect();
    let (first, tail) = match segments.split_first() {
        Some((first, tail)) => (first.as_str(), tail),
        None => ("", &[][..]),
    };
    if first == "EntityDefinitions" || first.starts_with("EntityDefinitions(") {
        return definitions::parse_path(first, tail);
    }
    match table_of(first) {
        Some((table, None)) => return Ok(collection(table, tail)),
        Some((table, Some(inner))) => return Ok(record(table, parse_key(table, inner)?, tail)),
        None => {}
    }
    if let Some(extra) = tail.first() {
        let known = matches!(
            first,
            "$metadata" | "$batch" | "WhoAmI" | "WhoAmI()" | "RetrieveVersion()"
        );
        return Ok(Target::NotFound(if known {
            extra.clone()
        } else {
            first.to_string()
        }));
    }
    Ok(match first {
        "" => Target::ServiceDocument,
        "$metadata" => Target::Metadata,
        "$batch" => Target::Batch,
        "WhoAmI" | "WhoAmI()" => Target::WhoAmI,
        "RetrieveVersion" | "RetrieveVersion()" => Target::RetrieveVersion,
        segment => Target::NotFound(segment.to_string()),
    })
}

fn collection(table: &'static Table, tail: &[String]) -> Target {
    let Some((segment, rest)) = tail.split_first() else {
        return Target::Collection(table);
    };
    let bulk = match segment.strip_prefix(NAMESPACE) {
        Some("CreateMultiple") => Bulk::Create,
        Some("UpdateMultiple") => Bulk::Update,
        Some("UpsertMultiple") => Bulk::Upsert,
        _ => return Target::NotFound(segment.clone()),
    };
    match rest.first() {
        None => Target::Action(table, bulk),
        Some(extra) => Target::NotFound(extra.clone()),
    }
}

fn record(table: &'static Table, key: Key, tail: &[String]) -> Target {
    let Some((segment, rest)) = tail.split_first() else {
        return Target::Record(table, key);
    };
    let column = (segment == table.key)
        .then_some(table.key)
        .or_else(|| table.columns.iter().copied().find(|c| c == segment));
    match (column, table.lookup(segment), rest) {
        (Some(column), _, []) => Target::Property {
            table,
            key,
            column,
            raw: false,
        },
        (Some(column), _, [value]) if value == "$value" => Target::Property {
            table,
            key,
            column,
            raw: true,
        },
        (None, Some(lookup), []) => Target::Navigation(table, key, lookup),
        (Some(_), _, [extra, ..]) | (None, Some(_), [extra, ..]) => Target::NotFound(extra.clone()),
        (None, None, _) => Target::NotFound(segment.clone()),
    }
}

/// Splits `contacts(...)` into the table and the text between the parentheses.
fn table_of(segment: &str) -> Option<(&'static Table, Option<&str>)> {
    match segment.split_once('(') {
        None => table(segment).map(|t| (t, None)),
        Some((set, rest)) => {
            let t = table(set)?;
            Some((t, Some(rest.strip_suffix(')').unwrap_or(rest))))
        }
    }
    .filter(|(_, inner)| inner.is_none() || segment.ends_with(')'))
}

fn parse_key(table: &Table, inner: &str) -> Result<Key, BadKey> {
    let bad = || {
        BadKey(format!(
            "Bad Request - Error in query syntax: invalid key '{inner}'."
        ))
    };
    if is_guid(inner) {
        return Ok(Key::Id(inner.to_ascii_lowercase()));
    }
    let pairs = split_pairs(inner).ok_or_else(bad)?;
    if let [(column, value)] = pairs.as_slice()
        && column == table.key
    {
        return if is_guid(value) {
            Ok(Key::Id(value.to_ascii_lowercase()))
        } else {
            Err(bad())
        };
    }
    Ok(Key::Columns(pairs))
}

/// Parses `a='x',b=12` honouring `''` inside quotes. `None` when malformed or empty.
pub fn split_pairs(inner: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut rest = inner;
    loop {
        let (name, after) = rest.split_once('=')?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        let (value, after) = if let Some(quoted) = after.strip_prefix('\'') {
            take_quoted(quoted)?
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        if value.is_empty() {
            return None;
        }
        pairs.push((name.to_string(), value));
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None if after.trim().is_empty() => return Some(pairs),
            None => return None,
        }
    }
}

/// Reads a quoted literal after its opening quote: returns the value and the text after the
/// closing quote.
fn take_quoted(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\'' {
            value.push(c);
        } else if chars.peek().is_some_and(|(_, n)| *n == '\'') {
            value.push('\'');
            chars.next();
        } else {
            return Some((value, &s[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(set: &str) -> &'static Table {
        table(set).expect("table")
    }

    #[test]
    fn fixed_targets() {
        assert_eq!(parse(""), Ok(Target::ServiceDocument));
        assert_eq!(parse("$metadata"), Ok(Target::Metadata));
        assert_eq!(parse("WhoAmI"), Ok(Target::WhoAmI));
        assert_eq!(parse("WhoAmI()"), Ok(Target::WhoAmI));
        assert_eq!(parse("RetrieveVersion()"), Ok(Target::RetrieveVersion));
        assert_eq!(parse("$batch"), Ok(Target::Batch));
    }

    #[test]
    fn properties_navigation_and_actions() {
        let id = "c0000000-0000-4000-8000-000000000001";
        let key = || Key::Id(id.into());
        let property = |column, raw| Target::Property {
            table: t("contacts"),
            key: key(),
            column,
            raw,
        };
        assert_eq!(
            parse(&format!("contacts({id})/fullname")),
            Ok(property("fullname", false))
        );
        assert_eq!(
            parse(&format!("contacts({id})/contactid/$value")),
            Ok(property("contactid", true))
        );
        let nav = t("contacts")
            .lookup("parentcustomerid_account")
            .expect("nav");
        assert_eq!(
            parse(&format!("contacts({id})/parentcustomerid_account")),
            Ok(Target::Navigation(t("contacts"), key(), nav))
        );
        assert_eq!(
            parse("accounts/Microsoft.Dynamics.CRM.UpsertMultiple"),
            Ok(Target::Action(t("accounts"), Bulk::Upsert))
        );
    }

    #[test]
    fn collections_and_records() {
        assert_eq!(parse("contacts"), Ok(Target::Collection(t("contacts"))));
        let id = "C0000000-0000-4000-8000-000000000001";
        let want = Target::Record(t("contacts"), Key::Id(id.to_ascii_lowercase()));
        assert_eq!(parse(&format!("contacts({id})")), Ok(want));
        let want = Target::Record(t("contacts"), Key::Id(id.to_ascii_lowercase()));
        assert_eq!(parse(&format!("contacts(contactid={id})")), Ok(want));
    }

    #[test]
    fn alternate_keys_are_decoded_and_unquoted() {
        let got = parse("contacts(emailaddress1=%27o''brien%40x.com%27,lastname='A,B')");
        let pairs = vec![
            ("emailaddress1".to_string(), "o'brien@x.com".to_string()),
            ("lastname".to_string(), "A,B".to_string()),
        ];
        assert_eq!(got, Ok(Target::Record(t("contacts"), Key::Columns(pairs))));
    }

    #[test]
    fn malformed_keys_are_bad_requests() {
        for bad in [
            "contacts(nope)",
            "contacts(a=)",
            "contacts(a='x)",
            "contacts(contactid=12)",
            "contacts(=1)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_segments_are_named() {
        assert_eq!(parse("Account"), Ok(Target::NotFound("Account".into())));
        assert_eq!(
            parse("contacts(x"),
            Ok(Target::NotFound("contacts(x".into()))
        );
        let id = "c0000000-0000-4000-8000-000000000001";
        assert_eq!(
            parse(&format!("contacts({id})/nope")),
            Ok(Target::NotFound("nope".into()))
        );
        assert_eq!(
            parse(&format!("contacts({id})/fullname/x")),
            Ok(Target::NotFound("x".into()))
        );
        assert_eq!(
            parse("contacts/Microsoft.Dynamics.CRM.DeleteMultiple"),
            Ok(Target::NotFound(
                "Microsoft.Dynamics.CRM.DeleteMultiple".into()
            ))
        );
        assert_eq!(
            parse("EntityDefinitions(LogicalName='contact')/Keys"),
            Ok(Target::NotFound("Keys".into()))
        );
        assert_eq!(parse("nope/contacts"), Ok(Target::NotFound("nope".into())));
    }
}
