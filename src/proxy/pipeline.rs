//! The request pipeline: route → classify and decide → limit → token → forward → rewrite → log.
//!
//! Each phase is a function over one [`Exchange`] (the per-request context). Errors from any
//! phase are [`GatewayError`]s and become responses in exactly one place, [`respond_error`].
//! Internal client keys ([`clients`]) are checked before routing; the last phase, counting and
//! auditing, runs when the response body ends ([`observe`]).
//! Invariant: nothing reaches Dataverse unless the policy allowed it, and what reaches it is the
//! request the policy saw (same method, same raw path and query, plus at most an added `$select`).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use hyper::body::Incoming;

use crate::config::secret::Secret;
use crate::error::GatewayError;
use crate::identity::clients;
use crate::policy::classify::{self, Urls};
use crate::policy::decision::{Decision, Denial};
use crate::policy::headers;
use crate::policy::inspect;
use crate::proxy::agent_body::{AgentBody, McpTool};
use crate::proxy::body::{self, Answer, BoxBody, Streamed};
use crate::proxy::gateway::{Gateway, Snapshot, TenantOrigin, TenantRuntime};
use crate::proxy::org::Lease;
use crate::proxy::rewrite::{BodyRewriter, Encoding, JsonTarget, RewriteKind, rewrite_url};

mod agents;
pub mod observe;
mod reading;
use reading::{Reading, body_timeout};

// Header names, built at compile time.
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_MS_CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-client-request-id");
/// A response header that may hold the org's URL (with `Location`).
static ODATA_ENTITY_ID: HeaderName = HeaderName::from_static("odata-entityid");

/// What one request has gathered on its way through the phases.
pub struct Exchange {
    pub request_id: HeaderValue,
    pub method: Method,
    /// The request target as the agent sent it (the audit log shows only the query's option
    /// names unless told otherwise).
    pub uri: Uri,
    pub tenant: Option<Arc<TenantRuntime>>,
    /// The internal client, when client keys are configured.
    pub client: Option<String>,
    pub decision: Option<Arc<Decision>>,
    /// The error the gateway answered with, if it did.
    pub error: Option<GatewayError>,
    pub upstream_status: Option<u16>,
    pub upstream_latency: Option<Duration>,
    /// Request body bytes forwarded so far (`None`: no body was forwarded, nothing to count).
    pub bytes_in: Option<Arc<AtomicU64>>,
    /// The tenant's rate-limit state, for the `RateLimit` headers.
    pub rate: Option<crate::limit::RateState>,
    /// A throttled request was retried by the gateway.
    pub retried: bool,
    /// The client's own in-flight slot (its `max_concurrent`), held until the response ends.
    pub client_slot: Option<crate::limit::Slot>,
    /// Marks the agent's connection busy until the request is finished.
    pub connection: Option<crate::proxy::activity::RequestGuard>,
    /// The MCP tool whose call built this request (`None`: it came in as a Web API request).
    pub mcp_tool: Option<McpTool>,
}

impl Gateway {
    /// Serves one agent request. Never fails: errors become Dataverse-shaped responses.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<BoxBody> {
        self.handle_on(req, None).await
    }

    /// [`Gateway::handle`] for a request of a connection whose activity `connection` tracks.
    pub async fn handle_on(
        self: Arc<Self>,
        req: Request<Incoming>,
        connection: Option<crate::proxy::activity::RequestGuard>,
    ) -> Response<BoxBody> {
        self.handle_agent(req.map(AgentBody::Wire), connection)
            .await
    }

    /// [`Gateway::handle_on`] for a request off the wire or built in-process (the MCP front
    /// door): the same phases either way.
    pub async fn handle_agent(
        self: Arc<Self>,
        req: Request<AgentBody>,
        connection: Option<crate::proxy::activity::RequestGuard>,
    ) -> Response<BoxBody> {
        let started = Instant::now();
        let in_flight = observe::InFlight::enter(&self);
        let request_id = headers::agent_request_id(req.headers()).unwrap_or_else(new_request_id);
        let mut ex = Exchange {
            request_id: request_id.clone(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            tenant: None,
            client: None,
            decision: None,
            error: None,
            upstream_status: None,
            upstream_latency: None,
            bytes_in: None,
            rate: None,
            retried: false,
            client_slot: None,
            connection,
            mcp_tool: req.extensions().get::<McpTool>().cloned(),
        };
        let snapshot = self.snapshot();
        let mut response = match proxy(&self, &snapshot, req, &mut ex).await {
            Ok(r) => r.map(Answer::Streamed),
            Err(e) => {
                let r = respond_error(&e).map(Answer::Made);
                ex.error = Some(e);
                r
            }
        };
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), request_id);
        if let Some(rate) = &ex.rate {
            rate.add_headers(response.headers_mut());
        }
        observe::track(self, ex, response, started, in_flight)
    }
}

/// A random (version 4) UUID, hyphenated, lowercase. The bits come from a per-thread splitmix64
/// sequence seeded once from the OS: ids must be unique, not secret, and a system call per
/// request is not free. Ids are written [`IDS_PER_BLOCK`] at a time into one shared block and
/// handed out as slices of it: the copies for the upstream request, the response and the audit
/// record are reference counts, and a request costs no allocation of its own (a block of 2.3 KB
/// lives while one of its ids does).
pub(crate) fn new_request_id() -> HeaderValue {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(uuid::Uuid::new_v4().as_u64_pair().0);
        static BLOCK: RefCell<(Bytes, usize)> = const { RefCell::new((Bytes::new(), 0)) };
    }
    let id = BLOCK.with_borrow_mut(|(block, next)| {
        if *next >= block.len() {
            let mut text = Vec::with_capacity(IDS_PER_BLOCK * ID_LEN);
            STATE.with(|s| {
                for _ in 0..IDS_PER_BLOCK {
                    write_uuid_v4(splitmix64(s), splitmix64(s), &mut text);
                }
            });
            *block = Bytes::from(text);
            *next = 0;
        }
        let id = block.slice(*next..*next + ID_LEN);
        *next += ID_LEN;
        id
    });
    HeaderValue::from_maybe_shared(id).unwrap_or(HeaderValue::from_static("unknown"))
}

/// Request ids written at once by [`new_request_id`].
const IDS_PER_BLOCK: usize = 64;
/// `8-4-4-4-12` hex digits.
const ID_LEN: usize = 36;

/// Appends the version 4 UUID made of the random bits `a` and `b` (RFC 9562: version 4 in the
/// top four bits of byte 6, the variant `10` in the top two of byte 8), hyphenated, lowercase.
fn write_uuid_v4(a: u64, b: u64, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    // Where each byte's two digits go; the hyphens are already in place.
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut text = [b'-'; ID_LEN];
    for (&at, byte) in AT.iter().zip(bytes) {
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 0x0f)];
    }
    out.extend_from_slice(&text);
}

fn splitmix64(state: &Cell<u64>) -> u64 {
    let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
    state.set(s);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The single place an error becomes a response.
pub fn respond_error(e: &GatewayError) -> Response<BoxBody> {
    let mut r = Response::new(body::full(e.body()));
    *r.status_mut() = e.status();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert("odata-version", HeaderValue::from_static("4.0"));
    if let Some(s) = e.retry_after_secs() {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

async fn proxy(
    gateway: &Gateway,
    snapshot: &Snapshot,
    req: Request<AgentBody>,
    ex: &mut Exchange,
) -> Result<Response<Streamed>, GatewayError> {
    let agents = snapshot.agents.as_deref();
    let client = clients::authenticate(&snapshot.config.clients, agents, req.headers()).await?;
    ex.client = client.map(|c| c.name.clone());
    let host = request_host(&req)?;
    let uri = req.uri().clone();
    let routed = snapshot
        .routes
        .route(uri.path(), host.as_deref())
        .map_err(GatewayError::NotFound)?;
    let tenant = &snapshot.tenants[routed.tenant];
    ex.tenant = Some(Arc::clone(tenant));
    clients::authorize(client, &tenant.config.name)?;
    let dv = &tenant.config.dataverse;
    if routed.api_version != dv.api_version {
        let msg = format!(
            "tenant {} serves Dataverse Web API {}, not `{}`",
            tenant.config.name, dv.api_version, routed.api_version
        );
        return Err(GatewayError::NotFound(msg));
    }
    agents::limit(tenant, client, ex).await?;
    limit_rate(tenant, ex).await?;
    headers::check_request(req.headers()).map_err(GatewayError::BadRequest)?;
    let origin = tenant_origin(snapshot, tenant, host.as_deref())?;
    let urls = &origin.urls;
    let which = if routed.prefixed { 0 } else { 1 };
    let base = &urls.gateway[which];
    let json = &origin.json[which];
    let (mut parts, incoming) = req.into_parts();
    let reading = Reading {
        gateway,
        tenant,
        timeouts: &snapshot.config.timeouts,
    };
    let (body, slot, charge) = reading
        .read_or_stream(incoming, &parts, routed.resource)
        .await?;
    let meta = tenant.metadata();
    let request = classify::Request {
        method: &parts.method,
        path: routed.resource,
        query: uri.query(),
        headers: &parts.headers,
        body: body.buffered(),
    };
    let tenant_view = |policy| inspect::Tenant {
        policy,
        metadata: meta.as_deref(),
        urls,
    };
    let narrowed = client.and_then(|c| c.policy_for(&tenant.config.name));
    let policy = narrowed.map_or(&tenant.config.policy, |p| &**p);
    let inspected = inspect::inspect(&tenant_view(policy), &request);
    let decision = Arc::new(inspected.decision);
    ex.decision = Some(Arc::clone(&decision));
    if let (Some(c), Some(_), Some(Denial::Policy)) = (client, narrowed, decision.denial) {
        // Which layer refused: the tenant's policy, or only the client's narrower one.
        let tenant_allows = inspect::inspect(&tenant_view(&tenant.config.policy), &request)
            .decision
            .allowed();
        if tenant_allows {
            return Err(agents::client_denied(
                &c.name,
                &tenant.config.name,
                &decision.reason(),
            ));
        }
    }
    enforce(&decision, &tenant.config.name)?;
    let act_as = client.and_then(|c| c.act_as(&tenant.config.name));
    let body = match (inspected.body, act_as) {
        (Some(replaced), Some(id)) => {
            Outgoing::Buffered(agents::batch_as(&parts.headers, &replaced, id)?)
        }
        (Some(replaced), None) => Outgoing::Buffered(replaced),
        (None, _) => body,
    };
    let forward = Forward {
        snapshot,
        tenant,
        parts: &parts,
        resource: routed.resource,
        query: uri.query(),
        decision: &decision,
        act_as: act_as.and_then(|id| HeaderValue::from_str(id).ok()),
    };
    let sent = forward.send_with_limits(body, slot, ex).await;
    // The buffered body has been written upstream (or given up): its bytes leave the budget.
    drop(charge);
    let (response, lease, slot, arrived) = sent?;
    let idle = (snapshot.config.timeouts.upstream_body_idle, arrived);
    let answer = respond(response, &dv.url, base, json, lease, Some(slot), idle);
    spare_map::give(std::mem::take(&mut parts.headers));
    answer
}

/// The header maps of the next upstream requests: maps of agent requests this thread has
/// finished with, emptied. The HTTP layer recycles maps the same way (the map a request was
/// written from receives the response's headers, and the map of a response written receives
/// the connection's next request), so one map per request comes back here and an upstream
/// request does not allocate its own (at its size, past the allocator's per-thread cache:
/// ~0.5 k instructions per request to allocate and free).
mod spare_map {
    use http::HeaderMap;

    use crate::spare::Spares;

    /// Room for the copied agent headers and the few the gateway adds, without growing.
    const CAPACITY: usize = 16;
    /// Spares kept per thread: about the requests one thread finishes in one turn of its
    /// event loop (they come back in bursts). At most ~3 KB each.
    const KEEP: usize = 32;

    thread_local! {
        static SPARES: Spares<HeaderMap> = const { Spares::new(KEEP) };
    }

    /// An empty map with room for at least [`CAPACITY`] headers.
    pub(super) fn take() -> HeaderMap {
        Spares::take(&SPARES).unwrap_or_else(|| HeaderMap::with_capacity(CAPACITY))
    }

    /// Keeps `map`, emptied, for a later [`take`] when it has room for [`CAPACITY`] headers
    /// and not much more (one huge request does not pin its map for the thread's life), and
    /// fewer than [`KEEP`] are kept.
    pub(super) fn give(mut map: HeaderMap) {
        if !(CAPACITY..=4 * CAPACITY).contains(&map.capacity()) {
            return;
        }
        map.clear();
        Spares::give(&SPARES, map);
    }

    #[cfg(test)]
    mod tests {
        use http::HeaderValue;
        use http::header::AUTHORIZATION;

        use super::*;

        fn spares() -> usize {
            Spares::len(&SPARES)
        }

        #[test]
        fn a_map_given_back_comes_out_empty_with_its_room() {
            let mut map = take();
            assert!(map.capacity() >= CAPACITY);
            map.insert(
                AUTHORIZATION,
                HeaderValue::from_static("Bearer agent-secret"),
            );
            map.append("x-custom", HeaderValue::from_static("1"));
            let room = map.capacity();
            give(map);
            assert_eq!(spares(), 1);
            let again = take();
            assert!(again.is_empty(), "nothing of the earlier request is left");
            assert_eq!(again.capacity(), room, "the same allocation, kept");
            assert_eq!(spares(), 0);
        }

        #[test]
        fn small_huge_and_surplus_maps_are_not_kept() {
            give(HeaderMap::new());
            give(HeaderMap::with_capacity(CAPACITY * 16));
            assert_eq!(spares(), 0);
            for _ in 0..KEEP + 5 {
                give(HeaderMap::with_capacity(CAPACITY));
            }
            assert_eq!(spares(), KEEP);
            for _ in 0..KEEP + 1 {
                assert!(take().capacity() >= CAPACITY);
            }
            assert_eq!(spares(), 0);
        }
    }
}

/// The rate phase: admits the request or answers 429; either way the response carries the
/// tenant's rate-limit headers.
async fn limit_rate(tenant: &TenantRuntime, ex: &mut Exchange) -> Result<(), GatewayError> {
    match tenant.limits.check_rate().await {
        Ok(state) => {
            ex.rate = agents::tighter(ex.rate.take(), state);
            Ok(())
        }
        Err(e) => {
            let wait = Duration::from_secs(e.retry_after_secs().unwrap_or(1));
            ex.rate = tenant.limits.rate_headers(wait);
            Err(e)
        }
    }
}

/// A request body on its way upstream.
enum Outgoing {
    /// The agent sent none (known from the request head).
    Empty,
    Buffered(Bytes),
    /// Streamed, with the flag its [`body::TimedRequest`] sets when the agent was too slow.
    Streamed(BoxBody, Arc<AtomicBool>),
}

impl Outgoing {
    fn buffered(&self) -> Option<&[u8]> {
        match self {
            Outgoing::Buffered(b) => Some(b),
            Outgoing::Empty | Outgoing::Streamed(..) => None,
        }
    }
}

fn too_large(limit: u64) -> GatewayError {
    GatewayError::PayloadTooLarge(format!(
        "the request body is over the {limit}-byte limit of this tenant"
    ))
}

/// Everything needed to send (and, when throttled, re-send) one request upstream.
struct Forward<'a> {
    snapshot: &'a Snapshot,
    tenant: &'a TenantRuntime,
    parts: &'a http::request::Parts,
    resource: &'a str,
    query: Option<&'a str>,
    decision: &'a Decision,
    /// `CallerObjectId` for a client that acts as a Dataverse user.
    act_as: Option<HeaderValue>,
}

impl Forward<'_> {
    /// Cooldown, concurrency slot, token, send; a throttled GET/HEAD is retried once after its
    /// `Retry-After` when the tenant's `retry_throttled` allows it.
    /// `early`: the slot taken before a buffered body was read (used for the first attempt).
    async fn send_with_limits(
        &self,
        body: Outgoing,
        mut early: Option<crate::limit::Slot>,
        ex: &mut Exchange,
    ) -> Result<(Response<Incoming>, Lease, crate::limit::Slot, Instant), GatewayError> {
        let limits = &self.tenant.limits;
        let bodyless = match &body {
            Outgoing::Empty => true,
            Outgoing::Buffered(b) => b.is_empty(),
            Outgoing::Streamed(s, _) => hyper::body::Body::is_end_stream(s),
        };
        let timed_out = match &body {
            Outgoing::Streamed(_, flag) => Some(Arc::clone(flag)),
            Outgoing::Empty | Outgoing::Buffered(_) => None,
        };
        let mut body = Some(body);
        let mut reauthorized = false;
        loop {
            let slot = match early.take() {
                Some(slot) => slot,
                None => {
                    limits.pass_cooldown(&self.parts.method).await?;
                    limits.acquire().await?
                }
            };
            let token = self
                .tenant
                .token
                .token_within(Some(self.snapshot.config.timeouts.token_wait))
                .await
                .map_err(|e| GatewayError::TokenUnavailable(e.to_string()))?;
            let outgoing = match body.take() {
                Some(Outgoing::Empty) | None => body::empty(),
                Some(Outgoing::Buffered(b)) => body::full(b),
                Some(Outgoing::Streamed(s, _)) => s,
            };
            let req = upstream_request(
                self.tenant,
                self.parts,
                outgoing,
                self.resource,
                self.query,
                self.decision,
                &token,
                &ex.request_id,
            )?;
            let req = agents::with_caller(req, self.act_as.as_ref());
            // A body with nothing to count (a GET) is not wrapped: one box less per request.
            let req = match hyper::body::Body::is_end_stream(req.body()) {
                true => req,
                false => {
                    let counter = ex.bytes_in.get_or_insert_with(Arc::default);
                    let counter = Arc::clone(counter);
                    req.map(|b| observe::count_body(b, counter))
                }
            };
            let sent = Instant::now();
            let (response, lease) = match send(self.snapshot, self.tenant, req, sent).await {
                Ok(r) => r,
                // The agent's streamed body was too slow: that is what broke the request.
                Err(_)
                    if timed_out
                        .as_ref()
                        .is_some_and(|f| f.load(Ordering::Acquire)) =>
                {
                    return Err(body_timeout(&self.snapshot.config.timeouts));
                }
                Err(e) => return Err(e),
            };
            // One clock read for the upstream latency and the start of the body's idle watch.
            let arrived = Instant::now();
            ex.upstream_latency = Some(arrived.saturating_duration_since(sent));
            ex.upstream_status = Some(response.status().as_u16());
            if response.status() == http::StatusCode::UNAUTHORIZED && !reauthorized {
                // Dataverse refused the cached token (revoked, reissued): drop it, and send a
                // request without a body once more with a fresh one.
                self.tenant.token.reject(&token);
                if bodyless {
                    reauthorized = true;
                    body = None;
                    drop(slot);
                    continue;
                }
            }
            if response.status() != http::StatusCode::TOO_MANY_REQUESTS {
                return Ok((response, lease, slot, arrived));
            }
            let retry_after = crate::limit::upstream_retry_after(response.headers());
            limits.throttled(retry_after).await;
            let replayable =
                body.is_none() && matches!(self.parts.method, Method::GET | Method::HEAD);
            if !(replayable && limits.may_retry(&self.parts.method, retry_after)) || ex.retried {
                return Ok((response, lease, slot, arrived));
            }
            ex.retried = true;
            drop(slot);
        }
    }
}

fn enforce(decision: &Decision, tenant: &str) -> Result<(), GatewayError> {
    match decision.denial {
        None => Ok(()),
        Some(Denial::Malformed) => Err(GatewayError::BadRequest(decision.reason().into_owned())),
        Some(Denial::Policy) => Err(GatewayError::PolicyDenied(format!(
            "denied for tenant {tenant}: {}",
            decision.reason()
        ))),
    }
}

/// The Host the agent addressed (or the request target's authority), lowercased. It is echoed
/// into rewritten URLs, so only host name, IP literal and port characters are accepted. A
/// request with more than one `Host` is refused (RFC 9112 section 3.2): a proxy in front that
/// read the other one would disagree with the gateway about the tenant and the URLs it writes.
fn request_host(req: &Request<AgentBody>) -> Result<Option<Cow<'_, str>>, GatewayError> {
    let invalid = || GatewayError::BadRequest("invalid Host header".into());
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let (host, another) = (hosts.next(), hosts.next());
    if another.is_some() {
        return Err(GatewayError::BadRequest("more than one Host header".into()));
    }
    let raw = match host {
        Some(v) => v.as_bytes(),
        None => match req.uri().authority() {
            Some(a) => a.as_str().as_bytes(),
            None => return Ok(None),
        },
    };
    valid_host(raw).ok_or_else(invalid).map(Some)
}

/// What a byte may be in a Host: 0 not at all, 1 as it is, 2 an upper-case letter.
static HOST_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = match c {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b':' | b'[' | b']' => 1,
            b'A'..=b'Z' => 2,
            _ => 0,
        };
        b += 1;
    }
    t
};

/// `raw` as a host name, IP literal and port, lowercased; `None` for anything else. One pass.
fn valid_host(raw: &[u8]) -> Option<Cow<'_, str>> {
    let mut classes = 1u8;
    for &b in raw {
        let class = HOST_BYTES[usize::from(b)];
        if class == 0 {
            return None;
        }
        classes |= class;
    }
    // Every byte accepted is ASCII.
    let text = std::str::from_utf8(raw).ok().filter(|t| !t.is_empty())?;
    Some(match classes & 2 != 0 {
        true => Cow::Owned(text.to_ascii_lowercase()),
        false => Cow::Borrowed(text),
    })
}

fn tenant_origin(
    snapshot: &Snapshot,
    tenant: &TenantRuntime,
    host: Option<&str>,
) -> Result<Arc<TenantOrigin>, GatewayError> {
    if let Some(cached) = tenant.origin.load_full()
        && cached.host.as_deref() == host
    {
        return Ok(cached);
    }
    let origin = gateway_origin(snapshot, host)?;
    let dv = &tenant.config.dataverse;
    let prefixed = format!("{origin}/{}", tenant.config.name);
    let built = Arc::new(TenantOrigin {
        host: host.map(str::to_string),
        json: [
            JsonTarget::new(&dv.url, &prefixed),
            JsonTarget::new(&dv.url, &origin),
        ],
        urls: Urls {
            org: dv.url.clone(),
            gateway: vec![prefixed, origin],
            api_version: dv.api_version.clone(),
        },
    });
    tenant.origin.store(Some(Arc::clone(&built)));
    Ok(built)
}

/// The gateway origin agents use: `public_url` or `http(s)://{Host}`.
fn gateway_origin(snapshot: &Snapshot, host: Option<&str>) -> Result<String, GatewayError> {
    match (&snapshot.config.public_url, host) {
        (Some(url), _) => Ok(url.clone()),
        (None, Some(host)) => {
            let scheme = if snapshot.config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            Ok(format!("{scheme}://{host}"))
        }
        (None, None) => Err(GatewayError::BadRequest(
            "the request has no Host header".into(),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn upstream_request(
    tenant: &TenantRuntime,
    parts: &http::request::Parts,
    body: BoxBody,
    resource: &str,
    query: Option<&str>,
    decision: &Decision,
    token: &Secret,
    request_id: &HeaderValue,
) -> Result<Request<BoxBody>, GatewayError> {
    let dv = &tenant.config.dataverse;
    let query = query.filter(|q| !q.is_empty());
    let select = decision.add_select.as_deref();
    let uri =
        match select {
            // The agent's own request target is already the one to send (no tenant prefix, no
            // `$select` to add, no empty `?`): shared, not rebuilt and parsed again.
            None if as_sent(&parts.uri, &dv.api_version, resource, query) => {
                Uri::from(parts.uri.path_and_query().cloned().ok_or_else(|| {
                    GatewayError::BadRequest("the URL cannot be forwarded".into())
                })?)
            }
            _ => origin_form(&dv.api_version, resource, query, select)?,
        };
    let mut out = Request::new(body);
    *out.method_mut() = parts.method.clone();
    *out.uri_mut() = uri;
    // Room for what is copied and added below, without growing the map.
    *out.headers_mut() = spare_map::take();
    let h = out.headers_mut();
    headers::copy_request_headers(&parts.headers, h);
    if let Some(v) = tenant.bearer.header(token) {
        h.insert(header::AUTHORIZATION, v);
    }
    h.insert(X_MS_CLIENT_REQUEST_ID.clone(), request_id.clone());
    if accepts_gzip(&parts.headers) {
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if decision.if_match_star {
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
    }
    Ok(out)
}

/// Whether the agent's request target is exactly `/api/data/{version}/{resource}[?{query}]`:
/// then it is sent as it came.
fn as_sent(uri: &Uri, version: &str, resource: &str, query: Option<&str>) -> bool {
    let path = uri.path();
    path.len() == "/api/data/".len() + version.len() + 1 + resource.len()
        && path.ends_with(resource)
        && path
            .strip_prefix("/api/data/")
            .and_then(|p| p.strip_prefix(version))
            .is_some_and(|p| p.starts_with('/'))
        && uri.query() == query
}

/// The request target to send, in origin form (the org's connections add the scheme and host
/// as their protocol needs): the org's path, the agent's query, and the `$select` to add.
fn origin_form(
    version: &str,
    resource: &str,
    query: Option<&str>,
    select: Option<&str>,
) -> Result<Uri, GatewayError> {
    let mut uri = String::with_capacity(
        version.len()
            + resource.len()
            + query.map_or(0, str::len)
            + select.map_or(0, str::len)
            + 24,
    );
    for part in ["/api/data/", version, "/", resource] {
        uri.push_str(part);
    }
    match (query, select) {
        (Some(q), Some(s)) => uri.extend(["?", q, "&$select=", s]),
        (Some(q), None) => uri.extend(["?", q]),
        (None, Some(s)) => uri.extend(["?$select=", s]),
        (None, None) => {}
    }
    Uri::try_from(uri).map_err(|_| GatewayError::BadRequest("the URL cannot be forwarded".into()))
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|c| {
            let mut parts = c.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

async fn send(
    snapshot: &Snapshot,
    tenant: &TenantRuntime,
    req: Request<BoxBody>,
    now: Instant,
) -> Result<(Response<Incoming>, Lease), GatewayError> {
    let wait = snapshot.config.timeouts.response_headers;
    // Pinned here: the timer holds a reference, not a copy of the (large) sending future.
    let sending = std::pin::pin!(tenant.org.send_at(req, now));
    let deadline = tokio::time::Instant::from_std(now) + wait;
    match tokio::time::timeout_at(deadline, sending).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => {
            let why = if e.is_connect() {
                "cannot connect"
            } else {
                "the connection failed"
            };
            tracing::warn!(tenant = %tenant.config.name, error = %e, "upstream request failed");
            Err(GatewayError::Upstream(format!(
                "Dataverse for tenant {} is unreachable: {why}",
                tenant.config.name
            )))
        }
        Err(_) => Err(GatewayError::UpstreamTimeout(format!(
            "Dataverse for tenant {} did not answer within {} s",
            tenant.config.name,
            wait.as_secs()
        ))),
    }
}

/// Turns the upstream response into the agent's: header hygiene, URL rewriting, streaming body.
fn respond(
    response: Response<Incoming>,
    org: &str,
    base: &str,
    json: &Arc<JsonTarget>,
    lease: Lease,
    permit: Option<crate::limit::Slot>,
    (idle, arrived): (Duration, Instant),
) -> Result<Response<Streamed>, GatewayError> {
    let (mut parts, incoming) = response.into_parts();
    let present = headers::clean_response_headers(&mut parts.headers);
    // Response headers that may hold the org's URLs, looked up only when the pass saw them.
    for (name, there) in [
        (&ODATA_ENTITY_ID, present.odata_entity_id),
        (&header::LOCATION, present.location),
    ] {
        let rewritten = there
            .then(|| parts.headers.get(name))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| rewrite_url(v, org, base));
        if let Some(v) = rewritten.and_then(|v| HeaderValue::from_str(&v).ok()) {
            parts.headers.insert(name.clone(), v);
        }
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let rewriter = match RewriteKind::for_content_type(content_type) {
        Some(kind) => {
            let encoding = match present.content_encoding {
                true => parts
                    .headers
                    .get(header::CONTENT_ENCODING)
                    .and_then(|v| v.to_str().ok()),
                false => None,
            };
            let encoding = Encoding::from_header(encoding).map_err(|e| {
                GatewayError::Upstream(format!(
                    "Dataverse sent a body the gateway cannot read: {e}"
                ))
            })?;
            if present.content_encoding {
                parts.headers.remove(header::CONTENT_ENCODING);
            }
            if present.content_length {
                parts.headers.remove(header::CONTENT_LENGTH);
            }
            Some(match kind {
                RewriteKind::Json => BodyRewriter::json(encoding, Arc::clone(json)),
                RewriteKind::Text => BodyRewriter::new(kind, encoding, org, base),
            })
        }
        None => None,
    };
    let body = Streamed::new(incoming, rewriter, permit, lease, (idle, arrived.into()));
    Ok(Response::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::{as_sent, new_request_id, origin_form, valid_host, write_uuid_v4};
    use http::Uri;

    #[test]
    fn request_ids_are_distinct_lowercase_version_4_uuids_across_blocks() {
        let ids: Vec<String> = (0..300)
            .map(|_| new_request_id().to_str().unwrap().to_owned())
            .collect();
        for id in &ids {
            let u = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(u.get_version_num(), 4, "{id}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(*id, u.hyphenated().to_string(), "lowercase, hyphenated");
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn a_written_uuid_is_the_uuid_crate_s_for_the_same_bits() {
        let mut state = 0x1234_5678_9abc_def0_u64;
        for _ in 0..1000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let (a, b) = (state, state.rotate_left(29) ^ 0xa5a5_a5a5_a5a5_a5a5);
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&a.to_le_bytes());
            bytes[8..].copy_from_slice(&b.to_le_bytes());
            let expected = uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .hyphenated()
                .to_string();
            let mut out = Vec::new();
            write_uuid_v4(a, b, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn the_agents_target_is_sent_as_it_came_only_when_it_is_exactly_the_orgs() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        let q = Some("$top=1");
        assert!(as_sent(
            &uri("/api/data/v9.2/contacts?$top=1"),
            "v9.2",
            "contacts",
            q
        ));
        assert!(as_sent(
            &uri("/api/data/v9.2/contacts"),
            "v9.2",
            "contacts",
            None
        ));
        // A tenant prefix, another version, an empty `?`, another query: rebuilt.
        assert!(!as_sent(
            &uri("/t/api/data/v9.2/contacts?$top=1"),
            "v9.2",
            "contacts",
            q
        ));
        assert!(!as_sent(
            &uri("/api/data/v9.1/contacts?$top=1"),
            "v9.2",
            "contacts",
            q
        ));
        assert!(!as_sent(
            &uri("/api/data/v9.2/contacts?"),
            "v9.2",
            "contacts",
            None
        ));
        assert!(!as_sent(
            &uri("/api/data/v9.2/contacts?$top=2"),
            "v9.2",
            "contacts",
            q
        ));
        assert!(!as_sent(
            &uri("/api/data/v9.2/xcontacts"),
            "v9.2",
            "contacts",
            None
        ));
        assert_eq!(
            origin_form("v9.2", "contacts", q, Some("fullname")).unwrap(),
            "/api/data/v9.2/contacts?$top=1&$select=fullname"
        );
    }

    #[test]
    fn hosts_are_lowercased_and_only_name_address_and_port_characters_pass() {
        assert_eq!(
            valid_host(b"gw.example:8080").as_deref(),
            Some("gw.example:8080")
        );
        assert_eq!(valid_host(b"GW.Example").as_deref(), Some("gw.example"));
        assert_eq!(valid_host(b"[::1]:8080").as_deref(), Some("[::1]:8080"));
        for bad in [
            "", "user@gw", "gw/x", "gw?x", "gw#x", "gw x", "gw\"x", "gw%41", "gw\\x",
        ] {
            assert_eq!(valid_host(bad.as_bytes()), None, "{bad}");
        }
        // Bytes that are not ASCII, alone or inside UTF-8.
        assert_eq!(valid_host(&[b'g', 0xff]), None);
        assert_eq!(valid_host("gw\u{e9}.example".as_bytes()), None);
    }
}
