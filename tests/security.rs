//! Listener security: TLS and mutual TLS (HTTP/2 over ALPN), internal client keys, header
//! limits, and a run whose every log and audit line is searched for secrets.
//!
//! Certificates are generated for each test (`common::pki`); no private key is committed.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::pki::Pki;
use common::proc::{Proc, free_port, gateway, loopback, sim_auth, wait_ready, write};
use common::*;
use dataverse_gateway::clock::SystemClock;
use dataverse_gateway::identity::clients::key_sha256_hex;
use dataverse_gateway::proxy::server;
use dataverse_gateway::sim::{SimConfig, Simulator};

/// A gateway over TLS (mTLS when `mutual`) in front of `sim`, and its `https://localhost` URL.
async fn tls_gateway(sim: &Simulator, dir: &Path, pki: &Pki, mutual: bool) -> (Served, String) {
    let (tls, _) = pki.tls_yaml(dir, mutual);
    let yaml = format!(
        "{tls}tenants:\n{}",
        tenant_yaml("contoso", true, sim, 0, &default_secret(), DEFAULT_POLICY)
    );
    let served = serve(&yaml, Arc::new(SystemClock)).await;
    let url = format!("https://localhost:{}", served.addr.port());
    (served, url)
}

#[tokio::test]
async fn tls_serves_http2_and_mtls_rejects_a_client_without_a_certificate() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate();

    let (_plain, url) = tls_gateway(&sim, dir.path(), &pki, false).await;
    let r = pki
        .client(false)
        .get(format!("{url}/api/data/v9.2/WhoAmI"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), http::Version::HTTP_2, "ALPN negotiates h2");
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["UserId"].is_string());

    let (_mutual, url) = tls_gateway(&sim, dir.path(), &pki, true).await;
    let anonymous = pki
        .client(false)
        .get(format!("{url}/api/data/v9.2/WhoAmI"))
        .send()
        .await;
    assert!(anonymous.is_err(), "no client certificate: {anonymous:?}");
    let r = pki
        .client(true)
        .get(format!("{url}/api/data/v9.2/WhoAmI"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "a certificate from the client CA is accepted"
    );
    let whoami = sim
        .requests()
        .iter()
        .filter(|r| r.uri.ends_with("/WhoAmI"))
        .count();
    assert_eq!(whoami, 2, "the refused client never reached Dataverse");
}

const KEY: &str = "sales-agent-key-5f1c2a";

fn clients_yaml(sim: &Simulator) -> String {
    format!(
        "clients:\n  - name: sales-agent\n    key_sha256: {}\n    tenants: [contoso]\n  - name: other\n    key_sha256: {}\n    tenants: [fabrikam]\ntenants:\n{}{}",
        key_sha256_hex(KEY),
        key_sha256_hex("another-key"),
        tenant_yaml("contoso", true, sim, 0, &default_secret(), DEFAULT_POLICY),
        tenant_yaml("fabrikam", false, sim, 0, &default_secret(), DEFAULT_POLICY),
    )
}

#[tokio::test]
async fn client_keys_gate_every_request_and_are_never_forwarded() {
    let h = Harness::build(SimConfig::default(), clients_yaml).await;
    let whoami = h.api("WhoAmI");
    for auth in [
        None,
        Some("Bearer wrong-key"),
        Some(KEY),
        Some("Basic c2FsZXM="),
    ] {
        let mut req = h.http.get(&whoami);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        let (code, message) = error_of(r).await;
        assert_eq!(code, "GatewayUnauthorized");
        assert!(!message.contains(KEY));
    }
    let unknown_route = h.http.get(format!("{}/nope", h.url)).send().await.unwrap();
    assert_eq!(
        unknown_route.status(),
        401,
        "no route information without a key"
    );
    assert!(
        h.upstream_requests().is_empty(),
        "nothing reached Dataverse"
    );
    assert_eq!(h.sim.token_requests(), 0);

    let r = h.http.get(&whoami).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let other = h
        .http
        .get(format!("{}/fabrikam/api/data/v9.2/WhoAmI", h.url));
    let r = other.bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.status(), 403, "sales-agent may not use fabrikam");
    let (_, message) = error_of(r).await;
    assert!(message.contains("sales-agent"), "{message}");

    let upstream = h.upstream_requests();
    assert_eq!(upstream.len(), 1);
    let sent = upstream[0].headers.get("authorization").unwrap();
    let sent = sent.to_str().unwrap();
    assert!(sent.starts_with("Bearer ") && !sent.contains(KEY), "{sent}");
    for (name, value) in &upstream[0].headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        assert!(!value.contains(KEY), "the key was forwarded in {name}");
    }
}

#[tokio::test]
async fn too_many_headers_get_431() {
    let h = Harness::start().await;
    let mut req = h.http.get(h.api("WhoAmI"));
    for i in 0..=server::MAX_HEADERS {
        req = req.header(format!("x-filler-{i}"), "1");
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 431);
    let mut req = h.http.get(h.api("WhoAmI"));
    req = req.header("x-big", "a".repeat(70 * 1024));
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 431, "a head over 64 KiB");
    assert!(h.upstream_requests().is_empty());
}

/// A whole `serve` run at trace level, with client keys and the audit log: no log line and no
/// audit record holds the client secret, an issued token or a client key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_or_the_audit_log() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let app = &SimConfig::default().apps[0];
    let (port, admin) = (free_port(), free_port());
    let audit = dir.path().join("audit.jsonl");
    let yaml = format!(
        "listen: 127.0.0.1:{port}\nadmin_listen: 127.0.0.1:{admin}\naudit:\n  output: {audit:?}\n  query_values: true\nclients:\n  - name: sales-agent\n    key_sha256: {hash}\n    tenants: [sim]\ntenants:\n  sim:\n    default: true\n    dataverse:\n      url: {url}\n{auth}    allow:\n      contacts: [GET, POST]\n    functions: [WhoAmI]\n",
        hash = key_sha256_hex(KEY),
        url = sim.base_url(),
        auth = sim_auth(&sim, dir.path()),
    );
    let config = write(dir.path(), "gateway.yaml", &yaml);
    let mut proc = Proc::spawn(
        gateway()
            .args(["serve", "--config", &config])
            .env("RUST_LOG", "trace"),
    );
    proc.wait_listening(loopback(port)).await;
    let http = client();
    // The POST below is a write: it needs the org's metadata, fetched after start.
    wait_ready(&http, &format!("http://127.0.0.1:{admin}")).await;
    let base = format!("http://127.0.0.1:{port}/api/data/v9.2");
    for (path, key) in [
        ("WhoAmI", KEY),
        ("contacts?$filter=fullname eq 'x'", KEY),
        ("accounts", KEY),
        ("WhoAmI", "wrong"),
    ] {
        http.get(format!("{base}/{path}"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
    }
    let r = http
        .post(format!("{base}/contacts"))
        .bearer_auth(KEY)
        .json(&serde_json::json!({"firstname": "Audit", "lastname": "Body-Marker"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let metrics = http
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    proc.signal("TERM");
    let status = proc.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{}", proc.output());

    let tokens: Vec<String> = sim
        .requests()
        .iter()
        .filter_map(|r| {
            r.headers
                .get("authorization")?
                .to_str()
                .ok()
                .map(String::from)
        })
        .filter_map(|v| v.strip_prefix("Bearer ").map(String::from))
        .collect();
    assert!(!tokens.is_empty());
    let audit = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(audit.lines().count(), 5, "{audit}");
    let everything = format!("{}\n{audit}\n{metrics}", proc.output());
    assert!(everything.contains("sales-agent"), "the client is named");
    let mut forbidden = vec![app.secret.clone(), KEY.to_string(), "Body-Marker".into()];
    forbidden.extend(tokens);
    for secret in &forbidden {
        assert!(
            !everything.contains(secret.as_str()),
            "found a secret or body in the output:\n{everything}"
        );
    }
}
