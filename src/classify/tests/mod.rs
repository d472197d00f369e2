//! One table-driven test per vector of REFERENCE A, each with allowed and denied variants.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use http::HeaderMap;

use super::*;
use crate::config::{Policy, TableRule};
use crate::policy::{self, Decision, Denial};

const C: &str = "c0000000-0000-4000-8000-000000000001";
const A: &str = "a0000000-0000-4000-8000-000000000001";

fn meta() -> &'static Metadata {
    static M: OnceLock<Metadata> = OnceLock::new();
    M.get_or_init(|| {
        Metadata::parse(include_bytes!("../../sim/metadata.xml")).expect("sim CSDL parses")
    })
}

fn policy() -> Policy {
    let mut p = Policy::default();
    let rule = |verbs: &[Verb]| TableRule {
        verbs: verbs.to_vec(),
        columns: None,
    };
    p.tables.insert(
        "contacts".into(),
        rule(&[Verb::Get, Verb::Post, Verb::Patch]),
    );
    p.tables.insert("accounts".into(), rule(&[Verb::Get]));
    p.tables
        .insert("leads".into(), rule(&[Verb::Get, Verb::Patch]));
    p.tables.insert(
        "opportunities".into(),
        TableRule {
            verbs: vec![Verb::Get],
            columns: Some(vec!["name".into(), "estimatedvalue".into()]),
        },
    );
    p.functions.push("WhoAmI".into());
    p.actions.push("CreateMultiple".into());
    p
}

fn urls() -> Urls {
    Urls {
        org: "https://org.crm.dynamics.com".into(),
        gateway: vec!["http://gw:8080/contoso".into(), "http://gw:8080".into()],
        api_version: "v9.2".into(),
    }
}

fn decide_with(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &HeaderMap,
    metadata: Option<&Metadata>,
) -> Decision {
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q)));
    let policy = policy();
    let urls = urls();
    let ids = BTreeMap::new();
    let env = Env {
        metadata,
        known_functions: &policy.functions,
        urls: &urls,
        content_ids: &ids,
    };
    let method: http::Method = method.parse().unwrap();
    let req = Request {
        method: &method,
        path,
        query,
        headers,
        body: body.map(str::as_bytes),
    };
    policy::decide(&policy, classify(&req, &env), headers)
}

fn decide(method: &str, url: &str, body: Option<&str>) -> Decision {
    decide_with(method, url, body, &HeaderMap::new(), Some(meta()))
}

/// Each row: method, URL, body, expected outcome (None = allowed).
fn check(rows: &[(&str, String, Option<&str>, Option<Denial>)]) {
    for (m, u, b, expected) in rows {
        let d = decide(m, u, *b);
        assert_eq!(
            d.denial, *expected,
            "{m} {u} {b:?}: {} (uses: {:?})",
            d.reason, d.uses
        );
    }
}

use Denial::{Malformed as BAD, Policy as NO};

mod body;

#[test]
fn collections_records_and_keys() {
    check(&[
        ("GET", "contacts".into(), None, None),
        ("GET", format!("contacts({C})"), None, None),
        (
            "GET",
            "contacts(emailaddress1='a@b.com')".into(),
            None,
            None,
        ),
        (
            "GET",
            "contacts(firstname='Joe',emailaddress1='x')".into(),
            None,
            None,
        ),
        ("GET", "systemusers".into(), None, Some(NO)),
        ("GET", "Contacts".into(), None, Some(NO)),
        ("DELETE", format!("contacts({C})"), None, Some(NO)),
        ("DELETE", format!("accounts({A})"), None, Some(NO)),
        ("GET", "contacts()".into(), None, Some(BAD)),
    ]);
}

#[test]
fn properties_value_and_count() {
    check(&[
        ("GET", format!("contacts({C})/fullname"), None, None),
        ("GET", format!("contacts({C})/fullname/$value"), None, None),
        ("DELETE", format!("contacts({C})/fullname"), None, None),
        // Setting one column is an update: the PATCH right covers it.
        (
            "PUT",
            format!("contacts({C})/fullname"),
            Some(r#"{"value":"x"}"#),
            None,
        ),
        (
            "PUT",
            format!("accounts({A})/name"),
            Some(r#"{"value":"x"}"#),
            Some(NO),
        ),
        ("GET", format!("systemusers({C})/fullname"), None, Some(NO)),
        ("GET", "contacts/$count".into(), None, None),
        ("GET", "systemusers/$count".into(), None, Some(NO)),
        ("GET", format!("contacts({C})/$count"), None, Some(BAD)),
        ("GET", format!("contacts({C})/nosuchcolumn"), None, Some(NO)),
    ]);
}

#[test]
fn navigation_single_and_multi_hop() {
    check(&[
        (
            "GET",
            format!("contacts({C})/parentcustomerid_account"),
            None,
            None,
        ),
        (
            "GET",
            format!("accounts({A})/contact_customer_accounts"),
            None,
            None,
        ),
        (
            "GET",
            format!("accounts({A})/contact_customer_accounts({C})"),
            None,
            None,
        ),
        ("GET", format!("contacts({C})/createdby"), None, Some(NO)),
        (
            "GET",
            format!("contacts({C})/parentcustomerid_account/createdby"),
            None,
            Some(NO),
        ),
        (
            "GET",
            format!("contacts({C})/parentcustomerid_account/opportunity_parent_account"),
            None,
            None,
        ),
        (
            "POST",
            format!("accounts({A})/contact_customer_accounts"),
            Some(r#"{"firstname":"x"}"#),
            None,
        ),
        (
            "GET",
            "contacts/parentcustomerid_account".into(),
            None,
            Some(BAD),
        ),
    ]);
}

#[test]
fn references() {
    let body_c = format!(r#"{{"@odata.id":"contacts({C})"}}"#);
    let body_u = format!(r#"{{"@odata.id":"systemusers({C})"}}"#);
    check(&[
        (
            "GET",
            format!("accounts({A})/contact_customer_accounts/$ref"),
            None,
            None,
        ),
        (
            "POST",
            format!("accounts({A})/contact_customer_accounts/$ref"),
            Some(&body_c),
            Some(NO),
        ),
        (
            "PUT",
            format!("contacts({C})/parentcustomerid_account/$ref"),
            Some(&format!(r#"{{"@odata.id":"accounts({A})"}}"#)),
            None,
        ),
        (
            "PUT",
            format!("contacts({C})/parentcustomerid_account/$ref"),
            Some(&body_u),
            Some(NO),
        ),
        (
            "DELETE",
            format!("contacts({C})/parentcustomerid_account/$ref"),
            None,
            None,
        ),
        (
            "PUT",
            format!("contacts({C})/parentcustomerid_account/$ref"),
            Some(r#"{"@odata.id":"https://evil.example/api/data/v9.2/accounts(1)"}"#),
            Some(BAD),
        ),
    ]);
}

#[test]
fn expand_nested_with_options() {
    check(&[
        ("GET", "contacts?$expand=parentcustomerid_account($select=name)".into(), None, None),
        ("GET", "contacts?$expand=createdby($select=fullname)".into(), None, Some(NO)),
        ("GET", "accounts?$expand=contact_customer_accounts($select=fullname;$expand=createdby($select=fullname))".into(), None, Some(NO)),
        ("GET", "accounts?$expand=contact_customer_accounts($filter=createdby/fullname eq 'x')".into(), None, Some(NO)),
        ("GET", "accounts?$expand=contact_customer_accounts($select=fullname;$filter=Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby/fullname'))".into(), None, Some(NO)),
        ("GET", "accounts?$apply=filter(Microsoft.Dynamics.CRM.EqualUserId(propertyname='createdby/fullname'))".into(), None, Some(NO)),
        ("GET", "accounts?$expand=contact_customer_accounts($select=fullname;$orderby=fullname;$top=2)".into(), None, None),
        ("GET", "accounts?$expand=opportunity_parent_account".into(), None, Some(NO)),
        ("GET", "accounts?$expand=opportunity_parent_account($select=name)".into(), None, None),
        ("GET", "accounts?$expand=opportunity_parent_account($select=name,secret)".into(), None, Some(NO)),
        ("GET", "accounts?$expand=*".into(), None, Some(NO)),
        ("GET", "accounts?$expand=nosuchnav".into(), None, Some(NO)),
    ]);
}

#[test]
fn lookups_and_lambdas_in_filter_and_orderby() {
    check(&[
        ("GET", "contacts?$filter=parentcustomerid_account/name eq 'x'".into(), None, None),
        ("GET", "contacts?$filter=createdby/fullname eq 'x'".into(), None, Some(NO)),
        ("GET", "accounts?$filter=contact_customer_accounts/any(c:c/fullname eq 'x')".into(), None, None),
        ("GET", "accounts?$filter=contact_customer_accounts/any(c:c/createdby/fullname eq 'x')".into(), None, Some(NO)),
        ("GET", "accounts?$filter=opportunity_parent_account/all(o:o/secret gt 1)".into(), None, Some(NO)),
        ("GET", "contacts?$orderby=parentcustomerid_account/name desc".into(), None, None),
        ("GET", "contacts?$orderby=createdby/fullname".into(), None, Some(NO)),
        ("GET", "contacts?$filter=Microsoft.Dynamics.CRM.LastXDays(PropertyName='fullname',PropertyValue=7)".into(), None, None),
        ("GET", "contacts?$filter=Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby/fullname')".into(), None, Some(NO)),
    ]);
}

#[test]
fn apply() {
    check(&[
        ("GET", "accounts?$apply=groupby((primarycontactid/fullname))".into(), None, None),
        ("GET", "accounts?$apply=groupby((createdby/fullname))".into(), None, Some(NO)),
        ("GET", "accounts?$apply=filter(name eq 'x')/groupby((name),aggregate(revenue with sum as total))".into(), None, None),
        ("GET", "accounts?$apply=aggregate($count as n)".into(), None, None),
        ("GET", "accounts?$apply=compute(x)".into(), None, Some(NO)),
    ]);
}

#[test]
fn parameter_aliases() {
    check(&[
        (
            "GET",
            "contacts?$filter=fullname eq @p1&@p1='x'".into(),
            None,
            None,
        ),
        (
            "GET",
            "contacts?$filter=fullname eq @p1".into(),
            None,
            Some(BAD),
        ),
        (
            "GET",
            "contacts?$filter=fullname eq @p1&@p1=createdby/fullname".into(),
            None,
            Some(NO),
        ),
        (
            "GET",
            format!("contacts?$filter=fullname eq @p1&@p1={{'@odata.id':'systemusers({C})'}}")
                .replace('\'', "\""),
            None,
            Some(NO),
        ),
    ]);
}

#[test]
fn fetchxml() {
    let fx = |xml: &str| {
        format!(
            "accounts?fetchXml={}",
            xml.replace(' ', "%20")
                .replace('<', "%3C")
                .replace('>', "%3E")
                .replace('"', "%22")
                .replace('=', "%3D")
                .replace('/', "%2F")
        )
    };
    check(&[
        (
            "GET",
            fx(
                r#"<fetch><entity name="account"><attribute name="name"/><link-entity name="contact" from="parentcustomerid" to="accountid"><attribute name="fullname"/></link-entity></entity></fetch>"#,
            ),
            None,
            None,
        ),
        (
            "GET",
            fx(
                r#"<fetch><entity name="account"><link-entity name="systemuser" from="systemuserid" to="createdby"/></entity></fetch>"#,
            ),
            None,
            Some(NO),
        ),
        (
            "GET",
            fx(r#"<fetch><entity name="contact"><attribute name="fullname"/></entity></fetch>"#),
            None,
            Some(BAD),
        ),
    ]);
}

#[test]
fn stored_and_sql_queries_are_uninspectable() {
    check(&[
        ("GET", format!("accounts?savedQuery={A}"), None, Some(NO)),
        ("GET", format!("accounts?userQuery={A}"), None, Some(NO)),
        (
            "GET",
            "accounts?sql=SELECT%20name%20FROM%20account".into(),
            None,
            Some(NO),
        ),
    ]);
    let mut p = policy();
    p.allow_uninspectable.push("savedQuery".into());
    let urls = urls();
    let ids = BTreeMap::new();
    let env = Env {
        metadata: Some(meta()),
        known_functions: &p.functions,
        urls: &urls,
        content_ids: &ids,
    };
    let h = HeaderMap::new();
    let req = Request {
        method: &http::Method::GET,
        path: "accounts",
        query: Some(&format!("savedQuery={A}")),
        headers: &h,
        body: None,
    };
    assert!(policy::decide(&p, classify(&req, &env), &h).allowed());
}

#[test]
fn functions_and_actions() {
    let targets = |t: &str| {
        format!(r#"{{"Targets":[{{"@odata.type":"Microsoft.Dynamics.CRM.{t}","firstname":"a"}}]}}"#)
    };
    check(&[
        ("GET", "WhoAmI".into(), None, None),
        ("GET", "WhoAmI()".into(), None, None),
        ("POST", "WhoAmI".into(), None, Some(NO)),
        ("GET", "RetrieveVersion()".into(), None, Some(NO)),
        ("GET", "NoSuchThing()".into(), None, Some(NO)),
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
            Some(NO),
        ),
        (
            "POST",
            "contacts/Microsoft.Dynamics.CRM.CreateMultiple".into(),
            Some(&targets("account")),
            Some(BAD),
        ),
        (
            "POST",
            "contacts/Microsoft.Dynamics.CRM.CreateMultiple".into(),
            Some(r#"{"Targets":[{"firstname":"a"}]}"#),
            Some(BAD),
        ),
        (
            "GET",
            "contacts/Microsoft.Dynamics.CRM.CreateMultiple".into(),
            None,
            Some(NO),
        ),
    ]);
}

#[test]
fn entity_definitions() {
    check(&[
        ("GET", "EntityDefinitions(LogicalName='contact')".into(), None, None),
        ("GET", "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata".into(), None, None),
        ("GET", "EntityDefinitions?$filter=LogicalName+eq+'contact'&$select=LogicalName,EntitySetName".into(), None, None),
        ("GET", "EntityDefinitions(LogicalName='systemuser')".into(), None, Some(NO)),
        ("GET", "EntityDefinitions?$filter=LogicalName eq 'contact' or LogicalName eq 'systemuser'".into(), None, Some(NO)),
        ("GET", "EntityDefinitions".into(), None, Some(NO)),
        ("GET", "EntityDefinitions?$filter=contains(LogicalName,'a')".into(), None, Some(NO)),
        ("POST", "EntityDefinitions".into(), Some("{}"), Some(NO)),
        ("GET", "$metadata".into(), None, Some(NO)),
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
            Some(BAD),
        ),
        (
            "POST",
            "contacts".into(),
            Some(&bind(&format!("/contacts({C})"))),
            Some(BAD),
        ),
        (
            "POST",
            "contacts".into(),
            Some(&format!(
                r#"{{"createdby@odata.bind":"/systemusers({C})"}}"#
            )),
            Some(NO),
        ),
        (
            "POST",
            "contacts".into(),
            Some(r#"{"firstname":"a","parentcustomerid_account":{"name":"new"}}"#),
            Some(NO),
        ),
        ("POST", "accounts".into(), Some(r#"{"name":"a"}"#), Some(NO)),
        (
            "PATCH",
            format!("accounts({A})"),
            Some(r#"{"name":"a"}"#),
            Some(NO),
        ),
        (
            "POST",
            "contacts".into(),
            Some(r#"{"nosuchcolumn":1}"#),
            Some(NO),
        ),
        (
            "POST",
            "contacts".into(),
            Some(r#"{"firstname":"a","x@OData.Community.Display.V1.FormattedValue":"y"}"#),
            Some(NO),
        ),
        ("POST", "contacts".into(), Some("not json"), Some(BAD)),
        ("POST", "contacts".into(), Some(""), Some(BAD)),
        (
            "POST",
            "contacts".into(),
            Some(r#"{"@odata.type":"Microsoft.Dynamics.CRM.account"}"#),
            Some(BAD),
        ),
    ]);
}

#[test]
fn writes_that_return_rows_are_reads() {
    let mut h = HeaderMap::new();
    h.insert("prefer", "return=\"representation\"".parse().unwrap());
    let body = Some(r#"{"firstname":"a"}"#);
    // the returned row expands into a table outside the allowlist
    let url = "contacts?$expand=createdby($select=fullname)";
    assert!(!decide_with("POST", url, body, &h, Some(meta())).allowed());
    assert!(!decide_with("POST", url, body, &HeaderMap::new(), Some(meta())).allowed());
    // a collection-valued bind changes the bound rows' lookup: PATCH on them
    let bind =
        format!(r#"{{"name":"x","contact_customer_accounts@odata.bind":["/contacts({C})"]}}"#);
    let d = decide("POST", "accounts", Some(&bind));
    assert!(
        d.uses
            .iter()
            .any(|u| matches!(u, Use::Table(t) if t.set == "contacts" && t.verb == Verb::Patch)),
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
            .any(|u| matches!(u, Use::Table(t) if t.set == "contacts" && t.verb == Verb::Patch)),
        "{:?}",
        d.uses
    );
    // naming the primary key is not naming a column
    let d = decide(
        "GET",
        &format!("opportunities(opportunityid={C})?$select=name"),
        None,
    );
    assert!(d.allowed(), "{}", d.reason);
}

#[test]
fn column_lists() {
    let d = decide("GET", "opportunities", None);
    assert!(d.allowed(), "{}", d.reason);
    assert_eq!(d.add_select.as_deref(), Some("name,estimatedvalue"));
    check(&[
        ("GET", "opportunities?$select=name".into(), None, None),
        (
            "GET",
            "opportunities?$select=name,statuscode".into(),
            None,
            Some(NO),
        ),
        (
            "GET",
            "opportunities?$select=name&$filter=statuscode eq 1".into(),
            None,
            Some(NO),
        ),
        (
            "GET",
            "opportunities?$orderby=statuscode".into(),
            None,
            Some(NO),
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
            Some(NO),
        ),
        (
            "GET",
            format!("accounts({A})/opportunity_parent_account"),
            None,
            None,
        ),
        (
            "GET",
            format!("accounts({A})/opportunity_parent_account?$select=name"),
            None,
            None,
        ),
        (
            "GET",
            format!("accounts({A})/opportunity_parent_account?$select=statuscode"),
            None,
            Some(NO),
        ),
    ]);
}

#[test]
fn patch_without_post_cannot_create() {
    let d = decide("PATCH", &format!("leads({C})"), Some(r#"{"subject":"x"}"#));
    assert!(d.allowed() && d.if_match_star, "{}", d.reason);
    let d = decide(
        "PATCH",
        &format!("contacts({C})"),
        Some(r#"{"firstname":"x"}"#),
    );
    assert!(d.allowed() && !d.if_match_star);
    let mut h = HeaderMap::new();
    h.insert("if-none-match", "*".parse().unwrap());
    assert!(
        !decide_with(
            "PATCH",
            &format!("leads({C})"),
            Some(r#"{"subject":"x"}"#),
            &h,
            Some(meta())
        )
        .allowed()
    );
}

#[test]
fn without_metadata_only_plain_shapes_pass() {
    let h = HeaderMap::new();
    let d = |m: &str, u: &str| decide_with(m, u, None, &h, None);
    assert!(d("GET", "contacts?$select=fullname&$filter=fullname eq 'x'").allowed());
    assert!(d("GET", "WhoAmI").allowed());
    for u in [
        "contacts?$expand=parentcustomerid_account",
        "contacts?$filter=parentcustomerid_account/name eq 'x'",
    ] {
        let x = d("GET", u);
        assert_eq!(x.denial, Some(NO), "{u}");
        assert!(x.reason.contains("metadata"), "{}", x.reason);
    }
    assert!(!d("POST", "contacts").allowed());
    assert!(!d("GET", "systemusers").allowed());
}

#[test]
fn denial_names_table_and_verb() {
    let d = decide("GET", "systemusers", None);
    assert_eq!(
        d.reason,
        "GET on `systemusers`: the table is not in this tenant's allowlist"
    );
    let d = decide("PATCH", &format!("accounts({A})"), Some("{}"));
    assert_eq!(
        d.reason,
        "PATCH on `accounts` is not allowed (allowed: GET)"
    );
}
