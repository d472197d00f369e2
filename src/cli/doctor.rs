//! `dataverse-gateway doctor` (see docs/operations.md): the setup guide's validation steps against the
//! real org — token acquisition with the configured credential, `WhoAmI` through the proxy's
//! own token source and connections to the org, and the least-privilege probe.
//!
//! A tenant whose credential lives in Key Vault first gets the vault's steps: the gateway's
//! vault token, the object (version, expiry) and, for `key_vault_key`, a test signature
//! verified against the certificate.
//!
//! The probe reads one row of every allowlisted table (must succeed) and of the common CRM
//! tables plus the org's other tables (bounded by [`MAX_PROBES`]) that the allowlist excludes
//! (Dataverse itself must refuse them with 403; 404 means the table does not exist there). A
//! table Dataverse lets the application user read although the allowlist excludes it is a
//! finding: the security role is broader than the policy.
//!
//! [`render`] is pure; [`run`] does the I/O. Invariant: the report never contains a token, a
//! secret or a Dataverse error body (they name internal ids); only status codes and the Entra
//! error code with its meaning.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::BodyExt;

use crate::clock::Clock;
use crate::config::secret::Secret;
use crate::config::{Config, Tenant, Verb};
use crate::identity::token::TokenSource;
use crate::proxy::body;
use crate::proxy::upstream::Upstream;

/// Tables every org has that agents must not read unless the allowlist says so.
pub const COMMON_TABLES: &[&str] = &[
    "accounts",
    "contacts",
    "leads",
    "opportunities",
    "systemusers",
    "roles",
    "audits",
    "annotations",
    "activitypointers",
    "incidents",
    "businessunits",
    "teams",
];
/// Most tables outside the allowlist probed per tenant.
pub const MAX_PROBES: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub status: Status,
    pub name: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantReport {
    pub tenant: String,
    pub url: String,
    pub credential: String,
    pub steps: Vec<Step>,
    /// Tables outside the allowlist that Dataverse let the application user read.
    pub over_privileged: Vec<String>,
}

impl TenantReport {
    fn step(&mut self, status: Status, name: impl Into<String>, detail: impl Into<String>) {
        self.steps.push(Step {
            status,
            name: name.into(),
            detail: detail.into(),
        });
    }

    pub fn passed(&self) -> bool {
        self.over_privileged.is_empty() && self.steps.iter().all(|s| s.status != Status::Fail)
    }
}

/// The readable report.
pub fn render(reports: &[TenantReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let _ = writeln!(out, "tenant {} -> {} ({})", r.tenant, r.url, r.credential);
        let width = r.steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &r.steps {
            let label = match s.status {
                Status::Pass => "PASS",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            let _ = writeln!(out, "  {label}  {:width$}  {}", s.name, s.detail);
        }
        if !r.over_privileged.is_empty() {
            let _ = writeln!(
                out,
                "  FINDING: the security role is broader than the allowlist: Dataverse lets the application user read {} \
                 (a sign of the System Administrator role); give it a custom role with only the allowlisted tables",
                r.over_privileged.join(", ")
            );
        }
        let verdict = if r.passed() { "passed" } else { "FAILED" };
        let _ = writeln!(out, "  result: {verdict}");
    }
    out
}

/// Runs the steps for every tenant (or the one named).
pub async fn run(
    config: &Config,
    tenant: Option<&str>,
    clock: Arc<dyn Clock>,
) -> Result<Vec<TenantReport>, String> {
    let upstream =
        Upstream::new(&config.upstream_tls, &config.timeouts).map_err(|e| e.to_string())?;
    let tenants: Vec<&Tenant> = config
        .tenants
        .iter()
        .filter(|t| tenant.is_none_or(|n| n == t.name))
        .collect();
    if tenants.is_empty() {
        return Err(format!("no tenant named `{}`", tenant.unwrap_or_default()));
    }
    let mut reports = Vec::new();
    for t in tenants {
        reports.push(check_tenant(config, t, &upstream, Arc::clone(&clock)).await);
    }
    Ok(reports)
}

async fn check_tenant(
    config: &Config,
    t: &Tenant,
    up: &Upstream,
    clock: Arc<dyn Clock>,
) -> TenantReport {
    let source = TokenSource::new(t.auth.clone(), up.entra.clone(), clock);
    let mut report = TenantReport {
        tenant: t.name.clone(),
        url: t.dataverse.url.clone(),
        credential: source.describe(),
        ..TenantReport::default()
    };
    if let Some(vault) = source.vault() {
        for c in vault.check(&t.auth).await {
            let status = if c.ok { Status::Pass } else { Status::Fail };
            report.step(status, c.name, c.detail);
        }
    }
    if let Some(w) = source.certificate_warning() {
        report.step(Status::Warn, "certificate", w);
    } else if let Some(secs) = source.certificate_seconds_left() {
        report.step(
            Status::Pass,
            "certificate",
            format!("valid for {} more day(s)", secs / 86_400),
        );
    }
    let token = match source.token().await {
        Ok(token) => {
            report.step(Status::Pass, "token", "obtained from Entra ID");
            token
        }
        Err(e) => {
            report.step(Status::Fail, "token", e.to_string());
            return report;
        }
    };
    let probe = Probe {
        config,
        tenant: t,
        up,
        token,
    };
    match probe.get("WhoAmI").await {
        Ok((200, body)) => report.step(Status::Pass, "WhoAmI", who_am_i(&body)),
        Ok((status, _)) => {
            report.step(
                Status::Fail,
                "WhoAmI",
                format!("Dataverse answered HTTP {status}"),
            );
            return report;
        }
        Err(e) => {
            report.step(Status::Fail, "WhoAmI", e);
            return report;
        }
    }
    let readable: Vec<&String> = t
        .policy
        .tables
        .iter()
        .filter(|(_, rule)| rule.allows(Verb::Get))
        .map(|(set, _)| set)
        .collect();
    for set in &readable {
        let name = format!("read {set}");
        match probe.get(&format!("{set}?$top=1")).await {
            Ok((200, _)) => report.step(Status::Pass, name, "allowlisted and readable (200)"),
            Ok((403, _)) => report.step(
                Status::Fail,
                name,
                "allowlisted, but the security role cannot read it (403)",
            ),
            Ok((404, _)) => report.step(
                Status::Fail,
                name,
                "allowlisted, but the org has no such table (404)",
            ),
            Ok((s, _)) => report.step(Status::Warn, name, format!("inconclusive: HTTP {s}")),
            Err(e) => report.step(Status::Warn, name, format!("inconclusive: {e}")),
        }
    }
    for set in probe.excluded_tables().await {
        let name = format!("read {set}");
        match probe.get(&format!("{set}?$top=1")).await {
            Ok((403, _)) => report.step(
                Status::Pass,
                name,
                "not allowlisted; Dataverse refused it (403)",
            ),
            Ok((404, _)) => {
                report.step(Status::Pass, name, "not allowlisted; not in this org (404)")
            }
            Ok((s, _)) if (200..300).contains(&s) => {
                report.step(
                    Status::Fail,
                    name,
                    format!(
                        "not allowlisted, but Dataverse let the application user read it ({s})"
                    ),
                );
                report.over_privileged.push(set);
            }
            Ok((s, _)) => report.step(Status::Warn, name, format!("inconclusive: HTTP {s}")),
            Err(e) => report.step(Status::Warn, name, format!("inconclusive: {e}")),
        }
    }
    report
}

fn who_am_i(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |k: &str| v[k].as_str().unwrap_or("?").to_string();
    format!(
        "UserId={}, BusinessUnitId={}, OrganizationId={}",
        field("UserId"),
        field("BusinessUnitId"),
        field("OrganizationId")
    )
}

struct Probe<'a> {
    config: &'a Config,
    tenant: &'a Tenant,
    up: &'a Upstream,
    token: Secret,
}

impl Probe<'_> {
    /// GET `{org}/api/data/{version}/{path}` with the token; (status, body).
    async fn get(&self, path: &str) -> Result<(u16, Bytes), String> {
        let dv = &self.tenant.dataverse;
        let org = self.up.org(&dv.url).map_err(|e| e.to_string())?;
        let url = format!("/api/data/{}/{path}", dv.api_version);
        let req = Request::builder()
            .method(Method::GET)
            .uri(&url)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.token.expose()),
            )
            .header(header::ACCEPT, "application/json")
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0")
            .body(body::empty())
            .map_err(|_| format!("cannot build a request for {path}"))?;
        let wait = self.config.timeouts.response_headers;
        let (response, lease) = tokio::time::timeout(wait, org.send(req))
            .await
            .map_err(|_| format!("Dataverse did not answer within {} s", wait.as_secs()))?
            .map_err(|e| format!("Dataverse is unreachable: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("the answer broke off: {e}"))?
            .to_bytes();
        lease.release();
        Ok((status, body))
    }

    /// Common tables and the org's tables from its metadata, minus the allowlist, bounded.
    async fn excluded_tables(&self) -> Vec<String> {
        let allowed = &self.tenant.policy.tables;
        let mut sets: Vec<String> = COMMON_TABLES.iter().map(|s| s.to_string()).collect();
        let metadata = match &self.tenant.dataverse.metadata_file {
            Some(path) => crate::proxy::gateway::load_metadata_file(path).ok(),
            None => match self.get("$metadata").await {
                Ok((200, xml)) => crate::policy::metadata::Metadata::parse(&xml).ok(),
                _ => None,
            },
        };
        if let Some(m) = metadata {
            sets.extend(m.entity_sets().map(|(set, _)| set.to_string()));
        }
        let mut seen = std::collections::BTreeSet::new();
        sets.retain(|s| !allowed.contains_key(s) && seen.insert(s.clone()));
        sets.truncate(MAX_PROBES);
        sets
    }
}
