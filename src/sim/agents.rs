//! The simulated Entra ID as the issuer of AGENTS' tokens, and Dataverse's impersonation.
//!
//! Agent identities are registered at run time ([`super::Simulator::register_agent`]): a
//! client-credentials request (`POST /{tid}/oauth2/v2.0/token`, `client_id` + `client_secret`,
//! `scope={audience}/.default`) for one of them is answered with an RS256 access token signed
//! by the simulator's agent key, `aud` = the scope's resource, `tid`, `oid`, `roles`, and the
//! v2 (`iss {base}/{tid}/v2.0`, `azp`) or v1 (`iss https://sts.windows.net/{tid}/`, `appid`)
//! claims. The key is published at `GET /{tid}/discovery/v2.0/keys`, named by
//! `GET /{tid}/v2.0/.well-known/openid-configuration`. Token times use the injected clock's
//! wall time. (Simplification: real v2 tokens carry the resource app's client id as `aud`.)
//!
//! Impersonation ([`impersonate`]): `CallerObjectId` names a registered user by Entra object id
//! (`MSCRMCallerID` by systemuserid); the request then runs as that user, and records it creates
//! carry `_createdby_value` = the user and `_createdonbehalfby_value` = the application user.
//! An unknown user is a 404-like Dataverse error, a disabled one a 403.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, Response, StatusCode};
use serde_json::{Value, json};

use super::dispatch::Caller;
use super::form::Form;
use super::response::{SimBody, dataverse_error, with_body};
use super::state::{Shared, lock};

/// An agent's app registration (or managed identity) in the agents' tenant.
#[derive(Clone, PartialEq, Eq)]
pub struct SimAgent {
    pub tenant_id: String,
    pub client_id: String,
    pub secret: String,
    /// The service principal's object id (`oid`).
    pub object_id: String,
    /// App roles of the gateway's app granted to the agent.
    pub roles: Vec<String>,
    /// Issue v1 tokens (`sts.windows.net` issuer, `appid`) instead of v2.
    pub v1: bool,
}

impl std::fmt::Debug for SimAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimAgent")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("secret", &"***")
            .field("object_id", &self.object_id)
            .field("roles", &self.roles)
            .field("v1", &self.v1)
            .finish()
    }
}

/// A Dataverse user that can be impersonated.
#[derive(Debug, Clone)]
pub struct SimUser {
    pub object_id: String,
    pub user_id: String,
    pub disabled: bool,
}

/// A signing key and its `kid`.
pub struct Signer {
    pub kid: String,
    key: KeyPair,
}

#[derive(Default)]
pub struct AgentState {
    pub agents: Mutex<Vec<SimAgent>>,
    pub users: Mutex<Vec<SimUser>>,
    signer: Mutex<Option<std::sync::Arc<Signer>>>,
    pub key_requests: AtomicUsize,
}

impl AgentState {
    /// The current signing key, generated on first use.
    pub fn signer(&self) -> std::sync::Arc<Signer> {
        let mut slot = lock(&self.signer);
        if let Some(s) = slot.as_ref() {
            return std::sync::Arc::clone(s);
        }
        let s = std::sync::Arc::new(new_signer());
        *slot = Some(std::sync::Arc::clone(&s));
        s
    }

    /// Replaces the signing key (the old one leaves the JWKS).
    pub fn rotate(&self) {
        *lock(&self.signer) = Some(std::sync::Arc::new(new_signer()));
    }
}

fn new_signer() -> Signer {
    let key = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
    Signer {
        kid: uuid::Uuid::new_v4().simple().to_string(),
        key,
    }
}

impl Signer {
    /// A compact RS256 JWS of `claims` with this key's `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// The public key as a JWK (`n`, `e` base64url).
    pub fn jwk(&self) -> Value {
        let (n, e) = rsa_public_parts(self.key.public_key().as_ref()).unwrap_or_default();
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
               "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)})
    }

    /// `n` and `e` as raw big-endian bytes.
    pub fn public_parts(&self) -> (Vec<u8>, Vec<u8>) {
        rsa_public_parts(self.key.public_key().as_ref()).unwrap_or_default()
    }
}

/// `n` and `e` of a DER `RSAPublicKey` (SEQUENCE of two INTEGERs), without leading zeros.
fn rsa_public_parts(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    fn item(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        if t != tag {
            return None;
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            let (bytes, rest) = (rest.get(..n)?, rest.get(n..)?);
            (
                bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b)),
                rest,
            )
        };
        Some((rest.get(..len)?, rest.get(len..)?))
    }
    let (seq, _) = item(der, 0x30)?;
    let (n, rest) = item(seq, 0x02)?;
    let (e, _) = item(rest, 0x02)?;
    let strip = |v: &[u8]| {
        v.iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect::<Vec<u8>>()
    };
    Some((strip(n), strip(e)))
}

fn now_secs(shared: &Shared) -> u64 {
    shared
        .clock
        .wall()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The claims of a token for `agent` with audience `aud`, valid for `lifetime`.
pub fn claims(shared: &Shared, agent: &SimAgent, aud: &str, lifetime: Duration) -> Value {
    let now = now_secs(shared);
    let tid = &agent.tenant_id;
    let mut c = json!({
        "aud": aud, "tid": tid, "oid": agent.object_id, "sub": agent.object_id,
        "roles": agent.roles, "iat": now, "nbf": now, "exp": now + lifetime.as_secs(),
        "idtyp": "app",
    });
    if agent.v1 {
        c["iss"] = json!(format!("https://sts.windows.net/{tid}/"));
        c["appid"] = json!(agent.client_id);
        c["ver"] = json!("1.0");
    } else {
        c["iss"] = json!(format!("{}/{tid}/v2.0", shared.base_url));
        c["azp"] = json!(agent.client_id);
        c["ver"] = json!("2.0");
    }
    c
}

/// A token request for a registered agent, or `None` when `client_id` is not one.
pub fn token(shared: &Shared, tenant: &str, body: &[u8]) -> Option<Response<SimBody>> {
    let form = Form::parse(body);
    let client_id = form.get("client_id")?;
    let agent = lock(&shared.agents.agents)
        .iter()
        .find(|a| {
            a.client_id.eq_ignore_ascii_case(client_id) && a.tenant_id.eq_ignore_ascii_case(tenant)
        })
        .cloned()?;
    let refuse = |code: u32, error: &str, text: &str| {
        let body = json!({"error": error, "error_description": format!("AADSTS{code}: {text}"),
                          "error_codes": [code]});
        Some(json_response(StatusCode::UNAUTHORIZED, &body))
    };
    if form.get("client_secret") != Some(agent.secret.as_str()) {
        return refuse(7000215, "invalid_client", "Invalid client secret provided.");
    }
    let Some(aud) = form.get("scope").and_then(|s| s.strip_suffix("/.default")) else {
        return refuse(
            1002012,
            "invalid_scope",
            "The provided value for scope is not valid.",
        );
    };
    let lifetime = Duration::from_secs(3600);
    let jwt = shared
        .agents
        .signer()
        .sign(&claims(shared, &agent, aud, lifetime));
    let body = json!({"token_type": "Bearer", "expires_in": lifetime.as_secs(),
                      "ext_expires_in": lifetime.as_secs(), "access_token": jwt});
    Some(json_response(StatusCode::OK, &body))
}

/// The OpenID configuration and JWKS routes.
pub fn route(shared: &Shared, path: &str) -> Option<Response<SimBody>> {
    let rest = path.strip_prefix('/')?;
    let (tid, what) = rest.split_once('/')?;
    let base = &shared.base_url;
    match what {
        "v2.0/.well-known/openid-configuration" => {
            let body = json!({
                "issuer": format!("{base}/{tid}/v2.0"),
                "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
                "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
                "id_token_signing_alg_values_supported": ["RS256"],
            });
            Some(json_response(StatusCode::OK, &body))
        }
        "discovery/v2.0/keys" => {
            shared.agents.key_requests.fetch_add(1, Ordering::SeqCst);
            let body = json!({"keys": [shared.agents.signer().jwk()]});
            Some(json_response(StatusCode::OK, &body))
        }
        _ => None,
    }
}

/// The caller a request runs as: `app` itself, or the user its `CallerObjectId` /
/// `MSCRMCallerID` names (with `app` as the one acting on behalf).
pub fn impersonate(
    shared: &Shared,
    headers: &HeaderMap,
    app: &Caller,
) -> Result<Caller, Box<Response<SimBody>>> {
    let by_object = headers.get("callerobjectid").and_then(|v| v.to_str().ok());
    let by_user = headers.get("mscrmcallerid").and_then(|v| v.to_str().ok());
    let (wanted, by) = match (by_object, by_user) {
        (Some(o), _) => (o, true),
        (None, Some(u)) => (u, false),
        (None, None) => return Ok(app.clone()),
    };
    let acting = app
        .on_behalf_of
        .clone()
        .unwrap_or_else(|| app.user_id.clone());
    let users = lock(&shared.agents.users);
    let found = users.iter().find(|u| {
        let id = if by { &u.object_id } else { &u.user_id };
        id.eq_ignore_ascii_case(wanted.trim())
    });
    let Some(user) = found else {
        let message = format!("systemuser With Id = {} Does Not Exist", wanted.trim());
        return Err(Box::new(dataverse_error(
            StatusCode::NOT_FOUND,
            "0x80040217",
            &message,
        )));
    };
    if user.disabled {
        let message = format!("The user with SystemUserId={} is disabled.", user.user_id);
        return Err(Box::new(dataverse_error(
            StatusCode::FORBIDDEN,
            "0x8004001b",
            &message,
        )));
    }
    Ok(Caller {
        user_id: user.user_id.clone(),
        on_behalf_of: Some(acting),
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response<SimBody> {
    with_body(status, "application/json; charset=utf-8", body.to_string())
}
