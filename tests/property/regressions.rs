//! Regressions: minimal cases of the bugs the properties found (the security ones fixed in
//! 0f8c47b), each asserting the behaviour the oracle expects, over the simulator's CSDL.

use dataverse_gateway::config::{Policy, TableRule, Verb};
use dataverse_gateway::policy::inspect::Inspected;

use crate::batch::BOUNDARY;
use crate::checks::run;
use crate::oracle::{Call, Case};
use crate::sim_csdl;

type Rule<'a> = (&'a str, &'a [Verb], Option<&'a [&'a str]>);

fn inspect_one(rules: &[Rule<'_>], method: &str, url: &str, body: Option<&str>) -> Inspected {
    let mut policy = Policy::default();
    for (set, verbs, columns) in rules {
        policy.tables.insert(
            set.to_string(),
            TableRule {
                verbs: verbs.to_vec(),
                columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
            },
        );
    }
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q.to_string())));
    let mut call = Call::new(method.parse().expect("method"), path.to_string());
    call.query = query;
    call.body = body.map(str::to_string);
    call.headers = vec![("content-type", "application/json".into())];
    let case = Case {
        calls: vec![call],
        batch: None,
        no_metadata: false,
    };
    run(sim_csdl::sim(), &policy, &case)
}

fn assert_denied(rules: &[Rule<'_>], method: &str, url: &str, body: Option<&str>) {
    let got = inspect_one(rules, method, url, body);
    assert!(
        !got.decision.allowed(),
        "{method} {url} {body:?} is allowed: {}",
        got.decision.reason()
    );
}

fn assert_allowed(rules: &[Rule<'_>], method: &str, url: &str, body: Option<&str>) {
    let got = inspect_one(rules, method, url, body);
    assert!(
        got.decision.allowed(),
        "{method} {url} {body:?} is denied: {}",
        got.decision.reason()
    );
}

use Verb::{Get as GET, Patch as PATCH, Post as POST};

/// Only `contacts` is allowlisted, yet these read `accounts` (the middle of the lookup path)
/// by filtering, ordering or grouping on it: `resolve` touches only the table a path ends in.
#[test]
fn regression_multi_hop_lookup_checks_every_table() {
    let rules: &[Rule] = &[("contacts", &[GET], None)];
    for url in [
        "contacts?$filter=parentcustomerid_account/primarycontactid/fullname eq 'x'",
        "contacts?$filter=parentcustomerid_account/primarycontactid eq null",
        "contacts?$orderby=parentcustomerid_account/primarycontactid/fullname",
        "contacts?$apply=groupby((parentcustomerid_account/primarycontactid/fullname))",
    ] {
        assert_denied(rules, "GET", url, None);
    }
    let rules: &[Rule] = &[("opportunities", &[GET], None), ("contacts", &[GET], None)];
    let url =
        "opportunities?$filter=parentaccountid/contact_customer_accounts/any(c:c/fullname eq 'x')";
    assert_denied(rules, "GET", url, None);
}

/// `contacts` may be read and changed through `fullname` only, yet an alternate key names
/// `emailaddress1`: the read probes it (as the denied `$filter=emailaddress1 eq ...` would)
/// and the PATCH, an upsert, creates a row with it.
#[test]
fn regression_alternate_key_columns_are_checked() {
    let rules: &[Rule] = &[
        ("contacts", &[GET, POST, PATCH], Some(&["fullname"])),
        ("accounts", &[GET], Some(&["name"])),
    ];
    assert_denied(
        rules,
        "GET",
        "contacts?$select=fullname&$filter=emailaddress1 eq 'a@b.com'",
        None,
    );
    assert_denied(
        rules,
        "GET",
        "contacts(emailaddress1='a@b.com')?$select=fullname",
        None,
    );
    assert_denied(
        rules,
        "PATCH",
        "contacts(emailaddress1='a@b.com')",
        Some(r#"{"fullname":"x"}"#),
    );
    assert_denied(
        rules,
        "POST",
        "contacts",
        Some(r#"{"fullname":"x","parentcustomerid_account@odata.bind":"/accounts(revenue=5)"}"#),
    );
}

/// `contacts` is restricted to `fullname`; the main read gets `$select=fullname` added, but the
/// nested `$expand` back into `contacts` has no `$select` and returns every column: the
/// all-columns exemption of the main read is granted to any read of the same table.
#[test]
fn regression_nested_expand_of_the_main_table_needs_select() {
    let rules: &[Rule] = &[
        ("contacts", &[GET], Some(&["fullname"])),
        ("accounts", &[GET], None),
    ];
    assert_denied(
        rules,
        "GET",
        "contacts?$expand=parentcustomerid_account($select=name;$expand=primarycontactid)",
        None,
    );
}

/// `PropertyName` of a query function is inspected in the top-level `$filter` only; inside
/// `$expand(...;$filter=...)` it filters on any column (here `statuscode`, not in the list),
/// and on any table through a lookup path (here `systemusers`, not allowlisted).
#[test]
fn regression_query_function_in_expand_filter_is_inspected() {
    let rules: &[Rule] = &[
        ("accounts", &[GET], None),
        ("opportunities", &[GET], Some(&["name"])),
    ];
    assert_denied(
        rules,
        "GET",
        "accounts?$expand=opportunity_parent_account($select=name;$filter=Microsoft.Dynamics.CRM.Between(PropertyName='statuscode',PropertyValues=['1','2']))",
        None,
    );
    let rules: &[Rule] = &[("accounts", &[GET], None), ("opportunities", &[GET], None)];
    assert_denied(
        rules,
        "GET",
        "accounts?$expand=opportunity_parent_account($select=name;$filter=Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby/fullname'))",
        None,
    );
}

/// Binding `parentcustomerid_account` needs it in the column list of `contacts`; creating the
/// account inline (deep insert) sets the same lookup without it.
#[test]
fn regression_deep_insert_sets_the_parent_lookup() {
    let rules: &[Rule] = &[
        ("contacts", &[POST], Some(&["firstname"])),
        ("accounts", &[GET, POST], None),
    ];
    assert_denied(
        rules,
        "POST",
        "contacts",
        Some(
            r#"{"firstname":"a","parentcustomerid_account@odata.bind":"/accounts(a0000000-0000-4000-8000-000000000001)"}"#,
        ),
    );
    assert_denied(
        rules,
        "POST",
        "contacts",
        Some(r#"{"firstname":"a","parentcustomerid_account":{"name":"x"}}"#),
    );
}

/// The secure counterparts of the regressions above stay allowed (the lookup a path navigates
/// through is observed, so it is listed).
#[test]
fn regression_counterparts_are_allowed() {
    let rules: &[Rule] = &[
        (
            "contacts",
            &[GET, POST],
            Some(&["fullname", "emailaddress1", "_parentcustomerid_value"]),
        ),
        ("accounts", &[GET], None),
    ];
    assert_allowed(
        rules,
        "GET",
        "contacts?$filter=parentcustomerid_account/primarycontactid/fullname eq 'x'",
        None,
    );
    assert_allowed(
        rules,
        "GET",
        "contacts(emailaddress1='a@b.com')?$select=fullname",
        None,
    );
    assert_allowed(
        rules,
        "GET",
        "contacts?$expand=parentcustomerid_account($select=name;$expand=primarycontactid($select=fullname))",
        None,
    );
}

/// A Content-ID names the row its request created, however the request reached the table; the
/// gateway records it only for `POST <set>`, so a change set that creates through a navigation
/// property and then refers to `$1` is refused (400) although every part is allowlisted.
#[test]
fn regression_content_id_of_a_row_created_through_navigation() {
    let policy = Policy {
        tables: [("accounts", vec![GET]), ("contacts", vec![POST, PATCH])]
            .into_iter()
            .map(|(s, verbs)| {
                let rule = TableRule {
                    verbs,
                    columns: None,
                };
                (s.to_string(), rule)
            })
            .collect(),
        ..Policy::default()
    };
    let part = |id: u8, line: &str, body: &str| {
        format!(
            "--cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\
             Content-ID: {id}\r\n\r\n{line} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n\
             {body}\r\n"
        )
    };
    let body = format!(
        "--{BOUNDARY}\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n{}{}--cs--\r\n--{BOUNDARY}--\r\n",
        part(
            1,
            "POST accounts(a0000000-0000-4000-8000-000000000001)/contact_customer_accounts",
            r#"{"firstname":"a"}"#
        ),
        part(2, "PATCH $1", r#"{"lastname":"b"}"#),
    );
    let case = Case {
        calls: vec![],
        batch: Some(body),
        no_metadata: false,
    };
    let got = run(sim_csdl::sim(), &policy, &case);
    assert!(got.decision.allowed(), "{}", got.decision.reason());
}

/// `contacts(contactid=<id>)` is the same row address as `contacts(<id>)`: naming the primary
/// key reads no column, so a column list without `contactid` must not refuse one form and
/// accept the other.
#[test]
fn regression_named_primary_key_is_not_a_column() {
    let rules: &[Rule] = &[("contacts", &[GET, PATCH], Some(&["fullname"]))];
    let id = "c0000000-0000-4000-8000-000000000001";
    assert_allowed(
        rules,
        "GET",
        &format!("contacts({id})?$select=fullname"),
        None,
    );
    assert_allowed(
        rules,
        "GET",
        &format!("contacts(contactid={id})?$select=fullname"),
        None,
    );
    assert_allowed(
        rules,
        "PATCH",
        &format!("contacts(contactid={id})"),
        Some(r#"{"fullname":"x"}"#),
    );
}
