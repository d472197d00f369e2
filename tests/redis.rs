//! Limits shared across replicas through a real `redis-server` (installed by `.ci/run`), started
//! here on a free loopback port with persistence off.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::proc::free_port;
use common::*;
use dataverse_gateway::sim::SimConfig;

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs Debian's package)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port }
    }

    fn start() -> Redis {
        Redis::start_on(free_port())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn instance(redis_port: u16, limits: &str, on_error: &str, prefix: &str) -> Harness {
    let policy = format!("{DEFAULT_POLICY}    limits:\n{limits}");
    Harness::build(SimConfig::default(), |sim| {
        format!(
            "rate_limit_store:\n  redis:\n    url: redis://127.0.0.1:{redis_port}/0\n    key_prefix: \"{prefix}\"\n    on_error: {on_error}\ntenants:\n{}",
            tenant_yaml("contoso", true, sim, 0, &default_secret(), &policy)
        )
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_rate() {
    let redis = Redis::start();
    let limits = "      requests_per_second: 40\n      burst: 10\n";
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(instance(redis.port, limits, "fail_closed", "share:").await);
    }
    let started = Instant::now();
    let run_for = Duration::from_secs(3);
    let mut tasks = Vec::new();
    for g in &gateways {
        for _ in 0..3 {
            let (http, url) = (g.http.clone(), g.api("WhoAmI"));
            tasks.push(tokio::spawn(async move {
                let mut admitted = 0u32;
                while started.elapsed() < run_for {
                    if http.get(&url).send().await.unwrap().status() == 200 {
                        admitted += 1;
                    }
                }
                admitted
            }));
        }
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let allowance = 10.0 + 40.0 * elapsed;
    let error = (f64::from(admitted) - allowance).abs() / allowance;
    eprintln!(
        "three instances admitted {admitted} in {elapsed:.2} s (allowance {allowance:.0}), error {:.2}%",
        error * 100.0
    );
    assert!(
        error <= 0.05,
        "admitted {admitted}, allowance {allowance:.0}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_seen_by_one_instance_pauses_the_others() {
    let redis = Redis::start();
    let limits = "      requests_per_second: 1000\n";
    let a = instance(redis.port, limits, "fail_open", "cool:").await;
    let b = instance(redis.port, limits, "fail_open", "cool:").await;
    a.sim.throttle_next(1, 30);
    assert_eq!(a.get("WhoAmI").await.status(), 429);
    let r = b.get("WhoAmI").await;
    assert_eq!(r.status(), 429, "instance b learnt the cooldown from Redis");
    assert_eq!(error_of(r).await.0, "GatewayRateLimited");
    assert!(
        b.upstream_requests().is_empty(),
        "b sent nothing to Dataverse"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_follows_on_error_and_recovers() {
    let mut redis = Redis::start();
    let port = redis.port;
    let limits = "      requests_per_second: 1000\n";
    let open = instance(port, limits, "fail_open", "loss:").await;
    let closed = instance(port, limits, "fail_closed", "loss2:").await;
    assert_eq!(open.get("WhoAmI").await.status(), 200);
    assert_eq!(closed.get("WhoAmI").await.status(), 200);
    redis.stop();
    for _ in 0..5 {
        assert_eq!(
            open.get("WhoAmI").await.status(),
            200,
            "fail_open: the local limiter decides"
        );
        let r = closed.get("WhoAmI").await;
        assert_eq!(r.status(), 429, "fail_closed: refused while Redis is away");
        assert_eq!(r.headers()["retry-after"], "1");
    }
    let _redis = Redis::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if closed.get("WhoAmI").await.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store did not recover by itself"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open.get("WhoAmI").await.status(), 200);
}

/// One agent's own rate, shared by two instances through Redis: its flood is refused across
/// both, under its own keys, and another agent of the same tenant is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_rate_is_shared_by_every_instance_and_binds_only_that_client() {
    use common::agents;
    let redis = Redis::start();
    let port = redis.port;
    let instance = || {
        Harness::build(SimConfig::default(), move |sim| {
            agents::register(sim);
            format!(
                "rate_limit_store:\n  redis:\n    url: redis://127.0.0.1:{port}/0\n    key_prefix: \"agents:\"\n    on_error: fail_closed\n{}{}tenants:\n{}",
                agents::agent_auth_yaml(sim),
                agents::clients_yaml("{ requests_per_second: 1, burst: 3 }"),
                tenant_yaml("contoso", true, sim, 0, &default_secret(), DEFAULT_POLICY)
            )
        })
    };
    let (a, b) = (instance().await, instance().await);
    let mut sales = Vec::new();
    let mut support = Vec::new();
    for h in [&a, &b] {
        sales.push(agents::token(&h.sim, &agents::sales_agent()).await);
        support.push(agents::token(&h.sim, &agents::support_agent()).await);
    }
    let started = Instant::now();
    let mut admitted = 0;
    for i in 0..12 {
        let (h, token) = if i % 2 == 0 {
            (&a, &sales[0])
        } else {
            (&b, &sales[1])
        };
        let r = h
            .http
            .get(h.api("leads?$select=subject"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        admitted += u32::from(r.status() == 200);
    }
    let refill = started.elapsed().as_secs() as u32;
    assert!(
        (3..=3 + refill).contains(&admitted),
        "the burst of 3 is shared by both instances: {admitted} admitted"
    );
    for (h, token) in [(&a, &support[0]), (&b, &support[1])] {
        for _ in 0..4 {
            let r = h
                .http
                .get(h.api("annotations?$select=subject"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                200,
                "the other agent is not limited by the flood"
            );
        }
    }
}
