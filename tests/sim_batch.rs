//! `$batch` and the bulk actions of the simulator, over real HTTP: change sets with `$n`
//! references and rollback, LF-only bodies with absolute inner URLs, stop-on-error versus
//! `Prefer: odata.continue-on-error`, the multipart answer's wire form, and `CreateMultiple`,
//! `UpdateMultiple` and `UpsertMultiple`.

mod common;

use common::sim_client::{Reply, SimClient};
use dataverse_gateway::sim::SimConfig;
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// One response inside a `$batch` answer, with its Content-ID.
#[derive(Debug)]
struct Part {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: String,
    content_id: Option<String>,
}

impl Part {
    fn header(&self, name: &str) -> &str {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str()).unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// The inner responses of a `$batch` answer, change-set members flattened, in order.
fn answers(reply: &Reply) -> Vec<Part> {
    let content_type = reply.header("content-type");
    let boundary = content_type
        .strip_prefix("multipart/mixed; boundary=")
        .expect("multipart answer");
    assert!(boundary.starts_with("batchresponse_"), "{boundary}");
    let body = String::from_utf8(reply.body.to_vec()).expect("UTF-8 body");
    assert!(body.starts_with(&format!("--{boundary}\r\n")));
    assert!(!body.replace("\r\n", "").contains('\n'), "CRLF only");
    split(&body, boundary)
}

fn split(body: &str, boundary: &str) -> Vec<Part> {
    let mut out = Vec::new();
    for chunk in body.split(&format!("--{boundary}")).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let chunk = chunk.strip_prefix("\r\n").expect("CRLF after delimiter");
        let chunk = chunk.strip_suffix("\r\n").unwrap_or(chunk);
        let (mime, rest) = chunk.split_once("\r\n\r\n").expect("MIME headers");
        if let Some(inner) = mime.strip_prefix("Content-Type: multipart/mixed; boundary=") {
            assert!(inner.starts_with("changesetresponse_"), "{inner}");
            out.extend(split(rest, inner));
            continue;
        }
        let mut mime = mime.split("\r\n");
        assert_eq!(mime.next(), Some("Content-Type: application/http"));
        assert_eq!(mime.next(), Some("Content-Transfer-Encoding: binary"));
        let content_id = mime.next().and_then(|l| l.strip_prefix("Content-ID: "));
        let (head, body) = rest.split_once("\r\n\r\n").expect("HTTP head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let status = status_line[9..12].parse().expect("status");
        out.push(Part {
            status: StatusCode::from_u16(status).expect("status"),
            headers,
            body: body.to_string(),
            content_id: content_id.map(str::to_string),
        });
    }
    out
}

fn statuses(parts: &[Part]) -> Vec<u16> {
    parts.iter().map(|p| p.status.as_u16()).collect()
}

/// A part of a batch request: MIME headers (with a Content-ID when given), request, body.
fn part(boundary: &str, id: Option<u32>, request: &str, body: &str) -> String {
    let id = id
        .map(|n| format!("Content-ID: {n}\r\n"))
        .unwrap_or_default();
    format!(
        "--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n{id}\r\n\
         {request} HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n{body}\r\n"
    )
}

fn change_set(batch: &str, set: &str, parts: &[String]) -> String {
    format!(
        "--{batch}\r\nContent-Type: multipart/mixed; boundary=\"{set}\"\r\n\r\n{}--{set}--\r\n",
        parts.concat()
    )
}

#[tokio::test]
async fn change_sets_resolve_content_id_references() {
    let s = SimClient::start(SimConfig::default()).await;
    let t = s.token().await;
    let (b, cs) = ("batch_1", "changeset_1");
    let bind = r#"{"lastname":"Ref","parentcustomerid_account@odata.bind":"$1"}"#;
    let email = r#"{"value":"re@example.com"}"#;
    let parts = [
        part(cs, Some(1), "POST accounts", r#"{"name":"Batch Co"}"#),
        part(cs, Some(2), "POST /api/data/v9.2/contacts", bind),
        part(cs, Some(3), "PATCH $2", r#"{"firstname":"Re"}"#),
        part(cs, Some(4), "PUT $2/emailaddress1", email),
    ];
    let read = part(b, None, "GET contacts?$filter=lastname%20eq%20'Ref'", "");
    let body = change_set(b, cs, &parts) + &read + &format!("--{b}--\r\n");
    s.sim.clear_requests();
    let reply = s.batch(&t, b, &body, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("odata-version"), "4.0");
    let recorded = s.sim.requests();
    assert_eq!(recorded.len(), 1, "one record for the whole batch");
    assert_eq!(recorded[0].uri, "/api/data/v9.2/$batch");

    let parts = answers(&reply);
    assert_eq!(statuses(&parts), [204, 204, 204, 204, 200]);
    let ids: Vec<Option<&str>> = parts.iter().map(|p| p.content_id.as_deref()).collect();
    assert_eq!(ids, [Some("1"), Some("2"), Some("3"), Some("4"), None]);
    let account = parts[0].header("OData-EntityId");
    assert!(
        account.starts_with(&format!("{}/accounts(", s.api_root())),
        "{account}"
    );
    assert_eq!(parts[0].header("Location"), account);
    assert_eq!(parts[0].header("OData-Version"), "4.0");
    let contact = parts[1].header("OData-EntityId");
    assert_eq!(parts[2].header("OData-EntityId"), contact, "PATCH $2");

    let read = &parts[4];
    assert!(read.header("Content-Type").starts_with("application/json"));
    let rows = read.json()["value"].as_array().cloned().expect("rows");
    assert_eq!(rows.len(), 1);
    let account_id = &account[account.len() - 37..account.len() - 1];
    assert_eq!(rows[0]["_parentcustomerid_value"], account_id);
    assert_eq!(rows[0]["firstname"], "Re");
    assert_eq!(rows[0]["emailaddress1"], "re@example.com");
}

#[tokio::test]
async fn lf_only_bodies_with_absolute_urls_are_served() {
    let s = SimClient::start(SimConfig::default()).await;
    let t = s.token().await;
    let api = s.api_root();
    let local = api.replace("127.0.0.1", "localhost");
    let body = format!(
        "--b\nContent-Type:application/http\nContent-Transfer-Encoding:binary\n\n\
         POST {api}/leads HTTP/1.1\nContent-Type: application/json\nPrefer: return=representation\n\n\
         {{\"subject\":\"LF lead\"}}\n\
         --b\nContent-Type: application/http\nContent-Transfer-Encoding: binary\n\n\
         GET {local}/leads?$select=subject&$filter=subject%20eq%20'LF%20lead' HTTP/1.1\n\n\n\
         --b\nContent-Type: application/http\n\n\
         GET {api}/WhoAmI() HTTP/1.1\n\n\n--b--\n"
    );
    let reply = s.batch(&t, "b", &body, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let parts = answers(&reply);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].status, StatusCode::CREATED);
    let applied = parts[0].header("Preference-Applied");
    assert_eq!(applied, "return=representation");
    assert_eq!(parts[0].json()["subject"], "LF lead");
    assert!(parts[0].header("ETag").starts_with("W/\""));
    let rows = parts[1].json()["value"].as_array().cloned().expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["subject"], "LF lead");
    assert!(parts[2].json()["UserId"].is_string());
}

#[tokio::test]
async fn a_failure_rolls_back_its_change_set_and_stops_the_batch() {
    let s = SimClient::start(SimConfig::default()).await;
    let t = s.token().await;
    let (b, cs) = ("batch_x", "changeset_x");
    let parts = [
        part(cs, Some(1), "POST leads", r#"{"subject":"Doomed"}"#),
        part(cs, Some(2), "PATCH $1", r#"{"subject":"Doomed too"}"#),
        part(cs, Some(3), "POST leads", r#"{"bogus":1}"#),
    ];
    let after = part(b, None, "POST leads", r#"{"subject":"After"}"#);
    let foreign = part(b, None, "GET http://elsewhere:1/api/data/v9.2/leads", "");
    let body = change_set(b, cs, &parts) + &after + &foreign + &format!("--{b}--\r\n");

    let stopped = s.batch(&t, b, &body, None).await;
    assert_eq!(stopped.status, StatusCode::BAD_REQUEST);
    let parts = answers(&stopped);
    assert_eq!(parts.len(), 1, "only the failed change set's error");
    assert_eq!(parts[0].status, StatusCode::BAD_REQUEST);
    assert_eq!(parts[0].json()["error"]["code"], "0x80060888");
    let leads = s.rows("leads", &t).await;
    assert_eq!(leads.len(), 5, "rolled back, and the rest never ran");

    let reply = s.batch(&t, b, &body, Some("odata.continue-on-error")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let applied = reply.header("preference-applied");
    assert_eq!(applied, "odata.continue-on-error");
    let parts = answers(&reply);
    assert_eq!(statuses(&parts), [400, 204, 400]);
    let message = parts[2].json()["error"]["message"].to_string();
    assert!(message.contains("is not based on"), "{message}");
    assert_eq!(s.rows("leads", &t).await.len(), 6, "only `After` was added");
}

#[tokio::test]
async fn malformed_batches_are_refused_whole() {
    let s = SimClient::start(SimConfig::default()).await;
    let t = s.token().await;
    let json = [("content-type", "application/json")];
    let not_multipart = s.api(Method::POST, "$batch", &t, &json, "{}").await;
    assert_eq!(not_multipart.status, StatusCode::BAD_REQUEST);
    assert!(not_multipart.json()["error"]["message"].is_string());
    assert_eq!(
        s.get("$batch", &t).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );

    let (b, cs) = ("bb", "cc");
    let get_in_change_set = change_set(b, cs, &[part(cs, None, "GET leads", "")]) + "--bb--\r\n";
    let unknown_ref = change_set(b, cs, &[part(cs, Some(1), "PATCH $2", "{}")]) + "--bb--\r\n";
    let nested = part(b, None, "POST $batch", "") + "--bb--\r\n";
    let unterminated = part(b, None, "GET leads", "");
    for body in [get_in_change_set, unknown_ref, nested, unterminated] {
        let reply = s.batch(&t, b, &body, None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.header("content-type").starts_with("application/json"));
    }
    assert_eq!(s.rows("leads", &t).await.len(), 5);
}

#[tokio::test]
async fn bulk_actions_write_all_or_nothing() {
    let s = SimClient::start(SimConfig::default()).await;
    let t = s.token().await;
    let lead = "Microsoft.Dynamics.CRM.lead";
    let action = |name: &str| format!("leads/Microsoft.Dynamics.CRM.{name}");
    let create = json!({"Targets": [
        {"@odata.type": lead, "subject": "Bulk 1"},
        {"@odata.type": lead, "subject": "Bulk 2", "emailaddress1": "b2@x.com"},
    ]});
    let reply = s.post_json(&action("CreateMultiple"), &t, &create).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let answer = reply.json();
    let context = "$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse";
    assert_eq!(
        answer["@odata.context"],
        format!("{}/{context}", s.api_root())
    );
    let ids: Vec<&str> = answer["Ids"]
        .as_array()
        .expect("Ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(s.rows("leads", &t).await.len(), 7);
    for bad in [
        json!({"Targets": [{"subject": "No type"}]}),
        json!({"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.contact"}]}),
        json!({"Targets": []}),
    ] {
        let reply = s.post_json(&action("CreateMultiple"), &t, &bad).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }

    let missing = "1ead0000-0000-4000-8000-0000000000ff";
    let update = json!({"Targets": [
        {"@odata.type": lead, "leadid": ids[0], "subject": "Bulk 1b"},
        {"@odata.type": lead, "leadid": missing, "subject": "x"},
    ]});
    let reply = s.post_json(&action("UpdateMultiple"), &t, &update).await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "one missing row fails all"
    );
    assert_eq!(
        s.get(&format!("leads({})", ids[0]), &t).await.json()["subject"],
        "Bulk 1"
    );
    let update =
        json!({"Targets": [{"@odata.type": lead, "leadid": ids[0], "subject": "Bulk 1b"}]});
    let reply = s.post_json(&action("UpdateMultiple"), &t, &update).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let first = s.get(&format!("leads({})/subject", ids[0]), &t).await;
    assert_eq!(first.json()["value"], "Bulk 1b");

    let absolute = format!("{}/leads(emailaddress1='new@x.com')", s.api_root());
    let upsert = json!({"Targets": [
        {"@odata.type": lead, "@odata.id": "leads(emailaddress1='b2@x.com')", "subject": "Bulk 2b"},
        {"@odata.type": lead, "@odata.id": absolute, "subject": "Bulk 3"},
    ]});
    let reply = s.post_json(&action("UpsertMultiple"), &t, &upsert).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(
        s.get(&format!("leads({})", ids[1]), &t).await.json()["subject"],
        "Bulk 2b"
    );
    let created = s
        .rows("leads?$filter=emailaddress1%20eq%20'new@x.com'", &t)
        .await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["subject"], "Bulk 3");

    let denied = json!({"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.systemuser"}]});
    let reply = s
        .post_json(
            "systemusers/Microsoft.Dynamics.CRM.CreateMultiple",
            &t,
            &denied,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["error"]["code"], "0x80040220");
    let reply = s.get(&action("CreateMultiple"), &t).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}
