//! `dataverse-gateway demo`: a simulated Entra ID and Dataverse org on loopback with the gateway
//! in front, so anyone can see it work without an Azure account. The tenant's client secret
//! lives in the simulator's Key Vault, read with the gateway's (simulated) managed identity.
//!
//! Two agents share the tenant `demo`, each with its own identity, policy and limits: the
//! sales agent authenticates with an Entra ID access token (issued by the simulated Entra ID to
//! its registered identity, as Entra issues one to a managed identity) and runs in Dataverse as
//! its mapped user; the support agent uses a static client key. Each is refused what only the
//! other may do.

use std::sync::Arc;

use crate::clock::SystemClock;
use crate::config;
use crate::identity::clients::key_sha256_hex;
use crate::sim::{SimAgent, SimConfig, Simulator};

/// The agents' Entra tenant in the demo.
pub const AGENT_TENANT: &str = "a9e70000-0000-4000-8000-0000000000a1";
/// The gateway app's Application ID URI (the token audience).
pub const AUDIENCE: &str = "api://dataverse-gateway";
/// The sales agent's app (client) id and secret in the simulated Entra ID.
pub const SALES_APP_ID: &str = "5a1e5000-0000-4000-8000-000000000001";
pub const SALES_SECRET: &str = "demo-sales-secret";
/// The Entra object id of the Dataverse user the sales agent acts as.
pub const SALES_USER: &str = "0b1d0000-0000-4000-8000-0000000005a1";
/// The support agent's static client key.
pub const SUPPORT_KEY: &str = "demo-support-key";

/// The name of the demo's client secret in the simulated Key Vault.
pub const DEMO_SECRET_NAME: &str = "demo-dataverse";

/// The demo's configuration, as YAML, for a simulator at `sim_url` (also its Key Vault and
/// managed identity endpoint) and the given listen port.
pub fn demo_yaml(sim_url: &str, port: u16, tenant_id: &str, client_id: &str) -> String {
    let support_hash = key_sha256_hex(SUPPORT_KEY);
    format!(
        r#"# built-in demo configuration
listen: 127.0.0.1:{port}
key_vault:
  identity:
    managed_identity: {{ endpoint: "{sim_url}/metadata/identity/oauth2/token" }}
agent_auth:
  tenant_id: {AGENT_TENANT}
  audience: {AUDIENCE}
  authority: {sim_url}
clients:
  - name: sales-agent
    entra: {{ app_id: {SALES_APP_ID} }}
    tenants: [demo]
    limits: {{ requests_per_second: 5, burst: 10 }}
    policy:
      demo:
        allow: {{ contacts: [GET, POST] }}
        functions: [WhoAmI]
        act_as: {{ caller_object_id: {SALES_USER} }}
  - name: support-agent
    key_sha256: {support_hash}
    tenants: [demo]
    limits: {{ requests_per_second: 2, burst: 4 }}
    policy:
      demo:
        allow: {{ contacts: [GET], leads: [GET] }}
tenants:
  demo:
    default: true
    dataverse:
      url: {sim_url}
    auth:
      tenant_id: {tenant_id}
      client_id: {client_id}
      authority: {sim_url}
      client_secret: {{ key_vault: {{ vault: "{sim_url}", secret: {DEMO_SECRET_NAME} }} }}
    limits:
      requests_per_second: 20
      burst: 40
      max_concurrent: 32
    allow:
      contacts: [GET, POST, PATCH]
      leads: [GET]
    functions: [WhoAmI]
"#
    )
}

/// A running demo: the simulator and the validated config for the gateway.
pub struct Demo {
    pub simulator: Simulator,
    pub config: config::Config,
    pub yaml: String,
}

pub async fn start(port: u16) -> Result<Demo, String> {
    let sim_config = SimConfig {
        clock: Arc::new(SystemClock),
        ..SimConfig::default()
    };
    let app = sim_config
        .apps
        .first()
        .cloned()
        .ok_or("the simulator has no app")?;
    let simulator = Simulator::start(sim_config)
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    simulator.vault_put_secret(DEMO_SECRET_NAME, &app.secret);
    simulator.register_agent(SimAgent {
        tenant_id: AGENT_TENANT.into(),
        client_id: SALES_APP_ID.into(),
        secret: SALES_SECRET.into(),
        object_id: "5a1e5000-0000-4000-8000-0000000000b1".into(),
        roles: Vec::new(),
        v1: false,
    });
    simulator.register_user(SALES_USER, false);
    let yaml = demo_yaml(&simulator.base_url(), port, &app.tenant_id, &app.client_id);
    let (config, _warnings) = config::parse_str(&yaml, "demo.yaml").map_err(|d| d.to_string())?;
    Ok(Demo {
        simulator,
        config,
        yaml,
    })
}

/// The banner with ready-to-paste commands; `sim_url` is the simulated Entra ID.
pub fn banner(gateway_url: &str, sim_url: &str) -> String {
    let api = format!("{gateway_url}/api/data/v9.2");
    format!(
        "dataverse-gateway demo\n\
         \n  gateway:   {gateway_url}  (tenant `demo`, default; simulated Entra ID and Dataverse on loopback)\
         \n  mcp:       {gateway_url}/demo/mcp  (MCP, Streamable HTTP: tools made from the same allowlist)\
         \n  secret:    from the simulated Key Vault, read with the gateway's managed identity\
         \n  tenant:    contacts GET/POST/PATCH, leads GET, function WhoAmI\
         \n  agents:    sales-agent (Entra ID token): contacts GET/POST, WhoAmI; runs as its Dataverse user; 5/s\
         \n             support-agent (client key):   contacts GET, leads GET; 2/s\n\
         \nTry:\n\
         \n  # the sales agent gets an Entra ID token for the gateway (client credentials, as a managed identity does)\
         \n  TOKEN=$(curl -s {sim_url}/{AGENT_TENANT}/oauth2/v2.0/token -d grant_type=client_credentials \
         -d client_id={SALES_APP_ID} -d client_secret={SALES_SECRET} -d scope={AUDIENCE}/.default \
         | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')\n\
         \n  # allowed: WhoAmI answers the sales agent's Dataverse user, not the application user\
         \n  curl -s -H \"Authorization: Bearer $TOKEN\" {api}/WhoAmI\
         \n  curl -s -H 'Authorization: Bearer {SUPPORT_KEY}' '{api}/leads?$select=subject'\n\
         \n  # denied (403, never reaches Dataverse): leads only for support, WhoAmI only for sales\
         \n  curl -s -H \"Authorization: Bearer $TOKEN\" '{api}/leads?$select=subject'\
         \n  curl -s -H 'Authorization: Bearer {SUPPORT_KEY}' {api}/WhoAmI\n\
         \n  # no credential: 401 before routing\
         \n  curl -s {api}/accounts\n\
         \n  # the same through MCP, with a real MCP client (the MCP Inspector's command line)\
         \n  npx @modelcontextprotocol/inspector --cli {gateway_url}/demo/mcp --transport http --header 'Authorization: Bearer {SUPPORT_KEY}' --method tools/list\n\
         \nPress Ctrl-C to stop.\n"
    )
}
