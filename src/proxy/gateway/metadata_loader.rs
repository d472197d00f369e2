//! Fetches each tenant's `$metadata` from its org (when no `metadata_file` is configured), at
//! start and then periodically, with the tenant's own token.
//!
//! A loader task holds only a weak reference to its tenant, so it ends when a reload replaces
//! the tenant. Failures are retried with backoff; the previous metadata keeps serving. The CSDL
//! is parsed on tokio's blocking pool, not on the event loop.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Limited};

use super::{Snapshot, TenantRuntime};
use crate::policy::metadata::Metadata;

const REFRESH: Duration = Duration::from_secs(3600);
const RETRY_MIN: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// Real orgs' CSDL runs to tens of megabytes.
const MAX_CSDL_BYTES: usize = 256 << 20;

/// Starts a loader for every tenant of `snapshot` that has no metadata file.
pub fn start(snapshot: &Arc<Snapshot>) {
    let Ok(_) = tokio::runtime::Handle::try_current() else {
        return;
    };
    for tenant in &snapshot.tenants {
        if tenant.config.dataverse.metadata_file.is_some() {
            continue;
        }
        tokio::spawn(run(Arc::downgrade(tenant)));
    }
}

async fn run(tenant: Weak<TenantRuntime>) {
    let mut retry = RETRY_MIN;
    // A tenant that kept its metadata across a reload is due for a refresh, not a fetch.
    let carried_over = tenant.upgrade().is_some_and(|t| t.metadata().is_some());
    if carried_over {
        tokio::time::sleep(REFRESH).await;
    }
    loop {
        let Some(t) = tenant.upgrade() else { return };
        let wait = match fetch(&t).await {
            Ok(meta) => {
                tracing::info!(tenant = %t.config.name, "metadata loaded");
                t.metadata.store(Some(Arc::new(meta)));
                retry = RETRY_MIN;
                REFRESH
            }
            Err(e) => {
                tracing::warn!(tenant = %t.config.name, error = %e, retry_in_s = retry.as_secs(), "metadata not loaded; requests that need it are denied");
                let wait = retry;
                retry = (retry * 2).min(RETRY_MAX);
                wait
            }
        };
        drop(t);
        tokio::time::sleep(wait).await;
    }
}

async fn fetch(t: &TenantRuntime) -> Result<Metadata, String> {
    let token = t.token.token().await.map_err(|e| e.to_string())?;
    let dv = &t.config.dataverse;
    let req = Request::get(format!("/api/data/{}/$metadata", dv.api_version))
        .header(header::AUTHORIZATION, format!("Bearer {}", token.expose()))
        .header(header::ACCEPT, "application/xml")
        .body(crate::proxy::body::full(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let (resp, lease) = t
        .org
        .send(req)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("Dataverse answered {}", resp.status()));
    }
    let body = Limited::new(resp.into_body(), MAX_CSDL_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?;
    lease.release();
    // Tens of megabytes take a while to parse: off the event loop, which keeps serving.
    let bytes = body.to_bytes();
    tokio::task::spawn_blocking(move || Metadata::parse(&bytes).map_err(|e| e.to_string()))
        .await
        .map_err(|e| format!("parsing: {e}"))?
}
