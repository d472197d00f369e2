//! A reload with a large `metadata_file` does not pause the event loop (it parses on the
//! blocking pool): on tokio's current-thread runtime, a task that only yields keeps running
//! while the reload is under way.

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

#[cfg(target_os = "linux")]
#[test]
fn the_reload_thread_runs_at_the_lowest_priority_and_leaves_others_as_they_were() {
    use rustix::process::getpriority_process;
    use rustix::thread::gettid;
    let before = getpriority_process(Some(gettid())).unwrap();
    let lowered = std::thread::spawn(|| {
        super::lowest_priority();
        getpriority_process(Some(gettid())).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(lowered, 19);
    assert_eq!(getpriority_process(Some(gettid())).unwrap(), before);
}

/// Records the thread that drops it.
struct DroppedOn(Arc<std::sync::Mutex<Option<std::thread::ThreadId>>>);

impl Drop for DroppedOn {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(std::thread::current().id());
    }
}

#[test]
fn the_replaced_configuration_is_freed_by_the_reload_thread_once_requests_let_go() {
    let dropped_on = Arc::new(std::sync::Mutex::new(None));
    let value = Arc::new(DroppedOn(Arc::clone(&dropped_on)));
    // A request still holds it while the reload thread waits.
    let request = Arc::clone(&value);
    let reload = std::thread::spawn(move || {
        super::drop_here_when(
            value,
            |v| Arc::strong_count(v) == 1,
            Duration::from_secs(60),
        );
        std::thread::current().id()
    });
    drop(request);
    let reload_thread = reload.join().unwrap();
    assert_eq!(*dropped_on.lock().unwrap(), Some(reload_thread));
}

#[test]
fn after_its_wait_the_reload_thread_lets_the_last_holder_free_it() {
    let dropped_on = Arc::new(std::sync::Mutex::new(None));
    let value = Arc::new(DroppedOn(Arc::clone(&dropped_on)));
    let request = Arc::clone(&value);
    std::thread::spawn(move || {
        super::drop_here_when(value, |v| Arc::strong_count(v) == 1, Duration::ZERO)
    })
    .join()
    .unwrap();
    assert_eq!(
        *dropped_on.lock().unwrap(),
        None,
        "the request still holds it"
    );
    drop(request);
    assert_eq!(
        *dropped_on.lock().unwrap(),
        Some(std::thread::current().id())
    );
}
