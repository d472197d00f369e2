//! What the parser extracts: the simulator's CSDL, inheritance, qualifiers, collections,
//! operations and their overloads, tolerated syntax, and the synthetic generator's counts.

use super::synthetic::{self, navigation_count, property_count};
use super::*;

const SIM: &[u8] = include_bytes!("../../sim/metadata.xml");

/// A Dataverse-shaped document around `schema` (Schema content, container included).
pub(super) fn csdl(schema: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
<edmx:DataServices>
<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">
{schema}
</Schema>
</edmx:DataServices>
</edmx:Edmx>"#
    )
}

fn parse(schema: &str) -> Metadata {
    Metadata::parse(csdl(schema).as_bytes()).unwrap()
}

fn sim() -> Metadata {
    Metadata::parse(SIM).unwrap()
}

fn nav(target: &str, collection: bool) -> Navigation {
    Navigation {
        target: target.into(),
        collection,
        lookup: None,
        partner: None,
    }
}

/// `nav` with the lookup it is bound to and its partner.
fn bound(target: &str, collection: bool, lookup: Option<&str>, partner: &str) -> Navigation {
    Navigation {
        lookup: lookup.map(str::to_string),
        partner: Some(partner.into()),
        ..nav(target, collection)
    }
}

#[test]
fn sim_entity_sets() {
    let m = sim();
    let sets: Vec<_> = m.entity_sets().collect();
    assert_eq!(
        sets,
        [
            ("accounts", "account"),
            ("annotations", "annotation"),
            ("contacts", "contact"),
            ("leads", "lead"),
            ("opportunities", "opportunity"),
            ("systemusers", "systemuser"),
        ]
    );
    assert_eq!(m.entity_set("contacts").unwrap().logical_name, "contact");
    assert_eq!(m.set_of("opportunity"), Some("opportunities"));
    assert_eq!(m.set_of("crmbaseentity"), None);
    assert!(
        m.entity_set("Contacts").is_none(),
        "names are case-sensitive"
    );
    assert_eq!(m.entity_types().count(), 7);
}

#[test]
fn sim_navigation_targets() {
    let m = sim();
    assert_eq!(
        m.navigation("contact", "parentcustomerid_account"),
        Some(&bound(
            "account",
            false,
            Some("_parentcustomerid_value"),
            "contact_customer_accounts"
        ))
    );
    assert_eq!(
        m.navigation("account", "contact_customer_accounts"),
        Some(&bound("contact", true, None, "parentcustomerid_account"))
    );
    assert_eq!(
        m.navigation("systemuser", "lk_annotationbase_createdby"),
        Some(&bound("annotation", true, None, "createdby"))
    );
    assert_eq!(m.navigation("contact", "parentcustomerid"), None);
    assert_eq!(m.navigation("nosuchtable", "createdby"), None);
    let contact = m.entity_type("contact").unwrap();
    assert_eq!(contact.navigation.len(), 4);
}

#[test]
fn sim_observed_lookups() {
    use super::Observed;
    let m = sim();
    let cases = [
        (
            "contact",
            "parentcustomerid_account",
            Observed::Own("_parentcustomerid_value"),
        ),
        (
            "opportunity",
            "createdby",
            Observed::Own("_createdby_value"),
        ),
        (
            "account",
            "opportunity_parent_account",
            Observed::Related("_parentaccountid_value"),
        ),
        (
            "systemuser",
            "lk_contact_createdby",
            Observed::Related("_createdby_value"),
        ),
        // the partner `objectid_contact` is bound to `_objectid_value`
        (
            "contact",
            "Contact_Annotation",
            Observed::Related("_objectid_value"),
        ),
        ("contact", "nosuchnav", Observed::Unknown),
    ];
    for (logical, nav, expected) in cases {
        assert_eq!(m.observed_lookup(logical, nav), expected, "{logical}.{nav}");
    }
    // a partner that is itself a collection is a many-to-many association
    let m = Metadata::parse(SIM_N2N.as_bytes()).unwrap();
    assert_eq!(m.observed_lookup("a", "a_b"), Observed::Association);
    assert_eq!(m.observed_lookup("b", "b_a"), Observed::Association);
    // a composite constraint names no single lookup
    assert_eq!(m.observed_lookup("a", "pair"), Observed::Unknown);
}

const SIM_N2N: &str = r#"<Schema Namespace="N" Alias="n">
<EntityType Name="a"><Key><PropertyRef Name="aid"/></Key><Property Name="aid" Type="Edm.Guid"/>
<NavigationProperty Name="a_b" Type="Collection(n.b)" Partner="b_a"/>
<NavigationProperty Name="pair" Type="n.b" Partner="x"><ReferentialConstraint Property="_x_value" ReferencedProperty="bid"/><ReferentialConstraint Property="_y_value" ReferencedProperty="bid2"/></NavigationProperty>
</EntityType>
<EntityType Name="b"><Key><PropertyRef Name="bid"/></Key><Property Name="bid" Type="Edm.Guid"/>
<NavigationProperty Name="b_a" Type="Collection(n.a)" Partner="a_b"/>
</EntityType></Schema>"#;

#[test]
fn sim_columns_and_keys() {
    let m = sim();
    let contact = m.entity_type("contact").unwrap();
    assert_eq!(contact.base_type.as_deref(), Some("crmbaseentity"));
    assert!(!contact.is_abstract);
    assert!(contact.properties.contains("fullname"));
    assert!(m.has_property("contact", "_parentcustomerid_value"));
    assert!(!m.has_property("contact", "parentcustomerid_account"));
    assert!(!m.has_property("contact", "revenue"));
    assert_eq!(m.key_of("contact"), Some(&["contactid".to_string()][..]));
    assert!(m.entity_type("crmbaseentity").unwrap().is_abstract);
    assert_eq!(m.key_of("crmbaseentity"), None);
    assert!(m.is_derived_from("contact", "crmbaseentity"));
}

#[test]
fn sim_operations() {
    let m = sim();
    let who = m.unbound_function("WhoAmI").unwrap();
    assert_eq!(who.name, "WhoAmI");
    assert!(!who.is_action && who.bound_to.is_none() && who.parameters.is_empty());
    assert_eq!(who.return_type.as_deref(), Some("WhoAmIResponse"));
    assert!(m.unbound_function("RetrieveVersion").is_some());
    assert!(m.unbound_action("WhoAmI").is_none());
    assert!(m.unbound_function("CreateMultiple").is_none());

    let create = m.bound_operations("CreateMultiple");
    assert_eq!(create.len(), 1);
    let create = create[0];
    assert!(create.is_action);
    assert_eq!(
        create.bound_to,
        Some(Binding::Collection("crmbaseentity".into()))
    );
    let collection = "Collection(crmbaseentity)".to_string();
    assert_eq!(
        create.parameters,
        [
            ("entityset".into(), collection.clone()),
            ("Targets".into(), collection)
        ]
    );
    assert_eq!(
        m.bound_operations("Microsoft.Dynamics.CRM.CreateMultiple")
            .len(),
        1
    );
    assert_eq!(
        m.bound_operation("Microsoft.Dynamics.CRM.CreateMultiple", "account", true),
        Some(create)
    );
    assert_eq!(m.bound_operation("CreateMultiple", "account", false), None);
    assert_eq!(
        m.bound_operation("Other.NS.CreateMultiple", "account", true),
        None
    );
    assert!(m.bound_operations("WhoAmI").is_empty());
    assert!(m.has_complex_type("WhoAmIResponse"));
}

const HIERARCHY: &str = r#"
<EntityType Name="base" Abstract="true"><Key><PropertyRef Name="baseid"/></Key>
  <Property Name="baseid" Type="Edm.Guid"/><Property Name="createdon" Type="Edm.DateTimeOffset"/>
  <NavigationProperty Name="createdby" Type="mscrm.user"/>
</EntityType>
<EntityType Name="mid" BaseType="Microsoft.Dynamics.CRM.base">
  <Property Name="midprop" Type="Edm.String"/>
  <NavigationProperty Name="owners" Type="Collection(Microsoft.Dynamics.CRM.user)"/>
</EntityType>
<EntityType Name="leaf" BaseType="mscrm.mid"><Property Name="leafprop" Type="Edm.Int32"/></EntityType>
<EntityType Name="rekeyed" BaseType="mscrm.mid"><Key><PropertyRef Name="a"/><PropertyRef Name="b"/></Key></EntityType>
<EntityType Name="user"><Key><PropertyRef Name="userid"/></Key></EntityType>
<EntityType Name="orphan" BaseType="mscrm.missing"><Property Name="own" Type="Edm.String"/></EntityType>
"#;

#[test]
fn members_are_inherited_over_several_levels() {
    let m = parse(HIERARCHY);
    assert_eq!(m.key_of("leaf"), Some(&["baseid".to_string()][..]));
    assert_eq!(m.key_of("rekeyed").unwrap(), ["a", "b"]);
    assert!(m.has_property("leaf", "createdon") && m.has_property("leaf", "midprop"));
    assert!(m.has_property("leaf", "leafprop") && !m.has_property("mid", "leafprop"));
    assert_eq!(m.navigation("leaf", "createdby"), Some(&nav("user", false)));
    assert_eq!(m.navigation("leaf", "owners"), Some(&nav("user", true)));
    assert!(m.entity_type("leaf").unwrap().navigation.is_empty());
    let chain: Vec<_> = m
        .ancestry("leaf")
        .map(|t| t.logical_name.as_str())
        .collect();
    assert_eq!(chain, ["leaf", "mid", "base"]);
}

#[test]
fn a_name_that_is_both_a_column_and_a_navigation_is_the_navigation() {
    // Invalid CSDL (a name is one member of a type and its base types), read the strict way:
    // following it is a read of the related table, not a column.
    let m = parse(
        r#"<EntityType Name="base"><Key><PropertyRef Name="baseid"/></Key>
<Property Name="baseid" Type="Edm.Guid"/>
<NavigationProperty Name="clash" Type="mscrm.user"/></EntityType>
<EntityType Name="leaf" BaseType="mscrm.base"><Property Name="clash" Type="Edm.String"/>
<Property Name="plain" Type="Edm.String"/><NavigationProperty Name="owner" Type="mscrm.user"/></EntityType>
<EntityType Name="same"><Key><PropertyRef Name="sameid"/></Key><Property Name="sameid" Type="Edm.Guid"/>
<Property Name="x" Type="Edm.String"/><NavigationProperty Name="x" Type="mscrm.user"/></EntityType>
<EntityType Name="user"><Key><PropertyRef Name="userid"/></Key></EntityType>"#,
    );
    let is_nav = |ty: &str, name: &str| matches!(m.member(ty, name), Some(Member::Navigation(_)));
    assert!(is_nav("leaf", "clash") && is_nav("same", "x"));
    assert!(is_nav("base", "clash") && is_nav("leaf", "owner"));
    assert_eq!(m.member("leaf", "plain"), Some(Member::Property));
    assert_eq!(m.member("leaf", "baseid"), Some(Member::Property));
    assert_eq!(m.member("leaf", "nosuch"), None);
    // A well-formed hierarchy takes the column-first path with the same answers.
    let h = parse(HIERARCHY);
    assert!(h.disjoint.iter().all(|d| *d));
    assert!(!m.disjoint[m.type_index["leaf"]] && !m.disjoint[m.type_index["same"]]);
    assert_eq!(h.member("leaf", "createdon"), Some(Member::Property));
    assert_eq!(
        h.member("leaf", "owners"),
        Some(Member::Navigation(&nav("user", true)))
    );
    assert_eq!(h.member("leaf", "nosuch"), None);
}

#[test]
fn derivation_is_reflexive_and_fails_closed() {
    let m = parse(HIERARCHY);
    assert!(m.is_derived_from("leaf", "base") && m.is_derived_from("leaf", "mid"));
    assert!(m.is_derived_from("leaf", "leaf"));
    assert!(!m.is_derived_from("base", "leaf") && !m.is_derived_from("user", "base"));
    assert!(!m.is_derived_from("nosuch", "nosuch"));
    // A base type missing from the document ends the walk: nothing is inherited from it.
    assert_eq!(
        m.entity_type("orphan").unwrap().base_type.as_deref(),
        Some("missing")
    );
    assert_eq!(m.key_of("orphan"), None);
    assert!(m.has_property("orphan", "own") && !m.is_derived_from("orphan", "missing"));
}

#[test]
fn qualifiers_of_every_declared_schema_are_removed() {
    let xml = r#"<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>
<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm">
  <EntityType Name="contact">
    <NavigationProperty Name="by_alias" Type="mscrm.thing"/>
    <NavigationProperty Name="by_namespace" Type="Microsoft.Dynamics.CRM.contact"/>
    <NavigationProperty Name="later_alias" Type="Collection(other.thing)"/>
    <NavigationProperty Name="undeclared" Type="Elsewhere.contact"/>
    <NavigationProperty Name="to_complex" Type="mscrm.Shape"/>
  </EntityType>
  <ComplexType Name="Shape"/>
  <EntityContainer Name="System">
    <EntitySet Name="contacts" EntityType="mscrm.contact"/>
    <EntitySet Name="things" EntityType="Other.Namespace.thing"/>
    <EntitySet Name="ghosts" EntityType="mscrm.ghost"/>
    <EntitySet Name="strangers" EntityType="Elsewhere.contact"/>
  </EntityContainer>
</Schema>
<Schema Namespace="Other.Namespace" Alias="other"><EntityType Name="thing"/></Schema>
</edmx:DataServices></edmx:Edmx>"#;
    let m = Metadata::parse(xml.as_bytes()).unwrap();
    assert_eq!(
        m.navigation("contact", "by_alias"),
        Some(&nav("thing", false))
    );
    assert_eq!(
        m.navigation("contact", "by_namespace"),
        Some(&nav("contact", false))
    );
    assert_eq!(
        m.navigation("contact", "later_alias"),
        Some(&nav("thing", true))
    );
    // Unresolvable targets are dropped, so a request through them is unknown.
    assert_eq!(m.navigation("contact", "undeclared"), None);
    assert_eq!(m.navigation("contact", "to_complex"), None);
    let sets: Vec<_> = m.entity_sets().collect();
    assert_eq!(sets, [("contacts", "contact"), ("things", "thing")]);
    assert_eq!(
        m.unqualify("Microsoft.Dynamics.CRM.contact"),
        Some("contact")
    );
    assert_eq!(m.unqualify("mscrm.contact"), Some("contact"));
    assert_eq!(m.unqualify("other.thing"), Some("thing"));
    assert_eq!(m.unqualify("Edm.String"), None);
    assert_eq!(m.unqualify("contact"), Some("contact"));
}

#[test]
fn a_type_in_two_sets_has_no_single_set() {
    let m = parse(
        r#"<EntityType Name="a"/><EntityType Name="b"/>
<EntityContainer Name="System"><EntitySet Name="as" EntityType="mscrm.a"/>
<EntitySet Name="as2" EntityType="mscrm.a"/><EntitySet Name="bs" EntityType="mscrm.b"/></EntityContainer>"#,
    );
    assert_eq!(m.set_of("a"), None);
    assert_eq!(m.set_of("b"), Some("bs"));
    assert_eq!(m.entity_set("as2").unwrap().logical_name, "a");
}

const OPERATIONS: &str = r#"
<EntityType Name="crmbaseentity" Abstract="true"/>
<EntityType Name="contact" BaseType="mscrm.crmbaseentity"/>
<EntityType Name="account" BaseType="mscrm.crmbaseentity"/>
<Function Name="Calc" IsBound="true"><Parameter Name="e" Type="mscrm.contact"/><Parameter Name="n" Type="Edm.Int32"/><ReturnType Type="Edm.Int32"/></Function>
<Function Name="Calc" IsBound="true"><Parameter Name="s" Type="Collection(mscrm.contact)"/><ReturnType Type="Collection(mscrm.contact)"/></Function>
<Function Name="Calc" IsBound="true"><Parameter Name="e" Type="Microsoft.Dynamics.CRM.crmbaseentity"/></Function>
<Function Name="Calc" IsBound="false"><Parameter Name="x" Type="Edm.String"/></Function>
<Function Name="Calc"><Parameter Name="x" Type="Edm.Int64"/></Function>
<Action Name="Do"><Parameter Name="Target" Type="mscrm.crmbaseentity"/></Action>
<Action Name="Broken" IsBound="true"/>
<Action Name="OnText" IsBound="1"><Parameter Name="t" Type="Edm.String"/></Action>
<EntityContainer Name="System"><FunctionImport Name="CalcImport" Function="mscrm.Calc"/>
<ActionImport Name="DoIt" Action="Microsoft.Dynamics.CRM.Do"/></EntityContainer>"#;

#[test]
fn overloads_resolve_to_the_nearest_binding() {
    let m = parse(OPERATIONS);
    let bound = m.bound_operations("Calc");
    let bindings: Vec<_> = bound
        .iter()
        .map(|op| op.bound_to.clone().unwrap())
        .collect();
    assert_eq!(
        bindings,
        [
            Binding::Entity("contact".into()),
            Binding::Collection("contact".into()),
            Binding::Entity("crmbaseentity".into()),
        ]
    );
    let pick = |logical, collection| m.bound_operation("Calc", logical, collection);
    assert_eq!(pick("contact", false), Some(bound[0]));
    assert_eq!(pick("contact", true), Some(bound[1]));
    assert_eq!(pick("account", false), Some(bound[2]));
    assert_eq!(pick("account", true), None);
    assert_eq!(bound[1].return_type.as_deref(), Some("Collection(contact)"));
    assert_eq!(bound[0].parameters[1], ("n".into(), "Edm.Int32".into()));
}

#[test]
fn unbound_operations_by_import_or_declaration() {
    let m = parse(OPERATIONS);
    let calc = m.unbound_function("Calc").unwrap();
    assert_eq!(calc.parameters, [("x".into(), "Edm.String".into())]);
    assert_eq!(m.unbound_function("CalcImport"), Some(calc));
    assert_eq!(m.unbound_action("DoIt").unwrap().name, "Do");
    assert_eq!(m.unbound_action("Do").unwrap().name, "Do");
    assert!(m.unbound_function("Do").is_none() && m.unbound_action("Calc").is_none());
    assert!(m.bound_operations("Broken").is_empty() && m.unbound_action("Broken").is_none());
    assert_eq!(
        m.bound_operations("OnText")[0].bound_to,
        Some(Binding::Other("Edm.String".into()))
    );
    assert_eq!(
        m.operations().count(),
        7,
        "the binding-less bound action is dropped"
    );
}

#[test]
fn tolerates_both_tag_forms_prefixes_and_noise() {
    let m = parse(
        r#"<!-- comment --><?pi data?>
<Annotations Target="mscrm.contact"><Annotation Term="X"><EntityType Name="hidden"/></Annotation></Annotations>
<Unknown><EntityType Name="hidden2"/></Unknown>
<edm:EntityType xmlns:edm="http://docs.oasis-open.org/odata/ns/edm" Name="contact" xml:base="http://x/" Custom="1">
  <Documentation><Summary>Person &amp; <![CDATA[<EntityType Name="fake">]]></Summary></Documentation>
  <Key><PropertyRef Name="contactid"></PropertyRef></Key>
  <Property Name="contactid" Type="Edm.Guid"></Property>
  <Property Name="name&amp;more" Type="Edm.String"><Annotation Term="Y"><Record/></Annotation></Property>
  <NavigationProperty Name="self" Type="mscrm.contact"><OnDelete Action="Cascade"/></NavigationProperty>
  text between elements
</edm:EntityType>
<EntityContainer Name="System"><EntitySet Name="contacts" EntityType="mscrm.contact"></EntitySet><Singleton Name="me" Type="mscrm.contact"/></EntityContainer>"#,
    );
    assert!(m.entity_type("hidden").is_none() && m.entity_type("hidden2").is_none());
    assert!(m.entity_type("fake").is_none());
    assert_eq!(m.key_of("contact").unwrap(), ["contactid"]);
    assert!(m.has_property("contact", "name&more"));
    assert_eq!(
        m.navigation("contact", "self"),
        Some(&nav("contact", false))
    );
    assert_eq!(m.set_of("contact"), Some("contacts"));
}

#[test]
fn a_bare_schema_root_and_a_bom_are_accepted() {
    let xml =
        "\u{feff}<?xml version=\"1.0\"?><Schema Namespace=\"N\"><EntityType Name=\"t\"/></Schema>";
    let m = Metadata::parse(xml.as_bytes()).unwrap();
    assert!(m.entity_type("t").is_some());
}

#[test]
fn synthetic_counts() {
    let tables = 60;
    let xml = synthetic::synthetic_csdl(tables);
    let m = Metadata::parse(xml.as_bytes()).unwrap();
    assert_eq!(m.entity_types().count(), tables + 2);
    assert_eq!(m.entity_sets().count(), tables + 1);
    for i in 0..tables {
        let name = format!("new_entity{i}");
        let ty = m.entity_type(&name).unwrap();
        assert_eq!(ty.properties.len(), property_count(i), "{name}");
        assert_eq!(ty.navigation.len(), navigation_count(i), "{name}");
        assert_eq!(m.set_of(&name), Some(format!("{name}s").as_str()));
        let target = format!("new_entity{}", synthetic::target(i, 0, tables));
        let lookup = m.navigation(&name, "new_lookup0").unwrap();
        assert_eq!(
            (lookup.target.as_str(), lookup.collection),
            (target.as_str(), false)
        );
        assert_eq!(lookup.lookup.as_deref(), Some("_new_lookup0_value"));
        assert!(m.has_property(&name, "_new_lookup0_value"));
        let key = if synthetic::is_activity(i) {
            "activityid".into()
        } else {
            format!("{name}id")
        };
        assert_eq!(m.key_of(&name).unwrap(), [key]);
    }
    let approve = (0..tables).filter(|&i| synthetic::has_approve(i)).count();
    assert_eq!(m.bound_operations("new_Approve").len(), approve);
    assert!(
        m.bound_operation("new_Approve", "new_entity25", false)
            .is_some()
    );
    assert!(
        m.bound_operation("new_Approve", "new_entity26", false)
            .is_none()
    );
    assert!(
        m.bound_operation("CreateMultiple", "new_entity26", true)
            .is_some()
    );
    assert!(m.unbound_action("new_Recalculate7").is_some());
    assert!(m.unbound_function("WhoAmI").is_some());
    assert!(m.has_enum_type("new_Priority") && m.has_complex_type("new_Response3"));
}
