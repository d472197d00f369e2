//! `dataverse-gateway demo`: a simulated Entra ID and Dataverse org on loopback with the gateway
//! in front, so anyone can see it work without an Azure account. The tenant's client secret
//! lives in the simulator's Key Vault, read with the gateway's (simulated) managed identity.

use std::sync::Arc;

use crate::clock::SystemClock;
use crate::config;
use crate::sim::{SimConfig, Simulator};

/// The name of the demo's client secret in the simulated Key Vault.
pub const DEMO_SECRET_NAME: &str = "demo-dataverse";

/// The demo's configuration, as YAML, for a simulator at `sim_url` (also its Key Vault and
/// managed identity endpoint) and the given listen port.
pub fn demo_yaml(sim_url: &str, port: u16, tenant_id: &str, client_id: &str) -> String {
    format!(
        r#"# built-in demo configuration
listen: 127.0.0.1:{port}
key_vault:
  identity:
    managed_identity: {{ endpoint: "{sim_url}/metadata/identity/oauth2/token" }}
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
    let yaml = demo_yaml(&simulator.base_url(), port, &app.tenant_id, &app.client_id);
    let (config, _warnings) = config::parse_str(&yaml, "demo.yaml").map_err(|d| d.to_string())?;
    Ok(Demo {
        simulator,
        config,
        yaml,
    })
}

/// The banner with ready-to-paste commands.
pub fn banner(gateway_url: &str) -> String {
    format!(
        "dataverse-gateway demo\n\
         \n  gateway:   {gateway_url}  (tenant `demo`, default; simulated Entra ID and Dataverse on loopback)\
         \n  mcp:       {gateway_url}/demo/mcp  (MCP, Streamable HTTP: tools made from the same allowlist)\
         \n  secret:    from the simulated Key Vault, read with the gateway's managed identity\
         \n  allowed:   contacts GET/POST/PATCH, leads GET, function WhoAmI\n\
         \nTry:\n\
         \n  # allowed: the gateway obtains a token and forwards\
         \n  curl -s {gateway_url}/api/data/v9.2/WhoAmI\
         \n  curl -s -H 'Prefer: odata.maxpagesize=2' '{gateway_url}/api/data/v9.2/contacts?$select=fullname'\n\
         \n  # denied: accounts is not in the allowlist (403, never reaches Dataverse)\
         \n  curl -s {gateway_url}/api/data/v9.2/accounts\n\
         \n  # the same through MCP, with a real MCP client (the MCP Inspector's command line)\
         \n  npx @modelcontextprotocol/inspector --cli {gateway_url}/demo/mcp --transport http --method tools/list\n\
         \nPress Ctrl-C to stop.\n"
    )
}
