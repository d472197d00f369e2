//! The column metadata (`AttributeMetadata`) of the simulated tables, as `EntityDefinitions(...)/
//! Attributes` serves it: one attribute per column, the key included, with the properties SDKs
//! read (`LogicalName`, `SchemaName`, `AttributeType`, `@odata.type`, `MetadataId`, ...).
//!
//! Types follow the column: the key is `Uniqueidentifier`; `_x_value` is the lookup attribute
//! `x` (`Customer` for `parentcustomerid`, else `Lookup`) with its `Targets`; `revenue` and
//! `estimatedvalue` are `Money`; `statuscode` is `Status` (with options, shown under
//! `$expand=OptionSet`); `documentbody` is `Memo`; every other column is `String`. The simulated
//! org has no `Picklist` columns, so a cast to `PicklistAttributeMetadata` lists nothing.
//!
//! Pure: no I/O, no clock; ids are deterministic.

use serde_json::{Map, Value, json};

use super::schema::{Table, seeded_id, table as table_of};

/// Schema and display names of the simulated columns (logical name of the attribute first).
const NAMES: &[(&str, &str, &str)] = &[
    ("fullname", "FullName", "Full Name"),
    ("firstname", "FirstName", "First Name"),
    ("lastname", "LastName", "Last Name"),
    ("emailaddress1", "EMailAddress1", "Email"),
    ("parentcustomerid", "ParentCustomerId", "Company Name"),
    ("createdby", "CreatedBy", "Created By"),
    ("name", "Name", "Name"),
    ("revenue", "Revenue", "Annual Revenue"),
    ("primarycontactid", "PrimaryContactId", "Primary Contact"),
    ("subject", "Subject", "Subject"),
    ("estimatedvalue", "EstimatedValue", "Est. Revenue"),
    ("statuscode", "StatusCode", "Status Reason"),
    ("parentaccountid", "ParentAccountId", "Account"),
    ("domainname", "DomainName", "User Name"),
    ("documentbody", "DocumentBody", "Document"),
    ("objectid", "ObjectId", "Regarding"),
];

/// `statuscode` options of opportunities: value, state, label.
const OPPORTUNITY_STATUS: &[(i64, i64, &str)] = &[
    (1, 0, "In Progress"),
    (2, 0, "On Hold"),
    (3, 1, "Won"),
    (4, 2, "Canceled"),
    (5, 2, "Out-Sold"),
];

/// Every attribute of `table`, key first, as full JSON objects. With `options`, `Status`
/// attributes carry their `OptionSet`.
pub fn of(table: &Table, options: bool) -> Vec<Map<String, Value>> {
    std::iter::once(table.key)
        .chain(table.columns.iter().copied())
        .zip(0u64..)
        .map(|(column, index)| attribute(table, column, index, options))
        .collect()
}

/// The label object Dataverse uses for display names and descriptions (language 1033); an
/// empty text is a label with no localized labels, as Dataverse serves a missing description.
pub fn label(text: &str) -> Value {
    if text.is_empty() {
        return json!({"LocalizedLabels": [], "UserLocalizedLabel": null});
    }
    let localized = json!({"Label": text, "LanguageCode": 1033, "IsManaged": true});
    json!({"LocalizedLabels": [localized.clone()], "UserLocalizedLabel": localized})
}

/// Dataverse's descriptions of a few simulated columns (empty for the others).
fn description(column: &str) -> &'static str {
    match column {
        "emailaddress1" => "Type the primary email address for the contact.",
        "estimatedvalue" => {
            "Type the estimated revenue amount to indicate the potential sale or value of the opportunity for revenue forecasting."
        }
        "statuscode" => "Select the opportunity's status.",
        _ => "",
    }
}

fn attribute(table: &Table, column: &str, index: u64, options: bool) -> Map<String, Value> {
    let logical = column
        .strip_prefix('_')
        .and_then(|c| c.strip_suffix("_value"))
        .unwrap_or(column);
    let (schema, display) = match NAMES.iter().find(|(l, _, _)| *l == logical) {
        Some((_, schema, display)) => (schema.to_string(), display.to_string()),
        None if column == table.key => (format!("{}Id", table.schema), table.schema.to_string()),
        None => (logical.to_string(), logical.to_string()),
    };
    let kind = kind(table, column, logical);
    let mut out = json!({
        "@odata.type": format!("#Microsoft.Dynamics.CRM.{}", metadata_type(kind)),
        "MetadataId": seeded_id("ad000000", u64::from(table.otc) * 0x100 + index),
        "LogicalName": logical,
        "SchemaName": schema,
        "EntityLogicalName": table.logical,
        "AttributeType": kind,
        "AttributeTypeName": {"Value": format!("{kind}Type")},
        "IsPrimaryId": column == table.key,
        "IsPrimaryName": column == table.primary_name,
        "IsCustomAttribute": false,
        "IsValidForCreate": true,
        "IsValidForRead": true,
        "IsValidForUpdate": column != table.key,
        "RequiredLevel": {"Value": "None", "CanBeChanged": true,
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"},
        "DisplayName": label(&display),
        "Description": label(description(logical)),
    });
    let extra = match kind {
        "String" => json!({"MaxLength": 160, "Format": "Text"}),
        "Memo" => json!({"MaxLength": 1_048_576, "Format": "TextArea"}),
        "Money" => json!({"Precision": 2, "MinValue": -922_337_203_685_477.0,
            "MaxValue": 922_337_203_685_477.0}),
        "Lookup" | "Customer" => json!({"Targets": targets(table, column)}),
        "Status" if options => json!({"OptionSet": option_set(table)}),
        _ => json!({}),
    };
    if let (Value::Object(out), Value::Object(extra)) = (&mut out, extra) {
        out.extend(extra);
    }
    match out {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn kind(table: &Table, column: &str, logical: &str) -> &'static str {
    if column == table.key {
        "Uniqueidentifier"
    } else if column != logical {
        if logical == "parentcustomerid" {
            "Customer"
        } else {
            "Lookup"
        }
    } else {
        match column {
            c if is_money(c) => "Money",
            "statuscode" => "Status",
            "documentbody" => "Memo",
            _ => "String",
        }
    }
}

fn metadata_type(kind: &str) -> &'static str {
    match kind {
        "Uniqueidentifier" => "UniqueIdentifierAttributeMetadata",
        "Lookup" | "Customer" => "LookupAttributeMetadata",
        "Money" => "MoneyAttributeMetadata",
        "Status" => "StatusAttributeMetadata",
        "Memo" => "MemoAttributeMetadata",
        _ => "StringAttributeMetadata",
    }
}

/// Logical names of the tables a lookup column can point at.
fn targets(table: &Table, column: &str) -> Vec<&'static str> {
    table
        .lookups
        .iter()
        .filter(|l| l.column == column)
        .filter_map(|l| table_of(l.target_set))
        .map(|t| t.logical)
        .collect()
}

/// The label of a `statuscode` value of `table`, if it has that option.
pub fn status_label(table: &Table, value: i64) -> Option<&'static str> {
    OPPORTUNITY_STATUS
        .iter()
        .filter(|_| table.set == "opportunities")
        .find(|(v, _, _)| *v == value)
        .map(|(_, _, text)| *text)
}

/// True for the columns whose `AttributeType` is `Money`.
pub fn is_money(column: &str) -> bool {
    matches!(column, "revenue" | "estimatedvalue")
}

fn option_set(table: &Table) -> Value {
    let options: Vec<Value> = OPPORTUNITY_STATUS
        .iter()
        .filter(|_| table.set == "opportunities")
        .map(|(value, state, text)| json!({"Value": value, "State": state, "Label": label(text)}))
        .collect();
    json!({
        "MetadataId": seeded_id("05000000", u64::from(table.otc)),
        "Name": format!("{}_statuscode", table.logical),
        "OptionSetType": "Status",
        "IsGlobal": false,
        "Options": options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::schema::{TABLES, table};

    #[test]
    fn every_column_has_one_attribute_with_a_unique_id() {
        let mut ids = std::collections::HashSet::new();
        for t in TABLES {
            let attributes = of(t, false);
            assert_eq!(attributes.len(), t.columns.len() + 1);
            for a in &attributes {
                assert!(ids.insert(a["MetadataId"].to_string()), "{a:?}");
                assert!(a["SchemaName"].as_str().is_some_and(|s| !s.is_empty()));
            }
        }
    }

    #[test]
    fn lookups_keys_and_status() {
        let contacts = of(table("contacts").expect("contacts"), false);
        let key = &contacts[0];
        assert_eq!(
            (
                &key["LogicalName"],
                &key["AttributeType"],
                &key["SchemaName"]
            ),
            (
                &json!("contactid"),
                &json!("Uniqueidentifier"),
                &json!("ContactId")
            )
        );
        let parent = contacts
            .iter()
            .find(|a| a["LogicalName"] == "parentcustomerid")
            .expect("lookup");
        assert_eq!(parent["AttributeType"], "Customer");
        assert_eq!(parent["Targets"], json!(["account"]));
        let opportunities = of(table("opportunities").expect("opportunities"), true);
        let status = opportunities
            .iter()
            .find(|a| a["LogicalName"] == "statuscode")
            .expect("status");
        assert_eq!(status["OptionSet"]["Options"][2]["Value"], 3);
    }
}
