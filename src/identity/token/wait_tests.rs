//! A request never waits longer than `timeouts.token_wait` for a token request that hangs,
//! counted from when that request started; on the injected clock.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::ManualClock;
use crate::config::secret::SecretRef;
use crate::config::{Auth, Credential};

/// A token endpoint that accepts connections and never answers.
async fn silent_endpoint() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(tcp);
        }
    });
    (url, accepted)
}

fn source(authority: &str, clock: &Arc<ManualClock>) -> Arc<TokenSource> {
    let auth = Auth {
        tenant_id: "t".into(),
        client_id: "c".into(),
        authority: authority.into(),
        scope: "https://org.example/.default".into(),
        credential: Credential::ClientSecret(SecretRef::Inline(Secret::new("s"))),
    };
    crate::identity::tls::install_crypto_provider();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    TokenSource::new(auth, http, Arc::clone(clock) as Arc<dyn Clock>)
}

#[tokio::test]
async fn with_a_hanging_token_request_callers_wait_at_most_the_bound_then_fail_at_once() {
    let (url, accepted) = silent_endpoint().await;
    let clock = Arc::new(ManualClock::new());
    let s = source(&url, &clock);
    let wait = Some(Duration::from_secs(2));
    let first = tokio::spawn({
        let s = Arc::clone(&s);
        async move { s.token_within(wait).await }
    });
    // The first caller waits while less than the bound has passed ...
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    clock.advance(Duration::from_millis(1900));
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(!first.is_finished(), "still within token_wait");
    // ... and fails once it has passed, while the fetch goes on.
    clock.advance(Duration::from_millis(200));
    let err = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("answered once token_wait passed")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, EntraError::Pending { .. }), "{err}");
    // A later caller does not queue behind the same hanging request: it fails at once.
    let again = tokio::time::timeout(Duration::from_secs(1), s.token_within(wait))
        .await
        .expect("no wait at all");
    assert!(matches!(again, Err(EntraError::Pending { waited_ms }) if waited_ms >= 2000));
    assert_eq!(
        s.requests(),
        1,
        "one token request in flight, not one per caller"
    );
    let connected = async {
        while accepted.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), connected)
        .await
        .unwrap();
}
