//! Write bodies and actions under the example policy: duplicate keys, bulk writes, action
//! type spellings and annotations, round-tripped records, one-column writes.

use super::*;

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
