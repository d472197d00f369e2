//! A generated schema written out as the CSDL Dataverse publishes: entity types with keys,
//! typed properties, navigation properties (single-valued with their `ReferentialConstraint`,
//! collections with their `Partner`), alternate keys (`OData.Community.Keys.V1.AlternateKeys`),
//! the bulk actions, `WhoAmI` and the entity container.

use std::fmt::Write as _;

use crate::schema::{Nav, Table};

/// The CSDL Dataverse would publish for these tables.
pub fn to_csdl(tables: &[Table]) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<edmx:Edmx Version=\"4.0\" xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\">\n\
         <edmx:Reference Uri=\"http://vocabularies.odata.org/OData.Community.Keys.V1.xml\"><edmx:Include Namespace=\"OData.Community.Keys.V1\" Alias=\"Keys\" /><edmx:IncludeAnnotations TermNamespace=\"OData.Community.Keys.V1\" /></edmx:Reference>\n\
         <edmx:DataServices>\n<Schema Namespace=\"Microsoft.Dynamics.CRM\" Alias=\"mscrm\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\">\n\
         <EntityType Name=\"crmbaseentity\" Abstract=\"true\" />\n",
    );
    for t in tables {
        writeln!(
            x,
            "<EntityType Name=\"{}\" BaseType=\"mscrm.crmbaseentity\">",
            t.logical
        )
        .unwrap();
        writeln!(x, "<Key><PropertyRef Name=\"{}\" /></Key>", t.key).unwrap();
        for c in &t.columns {
            writeln!(
                x,
                "<Property Name=\"{}\" Type=\"{}\" />",
                c.name,
                c.ty.edm()
            )
            .unwrap();
        }
        for n in &t.navs {
            let target = &tables[n.target];
            if n.collection {
                let partner = partner_of(tables, n);
                writeln!(
                    x,
                    "<NavigationProperty Name=\"{}\" Type=\"Collection(mscrm.{})\" Partner=\"{partner}\" />",
                    n.name, target.logical
                )
                .unwrap();
            } else {
                writeln!(
                    x,
                    "<NavigationProperty Name=\"{}\" Type=\"mscrm.{}\" Nullable=\"false\">\
                     <ReferentialConstraint Property=\"{}\" ReferencedProperty=\"{}\" /></NavigationProperty>",
                    n.name,
                    target.logical,
                    n.lookup.as_deref().unwrap_or_default(),
                    target.key
                )
                .unwrap();
            }
        }
        for key in &t.alternate_keys {
            x.push_str("<Annotation Term=\"OData.Community.Keys.V1.AlternateKeys\"><Collection><Record Type=\"OData.Community.Keys.V1.AlternateKey\"><PropertyValue Property=\"Key\"><Collection>");
            for k in key {
                write!(x, "<Record Type=\"OData.Community.Keys.V1.PropertyRef\"><PropertyValue Property=\"Alias\" String=\"{k}\" /><PropertyValue Property=\"Name\" PropertyPath=\"{k}\" /></Record>").unwrap();
            }
            x.push_str("</Collection></PropertyValue></Record></Collection></Annotation>\n");
        }
        x.push_str("</EntityType>\n");
    }
    x.push_str("<ComplexType Name=\"WhoAmIResponse\"><Property Name=\"UserId\" Type=\"Edm.Guid\" /></ComplexType>\n");
    x.push_str("<Function Name=\"WhoAmI\"><ReturnType Type=\"mscrm.WhoAmIResponse\" Nullable=\"false\" /></Function>\n");
    for action in ["CreateMultiple", "UpdateMultiple", "UpsertMultiple"] {
        writeln!(x, "<Action Name=\"{action}\" IsBound=\"true\"><Parameter Name=\"entityset\" Type=\"Collection(mscrm.crmbaseentity)\" Nullable=\"false\" /><Parameter Name=\"Targets\" Type=\"Collection(mscrm.crmbaseentity)\" Nullable=\"false\" /></Action>").unwrap();
    }
    x.push_str("<EntityContainer Name=\"System\">\n");
    for t in tables {
        writeln!(
            x,
            "<EntitySet Name=\"{}\" EntityType=\"mscrm.{}\">",
            t.set, t.logical
        )
        .unwrap();
        for n in &t.navs {
            writeln!(
                x,
                "<NavigationPropertyBinding Path=\"{}\" Target=\"{}\" />",
                n.name, tables[n.target].set
            )
            .unwrap();
        }
        x.push_str("</EntitySet>\n");
    }
    x.push_str("<FunctionImport Name=\"WhoAmI\" Function=\"mscrm.WhoAmI\" IncludeInServiceDocument=\"false\" />\n");
    x.push_str("</EntityContainer>\n</Schema>\n</edmx:DataServices>\n</edmx:Edmx>\n");
    x
}

/// The single-valued navigation on the collection's target that points back with the same lookup.
fn partner_of(tables: &[Table], n: &Nav) -> String {
    let back = &tables[n.target];
    back.navs
        .iter()
        .find(|m| {
            !m.collection
                && m.lookup == n.lookup
                && n.name == format!("{}_{}", back.logical, m.name)
        })
        .map(|m| m.name.clone())
        .unwrap_or_default()
}
