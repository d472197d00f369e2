//! What the agent RECEIVES through the gateway, not only what the gateway decides: with the
//! policy below, no response body may carry a column outside `opportunities`' column list, nor
//! any data of a table outside the allowlist (an account's name, a user's full name).
//!
//! Each case first shows, directly against the simulator (no gateway), that the request shape
//! DOES return that data, as Dataverse does; so the gateway-side assertion is a real check, and
//! a regression in the classifier shows up here as data in the agent's hands.

mod common;

use common::*;
use dataverse_gateway::sim::SimConfig;
use serde_json::Value;

const POLICY: &str = "
    allow:
      contacts: [GET, POST, PATCH]
      leads: [GET]
      opportunities:
        verbs: [GET]
        columns: [name, estimatedvalue]
";

/// Properties an `opportunities` row may show the agent: its key and its column list.
const OPPORTUNITY_VISIBLE: [&str; 3] = ["opportunityid", "name", "estimatedvalue"];
/// Data of tables outside the allowlist in the simulator's seed: account names, user names.
const FOREIGN: [&str; 10] = [
    "Contoso Ltd",
    "Fabrikam Inc",
    "Adventure Works",
    "Northwind Traders",
    "Litware Inc",
    "Tailspin Toys",
    "Alex Wilber",
    "Megan Bowen",
    "Lee Gu",
    "Lidia Holloway",
];
const ALL_ANNOTATIONS: &str = "odata.include-annotations=\"*\"";
const CONTACT: &str = "c0000000-0000-4000-8000-000000000001";

/// A status and a body as text.
struct Seen {
    status: u16,
    body: String,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn rows(&self) -> Vec<Value> {
        self.json()["value"].as_array().cloned().unwrap_or_default()
    }

    /// The foreign values the body contains.
    fn foreign(&self) -> Vec<&'static str> {
        FOREIGN
            .into_iter()
            .filter(|v| self.body.contains(v))
            .collect()
    }
}

async fn seen(request: reqwest::RequestBuilder) -> Seen {
    let r = within("a response", request.send())
        .await
        .expect("response");
    let status = r.status().as_u16();
    let body = within("a response body", r.text()).await.expect("body");
    Seen { status, body }
}

/// A request: method, path under the API root, headers, body.
type Call<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Option<&'a str>);

fn build(mut request: reqwest::RequestBuilder, call: Call) -> reqwest::RequestBuilder {
    for (name, value) in call.2 {
        request = request.header(*name, *value);
    }
    match call.3 {
        Some(body) => request.body(body.to_string()),
        None => request,
    }
}

/// The agent's request through the gateway.
async fn via_gateway(h: &Harness, call: Call<'_>) -> Seen {
    let request = h.http.request(call.0.parse().unwrap(), h.api(call.1));
    seen(build(request, call)).await
}

/// The same request straight to the simulator, with a token of its own.
async fn direct(h: &Harness, call: Call<'_>) -> Seen {
    let app = &SimConfig::default().apps[0];
    let scope = h.sim.scope();
    let form = [
        ("client_id", app.client_id.as_str()),
        ("client_secret", app.secret.as_str()),
        ("scope", scope.as_str()),
        ("grant_type", "client_credentials"),
    ];
    let token = seen(h.http.post(h.sim.token_url(&app.tenant_id)).form(&form)).await;
    let token = token.json()["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let url = format!("{}/api/data/v9.2/{}", h.sim.base_url(), call.1);
    let request = h
        .http
        .request(call.0.parse().unwrap(), url)
        .bearer_auth(token);
    seen(build(request, call)).await
}

/// The properties of `row` the column list does not cover (annotations count as their
/// property; OData control information such as `@odata.etag` does not).
fn hidden_properties(row: &Value, visible: &[&str]) -> Vec<String> {
    row.as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .filter(|k| !k.starts_with('@'))
        .filter(|k| {
            let property = k.split('@').next().unwrap_or(k);
            !visible.contains(&property)
        })
        .cloned()
        .collect()
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn fetchxml_without_attributes_shows_no_column_outside_the_list() {
    let h = Harness::with_policy(POLICY).await;
    // a filter and an order on listed columns, and no <attribute>: every column comes back
    let xml = r#"<fetch><entity name="opportunity"><filter><condition attribute="name" operator="eq" value="Grinder replacement"/></filter><order attribute="estimatedvalue"/></entity></fetch>"#;
    let path = format!("opportunities?fetchXml={}", percent(xml));

    let org = direct(&h, ("GET", &path, &[], None)).await;
    assert_eq!(org.status, 200, "{}", org.body);
    let rows = org.rows();
    assert_eq!(rows.len(), 1, "{}", org.body);
    let leaked = hidden_properties(&rows[0], &OPPORTUNITY_VISIBLE);
    assert!(
        leaked.contains(&"statuscode".to_string()),
        "the org returns columns nobody named: {leaked:?}"
    );

    h.sim.clear_requests();
    let agent = via_gateway(&h, ("GET", &path, &[], None)).await;
    for row in agent.rows() {
        let hidden = hidden_properties(&row, &OPPORTUNITY_VISIBLE);
        assert!(
            hidden.is_empty(),
            "the agent received {hidden:?} of opportunities: {}",
            agent.body
        );
    }
    assert!(
        agent.status == 200 || h.upstream_requests().is_empty(),
        "a refused request never reaches the org ({})",
        agent.status
    );
    // control: naming the listed columns works and returns them
    let named = r#"<fetch><entity name="opportunity"><attribute name="name"/><attribute name="estimatedvalue"/></entity></fetch>"#;
    let path = format!("opportunities?fetchXml={}", percent(named));
    let agent = via_gateway(&h, ("GET", &path, &[], None)).await;
    assert_eq!(agent.status, 200, "{}", agent.body);
    assert_eq!(agent.rows().len(), 6, "{}", agent.body);
}

/// Two requests that differ only in a value compared with a protected column through an alias:
/// if both are answered and the rows differ, the agent learnt that column's values.
async fn alias_oracle(h: &Harness, template: &str, values: [&str; 2]) -> [Seen; 2] {
    let mut answers = Vec::new();
    for v in values {
        let path = template.replace("{v}", v);
        answers.push(via_gateway(h, ("GET", &path, &[], None)).await);
    }
    let [a, b]: [Seen; 2] = answers.try_into().ok().expect("two answers");
    [a, b]
}

#[tokio::test]
async fn an_alias_bound_to_a_protected_column_reveals_nothing() {
    let h = Harness::with_policy(POLICY).await;
    let cases = [
        (
            "opportunities?$select=name&$filter=@p%20eq%20{v}&@p=statuscode",
            ["3", "1"],
        ),
        (
            "opportunities?$select=name&$filter=contains(@p,'{v}')&@p=_parentaccountid_value",
            ["000000000001", "000000000002"],
        ),
    ];
    for (template, values) in cases {
        // the org filters on the column the alias names
        let mut org_rows = Vec::new();
        for v in values {
            let path = template.replace("{v}", v);
            let org = direct(&h, ("GET", &path, &[], None)).await;
            assert_eq!(org.status, 200, "{template}: {}", org.body);
            org_rows.push(org.rows());
        }
        assert_ne!(
            org_rows[0], org_rows[1],
            "{template}: the org's answer depends on the protected column"
        );
        assert!(
            org_rows.iter().all(|r| !r.is_empty() && r.len() < 6),
            "{template}"
        );

        h.sim.clear_requests();
        let [a, b] = alias_oracle(&h, template, values).await;
        let both_answered = a.status == 200 && b.status == 200;
        assert!(
            !(both_answered && a.rows() != b.rows()),
            "{template}: the agent told rows apart by a protected column:\n{}\n{}",
            a.body,
            b.body
        );
        if !both_answered {
            assert!(
                h.upstream_requests().is_empty(),
                "{template}: a refused request never reaches the org"
            );
        }
    }
}

#[tokio::test]
async fn annotations_carry_no_data_of_tables_outside_the_allowlist() {
    let h = Harness::with_policy(POLICY).await;
    let prefer = [("prefer", ALL_ANNOTATIONS)];
    let reads = [
        "contacts?$select=fullname,_parentcustomerid_value".to_string(),
        format!("contacts({CONTACT})"),
        "leads?$select=fullname,_createdby_value".to_string(),
    ];
    // control: the same reads without annotations are allowed and answered
    for path in &reads {
        let agent = via_gateway(&h, ("GET", path, &[], None)).await;
        assert_eq!(agent.status, 200, "{path}: {}", agent.body);
    }
    for path in &reads {
        let org = direct(&h, ("GET", path, &prefer, None)).await;
        assert_eq!(org.status, 200, "{path}: {}", org.body);
        assert!(
            !org.foreign().is_empty(),
            "{path}: the org names related rows of other tables: {}",
            org.body
        );
        let agent = via_gateway(&h, ("GET", path, &prefer, None)).await;
        assert!(
            agent.foreign().is_empty(),
            "{path}: the agent received {:?}: {}",
            agent.foreign(),
            agent.body
        );
    }
}

#[tokio::test]
async fn a_written_row_returned_with_annotations_carries_no_foreign_data() {
    let h = Harness::with_policy(POLICY).await;
    let headers = [
        ("prefer", "return=representation"),
        ("prefer", ALL_ANNOTATIONS),
        ("content-type", "application/json"),
    ];
    let path = format!("contacts({CONTACT})");
    let patch = (
        "PATCH",
        path.as_str(),
        &headers[..],
        Some(r#"{"firstname":"Yvonne"}"#),
    );

    let org = direct(&h, patch).await;
    assert_eq!(org.status, 200, "{}", org.body);
    assert!(org.foreign().contains(&"Contoso Ltd"), "{}", org.body);

    let agent = via_gateway(&h, patch).await;
    assert!(
        agent.foreign().is_empty(),
        "the agent received {:?}: {}",
        agent.foreign(),
        agent.body
    );
}

#[tokio::test]
async fn a_batch_part_asking_for_annotations_carries_no_foreign_data() {
    let h = Harness::with_policy(POLICY).await;
    let body = "--batch_leak\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n\
        GET contacts?$select=fullname,_parentcustomerid_value HTTP/1.1\r\nAccept: application/json\r\n\
        Prefer: odata.include-annotations=\"*\"\r\n\r\n\r\n--batch_leak--\r\n";
    let headers = [("content-type", "multipart/mixed; boundary=batch_leak")];
    let batch = ("POST", "$batch", &headers[..], Some(body));

    let org = direct(&h, batch).await;
    assert_eq!(org.status, 200, "{}", org.body);
    assert!(org.foreign().contains(&"Contoso Ltd"), "{}", org.body);

    let agent = via_gateway(&h, batch).await;
    assert!(
        agent.foreign().is_empty(),
        "the agent received {:?}: {}",
        agent.foreign(),
        agent.body
    );
}
