//! Agents with their own identities on one tenant: each sees only what both its policy and the
//! tenant's allow (denials name the layer), each has its own rate inside the tenant's, and the
//! sales agent's requests run in Dataverse as its mapped user (`CallerObjectId`).

mod common;

use common::agents::{self, REPORT_KEY, SALES_USER_OID};
use common::*;
use dataverse_gateway::sim::SimConfig;
use serde_json::json;

struct Agents {
    h: Harness,
    sales: String,
    support: String,
    /// The systemuserid of the sales agent's Dataverse user.
    sales_user: String,
}

async fn start(tenant_limits: &str) -> Agents {
    let mut user = String::new();
    let policy = format!("{DEFAULT_POLICY}{tenant_limits}");
    let h = Harness::build(SimConfig::default(), |sim| {
        user = agents::register(sim);
        format!(
            "{}{}tenants:\n{}",
            agents::agent_auth_yaml(sim),
            agents::clients_yaml(agents::SALES_RATE),
            tenant_yaml("contoso", true, sim, 0, &default_secret(), &policy)
        )
    })
    .await;
    let sales = agents::token(&h.sim, &agents::sales_agent()).await;
    let support = agents::token(&h.sim, &agents::support_agent()).await;
    Agents {
        h,
        sales,
        support,
        sales_user: user,
    }
}

impl Agents {
    async fn send(&self, method: &str, path: &str, credential: &str) -> reqwest::Response {
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .h
            .http
            .request(method.clone(), self.h.api(path))
            .bearer_auth(credential);
        if method == http::Method::POST {
            req = req.json(&json!({"firstname": "Ada", "lastname": "Agent"}));
        }
        req.send().await.unwrap()
    }
}

#[tokio::test]
async fn each_agent_sees_only_its_tables_and_denials_name_the_layer() {
    let a = start("").await;
    let cases = [
        ("sales", "GET", "leads?$select=subject", 200, ""),
        (
            "sales",
            "GET",
            "accounts?$select=name",
            403,
            "the client sales-agent's policy",
        ),
        (
            "sales",
            "GET",
            "opportunities?$select=name",
            403,
            "denied for tenant contoso",
        ),
        ("support", "GET", "annotations?$select=subject", 200, ""),
        (
            "support",
            "GET",
            "leads?$select=subject",
            403,
            "the client support-agent's policy",
        ),
        (
            "support",
            "POST",
            "contacts",
            403,
            "the client support-agent's policy",
        ),
        ("report", "GET", "accounts?$select=name", 200, ""),
        (
            "report",
            "GET",
            "contacts?$select=fullname",
            403,
            "the client report-agent's policy",
        ),
        (
            "report",
            "GET",
            "WhoAmI",
            403,
            "the client report-agent's policy",
        ),
    ];
    for (who, method, path, status, reason) in cases {
        let credential = match who {
            "sales" => &a.sales,
            "support" => &a.support,
            _ => REPORT_KEY,
        };
        a.h.sim.clear_requests();
        // The sales agent's own rate (2 a second) is not what this test is about.
        a.h.clock.advance(std::time::Duration::from_secs(1));
        let r = a.send(method, path, credential).await;
        assert_eq!(r.status().as_u16(), status, "{who} {method} {path}");
        if status == 403 {
            let (code, message) = error_of(r).await;
            assert_eq!(code, "GatewayPolicyDenied");
            assert!(message.contains(reason), "{who} {method} {path}: {message}");
            assert!(
                a.h.upstream_requests().is_empty(),
                "a denial reached the org"
            );
        }
    }
}

#[tokio::test]
async fn the_sales_agent_acts_as_its_user_and_nobody_else_can_impersonate() {
    let a = start("").await;
    // WhoAmI answers the mapped user; an agent-sent impersonation header never arrives.
    let r =
        a.h.http
            .get(a.h.api("WhoAmI"))
            .bearer_auth(&a.sales)
            .header("CallerObjectId", "00000000-0000-4000-8000-0000000000ee")
            .header("MSCRMCallerID", "00000000-0000-4000-8000-0000000000ef")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["UserId"], a.sales_user.as_str());
    let sent = &a.h.upstream_requests()[0].headers;
    assert_eq!(sent.get_all("callerobjectid").iter().count(), 1);
    assert_eq!(sent["callerobjectid"], SALES_USER_OID);
    assert!(sent.get("mscrmcallerid").is_none());

    // A created record: createdby is the user, createdonbehalfby the application user.
    let r = a.send("POST", "contacts", &a.sales).await;
    assert_eq!(r.status(), 204);
    let entity = r.headers()["odata-entityid"].to_str().unwrap().to_string();
    let id = entity.rsplit_once('(').unwrap().1.trim_end_matches(')');
    let row = a.h.sim.row("contacts", id).unwrap();
    assert_eq!(row["_createdby_value"], a.sales_user.as_str());
    assert_eq!(
        row["_createdonbehalfby_value"],
        a.h.sim.app_user_id(0).as_str()
    );

    // An unmapped client sends no impersonation header, even when it tries to.
    a.h.sim.clear_requests();
    let r =
        a.h.http
            .get(a.h.api("annotations?$select=subject"))
            .bearer_auth(&a.support)
            .header("CallerObjectId", SALES_USER_OID)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let sent = &a.h.upstream_requests()[0].headers;
    assert!(sent.get("callerobjectid").is_none() && sent.get("mscrmcallerid").is_none());
}

#[tokio::test]
async fn every_batch_part_of_the_mapped_client_carries_its_user_only() {
    let a = start("").await;
    let part = |target: &str, extra: &str| {
        format!(
            "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET {target} HTTP/1.1\r\nAccept: application/json\r\n{extra}\r\n"
        )
    };
    let body = format!(
        "{}{}{}--b--\r\n",
        part("leads?$select=subject", ""),
        part(
            "contacts?$select=fullname",
            "CallerObjectId: 00000000-0000-4000-8000-0000000000ee\r\n"
        ),
        part(
            "WhoAmI",
            "MSCRMCallerID: 00000000-0000-4000-8000-0000000000ef\r\n"
        ),
    );
    let send = |token: &str| {
        a.h.http
            .post(a.h.api("$batch"))
            .bearer_auth(token)
            .header("content-type", "multipart/mixed; boundary=b")
            .body(body.clone())
            .send()
    };
    let r = send(&a.sales).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains(&a.sales_user),
        "WhoAmI inside the batch answers the user: {text}"
    );
    let sent = String::from_utf8(a.h.upstream_requests()[0].body.to_vec()).unwrap();
    assert_eq!(
        sent.matches(&format!("CallerObjectId: {SALES_USER_OID}"))
            .count(),
        3,
        "{sent}"
    );
    assert!(
        !sent.contains("0000000000ee") && !sent.contains("0000000000ef"),
        "{sent}"
    );
    assert!(!sent.to_ascii_lowercase().contains("mscrmcallerid"));

    // The support agent may not read leads: the batch is refused whole, naming its layer.
    a.h.sim.clear_requests();
    let r = send(&a.support).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(error_of(r).await.1.contains("support-agent's policy"));
    assert!(a.h.upstream_requests().is_empty());
}

#[tokio::test]
async fn a_flooding_client_is_refused_alone_and_does_not_spend_the_tenants_rate() {
    // Tenant: 5 at once. Sales agent: 2 at once. The clock never moves: nothing refills.
    let a = start("    limits:\n      requests_per_second: 5\n      burst: 5\n").await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = a.send("GET", "leads?$select=subject", &a.sales).await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.headers()["ratelimit-policy"], "\"client\";q=2;w=1");
            let (code, message) = error_of(r).await;
            assert_eq!(code, "GatewayRateLimited");
            assert!(
                message.contains("client sales-agent on tenant contoso"),
                "{message}"
            );
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );
    // The 8 refused requests did not use the tenant's allowance: 3 of its 5 remain.
    for i in 0..3 {
        let r = a
            .send("GET", "annotations?$select=subject", &a.support)
            .await;
        assert_eq!(r.status(), 200, "support request {i}");
    }
    let r = a
        .send("GET", "annotations?$select=subject", &a.support)
        .await;
    assert_eq!(r.status(), 429, "now the tenant's own rate binds");
    assert_eq!(r.headers()["ratelimit-policy"], "\"tenant\";q=5;w=1");
    // A second later the sales agent has its own allowance again.
    a.h.clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(
        a.send("GET", "leads?$select=subject", &a.sales)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn metrics_and_the_audit_log_name_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let h = Harness::build(SimConfig::default(), |sim| {
        agents::register(sim);
        format!("audit:\n  output: {audit:?}\n{}", agents::gateway_yaml(sim))
    })
    .await;
    let sales = agents::token(&h.sim, &agents::sales_agent()).await;
    for path in [
        "leads?$select=subject",
        "accounts?$select=name",
        "leads?$select=subject",
    ] {
        h.http
            .get(h.api(path))
            .bearer_auth(&sales)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let r = h
        .http
        .get(h.api("accounts?$select=name"))
        .bearer_auth(REPORT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    let registry = h.gateway.metrics.registry(h.gateway.clone());
    let text = dataverse_gateway::telemetry::metrics::render(&registry);
    for series in [
        r#"dataverse_gateway_requests_total{tenant="contoso",client="sales-agent",decision="allow",status_class="2xx"} 1"#,
        r#"dataverse_gateway_requests_total{tenant="contoso",client="sales-agent",decision="deny",status_class="4xx"} 1"#,
        r#"dataverse_gateway_requests_total{tenant="contoso",client="report-agent",decision="allow",status_class="2xx"} 1"#,
        r#"dataverse_gateway_rate_limited_total{tenant="contoso",client="sales-agent"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == series),
            "missing {series} in\n{text}"
        );
    }
    // The audit log is written in the background: wait (bounded) for the four records.
    let records = within("four audit records", async {
        loop {
            let text = std::fs::read_to_string(&audit).unwrap_or_default();
            if text.lines().count() >= 4 {
                break text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    let clients: Vec<String> = records
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["client"].to_string())
        .collect();
    assert_eq!(
        clients,
        [
            "\"sales-agent\"",
            "\"sales-agent\"",
            "\"sales-agent\"",
            "\"report-agent\""
        ]
    );
    assert!(!records.contains(&sales), "the token is never logged");
}
