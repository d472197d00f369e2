use super::*;
use crate::config::TableRule;

const ID: &str = "00000000-0000-0000-0000-000000000001";

fn policy() -> Policy {
    let mut p = Policy::default();
    p.tables.insert(
        "contacts".into(),
        TableRule {
            verbs: vec![Verb::Get, Verb::Post, Verb::Patch, Verb::Delete],
            columns: None,
        },
    );
    p.tables.insert(
        "leads".into(),
        TableRule {
            verbs: vec![Verb::Get, Verb::Patch],
            columns: None,
        },
    );
    p.tables.insert(
        "opportunities".into(),
        TableRule {
            verbs: vec![Verb::Get],
            columns: Some(vec!["name".into(), "estimatedvalue".into()]),
        },
    );
    p.functions.push("WhoAmI".into());
    p.actions.push("CloseIncident".into());
    p
}

fn run(method: &str, url: &str) -> Decision {
    run_with(method, url, &HeaderMap::new())
}

fn run_with(method: &str, url: &str, headers: &HeaderMap) -> Decision {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    decide(&policy(), &method.parse().unwrap(), path, query, headers)
}

#[test]
fn allowlisted_tables_and_verbs_pass() {
    for (m, u) in [
        ("GET", "contacts".to_string()),
        (
            "GET",
            "contacts?$select=fullname&$filter=fullname eq 'x'&$top=5".to_string(),
        ),
        ("GET", format!("contacts({ID})")),
        ("GET", "contacts(emailaddress1='a@b.com')".to_string()),
        ("GET", "contacts/$count".to_string()),
        ("HEAD", "contacts".to_string()),
        ("POST", "contacts".to_string()),
        ("PATCH", format!("contacts({ID})")),
        ("DELETE", format!("contacts({ID})")),
        ("GET", "WhoAmI".to_string()),
        ("GET", "WhoAmI()".to_string()),
    ] {
        let d = run(m, &u);
        assert!(d.allowed(), "{m} {u}: {}", d.reason);
    }
}

#[test]
fn everything_else_is_denied() {
    for (m, u, kind) in [
        ("GET", "accounts".to_string(), Denial::Policy),
        ("GET", "Contacts".to_string(), Denial::Policy),
        ("DELETE", format!("leads({ID})"), Denial::Policy),
        ("POST", "leads".to_string(), Denial::Policy),
        ("POST", format!("contacts({ID})"), Denial::Policy),
        ("PUT", format!("contacts({ID})"), Denial::Policy),
        (
            "GET",
            format!("contacts({ID})/parentcustomerid_account"),
            Denial::Policy,
        ),
        (
            "GET",
            "contacts?$expand=parentcustomerid_account".to_string(),
            Denial::Policy,
        ),
        (
            "GET",
            "contacts?$filter=parentcustomerid_account/name eq 'x'".to_string(),
            Denial::Policy,
        ),
        (
            "GET",
            "contacts?fetchXml=%3Cfetch%3E".to_string(),
            Denial::Policy,
        ),
        (
            "GET",
            "contacts?$select=fullname&$select=x".to_string(),
            Denial::Malformed,
        ),
        ("GET", "contacts?$Expand=x".to_string(), Denial::Malformed),
        ("GET", "%63ontacts".to_string(), Denial::Malformed),
        ("GET", "$metadata".to_string(), Denial::Policy),
        ("POST", "$batch".to_string(), Denial::Policy),
        ("POST", "WhoAmI".to_string(), Denial::Policy),
        ("POST", "CloseIncident".to_string(), Denial::Policy),
        ("GET", "RetrieveVersion()".to_string(), Denial::Policy),
        ("GET", "contacts()".to_string(), Denial::Malformed),
    ] {
        let d = run(m, &u);
        assert_eq!(d.denial, Some(kind), "{m} {u}: {}", d.reason);
    }
}

#[test]
fn denial_names_table_and_verb() {
    let d = run("DELETE", &format!("leads({ID})"));
    assert_eq!(
        d.reason,
        "DELETE on `leads` is not allowed (allowed: GET, PATCH)"
    );
    let d = run("GET", "accounts");
    assert_eq!(
        d.access,
        vec![Access::Table {
            set: "accounts".into(),
            verb: Verb::Get
        }]
    );
    assert!(d.reason.contains("`accounts`"));
}

#[test]
fn column_lists_are_enforced_on_reads_and_block_writes() {
    let d = run("GET", "opportunities");
    assert!(d.allowed());
    assert_eq!(d.add_select.as_deref(), Some("name,estimatedvalue"));
    let d = run("GET", "opportunities?$select=name");
    assert!(d.allowed() && d.add_select.is_none());
    assert!(!run("GET", "opportunities?$select=name,secret").allowed());
    assert!(!run("GET", "opportunities?$select=name&$filter=secret eq 1").allowed());
    assert!(!run("GET", "opportunities?$orderby=secret").allowed());
    assert!(
        run(
            "GET",
            "opportunities?$filter=estimatedvalue gt 5&$orderby=name desc"
        )
        .allowed()
    );
}

#[test]
fn patch_without_post_cannot_create() {
    let d = run("PATCH", &format!("leads({ID})"));
    assert!(d.allowed() && d.if_match_star);
    let d = run("PATCH", &format!("contacts({ID})"));
    assert!(d.allowed() && !d.if_match_star);
    let mut h = HeaderMap::new();
    h.insert("if-none-match", "*".parse().unwrap());
    assert!(!run_with("PATCH", &format!("leads({ID})"), &h).allowed());
    let mut h = HeaderMap::new();
    h.insert("if-match", "W/\"5\"".parse().unwrap());
    let d = run_with("PATCH", &format!("leads({ID})"), &h);
    assert!(d.allowed() && !d.if_match_star);
}
