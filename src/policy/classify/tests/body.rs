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
    assert!(d.allowed(), "{} (uses: {:?})", d.reason, d.uses);
}

#[track_caller]
fn denied(d: &Decision, kind: Denial, needles: &[&str]) {
    assert_eq!(d.denial, Some(kind), "{} (uses: {:?})", d.reason, d.uses);
    for n in needles {
        assert!(d.reason.contains(n), "`{n}` not in: {}", d.reason);
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
    assert!(!d.reason.contains("systemusers"), "{}", d.reason);
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

#[test]
fn duplicate_keys_are_refused_at_any_depth() {
    let bodies = [
        r##"{"firstname":"a","firstname":"b"}"##,
        r##"{"firstname":"a","parentcustomerid_account":{"name":"x","name":"y"}}"##,
        r##"{"Targets":[{"@odata.type":"Microsoft.Dynamics.CRM.contact","firstname":"a","firstname":"b"}]}"##,
    ];
    let d = judge("POST", "contacts", Some(bodies[0]), &[]);
    denied(&d, BAD, &["`firstname`", "twice"]);
    let d = judge("POST", "contacts", Some(bodies[1]), &[]);
    denied(&d, BAD, &["`name`", "twice"]);
    let d = judge(
        "POST",
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple",
        Some(bodies[2]),
        &[],
    );
    denied(&d, BAD, &["`firstname`", "twice"]);
    // An action body, a $ref body and a JSON alias value.
    let d = judge(
        "POST",
        "Tag",
        Some(
            r##"{"Target":{"@odata.type":"Microsoft.Dynamics.CRM.contact","@odata.type":"Microsoft.Dynamics.CRM.systemuser"}}"##,
        ),
        &[],
    );
    denied(&d, BAD, &["`@odata.type`", "twice"]);
    let d = judge(
        "PUT",
        &format!("contacts({C})/parentcustomerid_account/$ref"),
        Some(&format!(
            r##"{{"@odata.id":"accounts({A})","@odata.id":"systemusers({A})"}}"##
        )),
        &[],
    );
    denied(&d, BAD, &["`@odata.id`", "twice"]);
}

// Item 9: bulk writes.

#[test]
fn bulk_writes_are_writes_on_their_table_without_an_actions_entry() {
    let create = r##"{"Targets":[{"@odata.type":"Microsoft.Dynamics.CRM.contact","firstname":"a"},{"@odata.type":"#mscrm.contact","lastname":"b"}]}"##;
    let d = judge(
        "POST",
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple",
        Some(create),
        &[],
    );
    allowed(&d);
    assert_eq!(tables(&d), ["POST contacts", "POST contacts"]);
    assert!(!d.uses.iter().any(|u| matches!(u, Use::Action(_))));
    let update = format!(
        r##"{{"Targets":[{{"@odata.type":"Microsoft.Dynamics.CRM.contact","contactid":"{C}","firstname":"a"}}]}}"##
    );
    let d = judge(
        "POST",
        "contacts/Microsoft.Dynamics.CRM.UpdateMultiple",
        Some(&update),
        &[],
    );
    allowed(&d);
    assert_eq!(tables(&d), ["PATCH contacts"]);
    // The Python SDK's upsert: the row's alternate key in @odata.id.
    let upsert = r##"{"Targets":[{"firstname":"a","@odata.type":"Microsoft.Dynamics.CRM.contact","@odata.id":"contacts(emailaddress1='a@b.c')"}]}"##;
    let d = judge(
        "POST",
        "contacts/Microsoft.Dynamics.CRM.UpsertMultiple",
        Some(upsert),
        &[],
    );
    allowed(&d);
    // The verbs of the table decide: leads allows GET only.
    let lead = r##"{"Targets":[{"@odata.type":"Microsoft.Dynamics.CRM.lead","subject":"a"}]}"##;
    for (action, verb) in [
        ("CreateMultiple", "POST on `leads`"),
        ("UpdateMultiple", "PATCH on `leads`"),
        ("UpsertMultiple", "POST on `leads`"),
    ] {
        let url = format!("leads/Microsoft.Dynamics.CRM.{action}");
        denied(&judge("POST", &url, Some(lead), &[]), NO, &[verb]);
    }
}

#[test]
fn actions_take_no_query_options() {
    let create =
        r##"{"Targets":[{"@odata.type":"Microsoft.Dynamics.CRM.contact","firstname":"a"}]}"##;
    let url = "contacts/Microsoft.Dynamics.CRM.CreateMultiple?$expand=createdby";
    denied(
        &judge("POST", url, Some(create), &[]),
        BAD,
        &["no query options"],
    );
    let mut p = example_policy();
    p.actions.push("Tag".into());
    let body = r##"{"Target":{"@odata.type":"Microsoft.Dynamics.CRM.contact"}}"##;
    let d = judge_with(&p, "POST", "Tag?$select=x", Some(body), &[]);
    denied(&d, BAD, &["no query options"]);
}

#[test]
fn every_bulk_target_is_checked_like_a_write_body() {
    let url = "contacts/Microsoft.Dynamics.CRM.CreateMultiple";
    let target = |extra: &str| {
        format!(
            r##"{{"Targets":[{{"@odata.type":"Microsoft.Dynamics.CRM.contact","firstname":"a"{extra}}}]}}"##
        )
    };
    let d = judge(
        "POST",
        url,
        Some(&target(r##","parentcustomerid_account":{"name":"x"}"##)),
        &[],
    );
    denied(&d, NO, &["POST on `accounts`"]);
    let d = judge(
        "POST",
        url,
        Some(&target(&format!(
            r##","createdby@odata.bind":"systemusers({A})""##
        ))),
        &[],
    );
    denied(&d, NO, &["`systemusers`"]);
    let d = judge("POST", url, Some(&target(r##","nosuchcolumn":1"##)), &[]);
    denied(&d, NO, &["`nosuchcolumn`"]);
    let d = judge(
        "POST",
        url,
        Some(&target(r##","@odata.id":"accounts(name='x')""##)),
        &[],
    );
    denied(&d, BAD, &["`@odata.id`", "accounts"]);
    let other = r##"{"Targets":[{"@odata.type":"Microsoft.Dynamics.CRM.lead","subject":"a"}]}"##;
    denied(
        &judge("POST", url, Some(other), &[]),
        BAD,
        &["does not match contact"],
    );
    let unqualified = r##"{"Targets":[{"@odata.type":"contact","firstname":"a"}]}"##;
    denied(
        &judge("POST", url, Some(unqualified), &[]),
        NO,
        &["`contact`"],
    );
    let extra = r##"{"Targets":[],"Other":1}"##;
    denied(&judge("POST", url, Some(extra), &[]), BAD, &["Targets"]);
    // A column list applies to bulk rows.
    let mut p = example_policy();
    p.tables.insert(
        "opportunities".into(),
        TableRule {
            verbs: vec![Verb::Get, Verb::Post],
            columns: Some(vec!["name".into()]),
        },
    );
    let opp = |col: &str| {
        format!(
            r##"{{"Targets":[{{"@odata.type":"Microsoft.Dynamics.CRM.opportunity","{col}":"a"}}]}}"##
        )
    };
    let url = "opportunities/Microsoft.Dynamics.CRM.CreateMultiple";
    allowed(&judge_with(&p, "POST", url, Some(&opp("name")), &[]));
    let d = judge_with(&p, "POST", url, Some(&opp("statuscode")), &[]);
    denied(&d, NO, &["`statuscode`"]);
}

#[test]
fn other_actions_still_need_their_actions_entry() {
    let body = format!(
        r##"{{"Target":{{"@odata.type":"Microsoft.Dynamics.CRM.contact","contactid":"{C}"}}}}"##
    );
    denied(
        &judge("POST", "Tag", Some(&body), &[]),
        NO,
        &["action `Tag`"],
    );
    let mut p = example_policy();
    p.actions.push("Tag".into());
    allowed(&judge_with(&p, "POST", "Tag", Some(&body), &[]));
}

// Item 7c: annotation spellings in action bodies.

#[test]
fn action_bodies_understand_type_spellings_and_refuse_unknown_annotations() {
    let mut p = example_policy();
    p.actions.push("Tag".into());
    let with_type = |t: &str| format!(r##"{{"Target":{{"@odata.type":"{t}"}}}}"##);
    // Every qualified spelling of an entity type is a read of its table.
    for t in [
        "Microsoft.Dynamics.CRM.systemuser",
        "#Microsoft.Dynamics.CRM.systemuser",
        "mscrm.systemuser",
        "#mscrm.systemuser",
    ] {
        let d = judge_with(&p, "POST", "Tag", Some(&with_type(t)), &[]);
        denied(&d, NO, &["GET on `systemusers`"]);
    }
    allowed(&judge_with(
        &p,
        "POST",
        "Tag",
        Some(&with_type("#mscrm.contact")),
        &[],
    ));
    // Unqualified or unknown names, unknown annotations: refused, named.
    for (body, needle) in [
        (with_type("systemuser"), "`systemuser`"),
        (with_type("#Other.systemuser"), "`#Other.systemuser`"),
        (
            r##"{"Target":{"@odata.type":"#mscrm.contact","@type":"#mscrm.systemuser"}}"##.into(),
            "`@type`",
        ),
        (
            r##"{"Target":{"@odata.type":"#mscrm.contact","@OData.Type":"#mscrm.systemuser"}}"##
                .into(),
            "`@OData.Type`",
        ),
        (
            format!(
                r##"{{"Target":{{"@odata.type":"#mscrm.contact","x@odata.Bind":"systemusers({A})"}}}}"##
            ),
            "`x@odata.Bind`",
        ),
    ] {
        let d = judge_with(&p, "POST", "Tag", Some(&body), &[]);
        denied(&d, NO, &[needle]);
    }
}

// Item 12: round-tripped records.

#[test]
fn a_round_tripped_record_may_carry_its_etag() {
    let url = format!("contacts({C})");
    let body = r##"{"@odata.context":"https://org.crm.dynamics.com/api/data/v9.2/$metadata#contacts/$entity","@odata.etag":"W/\"123\"","firstname":"a"}"##;
    let d = judge("PATCH", &url, Some(body), &[]);
    allowed(&d);
    assert_eq!(tables(&d), ["PATCH contacts", "PATCH contacts"]);
    for (body, needle) in [
        (
            r##"{"firstname@odata.etag":"x","firstname":"a"}"##,
            "`firstname@odata.etag`",
        ),
        (
            r##"{"@odata.nextLink":"x","firstname":"a"}"##,
            "`@odata.nextLink`",
        ),
        (
            r##"{"@Microsoft.Dynamics.CRM.x":"x"}"##,
            "`@Microsoft.Dynamics.CRM.x`",
        ),
        (
            r##"{"firstname@OData.Community.Display.V1.FormattedValue":"x"}"##,
            "FormattedValue",
        ),
    ] {
        denied(&judge("PATCH", &url, Some(body), &[]), NO, &[needle]);
    }
}

// Item 13: verbs are data operations.

#[test]
fn setting_or_clearing_one_column_is_a_patch() {
    let d = judge(
        "PUT",
        &format!("contacts({C})/firstname"),
        Some(r##"{"value":"a"}"##),
        &[],
    );
    allowed(&d);
    assert_eq!(tables(&d), ["PATCH contacts"]);
    allowed(&judge(
        "DELETE",
        &format!("contacts({C})/firstname"),
        None,
        &[],
    ));
    // The body of a one-column PUT is that column's value and nothing else.
    for body in [
        r##"{"value":{"name":"x"}}"##,
        r##"{"value":"a","lastname":"b"}"##,
        r##"{"value":"a","parentcustomerid_account@odata.bind":"accounts(1)"}"##,
        r##"{}"##,
        r##"["a"]"##,
    ] {
        let d = judge("PUT", &format!("contacts({C})/firstname"), Some(body), &[]);
        denied(&d, BAD, &["PUT of the column `firstname`"]);
    }
    for method in ["PUT", "DELETE"] {
        let d = judge(
            method,
            &format!("leads({L})/subject"),
            Some(r##"{"value":"a"}"##),
            &[],
        );
        denied(&d, NO, &["PATCH on `leads`"]);
    }
    // Clearing the row's own lookup updates that column and reads nothing.
    let d = judge(
        "DELETE",
        &format!("contacts({C})/parentcustomerid_account/$ref"),
        None,
        &[],
    );
    allowed(&d);
    assert_eq!(tables(&d), ["GET contacts", "PATCH contacts"]);
    let d = judge("DELETE", &format!("leads({L})/createdby/$ref"), None, &[]);
    denied(&d, NO, &["PATCH on `leads`"]);
}
