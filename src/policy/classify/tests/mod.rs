//! One table-driven test per way a Dataverse request can reach data (the request shapes of
//! docs/policy.md), each with allowed and denied variants.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use http::HeaderMap;

use super::*;
use crate::config::{Policy, TableRule};
use crate::policy::decision::{self, Decision, Denial};

mod body;
mod query;

const C: &str = "c0000000-0000-4000-8000-000000000001";
const A: &str = "a0000000-0000-4000-8000-000000000001";

fn meta() -> &'static Metadata {
    static M: OnceLock<Metadata> = OnceLock::new();
    M.get_or_init(|| {
        Metadata::parse(include_bytes!("../../../sim/metadata.xml")).expect("sim CSDL parses")
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
    decision::decide(&policy, classify(&req, &env), headers)
}

fn decide(method: &str, url: &str, body: Option<&str>) -> Decision {
    decide_with(method, url, body, &HeaderMap::new(), Some(meta()))
}

/// `opportunities` may also show the lookup to their account.
fn with_lookup() -> Policy {
    let mut p = policy();
    if let Some(rule) = p.tables.get_mut("opportunities") {
        rule.columns = Some(vec![
            "name".into(),
            "estimatedvalue".into(),
            "_parentaccountid_value".into(),
        ]);
    }
    p
}

fn decide_under(policy: &Policy, method: &str, url: &str, metadata: Option<&Metadata>) -> Decision {
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q)));
    let urls = urls();
    let ids = BTreeMap::new();
    let env = Env {
        metadata,
        known_functions: &policy.functions,
        urls: &urls,
        content_ids: &ids,
    };
    let h = HeaderMap::new();
    let method: http::Method = method.parse().unwrap();
    let req = Request {
        method: &method,
        path,
        query,
        headers: &h,
        body: None,
    };
    decision::decide(policy, classify(&req, &env), &h)
}

/// An expected denial: its kind and a text its reason must contain, naming the table, verb,
/// column or construct that caused it (so "not understood" and "not allowlisted" never pass for
/// each other).
type Expect = Option<(Denial, &'static str)>;

/// Denied by the allowlist, or not inspectable (403), for `reason`.
fn no(reason: &'static str) -> Expect {
    Some((Denial::Policy, reason))
}

/// Malformed (400), for `reason`.
fn bad(reason: &'static str) -> Expect {
    Some((Denial::Malformed, reason))
}

/// Asserts that `d` is the expected outcome, reason included.
fn assert_outcome(d: &Decision, expected: Expect, what: &str) {
    let denial = expected.map(|(denial, _)| denial);
    assert_eq!(
        d.denial, denial,
        "{what}: {} (uses: {:?})",
        d.reason, d.uses
    );
    if let Some((_, reason)) = expected {
        assert!(
            d.reason.contains(reason),
            "{what}: the reason should say `{reason}`, it says `{}`",
            d.reason
        );
    }
}

/// Each row: method, URL, body, expected outcome (None = allowed).
fn check(rows: &[(&str, String, Option<&str>, Expect)]) {
    for (m, u, b, expected) in rows {
        let d = decide(m, u, *b);
        assert_outcome(&d, *expected, &format!("{m} {u} {b:?}"));
    }
}

use Denial::Policy as NO;

mod nav;

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
        (
            "GET",
            "systemusers".into(),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            "Contacts".into(),
            None,
            no("`Contacts` is not an entity set or operation of this org"),
        ),
        (
            "DELETE",
            format!("contacts({C})"),
            None,
            no("DELETE on `contacts` is not allowed (allowed: GET, POST, PATCH)"),
        ),
        (
            "DELETE",
            format!("accounts({A})"),
            None,
            no("DELETE on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "GET",
            "contacts()".into(),
            None,
            bad("`contacts()` has an empty key"),
        ),
    ]);
}

#[test]
fn properties_value_and_count() {
    check(&[
        ("GET", format!("contacts({C})/fullname"), None, None),
        ("GET", format!("contacts({C})/fullname/$value"), None, None),
        ("DELETE", format!("contacts({C})/fullname"), None, None),
        (
            "PUT",
            format!("contacts({C})/fullname"),
            Some(r#"{"value":"x"}"#),
            None,
        ),
        // Setting one column is an update: the PATCH right covers it.
        (
            "PUT",
            format!("accounts({A})/name"),
            Some(r#"{"value":"x"}"#),
            no("PATCH on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "GET",
            format!("systemusers({C})/fullname"),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        ("GET", "contacts/$count".into(), None, None),
        (
            "GET",
            "systemusers/$count".into(),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            format!("contacts({C})/$count"),
            None,
            bad("$count must end a collection path"),
        ),
        (
            "GET",
            format!("contacts({C})/nosuchcolumn"),
            None,
            no("`nosuchcolumn` is not a navigation property or column of contact"),
        ),
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
        (
            "GET",
            format!("contacts({C})/createdby"),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            format!("contacts({C})/parentcustomerid_account/createdby"),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        // the related opportunities' lookup is observed, and their column list omits it
        (
            "GET",
            format!("contacts({C})/parentcustomerid_account/opportunity_parent_account"),
            None,
            no("`_parentaccountid_value` of `opportunities`"),
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
            bad("`parentcustomerid_account` needs a single contacts row before it"),
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
            no("PATCH on `accounts` is not allowed (allowed: GET)"),
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
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
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
            bad("`https://evil.example/api/data/v9.2/accounts(1)` refers to another host"),
        ),
    ]);
}

#[test]
fn expand_nested_with_options() {
    check(&[
        ("GET", "contacts?$expand=parentcustomerid_account($select=name)".into(), None, None),
        ("GET", "contacts?$expand=createdby($select=fullname)".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$expand=contact_customer_accounts($select=fullname;$expand=createdby($select=fullname))".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$expand=contact_customer_accounts($filter=createdby/fullname eq 'x')".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$expand=contact_customer_accounts($select=fullname;$filter=Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby/fullname'))".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$apply=filter(Microsoft.Dynamics.CRM.EqualUserId(propertyname='createdby/fullname'))".into(), None, no("`propertyname` is not an argument of the query function `EqualUserId`")),
        ("GET", "accounts?$apply=filter(Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby/fullname'))".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$expand=contact_customer_accounts($select=fullname;$orderby=fullname;$top=2)".into(), None, None),
        ("GET", "accounts?$expand=opportunity_parent_account".into(), None, no("column `_parentaccountid_value` of `opportunities` is not in its column list")),
        // observes the opportunities' `_parentaccountid_value`, outside their column list
        ("GET", "accounts?$expand=opportunity_parent_account($select=name)".into(), None, no("column `_parentaccountid_value` of `opportunities` is not in its column list")),
        ("GET", "accounts?$expand=opportunity_parent_account($select=name,secret)".into(), None, no("column `secret` of `opportunities` is not in its column list")),
        ("GET", "accounts?$expand=*".into(), None, no("`$expand=*`: only navigation property names are inspected")),
        ("GET", "accounts?$expand=nosuchnav".into(), None, no("`nosuchnav` is not a navigation property of account")),
    ]);
}

#[test]
fn lookups_and_lambdas_in_filter_and_orderby() {
    check(&[
        ("GET", "contacts?$filter=parentcustomerid_account/name eq 'x'".into(), None, None),
        ("GET", "contacts?$filter=createdby/fullname eq 'x'".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$filter=contact_customer_accounts/any(c:c/fullname eq 'x')".into(), None, None),
        ("GET", "accounts?$filter=contact_customer_accounts/any(c:c/createdby/fullname eq 'x')".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$filter=opportunity_parent_account/all(o:o/secret gt 1)".into(), None, no("`opportunity_parent_account/secret` does not resolve on account")),
        ("GET", "contacts?$orderby=parentcustomerid_account/name desc".into(), None, None),
        ("GET", "contacts?$orderby=createdby/fullname".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "contacts?$filter=Microsoft.Dynamics.CRM.LastXDays(PropertyName='fullname',PropertyValue=7)".into(), None, None),
        ("GET", "contacts?$filter=Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby/fullname')".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
    ]);
}

#[test]
fn apply() {
    check(&[
        ("GET", "accounts?$apply=groupby((primarycontactid/fullname))".into(), None, None),
        ("GET", "accounts?$apply=groupby((createdby/fullname))".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$apply=filter(name eq 'x')/groupby((name),aggregate(revenue with sum as total))".into(), None, None),
        ("GET", "accounts?$apply=aggregate($count as n)".into(), None, None),
        ("GET", "accounts?$apply=compute(x)".into(), None, no("`compute` in $apply is not inspected")),
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
            bad("parameter alias `@p1` is used but not defined"),
        ),
        (
            "GET",
            "contacts?$filter=fullname eq @p1&@p1=createdby/fullname".into(),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            format!("contacts?$filter=fullname eq @p1&@p1={{'@odata.id':'systemusers({C})'}}")
                .replace('\'', "\""),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
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
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            fx(r#"<fetch><entity name="contact"><attribute name="fullname"/></entity></fetch>"#),
            None,
            bad("fetchXml queries `contact` but the URL names `accounts`"),
        ),
    ]);
}

#[test]
fn stored_and_sql_queries_are_uninspectable() {
    check(&[
        (
            "GET",
            format!("accounts?savedQuery={A}"),
            None,
            no(
                "savedQuery runs a stored or SQL query the gateway cannot inspect (allow_uninspectable)",
            ),
        ),
        (
            "GET",
            format!("accounts?userQuery={A}"),
            None,
            no(
                "userQuery runs a stored or SQL query the gateway cannot inspect (allow_uninspectable)",
            ),
        ),
        (
            "GET",
            "accounts?sql=SELECT%20name%20FROM%20account".into(),
            None,
            no("sql runs a stored or SQL query the gateway cannot inspect (allow_uninspectable)"),
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
    assert!(decision::decide(&p, classify(&req, &env), &h).allowed());
}

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
    assert!(d.allowed() && d.if_match_star, "{}", d.reason);
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
        d.reason,
        "GET on `systemusers`: the table is not in this tenant's allowlist"
    );
    let d = decide("PATCH", &format!("accounts({A})"), Some("{}"));
    assert_eq!(
        d.reason,
        "PATCH on `accounts` is not allowed (allowed: GET)"
    );
}
