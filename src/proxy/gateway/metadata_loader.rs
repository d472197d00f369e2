//! Fetches each tenant's `$metadata` from its org (when no `metadata_file` is configured), at
//! start and then periodically, with the tenant's own token.
//!
//! A loader task holds only a weak reference to its tenant, so it ends when a reload replaces
//! the tenant. Failures are retried with backoff; the previous metadata keeps serving. The CSDL
//! is parsed on a paced thread of its own ([`crate::pace`]), never on the event loop: at normal
//! priority for the tenant's first model (its writes wait for it), at the lowest for a refresh
//! ([`crate::pace::background`]); that thread frees the model it replaced.

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
/// How long the parsing thread waits for requests to let go of the model it replaced, so that
/// it frees that model itself.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

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
        let loaded = match fetch(&t).await {
            Ok(csdl) => install(&t, csdl).await,
            Err(e) => Err(e),
        };
        let wait = match loaded {
            Ok(()) => {
                tracing::info!(tenant = %t.config.name, "metadata loaded");
                if let Some(m) = t.metadata() {
                    super::warn_money_without_currency(&t.config.name, &t.config.policy, &m);
                }
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

/// The org's CSDL document.
async fn fetch(t: &TenantRuntime) -> Result<Bytes, String> {
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
    Ok(body.to_bytes())
}

/// Parses `csdl` and puts the model in force for `t`, on a thread of its own: tens of
/// megabytes take a CPU for a few hundred milliseconds, which the event loop keeps (see
/// [`crate::pace`]). That thread then frees the model it replaced, once the requests using it
/// let go (at most [`RELEASE_WAIT`]); freed by the last of them, it would hold the event loop.
async fn install(t: &Arc<TenantRuntime>, csdl: Bytes) -> Result<(), String> {
    let first = t.metadata().is_none();
    let tenant = Arc::clone(t);
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("metadata".into())
        .spawn(move || {
            let _pace = pace_parse(first);
            let parsed = Metadata::parse(&csdl).map_err(|e| format!("parsing: {e}"));
            drop(csdl);
            let meta = match parsed {
                Ok(meta) => meta,
                Err(e) => {
                    let _ = done.send(Err(e));
                    return;
                }
            };
            let replaced = tenant.metadata.swap(Some(Arc::new(meta)));
            drop(tenant);
            let _ = done.send(Ok(()));
            if let Some(old) = replaced {
                crate::pace::drop_when_alone(old, |m| Arc::strong_count(m) == 1, RELEASE_WAIT);
            }
        })
        .map_err(|e| format!("cannot start a thread to parse it: {e}"))?;
    result
        .await
        .map_err(|_| "the parsing thread ended without an answer".to_owned())?
}

/// How the parsing thread runs: always paced, so the event loop never waits long for the CPU;
/// at the lowest priority only when a model is already in force. The first model is what the
/// tenant's writes wait for (they are denied until then, and `/readyz` says so), so it must not
/// be starved by whatever else runs on the machine.
fn pace_parse(first: bool) -> crate::pace::Paced {
    if first {
        crate::pace::paced(crate::pace::SLICE)
    } else {
        crate::pace::background()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::policy::metadata::synthetic_csdl;
    use crate::proxy::gateway::Gateway;

    const CONFIG: &str = "listen: 127.0.0.1:0\ntenants:\n  contoso:\n    default: true\n    dataverse:\n      url: http://127.0.0.1:9\n    auth:\n      tenant_id: 00000000-0000-0000-0000-000000000001\n      client_id: 00000000-0000-0000-0000-000000000002\n      authority: http://127.0.0.1:9\n      client_secret: \"not-a-real-secret\"\n    allow:\n      contacts: [GET]\n";

    #[tokio::test(flavor = "current_thread")]
    async fn a_fetched_csdl_is_put_in_force_and_a_bad_one_keeps_the_model_in_force() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, CONFIG).expect("write config");
        let (config, _) = crate::config::load_file(&path).expect("valid config");
        let gateway = Gateway::new(config, Arc::new(SystemClock)).expect("gateway");
        let tenant = Arc::clone(&gateway.snapshot().tenants[0]);
        assert!(tenant.metadata().is_none(), "the org is unreachable");

        install(&tenant, Bytes::from(synthetic_csdl(20)))
            .await
            .expect("parses");
        let first = tenant.metadata().expect("in force");
        assert!(first.entity_set("new_entity7s").is_some());

        let err = install(&tenant, Bytes::from_static(b"<Edmx><DataServices>"))
            .await
            .expect_err("truncated");
        assert!(err.starts_with("parsing: "), "{err}");
        assert!(Arc::ptr_eq(&first, &tenant.metadata().expect("kept")));

        // Replaced while a request still holds the old model: the request keeps it.
        install(&tenant, Bytes::from(synthetic_csdl(30)))
            .await
            .expect("parses");
        let second = tenant.metadata().expect("in force");
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(second.entity_set("new_entity25s").is_some());
        assert!(first.entity_set("new_entity7s").is_some());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_first_model_is_parsed_at_normal_priority_and_a_refresh_in_the_background() {
        use rustix::process::getpriority_process;
        use rustix::thread::gettid;
        let run = |first| {
            std::thread::spawn(move || {
                let before = getpriority_process(Some(gettid())).unwrap();
                let _pace = pace_parse(first);
                (
                    before,
                    getpriority_process(Some(gettid())).unwrap(),
                    crate::pace::slice(),
                )
            })
            .join()
            .unwrap()
        };
        let (before, during, slice) = run(true);
        assert_eq!(during, before, "the first parse keeps its priority");
        assert_eq!(slice, Some(crate::pace::SLICE), "and is paced");
        let (_, during, slice) = run(false);
        assert_eq!(during, 19, "a refresh runs at the lowest priority");
        assert_eq!(slice, Some(crate::pace::SLICE));
    }
}
