//! The built-in simulator: Entra ID and one Dataverse org on a loopback port, so tests and the
//! `demo` command run without Azure.
//!
//! One base URL serves both roles: `POST {base}/{tenant}/oauth2/v2.0/token` (Entra, see
//! `entra`) and `{base}/api/data/v9.2/...` (Dataverse: `dataverse` authenticates and throttles,
//! `dispatch` routes one request, `path`, `query` and `prefer` parse it, `records`, `property`,
//! `actions` and `definitions` serve it, `batch` and `multipart` run and answer `$batch`,
//! `filter` evaluates simple `$filter`s, `fetch` simple FetchXML, `expand` renders rows with
//! their lookups expanded and `annotate` adds the annotations `Prefer` asks for, `stream`
//! generates the large `annotations` body). Rows live in memory per simulator (`data`, seeded by
//! `seed`).
//!
//! Wherever Dataverse would return data a gateway must account for, the simulator returns it
//! too, so that an end-to-end test can see a leak: FetchXML without `<attribute>` returns every
//! column; a parameter alias whose value is a column (`@p=statuscode`) is that column in
//! `$filter`; lookups carry the related row's primary name (`FormattedValue`), table and
//! navigation property when `Prefer: odata.include-annotations` asks, on reads, expansions and
//! `return=representation` writes.
//!
//! What the simulator does NOT do: `$orderby`, collection-valued `$expand`, `$count`, `$apply`,
//! FetchXML `link-entity` and `order`, `sql=`, functions other than `WhoAmI`/`RetrieveVersion`,
//! unbound actions, `$ref`, collection-valued navigation, multi-hop paths, and `$filter`s other
//! than `and`-joined `eq`/`ne` comparisons of a column with a literal and
//! `contains`/`startswith`/`endswith` (comparisons on columns the simulated tables lack, such as
//! `statecode`, are dropped); ignored query options are accepted, unknown paths answer as
//! Dataverse does for something unknown.
//! On the Entra side, client assertions and federated tokens are verified in `assertion`, the
//! managed identity endpoints live in `imds`, and the registered certificates, federated
//! credentials and token-endpoint faults in `credentials`. A simulated Azure Key Vault answers
//! on the same origin (`vault`).
//!
//! Invariants: "now" is read only from the injected [`Clock`] (token expiry, Entra timestamps);
//! no request can panic the server; every Dataverse request is recorded before it is checked (a
//! `$batch` as one record, not one per part); the `annotations` collection body is generated
//! lazily and never held in memory whole, except as a `$batch` part (a batch answer is built in
//! memory).
//! Dropping a [`Simulator`] or calling [`Simulator::shutdown`] stops accepting connections and
//! lets open ones finish for up to five seconds.

mod actions;
mod annotate;
mod assertion;
mod attributes;
mod batch;
mod credentials;
mod data;
mod dataverse;
mod definitions;
mod dispatch;
mod entra;
mod expand;
mod fetch;
mod filter;
mod form;
mod imds;
mod multipart;
mod path;
mod payload;
mod prefer;
mod property;
mod query;
mod records;
mod response;
mod schema;
mod seed;
mod state;
mod stream;
mod vault;

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::clock::{Clock, SystemClock};
pub use credentials::{FEDERATED_AUDIENCE, IDENTITY_HEADER, SimCertificate, SimFederated};
pub use seed::{BUSINESS_UNIT_ID, ORGANIZATION_ID};
use state::{Shared, lock};
pub use vault::{SimCertFormat, SimVaultRequest, SimVaultRole, VAULT_RESOURCE};

pub const DEFAULT_TENANT_ID: &str = "00000000-0000-0000-0000-0000000000aa";
pub const DEFAULT_CLIENT_ID: &str = "00000000-0000-0000-0000-0000000000bb";
pub const DEFAULT_SECRET: &str = "sim-secret";

/// Largest Dataverse request body accepted (bigger ones get 413).
const MAX_API_BODY: usize = 32 * 1024 * 1024;
/// Largest token request body accepted.
const MAX_TOKEN_BODY: usize = 64 * 1024;
/// How long shutdown waits for open connections.
const DRAIN: Duration = Duration::from_secs(5);

/// How a simulator behaves. `Default` gives one valid app and the standard readable tables.
#[derive(Clone)]
pub struct SimConfig {
    /// Entra app registrations known to the simulator.
    pub apps: Vec<SimApp>,
    /// `expires_in` of issued tokens.
    pub token_lifetime: Duration,
    /// When set, token responses also carry `refresh_in`.
    pub refresh_in: Option<Duration>,
    /// Entity sets the simulated security role may read and write; others get 403.
    pub readable_tables: Vec<String>,
    /// Approximate size of the streamed `annotations` collection body.
    pub large_response_bytes: u64,
    /// The only source of "now".
    pub clock: Arc<dyn Clock>,
    /// Certificates registered on the apps (see `credentials`).
    pub certificates: Vec<SimCertificate>,
    /// Federated credentials (workload identity) of the apps.
    pub federated: Vec<SimFederated>,
    /// The app the managed identity endpoints issue tokens for (`None`: no managed identity).
    pub managed_identity_app: Option<usize>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            apps: vec![SimApp {
                tenant_id: DEFAULT_TENANT_ID.into(),
                client_id: DEFAULT_CLIENT_ID.into(),
                secret: DEFAULT_SECRET.into(),
                secret_expired: false,
            }],
            token_lifetime: entra::default_lifetime(),
            refresh_in: None,
            readable_tables: [
                "contacts",
                "accounts",
                "leads",
                "opportunities",
                "annotations",
            ]
            .map(String::from)
            .to_vec(),
            large_response_bytes: 1024 * 1024,
            clock: Arc::new(SystemClock),
            certificates: Vec::new(),
            federated: Vec::new(),
            managed_identity_app: Some(0),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("apps", &self.apps)
            .field("token_lifetime", &self.token_lifetime)
            .field("refresh_in", &self.refresh_in)
            .field("readable_tables", &self.readable_tables)
            .field("large_response_bytes", &self.large_response_bytes)
            .finish_non_exhaustive()
    }
}

/// An Entra app registration with one client secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SimApp {
    pub tenant_id: String,
    pub client_id: String,
    pub secret: String,
    /// The secret is known but expired (AADSTS7000222).
    pub secret_expired: bool,
}

impl std::fmt::Debug for SimApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimApp")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("secret", &"***")
            .field("secret_expired", &self.secret_expired)
            .finish()
    }
}

/// A request that reached the Dataverse side (`/api/...`), as received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: http::Method,
    /// Path and query, as received.
    pub uri: String,
    pub headers: http::HeaderMap,
    /// The first 1 MiB of the body (empty when the body was over the size limit).
    pub body: Bytes,
}

/// A running simulator. Dropping it or calling [`Simulator::shutdown`] stops it.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, format!("http://{addr}")));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, Arc::clone(&shared), stopped));
        tracing::debug!(%addr, "simulator started");
        Ok(Simulator {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: both the Entra authority and the org URL.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The token endpoint of `tenant`.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.shared.base_url)
    }

    /// The scope a client must ask for: `{base_url}/.default`.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.shared.base_url)
    }

    /// The application user (systemuserid) that app number `index` of the config acts as.
    pub fn app_user_id(&self, index: usize) -> String {
        seed::app_user_id(index)
    }

    /// POSTs to the token endpoint so far, whatever their outcome.
    pub fn token_requests(&self) -> usize {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// Every request to the Dataverse side, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        self.shared.clear_recorded();
    }

    /// Completes once at least `count` Dataverse requests have been recorded (since the last
    /// [`Simulator::clear_requests`]). Never times out: callers bound the wait.
    pub async fn requests_reached(&self, count: usize) {
        let mut recorded = self.shared.recorded.subscribe();
        // `wait_for` fails only when the sender is gone, and `self.shared` owns it.
        let _ = recorded.wait_for(|n| *n >= count).await;
    }

    /// Holds every Dataverse response back (after the request is recorded and counted in
    /// flight) until [`Simulator::release_responses`].
    pub fn hold_responses(&self) {
        self.shared.gate.send_replace(false);
    }

    /// Lets held and later Dataverse responses go.
    pub fn release_responses(&self) {
        self.shared.gate.send_replace(true);
    }

    /// The next `count` authenticated Dataverse requests get 429 with `Retry-After`.
    pub fn throttle_next(&self, count: usize, retry_after_secs: u64) {
        *lock(&self.shared.throttle) = (count, retry_after_secs);
    }

    /// The most Dataverse requests processed at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Delay before each Dataverse response (real time; zero by default).
    pub fn set_response_delay(&self, delay: Duration) {
        *lock(&self.shared.delay) = delay;
    }

    /// Stops accepting, lets open connections finish (up to five seconds), and returns.
    pub async fn shutdown(mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        // Dropping the sender wakes the server loop, which then drains in the background.
        self.stop.take();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&shared);
                    let service = service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(route(shared, req).await) }
                    });
                    let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let connection = graceful.watch(connection);
                    connections.spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(error = %e, "simulator connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("simulator connections still open after drain; aborting them");
    }
    connections.abort_all();
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Response<response::SimBody> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    if path == "/api" || path.starts_with("/api/") {
        let body = read_body(body, MAX_API_BODY).await;
        return dataverse::handle(shared, parts, body).await;
    }
    if vault::is_vault_path(path) {
        let body = read_body(body, MAX_TOKEN_BODY).await.unwrap_or_default();
        return vault::route(&shared, &parts, &body);
    }
    if let Some(answer) = imds::route(&shared, &parts) {
        return answer;
    }
    if let Some(tenant) = token_tenant(path) {
        if parts.method != http::Method::POST {
            return entra::wrong_method(&shared, &parts.method);
        }
        shared.token_requests.fetch_add(1, Ordering::SeqCst);
        let body = read_body(body, MAX_TOKEN_BODY).await.unwrap_or_default();
        return entra::token(&shared, tenant, &body);
    }
    response::segment_not_found(path.trim_start_matches('/'))
}

/// The tenant of a token endpoint path `/{tenant}/oauth2/v2.0/token`.
fn token_tenant(path: &str) -> Option<&str> {
    let tenant = path.strip_prefix('/')?.strip_suffix("/oauth2/v2.0/token")?;
    (!tenant.is_empty() && !tenant.contains('/')).then_some(tenant)
}

/// The whole body, or `None` when it is over `limit` or could not be read.
async fn read_body(body: Incoming, limit: usize) -> Option<Bytes> {
    Limited::new(body, limit)
        .collect()
        .await
        .ok()
        .map(|collected| collected.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_paths() {
        assert_eq!(token_tenant("/abc/oauth2/v2.0/token"), Some("abc"));
        assert_eq!(token_tenant("//oauth2/v2.0/token"), None);
        assert_eq!(token_tenant("/a/b/oauth2/v2.0/token"), None);
        assert_eq!(token_tenant("/abc/oauth2/token"), None);
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!("{:?}", SimConfig::default());
        assert!(!shown.contains(DEFAULT_SECRET), "{shown}");
    }
}
