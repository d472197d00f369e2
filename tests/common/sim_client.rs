//! Talking to the simulator directly over HTTP (no gateway): requests, Entra token forms, and
//! replies read whole. Shared by the simulator's Entra and Dataverse test files.

use bytes::Bytes;
use dataverse_gateway::sim::{
    DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT_ID, SimConfig, Simulator,
};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The body as text (UTF-8, lossily).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A simulator and a plain HTTP client to talk to it directly.
pub struct SimClient {
    pub sim: Simulator,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl SimClient {
    pub async fn start(config: SimConfig) -> Self {
        let sim = Simulator::start(config).await.expect("simulator starts");
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self { sim, client }
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        let response = self.client.request(request).await.expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn token_with(&self, tenant: &str, fields: &[(&str, &str)]) -> Reply {
        let form: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let content_type = [("content-type", "application/x-www-form-urlencoded")];
        self.send(
            Method::POST,
            &self.sim.token_url(tenant),
            &content_type,
            &form.join("&"),
        )
        .await
    }

    pub async fn token(&self) -> String {
        let scope = self.sim.scope();
        let fields = good_fields(&scope);
        let reply = self.token_with(DEFAULT_TENANT_ID, &fields).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.json()["access_token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/data/v9.2/{path}", self.sim.base_url())
    }

    pub async fn api(
        &self,
        method: Method,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let bearer = format!("Bearer {token}");
        let mut all = vec![("authorization", bearer.as_str())];
        all.extend_from_slice(headers);
        self.send(method, &self.url(path), &all, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.api(Method::GET, path, token, &[], "").await
    }

    /// POSTs `body` as JSON to `path` under the API root.
    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> Reply {
        let json = [("content-type", "application/json")];
        self.api(Method::POST, path, token, &json, &body.to_string())
            .await
    }

    /// POSTs a `$batch` body delimited by `boundary` (with `Prefer: prefer`, when given).
    pub async fn batch(
        &self,
        token: &str,
        boundary: &str,
        body: &str,
        prefer: Option<&str>,
    ) -> Reply {
        let content_type = format!("multipart/mixed; boundary=\"{boundary}\"");
        let mut headers = vec![("content-type", content_type.as_str())];
        headers.extend(prefer.map(|p| ("prefer", p)));
        self.api(Method::POST, "$batch", token, &headers, body)
            .await
    }

    /// The rows of a GET of `path`, which must succeed.
    pub async fn rows(&self, path: &str, token: &str) -> Vec<Value> {
        let reply = self.get(path, token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// `{base}/api/data/v9.2`
    pub fn api_root(&self) -> String {
        format!("{}/api/data/v9.2", self.sim.base_url())
    }
}

pub fn good_fields(scope: &str) -> Vec<(&str, &str)> {
    vec![
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_SECRET),
        ("scope", scope),
        ("grant_type", "client_credentials"),
    ]
}

pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
