//! Configuration: the validated domain types the gateway runs on.
//!
//! Two layers, as the house style asks: [`yaml`] turns text into a tree of positioned nodes,
//! [`read`] turns that tree into these types and collects EVERY problem it finds (unknown or
//! duplicate keys, wrong types, bad values) as a [`Diagnostic`] with its line and column.
//! A [`Config`] therefore only exists when the whole file is valid.
//!
//! Pure: reading a config never touches the network. Secret references are kept as references;
//! [`read`] only checks (as warnings) whether they resolve on this machine.

pub mod agents;
pub mod mcp;
pub mod read;
pub mod secret;
pub mod vault;
pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::secret::SecretRef;

pub use agents::{AgentAuth, ClientAuth, ClientKey, ClientTenant, EntraMatch};
pub use read::{Diagnostic, Diagnostics, load_file, parse_str};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    /// Base URL agents use (scheme://host[:port], no trailing slash).
    pub public_url: Option<String>,
    pub upstream_tls: UpstreamTls,
    pub tls: Option<ListenerTls>,
    /// `agent_auth:`: agents may authenticate with Entra ID access tokens.
    pub agent_auth: Option<AgentAuth>,
    pub clients: Vec<ClientKey>,
    pub audit: Option<Audit>,
    pub log_format: LogFormat,
    /// How long in-flight requests may run on after SIGTERM/SIGINT (default 30s).
    pub shutdown_grace: Duration,
    pub timeouts: Timeouts,
    /// Process-wide budgets (top-level `limits:`).
    pub limits: ProcessLimits,
    /// Limits shared by every replica, in Redis (optional).
    pub rate_limit_store: Option<RateLimitStore>,
    /// The MCP front door's bounds (top-level `mcp:`).
    pub mcp: mcp::McpSettings,
    pub tenants: Vec<Tenant>,
}

/// `rate_limit_store: { redis: { url, key_prefix, on_error } }`.
#[derive(Clone, PartialEq, Eq)]
pub struct RateLimitStore {
    /// `redis://[:password@]host:port/db` — may carry a password: never printed.
    pub url: String,
    pub key_prefix: String,
    /// `fail_open`: fall back to each replica's local limiter; `fail_closed`: answer 429.
    pub fail_open: bool,
}

impl std::fmt::Debug for RateLimitStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitStore")
            .field("url", &"***")
            .field("key_prefix", &self.key_prefix)
            .field("fail_open", &self.fail_open)
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    pub extra_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutput {
    Stdout,
    File(PathBuf),
}

/// `audit:` — one JSON line per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub output: AuditOutput,
    /// Include query option values (they can hold personal data); default: names only.
    pub query_values: bool,
}

/// `log_format:` — `auto` is human-readable on a terminal and JSON otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Auto,
    Json,
    Text,
}

/// Every wait the gateway makes, bounded (`timeouts:`). Defaults in [`Timeouts::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP + TLS connect to Dataverse and Entra ID (10s).
    pub connect: Duration,
    /// Until Dataverse starts answering (120s: its own request limit is 2 minutes) -> 504.
    pub response_headers: Duration,
    /// Pooled upstream connections unused this long are closed (90s).
    pub idle: Duration,
    /// An agent connection with no request in progress: from accept to a complete request head,
    /// and between requests on a kept-alive connection (30s). Closed beyond.
    pub request_head: Duration,
    /// Longest pause between two pieces of an agent's request body (30s) -> 408.
    pub request_body_idle: Duration,
    /// Longest time to receive a whole request body the gateway reads (120s) -> 408.
    pub request_body: Duration,
    /// Longest pause between two pieces of Dataverse's response body (60s): the agent's stream
    /// ends as an error.
    pub upstream_body_idle: Duration,
    /// Longest time an agent may leave a piece of its response unread (60s): the connection is
    /// closed (a stopped reader holds no slot for longer).
    pub response_body_idle: Duration,
    /// One token request to Entra ID or the managed identity endpoint (10s).
    pub token_request: Duration,
    /// Longest time a request waits for a token being fetched when no valid one is cached
    /// (2s) -> 503 `GatewayTokenUnavailable`; the fetch itself goes on in the background.
    pub token_wait: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            response_headers: Duration::from_secs(120),
            idle: Duration::from_secs(90),
            request_head: Duration::from_secs(30),
            request_body_idle: Duration::from_secs(30),
            request_body: Duration::from_secs(120),
            upstream_body_idle: Duration::from_secs(60),
            response_body_idle: Duration::from_secs(60),
            token_request: Duration::from_secs(10),
            token_wait: Duration::from_secs(2),
        }
    }
}

/// Process-wide budgets (top-level `limits:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessLimits {
    /// Most agent connections open at once; `None`: derived from the file limit at start
    /// ([`default_max_connections`]).
    pub max_connections: Option<u32>,
    /// All request bodies the gateway holds in memory together (256 MiB): 503 with
    /// `Retry-After` beyond.
    pub max_buffered_bytes: u64,
}

impl Default for ProcessLimits {
    fn default() -> Self {
        ProcessLimits {
            max_connections: None,
            max_buffered_bytes: 256 << 20,
        }
    }
}

/// File descriptors kept for upstream connections, the admin listener, the audit file and
/// the config file when the connection cap is derived from the file limit.
pub const FD_RESERVE: u64 = 256;

/// The default agent connection cap for a process allowed `nofile` open files: three quarters
/// of it, and at least [`FD_RESERVE`] below it (never under 16).
pub fn default_max_connections(nofile: u64) -> u32 {
    let cap = (nofile / 4 * 3)
        .min(nofile.saturating_sub(FD_RESERVE))
        .max(16);
    u32::try_from(cap).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub name: String,
    pub default: bool,
    pub hosts: Vec<String>,
    pub dataverse: Dataverse,
    pub auth: Auth,
    pub limits: Limits,
    pub policy: Policy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dataverse {
    /// Origin of the org, `scheme://host[:port]`, lower-case, no trailing slash.
    pub url: String,
    pub api_version: String,
    pub metadata_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    pub tenant_id: String,
    pub client_id: String,
    /// `scheme://host[:port]`, no trailing slash.
    pub authority: String,
    pub scope: String,
    pub credential: Credential,
}

impl Auth {
    pub fn token_endpoint(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant_id)
    }
}

/// How the gateway proves the app's identity to Entra ID (exactly one per tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    ClientSecret(SecretRef),
    Certificate(CertificateFiles),
    /// Azure managed identity (IMDS, or App Service when `IDENTITY_ENDPOINT` is set).
    ManagedIdentity {
        /// A user-assigned identity's client id; `None` for the system-assigned one.
        client_id: Option<String>,
        /// Full URL of the IMDS token endpoint (default: Azure's link-local address).
        endpoint: Option<String>,
    },
    /// A federated token file (AKS workload identity), read for every token request.
    WorkloadIdentity {
        token_file: PathBuf,
    },
    /// A secret, a certificate or a certificate's key in Azure Key Vault ([`vault`]).
    KeyVault(vault::VaultCredential),
}

/// A certificate credential: where the certificate and its private key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    pub source: CertificateSource,
    pub alg: AssertionAlg,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSource {
    /// PEM certificate and key; `key_file` `None` means both are in `cert_file`.
    Pem {
        cert_file: PathBuf,
        key_file: Option<PathBuf>,
    },
    Pkcs12 {
        file: PathBuf,
        password: Option<SecretRef>,
    },
}

/// The client assertion's signature form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssertionAlg {
    /// PS256 with `x5t#S256` (current Microsoft guidance).
    #[default]
    Ps256,
    /// RS256 with the SHA-1 `x5t` (older form, still accepted).
    Rs256,
}

/// In flight to Dataverse per tenant when `max_concurrent` is not set: Dataverse fails beyond 52
/// concurrent requests per application user.
pub const DEFAULT_MAX_CONCURRENT: u32 = 52;

/// Per-tenant traffic limits. `None` means unlimited (`max_concurrent`: [`DEFAULT_MAX_CONCURRENT`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub requests_per_second: Option<u32>,
    pub burst: Option<u32>,
    pub max_concurrent: Option<u32>,
    pub queue_timeout: Duration,
    /// Largest request body the gateway accepts (and reads, where it inspects it): 413 beyond.
    pub max_body_bytes: u64,
    /// `retry_throttled.max_wait`: GET/HEAD requests that meet a Dataverse cooldown no longer
    /// than this wait and are retried by the gateway.
    pub retry_throttled: Option<Duration>,
}

impl Limits {
    /// The cap on requests in flight to Dataverse: `max_concurrent`, else 52.
    pub fn concurrency(&self) -> u32 {
        self.max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            requests_per_second: None,
            burst: None,
            max_concurrent: None,
            queue_timeout: Duration::from_secs(5),
            max_body_bytes: 16 << 20,
            retry_throttled: None,
        }
    }
}

/// An HTTP verb the allowlist can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

impl Verb {
    pub const ALL: [Verb; 5] = [Verb::Get, Verb::Post, Verb::Patch, Verb::Put, Verb::Delete];

    pub fn parse(s: &str) -> Option<Verb> {
        Some(match s {
            "GET" => Verb::Get,
            "POST" => Verb::Post,
            "PATCH" => Verb::Patch,
            "PUT" => Verb::Put,
            "DELETE" => Verb::Delete,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableRule {
    pub verbs: Vec<Verb>,
    /// When set, only these columns may be read or written.
    pub columns: Option<Vec<String>>,
}

impl TableRule {
    pub fn allows(&self, verb: Verb) -> bool {
        self.verbs.contains(&verb)
    }
}

/// A tenant's allowlist. Anything not listed is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Entity set name → rule.
    pub tables: BTreeMap<String, TableRule>,
    pub functions: Vec<String>,
    pub actions: Vec<String>,
    /// `GET $metadata` (every table's schema, no rows).
    pub allow_metadata: bool,
    /// Unfiltered `EntityDefinitions` listings (filtered ones follow `tables`).
    pub allow_all_entity_definitions: bool,
    /// `savedQuery`, `userQuery`, `sql`: server-side queries the gateway cannot see into.
    pub allow_uninspectable: Vec<String>,
}
