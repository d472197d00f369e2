//! `agent_auth:` and `clients:`. Read after `tenants:`, so that each client's policy is checked
//! against the tenant's and its effective policy computed here, once ([`crate::config::agents`]).

use std::sync::Arc;

use super::sections::parse_sha256_hex;
use super::*;
use crate::config::agents::{self, ClientTenant};

const CLIENT_KEYS: &[&str] = &["name", "key_sha256", "entra", "tenants", "limits", "policy"];
/// The tenant policy keys a client may use under `policy.<tenant>`.
const RULE_KEYS: &[&str] = &[
    "allow",
    "functions",
    "actions",
    "allow_metadata",
    "allow_all_entity_definitions",
    "allow_uninspectable",
];
const CLIENT_POLICY_KEYS: &[&str] = &[
    "allow",
    "functions",
    "actions",
    "allow_metadata",
    "allow_all_entity_definitions",
    "allow_uninspectable",
    "act_as",
];
const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

impl Reader {
    pub(super) fn agent_auth(&mut self, node: &Node) -> Option<AgentAuth> {
        let path = "agent_auth";
        let mut m = self.map(node, path)?;
        let tenant_id = m
            .take("tenant_id")
            .and_then(|n| self.string(n, "agent_auth.tenant_id"));
        let audience = m
            .take("audience")
            .and_then(|n| self.string(n, "agent_auth.audience"));
        let authority = match m.take("authority") {
            Some(n) => self.upstream_url(n, "agent_auth.authority"),
            None => Some(DEFAULT_AUTHORITY.to_string()),
        };
        if tenant_id.is_none() || audience.is_none() {
            self.error(m.pos, path, "`agent_auth` needs `tenant_id` and `audience`");
        }
        self.finish(m, &["tenant_id", "audience", "authority"]);
        Some(AgentAuth {
            tenant_id: tenant_id?.to_ascii_lowercase(),
            audience: audience?,
            authority: authority?,
        })
    }

    pub(super) fn clients(
        &mut self,
        node: &Node,
        tenants: &[Tenant],
        entra: bool,
    ) -> Vec<ClientKey> {
        let Value::Seq(items) = &node.value else {
            self.error(node.pos, "clients", "expected a list of clients");
            return Vec::new();
        };
        let mut out: Vec<ClientKey> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("clients[{i}]");
            if let Some(c) = self.client(item, &path, tenants, entra) {
                if out.iter().any(|o| o.name == c.name) {
                    let msg = format!("duplicate client name `{}`", c.name);
                    self.error(item.pos, &path, msg);
                }
                out.push(c);
            }
        }
        out
    }

    fn client(
        &mut self,
        node: &Node,
        path: &str,
        tenants: &[Tenant],
        entra: bool,
    ) -> Option<ClientKey> {
        let mut m = self.map(node, path)?;
        let name = m
            .take("name")
            .and_then(|n| self.string(n, &join(path, "name")));
        let key = m.take("key_sha256").and_then(|n| {
            let p = join(path, "key_sha256");
            let s = self.string(n, &p)?;
            let parsed = parse_sha256_hex(&s);
            if parsed.is_none() {
                let msg = "expected 64 hex digits (the SHA-256 of the key, not the key)";
                self.error(n.pos, &p, msg);
            }
            parsed.map(ClientAuth::Key)
        });
        let entra_node = m.take("entra");
        let identity = entra_node.and_then(|n| self.entra_match(n, &join(path, "entra")));
        if let (Some(n), false) = (entra_node, entra) {
            let msg = "`entra` needs `agent_auth` (which Entra tenant and audience to accept)";
            self.error(n.pos, &join(path, "entra"), msg);
        }
        let auth = match (key, identity) {
            (Some(k), None) => Some(k),
            (None, Some(e)) => Some(ClientAuth::Entra(e)),
            (Some(_), Some(_)) => {
                self.error(
                    m.pos,
                    path,
                    "a client has either `entra` or `key_sha256`, not both",
                );
                None
            }
            (None, None) => None,
        };
        let listed = m
            .take("tenants")
            .and_then(|n| self.strings(n, &join(path, "tenants")));
        let limits = m
            .take("limits")
            .map(|n| self.client_limits(n, &join(path, "limits")));
        let listed_names: Vec<String> = listed.iter().flatten().map(|(s, _)| s.clone()).collect();
        let per_tenant = match m.take("policy") {
            Some(n) => self.client_policies(n, &join(path, "policy"), tenants, &listed_names),
            None => BTreeMap::new(),
        };
        if name.is_none() || auth.is_none() || listed.is_none() {
            let msg = "a client needs `name`, `tenants`, and `key_sha256` or `entra`";
            self.error(m.pos, path, msg);
        }
        self.finish(m, CLIENT_KEYS);
        Some(ClientKey {
            name: name?,
            auth: auth?,
            tenants: listed_names,
            limits: limits.flatten(),
            per_tenant,
        })
    }

    fn entra_match(&mut self, node: &Node, path: &str) -> Option<EntraMatch> {
        let mut m = self.map(node, path)?;
        let mut found = Vec::new();
        for key in ["app_id", "object_id", "role"] {
            if let Some(v) = m.take(key).and_then(|n| self.string(n, &join(path, key))) {
                found.push(match key {
                    "app_id" => EntraMatch::AppId(v.to_ascii_lowercase()),
                    "object_id" => EntraMatch::ObjectId(v.to_ascii_lowercase()),
                    _ => EntraMatch::Role(v),
                });
            }
        }
        if found.len() != 1 {
            self.error(
                m.pos,
                path,
                "`entra` needs exactly one of `app_id`, `object_id`, `role`",
            );
        }
        self.finish(m, &["app_id", "object_id", "role"]);
        (found.len() == 1).then(|| found.remove(0))
    }

    fn client_limits(&mut self, node: &Node, path: &str) -> Option<Limits> {
        if let Value::Map(entries) = &node.value {
            for (key, _) in entries {
                if !["requests_per_second", "burst", "max_concurrent"].contains(&key.name.as_str())
                {
                    let msg = format!(
                        "unknown key `{}` (a client's limits are requests_per_second, burst, max_concurrent)",
                        key.name
                    );
                    self.error(key.pos, &join(path, &key.name), msg);
                    return None;
                }
            }
        }
        Some(self.limits(node, path))
    }

    fn client_policies(
        &mut self,
        node: &Node,
        path: &str,
        tenants: &[Tenant],
        listed: &[String],
    ) -> BTreeMap<String, ClientTenant> {
        let mut out = BTreeMap::new();
        let Some(mut m) = self.map(node, path) else {
            return out;
        };
        for (key, value) in m.entries() {
            let p = join(path, &key.name);
            if !listed.contains(&key.name) {
                let msg = format!("`{}` is not in this client's `tenants`", key.name);
                self.error(key.pos, &p, msg);
                continue;
            }
            let Some(tenant) = tenants.iter().find(|t| t.name == key.name) else {
                continue; // reported by the cross check
            };
            if let Some(entry) = self.client_tenant(value, &p, tenant) {
                out.insert(key.name.clone(), entry);
            }
        }
        out
    }

    fn client_tenant(&mut self, node: &Node, path: &str, tenant: &Tenant) -> Option<ClientTenant> {
        let mut m = self.map(node, path)?;
        let act_as = m.take("act_as").and_then(|n| {
            let p = join(path, "act_as");
            let mut a = self.map(n, &p)?;
            let id = a
                .take("caller_object_id")
                .and_then(|n| self.string(n, &join(&p, "caller_object_id")));
            let valid = id.as_deref().and_then(|s| uuid::Uuid::parse_str(s).ok());
            if valid.is_none() {
                let msg = "`act_as` needs `caller_object_id`: the Entra object id (a GUID) of a Dataverse user";
                self.error(a.pos, &p, msg);
            }
            self.finish(a, &["caller_object_id"]);
            valid.map(|u| u.hyphenated().to_string())
        });
        let has_rules = RULE_KEYS.iter().any(
            |k| matches!(&node.value, Value::Map(e) if e.iter().any(|(key, _)| key.name == *k)),
        );
        let own = has_rules.then(|| self.policy(&mut m, path));
        self.finish(m, CLIENT_POLICY_KEYS);
        let effective = own.as_ref().map(|own| {
            for w in agents::widenings(&tenant.name, &tenant.policy, own) {
                let keys: Vec<&str> = w.keys.iter().map(String::as_str).collect();
                let pos = position(node, &keys);
                self.error(pos, &join(path, &keys.join(".")), w.message);
            }
            Arc::new(agents::intersect(&tenant.policy, own))
        });
        Some(ClientTenant {
            own,
            effective,
            act_as,
        })
    }
}

/// Where `keys` (a path of mapping keys below `node`) is written, or the deepest part found.
fn position(node: &Node, keys: &[&str]) -> Pos {
    let mut at = node;
    let mut pos = node.pos;
    for k in keys {
        let Value::Map(entries) = &at.value else {
            break;
        };
        let Some((key, value)) = entries.iter().find(|(key, _)| key.name == *k) else {
            break;
        };
        pos = key.pos;
        at = value;
    }
    pos
}
