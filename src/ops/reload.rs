//! Hot reload of `gateway.yaml`: on SIGHUP and when the file changes.
//!
//! A reload parses and validates the whole file, builds the new snapshot and swaps it in
//! atomically ([`Gateway::swap`]); requests in flight finish under the snapshot they started
//! with. Invariants:
//! - an invalid file (any error, or a secret that cannot be resolved) never replaces a working
//!   config: its errors are logged as `FILE:LINE:COL: path: message` and the failure is counted
//!   (`dataverse_gateway_config_reloads_total{result="error"}`);
//! - token caches and limiter state of tenants whose settings did not change are kept (see
//!   [`crate::proxy::gateway`]);
//! - settings bound to the process (`listen`, `admin_listen`, turning `tls` on or off, `audit`,
//!   `log_format`, `shutdown_grace`) are logged as needing a restart and keep their old value;
//!   the TLS certificate files ARE re-read, so a rotated certificate takes effect.
//!
//! Change detection polls the file's metadata (length, modification time, inode, device) every
//! [`POLL_INTERVAL`], following symlinks. This sees what watching the parent directory is for —
//! editors that write a new file and rename it over the old one, and Kubernetes ConfigMap
//! volumes, which swap a `..data` symlink — with no extra dependency, no inotify limits, and it
//! works on any filesystem; it costs one `stat` a second. A change is applied once the
//! metadata has stayed the same for one more interval (debounce: a half-written file is not
//! read).
//!
//! The work of a reload (reading and parsing the file, a `metadata_file` CSDL of tens of
//! megabytes, building the snapshot) runs on a low-priority thread of its own
//! ([`reload_off_loop`]), never on the event loop: with one runtime thread a parse there would
//! pause every request in flight. That thread is paced ([`crate::pace`]: it gives the CPU up
//! every [`crate::pace::SLICE`] of work), and it also frees the configuration it replaced.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{self, Config};
use crate::identity::tls::{self, SharedTls};
use crate::proxy::gateway::{Gateway, Snapshot, TenantRuntime};

pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What reloads need: the gateway, the file, and the listener's TLS configuration if any.
pub struct Reloader {
    pub gateway: Arc<Gateway>,
    pub path: PathBuf,
    pub tls: Option<SharedTls>,
}

impl Reloader {
    /// Reloads now. When the new configuration is in force, the snapshot it replaced (for
    /// [`release_here`], once the result is reported).
    fn reload(&self, why: &str) -> Option<Arc<Snapshot>> {
        tracing::info!(reason = why, path = %self.path.display(), "reloading the configuration");
        let before = self.try_reload();
        self.gateway.metrics.reload(before.is_some());
        if before.is_none() {
            tracing::error!(path = %self.path.display(), "configuration NOT reloaded; the previous configuration stays in force");
        }
        before
    }

    fn try_reload(&self) -> Option<Arc<Snapshot>> {
        let config = match config::load_file(&self.path) {
            Ok((config, warnings)) => {
                let fatal: Vec<_> = warnings.iter().filter(|w| w.fatal_for_serve).collect();
                for f in &fatal {
                    tracing::error!("{f}");
                }
                if !fatal.is_empty() {
                    return None;
                }
                config
            }
            Err(diags) => {
                for e in &diags.errors {
                    tracing::error!("{e}");
                }
                return None;
            }
        };
        let before = self.gateway.snapshot();
        warn_restart_only(&before.config, &config);
        let tls_config = match (&self.tls, &config.tls) {
            (Some(_), Some(t)) => match tls::server_config(t) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "listener TLS settings are invalid");
                    return None;
                }
            },
            _ => None,
        };
        if let Err(e) = self.gateway.swap(config) {
            tracing::error!(error = %e, "cannot build the new configuration");
            return None;
        }
        if let (Some(shared), Some(c)) = (&self.tls, tls_config) {
            shared.store(c);
        }
        if let Some(audit) = self.gateway.audit() {
            audit.reopen(Duration::from_secs(5));
        }
        let after = self.gateway.snapshot();
        for t in &after.tenants {
            let old = before
                .tenants
                .iter()
                .find(|o| o.config.name == t.config.name);
            let (kept_token, kept_limits) = old.map_or((false, false), |o| {
                (
                    Arc::ptr_eq(&o.token, &t.token),
                    Arc::ptr_eq(&o.limits, &t.limits),
                )
            });
            tracing::info!(tenant = %t.config.name, new = old.is_none(), kept_token, kept_limits, "tenant configured");
        }
        warm_tokens(&self.gateway);
        tracing::info!(tenants = after.tenants.len(), "configuration reloaded");
        Some(before)
    }
}

/// How long a reload waits for the requests still using the previous configuration to finish,
/// so that it frees that configuration itself.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// Drops `before`, the snapshot a reload replaced, on the calling (reload) thread once nothing
/// else holds it or the tenants that left with it: a tenant's parsed metadata can be tens of
/// megabytes in a million allocations, and whoever drops the last reference frees it all. The
/// requests in flight that started under it finish first; left to them, the last one would
/// free it on the event loop and hold every request in flight meanwhile. Waits at most
/// [`RELEASE_WAIT`]; after that the last holder frees it, wherever it runs.
fn release_here(before: Arc<Snapshot>, now: &Snapshot) {
    let leaving: Vec<Arc<TenantRuntime>> = before
        .tenants
        .iter()
        .filter(|t| !now.tenants.iter().any(|n| Arc::ptr_eq(n, t)))
        .cloned()
        .collect();
    // Each leaving tenant is held twice here: by `before` and by `leaving`.
    let alone = |(before, leaving): &(Arc<Snapshot>, Vec<Arc<TenantRuntime>>)| {
        Arc::strong_count(before) == 1 && leaving.iter().all(|t| Arc::strong_count(t) == 2)
    };
    crate::pace::drop_when_alone((before, leaving), alone, RELEASE_WAIT);
}

fn warn_restart_only(old: &Config, new: &Config) {
    let changed = [
        ("listen", old.listen != new.listen),
        ("admin_listen", old.admin_listen != new.admin_listen),
        ("tls", old.tls.is_some() != new.tls.is_some()),
        ("audit", old.audit != new.audit),
        ("log_format", old.log_format != new.log_format),
        ("shutdown_grace", old.shutdown_grace != new.shutdown_grace),
    ];
    for (key, _) in changed.iter().filter(|(_, c)| *c) {
        tracing::warn!(
            key,
            "changed in the config file; takes effect after a restart"
        );
    }
}

/// Asks every tenant's token source for a token in the background, so that `/readyz` turns
/// ready without waiting for the first agent request. Cached tokens cost nothing.
pub fn warm_tokens(gateway: &Gateway) {
    for t in &gateway.snapshot().tenants {
        let token = Arc::clone(&t.token);
        tokio::spawn(async move {
            let _ = token.token().await;
        });
    }
}

/// A file's identity and version as `stat` (following symlinks) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
    device: u64,
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let (inode, device) = {
        use std::os::unix::fs::MetadataExt;
        (m.ino(), m.dev())
    };
    #[cfg(not(unix))]
    let (inode, device) = (0, 0);
    Some(Fingerprint {
        len: m.len(),
        modified: m.modified().ok(),
        inode,
        device,
    })
}

/// [`Reloader::reload`] on a thread of its own at the lowest scheduling priority; the event
/// loop keeps serving meanwhile.
///
/// Parsing a large `metadata_file` takes a CPU for a few hundred milliseconds. On a gateway
/// given one CPU, a thread of equal priority would take turns with the event loop and hold
/// requests in flight for whole scheduler slices; at the lowest priority (nice 19, Linux) it
/// runs in the time the event loop leaves. Low priority alone is not enough: when the kernel
/// does let it run, it keeps the CPU until the next scheduler tick (4 ms at 250 Hz), so the
/// thread is also paced ([`crate::pace::background`]). A thread per reload (not the blocking pool), so no
/// pooled thread keeps the low priority.
pub async fn reload_off_loop(reloader: &Arc<Reloader>, why: &'static str) -> bool {
    let reloader = Arc::clone(reloader);
    let runtime = tokio::runtime::Handle::current();
    let (done, result) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || {
            let _runtime = runtime.enter();
            let _background = crate::pace::background();
            let before = reloader.reload(why);
            let _ = done.send(before.is_some());
            if let Some(before) = before {
                release_here(before, &reloader.gateway.snapshot());
            }
        });
    match spawned {
        Ok(_) => result.await.unwrap_or(false),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the reload thread; configuration NOT reloaded");
            false
        }
    }
}

/// Reloads on SIGHUP and on (debounced) changes of the file, until the task is dropped.
pub async fn run(reloader: Reloader) {
    let reloader = Arc::new(reloader);
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by file change only");
            None
        }
    };
    let mut applied = fingerprint(&reloader.path);
    let mut seen = applied.clone();
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<Option<()>>();
        tokio::select! {
            Some(()) = hup => {
                reload_off_loop(&reloader, "SIGHUP").await;
                applied = fingerprint(&reloader.path);
                seen = applied.clone();
            }
            _ = tick.tick() => {
                let now = fingerprint(&reloader.path);
                if now != applied && now == seen && now.is_some() {
                    reload_off_loop(&reloader, "the config file changed").await;
                    applied = now;
                } else {
                    seen = now;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
