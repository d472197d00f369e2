//! The security boundary for bodies, headers, annotations and `$batch`, end to end: through the
//! real proxy to the simulator, under the issue's example policy. On deny nothing reaches the
//! org and the reason names what was refused; on allow the right request reaches it, with the
//! right headers and body.

mod common;

use common::{Harness, error_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const POLICY: &str = "
    allow:
      contacts: [GET, POST, PATCH]
      leads: [GET]
      opportunities: { verbs: [GET], columns: [name, estimatedvalue] }
    functions: [WhoAmI]
";

const FORMATTED: &str = "OData.Community.Display.V1.FormattedValue";

async fn harness() -> Harness {
    Harness::with_policy(POLICY).await
}

async fn send(
    h: &Harness,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> reqwest::Response {
    let mut r = h.http.request(method, h.api(path));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b);
    }
    r.send().await.expect("the gateway answers")
}

/// Asserts a gateway denial with `status` whose message holds every needle, and that nothing
/// reached the org.
async fn refused(h: &Harness, r: reqwest::Response, status: StatusCode, needles: &[&str]) {
    assert_eq!(r.status(), status);
    let (code, message) = error_of(r).await;
    assert!(code.starts_with("Gateway"), "{code}: {message}");
    for n in needles {
        assert!(message.contains(n), "`{n}` not in: {message}");
    }
    assert!(
        h.upstream_requests().is_empty(),
        "a refused request reached the org: {:?}",
        h.upstream_requests()
    );
}

/// The one request that reached the org.
fn only_upstream(h: &Harness) -> dataverse_gateway::sim::RecordedRequest {
    let log = h.upstream_requests();
    assert_eq!(log.len(), 1, "{log:?}");
    log.into_iter().next().expect("one request")
}

/// Creates a contact directly in the simulator's store through the gateway; returns its id.
async fn contact(h: &Harness) -> String {
    let r = send(
        h,
        Method::POST,
        "contacts",
        &[("prefer", "return=representation")],
        Some(json!({"firstname": "Ada", "lastname": "Body"}).to_string()),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.expect("the created row");
    let id = v["contactid"].as_str().expect("an id").to_string();
    h.sim.clear_requests();
    id
}

// Item 4 (and 14): annotations, Prefer.

#[tokio::test]
async fn formatted_values_of_lookups_to_other_tables_are_refused() {
    let h = harness().await;
    let star = [("prefer", "odata.include-annotations=\"*\"")];
    let r = send(&h, Method::GET, "contacts", &star, None).await;
    refused(&h, r, StatusCode::FORBIDDEN, &["`systemusers`", FORMATTED]).await;
    let path = "contacts?$select=firstname,_createdby_value";
    let r = send(&h, Method::GET, path, &star, None).await;
    refused(
        &h,
        r,
        StatusCode::FORBIDDEN,
        &["`_createdby_value`", FORMATTED],
    )
    .await;
    let r = send(
        &h,
        Method::POST,
        "contacts",
        &[(
            "prefer",
            "return=representation,odata.include-annotations=OData.Community.*",
        )],
        Some(json!({"firstname": "x"}).to_string()),
    )
    .await;
    refused(&h, r, StatusCode::FORBIDDEN, &["`systemusers`"]).await;
    // The batch's own Prefer counts for its parts.
    let part = "--b\r\nContent-Type: application/http\r\n\r\nGET contacts?$select=_createdby_value HTTP/1.1\r\n\r\n\r\n--b--\r\n";
    let r = h
        .http
        .post(h.api("$batch"))
        .header("content-type", "multipart/mixed; boundary=b")
        .header("prefer", "odata.include-annotations=\"*\"")
        .body(part)
        .send()
        .await
        .expect("the gateway answers");
    refused(&h, r, StatusCode::FORBIDDEN, &["part 1", "`systemusers`"]).await;
}

#[tokio::test]
async fn a_column_list_keeps_lookups_and_their_names_out() {
    let h = harness().await;
    let star = [("prefer", "odata.include-annotations=\"*\"")];
    let r = send(&h, Method::GET, "opportunities", &star, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let up = only_upstream(&h);
    assert!(
        up.uri
            .ends_with("opportunities?$select=name,estimatedvalue"),
        "{}",
        up.uri
    );
    assert_eq!(up.headers["prefer"], "odata.include-annotations=\"*\"");
}

#[tokio::test]
async fn annotations_without_other_tables_data_reach_the_org_with_an_intact_prefer() {
    let h = harness().await;
    let prefer = "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.lookuplogicalname\", odata.maxpagesize=2";
    let r = send(
        &h,
        Method::GET,
        "contacts?$select=firstname",
        &[("prefer", prefer)],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let up = only_upstream(&h);
    assert_eq!(
        up.headers["prefer"],
        "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.lookuplogicalname\",odata.maxpagesize=2"
    );
    // Lookup names and navigation properties name tables, not their rows: allowed.
    h.sim.clear_requests();
    let prefer = "odata.include-annotations=\"Microsoft.Dynamics.CRM.*\"";
    let path = "contacts?$select=firstname,_createdby_value";
    let r = send(&h, Method::GET, path, &[("prefer", prefer)], None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(only_upstream(&h).headers["prefer"], prefer);
    // A Prefer header that does not parse is refused, not forwarded half-quoted.
    h.sim.clear_requests();
    let bad = [("prefer", "odata.include-annotations=\"*")];
    let r = send(&h, Method::GET, "contacts?$select=firstname", &bad, None).await;
    refused(&h, r, StatusCode::BAD_REQUEST, &["Prefer"]).await;
}

// Item 6: duplicate keys.

#[tokio::test]
async fn duplicate_keys_in_a_write_body_are_refused() {
    let h = harness().await;
    let body = r#"{"firstname":"a","parentcustomerid_account":{"name":"x"},"parentcustomerid_account":null}"#;
    let r = send(&h, Method::POST, "contacts", &[], Some(body.into())).await;
    refused(
        &h,
        r,
        StatusCode::BAD_REQUEST,
        &["`parentcustomerid_account`", "twice"],
    )
    .await;
    let body = r#"{"Targets":[{"@odata.type":"Microsoft.Dynamics.CRM.contact","lastname":"a","lastname":"b"}]}"#;
    let path = "contacts/Microsoft.Dynamics.CRM.CreateMultiple";
    let r = send(&h, Method::POST, path, &[], Some(body.into())).await;
    refused(&h, r, StatusCode::BAD_REQUEST, &["`lastname`", "twice"]).await;
}

// Item 9: bulk writes.

#[tokio::test]
async fn bulk_writes_need_the_tables_verbs_not_an_actions_entry() {
    let h = harness().await;
    let body = json!({"Targets": [
        {"@odata.type": "Microsoft.Dynamics.CRM.contact", "firstname": "B1", "lastname": "Bulk"},
        {"@odata.type": "Microsoft.Dynamics.CRM.contact", "firstname": "B2", "lastname": "Bulk"},
    ]})
    .to_string();
    let path = "contacts/Microsoft.Dynamics.CRM.CreateMultiple";
    let r = send(&h, Method::POST, path, &[], Some(body.clone())).await;
    assert_eq!(r.status(), StatusCode::OK);
    let ids: Value = r.json().await.expect("the ids");
    assert_eq!(ids["Ids"].as_array().map(Vec::len), Some(2));
    let up = only_upstream(&h);
    assert!(up.uri.ends_with(path), "{}", up.uri);
    assert_eq!(up.body, body.as_bytes());
    // leads allows GET only: every bulk write on it is refused, naming the verb.
    h.sim.clear_requests();
    let lead = json!({"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.lead", "subject": "x"}]});
    for (action, needle) in [
        ("CreateMultiple", "POST on `leads`"),
        ("UpdateMultiple", "PATCH on `leads`"),
        ("UpsertMultiple", "POST on `leads`"),
    ] {
        let path = format!("leads/Microsoft.Dynamics.CRM.{action}");
        let r = send(&h, Method::POST, &path, &[], Some(lead.to_string())).await;
        refused(&h, r, StatusCode::FORBIDDEN, &[needle]).await;
    }
    // A Targets row is a write body: a deep insert into another table is refused.
    let deep = json!({"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.contact",
        "parentcustomerid_account": {"name": "x"}}]});
    let r = send(&h, Method::POST, path, &[], Some(deep.to_string())).await;
    refused(&h, r, StatusCode::FORBIDDEN, &["POST on `accounts`"]).await;
}

// Item 7c: annotation spellings.

#[tokio::test]
async fn unknown_annotation_spellings_are_refused() {
    let h = harness().await;
    let path = "contacts/Microsoft.Dynamics.CRM.CreateMultiple";
    for (row, needle) in [
        (
            json!({"@odata.type": "contact", "firstname": "x"}),
            "`contact`",
        ),
        (
            json!({"@odata.type": "#mscrm.contact", "@type": "#mscrm.systemuser"}),
            "`@type`",
        ),
        (
            json!({"@odata.type": "#mscrm.contact", "firstname@Microsoft.Dynamics.CRM.x": "1"}),
            "`firstname@Microsoft.Dynamics.CRM.x`",
        ),
    ] {
        let body = json!({ "Targets": [row] }).to_string();
        let r = send(&h, Method::POST, path, &[], Some(body)).await;
        refused(&h, r, StatusCode::FORBIDDEN, &[needle]).await;
    }
}

// Item 12: round-tripped records.

#[tokio::test]
async fn a_round_tripped_record_is_accepted_with_its_etag() {
    let h = harness().await;
    let id = contact(&h).await;
    let body = json!({"@odata.etag": "W/\"1\"", "firstname": "Round"}).to_string();
    let path = format!("contacts({id})");
    let r = send(&h, Method::PATCH, &path, &[], Some(body.clone())).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let up = only_upstream(&h);
    assert_eq!(up.method, Method::PATCH);
    assert_eq!(up.body, body.as_bytes());
    h.sim.clear_requests();
    let body = json!({"@odata.nextLink": "x", "firstname": "Round"}).to_string();
    let r = send(&h, Method::PATCH, &path, &[], Some(body)).await;
    refused(&h, r, StatusCode::FORBIDDEN, &["`@odata.nextLink`"]).await;
}

// Item 13: verbs.

#[tokio::test]
async fn one_column_writes_are_patches() {
    let h = harness().await;
    let id = contact(&h).await;
    let path = format!("contacts({id})/firstname");
    let body = json!({"value": "Single"}).to_string();
    let r = send(&h, Method::PUT, &path, &[], Some(body.clone())).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let up = only_upstream(&h);
    assert_eq!(
        (up.method.as_str(), up.body.as_ref()),
        ("PUT", body.as_bytes())
    );
    h.sim.clear_requests();
    let r = send(&h, Method::DELETE, &path, &[], None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(only_upstream(&h).method, Method::DELETE);
    // Clearing the contact's own lookup: an update of contacts, no read of accounts.
    h.sim.clear_requests();
    let path = format!("contacts({id})/parentcustomerid_account/$ref");
    let _ = send(&h, Method::DELETE, &path, &[], None).await;
    let up = only_upstream(&h);
    assert!(up.uri.ends_with(&path), "{}", up.uri);
    // leads allows GET only.
    h.sim.clear_requests();
    let lead = "leads(1e000000-0000-4000-8000-000000000001)/subject";
    let r = send(&h, Method::PUT, lead, &[], Some(body)).await;
    refused(&h, r, StatusCode::FORBIDDEN, &["PATCH on `leads`"]).await;
}

// Items 7d and 14: $batch part headers and inner Content-IDs.

fn batch_body(parts: &str) -> String {
    format!("{parts}--b--\r\n")
}

async fn post_batch(h: &Harness, body: String) -> reqwest::Response {
    h.http
        .post(h.api("$batch"))
        .header("content-type", "multipart/mixed; boundary=b")
        .body(body)
        .send()
        .await
        .expect("the gateway answers")
}

#[tokio::test]
async fn batch_part_headers_are_framing_only() {
    let h = harness().await;
    let part = "--b\r\nContent-Type: application/http\r\nMSCRMCallerID: 00000000-0000-0000-0000-000000000009\r\n\r\nGET contacts?$select=firstname HTTP/1.1\r\n\r\n\r\n";
    let r = post_batch(&h, batch_body(part)).await;
    refused(&h, r, StatusCode::BAD_REQUEST, &["`MSCRMCallerID`"]).await;
    // Inner headers get the top level's hygiene: tunnelling refused, impersonation stripped.
    let part = "--b\r\nContent-Type: application/http\r\n\r\nPOST contacts HTTP/1.1\r\nX-HTTP-Method: DELETE\r\nContent-Type: application/json\r\n\r\n{}\r\n";
    let r = post_batch(&h, batch_body(part)).await;
    refused(&h, r, StatusCode::BAD_REQUEST, &["`x-http-method`"]).await;
    let part = "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET contacts?$select=firstname HTTP/1.1\r\nMSCRMCallerID: 00000000-0000-0000-0000-000000000009\r\nMSCRM.BypassCustomPluginExecution: true\r\nPrefer: odata.include-annotations=\"A,B\"\r\nAccept: application/json\r\n\r\n\r\n";
    let r = post_batch(&h, batch_body(part)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let up = only_upstream(&h);
    let sent = String::from_utf8_lossy(&up.body).to_ascii_lowercase();
    assert!(!sent.contains("mscrmcallerid"), "{sent}");
    assert!(!sent.contains("bypass"), "{sent}");
    assert!(
        sent.contains("prefer: odata.include-annotations=\"a,b\"\r\n"),
        "{sent}"
    );
}

#[tokio::test]
async fn a_content_id_in_the_inner_headers_keeps_references_working() {
    let h = harness().await;
    let parts = "--b\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n\
        --cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n\
        POST contacts HTTP/1.1\r\nContent-ID: 1\r\nContent-Type: application/json\r\n\r\n{\"lastname\":\"Ref\"}\r\n\
        --cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n\
        PATCH $1 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"firstname\":\"Patched\"}\r\n\
        --cs--\r\n";
    let r = post_batch(&h, batch_body(parts)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.expect("the batch answer");
    assert!(
        !text.contains("does not exist in the batch context"),
        "{text}"
    );
    let up = only_upstream(&h);
    let sent = String::from_utf8_lossy(&up.body).into_owned();
    // The Content-ID travels in the part's MIME headers, before the request line.
    let id_at = sent
        .find("Content-ID: 1\r\n")
        .expect("a Content-ID upstream");
    let post_at = sent.find("POST ").expect("the POST");
    assert!(id_at < post_at, "{sent}");
    let rows = send(
        &h,
        Method::GET,
        "contacts?$select=firstname&$filter=lastname eq 'Ref'",
        &[],
        None,
    )
    .await;
    let rows: Value = rows.json().await.expect("rows");
    assert_eq!(rows["value"][0]["firstname"], "Patched");
}
