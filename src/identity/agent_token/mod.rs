//! Agents' Entra ID access tokens (`agent_auth:`): validated locally, never per request over
//! the network.
//!
//! [`jwt`] is the pure check of one token. [`AgentTokens`] is its shell: the issuer's signing
//! keys (from the OpenID configuration's `jwks_uri`, fetched on first use and again when a token
//! names an unknown `kid`, at most once per [`REFRESH_MIN`], one fetch at a time), and the
//! tokens already validated, kept by the SHA-256 of the token until their `exp` (at most
//! [`CACHE_MAX`] of them), so a token seen before costs one hash and one map lookup.
//! Invariants: a token is never logged, stored (only its hash is), nor forwarded; a failure to
//! fetch keys refuses the token (fail closed); time comes from the injected clock.

pub mod jwt;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};

use crate::clock::Clock;
use crate::config::AgentAuth;
use jwt::{Expect, Identity, Jwk, Rejection};

/// Shortest time between two key fetches caused by unknown `kid`s.
pub const REFRESH_MIN: Duration = Duration::from_secs(60);
/// Most validated tokens remembered.
pub const CACHE_MAX: usize = 10_000;
/// Largest OpenID configuration or JWKS document read.
const MAX_DOCUMENT: usize = 256 * 1024;

pub struct AgentTokens {
    config: AgentAuth,
    issuers: [String; 2],
    http: reqwest::Client,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    keys: RwLock<Arc<Vec<Jwk>>>,
    /// When keys were last fetched (successfully or not).
    fetched: Mutex<Option<Instant>>,
    /// Held while fetching: one fetch at a time.
    fetching: tokio::sync::Mutex<()>,
    seen: Mutex<HashMap<[u8; 32], Arc<Identity>>>,
    fetches: AtomicUsize,
}

impl AgentTokens {
    pub fn new(
        config: &AgentAuth,
        http: reqwest::Client,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> AgentTokens {
        AgentTokens {
            issuers: config.issuers(),
            config: config.clone(),
            http,
            timeout,
            clock,
            keys: RwLock::new(Arc::default()),
            fetched: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            seen: Mutex::new(HashMap::new()),
            fetches: AtomicUsize::new(0),
        }
    }

    /// The configuration these tokens are checked against.
    pub fn config(&self) -> &AgentAuth {
        &self.config
    }

    /// Key fetches so far (for tests and `doctor`).
    pub fn key_fetches(&self) -> usize {
        self.fetches.load(Ordering::Relaxed)
    }

    fn now_secs(&self) -> u64 {
        self.clock
            .wall()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// The identity `token` proves, or why it is refused.
    pub async fn validate(&self, token: &str) -> Result<Arc<Identity>, Rejection> {
        let (hash, now, seen) = self.lookup(token);
        if let Some(id) = seen {
            return Ok(id);
        }
        let unverified = jwt::parse(token)?;
        let key = match self.key(&unverified.kid) {
            Some(k) => k,
            None => {
                self.refresh().await?;
                self.key(&unverified.kid)
                    .ok_or_else(|| Rejection::UnknownSigner(kid_excerpt(&unverified.kid)))?
            }
        };
        let claims = unverified.verify(&key)?;
        let expect = Expect {
            tenant_id: &self.config.tenant_id,
            audience: &self.config.audience,
            issuers: &self.issuers,
        };
        let identity = Arc::new(jwt::check_claims(&claims, &expect, now)?);
        self.remember(hash, &identity, now);
        Ok(identity)
    }

    /// The identity of `token` when it was validated before and has not expired: one hash and
    /// one map lookup, no signature check.
    pub fn seen(&self, token: &str) -> Option<Arc<Identity>> {
        self.lookup(token).2
    }

    /// The token's hash, now, and its cached identity if still valid.
    fn lookup(&self, token: &str) -> ([u8; 32], u64, Option<Arc<Identity>>) {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        let now = self.now_secs();
        let seen = lock(&self.seen)
            .get(&hash)
            .filter(|id| now <= id.expires_at)
            .map(Arc::clone);
        (hash, now, seen)
    }

    fn remember(&self, hash: [u8; 32], identity: &Arc<Identity>, now: u64) {
        let mut seen = lock(&self.seen);
        if seen.len() >= CACHE_MAX {
            seen.retain(|_, id| id.expires_at >= now);
        }
        if seen.len() < CACHE_MAX {
            seen.insert(hash, Arc::clone(identity));
        }
    }

    fn key(&self, kid: &str) -> Option<Jwk> {
        let keys = Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()));
        keys.iter().find(|k| k.kid == kid).cloned()
    }

    /// Fetches the keys again unless that happened less than [`REFRESH_MIN`] ago.
    async fn refresh(&self) -> Result<(), Rejection> {
        let _one = self.fetching.lock().await;
        let now = self.clock.now();
        if let Some(at) = *lock(&self.fetched)
            && now.saturating_duration_since(at) < REFRESH_MIN
        {
            return Ok(());
        }
        *lock(&self.fetched) = Some(now);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch_keys().await {
            Ok(keys) => {
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                Ok(())
            }
            Err(why) => {
                tracing::warn!(error = %why, "cannot fetch the agents' token signing keys");
                // Keys already known stay usable; a token needing a new one is refused.
                Err(Rejection::KeysUnavailable(why))
            }
        }
    }

    async fn fetch_keys(&self) -> Result<Vec<Jwk>, String> {
        #[derive(serde::Deserialize)]
        struct OpenId {
            jwks_uri: String,
        }
        let doc = self.get(&self.config.openid_configuration()).await?;
        let openid: OpenId = serde_json::from_slice(&doc)
            .map_err(|_| "the OpenID configuration has no jwks_uri".to_string())?;
        let same_scheme = openid.jwks_uri.starts_with("https://")
            || (self.config.authority.starts_with("http://")
                && openid.jwks_uri.starts_with(&self.config.authority));
        if !same_scheme {
            return Err("the OpenID configuration's jwks_uri is not https".into());
        }
        jwt::parse_jwks(&self.get(&openid.jwks_uri).await?)
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let send = self.http.get(url).timeout(self.timeout).send();
        let response = send
            .await
            .map_err(|e| format!("GET {url}: {}", e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status().as_u16()));
        }
        if response.content_length().unwrap_or(0) > MAX_DOCUMENT as u64 {
            return Err(format!("GET {url}: the document is too large"));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: {}", e.without_url()))?;
        if body.len() > MAX_DOCUMENT {
            return Err(format!("GET {url}: the document is too large"));
        }
        Ok(body.to_vec())
    }
}

fn kid_excerpt(kid: &str) -> String {
    kid.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(48)
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
