//! Operations, metadata reads, writes and column lists, one table per shape; and the shapes
//! that pass without metadata.

use super::*;

#[test]
fn functions_and_actions() {
    let targets = |t: &str| {
        format!(r#"{{"Targets":[{{"@odata.type":"Microsoft.Dynamics.CRM.{t}","firstname":"a"}}]}}"#)
    };
    check(&[
        ("GET", "WhoAmI".into(), None, None),
        ("GET", "WhoAmI()".into(), None, None),
        (
            "POST",
            "WhoAmI".into(),
            None,
            no("POST is not a valid method for the function WhoAmI"),
        ),
        (
            "GET",
            "RetrieveVersion()".into(),
            None,
            no("function `RetrieveVersion` is not in this tenant's functions list"),
        ),
        (
            "GET",
            "NoSuchThing()".into(),
            None,
            no("`NoSuchThing` is not an entity set or operation of this org"),
        ),
        (
            "POST",
            "contacts/Microsoft.Dynamics.CRM.CreateMultiple".into(),
            Some(&targets("contact")),
            None,
        ),
        (
            "POST",
            "accounts/Microsoft.Dynamics.CRM.CreateMultiple".into(),
            Some(&targets("account").replace("firstname", "name")),
            no("POST on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "POST",
            "contacts/Microsoft.Dynamics.CRM.CreateMultiple".into(),
            Some(&targets("account")),
            bad(r#"@odata.type "Microsoft.Dynamics.CRM.account" does not match contact"#),
        ),
        (
            "POST",
            "contacts/Microsoft.Dynamics.CRM.CreateMultiple".into(),
            Some(r#"{"Targets":[{"firstname":"a"}]}"#),
            bad("every CreateMultiple target needs @odata.type"),
        ),
        (
            "GET",
            "contacts/Microsoft.Dynamics.CRM.CreateMultiple".into(),
            None,
            no("GET is not a valid method for the action CreateMultiple"),
        ),
    ]);
}

#[test]
fn entity_definitions() {
    check(&[
        ("GET", "EntityDefinitions(LogicalName='contact')".into(), None, None),
        ("GET", "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata".into(), None, None),
        ("GET", "EntityDefinitions?$filter=LogicalName+eq+'contact'&$select=LogicalName,EntitySetName".into(), None, None),
        ("GET", "EntityDefinitions(LogicalName='systemuser')".into(), None, no("EntityDefinitions of `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "EntityDefinitions?$filter=LogicalName eq 'contact' or LogicalName eq 'systemuser'".into(), None, no("EntityDefinitions of `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "EntityDefinitions".into(), None, no("unfiltered EntityDefinitions listings are not allowed (filter by LogicalName)")),
        ("GET", "EntityDefinitions?$filter=contains(LogicalName,'a')".into(), None, no("EntityDefinitions filter `contains(LogicalName,'a')` is not `LogicalName eq '<name>'`")),
        ("POST", "EntityDefinitions".into(), Some("{}"), no("POST is not a valid method for EntityDefinitions")),
        ("GET", "$metadata".into(), None, no("$metadata is not allowed for this tenant (allow_metadata)")),
    ]);
}

#[test]
fn write_bodies_binds_and_deep_inserts() {
    let bind =
        |url: &str| format!(r#"{{"firstname":"a","parentcustomerid_account@odata.bind":"{url}"}}"#);
    check(&[
        (
            "POST",
            "contacts".into(),
            Some(&bind(&format!("/accounts({A})"))),
            None,
        ),
        (
            "POST",
            "contacts".into(),
            Some(&bind(&format!("accounts({A})"))),
            None,
        ),
        (
            "POST",
            "contacts".into(),
            Some(&bind(&format!(
                "http://gw:8080/contoso/api/data/v9.2/accounts({A})"
            ))),
            None,
        ),
        (
            "POST",
            "contacts".into(),
            Some(&bind(&format!(
                "https://org.crm.dynamics.com/api/data/v9.2/accounts({A})"
            ))),
            None,
        ),
        (
            "POST",
            "contacts".into(),
            Some(&bind(&format!(
                "https://evil.example/api/data/v9.2/accounts({A})"
            ))),
            bad(
                "`https://evil.example/api/data/v9.2/accounts(a0000000-0000-4000-8000-000000000001)` refers to another host",
            ),
        ),
        (
            "POST",
            "contacts".into(),
            Some(&bind(&format!("/contacts({C})"))),
            bad("`parentcustomerid_account@odata.bind` must name a row of accounts, not contacts"),
        ),
        (
            "POST",
            "contacts".into(),
            Some(&format!(
                r#"{{"createdby@odata.bind":"/systemusers({C})"}}"#
            )),
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "POST",
            "contacts".into(),
            Some(r#"{"firstname":"a","parentcustomerid_account":{"name":"new"}}"#),
            no("POST on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "POST",
            "accounts".into(),
            Some(r#"{"name":"a"}"#),
            no("POST on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "PATCH",
            format!("accounts({A})"),
            Some(r#"{"name":"a"}"#),
            no("PATCH on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "POST",
            "contacts".into(),
            Some(r#"{"nosuchcolumn":1}"#),
            no("`nosuchcolumn` is not a column or navigation property of contact"),
        ),
        (
            "POST",
            "contacts".into(),
            Some(r#"{"firstname":"a","x@OData.Community.Display.V1.FormattedValue":"y"}"#),
            no(
                "the annotation `x@OData.Community.Display.V1.FormattedValue` in a request body is not one the gateway understands",
            ),
        ),
        (
            "POST",
            "contacts".into(),
            Some("not json"),
            bad("the body is not valid JSON"),
        ),
        (
            "POST",
            "contacts".into(),
            Some(""),
            bad("a JSON body is required"),
        ),
        (
            "POST",
            "contacts".into(),
            Some(r#"{"@odata.type":"Microsoft.Dynamics.CRM.account"}"#),
            bad(r#"@odata.type "Microsoft.Dynamics.CRM.account" does not match contact"#),
        ),
    ]);
}

#[test]
fn a_column_holds_a_value_not_rows_or_annotations() {
    // An object or array under a column's name would go unread: refused, with whatever it holds.
    let hidden = format!(
        r#"{{"firstname":{{"name":"x","primarycontactid@odata.bind":"/annotations({C})"}}}}"#
    );
    let cases = [
        ("POST", "contacts".to_string(), hidden.clone()),
        ("PATCH", format!("contacts({C})"), hidden),
        (
            "POST",
            "contacts".to_string(),
            r#"{"firstname":["a"]}"#.to_string(),
        ),
        (
            "POST",
            "contacts".to_string(),
            r#"{"firstname":{}}"#.to_string(),
        ),
    ];
    for (method, url, body) in &cases {
        let d = decide(method, url, Some(body));
        assert_eq!(
            d.denial,
            Some(Denial::Malformed),
            "{method} {url} {body}: {}",
            d.reason()
        );
        assert!(
            d.reason().contains("`firstname` is a column of contact"),
            "{}",
            d.reason()
        );
    }
    for body in [
        r#"{"firstname":"a","lastname":null}"#,
        r#"{"firstname":"1","lastname":2,"emailaddress1":true}"#,
    ] {
        let d = decide("POST", "contacts", Some(body));
        assert!(d.allowed(), "{body}: {}", d.reason());
    }
}

#[test]
fn writes_that_return_rows_are_reads() {
    let mut h = HeaderMap::new();
    h.insert("prefer", "return=\"representation\"".parse().unwrap());
    let body = Some(r#"{"firstname":"a"}"#);
    // the returned row expands into a table outside the allowlist
    let url = "contacts?$expand=createdby($select=fullname)";
    let outside = no("GET on `systemusers`: the table is not in this tenant's allowlist");
    let d = decide_with("POST", url, body, &h, Some(meta()));
    assert_outcome(&d, outside, "POST with return=representation");
    let d = decide_with("POST", url, body, &HeaderMap::new(), Some(meta()));
    assert_outcome(&d, outside, "POST");
    // a collection-valued bind changes the bound rows' lookup: PATCH on them
    let bind =
        format!(r#"{{"name":"x","contact_customer_accounts@odata.bind":["/contacts({C})"]}}"#);
    let d = decide("POST", "accounts", Some(&bind));
    assert!(
        d.uses
            .iter()
            .any(|u| matches!(u, Use::Table(t) if &*t.set == "contacts" && t.verb == Verb::Patch)),
        "{:?}",
        d.uses
    );
    // so does a $ref on a collection-valued navigation
    let d = decide(
        "POST",
        &format!("accounts({A})/contact_customer_accounts/$ref"),
        Some(&format!(r#"{{"@odata.id":"contacts({C})"}}"#)),
    );
    assert!(
        d.uses
            .iter()
            .any(|u| matches!(u, Use::Table(t) if &*t.set == "contacts" && t.verb == Verb::Patch)),
        "{:?}",
        d.uses
    );
    // naming the primary key is not naming a column
    let d = decide(
        "GET",
        &format!("opportunities(opportunityid={C})?$select=name"),
        None,
    );
    assert!(d.allowed(), "{}", d.reason());
}

#[test]
fn column_lists() {
    let d = decide("GET", "opportunities", None);
    assert!(d.allowed(), "{}", d.reason());
    assert_eq!(d.add_select.as_deref(), Some("name,estimatedvalue"));
    check(&[
        ("GET", "opportunities?$select=name".into(), None, None),
        (
            "GET",
            "opportunities?$select=name,statuscode".into(),
            None,
            no("column `statuscode` of `opportunities` is not in its column list"),
        ),
        (
            "GET",
            "opportunities?$select=name&$filter=statuscode eq 1".into(),
            None,
            no("column `statuscode` of `opportunities` is not in its column list"),
        ),
        (
            "GET",
            "opportunities?$orderby=statuscode".into(),
            None,
            no("column `statuscode` of `opportunities` is not in its column list"),
        ),
        (
            "GET",
            "opportunities?$filter=estimatedvalue gt 5&$orderby=name desc".into(),
            None,
            None,
        ),
        (
            "GET",
            "opportunities?$apply=groupby((statuscode))".into(),
            None,
            no("column `statuscode` of `opportunities` is not in its column list"),
        ),
        // navigating into opportunities observes their lookup `_parentaccountid_value`
        (
            "GET",
            format!("accounts({A})/opportunity_parent_account"),
            None,
            no("`_parentaccountid_value` of `opportunities`"),
        ),
        (
            "GET",
            format!("accounts({A})/opportunity_parent_account?$select=name"),
            None,
            no("`_parentaccountid_value` of `opportunities`"),
        ),
        (
            "GET",
            format!("accounts({A})/opportunity_parent_account?$select=statuscode"),
            None,
            no("column `statuscode` of `opportunities` is not in its column list"),
        ),
    ]);
}

#[test]
fn patch_without_post_cannot_create() {
    let d = decide("PATCH", &format!("leads({C})"), Some(r#"{"subject":"x"}"#));
    assert!(d.allowed() && d.if_match_star, "{}", d.reason());
    let d = decide(
        "PATCH",
        &format!("contacts({C})"),
        Some(r#"{"firstname":"x"}"#),
    );
    assert!(d.allowed() && !d.if_match_star);
    let mut h = HeaderMap::new();
    h.insert("if-none-match", "*".parse().unwrap());
    let d = decide_with(
        "PATCH",
        &format!("leads({C})"),
        Some(r#"{"subject":"x"}"#),
        &h,
        Some(meta()),
    );
    assert_outcome(
        &d,
        no("PATCH with If-None-Match: * creates a row in `leads`, which needs POST"),
        "create-only PATCH",
    );
}

#[test]
fn patch_without_post_keeps_only_a_well_formed_if_match() {
    let patch = |values: &[&str]| {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("if-match", v.parse().unwrap());
        }
        decide_with(
            "PATCH",
            &format!("leads({C})"),
            Some(r#"{"subject":"x"}"#),
            &h,
            Some(meta()),
        )
    };
    // The agent's own condition is sent as it is: the row must exist to match it.
    for ok in [
        &["*"][..],
        &[r#"W/"1000""#],
        &[r#""abc""#],
        &[r#"W/"1", "2""#],
        &[r#" W/"1" "#, r#""2""#],
    ] {
        let d = patch(ok);
        assert!(d.allowed() && !d.if_match_star, "{ok:?}: {}", d.reason());
    }
    // A value Dataverse might not parse could make the PATCH an unconditional upsert.
    for bad in [
        &["garbage"][..],
        &[r#""""#, "x"],
        &[","],
        &[""],
        &["W/1000"],
        &[r#""a"b""#],
        &[r#""a b""#],
        &[r#""1", nope"#],
        &[r#"W/"1""#, "later"],
    ] {
        assert_outcome(
            &patch(bad),
            no("PATCH with a malformed If-Match could create a row in `leads`, which needs POST"),
            &format!("{bad:?}"),
        );
    }
    // Where the table allows POST, the agent's If-Match is Dataverse's business.
    let mut h = HeaderMap::new();
    h.insert("if-match", "garbage".parse().unwrap());
    let d = decide_with(
        "PATCH",
        &format!("contacts({C})"),
        Some(r#"{"firstname":"x"}"#),
        &h,
        Some(meta()),
    );
    assert!(d.allowed(), "{}", d.reason());
}

#[test]
fn without_metadata_only_plain_shapes_pass() {
    let h = HeaderMap::new();
    let d = |m: &str, u: &str| decide_with(m, u, None, &h, None);
    assert!(d("GET", "contacts?$top=3").allowed());
    assert!(d("GET", "WhoAmI").allowed());
    for u in [
        "contacts?$select=fullname&$filter=fullname eq 'x'",
        "contacts?$expand=parentcustomerid_account",
        "contacts?$filter=parentcustomerid_account/name eq 'x'",
    ] {
        let x = d("GET", u);
        assert_eq!(x.denial, Some(NO), "{u}");
        assert!(x.reason().contains("metadata"), "{}", x.reason());
    }
    assert_outcome(
        &d("POST", "contacts"),
        no("needs the org's metadata, which the gateway has not loaded"),
        "a write without metadata",
    );
    assert_outcome(
        &d("GET", "systemusers"),
        no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        "GET systemusers without metadata",
    );
}

#[test]
fn denial_names_table_and_verb() {
    let d = decide("GET", "systemusers", None);
    assert_eq!(
        d.reason(),
        "GET on `systemusers`: the table is not in this tenant's allowlist"
    );
    let d = decide("PATCH", &format!("accounts({A})"), Some("{}"));
    assert_eq!(
        d.reason(),
        "PATCH on `accounts` is not allowed (allowed: GET)"
    );
}
