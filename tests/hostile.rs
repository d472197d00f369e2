//! Hostile clients: silent and half-sent connections, connections over the cap, heads over the
//! limits, stalled and dribbled request bodies, bodies over the memory budget. Each test
//! asserts its bound against real but SHORT timeouts (network waits the injected clock cannot
//! drive), and every wait in a test has a deadline.

mod common;

use std::time::{Duration, Instant};

use common::client;
use common::hostile::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn silent_and_half_sent_connections_are_closed_within_the_head_timeout() {
    let gw = start(TIMEOUTS, 4).await;
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    let mut partial = TcpStream::connect(gw.addr).await.unwrap();
    partial
        .write_all(b"GET /api/data/v9.2/contacts HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // HTTP/2 with prior knowledge: the preface and SETTINGS, then nothing.
    let mut h2 = TcpStream::connect(gw.addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    gw.served().await;
    let bound = Duration::from_millis(300 + 1200);
    for tcp in silent.iter_mut().chain([&mut partial, &mut h2]) {
        closed_within(tcp, bound).await;
    }
    // The counts follow each close within a moment.
    let counted = async {
        while gw.closed("head_timeout") < 202 || gw.gateway.listener.open() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(2), counted)
        .await
        .expect("every close counted, every connection gone");
    assert_eq!(gw.closed("head_timeout"), 202);
    gw.served().await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_head_timeout_between_requests() {
    let gw = start(TIMEOUTS, 4).await;
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    tcp.write_all(b"GET /api/data/v9.2/contacts HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("{\"value\":[]}") {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "answered before closing");
        seen.extend_from_slice(&buf[..n]);
    }
    closed_within(&mut tcp, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn over_the_connection_cap_new_connections_are_refused_at_once_and_readyz_says_so() {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let head = "timeouts:\n  request_head: 10s\nlimits:\n  max_connections: 20\n";
    let gw = start(head, 4).await;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    let full = async {
        while gw.gateway.listener.open() < 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), full)
        .await
        .unwrap();
    for _ in 0..50 {
        let started = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            client().get(format!("{}/contacts", gw.url)).send(),
        )
        .await
        .expect("refused quickly, not left hanging");
        if let Ok(r) = r {
            assert_eq!(r.status(), 503);
            assert_eq!(r.headers()["retry-after"], "1");
            assert_eq!(r.headers()["odata-version"], "4.0");
            assert_eq!(r.headers()["x-request-id"].len(), 36, "a fresh request id");
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "GatewayOverloaded");
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let why = gw.gateway.listener.not_accepting().expect("not ready");
    assert!(why.contains("cap of 20"), "{why}");
    let snapshot = gw.gateway.snapshot();
    let reasons = dataverse_gateway::ops::admin::not_ready(
        &snapshot,
        false,
        gw.gateway.listener.not_accepting(),
    );
    assert!(
        reasons.iter().any(|r| r.contains("cap of 20")),
        "{reasons:?}"
    );
    assert_eq!(gw.closed("over_capacity"), 50);
    drop(silent);
    let drained = async {
        while gw.gateway.listener.open() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .unwrap();
    assert_eq!(gw.gateway.listener.not_accepting(), None);
    gw.served().await;
    assert_eq!(
        log.lines_with("at the cap"),
        1,
        "one line on reaching the cap"
    );
    assert_eq!(
        log.lines_with("below the cap again"),
        1,
        "one line on leaving it"
    );
}

#[tokio::test]
async fn a_refused_client_that_sent_its_request_still_reads_the_503() {
    // Closed with the request unread, the gateway's socket would answer it with a reset,
    // which destroys the 503 in the client's buffer before it reads it.
    let head = "timeouts:\n  request_head: 10s\nlimits:\n  max_connections: 2\n";
    let gw = start(head, 4).await;
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    let full = async {
        while gw.gateway.listener.open() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), full)
        .await
        .unwrap();
    for _ in 0..5 {
        let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
        tcp.write_all(b"GET /api/data/v9.2/contacts HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // Long enough for the refusal and the request to cross (and a reset to come back).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut seen = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut seen))
            .await
            .expect("the gateway ends the stream");
        assert!(read.is_ok(), "no reset: {read:?}");
        let seen = String::from_utf8_lossy(&seen);
        assert!(seen.starts_with("HTTP/1.1 503"), "{seen}");
        assert!(seen.contains("GatewayOverloaded"), "{seen}");
    }
    drop(silent);
}

#[tokio::test]
async fn a_stalled_write_body_is_answered_408_within_the_body_timeout() {
    let gw = start(TIMEOUTS, 2).await;
    let started = Instant::now();
    let mut a = stalled_write(&gw, 1 << 20, 512 << 10).await;
    let mut b = stalled_write(&gw, 1 << 20, 10).await;
    // Both stalled bodies hold the tenant's two slots; a GET waits in line meanwhile and is
    // served once they are answered.
    let get = tokio::spawn({
        let url = format!("{}/contacts", gw.url);
        async move { client().get(url).send().await.unwrap().status() }
    });
    for tcp in [&mut a, &mut b] {
        let (status, text) = status_of(tcp, Duration::from_secs(2)).await;
        assert_eq!(status, 408, "{text}");
        assert!(text.contains("GatewayRequestTimeout"), "{text}");
    }
    assert!(started.elapsed() < Duration::from_millis(300 + 1200));
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), get)
            .await
            .unwrap()
            .unwrap(),
        200
    );
    assert_eq!(gw.gateway.snapshot().tenants[0].limits.in_flight(), 0);
    assert_eq!(gw.gateway.budget.used(), 0, "the budget is given back");
    let audit = gw.audit();
    let timed_out: Vec<_> = audit.iter().filter(|r| r["status"] == 408).collect();
    assert_eq!(timed_out.len(), 2, "{audit:?}");
    assert_eq!(timed_out[0]["error"], "GatewayRequestTimeout");
    assert_eq!(gw.errors("contoso", "GatewayRequestTimeout"), 2);
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off_at_the_total_body_timeout() {
    let gw = start(TIMEOUTS, 2).await;
    let started = Instant::now();
    let tcp = stalled_write(&gw, 1000, 1).await;
    let (mut read, mut write) = tcp.into_split();
    // One byte every 100 ms: never a pause over request_body_idle (300 ms).
    let dribble = tokio::spawn(async move {
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let answer = tokio::time::timeout(Duration::from_secs(3), async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("GatewayRequestTimeout") {
            let n = read.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    });
    answer.await.expect("answered in time");
    dribble.abort();
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "answered after {took:?}; request_body is 1s"
    );
}

#[tokio::test]
async fn buffered_bodies_together_stay_under_the_budget() {
    let head = "timeouts:\n  request_body_idle: 10s\n  request_body: 10s\nlimits:\n  max_buffered_bytes: 4MiB\n";
    let gw = start(head, 10).await;
    let declared = 1536 << 10;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(stalled_write(&gw, declared, 1 << 20).await);
    }
    let charged = async {
        while gw.gateway.budget.used() < 2 * declared as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), charged)
        .await
        .unwrap();
    for _ in 0..3 {
        let mut refused = stalled_write(&gw, declared, 1 << 20).await;
        let (status, text) = status_of(&mut refused, Duration::from_secs(2)).await;
        assert_eq!(status, 503, "{text}");
        assert!(
            text.to_ascii_lowercase().contains("retry-after: 1"),
            "{text}"
        );
        assert!(text.contains("GatewayOverloaded"), "{text}");
    }
    assert!(gw.gateway.budget.used() <= 4 << 20);
    gw.served().await;
    drop(held);
    let released = async {
        while gw.gateway.budget.used() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), released)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_request_with_two_hosts_is_refused_400_in_the_error_shape() {
    let gw = start(TIMEOUTS, 2).await;
    for hosts in [
        "Host: x\r\nHost: y\r\n",
        "Host: x\r\nHost: x\r\n",
        "host: x\r\nHOST: evil.example\r\n",
    ] {
        let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
        let head =
            format!("GET /api/data/v9.2/contacts HTTP/1.1\r\n{hosts}Connection: close\r\n\r\n");
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut seen))
            .await
            .expect("answered")
            .unwrap();
        let seen = String::from_utf8_lossy(&seen);
        assert!(seen.starts_with("HTTP/1.1 400"), "{hosts:?}: {seen}");
        assert!(seen.contains("more than one Host header"), "{seen}");
        assert!(
            seen.to_ascii_lowercase().contains("x-request-id:"),
            "{seen}"
        );
    }
    // One Host is served as before.
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    tcp.write_all(b"GET /api/data/v9.2/contacts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut seen))
        .await
        .expect("answered")
        .unwrap();
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_request_head_over_the_limits_is_answered_431_audited_and_counted() {
    let gw = start(TIMEOUTS, 2).await;
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    let mut head = String::from("GET /api/data/v9.2/contacts HTTP/1.1\r\nHost: x\r\n");
    for i in 0..150 {
        head.push_str(&format!("x-h{i}: v\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read_to_end(&mut seen)).await;
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 431"));
    let audit = async {
        loop {
            let audit = gw.audit();
            if !audit.is_empty() {
                return audit;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let audit = tokio::time::timeout(Duration::from_secs(3), audit)
        .await
        .unwrap();
    assert_eq!(audit[0]["status"], 431);
    assert_eq!(audit[0]["error"], "GatewayHeadersTooLarge");
    assert_eq!(gw.errors("-", "GatewayHeadersTooLarge"), 1);
    assert_eq!(gw.closed("head_too_large"), 1);
}

#[tokio::test]
async fn an_agent_that_stops_reading_is_disconnected_and_frees_its_slot() {
    let gw = start(TIMEOUTS, 2).await;
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    tcp.write_all(b"GET /api/data/v9.2/annotations HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The agent reads nothing: once the socket buffers are full, the gateway cannot write.
    let tenant = &gw.gateway.snapshot().tenants[0];
    let started = async {
        while tenant.limits.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), started)
        .await
        .unwrap();
    let freed = async {
        while tenant.limits.in_flight() > 0 || gw.closed("response_unread") == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), freed)
        .await
        .expect("the stopped reader is disconnected and its slot freed");
    assert_eq!(gw.closed("response_unread"), 1);
    assert_eq!(gw.closed("head_timeout"), 0);
    gw.served().await;
}
