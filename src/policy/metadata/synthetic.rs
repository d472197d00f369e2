//! A realistic synthetic Dataverse CSDL of any size, for tests and the parse benchmark.
//!
//! Deterministic: the same `entity_types` always gives the same bytes. Shape, as Dataverse
//! serves it (one element per line, `mscrm.` in type references, the full namespace in the
//! container): `crmbaseentity` (abstract) and `activitypointer` (keyed on `activityid`), then
//! tables `new_entity{i}` deriving from one of them (every tenth is an activity with an
//! inherited key) with [`property_count`] columns (id, `new_name`, one `_new_lookup{k}_value`
//! per single-valued navigation, then fields of varied types, some carrying annotations) and
//! [`navigation_count`] navigation properties, half single-valued with a referential constraint,
//! half collections; complex and enum types; unbound functions and actions with imports;
//! `CreateMultiple`/`UpdateMultiple` bound to `Collection(crmbaseentity)`; a `new_Approve`
//! action overloaded on every 25th table; an entity set per table with its navigation
//! bindings. About 20 MB at 3000 tables.

use std::fmt::{Result, Write};

/// Columns of table `i`, including its id, `new_name` and its lookup `_x_value` columns.
pub fn property_count(i: usize) -> usize {
    100 + (i * 37) % 101
}

/// Navigation properties of table `i`; the first half (rounded down) are single-valued.
pub fn navigation_count(i: usize) -> usize {
    20 + (i * 7) % 21
}

/// Whether table `i` derives from `activitypointer` (and so inherits its key).
pub fn is_activity(i: usize) -> bool {
    i % 10 == 9
}

/// The table that navigation `k` of table `i` leads to.
pub fn target(i: usize, k: usize, tables: usize) -> usize {
    (i * 31 + k * 17 + 1) % tables
}

/// Tables with a `new_Approve` overload bound to them.
pub fn has_approve(i: usize) -> bool {
    i.is_multiple_of(25)
}

pub const COMPLEX_TYPES: usize = 40;
pub const UNBOUND_ACTIONS: usize = 20;

const FIELD_TYPES: [&str; 9] = [
    r#"Type="Edm.String" Unicode="false""#,
    r#"Type="Edm.Int32""#,
    r#"Type="Edm.Decimal" Scale="Variable""#,
    r#"Type="Edm.DateTimeOffset" Precision="0""#,
    r#"Type="Edm.Boolean""#,
    r#"Type="Edm.Double""#,
    r#"Type="Edm.Int64""#,
    r#"Type="Edm.Guid""#,
    r#"Type="Edm.String" Unicode="false" MaxLength="100""#,
];

/// A CSDL document with `entity_types` generated tables (at least one).
pub fn synthetic_csdl(entity_types: usize) -> String {
    let tables = entity_types.max(1);
    let mut out = String::with_capacity(tables * 7_500 + 64 * 1024);
    write_document(&mut out, tables).expect("writing to a String cannot fail");
    out
}

fn write_document(out: &mut String, tables: usize) -> Result {
    out.push_str(concat!(
        r#"<?xml version="1.0" encoding="utf-8"?>"#,
        "\n",
        r#"<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">"#,
        "\n",
        r#"<edmx:Reference Uri="http://vocabularies.odata.org/OData.Community.Keys.V1.xml"><edmx:Include Namespace="OData.Community.Keys.V1" Alias="Keys"/><edmx:IncludeAnnotations TermNamespace="OData.Community.Keys.V1"/></edmx:Reference>"#,
        "\n<edmx:DataServices>\n",
        r#"<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">"#,
        "\n",
        r#"<EntityType Name="crmbaseentity" Abstract="true"/>"#,
        "\n",
        r#"<EntityType Name="activitypointer" BaseType="mscrm.crmbaseentity"><Key><PropertyRef Name="activityid"/></Key>"#,
        "\n",
        r#"<Property Name="activityid" Type="Edm.Guid"/><Property Name="subject" Type="Edm.String" Unicode="false"/><Property Name="_regardingobjectid_value" Type="Edm.Guid"/>"#,
        "\n</EntityType>\n",
    ));
    for i in 0..tables {
        write_entity_type(out, i, tables)?;
    }
    write_types_and_operations(out, tables)?;
    write_container(out, tables)?;
    out.push_str("</Schema>\n</edmx:DataServices>\n</edmx:Edmx>\n");
    Ok(())
}

fn write_entity_type(out: &mut String, i: usize, tables: usize) -> Result {
    let singles = navigation_count(i) / 2;
    if is_activity(i) {
        writeln!(
            out,
            r#"<EntityType Name="new_entity{i}" BaseType="mscrm.activitypointer">"#
        )?;
    } else {
        writeln!(
            out,
            r#"<EntityType Name="new_entity{i}" BaseType="mscrm.crmbaseentity"><Key><PropertyRef Name="new_entity{i}id"/></Key>"#
        )?;
    }
    writeln!(
        out,
        r#"<Property Name="new_entity{i}id" Type="Edm.Guid"/>
<Property Name="new_name" Type="Edm.String" Unicode="false"/>"#
    )?;
    for k in 0..singles {
        writeln!(
            out,
            r#"<Property Name="_new_lookup{k}_value" Type="Edm.Guid"/>"#
        )?;
    }
    for k in 0..property_count(i) - 2 - singles {
        let ty = FIELD_TYPES[(i + k) % FIELD_TYPES.len()];
        if k % 7 == 3 {
            writeln!(
                out,
                r#"<Property Name="new_field{k}" {ty}><Annotation Term="Org.OData.Core.V1.Computed" Bool="true"/></Property>"#
            )?;
        } else {
            writeln!(out, r#"<Property Name="new_field{k}" {ty}/>"#)?;
        }
    }
    write_navigation(out, i, tables)?;
    writeln!(
        out,
        r#"<Annotation Term="Org.OData.Core.V1.Description" String="Synthetic table {i} &amp; &lt;friends&gt;"/>
</EntityType>"#
    )
}

fn write_navigation(out: &mut String, i: usize, tables: usize) -> Result {
    let count = navigation_count(i);
    for k in 0..count {
        let t = target(i, k, tables);
        if k < count / 2 {
            writeln!(
                out,
                r#"<NavigationProperty Name="new_lookup{k}" Type="mscrm.new_entity{t}" Nullable="false" Partner="new_entity{t}_lookup{k}_{i}"><ReferentialConstraint Property="_new_lookup{k}_value" ReferencedProperty="new_entity{t}id"/></NavigationProperty>"#
            )?;
        } else {
            writeln!(
                out,
                r#"<NavigationProperty Name="new_entity{i}_rel{k}" Type="Collection(mscrm.new_entity{t})" Partner="new_rel{k}_{i}"/>"#
            )?;
        }
    }
    Ok(())
}

fn write_types_and_operations(out: &mut String, tables: usize) -> Result {
    out.push_str(concat!(
        r#"<ComplexType Name="WhoAmIResponse"><Property Name="BusinessUnitId" Type="Edm.Guid" Nullable="false"/><Property Name="UserId" Type="Edm.Guid" Nullable="false"/><Property Name="OrganizationId" Type="Edm.Guid" Nullable="false"/></ComplexType>"#,
        "\n",
        r#"<ComplexType Name="CreateMultipleResponse"><Property Name="Ids" Type="Collection(Edm.Guid)" Nullable="false"/></ComplexType>"#,
        "\n",
        r#"<EnumType Name="new_Priority"><Member Name="Low" Value="0"/><Member Name="High" Value="1"/></EnumType>"#,
        "\n",
        r#"<Function Name="WhoAmI"><ReturnType Type="mscrm.WhoAmIResponse" Nullable="false"/></Function>"#,
        "\n",
        r#"<Function Name="RetrieveVersion"><ReturnType Type="Edm.String"/></Function>"#,
        "\n",
    ));
    for c in 0..COMPLEX_TYPES {
        writeln!(
            out,
            r#"<ComplexType Name="new_Response{c}"><Property Name="Id" Type="Edm.Guid"/><Property Name="Message" Type="Edm.String"/></ComplexType>"#
        )?;
    }
    for name in ["CreateMultiple", "UpdateMultiple"] {
        writeln!(
            out,
            r#"<Action Name="{name}" IsBound="true"><Parameter Name="entityset" Type="Collection(mscrm.crmbaseentity)" Nullable="false"/><Parameter Name="Targets" Type="Collection(mscrm.crmbaseentity)" Nullable="false"/><ReturnType Type="mscrm.CreateMultipleResponse" Nullable="false"/></Action>"#
        )?;
    }
    for i in (0..tables).filter(|&i| has_approve(i)) {
        writeln!(
            out,
            r#"<Action Name="new_Approve" IsBound="true"><Parameter Name="entity" Type="mscrm.new_entity{i}" Nullable="false"/><Parameter Name="Comment" Type="Edm.String"/><ReturnType Type="mscrm.new_Response{}"/></Action>"#,
            i % COMPLEX_TYPES
        )?;
    }
    for a in 0..UNBOUND_ACTIONS {
        writeln!(
            out,
            r#"<Action Name="new_Recalculate{a}"><Parameter Name="Target" Type="mscrm.crmbaseentity"/><Parameter Name="Priority" Type="mscrm.new_Priority"/><Annotation Term="Org.OData.Core.V1.Description" String="Recalculates"/></Action>"#
        )?;
    }
    Ok(())
}

fn write_container(out: &mut String, tables: usize) -> Result {
    out.push_str("<EntityContainer Name=\"System\">\n");
    out.push_str(concat!(
        r#"<EntitySet Name="activitypointers" EntityType="Microsoft.Dynamics.CRM.activitypointer"/>"#,
        "\n",
    ));
    for i in 0..tables {
        writeln!(
            out,
            r#"<EntitySet Name="new_entity{i}s" EntityType="Microsoft.Dynamics.CRM.new_entity{i}">"#
        )?;
        let count = navigation_count(i);
        for k in 0..count {
            let t = target(i, k, tables);
            let path = if k < count / 2 {
                format!("new_lookup{k}")
            } else {
                format!("new_entity{i}_rel{k}")
            };
            writeln!(
                out,
                r#"<NavigationPropertyBinding Path="{path}" Target="new_entity{t}s"/>"#
            )?;
        }
        out.push_str("</EntitySet>\n");
    }
    out.push_str(concat!(
        r#"<FunctionImport Name="WhoAmI" Function="Microsoft.Dynamics.CRM.WhoAmI" IncludeInServiceDocument="false"/>"#,
        "\n",
        r#"<FunctionImport Name="RetrieveVersion" Function="Microsoft.Dynamics.CRM.RetrieveVersion" IncludeInServiceDocument="false"/>"#,
        "\n",
    ));
    for a in 0..UNBOUND_ACTIONS {
        writeln!(
            out,
            r#"<ActionImport Name="new_Recalculate{a}" Action="Microsoft.Dynamics.CRM.new_Recalculate{a}"/>"#
        )?;
    }
    out.push_str("</EntityContainer>\n");
    Ok(())
}
