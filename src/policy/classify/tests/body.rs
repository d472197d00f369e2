//! Bodies, annotations and verbs at the security boundary, under the issue's example policy:
//! `contacts: [GET, POST, PATCH]`, `leads: [GET]`, `opportunities: { verbs: [GET], columns:
//! [name, estimatedvalue] }`, no actions. Every denial pins its reason.

use super::*;

use Denial::Malformed as BAD;

const L: &str = "1e000000-0000-4000-8000-000000000001";
const FORMATTED: &str = "OData.Community.Display.V1.FormattedValue";

fn example_policy() -> Policy {
    let mut p = Policy::default();
    let rule = |verbs: &[Verb]| TableRule {
        verbs: verbs.to_vec(),
        columns: None,
    };
    p.tables.insert(
        "contacts".into(),
        rule(&[Verb::Get, Verb::Post, Verb::Patch]),
    );
    p.tables.insert("leads".into(), rule(&[Verb::Get]));
    p.tables.insert(
        "opportunities".into(),
        TableRule {
            verbs: vec![Verb::Get],
            columns: Some(vec!["name".into(), "estimatedvalue".into()]),
        },
    );
    p.functions.push("WhoAmI".into());
    p
}

/// The simulator's CSDL plus one unbound action taking an entity, for action bodies.
fn meta_with_action() -> &'static Metadata {
    static M: OnceLock<Metadata> = OnceLock::new();
    M.get_or_init(|| {
        let xml = std::str::from_utf8(include_bytes!("../../../sim/metadata.xml")).unwrap();
        let xml = xml
            .replacen(
                "<Action Name=\"CreateMultiple\"",
                "<Action Name=\"Tag\"><Parameter Name=\"Target\" Type=\"mscrm.crmbaseentity\" /></Action>\n<Action Name=\"CreateMultiple\"",
                1,
            )
            .replacen(
                "<FunctionImport Name=\"WhoAmI\"",
                "<ActionImport Name=\"Tag\" Action=\"mscrm.Tag\" />\n<FunctionImport Name=\"WhoAmI\"",
                1,
            );
        Metadata::parse(xml.as_bytes()).expect("the extended CSDL parses")
    })
}

fn judge(method: &str, url: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Decision {
    judge_with(&example_policy(), method, url, body, headers)
}

fn judge_with(
    policy: &Policy,
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Decision {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q)));
    let urls = urls();
    let method: http::Method = method.parse().unwrap();
    let req = Request {
        method: &method,
        path,
        query,
        headers: &h,
        body: body.map(str::as_bytes),
    };
    // Through inspection, as the proxy and `explain` judge it (annotation reasons included).
    let tenant = crate::policy::inspect::Tenant {
        policy,
        metadata: Some(meta_with_action()),
        urls: &urls,
    };
    crate::policy::inspect::inspect(&tenant, &req).decision
}

#[track_caller]
fn allowed(d: &Decision) {
    assert!(d.allowed(), "{} (uses: {:?})", d.reason(), d.uses);
}

#[track_caller]
fn denied(d: &Decision, kind: Denial, needles: &[&str]) {
    assert_eq!(d.denial, Some(kind), "{} (uses: {:?})", d.reason(), d.uses);
    for n in needles {
        assert!(d.reason().contains(n), "`{n}` not in: {}", d.reason());
    }
}

fn tables(d: &Decision) -> Vec<String> {
    d.uses
        .iter()
        .filter_map(|u| match u {
            Use::Table(t) => Some(format!("{} {}", t.verb, t.set)),
            _ => None,
        })
        .collect()
}

// Item 4: FormattedValue of a lookup is the related row's primary name.

#[test]
fn formatted_values_read_the_tables_lookups_point_to() {
    let star = [("prefer", "odata.include-annotations=\"*\"")];
    // contacts' lookups point to accounts and systemusers, outside the example policy.
    let d = judge("GET", "contacts", None, &star);
    denied(&d, NO, &["`accounts`", "`systemusers`", FORMATTED]);
    let d = judge(
        "GET",
        "contacts?$select=firstname,_createdby_value",
        None,
        &star,
    );
    denied(&d, NO, &["`systemusers`", "_createdby_value", FORMATTED]);
    // Without the annotation, or with it excluded, or asking only for table names: allowed.
    allowed(&judge(
        "GET",
        "contacts?$select=firstname,_createdby_value",
        None,
        &[],
    ));
    for prefer in [
        "odata.include-annotations=\"*,-OData.Community.Display.V1.FormattedValue\"",
        "odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname,Microsoft.Dynamics.CRM.associatednavigationproperty\"",
        "odata.include-annotations=\"OData.Community.*,-OData.Community.Display.V1.*\"",
    ] {
        let d = judge(
            "GET",
            "contacts?$select=firstname,_createdby_value",
            None,
            &[("prefer", prefer)],
        );
        allowed(&d);
    }
    // No lookup returned: nothing else read.
    allowed(&judge("GET", "contacts?$select=firstname", None, &star));
    // A main read without $select of a table with a column list returns the listed columns only.
    let d = judge("GET", "opportunities", None, &star);
    allowed(&d);
    assert_eq!(d.add_select.as_deref(), Some("name,estimatedvalue"));
    let mut p = example_policy();
    p.tables.insert(
        "opportunities".into(),
        TableRule {
            verbs: vec![Verb::Get],
            columns: Some(vec!["name".into(), "_parentaccountid_value".into()]),
        },
    );
    let d = judge_with(&p, "GET", "opportunities", None, &star);
    denied(
        &d,
        NO,
        &[
            "`accounts`",
            "`opportunities`.`_parentaccountid_value`",
            FORMATTED,
        ],
    );
    assert!(!d.reason().contains("systemusers"), "{}", d.reason());
}

#[test]
fn formatted_values_in_every_spelling_and_every_returned_row() {
    for prefer in [
        "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\"",
        "odata.include-annotations=OData.Community.*",
        "return=minimal, odata.include-annotations=\"odata.community.display.v1.formattedvalue\"",
        "odata.include-annotations=\"-Microsoft.Dynamics.CRM.*,*\"",
    ] {
        let h = [("prefer", prefer)];
        let d = judge("GET", "contacts?$select=_createdby_value", None, &h);
        denied(&d, NO, &["`systemusers`"]);
    }
    let star = [("prefer", "odata.include-annotations=\"*\"")];
    // Expansions: the expanded rows' lookups too.
    let mut p = example_policy();
    p.tables.insert(
        "accounts".into(),
        TableRule {
            verbs: vec![Verb::Get],
            columns: None,
        },
    );
    let url = format!(
        "contacts({C})?$select=firstname&$expand=parentcustomerid_account($select=name,_createdby_value)"
    );
    denied(
        &judge_with(&p, "GET", &url, None, &star),
        NO,
        &["`systemusers`"],
    );
    let url =
        format!("contacts({C})?$select=firstname&$expand=parentcustomerid_account($select=name)");
    allowed(&judge_with(&p, "GET", &url, None, &star));
    // return=representation on a write returns the row with its lookups.
    let rep = [(
        "prefer",
        "return=representation,odata.include-annotations=\"*\"",
    )];
    let d = judge("POST", "contacts", Some(r##"{"firstname":"a"}"##), &rep);
    denied(&d, NO, &["`systemusers`"]);
    let d = judge(
        "PATCH",
        &format!("contacts({C})?$select=firstname"),
        Some(r##"{"firstname":"a"}"##),
        &rep,
    );
    allowed(&d);
    // fetchXml names the lookup by its attribute name.
    let fetch = "contacts?fetchXml=%3Cfetch%3E%3Centity%20name%3D%22contact%22%3E%3Cattribute%20name%3D%22createdby%22%2F%3E%3C%2Fentity%3E%3C%2Ffetch%3E";
    denied(&judge("GET", fetch, None, &star), NO, &["`systemusers`"]);
    // A lookup to a table with a column list: its primary name cannot be told, so refused.
    let d = judge_with(
        &p,
        "GET",
        &format!("accounts({A})?$select=name,_primarycontactid_value"),
        None,
        &star,
    );
    allowed(&d);
    let mut restricted = p.clone();
    restricted.tables.insert(
        "contacts".into(),
        TableRule {
            verbs: vec![Verb::Get],
            columns: Some(vec!["firstname".into()]),
        },
    );
    let d = judge_with(
        &restricted,
        "GET",
        &format!("accounts({A})?$select=name,_primarycontactid_value"),
        None,
        &star,
    );
    denied(
        &d,
        NO,
        &["`contacts`", "_primarycontactid_value", FORMATTED],
    );
}

/// The simulator's CSDL with polymorphic lookups on contact: `ownerid` (a user or a team, through
/// the abstract `principal`) and `parentcustomerid` (an account or a contact).
fn meta_polymorphic() -> Metadata {
    let xml = std::str::from_utf8(include_bytes!("../../../sim/metadata.xml")).unwrap();
    let xml = xml
        .replacen(
            r#"<Property Name="_createdby_value" Type="Edm.Guid" />"#,
            r#"<Property Name="_createdby_value" Type="Edm.Guid" /><Property Name="_ownerid_value" Type="Edm.Guid" /><NavigationProperty Name="ownerid" Type="mscrm.principal" /><NavigationProperty Name="parentcustomerid_contact" Type="mscrm.contact" />"#,
            1,
        )
        .replacen(
            r#"<EntityType Name="systemuser" BaseType="mscrm.crmbaseentity">"#,
            r#"<EntityType Name="principal" BaseType="mscrm.crmbaseentity" Abstract="true" /><EntityType Name="team" BaseType="mscrm.principal"><Key><PropertyRef Name="teamid" /></Key><Property Name="teamid" Type="Edm.Guid" /></EntityType><EntityType Name="systemuser" BaseType="mscrm.principal">"#,
            1,
        )
        .replacen(
            r#"<EntitySet Name="systemusers""#,
            r#"<EntitySet Name="teams" EntityType="mscrm.team" /><EntitySet Name="systemusers""#,
            1,
        );
    Metadata::parse(xml.as_bytes()).expect("the polymorphic CSDL parses")
}

#[test]
fn a_polymorphic_lookup_reads_every_target() {
    let meta = meta_polymorphic();
    let policy = example_policy();
    let urls = urls();
    let mut h = HeaderMap::new();
    h.insert("prefer", "odata.include-annotations=\"*\"".parse().unwrap());
    let judge = |query: &str| {
        let req = Request {
            method: &http::Method::GET,
            path: "contacts",
            query: Some(query),
            headers: &h,
            body: None,
        };
        let tenant = crate::policy::inspect::Tenant {
            policy: &policy,
            metadata: Some(&meta),
            urls: &urls,
        };
        crate::policy::inspect::inspect(&tenant, &req).decision
    };
    let d = judge("$select=_ownerid_value");
    denied(
        &d,
        NO,
        &["`systemusers`", "`teams`", "`contacts`.`_ownerid_value`"],
    );
    let d = judge("$select=_parentcustomerid_value");
    denied(
        &d,
        NO,
        &["`accounts`", "`contacts`.`_parentcustomerid_value`"],
    );
    assert!(
        tables(&d).contains(&"GET contacts".to_string()),
        "{:?}",
        d.uses
    );
    let targets: Vec<String> = tables(&d);
    assert!(
        targets.iter().filter(|t| *t == "GET contacts").count() >= 2,
        "{targets:?}"
    );
}

#[test]
fn a_prefer_header_that_does_not_parse_is_refused() {
    let d = judge(
        "GET",
        "contacts?$select=firstname",
        None,
        &[("prefer", "odata.include-annotations=\"*")],
    );
    denied(&d, BAD, &["Prefer"]);
}

// Item 6: duplicate keys.

mod writes;
