//! `EntityDefinitions`: Dataverse's metadata API for the simulated tables only.
//!
//! Serves `GET EntityDefinitions` (`{"@odata.context","value":[...]}`), `EntityDefinitions(<key>)`
//! (one `EntityMetadata` object), `.../Attributes[/<cast>]` and `.../Attributes(<key>)[/<cast>]`
//! (see `attributes`). Options: `$select` keeps the named properties plus `MetadataId` and
//! `@odata.type` (unknown names are ignored, where Dataverse answers 400); a simple `$filter`
//! (see `filter`, e.g. `LogicalName eq 'contact'`), or several joined by `or`
//! (`LogicalName eq 'a' or LogicalName eq 'b'`), is applied to collections and other filters are
//! ignored; `$expand` naming `OptionSet` adds option sets to `Status` attributes (projected by
//! its own `$select`), and naming `GlobalOptionSet` adds `null` to them (the simulated option
//! sets are all local), both kept whatever the outer `$select` says. Every table is
//! described whatever the security role allows: metadata is not data. Unknown tables and
//! attributes answer 404 with Dataverse's error shape.
//!
//! Synchronous and read-only.

use http::{Response, StatusCode};
use serde_json::{Map, Value, json};

use super::attributes::{self, label};
use super::filter;
use super::path::{BadKey, NAMESPACE, Target, split_pairs};
use super::records::Call;
use super::response::{SimBody, dataverse_error, odata_json};
use super::schema::{TABLES, Table, is_guid, seeded_id, table_by_logical};

type Entity = Map<String, Value>;

/// How an `EntityDefinitions` or `Attributes` item is addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaKey {
    /// `MetadataId`, lowercased.
    Id(String),
    LogicalName(String),
}

/// A path under `EntityDefinitions`. `cast` is the derived attribute type named by a trailing
/// `Microsoft.Dynamics.CRM.<X>AttributeMetadata` segment, without the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Definitions {
    Entities,
    Entity(MetaKey),
    Attributes(MetaKey, Option<String>),
    Attribute(MetaKey, MetaKey, Option<String>),
}

/// `EntityDefinitions[(<key>)][/Attributes[(<key>)]][/<cast>]`.
pub fn parse_path(first: &str, tail: &[String]) -> Result<Target, BadKey> {
    let entity = match first.strip_prefix("EntityDefinitions") {
        Some("") => None,
        Some(keyed) => Some(meta_key(keyed)?),
        None => return Ok(Target::NotFound(first.to_string())),
    };
    let (entity, tail) = match (entity, tail) {
        (None, []) => return Ok(Target::Definitions(Definitions::Entities)),
        (None, [segment, ..]) => return Ok(Target::NotFound(segment.clone())),
        (Some(entity), []) => return Ok(Target::Definitions(Definitions::Entity(entity))),
        (Some(entity), [segment, rest @ ..])
            if segment == "Attributes" || segment.starts_with("Attributes(") =>
        {
            (entity, (segment.as_str(), rest))
        }
        (Some(_), [segment, ..]) => return Ok(Target::NotFound(segment.clone())),
    };
    let (segment, rest) = tail;
    let attribute = match &segment["Attributes".len()..] {
        "" => None,
        keyed => Some(meta_key(keyed)?),
    };
    let cast = match rest {
        [] => None,
        [cast] => match cast.strip_prefix(NAMESPACE) {
            Some(name) if name.ends_with("AttributeMetadata") => Some(name.to_string()),
            _ => return Ok(Target::NotFound(cast.clone())),
        },
        [_, extra, ..] => return Ok(Target::NotFound(extra.clone())),
    };
    Ok(Target::Definitions(match attribute {
        None => Definitions::Attributes(entity, cast),
        Some(attribute) => Definitions::Attribute(entity, attribute, cast),
    }))
}

/// `(<guid>)`, `(MetadataId=<guid>)` or `(LogicalName='x')`.
fn meta_key(keyed: &str) -> Result<MetaKey, BadKey> {
    let bad = || {
        BadKey(format!(
            "Bad Request - Error in query syntax: invalid key '{keyed}'."
        ))
    };
    let inner = keyed
        .strip_prefix('(')
        .and_then(|k| k.strip_suffix(')'))
        .ok_or_else(bad)?;
    if is_guid(inner) {
        return Ok(MetaKey::Id(inner.to_ascii_lowercase()));
    }
    match split_pairs(inner).ok_or_else(bad)?.as_slice() {
        [(name, value)] if name == "LogicalName" => Ok(MetaKey::LogicalName(value.clone())),
        [(name, value)] if name == "MetadataId" && is_guid(value) => {
            Ok(MetaKey::Id(value.to_ascii_lowercase()))
        }
        _ => Err(bad()),
    }
}

pub fn serve(call: &Call, path: &Definitions) -> Response<SimBody> {
    let view = View::of(call);
    match path {
        Definitions::Entities => {
            let all = TABLES.iter().map(entity).collect();
            view.collection(call, "EntityDefinitions".into(), all)
        }
        Definitions::Entity(key) => match find_table(key) {
            Some(t) => view.single(call, "EntityDefinitions".into(), entity(t)),
            None => table_not_found(key),
        },
        Definitions::Attributes(key, cast) => {
            let Some(t) = find_table(key) else {
                return table_not_found(key);
            };
            let all = attributes::of(t, view.options)
                .into_iter()
                .filter(|a| is_cast(a, cast.as_deref()))
                .collect();
            view.collection(call, attributes_fragment(key, cast.as_deref()), all)
        }
        Definitions::Attribute(key, attribute, cast) => {
            let Some(t) = find_table(key) else {
                return table_not_found(key);
            };
            let found = attributes::of(t, view.options)
                .into_iter()
                .find(|a| is_key(a, attribute, "LogicalName") && is_cast(a, cast.as_deref()));
            match found {
                Some(a) => view.single(call, attributes_fragment(key, cast.as_deref()), a),
                None => attribute_not_found(t, attribute),
            }
        }
    }
}

/// How the query options shape the answer.
struct View {
    select: Option<Vec<String>>,
    /// Alternatives (`or`), each a conjunction of conditions.
    conditions: Option<Vec<Vec<filter::Condition>>>,
    /// `$expand` asks for option sets.
    options: bool,
    /// Expanded navigation properties, with their own `$select` when given.
    expanded: Vec<(String, Option<Vec<String>>)>,
}

/// `a or b or ...`, each a filter `filter` evaluates; `None` when any is not.
fn alternatives(text: &str) -> Option<Vec<Vec<filter::Condition>>> {
    text.split(" or ").map(filter::parse).collect()
}

/// `OptionSet($select=Options),GlobalOptionSet` -> names with their `$select`.
fn expansions(expand: &str) -> Vec<(String, Option<Vec<String>>)> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in expand
        .char_indices()
        .chain(std::iter::once((expand.len(), ',')))
    {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                let item = expand[start..i].trim();
                start = i + 1;
                let (name, inner) = match item.split_once('(') {
                    Some((n, rest)) => (n, rest.strip_suffix(')').unwrap_or(rest)),
                    None => (item, ""),
                };
                let select = inner
                    .split(';')
                    .find_map(|o| o.trim().strip_prefix("$select="))
                    .map(|cols| cols.split(',').map(|c| c.trim().to_string()).collect());
                out.push((name.trim().to_string(), select));
            }
            _ => {}
        }
    }
    out
}

impl View {
    fn of(call: &Call) -> Self {
        let expanded = call
            .query
            .expand
            .as_deref()
            .map(expansions)
            .unwrap_or_default();
        Self {
            select: call.query.select.clone(),
            conditions: call.query.filter.as_deref().and_then(alternatives),
            options: expanded.iter().any(|(n, _)| n.ends_with("OptionSet")),
            expanded,
        }
    }

    /// The expanded option sets of a `Status` attribute, projected.
    fn expand_options(&self, item: &mut Entity) {
        let Some(Value::Object(mut set)) = item.remove("OptionSet") else {
            return;
        };
        for (name, select) in &self.expanded {
            match name.as_str() {
                "OptionSet" => {
                    if let Some(select) = select {
                        set.retain(|k, _| k == "MetadataId" || select.contains(k));
                    }
                    item.insert("OptionSet".into(), Value::Object(set.clone()));
                }
                "GlobalOptionSet" => {
                    item.insert("GlobalOptionSet".into(), Value::Null);
                }
                _ => {}
            }
        }
    }

    /// `#<fragment>(<select>)`, as the context of a collection.
    fn context(&self, call: &Call, fragment: &str) -> String {
        let selected = self
            .select
            .as_ref()
            .map(|s| format!("({})", s.join(",")))
            .unwrap_or_default();
        format!("{}/$metadata#{fragment}{selected}", call.api())
    }

    fn project(&self, mut item: Entity) -> Entity {
        if let Some(select) = &self.select {
            let kept = |k: &String| {
                k == "MetadataId"
                    || k.starts_with('@')
                    || k.ends_with("OptionSet")
                    || select.iter().any(|s| s == k)
            };
            item.retain(|k, _| kept(k));
        }
        self.expand_options(&mut item);
        item
    }

    fn collection(&self, call: &Call, fragment: String, items: Vec<Entity>) -> Response<SimBody> {
        let value: Vec<Value> = items
            .into_iter()
            .filter(|i| {
                self.conditions
                    .as_deref()
                    .is_none_or(|any| any.iter().any(|c| filter::matches(c, i)))
            })
            .map(|i| Value::Object(self.project(i)))
            .collect();
        let context = self.context(call, &fragment);
        odata_json(
            StatusCode::OK,
            &json!({"@odata.context": context, "value": value}),
        )
    }

    fn single(&self, call: &Call, fragment: String, item: Entity) -> Response<SimBody> {
        let mut item = self.project(item);
        let context = format!("{}/$entity", self.context(call, &fragment));
        item.insert("@odata.context".into(), Value::String(context));
        odata_json(StatusCode::OK, &Value::Object(item))
    }
}

/// `EntityMetadata` of one table.
fn entity(t: &Table) -> Entity {
    let value = json!({
        "MetadataId": entity_id(t),
        "LogicalName": t.logical,
        "SchemaName": t.schema,
        "EntitySetName": t.set,
        "LogicalCollectionName": t.set,
        "CollectionSchemaName": collection_schema(t),
        "PrimaryIdAttribute": t.key,
        "PrimaryNameAttribute": t.primary_name,
        "ObjectTypeCode": t.otc,
        "OwnershipType": if t.set == "systemusers" { "BusinessOwned" } else { "UserOwned" },
        "IsCustomEntity": false,
        "IsActivity": false,
        "IsIntersect": false,
        "IsPrivate": false,
        "IsValidForAdvancedFind": true,
        "HasNotes": t.set != "annotations",
        "HasActivities": matches!(t.set, "contacts" | "accounts" | "leads" | "opportunities"),
        "DisplayName": label(display_name(t)),
        "Description": label(description(t)),
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn entity_id(t: &Table) -> String {
    seeded_id("ed000000", u64::from(t.otc))
}

/// `SystemUsers` from `SystemUser` and `systemusers`; `Opportunities` from `Opportunity`.
fn collection_schema(t: &Table) -> String {
    let common = t
        .logical
        .bytes()
        .zip(t.set.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let (schema, suffix) = (t.schema.get(..common), t.set.get(common..));
    format!(
        "{}{}",
        schema.unwrap_or(t.schema),
        suffix.unwrap_or_default()
    )
}

fn display_name(t: &Table) -> &'static str {
    match t.logical {
        "systemuser" => "User",
        "annotation" => "Note",
        _ => t.schema,
    }
}

/// Dataverse's own descriptions of the standard tables the simulator has (empty for others).
fn description(t: &Table) -> &'static str {
    match t.logical {
        "contact" => {
            "Person with whom a business unit has a relationship, such as customer, supplier, \
             and colleague."
        }
        "account" => {
            "Business that represents a customer or potential customer. The company that is \
             billed in business transactions."
        }
        "opportunity" => {
            "Potential revenue-generating event, or sale to an account, which needs to be \
             tracked through a sales process to completion."
        }
        _ => "",
    }
}

fn find_table(key: &MetaKey) -> Option<&'static Table> {
    match key {
        MetaKey::LogicalName(name) => table_by_logical(name),
        MetaKey::Id(id) => TABLES.iter().find(|t| entity_id(t) == *id),
    }
}

/// Whether an item's `name` (or its `MetadataId`) matches a metadata key.
fn is_key(item: &Entity, key: &MetaKey, name: &str) -> bool {
    match key {
        MetaKey::LogicalName(wanted) => item.get(name).and_then(Value::as_str) == Some(wanted),
        MetaKey::Id(id) => item.get("MetadataId").and_then(Value::as_str) == Some(id),
    }
}

/// Whether an attribute is of the derived type a cast names (always, without a cast).
fn is_cast(attribute: &Entity, cast: Option<&str>) -> bool {
    let own = attribute.get("@odata.type").and_then(Value::as_str);
    cast.is_none_or(|c| own.and_then(|t| t.strip_prefix("#Microsoft.Dynamics.CRM.")) == Some(c))
}

fn key_text(key: &MetaKey) -> String {
    match key {
        MetaKey::LogicalName(name) => format!("LogicalName='{}'", name.replace('\'', "''")),
        MetaKey::Id(id) => id.clone(),
    }
}

fn attributes_fragment(key: &MetaKey, cast: Option<&str>) -> String {
    let cast = cast
        .map(|c| format!("/Microsoft.Dynamics.CRM.{c}"))
        .unwrap_or_default();
    format!("EntityDefinitions({})/Attributes{cast}", key_text(key))
}

fn table_not_found(key: &MetaKey) -> Response<SimBody> {
    let message = match key {
        MetaKey::LogicalName(name) => format!("Could not find entity with name '{name}'."),
        MetaKey::Id(id) => format!("Could not find entity with MetadataId '{id}'."),
    };
    dataverse_error(StatusCode::NOT_FOUND, "0x80040217", &message)
}

fn attribute_not_found(t: &Table, key: &MetaKey) -> Response<SimBody> {
    let message = format!(
        "Could not find attribute {} on entity '{}'.",
        key_text(key),
        t.logical
    );
    dataverse_error(StatusCode::NOT_FOUND, "0x80040217", &message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::path::parse;
    use crate::sim::schema::table;

    #[test]
    fn entity_definitions() {
        let defs = |path: &str| match parse(path) {
            Ok(Target::Definitions(d)) => Some(d),
            _ => None,
        };
        let contact = || MetaKey::LogicalName("contact".into());
        assert_eq!(defs("EntityDefinitions"), Some(Definitions::Entities));
        assert_eq!(
            defs("EntityDefinitions(LogicalName=%27contact%27)"),
            Some(Definitions::Entity(contact()))
        );
        let id = "ED000000-0000-4000-8000-000000000002";
        assert_eq!(
            defs(&format!("EntityDefinitions({id})/Attributes")),
            Some(Definitions::Attributes(
                MetaKey::Id(id.to_ascii_lowercase()),
                None
            ))
        );
        assert_eq!(
            defs(
                "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='firstname')/\
                 Microsoft.Dynamics.CRM.StringAttributeMetadata"
            ),
            Some(Definitions::Attribute(
                contact(),
                MetaKey::LogicalName("firstname".into()),
                Some("StringAttributeMetadata".into())
            ))
        );
        assert!(parse("EntityDefinitions(Name='x')").is_err());
        assert_eq!(
            parse("EntityDefinitionsX"),
            Ok(Target::NotFound("EntityDefinitionsX".into()))
        );
    }

    #[test]
    fn entity_metadata_names() {
        let users = table("systemusers").expect("users");
        assert_eq!(collection_schema(users), "SystemUsers");
        let opportunities = table("opportunities").expect("opportunities");
        assert_eq!(collection_schema(opportunities), "Opportunities");
        let contact = entity(table("contacts").expect("contacts"));
        assert_eq!(contact["PrimaryNameAttribute"], "fullname");
        assert_eq!(contact["ObjectTypeCode"], 2);
        let by_id = MetaKey::Id(entity_id(opportunities));
        assert_eq!(find_table(&by_id).map(|t| t.set), Some("opportunities"));
        assert!(find_table(&MetaKey::LogicalName("Contact".into())).is_none());
    }
}
