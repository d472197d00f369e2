//! A reload with a large `metadata_file` does not pause the event loop (it parses on a
//! background thread of its own): on tokio's current-thread runtime, a task that only yields
//! keeps running while the reload is under way; that thread gives the CPU up as it goes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Reloader, reload_off_loop};
use crate::clock::SystemClock;
use crate::policy::metadata::synthetic_csdl;
use crate::proxy::gateway::Gateway;

fn config_yaml(csdl: &std::path::Path) -> String {
    format!(
        "listen: 127.0.0.1:0\ntenants:\n  contoso:\n    default: true\n    dataverse:\n      url: http://127.0.0.1:9\n      metadata_file: {}\n    auth:\n      tenant_id: 00000000-0000-0000-0000-000000000001\n      client_id: 00000000-0000-0000-0000-000000000002\n      authority: http://127.0.0.1:9\n      client_secret: \"not-a-real-secret\"\n    allow:\n      contacts: [GET]\n",
        csdl.display()
    )
}

#[tokio::test(flavor = "current_thread")]
async fn a_reload_parsing_a_large_csdl_leaves_the_event_loop_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csdl = dir.path().join("metadata.xml");
    // About 2 MB: long enough to parse (debug build) that a paused loop would show.
    std::fs::write(&csdl, synthetic_csdl(300)).expect("write CSDL");
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, config_yaml(&csdl)).expect("write config");
    let (config, _) = crate::config::load_file(&path).expect("valid config");
    let gateway = Gateway::new(config, Arc::new(SystemClock)).expect("gateway");
    let before = gateway.snapshot();
    let reloader = Arc::new(Reloader {
        gateway: Arc::clone(&gateway),
        path,
        tls: None,
    });

    let started = Instant::now();
    let reload = tokio::spawn({
        let reloader = Arc::clone(&reloader);
        async move { reload_off_loop(&reloader, "test").await }
    });
    // The longest stretch the loop could not run this task, while the reload was under way.
    let mut longest = Duration::ZERO;
    let mut last = Instant::now();
    let mut turns = 0u64;
    while !reload.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "reload never ended"
        );
        tokio::task::yield_now().await;
        let now = Instant::now();
        longest = longest.max(now - last);
        last = now;
        turns += 1;
    }
    let took = started.elapsed();
    assert!(reload.await.expect("reload task"), "the reload failed");
    assert!(
        !Arc::ptr_eq(&before, &gateway.snapshot()),
        "the new snapshot is in force"
    );
    assert!(turns > 10, "the loop ran {turns} times in {took:?}");
    assert!(
        longest < took / 2,
        "the loop paused {longest:?} during a reload of {took:?}"
    );
}

/// The CPU time the calling thread has used (not wall time: a thread at the lowest priority on
/// a machine busy with other tests waits far longer than it runs).
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).expect("a thread's CPU time is not negative"),
        u32::try_from(t.tv_nsec).expect("nanoseconds fit"),
    )
}

#[cfg(target_os = "linux")]
#[test]
fn the_reload_thread_gives_the_cpu_up_while_it_parses_and_gets_the_same_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csdl = dir.path().join("metadata.xml");
    std::fs::write(&csdl, synthetic_csdl(300)).expect("write CSDL");
    let unpaced = crate::proxy::gateway::load_metadata_file(&csdl).expect("parses");
    assert_eq!(crate::pace::slice(), None, "the test thread is not paced");
    let (paced, yields, ran) = std::thread::spawn(move || {
        let _background = crate::pace::background();
        let started = thread_cpu_time();
        let m = crate::proxy::gateway::load_metadata_file(&csdl).expect("parses");
        let ran = thread_cpu_time() - started;
        (m, crate::pace::yields(), ran)
    })
    .join()
    .expect("the reload thread ends");
    // A yield once a slice of wall time has passed at a look at the clock, so at least one
    // per slice of CPU time the thread ran (more when it waited meanwhile); a tenth of that
    // leaves room for a slow debug build, and still means on average a yield every
    // millisecond of running, well inside a scheduler tick.
    let slices = ran.as_micros() / crate::pace::SLICE.as_micros();
    assert!(
        u128::from(yields) * 10 >= slices,
        "{yields} yields in {ran:?} of CPU time: on average more than 1 ms between two"
    );
    assert_eq!(model(&paced), model(&unpaced));
}

/// What a parsed model holds, in an order that does not depend on hashing.
fn model(m: &crate::policy::metadata::Metadata) -> Vec<String> {
    let mut all: Vec<String> = m.entity_types().map(|t| format!("{t:?}")).collect();
    all.extend(m.entity_sets().map(|(set, ty)| format!("{set} -> {ty}")));
    all.extend(m.operations().map(|o| format!("{o:?}")));
    all.sort();
    all
}
