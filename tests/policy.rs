//! The allowlist through the real pipeline: every denied request leaves the simulator's log
//! untouched; every allowed one reaches it.

mod common;

use common::*;

const C: &str = "c0000000-0000-4000-8000-000000000001";
const A: &str = "a0000000-0000-4000-8000-000000000001";

const POLICY: &str = "
    allow:
      contacts: [GET, POST, PATCH]
      accounts: [GET]
      leads: [GET, PATCH]
      opportunities:
        verbs: [GET]
        columns: [name, estimatedvalue]
    functions: [WhoAmI]
    actions: [CreateMultiple]
";

fn request(h: &Harness, method: &str, path: &str, body: Option<&str>) -> reqwest::RequestBuilder {
    let mut req = h.http.request(method.parse().unwrap(), h.api(path));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    req
}

async fn send(h: &Harness, method: &str, path: &str, body: Option<&str>) -> u16 {
    request(h, method, path, body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// An expected refusal: status, error code, and a text of the message naming the table, verb,
/// column or construct refused.
type Expect = (u16, &'static str, &'static str);

/// Refused by the allowlist (or not inspectable): 403.
fn denied(reason: &'static str) -> Expect {
    (403, "GatewayPolicyDenied", reason)
}

/// Not canonical or malformed: 400.
fn malformed(reason: &'static str) -> Expect {
    (400, "GatewayBadRequest", reason)
}

#[tokio::test]
async fn denied_requests_never_reach_dataverse() {
    let h = Harness::with_policy(POLICY).await;
    let cases: Vec<(&str, String, Option<String>, Expect)> = vec![
        (
            "GET",
            "systemusers".into(),
            None,
            denied("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            format!("contacts({C})/createdby"),
            None,
            denied("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            "contacts?$expand=createdby".into(),
            None,
            denied("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            "contacts?$filter=createdby/fullname eq 'x'".into(),
            None,
            denied("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            "accounts?$filter=contact_customer_accounts/any(c:c/createdby/fullname eq 'x')".into(),
            None,
            denied("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            "accounts?$apply=groupby((createdby/fullname))".into(),
            None,
            denied("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            "contacts?$filter=fullname eq @p&@p=createdby/fullname".into(),
            None,
            denied("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            "accounts?savedQuery=00000000-0000-0000-0000-000000000001".into(),
            None,
            denied(
                "savedQuery runs a stored or SQL query the gateway cannot inspect (allow_uninspectable)",
            ),
        ),
        (
            "GET",
            "$metadata".into(),
            None,
            denied("$metadata is not allowed for this tenant (allow_metadata)"),
        ),
        (
            "GET",
            "EntityDefinitions".into(),
            None,
            denied("unfiltered EntityDefinitions listings are not allowed (filter by LogicalName)"),
        ),
        (
            "GET",
            "opportunities?$select=statuscode".into(),
            None,
            denied("column `statuscode` of `opportunities` is not in its column list"),
        ),
        (
            "POST",
            "accounts".into(),
            Some(r#"{"name":"x"}"#.into()),
            denied("POST on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "POST",
            "contacts".into(),
            Some(format!(r#"{{"createdby@odata.bind":"/systemusers({C})"}}"#)),
            denied("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "POST",
            "contacts".into(),
            Some(r#"{"parentcustomerid_account":{"name":"deep"}}"#.into()),
            denied("POST on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "POST",
            "accounts/Microsoft.Dynamics.CRM.CreateMultiple".into(),
            Some(
                r#"{"Targets":[{"@odata.type":"Microsoft.Dynamics.CRM.account","name":"a"}]}"#
                    .into(),
            ),
            denied("POST on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "DELETE",
            format!("contacts({C})"),
            None,
            denied("DELETE on `contacts` is not allowed (allowed: GET, POST, PATCH)"),
        ),
        (
            "PATCH",
            format!("accounts({A})"),
            Some("{}".into()),
            denied("PATCH on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "GET",
            "contacts?$Select=fullname".into(),
            None,
            malformed("`$Select` must be written exactly `$select`"),
        ),
        (
            "GET",
            "contacts%2F".into(),
            None,
            malformed(
                "`%2f` (encoded slash, backslash, percent or NUL) is not allowed in the path",
            ),
        ),
    ];
    for (m, p, b, (status, code, reason)) in &cases {
        let r = request(&h, m, p, b.as_deref()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), *status, "{m} {p}");
        let (got_code, message) = error_of(r).await;
        assert_eq!(got_code, *code, "{m} {p}: {message}");
        assert!(
            message.contains(reason),
            "{m} {p}: the reason should say `{reason}`, it says `{message}`"
        );
    }
    assert!(
        h.upstream_requests().is_empty(),
        "{:?}",
        h.upstream_requests()
            .iter()
            .map(|r| r.uri.clone())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn allowed_requests_reach_dataverse() {
    let h = Harness::with_policy(POLICY).await;
    let cases: Vec<(&str, String, Option<String>)> = vec![
        ("GET", "contacts?$select=fullname".into(), None),
        (
            "GET",
            format!("contacts({C})/parentcustomerid_account"),
            None,
        ),
        (
            "GET",
            "contacts?$expand=parentcustomerid_account($select=name)".into(),
            None,
        ),
        (
            "GET",
            "contacts?$filter=parentcustomerid_account/name eq 'x'".into(),
            None,
        ),
        (
            "GET",
            "EntityDefinitions(LogicalName='contact')".into(),
            None,
        ),
        ("GET", "opportunities".into(), None),
        (
            "POST",
            "contacts".into(),
            Some(format!(
                r#"{{"firstname":"a","parentcustomerid_account@odata.bind":"/accounts({A})"}}"#
            )),
        ),
        ("GET", "WhoAmI()".into(), None),
    ];
    for (i, (m, p, b)) in cases.iter().enumerate() {
        let _ = send(&h, m, p, b.as_deref()).await;
        assert_eq!(
            h.upstream_requests().len(),
            i + 1,
            "{m} {p} did not reach the simulator"
        );
    }
    // the column-restricted read got its $select
    let seen = h.upstream_requests();
    let opp = seen
        .iter()
        .find(|r| r.uri.contains("opportunities"))
        .unwrap();
    assert!(
        opp.uri.ends_with("$select=name,estimatedvalue"),
        "{}",
        opp.uri
    );
}

#[tokio::test]
async fn patch_without_post_is_sent_with_if_match_star() {
    let h = Harness::with_policy(POLICY).await;
    let lead = "1ead0000-0000-4000-8000-000000000001";
    let status = send(
        &h,
        "PATCH",
        &format!("leads({lead})"),
        Some(r#"{"subject":"x"}"#),
    )
    .await;
    assert_eq!(status, 204);
    let seen = h.upstream_requests();
    assert_eq!(seen[0].headers["if-match"], "*");
    // and it cannot create: a missing id is 404 from Dataverse, not a new row
    let status = send(
        &h,
        "PATCH",
        "leads(1ead0000-0000-4000-8000-0000000000ff)",
        Some(r#"{"subject":"x"}"#),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn oversized_inspected_bodies_are_413() {
    let policy = format!("{POLICY}    limits:\n      max_body_bytes: 2KiB\n");
    let h = Harness::with_policy(&policy).await;
    let big = format!(r#"{{"firstname":"{}"}}"#, "x".repeat(4096));
    let r = request(&h, "POST", "contacts", Some(&big))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let (code, message) = error_of(r).await;
    assert_eq!(code, "GatewayPayloadTooLarge", "{message}");
    assert!(h.upstream_requests().is_empty());
}

#[tokio::test]
async fn metadata_is_fetched_from_the_org_when_no_file_is_configured() {
    let h = Harness::build(dataverse_gateway::sim::SimConfig::default(), |sim| {
        let yaml = tenant_yaml("contoso", true, sim, 0, &default_secret(), POLICY);
        let yaml: String = yaml
            .lines()
            .filter(|l| !l.contains("metadata_file"))
            .map(|l| format!("{l}\n"))
            .collect();
        format!("tenants:\n{yaml}")
    })
    .await;
    let fetched = h
        .upstream_requests()
        .iter()
        .any(|r| r.uri.ends_with("$metadata"));
    assert!(
        fetched,
        "the gateway fetched $metadata with its own token: {:?} tokens {}",
        h.upstream_requests()
            .iter()
            .map(|r| r.uri.clone())
            .collect::<Vec<_>>(),
        h.sim.token_requests()
    );
    // a lookup path needs the metadata: allowed now that it is loaded
    let r = h
        .get("contacts?$filter=parentcustomerid_account/name eq 'x'")
        .await;
    assert_eq!(r.status(), 200);
}
