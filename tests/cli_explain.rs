//! `explain`, run as the real binary on the shipped config: what a request touches, the rule
//! that allows it or the reason it is denied, and its exit status (0 allowed, 2 denied, 1 a
//! usage error); golden outputs for the shapes that reach other tables.

mod common;

use common::SIM_CSDL;
use common::proc::{assert_golden, explain, write};

#[test]
fn explain_allows_a_listed_table_and_names_the_rule() {
    let run = explain(&[
        "--metadata",
        SIM_CSDL,
        "GET",
        "/api/data/v9.2/contacts?$select=fullname",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(
        run.stdout,
        "ALLOW GET /api/data/v9.2/contacts?$select=fullname
  tenant: contoso
  touches: GET contacts [fullname]
  rule: allow.contacts permits GET
"
    );
    // Without metadata a column cannot be told from a navigation property: denied, and
    // explain says how to give it the metadata.
    let run = explain(&["GET", "/api/data/v9.2/contacts?$select=fullname"]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(run.stdout.contains("--metadata FILE"), "{}", run.stdout);

    let run = explain(&["GET", "/fabrikam/api/data/v9.2/WhoAmI"]);
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(run.stdout.contains("tenant: fabrikam"), "{}", run.stdout);
    assert!(
        run.stdout.contains("rule: functions lists WhoAmI"),
        "{}",
        run.stdout
    );
}

#[test]
fn explain_names_what_patch_without_post_adds() {
    let dir = tempfile::tempdir().unwrap();
    let body = write(dir.path(), "body.json", r#"{"subject":"x"}"#);
    let run = explain(&[
        "--metadata",
        SIM_CSDL,
        "--body",
        &body,
        "PATCH",
        "/api/data/v9.2/leads(c0000000-0000-4000-8000-000000000001)",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(run.stdout.contains("adds: If-Match: *"), "{}", run.stdout);
    // without the body, explain says what it needs
    let run = explain(&[
        "PATCH",
        "/api/data/v9.2/leads(c0000000-0000-4000-8000-000000000001)",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(run.stderr.contains("--body"), "{}", run.stderr);
}

#[test]
fn explain_denies_a_table_outside_the_allowlist() {
    let run = explain(&["GET", "/api/data/v9.2/accounts"]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert_eq!(
        run.stdout,
        "DENY (403) GET /api/data/v9.2/accounts
  tenant: contoso
  touches: GET accounts (all columns)
  reason: GET on `accounts`: the table is not in this tenant's allowlist
"
    );

    let run = explain(&[
        "DELETE",
        "/api/data/v9.2/contacts(c0000000-0000-4000-8000-000000000001)",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(run.stdout.starts_with("DENY (403) "), "{}", run.stdout);
    assert!(
        run.stdout.contains("DELETE on `contacts` is not allowed"),
        "{}",
        run.stdout
    );
}

#[test]
fn explain_follows_expand_to_the_target_table() {
    // without metadata the navigation target is unknown: denied, and explain says why
    let run = explain(&[
        "GET",
        "/api/data/v9.2/contacts?$expand=parentcustomerid_account",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(run.stdout.starts_with("DENY (403) "), "{}", run.stdout);
    assert!(run.stdout.contains("metadata"), "{}", run.stdout);
    // with the org's metadata: the expansion reads accounts, which contoso does not allow
    let run = explain(&[
        "--metadata",
        SIM_CSDL,
        "GET",
        "/api/data/v9.2/contacts?$expand=parentcustomerid_account($select=name)",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(
        run.stdout.contains("touches: GET accounts [name]"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("GET on `accounts`"), "{}", run.stdout);
}

#[test]
fn explain_rejects_a_duplicate_query_option_as_malformed() {
    let run = explain(&[
        "GET",
        "/api/data/v9.2/contacts?$select=fullname&$select=emailaddress1",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(run.stdout.starts_with("DENY (400) "), "{}", run.stdout);
    assert!(
        run.stdout.contains("`$select` appears twice"),
        "{}",
        run.stdout
    );
}

#[test]
fn explain_rejects_a_method_override_header() {
    let run = explain(&[
        "--header",
        "X-HTTP-Method: DELETE",
        "GET",
        "/api/data/v9.2/contacts",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(
        run.stdout
            .starts_with("DENY (400) GET /api/data/v9.2/contacts"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.to_ascii_lowercase().contains("x-http-method"),
        "{}",
        run.stdout
    );
    // Without the header the same request is allowed: the header is what made the difference.
    assert_eq!(explain(&["GET", "/api/data/v9.2/contacts"]).code, Some(0));
}

#[test]
fn explain_fails_with_1_on_an_unknown_tenant() {
    for args in [
        &["GET", "/nope/api/data/v9.2/contacts"][..],
        &["--tenant", "nope", "GET", "/api/data/v9.2/contacts"][..],
    ] {
        let run = explain(args);
        assert_eq!(run.code, Some(1), "{args:?}\n{}", run.output());
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(
            run.stderr.contains("unknown tenant `nope`"),
            "{args:?}\n{}",
            run.stderr
        );
    }
}

#[test]
fn explain_fails_with_1_on_a_missing_body_file() {
    let run = explain(&[
        "--body",
        "/nonexistent/body.json",
        "POST",
        "/api/data/v9.2/contacts",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stderr.contains("/nonexistent/body.json"),
        "{}",
        run.stderr
    );
}

#[test]
fn explain_usage_error_exits_1_not_2() {
    // A script reading `2` as "denied" must not mistake a typo for a decision.
    let run = explain(&["GET"]);
    assert_eq!(run.code, Some(1), "{}", run.output());
}

/// Golden outputs of `explain` over the org's metadata: what a reviewer reads for the shapes
/// that reach other tables.
#[test]
fn explain_golden_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let body = write(
        dir.path(),
        "bind.json",
        r#"{"firstname":"a","parentcustomerid_account@odata.bind":"/accounts(a0000000-0000-4000-8000-000000000001)"}"#,
    );
    let cases: [(&str, Vec<&str>); 4] = [
        (
            "explain_expand.txt",
            vec![
                "--metadata",
                SIM_CSDL,
                "GET",
                "/api/data/v9.2/contacts?$select=fullname&$expand=parentcustomerid_account($select=name)",
            ],
        ),
        (
            "explain_lookup.txt",
            vec![
                "--metadata",
                SIM_CSDL,
                "GET",
                "/api/data/v9.2/contacts?$filter=createdby/fullname eq 'x'",
            ],
        ),
        (
            "explain_bind.txt",
            vec![
                "--metadata",
                SIM_CSDL,
                "--body",
                &body,
                "POST",
                "/api/data/v9.2/contacts",
            ],
        ),
        (
            "explain_columns.txt",
            vec![
                "--metadata",
                SIM_CSDL,
                "GET",
                "/api/data/v9.2/opportunities",
            ],
        ),
    ];
    for (file, args) in cases {
        let run = explain(&args);
        assert!(
            run.code == Some(0) || run.code == Some(2),
            "{}",
            run.output()
        );
        assert_golden(file, &run.stdout);
    }
}
