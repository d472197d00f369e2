//! The command line: `serve`, `check`, `explain`, `demo`, `doctor` (see README.md and
//! docs/operations.md). The binary's `main` only calls [`main`].

pub mod clients_report;
pub mod demo;
pub mod doctor;
pub mod mcp;
pub mod report;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, Config, LogFormat};
use crate::ops::service;
use crate::policy::decision::Decision;

#[derive(Parser)]
#[command(
    name = "dataverse-gateway",
    version,
    about = "A policy gateway between AI agents and Microsoft Dataverse"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (default ./gateway.yaml, or $DATAVERSE_GATEWAY_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run a simulated Entra ID and Dataverse with the gateway in front (no Azure needed).
    Demo {
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Validate the config without network access and print the policy matrix.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the decision the gateway would take for a request, without network access.
    Explain {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        tenant: Option<String>,
        /// Decide as this client (`clients[].name`): its effective policy on the tenant.
        #[arg(long)]
        client: Option<String>,
        /// A request header, `Name: value` (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// The request body, for writes, actions and `$batch`.
        #[arg(long)]
        body: Option<PathBuf>,
        /// A CSDL (`$metadata`) file of the org; default: the tenant's `dataverse.metadata_file`.
        /// Without metadata, requests that need it (navigation, `$expand`, writes) are denied.
        #[arg(long)]
        metadata: Option<PathBuf>,
        /// Explain an MCP tool call instead: `explain --mcp TOOL 'JSON arguments'`.
        #[arg(long)]
        mcp: bool,
        /// The HTTP method (with --mcp: the tool).
        method: String,
        /// The URL (with --mcp: the tool's JSON arguments).
        url: String,
    },
    /// Validate against the real org: token, WhoAmI, least-privilege probe (exit 0 = all pass).
    Doctor {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        tenant: Option<String>,
    },
}

pub fn main() -> ExitCode {
    // Usage errors exit 1: exit 2 means "deny" for `explain`.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Serve { config } => {
            let path = config_path(config);
            runtime(|| serve(&path))
        }
        Command::Demo { port } => runtime(|| run_demo(port)),
        Command::Check { config } => check(&config_path(config)),
        Command::Doctor { config, tenant } => {
            let path = config_path(config);
            runtime(|| doctor(&path, tenant.as_deref()))
        }
        Command::Explain {
            config,
            tenant,
            client,
            metadata,
            mcp: true,
            method,
            url,
            ..
        } => explain_mcp(
            &config_path(config),
            tenant.as_deref(),
            client.as_deref(),
            metadata.as_deref(),
            &method,
            &url,
        ),
        Command::Explain {
            config,
            tenant,
            client,
            headers,
            body,
            metadata,
            mcp: false,
            method,
            url,
        } => explain(
            &config_path(config),
            &ExplainArgs {
                tenant: tenant.as_deref(),
                client: client.as_deref(),
                headers: &headers,
                body: body.as_deref(),
                metadata: metadata.as_deref(),
            },
            &method,
            &url,
        ),
    }
}

fn config_path(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("DATAVERSE_GATEWAY_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("gateway.yaml"))
}

/// Overrides the number of runtime threads (default: the CPUs this process may use).
pub const THREADS_ENV: &str = "DATAVERSE_GATEWAY_THREADS";

/// The async runtime. With one thread (one CPU to run on, by affinity mask or cgroup quota, or
/// `DATAVERSE_GATEWAY_THREADS=1`), a single-threaded event loop: the same work costs about 10%
/// less CPU than on a one-worker multi-threaded scheduler (no cross-thread queues, no worker
/// parking). Otherwise that many workers.
fn runtime<'a, F: std::future::Future<Output = ExitCode> + 'a>(f: impl FnOnce() -> F) -> ExitCode {
    let threads = match std::env::var(THREADS_ENV) {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("error: {THREADS_ENV} must be a positive integer, not `{v}`");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let built = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    match built {
        Ok(rt) => rt.block_on(f()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> Result<(Config, Vec<config::Diagnostic>), ExitCode> {
    config::load_file(path).map_err(|diags| {
        for e in &diags.errors {
            eprintln!("{e}");
        }
        eprintln!(
            "error: {} has {} error(s)",
            path.display(),
            diags.errors.len()
        );
        ExitCode::FAILURE
    })
}

/// `doctor`: load the config, run, print, exit 0 only when every tenant passed.
async fn doctor(path: &std::path::Path, tenant: Option<&str>) -> std::process::ExitCode {
    use std::process::ExitCode;
    let Ok((config, warnings)) = load(path) else {
        return ExitCode::FAILURE;
    };
    let fatal: Vec<_> = warnings.iter().filter(|w| w.fatal_for_serve).collect();
    if !fatal.is_empty() {
        for f in fatal {
            eprintln!("error: {f}");
        }
        return ExitCode::FAILURE;
    }
    match doctor::run(
        &config,
        tenant,
        std::sync::Arc::new(crate::clock::SystemClock),
    )
    .await
    {
        Ok(reports) => {
            print!("{}", doctor::render(&reports));
            if reports.iter().all(doctor::TenantReport::passed) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(path: &Path) -> ExitCode {
    let (config, warnings) = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    service::init_tracing(config.log_format);
    let fatal: Vec<&config::Diagnostic> = warnings.iter().filter(|w| w.fatal_for_serve).collect();
    if !fatal.is_empty() {
        for f in fatal {
            eprintln!("error: {f}");
        }
        return ExitCode::FAILURE;
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    service::run(config, Some(path.to_path_buf())).await
}

async fn run_demo(port: u16) -> ExitCode {
    service::init_tracing(LogFormat::Auto);
    let demo = match demo::start(port).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let gateway_url = format!("http://127.0.0.1:{port}");
    println!("{}", demo::banner(&gateway_url, &demo.simulator.base_url()));
    let code = service::run(demo.config, None).await;
    demo.simulator.shutdown().await;
    code
}

fn check(path: &Path) -> ExitCode {
    match load(path) {
        Ok((config, warnings)) => {
            print!("{}", report::policy_matrix(&config, &warnings));
            print!("{}", mcp::tool_lists(&config));
            println!("{}: valid", path.display());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn explain_mcp(
    path: &Path,
    tenant: Option<&str>,
    client: Option<&str>,
    metadata: Option<&Path>,
    tool: &str,
    json: &str,
) -> ExitCode {
    let Ok((config, _)) = load(path) else {
        return ExitCode::FAILURE;
    };
    verdict(mcp::explain(&config, tenant, client, metadata, tool, json))
}

/// Prints an explanation and exits as `explain` does: 0 allowed, 2 denied, 1 error.
fn verdict(explained: Result<(String, bool), String>) -> ExitCode {
    match explained {
        Ok((text, allowed)) => {
            print!("{text}");
            if allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

struct ExplainArgs<'a> {
    tenant: Option<&'a str>,
    client: Option<&'a str>,
    headers: &'a [String],
    body: Option<&'a Path>,
    metadata: Option<&'a Path>,
}

fn explain(path: &Path, args: &ExplainArgs<'_>, method: &str, url: &str) -> ExitCode {
    let Ok((config, _)) = load(path) else {
        return ExitCode::FAILURE;
    };
    verdict(
        explain_decision(&config, args, method, url).map(|(tenant, decision)| {
            let text = report::explanation(&tenant, method, url, &decision);
            (text, decision.allowed())
        }),
    )
}

fn explain_decision(
    config: &Config,
    args: &ExplainArgs<'_>,
    method: &str,
    url: &str,
) -> Result<(String, Decision), String> {
    let (tenant, headers, body) = (args.tenant, args.headers, args.body);
    let method: http::Method = method
        .parse()
        .map_err(|_| format!("`{method}` is not an HTTP method"))?;
    // Spaces are what people type in $filter; encode them the way an SDK would.
    let uri: http::Uri = url
        .replace(' ', "%20")
        .parse()
        .map_err(|_| format!("`{url}` is not a URL"))?;
    let mut map = http::HeaderMap::new();
    for h in headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("`{h}` is not `Name: value`"))?;
        let name = http::HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| format!("bad header name `{k}`"))?;
        let value = http::HeaderValue::from_str(v.trim())
            .map_err(|_| format!("bad header value for `{k}`"))?;
        map.append(name, value);
    }
    let body = match body {
        Some(b) => Some(std::fs::read(b).map_err(|e| format!("cannot read {}: {e}", b.display()))?),
        None => None,
    };
    let routes = crate::proxy::route::Routes::new(&config.tenants);
    let path = match tenant {
        Some(t) if uri.path().starts_with("/api/data/") => format!("/{t}{}", uri.path()),
        Some(t) => {
            return Err(format!(
                "--tenant {t} given, but the URL already names a tenant in its path"
            ));
        }
        None => uri.path().to_string(),
    };
    let routed = routes.route(&path, uri.authority().map(|a| a.as_str()))?;
    let t = &config.tenants[routed.tenant];
    if routed.api_version != t.dataverse.api_version {
        return Err(format!(
            "tenant {} serves {}, not {}",
            t.name, t.dataverse.api_version, routed.api_version
        ));
    }
    if let Err(e) = crate::policy::headers::check_request(&map) {
        return Ok((t.name.clone(), Decision::malformed(e)));
    }
    if crate::policy::classify::needs_body(&method, routed.resource) && body.is_none() {
        return Err(format!(
            "{method} {} sends a body: give it with --body FILE",
            routed.resource
        ));
    }
    let metadata = match args.metadata.or(t.dataverse.metadata_file.as_deref()) {
        Some(path) => Some(crate::proxy::gateway::load_metadata_file(path)?),
        None => None,
    };
    let origin = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
        _ => config
            .public_url
            .clone()
            .unwrap_or_else(|| "http://gateway".to_string()),
    };
    let urls = crate::policy::classify::Urls {
        org: t.dataverse.url.clone(),
        gateway: vec![format!("{origin}/{}", t.name), origin],
        api_version: t.dataverse.api_version.clone(),
    };
    let client = explain_client(config, args.client, &t.name)?;
    let narrowed = client.and_then(|c| c.policy_for(&t.name));
    let request = crate::policy::classify::Request {
        method: &method,
        path: routed.resource,
        query: uri.query(),
        headers: &map,
        body: body.as_deref(),
    };
    let decide = |policy| {
        crate::policy::inspect::inspect(
            &crate::policy::inspect::Tenant {
                policy,
                metadata: metadata.as_ref(),
                urls: &urls,
            },
            &request,
        )
        .decision
    };
    let mut decision = decide(narrowed.map_or(&t.policy, |p| &**p));
    let label = match client {
        Some(c) => format!("{} (as client {})", t.name, c.name),
        None => t.name.clone(),
    };
    if let (Some(c), Some(_), false) = (client, narrowed, decision.allowed())
        && decide(&t.policy).allowed()
    {
        let reason = decision.reason_mut();
        *reason = format!(
            "the client {}'s policy does not allow this (the tenant's would): {}",
            c.name,
            crate::config::agents::as_client_reason(reason)
        );
    }
    if metadata.is_none() && decision.reason().contains("metadata") {
        decision
            .reason_mut()
            .push_str(" — give explain the org's $metadata (CSDL) with --metadata FILE or the tenant's dataverse.metadata_file");
    }
    Ok((label, decision))
}

/// The client `--client` names, checked to be one that may use `tenant`.
fn explain_client<'c>(
    config: &'c Config,
    name: Option<&str>,
    tenant: &str,
) -> Result<Option<&'c config::ClientKey>, String> {
    let Some(name) = name else {
        return Ok(None);
    };
    let client = config
        .clients
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("no client named `{name}` in the config"))?;
    if !client.tenants.iter().any(|t| t == tenant) {
        return Err(format!("client {name} may not use tenant {tenant}"));
    }
    Ok(Some(client))
}
