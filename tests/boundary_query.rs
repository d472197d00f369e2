//! Query options at the security boundary, through the real proxy to the simulator: parameter
//! aliases bound to columns (also inside `$batch`), GUID literals, documented query-function
//! syntax and `$apply`. A denied request never reaches the org; an allowed one reaches it as sent
//! (plus the `$select` the gateway adds).

mod common;

use common::*;
use dataverse_gateway::policy::odata::percent_decode;

const POLICY: &str = "
    allow:
      contacts: [GET, POST, PATCH]
      leads: [GET]
      opportunities:
        verbs: [GET]
        columns: [name, estimatedvalue]
";

/// GET `path?query` (the query encoded by the client): status and gateway error message.
async fn get(h: &Harness, path_and_query: &str) -> (u16, String) {
    let r = h.get(path_and_query).await;
    let status = r.status().as_u16();
    if status == 200 {
        return (status, r.text().await.unwrap_or_default());
    }
    let (_, message) = error_of(r).await;
    (status, message)
}

/// The decoded query of the only request the simulator received since the last clear.
fn forwarded(h: &Harness) -> String {
    let seen = h.upstream_requests();
    assert_eq!(
        seen.len(),
        1,
        "{:?}",
        seen.iter().map(|r| &r.uri).collect::<Vec<_>>()
    );
    let query = seen[0].uri.split_once('?').map_or("", |(_, q)| q);
    percent_decode(query, true).expect("decodable")
}

async fn refused(h: &Harness, url: &str, names: &[&str]) {
    h.sim.clear_requests();
    let (status, message) = get(h, url).await;
    assert_eq!(status, 403, "{url}: {message}");
    for n in names {
        assert!(message.contains(n), "{url}: `{message}` does not name {n}");
    }
    assert!(h.upstream_requests().is_empty(), "{url} reached the org");
}

/// Allowed, and forwarded with exactly this query (decoded); returns the body.
async fn passed(h: &Harness, url: &str, expected_query: &str) -> String {
    h.sim.clear_requests();
    let (status, body) = get(h, url).await;
    assert_eq!(status, 200, "{url}: {body}");
    assert_eq!(forwarded(h), expected_query, "{url}");
    body
}

async fn passed_as_sent(h: &Harness, url: &str) {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    passed(h, url, query).await;
}

#[tokio::test]
async fn aliases_bound_to_columns_are_checked_like_the_columns() {
    let h = Harness::with_policy(POLICY).await;
    let column = "column `statuscode` of `opportunities`";
    for url in [
        "opportunities?$select=name&$filter=contains(@p,'x')&@p=statuscode",
        "opportunities?$select=name&$filter=@p1 ne @p3&@p1=statuscode&@p3=5",
        "opportunities/$count?$filter=@p eq 1&@p=statuscode",
        "opportunities?$apply=filter(@p eq 1)/groupby((name))&@p=statuscode",
        "opportunities?$select=name&$orderby=@p&@p=statuscode",
    ] {
        refused(&h, url, &[column]).await;
    }
    refused(&h, "contacts?$select=fullname&@p=createdby", &["`@p`"]).await;
    refused(
        &h,
        "contacts?$filter=@p eq 'x'&@p=createdby/fullname",
        &["`systemusers`"],
    )
    .await;
    passed_as_sent(
        &h,
        "opportunities?$select=name&$filter=contains(@p,'x')&@p=name",
    )
    .await;
    passed_as_sent(
        &h,
        "opportunities?$select=name&$orderby=@p desc&@p=estimatedvalue",
    )
    .await;
}

/// Item 8: about 6 GUIDs in 16 start with a letter; every one is a literal, any case.
#[tokio::test]
async fn guid_literals_starting_with_a_letter_pass() {
    let h = Harness::with_policy(POLICY).await;
    for first in "0123456789abcdefABCDEF".chars() {
        let g = format!("{first}3c2aa00-0000-4000-8000-00000000000b");
        passed_as_sent(
            &h,
            &format!("contacts?$filter=_parentcustomerid_value eq {g}"),
        )
        .await;
        passed_as_sent(
            &h,
            &format!(
                "leads?$filter=_createdby_value ne {}",
                g.to_ascii_uppercase()
            ),
        )
        .await;
    }
}

#[tokio::test]
async fn documented_query_function_syntax_passes_and_arguments_are_checked() {
    let h = Harness::with_policy(POLICY).await;
    for url in [
        r#"opportunities?$select=name&$filter=Microsoft.Dynamics.CRM.Between(PropertyName='estimatedvalue',PropertyValues=["5","2000"])"#,
        "contacts?$filter=Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)&@p1='lastname'&@p2=['Smith','Jones']",
        "leads?$filter=Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby')",
        "contacts?$orderby=@p2 asc&@p2=fullname",
    ] {
        passed_as_sent(&h, url).await;
    }
    for (url, names) in [
        (
            "opportunities?$select=name&$filter=Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)&@p1='statuscode'&@p2=[1]",
            &["column `statuscode`"][..],
        ),
        (
            "opportunities?$select=name&$filter=Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[statuscode])",
            &["array"],
        ),
        (
            "opportunities?$select=name&$filter=Microsoft.Dynamics.CRM.LastXDays(PropertyName='name',Hidden=statuscode)",
            &["`Hidden`"],
        ),
        (
            "contacts?$filter=Microsoft.Dynamics.CRM.NoSuchFunction(PropertyName='fullname')",
            &["`NoSuchFunction`"],
        ),
    ] {
        refused(&h, url, names).await;
    }
}

/// Item 7b: an `$apply` that only filters returns whole rows; the restricted table gets the
/// `$select` a plain read gets, and the agent receives no other column.
#[tokio::test]
async fn apply_filter_without_select_gets_the_allowed_columns() {
    let h = Harness::with_policy(POLICY).await;
    let body = passed(
        &h,
        "opportunities?$apply=filter(estimatedvalue gt 0)",
        "$apply=filter(estimatedvalue gt 0)&$select=name,estimatedvalue",
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let rows = v["value"].as_array().expect("rows");
    assert!(!rows.is_empty(), "{body}");
    for row in rows {
        let row = row.as_object().expect("row");
        assert!(!row.contains_key("statuscode"), "{body}");
        assert!(!row.contains_key("_parentaccountid_value"), "{body}");
    }
    refused(
        &h,
        "opportunities?$apply=filter(statuscode eq 1)",
        &["column `statuscode`"],
    )
    .await;
}

/// The same alias rules apply to each part of a `$batch`.
#[tokio::test]
async fn aliases_inside_batch_parts() {
    let h = Harness::with_policy(POLICY).await;
    let batch = |query: &str| {
        format!(
            "--b1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n\
             GET /api/data/v9.2/opportunities?{query} HTTP/1.1\r\nAccept: application/json\r\n\r\n\
             --b1--\r\n"
        )
    };
    let send = |body: String| {
        h.http
            .post(h.api("$batch"))
            .header("content-type", "multipart/mixed; boundary=b1")
            .body(body)
            .send()
    };
    h.sim.clear_requests();
    let r = send(batch("$select=name&$filter=contains(@p,'x')&@p=statuscode"))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (_, message) = error_of(r).await;
    assert!(message.contains("column `statuscode`"), "{message}");
    assert!(h.upstream_requests().is_empty());

    let r = send(batch("$select=name&$filter=contains(@p,'x')&@p=name"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = h.upstream_requests();
    assert_eq!(seen.len(), 1);
    let body = String::from_utf8_lossy(&seen[0].body);
    assert!(
        body.contains("opportunities?$select=name&$filter=contains(@p,'x')&@p=name HTTP/1.1"),
        "{body}"
    );
}
