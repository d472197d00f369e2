//! `$batch` and the bulk actions of the simulator, over real HTTP: change sets with `$n`
//! references and rollback, LF-only bodies with absolute inner URLs, stop-on-error versus
//! `Prefer: odata.continue-on-error`, the multipart answer's wire form, and `CreateMultiple`,
//! `UpdateMultiple` and `UpsertMultiple`.

use bytes::Bytes;
use dataverse_gateway::sim::{
    DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT_ID, SimConfig, Simulator,
};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// A response: the outer one, or one inside a `$batch` answer (then with its Content-ID).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: String,
    content_id: Option<String>,
}

impl Reply {
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

    /// The inner responses of a `$batch` answer, change-set members flattened, in order.
    fn parts(&self) -> Vec<Reply> {
        let content_type = self.header("content-type");
        let boundary = content_type
            .strip_prefix("multipart/mixed; boundary=")
            .expect("multipart answer");
        assert!(boundary.starts_with("batchresponse_"), "{boundary}");
        assert!(self.body.starts_with(&format!("--{boundary}\r\n")));
        assert!(!self.body.replace("\r\n", "").contains('\n'), "CRLF only");
        split(&self.body, boundary)
    }
}

fn split(body: &str, boundary: &str) -> Vec<Reply> {
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
        out.push(Reply {
            status: StatusCode::from_u16(status).expect("status"),
            headers,
            body: body.to_string(),
            content_id: content_id.map(str::to_string),
        });
    }
    out
}

struct Sim {
    sim: Simulator,
    client: Client<HttpConnector, Full<Bytes>>,
    token: String,
}

impl Sim {
    async fn start() -> Self {
        let sim = Simulator::start(SimConfig::default()).await.expect("sim");
        let client = Client::builder(TokioExecutor::new()).build_http();
        let mut sim = Sim {
            sim,
            client,
            token: String::new(),
        };
        let form = format!(
            "client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_SECRET}&grant_type=client_credentials&scope={}",
            sim.sim.scope()
        );
        let url = sim.sim.token_url(DEFAULT_TENANT_ID);
        let form_type = [("content-type", "application/x-www-form-urlencoded")];
        let reply = sim.send(Method::POST, &url, &form_type, &form).await;
        sim.token = reply.json()["access_token"].as_str().expect("token").into();
        sim
    }

    fn api(&self) -> String {
        format!("{}/api/data/v9.2", self.sim.base_url())
    }

    /// Sends to `target`: a full URL, or a path under the API root (then with the token).
    async fn send(
        &self,
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request = Request::builder().method(method);
        if target.starts_with("http") {
            request = request.uri(target);
        } else {
            let bearer = format!("Bearer {}", self.token);
            let url = format!("{}/{target}", self.api());
            request = request.uri(url).header("authorization", bearer);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_string())));
        let response = self.client.request(request.expect("request")).await;
        let (parts, body) = response.expect("response").into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        let headers = parts
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()));
        Reply {
            status: parts.status,
            headers: headers.collect(),
            body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
            content_id: None,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], "").await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, &[], &body.to_string()).await
    }

    async fn batch(&self, boundary: &str, body: &str, prefer: Option<&str>) -> Reply {
        let content_type = format!("multipart/mixed; boundary=\"{boundary}\"");
        let mut headers = vec![("content-type", content_type.as_str())];
        headers.extend(prefer.map(|p| ("prefer", p)));
        self.send(Method::POST, "$batch", &headers, body).await
    }

    async fn rows(&self, path: &str) -> Vec<Value> {
        let reply = self.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json()["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn statuses(parts: &[Reply]) -> Vec<u16> {
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
    let s = Sim::start().await;
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
    let reply = s.batch(b, &body, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("odata-version"), "4.0");
    let recorded = s.sim.requests();
    assert_eq!(recorded.len(), 1, "one record for the whole batch");
    assert_eq!(recorded[0].uri, "/api/data/v9.2/$batch");

    let parts = reply.parts();
    assert_eq!(statuses(&parts), [204, 204, 204, 204, 200]);
    let ids: Vec<Option<&str>> = parts.iter().map(|p| p.content_id.as_deref()).collect();
    assert_eq!(ids, [Some("1"), Some("2"), Some("3"), Some("4"), None]);
    let account = parts[0].header("OData-EntityId");
    assert!(
        account.starts_with(&format!("{}/accounts(", s.api())),
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
    let s = Sim::start().await;
    let api = s.api();
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
    let reply = s.batch("b", &body, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let parts = reply.parts();
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
    let s = Sim::start().await;
    let (b, cs) = ("batch_x", "changeset_x");
    let parts = [
        part(cs, Some(1), "POST leads", r#"{"subject":"Doomed"}"#),
        part(cs, Some(2), "PATCH $1", r#"{"subject":"Doomed too"}"#),
        part(cs, Some(3), "POST leads", r#"{"bogus":1}"#),
    ];
    let after = part(b, None, "POST leads", r#"{"subject":"After"}"#);
    let foreign = part(b, None, "GET http://elsewhere:1/api/data/v9.2/leads", "");
    let body = change_set(b, cs, &parts) + &after + &foreign + &format!("--{b}--\r\n");

    let stopped = s.batch(b, &body, None).await;
    assert_eq!(stopped.status, StatusCode::BAD_REQUEST);
    let parts = stopped.parts();
    assert_eq!(parts.len(), 1, "only the failed change set's error");
    assert_eq!(parts[0].status, StatusCode::BAD_REQUEST);
    assert_eq!(parts[0].json()["error"]["code"], "0x80060888");
    let leads = s.rows("leads").await;
    assert_eq!(leads.len(), 5, "rolled back, and the rest never ran");

    let reply = s.batch(b, &body, Some("odata.continue-on-error")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let applied = reply.header("preference-applied");
    assert_eq!(applied, "odata.continue-on-error");
    let parts = reply.parts();
    assert_eq!(statuses(&parts), [400, 204, 400]);
    let message = parts[2].json()["error"]["message"].to_string();
    assert!(message.contains("is not based on"), "{message}");
    assert_eq!(s.rows("leads").await.len(), 6, "only `After` was added");
}

#[tokio::test]
async fn malformed_batches_are_refused_whole() {
    let s = Sim::start().await;
    let json = [("content-type", "application/json")];
    let not_multipart = s.send(Method::POST, "$batch", &json, "{}").await;
    assert_eq!(not_multipart.status, StatusCode::BAD_REQUEST);
    assert!(not_multipart.json()["error"]["message"].is_string());
    assert_eq!(s.get("$batch").await.status, StatusCode::METHOD_NOT_ALLOWED);

    let (b, cs) = ("bb", "cc");
    let get_in_change_set = change_set(b, cs, &[part(cs, None, "GET leads", "")]) + "--bb--\r\n";
    let unknown_ref = change_set(b, cs, &[part(cs, Some(1), "PATCH $2", "{}")]) + "--bb--\r\n";
    let nested = part(b, None, "POST $batch", "") + "--bb--\r\n";
    let unterminated = part(b, None, "GET leads", "");
    for body in [get_in_change_set, unknown_ref, nested, unterminated] {
        let reply = s.batch(b, &body, None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.header("content-type").starts_with("application/json"));
    }
    assert_eq!(s.rows("leads").await.len(), 5);
}

#[tokio::test]
async fn bulk_actions_write_all_or_nothing() {
    let s = Sim::start().await;
    let lead = "Microsoft.Dynamics.CRM.lead";
    let action = |name: &str| format!("leads/Microsoft.Dynamics.CRM.{name}");
    let create = json!({"Targets": [
        {"@odata.type": lead, "subject": "Bulk 1"},
        {"@odata.type": lead, "subject": "Bulk 2", "emailaddress1": "b2@x.com"},
    ]});
    let reply = s.post(&action("CreateMultiple"), &create).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let answer = reply.json();
    let context = "$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse";
    assert_eq!(answer["@odata.context"], format!("{}/{context}", s.api()));
    let ids: Vec<&str> = answer["Ids"]
        .as_array()
        .expect("Ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(s.rows("leads").await.len(), 7);
    for bad in [
        json!({"Targets": [{"subject": "No type"}]}),
        json!({"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.contact"}]}),
        json!({"Targets": []}),
    ] {
        let reply = s.post(&action("CreateMultiple"), &bad).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }

    let missing = "1ead0000-0000-4000-8000-0000000000ff";
    let update = json!({"Targets": [
        {"@odata.type": lead, "leadid": ids[0], "subject": "Bulk 1b"},
        {"@odata.type": lead, "leadid": missing, "subject": "x"},
    ]});
    let reply = s.post(&action("UpdateMultiple"), &update).await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "one missing row fails all"
    );
    assert_eq!(
        s.get(&format!("leads({})", ids[0])).await.json()["subject"],
        "Bulk 1"
    );
    let update =
        json!({"Targets": [{"@odata.type": lead, "leadid": ids[0], "subject": "Bulk 1b"}]});
    let reply = s.post(&action("UpdateMultiple"), &update).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let first = s.get(&format!("leads({})/subject", ids[0])).await;
    assert_eq!(first.json()["value"], "Bulk 1b");

    let absolute = format!("{}/leads(emailaddress1='new@x.com')", s.api());
    let upsert = json!({"Targets": [
        {"@odata.type": lead, "@odata.id": "leads(emailaddress1='b2@x.com')", "subject": "Bulk 2b"},
        {"@odata.type": lead, "@odata.id": absolute, "subject": "Bulk 3"},
    ]});
    let reply = s.post(&action("UpsertMultiple"), &upsert).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        s.get(&format!("leads({})", ids[1])).await.json()["subject"],
        "Bulk 2b"
    );
    let created = s
        .rows("leads?$filter=emailaddress1%20eq%20'new@x.com'")
        .await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["subject"], "Bulk 3");

    let denied = json!({"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.systemuser"}]});
    let reply = s
        .post("systemusers/Microsoft.Dynamics.CRM.CreateMultiple", &denied)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["error"]["code"], "0x80040220");
    let reply = s.get(&action("CreateMultiple")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}
