//! The simulator's credential registry and the knobs tests turn: certificates registered on the
//! simulated apps, federated credentials (the simulator is also the OIDC issuer of the
//! federated tokens it accepts), the managed identity, and token-endpoint faults (an outage, a
//! plain-text 429, a busy IMDS, revoked tokens).
//!
//! Invariants: registrations and faults change only through [`Simulator`] methods, under short
//! non-async locks; the federation signing key is random per simulator and never leaves it.

use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use http::{Response, StatusCode};

use super::response::{SimBody, set_header, with_body};
use super::state::{Shared, lock};
use super::{SimApp, SimConfig, Simulator};

/// The audience of federated tokens (what Entra ID expects from workload identity).
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The `X-IDENTITY-HEADER` value the simulated App Service expects.
pub const IDENTITY_HEADER: &str = "sim-identity-header";

/// A certificate registered on an app ("Certificates & secrets" in the portal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimCertificate {
    /// Index of the app in `SimConfig::apps`.
    pub app: usize,
    /// The certificate, DER (public; no key).
    pub der: Vec<u8>,
}

/// A federated credential: tokens from this simulator's issuer with this subject act as `app`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimFederated {
    pub app: usize,
    pub subject: String,
}

/// Token-endpoint faults that tests switch on.
#[derive(Default)]
struct Faults {
    /// Every token request gets 503 (an outage).
    down: bool,
    /// The next N token requests get a plain-text 429 with this Retry-After.
    throttled: (usize, u64),
    /// The next N managed identity requests get 503.
    imds_busy: usize,
}

/// Everything about credentials one simulator keeps.
pub struct CredState {
    pub certificates: Mutex<Vec<SimCertificate>>,
    pub federated: Mutex<Vec<SimFederated>>,
    pub managed_identity_app: Option<usize>,
    /// Client secrets replaced at run time (`set_secret`), by app index.
    secrets: Mutex<Vec<(usize, String)>>,
    /// HMAC key signing the federated tokens this simulator issues.
    pub federation_key: Vec<u8>,
    faults: Mutex<Faults>,
}

impl CredState {
    pub fn new(config: &SimConfig) -> Self {
        let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        CredState {
            certificates: Mutex::new(config.certificates.clone()),
            federated: Mutex::new(config.federated.clone()),
            managed_identity_app: config.managed_identity_app,
            secrets: Mutex::new(Vec::new()),
            federation_key: key,
            faults: Mutex::new(Faults::default()),
        }
    }
}

/// The apps with their current client secrets.
pub fn apps_now(shared: &Shared) -> Vec<SimApp> {
    let mut apps = shared.apps.clone();
    for (app, secret) in lock(&shared.creds.secrets).iter() {
        if let Some(a) = apps.get_mut(*app) {
            a.secret = secret.clone();
        }
    }
    apps
}

/// The issuer of this simulator's federated tokens.
pub fn issuer(shared: &Shared) -> String {
    format!("{}/oidc", shared.base_url)
}

/// Wall-clock seconds on the simulator's clock.
pub fn wall_secs(shared: &Shared) -> u64 {
    shared
        .clock
        .wall()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A 503 (outage) or plain-text 429 answer when a fault is switched on.
pub fn token_endpoint_fault(shared: &Shared) -> Option<Response<SimBody>> {
    let mut faults = lock(&shared.creds.faults);
    if faults.down {
        let text = "Service Unavailable";
        return Some(with_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            text,
        ));
    }
    if faults.throttled.0 > 0 {
        faults.throttled.0 -= 1;
        let mut r = with_body(
            StatusCode::TOO_MANY_REQUESTS,
            "text/plain",
            "Too many requests",
        );
        set_header(&mut r, "retry-after", &faults.throttled.1.to_string());
        return Some(r);
    }
    None
}

/// Consumes one busy slot of the managed identity endpoint.
pub fn imds_busy(shared: &Shared) -> bool {
    let mut faults = lock(&shared.creds.faults);
    if faults.imds_busy == 0 {
        return false;
    }
    faults.imds_busy -= 1;
    true
}

impl Simulator {
    /// Registers a certificate (DER) on app number `app`.
    pub fn register_certificate(&self, app: usize, der: &[u8]) {
        lock(&self.shared.creds.certificates).push(SimCertificate {
            app,
            der: der.to_vec(),
        });
    }

    /// Removes every certificate of app number `app`.
    pub fn remove_certificates(&self, app: usize) {
        lock(&self.shared.creds.certificates).retain(|c| c.app != app);
    }

    /// Replaces app number `app`'s client secret (the old one stops working).
    pub fn set_secret(&self, app: usize, secret: &str) {
        lock(&self.shared.creds.secrets).push((app, secret.to_string()));
    }

    /// While `down`, every token request gets 503.
    pub fn set_token_endpoint_down(&self, down: bool) {
        lock(&self.shared.creds.faults).down = down;
    }

    /// The next `count` token requests get a plain-text 429 with `Retry-After`.
    pub fn throttle_token_endpoint(&self, count: usize, retry_after_secs: u64) {
        lock(&self.shared.creds.faults).throttled = (count, retry_after_secs);
    }

    /// The next `count` managed identity requests get 503 (IMDS warming up).
    pub fn make_imds_busy(&self, count: usize) {
        lock(&self.shared.creds.faults).imds_busy = count;
    }

    /// Forgets every issued token: Dataverse answers 401 to them from now on.
    pub fn revoke_tokens(&self) {
        lock(&self.shared.tokens).clear();
    }

    /// The IMDS token endpoint (for `managed_identity.endpoint`).
    pub fn imds_url(&self) -> String {
        format!("{}/metadata/identity/oauth2/token", self.shared.base_url)
    }

    /// The App Service identity endpoint (for `IDENTITY_ENDPOINT`).
    pub fn app_service_url(&self) -> String {
        format!("{}/msi/token", self.shared.base_url)
    }

    /// A federated token for `subject` from this simulator's issuer, valid for `lifetime`
    /// (what a Kubernetes service account token file holds).
    pub fn federated_token(&self, subject: &str, lifetime: Duration) -> String {
        let now = wall_secs(&self.shared);
        let claims = serde_json::json!({
            "iss": issuer(&self.shared), "sub": subject, "aud": [FEDERATED_AUDIENCE],
            "iat": now, "nbf": now, "exp": now + lifetime.as_secs(),
        });
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        jsonwebtoken::EncodingKey::from_secret(&self.shared.creds.federation_key)
            .and_then(|key| jsonwebtoken::encode(&header, &claims, &key))
            .unwrap_or_default()
    }
}
