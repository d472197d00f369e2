//! Agents as named clients: how each proves who it is (`key_sha256` or an Entra ID token,
//! [`AgentAuth`]), its limits, and its policy per tenant.
//!
//! Invariant: a client's policy only ever NARROWS the tenant's. [`intersect`] computes the
//! effective policy (a table, verb, column, function, action or flag is allowed only when both
//! allow it) once, when the config is read; [`widenings`] lists every client rule the tenant does
//! not allow, which the reader reports as errors (a dead rule a reviewer would misread). Pure.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Limits, Policy, TableRule};

/// `agent_auth:` — agents present Entra ID access tokens issued for the gateway's own app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAuth {
    /// The agents' Entra tenant id (the `tid` claim every token must carry).
    pub tenant_id: String,
    /// The gateway app's Application ID URI or client id (the `aud` claim).
    pub audience: String,
    /// `scheme://host[:port]`, no trailing slash (default `https://login.microsoftonline.com`).
    pub authority: String,
}

impl AgentAuth {
    /// Where the signing keys are found: the v2.0 OpenID configuration of the agents' tenant.
    pub fn openid_configuration(&self) -> String {
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            self.authority, self.tenant_id
        )
    }

    /// The issuers Entra ID uses for the tenant: v2 (`{authority}/{tid}/v2.0`) and v1.
    pub fn issuers(&self) -> [String; 2] {
        [
            format!("{}/{}/v2.0", self.authority, self.tenant_id),
            format!("https://sts.windows.net/{}/", self.tenant_id),
        ]
    }
}

/// How a client proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// The SHA-256 of a static key sent as `Authorization: Bearer <key>`.
    Key([u8; 32]),
    /// An Entra ID access token whose identity matches.
    Entra(EntraMatch),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Key(_) => f.write_str("Key(***)"),
            ClientAuth::Entra(m) => write!(f, "Entra({m:?})"),
        }
    }
}

/// `entra: { app_id | object_id | role }`: which token identity is this client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntraMatch {
    /// The agent's client id: `appid` (v1) or `azp` (v2).
    AppId(String),
    /// The agent's service principal / managed identity object id: `oid`.
    ObjectId(String),
    /// An app role of the gateway's app granted to the agent: one of `roles`.
    Role(String),
}

/// One entry of `clients:`.
#[derive(Debug, Clone)]
pub struct ClientKey {
    pub name: String,
    pub auth: ClientAuth,
    pub tenants: Vec<String>,
    /// `limits:` (only `requests_per_second`, `burst`, `max_concurrent`), inside the tenant's.
    pub limits: Option<Limits>,
    /// Per tenant named under `policy:`; a listed tenant without an entry uses its own policy.
    pub per_tenant: BTreeMap<String, ClientTenant>,
}

impl ClientKey {
    /// The policy this client runs under on `tenant`, when it narrows the tenant's.
    pub fn policy_for(&self, tenant: &str) -> Option<&Arc<Policy>> {
        self.per_tenant.get(tenant)?.effective.as_ref()
    }

    /// The Entra object id of the Dataverse user this client acts as on `tenant`.
    pub fn act_as(&self, tenant: &str) -> Option<&str> {
        self.per_tenant.get(tenant)?.act_as.as_deref()
    }
}

/// `clients[i].policy.<tenant>`.
#[derive(Debug, Clone, Default)]
pub struct ClientTenant {
    /// The client's own rules as written; `None` when the entry sets only `act_as`.
    pub own: Option<Policy>,
    /// The tenant's policy intersected with `own` (`None` when `own` is).
    pub effective: Option<Arc<Policy>>,
    /// `act_as.caller_object_id`.
    pub act_as: Option<String>,
}

/// A decision's reason, worded for a client's effective policy: the decision module speaks of
/// "this tenant's" allowlist or lists, which here are the client's.
pub fn as_client_reason(reason: &str) -> String {
    reason.replace("this tenant's", "the client's")
}

/// The policy that allows exactly what both `tenant` and `own` allow.
pub fn intersect(tenant: &Policy, own: &Policy) -> Policy {
    let mut tables = BTreeMap::new();
    for (set, rule) in &own.tables {
        let Some(outer) = tenant.tables.get(set) else {
            continue;
        };
        let verbs: Vec<_> = rule
            .verbs
            .iter()
            .copied()
            .filter(|v| outer.verbs.contains(v))
            .collect();
        // Kept even without verbs: a listed table's definition may be read.
        let columns = match (&outer.columns, &rule.columns) {
            (None, c) | (c, None) => c.clone(),
            (Some(t), Some(c)) => Some(c.iter().filter(|x| t.contains(x)).cloned().collect()),
        };
        tables.insert(set.clone(), TableRule { verbs, columns });
    }
    let both = |a: &[String], b: &[String]| -> Vec<String> {
        b.iter().filter(|x| a.contains(x)).cloned().collect()
    };
    Policy {
        tables,
        functions: both(&tenant.functions, &own.functions),
        actions: both(&tenant.actions, &own.actions),
        allow_metadata: tenant.allow_metadata && own.allow_metadata,
        allow_all_entity_definitions: tenant.allow_all_entity_definitions
            && own.allow_all_entity_definitions,
        allow_uninspectable: both(&tenant.allow_uninspectable, &own.allow_uninspectable),
    }
}

/// A client rule the tenant does not allow: where it is (keys below the client's tenant entry)
/// and why it is dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widening {
    pub keys: Vec<String>,
    pub message: String,
}

/// Every rule of `own` that `tenant` does not allow. A client table without a column list on a
/// tenant table with one is not a widening: it reads as "the tenant's columns".
pub fn widenings(tenant_name: &str, tenant: &Policy, own: &Policy) -> Vec<Widening> {
    let mut out = Vec::new();
    let mut push = |keys: &[&str], message: String| {
        out.push(Widening {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            message,
        })
    };
    for (set, rule) in &own.tables {
        let Some(outer) = tenant.tables.get(set) else {
            push(
                &["allow", set],
                format!(
                    "tenant {tenant_name} does not allow table `{set}`: this rule can never apply"
                ),
            );
            continue;
        };
        for v in rule.verbs.iter().filter(|v| !outer.verbs.contains(v)) {
            push(
                &["allow", set],
                format!(
                    "tenant {tenant_name} does not allow {v} on `{set}`: this rule can never apply"
                ),
            );
        }
        if let (Some(t), Some(c)) = (&outer.columns, &rule.columns) {
            for col in c.iter().filter(|x| !t.contains(x)) {
                push(
                    &["allow", set],
                    format!("tenant {tenant_name} does not allow column `{col}` of `{set}`"),
                );
            }
        }
    }
    let lists = [
        ("functions", &tenant.functions, &own.functions),
        ("actions", &tenant.actions, &own.actions),
        (
            "allow_uninspectable",
            &tenant.allow_uninspectable,
            &own.allow_uninspectable,
        ),
    ];
    for (key, outer, inner) in lists {
        for name in inner.iter().filter(|n| !outer.contains(n)) {
            push(
                &[key],
                format!(
                    "tenant {tenant_name}'s `{key}` does not list `{name}`: this rule can never apply"
                ),
            );
        }
    }
    let flags = [
        ("allow_metadata", tenant.allow_metadata, own.allow_metadata),
        (
            "allow_all_entity_definitions",
            tenant.allow_all_entity_definitions,
            own.allow_all_entity_definitions,
        ),
    ];
    for (key, outer, inner) in flags {
        if inner && !outer {
            push(
                &[key],
                format!("tenant {tenant_name} does not set `{key}`: this rule can never apply"),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Verb;

    fn rule(verbs: &[Verb], columns: Option<&[&str]>) -> TableRule {
        TableRule {
            verbs: verbs.to_vec(),
            columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn intersection_keeps_only_what_both_allow() {
        let mut tenant = Policy::default();
        tenant
            .tables
            .insert("leads".into(), rule(&[Verb::Get, Verb::Post], None));
        tenant.tables.insert(
            "contacts".into(),
            rule(&[Verb::Get], Some(&["fullname", "emailaddress1"])),
        );
        tenant.functions = vec!["WhoAmI".into()];
        let mut own = Policy::default();
        own.tables
            .insert("leads".into(), rule(&[Verb::Get, Verb::Delete], None));
        own.tables.insert(
            "contacts".into(),
            rule(&[Verb::Get], Some(&["fullname", "telephone1"])),
        );
        own.tables
            .insert("accounts".into(), rule(&[Verb::Get], None));
        own.functions = vec!["WhoAmI".into(), "RetrieveVersion".into()];
        own.allow_metadata = true;
        let eff = intersect(&tenant, &own);
        assert_eq!(eff.tables["leads"].verbs, vec![Verb::Get]);
        assert_eq!(
            eff.tables["contacts"].columns.as_deref(),
            Some(&["fullname".to_string()][..])
        );
        assert!(!eff.tables.contains_key("accounts"));
        assert_eq!(eff.functions, vec!["WhoAmI".to_string()]);
        assert!(!eff.allow_metadata);
        let w = widenings("contoso", &tenant, &own);
        let messages: Vec<_> = w.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(w.len(), 5, "{messages:#?}");
        assert!(messages[0].contains("does not allow table `accounts`"));
        assert!(messages.iter().any(|m| m.contains("column `telephone1`")));
        assert!(messages.iter().any(|m| m.contains("DELETE on `leads`")));
        assert!(messages.iter().any(|m| m.contains("`RetrieveVersion`")));
        assert!(messages.iter().any(|m| m.contains("`allow_metadata`")));
    }

    #[test]
    fn a_client_table_without_columns_takes_the_tenants() {
        let mut tenant = Policy::default();
        tenant
            .tables
            .insert("contacts".into(), rule(&[Verb::Get], Some(&["fullname"])));
        let mut own = Policy::default();
        own.tables
            .insert("contacts".into(), rule(&[Verb::Get], None));
        assert!(widenings("t", &tenant, &own).is_empty());
        assert_eq!(
            intersect(&tenant, &own).tables["contacts"],
            tenant.tables["contacts"]
        );
    }
}
