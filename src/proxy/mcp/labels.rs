//! Display names, descriptions and choice values merged into a [`Described`] answer from the
//! `EntityDefinitions` answers its label requests get (see [`super::describe`]).
//!
//! Invariants: a label is merged only into a table or column the answer already shows (the
//! allowlist's view), never adds one; every request goes through [`Caller::fetch`], the
//! pipeline, as the caller; a refused or failed request leaves the metadata's facts and sets
//! `labels_unavailable` to its reason — the tool call still succeeds. Labels are the
//! `UserLocalizedLabel.Label` of Dataverse's label objects (the caller's language).

use serde_json::{Map, Value, json};

use super::describe::{self, Described, LabelPlan};
use super::run::{Caller, Outcome};

/// The choice attribute types and the metadata type their options are read through.
const CHOICE_CASTS: [(&str, &str); 4] = [
    ("PicklistType", "PicklistAttributeMetadata"),
    ("StateType", "StateAttributeMetadata"),
    ("StatusType", "StatusAttributeMetadata"),
    (
        "MultiSelectPicklistType",
        "MultiSelectPicklistAttributeMetadata",
    ),
];

impl Caller {
    /// The answer with the labels its requests could read.
    pub async fn labelled(&self, described: Described) -> Outcome {
        let mut facts = described.facts;
        let result = match described.labels {
            LabelPlan::None => Ok(()),
            LabelPlan::Tables(calls) => self.table_listing(&mut facts, &calls).await,
            LabelPlan::Table(logical) => self.table_labels(&mut facts, &logical).await,
        };
        if let (Err(reason), Some(obj)) = (result, facts.as_object_mut()) {
            obj.insert("labels_unavailable".into(), json!(reason));
        }
        Outcome::ok(&facts)
    }

    async fn table_listing(
        &self,
        facts: &mut Value,
        calls: &[super::plan::WebCall],
    ) -> Result<(), String> {
        for call in calls {
            let answer = self.fetch(call).await?;
            for def in items(&answer) {
                let logical = def.get("LogicalName").and_then(Value::as_str);
                let rows = facts.get_mut("tables").and_then(Value::as_array_mut);
                let row = rows.and_then(|r| {
                    r.iter_mut()
                        .find(|t| logical.is_some() && t["logical_name"].as_str() == logical)
                });
                if let Some(Value::Object(row)) = row {
                    put_labels(row, def);
                }
            }
        }
        Ok(())
    }

    async fn table_labels(&self, facts: &mut Value, logical: &str) -> Result<(), String> {
        let table = self.fetch(&describe::table_call(logical)).await?;
        if let Some(obj) = facts.as_object_mut() {
            put_labels(obj, &table);
        }
        let attributes = self.fetch(&describe::attributes_call(logical)).await?;
        let mut casts = Vec::new();
        for attr in items(&attributes) {
            let Some(column) = column_of(facts, attr) else {
                continue;
            };
            put_labels(column, attr);
            if let Some(kind) = attr.get("AttributeType").and_then(Value::as_str) {
                column.insert("attribute_type".into(), json!(kind));
            }
            let type_name = attr
                .get("AttributeTypeName")
                .and_then(|t| t.get("Value"))
                .and_then(Value::as_str);
            let cast = CHOICE_CASTS.iter().find(|(t, _)| Some(*t) == type_name);
            if let Some((_, cast)) = cast
                && !casts.contains(cast)
            {
                casts.push(*cast);
            }
        }
        for cast in casts {
            let answer = self.fetch(&describe::option_call(logical, cast)).await?;
            for attr in items(&answer) {
                let options = ["OptionSet", "GlobalOptionSet"]
                    .iter()
                    .find_map(|k| attr.get(*k)?.get("Options")?.as_array());
                if let (Some(column), Some(options)) = (column_of(facts, attr), options) {
                    column.insert("choices".into(), choices(options));
                }
            }
        }
        Ok(())
    }

    /// One label request's JSON answer, or why there is none (the Web API error).
    async fn fetch(&self, call: &super::plan::WebCall) -> Result<Value, String> {
        let (_, _, body) = self.send(call).await.map_err(|o| reason(&o))?;
        serde_json::from_slice(&body).map_err(|_| "EntityDefinitions sent no JSON".to_string())
    }
}

/// The items of a collection answer (`value`), or the answer itself when it is one item.
fn items(answer: &Value) -> Vec<&Value> {
    match answer.get("value").and_then(Value::as_array) {
        Some(items) => items.iter().collect(),
        None => vec![answer],
    }
}

/// The shown column an attribute describes (`x` describes the lookup column `_x_value`).
fn column_of<'f>(facts: &'f mut Value, attr: &Value) -> Option<&'f mut Map<String, Value>> {
    let name = attr.get("LogicalName")?.as_str()?;
    let lookup = format!("_{name}_value");
    let columns = facts.get_mut("columns")?.as_array_mut()?;
    let at = columns
        .iter()
        .position(|c| c["name"] == name)
        .or_else(|| columns.iter().position(|c| c["name"] == lookup.as_str()))?;
    columns[at].as_object_mut()
}

/// `display_name` and `description` from a definition's label objects, when it has them.
fn put_labels(into: &mut Map<String, Value>, def: &Value) {
    for (key, property) in [
        ("display_name", "DisplayName"),
        ("description", "Description"),
    ] {
        if let Some(text) = label(def.get(property)).filter(|t| !t.is_empty()) {
            into.insert(key.into(), json!(text));
        }
    }
}

/// `UserLocalizedLabel.Label` of a label object.
fn label(value: Option<&Value>) -> Option<&str> {
    value?.get("UserLocalizedLabel")?.get("Label")?.as_str()
}

fn choices(options: &[Value]) -> Value {
    let list: Vec<Value> = options
        .iter()
        .filter_map(|o| {
            let value = o.get("Value")?.as_i64()?;
            Some(json!({"value": value, "label": label(o.get("Label"))}))
        })
        .collect();
    Value::Array(list)
}

/// The code and message of a tool error, as one line.
fn reason(o: &Outcome) -> String {
    let v: Value = serde_json::from_str(o.json.get()).unwrap_or_default();
    let e = &v["error"];
    format!(
        "{}: {}",
        e["code"].as_str().unwrap_or("error"),
        e["message"].as_str().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_go_only_into_shown_columns() {
        let mut facts = json!({"columns": [{"name": "name"}, {"name": "_parentid_value"}]});
        let lbl = |t: &str| json!({"UserLocalizedLabel": {"Label": t}});
        for (attr, shown) in [("name", true), ("parentid", true), ("secret", false)] {
            let a = json!({"LogicalName": attr, "DisplayName": lbl("D"), "Description": lbl("")});
            let column = column_of(&mut facts, &a);
            assert_eq!(column.is_some(), shown, "{attr}");
            if let Some(c) = column {
                put_labels(c, &a);
                assert_eq!(c["display_name"], "D");
                assert!(c.get("description").is_none(), "an empty label is left out");
            }
        }
        assert_eq!(facts["columns"].as_array().map(Vec::len), Some(2));
        let options = [
            json!({"Value": 3, "Label": lbl("Won")}),
            json!({"Value": "x"}),
        ];
        assert_eq!(choices(&options), json!([{"value": 3, "label": "Won"}]));
    }
}
