//! The sections of `gateway.yaml`, one reader function each.

use super::*;

const TOP_KEYS: &[&str] = &[
    "listen",
    "admin_listen",
    "public_url",
    "upstream_tls",
    "tls",
    "agent_auth",
    "clients",
    "audit",
    "log_format",
    "shutdown_grace",
    "timeouts",
    "limits",
    "rate_limit_store",
    "key_vault",
    "mcp",
    "tenants",
];
const TENANT_KEYS: &[&str] = &[
    "default",
    "hosts",
    "dataverse",
    "auth",
    "limits",
    "allow",
    "functions",
    "actions",
    "allow_metadata",
    "allow_all_entity_definitions",
    "allow_uninspectable",
];
const AUTH_KEYS: &[&str] = &[
    "tenant_id",
    "client_id",
    "authority",
    "scope",
    "client_secret",
    "certificate",
    "managed_identity",
    "workload_identity",
];
/// Tables that span many others by design: allowing them is allowed, but worth a warning.
pub(super) const BROAD_TABLES: &[&str] = &[
    "activitypointers",
    "annotations",
    "audits",
    "asyncoperations",
    "savedqueries",
    "userqueries",
];

impl Reader {
    pub(super) fn config(&mut self, root: &Node) -> Option<Config> {
        let mut m = self.map(root, "")?;
        let listen = match m.take("listen") {
            Some(n) => self.socket_addr(n, "listen"),
            None => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
        };
        let admin_listen = m
            .take("admin_listen")
            .and_then(|n| self.socket_addr(n, "admin_listen"));
        let public_url = m.take("public_url").and_then(|n| self.public_url(n));
        let upstream_tls = match m.take("upstream_tls") {
            Some(n) => self.upstream_tls(n),
            None => UpstreamTls::default(),
        };
        let tls = m.take("tls").and_then(|n| self.listener_tls(n));
        let audit = m.take("audit").and_then(|n| self.audit(n));
        let log_format = m
            .take("log_format")
            .map_or(Some(LogFormat::Auto), |n| self.log_format(n));
        let shutdown_grace = match m.take("shutdown_grace") {
            Some(n) => self.duration(n, "shutdown_grace"),
            None => Some(Duration::from_secs(30)),
        };
        let timeouts = m
            .take("timeouts")
            .map(|n| self.timeouts(n))
            .unwrap_or_default();
        let limits = m
            .take("limits")
            .map(|n| self.process_limits(n))
            .unwrap_or_default();
        let rate_limit_store = m
            .take("rate_limit_store")
            .and_then(|n| self.rate_limit_store(n));
        let key_vault = m.take("key_vault").map(|n| self.key_vault(n));
        let mcp = m.take("mcp").map(|n| self.mcp(n)).unwrap_or_default();
        let mut tenants = match m.take("tenants") {
            Some(n) => self.tenants(n),
            None => {
                self.error(m.pos, "tenants", "missing required key `tenants`");
                Vec::new()
            }
        };
        let agent_auth = m.take("agent_auth").and_then(|n| self.agent_auth(n));
        let clients = m
            .take("clients")
            .map(|n| self.clients(n, &tenants, agent_auth.is_some()))
            .unwrap_or_default();
        self.finish(m, TOP_KEYS);
        super::vault::attach(&mut tenants, &key_vault.unwrap_or_default());
        self.cross_check(&tenants, &clients);
        Some(Config {
            listen: listen?,
            admin_listen,
            public_url,
            upstream_tls,
            tls,
            agent_auth,
            clients,
            audit,
            log_format: log_format?,
            shutdown_grace: shutdown_grace?,
            timeouts,
            limits,
            rate_limit_store,
            mcp,
            tenants,
        })
    }

    fn rate_limit_store(&mut self, node: &Node) -> Option<RateLimitStore> {
        let mut m = self.map(node, "rate_limit_store")?;
        let redis = m.take("redis");
        self.finish(m, &["redis"]);
        let Some(node) = redis else {
            self.error(
                node.pos,
                "rate_limit_store",
                "expected `redis: { url, key_prefix, on_error }`",
            );
            return None;
        };
        let path = "rate_limit_store.redis";
        let mut m = self.map(node, path)?;
        let url = match m.take("url") {
            Some(n) => self.string(n, "rate_limit_store.redis.url").filter(|u| {
                let ok = u.starts_with("redis://") || u.starts_with("rediss://");
                ok || {
                    self.error(
                        n.pos,
                        "rate_limit_store.redis.url",
                        "expected redis://host:port[/db]",
                    );
                    false
                }
            }),
            None => {
                self.error(m.pos, path, "missing required key `url`");
                None
            }
        };
        let key_prefix = match m.take("key_prefix") {
            Some(n) => self.string(n, "rate_limit_store.redis.key_prefix"),
            None => Some("dataverse-gateway:".to_string()),
        };
        let fail_open = match m.take("on_error") {
            Some(n) => match self.string(n, "rate_limit_store.redis.on_error").as_deref() {
                Some("fail_open") => Some(true),
                Some("fail_closed") => Some(false),
                Some(_) => {
                    self.error(
                        n.pos,
                        "rate_limit_store.redis.on_error",
                        "expected fail_open or fail_closed",
                    );
                    None
                }
                None => None,
            },
            None => Some(true),
        };
        self.finish(m, &["url", "key_prefix", "on_error"]);
        Some(RateLimitStore {
            url: url?,
            key_prefix: key_prefix?,
            fail_open: fail_open?,
        })
    }

    fn cross_check(&mut self, tenants: &[Tenant], clients: &[ClientKey]) {
        if let [(first, _), rest @ ..] = self.defaults.as_slice() {
            let (first, rest) = (first.clone(), rest.to_vec());
            for (name, pos) in rest {
                let msg =
                    format!("at most one tenant may be `default: true` (`{first}` already is)");
                self.error(pos, &format!("tenants.{name}.default"), msg);
            }
        }
        let mut hosts: BTreeMap<&str, &str> = BTreeMap::new();
        for t in tenants {
            for h in &t.hosts {
                if let Some(other) = hosts.insert(h, &t.name) {
                    let msg = format!("host `{h}` is claimed by tenants {other} and {}", t.name);
                    self.error(Pos { line: 1, column: 1 }, "tenants", msg);
                }
            }
        }
        for c in clients {
            for t in &c.tenants {
                if !tenants.iter().any(|x| &x.name == t) {
                    let msg = format!("client `{}` names unknown tenant `{t}`", c.name);
                    self.error(Pos { line: 1, column: 1 }, "clients", msg);
                }
            }
        }
    }

    fn public_url(&mut self, node: &Node) -> Option<String> {
        let s = self.string(node, "public_url")?;
        match parse_origin(&s) {
            Ok(o) => Some(o.origin),
            Err(e) => {
                self.error(node.pos, "public_url", e);
                None
            }
        }
    }

    fn upstream_tls(&mut self, node: &Node) -> UpstreamTls {
        let Some(mut m) = self.map(node, "upstream_tls") else {
            return UpstreamTls::default();
        };
        let extra_ca_file = m
            .take("extra_ca_file")
            .and_then(|n| self.path(n, "upstream_tls.extra_ca_file"));
        self.finish(m, &["extra_ca_file"]);
        UpstreamTls { extra_ca_file }
    }

    fn listener_tls(&mut self, node: &Node) -> Option<ListenerTls> {
        let mut m = self.map(node, "tls")?;
        let cert_file = m
            .take("cert_file")
            .and_then(|n| self.path(n, "tls.cert_file"));
        let key_file = m
            .take("key_file")
            .and_then(|n| self.path(n, "tls.key_file"));
        let client_ca_file = m
            .take("client_ca_file")
            .and_then(|n| self.path(n, "tls.client_ca_file"));
        if cert_file.is_none() || key_file.is_none() {
            self.error(m.pos, "tls", "`cert_file` and `key_file` are both required");
        }
        self.finish(m, &["cert_file", "key_file", "client_ca_file"]);
        Some(ListenerTls {
            cert_file: cert_file?,
            key_file: key_file?,
            client_ca_file,
        })
    }

    fn tenants(&mut self, node: &Node) -> Vec<Tenant> {
        let Some(mut m) = self.map(node, "tenants") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, value) in m.entries() {
            let path = join("tenants", &key.name);
            if !valid_tenant_name(&key.name) {
                let msg = format!(
                    "tenant name `{}` must match [a-z0-9][a-z0-9-]* (it becomes a URL path segment)",
                    key.name
                );
                self.error(key.pos, &path, msg);
            }
            if let Some(t) = self.tenant(&key.name, value, &path) {
                out.push(t);
            }
        }
        if out.is_empty() && self.diags.errors.is_empty() {
            self.error(m.pos, "tenants", "at least one tenant is required");
        }
        out
    }

    fn tenant(&mut self, name: &str, node: &Node, path: &str) -> Option<Tenant> {
        let mut m = self.map(node, path)?;
        let default_node = m.take("default");
        let default = default_node.and_then(|n| self.boolean(n, &join(path, "default")));
        if let (Some(true), Some(n)) = (default, default_node) {
            self.defaults.push((name.to_string(), n.pos));
        }
        let hosts = m
            .take("hosts")
            .and_then(|n| self.strings(n, &join(path, "hosts")));
        let dataverse = match m.take("dataverse") {
            Some(n) => self.dataverse(n, &join(path, "dataverse")),
            None => {
                self.error(m.pos, path, "missing required key `dataverse`");
                None
            }
        };
        let auth = match m.take("auth") {
            Some(n) => self.auth(n, &join(path, "auth"), dataverse.as_ref()),
            None => {
                self.error(m.pos, path, "missing required key `auth`");
                None
            }
        };
        let limits = match m.take("limits") {
            Some(n) => self.limits(n, &join(path, "limits")),
            None => Limits::default(),
        };
        let policy = self.policy(&mut m, path);
        self.finish(m, TENANT_KEYS);
        let hosts = hosts
            .unwrap_or_default()
            .into_iter()
            .map(|(h, _)| h.to_ascii_lowercase());
        Some(Tenant {
            name: name.to_string(),
            default: default.unwrap_or(false),
            hosts: hosts.collect(),
            dataverse: dataverse?,
            auth: auth?,
            limits,
            policy,
        })
    }

    fn dataverse(&mut self, node: &Node, path: &str) -> Option<Dataverse> {
        let mut m = self.map(node, path)?;
        let url = match m.take("url") {
            Some(n) => self.upstream_url(n, &join(path, "url")),
            None => {
                self.error(m.pos, path, "missing required key `url`");
                None
            }
        };
        let api_version = match m.take("api_version") {
            Some(n) => {
                let p = join(path, "api_version");
                let v = self.string(n, &p);
                if let Some(v) = &v
                    && !valid_api_version(v)
                {
                    self.error(
                        n.pos,
                        &p,
                        format!("`{v}` is not an API version such as v9.2"),
                    );
                }
                v
            }
            None => Some("v9.2".to_string()),
        };
        let metadata_file = m
            .take("metadata_file")
            .and_then(|n| self.path(n, &join(path, "metadata_file")));
        self.finish(m, &["url", "api_version", "metadata_file"]);
        Some(Dataverse {
            url: url?,
            api_version: api_version?,
            metadata_file,
        })
    }

    /// An https origin, or http on a loopback host (tests, demo).
    pub(super) fn upstream_url(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        match parse_origin(&s) {
            Ok(o) if o.https || o.loopback => Some(o.origin),
            Ok(_) => {
                let msg = format!("`{s}` must use https (http is allowed only for loopback hosts)");
                self.error(node.pos, path, msg);
                None
            }
            Err(e) => {
                self.error(node.pos, path, e);
                None
            }
        }
    }

    fn auth(&mut self, node: &Node, path: &str, dv: Option<&Dataverse>) -> Option<Auth> {
        let mut m = self.map(node, path)?;
        let mut optional = |r: &mut Reader, key: &str| {
            let n = m.take(key)?;
            r.string(n, &join(path, key)).map(|s| (s, n.pos))
        };
        let tenant_id = optional(self, "tenant_id");
        let client_id = optional(self, "client_id");
        let authority_node = m.take("authority");
        let authority = authority_node.and_then(|n| self.upstream_url(n, &join(path, "authority")));
        let scope = match m.take("scope") {
            Some(n) => {
                let p = join(path, "scope");
                let s = self.string(n, &p);
                if let Some(s) = &s
                    && !s.ends_with("/.default")
                {
                    self.error(
                        n.pos,
                        &p,
                        "a client-credentials scope must end in /.default",
                    );
                }
                s
            }
            None => dv.map(|dv| format!("{}/.default", dv.url)),
        };
        let credential = self.credential(&mut m, path);
        let given = credential::Identity {
            tenant_id,
            client_id,
            authority,
        };
        let (tenant_id, client_id, authority) =
            self.identity(m.pos, path, given, credential.as_ref());
        if let (Some(a), Some(dv)) = (&authority, dv) {
            self.cloud_check(authority_node.map_or(m.pos, |n| n.pos), path, a, &dv.url);
        }
        self.finish(m, AUTH_KEYS);
        Some(Auth {
            tenant_id: tenant_id?,
            client_id: client_id?,
            authority: authority?,
            scope: scope?,
            credential: credential?,
        })
    }

    pub(super) fn limits(&mut self, node: &Node, path: &str) -> Limits {
        let mut l = Limits::default();
        let Some(mut m) = self.map(node, path) else {
            return l;
        };
        let p = join(path, "requests_per_second");
        l.requests_per_second = m
            .take("requests_per_second")
            .and_then(|n| self.number(n, &p, 1, 1_000_000));
        let p = join(path, "burst");
        l.burst = m
            .take("burst")
            .and_then(|n| self.number(n, &p, 1, 1_000_000));
        let p = join(path, "max_concurrent");
        l.max_concurrent = m
            .take("max_concurrent")
            .and_then(|n| self.number(n, &p, 1, 100_000));
        let p = join(path, "queue_timeout");
        if let Some(d) = m.take("queue_timeout").and_then(|n| self.duration(n, &p)) {
            l.queue_timeout = d;
        }
        let p = join(path, "max_body_bytes");
        if let Some(n) = m.take("max_body_bytes").and_then(|n| self.size(n, &p)) {
            l.max_body_bytes = n;
        }
        if let Some(n) = m.take("retry_throttled") {
            let p = join(path, "retry_throttled");
            if let Some(mut r) = self.map(n, &p) {
                let wp = join(&p, "max_wait");
                l.retry_throttled = match r.take("max_wait") {
                    Some(w) => self.duration(w, &wp),
                    None => Some(Duration::from_secs(10)),
                };
                self.finish(r, &["max_wait"]);
            }
        }
        if l.burst.is_some() && l.requests_per_second.is_none() {
            self.error(m.pos, path, "`burst` needs `requests_per_second`");
        }
        self.finish(
            m,
            &[
                "requests_per_second",
                "burst",
                "max_concurrent",
                "queue_timeout",
                "max_body_bytes",
                "retry_throttled",
            ],
        );
        l
    }
}

/// A parsed `scheme://host[:port]` origin.
pub(crate) struct Origin {
    pub origin: String,
    pub https: bool,
    pub loopback: bool,
}

/// Accepts `http(s)://host[:port]` with an optional trailing `/`, nothing else.
pub(crate) fn parse_origin(s: &str) -> Result<Origin, String> {
    let uri: http::Uri = s.parse().map_err(|_| format!("`{s}` is not a valid URL"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("`{s}` must start with https://")),
    };
    let Some(authority) = uri.authority() else {
        return Err(format!("`{s}` has no host"));
    };
    if authority.as_str().contains('@') {
        return Err(format!("`{s}` must not contain credentials"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "`{s}` must be an origin only (scheme://host[:port]), without a path"
        ));
    }
    let host = authority.host().to_ascii_lowercase();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let scheme = if https { "https" } else { "http" };
    let origin = match authority.port() {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    };
    Ok(Origin {
        origin,
        https,
        loopback,
    })
}

fn valid_tenant_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.len() <= 63
}

fn valid_api_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let mut parts = rest.split('.');
    let ok =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

pub(super) fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}
