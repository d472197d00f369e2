//! Agents with their own Entra ID identities, registered in the simulator, and a gateway config
//! with three clients on one tenant `contoso`:
//! - `sales-agent` (token, `entra.app_id`): leads GET/PATCH, contacts GET/POST, WhoAmI; 2 requests
//!   per second (burst 2); acts as the Dataverse user [`SALES_USER_OID`];
//! - `support-agent` (token v1, `entra.role: Gateway.Support`): contacts and annotations GET;
//! - `report-agent` (static key [`REPORT_KEY`]): accounts GET.

use dataverse_gateway::identity::clients::key_sha256_hex;
use dataverse_gateway::sim::{SimAgent, Simulator};

use super::{DEFAULT_POLICY, default_secret, tenant_yaml};

/// The agents' Entra tenant (not the org's).
pub const AGENT_TENANT: &str = "7a9e0000-0000-4000-8000-00000000a9e7";
pub const AUDIENCE: &str = "api://dataverse-gateway";
pub const SALES_USER_OID: &str = "0b1d0000-0000-4000-8000-0000000005a1";
pub const REPORT_KEY: &str = "report-agent-key-1c0ffee";

pub fn sales_agent() -> SimAgent {
    SimAgent {
        tenant_id: AGENT_TENANT.into(),
        client_id: "5a1e5000-0000-4000-8000-000000000001".into(),
        secret: "sales-secret".into(),
        object_id: "5a1e5000-0000-4000-8000-0000000000b1".into(),
        roles: vec![],
        v1: false,
    }
}

pub fn support_agent() -> SimAgent {
    SimAgent {
        tenant_id: AGENT_TENANT.into(),
        client_id: "5a1e5000-0000-4000-8000-000000000002".into(),
        secret: "support-secret".into(),
        object_id: "5a1e5000-0000-4000-8000-0000000000b2".into(),
        roles: vec!["Gateway.Support".into()],
        v1: true,
    }
}

/// An identity the gateway has no client for.
pub fn stranger() -> SimAgent {
    SimAgent {
        tenant_id: AGENT_TENANT.into(),
        client_id: "5a1e5000-0000-4000-8000-000000000009".into(),
        secret: "stranger-secret".into(),
        object_id: "5a1e5000-0000-4000-8000-0000000000b9".into(),
        roles: vec!["Gateway.Other".into()],
        v1: false,
    }
}

/// Registers the agents and the sales agent's Dataverse user; returns that user's systemuserid.
pub fn register(sim: &Simulator) -> String {
    for a in [sales_agent(), support_agent(), stranger()] {
        sim.register_agent(a);
    }
    sim.register_user(SALES_USER_OID, false)
}

/// `agent_auth:` pointing at `sim` as the authority.
pub fn agent_auth_yaml(sim: &Simulator) -> String {
    format!(
        "agent_auth:\n  tenant_id: {AGENT_TENANT}\n  audience: {AUDIENCE}\n  authority: {}\n",
        sim.base_url()
    )
}

/// The three clients (see the module doc); `rate` is the sales agent's `limits:` line.
pub fn clients_yaml(rate: &str) -> String {
    format!(
        "clients:
  - name: sales-agent
    entra: {{ app_id: {sales} }}
    tenants: [contoso]
    limits: {rate}
    policy:
      contoso:
        allow: {{ leads: [GET, PATCH], contacts: [GET, POST] }}
        functions: [WhoAmI]
        act_as: {{ caller_object_id: {SALES_USER_OID} }}
  - name: support-agent
    entra: {{ role: Gateway.Support }}
    tenants: [contoso]
    policy:
      contoso:
        allow: {{ contacts: [GET], annotations: [GET] }}
  - name: report-agent
    key_sha256: {key}
    tenants: [contoso]
    policy:
      contoso:
        allow: {{ accounts: [GET] }}
",
        sales = sales_agent().client_id,
        key = key_sha256_hex(REPORT_KEY),
    )
}

pub const SALES_RATE: &str = "{ requests_per_second: 2, burst: 2 }";

/// The whole gateway config: agent_auth, the clients, and tenant `contoso` on `sim`.
pub fn gateway_yaml(sim: &Simulator) -> String {
    format!(
        "{}{}tenants:\n{}",
        agent_auth_yaml(sim),
        clients_yaml(SALES_RATE),
        tenant_yaml("contoso", true, sim, 0, &default_secret(), DEFAULT_POLICY)
    )
}

/// An agent token from the simulator's token endpoint (client credentials, as Entra issues).
pub async fn token(sim: &Simulator, agent: &SimAgent) -> String {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", agent.client_id.as_str()),
        ("client_secret", agent.secret.as_str()),
        ("scope", &format!("{AUDIENCE}/.default")),
    ];
    let r = super::client()
        .post(sim.token_url(&agent.tenant_id))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "agent token request");
    let v: serde_json::Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}
