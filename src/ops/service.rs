//! The `serve` process: listeners, logging, audit, admin endpoints, reload and shutdown.
//!
//! [`run`] binds the agents' listener (TLS when configured) and the admin listener, starts the
//! audit writer, warms every tenant's token, reloads on SIGHUP or a file change, and on
//! SIGTERM/SIGINT stops accepting (new connections are refused), marks itself not ready, lets
//! requests in flight — streamed bodies included — finish for up to `shutdown_grace`, flushes
//! the audit log and returns success. Startup failures are one line on stderr.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::clock::SystemClock;
use crate::config::{Config, LogFormat};
use crate::identity::tls;
use crate::ops::admin::{self, Health};
use crate::ops::reload::{self, Reloader};
use crate::proxy::gateway::Gateway;
use crate::proxy::server;
use crate::telemetry::audit::AuditSink;

/// Installs the log subscriber: `RUST_LOG` (default `info`), to stderr, human-readable or JSON.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn fail(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Runs the gateway until SIGTERM/SIGINT. `path` (the config file) enables hot reload.
pub async fn run(config: Config, path: Option<PathBuf>) -> ExitCode {
    let listen = config.listen;
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {listen}: {e}")),
    };
    let admin_listener = match config.admin_listen {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => return fail(format!("cannot listen on admin_listen {addr}: {e}")),
        },
        None => None,
    };
    let tls = match &config.tls {
        Some(t) => match tls::server_config(t) {
            Ok(c) => Some(Arc::new(ArcSwap::new(c))),
            Err(e) => return fail(e.to_string()),
        },
        None => None,
    };
    let (audit, grace) = (config.audit.clone(), config.shutdown_grace);
    let gateway = match Gateway::new(config, Arc::new(SystemClock)) {
        Ok(g) => g,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(a) = &audit {
        match AuditSink::start(a, gateway.metrics.audit_dropped.clone()) {
            Ok(sink) => gateway.set_audit(sink),
            Err(e) => return fail(e.to_string()),
        }
    }
    reload::warm_tokens(&gateway);
    let health = Arc::new(Health::default());
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(l) = admin_listener {
        let addr = l.local_addr().ok();
        tracing::info!(
            ?addr,
            "admin endpoints listening (/metrics, /healthz, /readyz)"
        );
        let stopped = async {
            let _ = admin_stopped.await;
        };
        tokio::spawn(admin::serve(
            l,
            Arc::clone(&gateway),
            Arc::clone(&health),
            stopped,
        ));
    }
    let reloader = path.map(|path| {
        tokio::spawn(reload::run(Reloader {
            gateway: Arc::clone(&gateway),
            path,
            tls: tls.clone(),
        }))
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%listen, scheme, "dataverse-gateway listening");
    let draining = Arc::clone(&health);
    let shutdown = async move {
        shutdown_signal().await;
        draining.start_draining();
    };
    server::serve_tls(listener, Arc::clone(&gateway), shutdown, grace, tls).await;
    if let Some(r) = reloader {
        r.abort();
    }
    if let Some(a) = gateway.audit() {
        a.flush(Duration::from_secs(5));
    }
    let _ = stop_admin.send(());
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received; no new connections, finishing requests in flight");
}
