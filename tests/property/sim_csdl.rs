//! The simulator's CSDL (`src/sim/metadata.xml`) as a [`Schema`]: tables from `Metadata::parse`,
//! column types, lookup columns (`ReferentialConstraint`) and partners by a plain scan of the
//! XML, primary names as the simulator declares them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use dataverse_gateway::policy::metadata::Metadata;

use crate::schema::{Column, Nav, Schema, Table, Ty};

const SIM_CSDL: &[u8] = include_bytes!("../../src/sim/metadata.xml");

pub fn sim() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        let meta = Metadata::parse(SIM_CSDL).expect("sim CSDL parses");
        let xml = std::str::from_utf8(SIM_CSDL).expect("UTF-8 CSDL");
        let types = property_types(xml);
        let constraints = referential_constraints(xml);
        let sets: Vec<(String, String)> = meta
            .entity_sets()
            .map(|(s, l)| (s.to_string(), l.to_string()))
            .collect();
        let index = |set: &str| sets.iter().position(|(s, _)| s == set);
        let mut tables: Vec<Table> = sets
            .iter()
            .map(|(set, logical)| {
                let mut columns = Vec::new();
                let mut navs = Vec::new();
                for ty in meta.ancestry(logical) {
                    for p in &ty.properties {
                        columns.push(Column {
                            name: p.clone(),
                            ty: types.get(p).copied().unwrap_or(Ty::Text),
                            lookup: p.starts_with('_') && p.ends_with("_value"),
                        });
                    }
                    for (name, n) in &ty.navigation {
                        if let Some(target) = meta.set_of(&n.target).and_then(index) {
                            navs.push(Nav {
                                name: name.clone(),
                                target,
                                collection: n.collection,
                                lookup: constraints.get(&(logical.clone(), name.clone())).cloned(),
                            });
                        }
                    }
                }
                Table {
                    set: set.clone(),
                    logical: logical.clone(),
                    key: meta.key_of(logical).expect("every table has a key")[0].clone(),
                    primary_name: sim_primary_name(logical).to_string(),
                    columns,
                    navs,
                    alternate_keys: vec![],
                }
            })
            .collect();
        // A collection's lookup is its partner's: the single-valued navigation pointing back.
        let partners = partner_names(xml);
        for t in 0..tables.len() {
            for n in 0..tables[t].navs.len() {
                let nav = &tables[t].navs[n];
                if !nav.collection {
                    continue;
                }
                let partner = partners.get(&(tables[t].logical.clone(), nav.name.clone()));
                let back = partner.and_then(|p| {
                    let target = &tables[nav.target];
                    target.navs.iter().find(|m| &m.name == p)?.lookup.clone()
                });
                tables[t].navs[n].lookup = back;
            }
        }
        Schema {
            meta,
            tables,
            csdl: None,
        }
    })
}

fn sim_primary_name(logical: &str) -> &'static str {
    match logical {
        "account" | "opportunity" => "name",
        "annotation" => "subject",
        _ => "fullname",
    }
}

/// `Property Name -> type`, by a plain scan of the CSDL.
fn property_types(xml: &str) -> BTreeMap<String, Ty> {
    let mut out = BTreeMap::new();
    for line in xml.lines() {
        let Some(name) = attr(line, "<Property Name=\"") else {
            continue;
        };
        let ty = match attr(line, "Type=\"") {
            Some("Edm.Guid") => Ty::Guid,
            Some("Edm.Decimal" | "Edm.Double" | "Edm.Int64") => Ty::Decimal,
            Some("Edm.Int32") => Ty::Int,
            Some("Edm.Boolean") => Ty::Bool,
            Some("Edm.DateTimeOffset") => Ty::Date,
            _ => Ty::Text,
        };
        out.insert(name.to_string(), ty);
    }
    out
}

fn attr<'x>(line: &'x str, prefix: &str) -> Option<&'x str> {
    line.split_once(prefix)?.1.split('"').next()
}

/// (entity type, navigation property) -> its `ReferentialConstraint Property`, by a plain scan.
fn referential_constraints(xml: &str) -> BTreeMap<(String, String), String> {
    let (mut ty, mut nav) = (String::new(), String::new());
    let mut out = BTreeMap::new();
    for line in xml.lines() {
        if let Some(t) = attr(line, "<EntityType Name=\"") {
            ty = t.to_string();
        }
        if let Some(n) = attr(line, "<NavigationProperty Name=\"") {
            nav = n.to_string();
        }
        if let Some(p) = attr(line, "<ReferentialConstraint Property=\"") {
            out.insert((ty.clone(), nav.clone()), p.to_string());
        }
    }
    out
}

/// (entity type, navigation property) -> its `Partner`.
fn partner_names(xml: &str) -> BTreeMap<(String, String), String> {
    let mut ty = String::new();
    let mut out = BTreeMap::new();
    for line in xml.lines() {
        if let Some(t) = attr(line, "<EntityType Name=\"") {
            ty = t.to_string();
        }
        if let (Some(n), Some(p)) = (
            attr(line, "<NavigationProperty Name=\""),
            attr(line, "Partner=\""),
        ) {
            out.insert((ty.clone(), n.to_string()), p.to_string());
        }
    }
    out
}
