//! The machinery of tests/interop.rs: the simulator and a gateway on loopback port 0 (TLS with
//! the test CA of `common::pki`, when asked), running a client script with the proxy variables
//! cleared and parsing its `{operation: {ok, detail}}` report, finding the SDKs that
//! `scripts/test.sh` installed under `target/interop`, and reading the simulator's request log.
//!
//! A module of the `interop` test crate (`#[path]`), not a test of its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::common::pki::Pki;
use crate::common::{Served, default_secret, serve, simulator, tenant_yaml};
use dataverse_gateway::clock::SystemClock;
use dataverse_gateway::sim::{RecordedRequest, SimConfig, Simulator};
use serde_json::Value;

/// Longest a client script may run: a handful of requests each, on loopback.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(120);
const DENIED: &str = "GatewayPolicyDenied";

/// The simulator and a gateway in front of it (TLS when asked), both on loopback port 0.
pub struct Stack {
    pub sim: Simulator,
    /// The gateway's origin, as the SDK is given it.
    pub url: String,
    pub ca_file: Option<PathBuf>,
    _served: Served,
    _dir: tempfile::TempDir,
}

impl Stack {
    pub async fn start(policy: &str, https: bool) -> Stack {
        Stack::start_with(policy, https, |_| String::new()).await
    }

    /// [`Stack::start`] with `head(sim)` (top-level keys, e.g. `agent_auth:` and `clients:`)
    /// before `tenants:`.
    pub async fn start_with(
        policy: &str,
        https: bool,
        head: impl FnOnce(&Simulator) -> String,
    ) -> Stack {
        let sim = simulator(SimConfig::default()).await;
        let head = head(&sim);
        let dir = tempfile::tempdir().unwrap();
        let tenant = tenant_yaml("contoso", true, &sim, 0, &default_secret(), policy);
        let (listener_tls, ca_file) = if https {
            let (yaml, ca) = Pki::generate().tls_yaml(dir.path(), false);
            (yaml, Some(ca))
        } else {
            (String::new(), None)
        };
        let yaml = format!("{listener_tls}{head}tenants:\n{tenant}");
        let served = serve(&yaml, Arc::new(SystemClock)).await;
        let port = served.addr.port();
        let url = if https {
            format!("https://localhost:{port}")
        } else {
            format!("http://127.0.0.1:{port}")
        };
        Stack {
            sim,
            url,
            ca_file,
            _served: served,
            _dir: dir,
        }
    }

    /// Every request reached Dataverse through the gateway: with the gateway's token, never the
    /// SDK's `any` (a request that bypassed the gateway would carry it), and `$batch` parts
    /// addressed to the org, not to the gateway the SDK wrote into them.
    pub fn assert_forwarded_cleanly(&self, log: &[RecordedRequest]) {
        for r in log {
            let auth = r.headers.get("authorization").map(|v| v.to_str().unwrap());
            assert!(
                auth.is_some_and(|a| a.starts_with("Bearer ") && a != "Bearer any"),
                "{} {} arrived without the gateway's token: {auth:?}",
                r.method,
                r.uri
            );
        }
        for body in bodies(log, "$batch") {
            assert!(
                !body.contains(&self.url),
                "a part still names the gateway: {body}"
            );
            assert!(body.contains(&self.sim.base_url()), "{body}");
        }
    }

    /// Runs a client script against the gateway and parses its report.
    pub async fn run(&self, mut cmd: tokio::process::Command) -> Report {
        for proxy in [
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "NO_PROXY",
        ] {
            cmd.env_remove(proxy);
        }
        cmd.env("GATEWAY_URL", &self.url)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(SCRIPT_DEADLINE, cmd.output())
            .await
            .expect("the client script finishes in time")
            .expect("the client script starts");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let text = format!("{stdout}--- stderr ---\n{stderr}");
        assert!(out.status.success(), "client script failed: {text}");
        let value: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("the report is not one JSON object ({e}): {text}"));
        assert!(value.get("script").is_none(), "the script crashed: {text}");
        Report { value, text }
    }
}

/// A client script's `{operation: {ok, detail}}`, with its output for failure messages.
pub struct Report {
    pub value: Value,
    pub text: String,
}

impl Report {
    /// The detail of an operation that must have succeeded.
    pub fn ok(&self, name: &str) -> &Value {
        let op = &self.value[name];
        assert_eq!(op["ok"], true, "{name} should succeed: {op}\n{}", self.text);
        &op["detail"]
    }

    /// The message the SDK surfaced for a failed operation (used by `interop_agents`).
    #[allow(dead_code)]
    pub fn message(&self, name: &str) -> String {
        let m = &self.value[name]["detail"]["message"];
        m.as_str().unwrap_or_default().to_string()
    }

    /// Asserts that the SDK surfaced the gateway's 403 GatewayPolicyDenied for `name`.
    pub fn denied(&self, name: &str) {
        let op = &self.value[name];
        assert_eq!(
            op["ok"], false,
            "{name} should be denied: {op}\n{}",
            self.text
        );
        let detail = &op["detail"];
        assert_eq!(detail["status"], 403, "{name}: {op}");
        assert_eq!(detail["code"], DENIED, "{name}: {op}");
        let message = detail["message"].as_str().unwrap_or_default();
        assert!(message.len() > 10, "{name}: no readable message: {op}");
    }
}

/// Where `scripts/test.sh` installed an SDK, after checking the install matches the manifest.
pub fn installed(lang: &str, manifest: &str, probe: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop");
    let dir = root.join(match lang {
        "js" => "js",
        "mcp" => "mcp-venv",
        _ => "venv",
    });
    let wanted = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/interop/{lang}/{manifest}")),
    )
    .expect("the interop manifest exists");
    let stamp = std::fs::read(dir.join(".installed-from")).ok();
    assert!(
        dir.join(probe).exists() && stamp.as_deref() == Some(&wanted[..]),
        "the {lang} SDK for the interop tests is missing or stale under {}: run bash scripts/test.sh",
        dir.display()
    );
    dir
}

/// How many requests with `method` reached the simulator whose decoded path and query match.
pub fn count(log: &[RecordedRequest], method: &str, matches: impl Fn(&str) -> bool) -> usize {
    log.iter()
        .filter(|r| r.method == method && matches(&decode(&r.uri)))
        .count()
}

/// Asserts that no request that reached the simulator names any of `needles`.
pub fn never_reached(log: &[RecordedRequest], needles: &[&str]) {
    for r in log {
        let uri = decode(&r.uri);
        for needle in needles {
            assert!(
                !uri.contains(needle),
                "{needle} reached Dataverse: {} {uri}",
                r.method
            );
        }
    }
}

/// The bodies of the requests whose path ends with `suffix`, in arrival order.
pub fn bodies(log: &[RecordedRequest], suffix: &str) -> Vec<String> {
    log.iter()
        .filter(|r| r.uri.ends_with(suffix))
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

/// The log, one `METHOD decoded-target` a line, for failure messages.
pub fn dump(log: &[RecordedRequest]) -> String {
    log.iter()
        .map(|r| format!("\n  {} {}", r.method, decode(&r.uri)))
        .collect()
}

/// Percent-decodes a request target (and `+` in the query), for readable matching.
fn decode(uri: &str) -> String {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let query = query.replace('+', " ");
    let raw = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
