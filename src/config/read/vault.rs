//! The Key Vault parts of `gateway.yaml`: the top-level `key_vault:` section and the vault-backed
//! credential forms `client_secret: { key_vault: {..} }`, `certificate: { key_vault: {..} }` and
//! `certificate: { key_vault_key: {..} }` (see [`crate::config::vault`]).
//!
//! Pure apart from reading `AZURE_*` variables for a workload identity, as `auth` does. Vault
//! URLs must be https (http only on loopback); object names follow Key Vault's rule (1-127
//! letters, digits and dashes); `refresh` is 30s to 24h.

use super::sections::parse_origin;
use super::*;
use crate::config::vault::{
    DEFAULT_VAULT_REFRESH, DEFAULT_VAULT_SCOPE, VaultAccess, VaultCredential, VaultIdentity,
    VaultObject,
};

const FORM_KEYS: [&str; 3] = ["vault", "secret", "refresh"];
const CERT_FORM_KEYS: [&str; 3] = ["vault", "certificate", "refresh"];
const MIN_REFRESH: Duration = Duration::from_secs(30);
const MAX_REFRESH: Duration = Duration::from_secs(86_400);

/// Whether `node` is a mapping that has `key` (a vault form rather than a file/env reference).
pub(super) fn has_key(node: &Node, key: &str) -> bool {
    matches!(&node.value, Value::Map(entries) if entries.iter().any(|(k, _)| k.name == key))
}

/// Gives every vault-backed credential of `tenants` the `key_vault:` access it signs in with.
pub(super) fn attach(tenants: &mut [Tenant], access: &VaultAccess) {
    for t in tenants {
        if let Credential::KeyVault(v) = &mut t.auth.credential {
            v.access = access.clone();
        }
    }
}

impl Reader {
    /// `client_secret: { key_vault: { vault, secret, refresh } }`.
    pub(super) fn vault_secret(&mut self, node: &Node, path: &str) -> Option<Credential> {
        let mut m = self.map(node, path)?;
        let inner = m.take("key_vault");
        self.finish(m, &["key_vault"]);
        let p = join(path, "key_vault");
        let (vault, name, refresh) = self.vault_form(inner?, &p, "secret")?;
        Some(Credential::KeyVault(VaultCredential {
            vault,
            object: VaultObject::Secret(name),
            alg: AssertionAlg::Ps256,
            refresh,
            access: VaultAccess::default(),
        }))
    }

    /// `certificate: { key_vault: {..} | key_vault_key: {..}, assertion_alg }`.
    pub(super) fn vault_certificate(&mut self, node: &Node, path: &str) -> Option<Credential> {
        let mut m = self.map(node, path)?;
        let with_key = m.take("key_vault");
        let signed_by_vault = m.take("key_vault_key");
        let alg = self.assertion_alg(m.take("assertion_alg"), path);
        let pos = m.pos;
        self.finish(m, &["key_vault", "key_vault_key", "assertion_alg"]);
        let (key, inner) = match (with_key, signed_by_vault) {
            (Some(n), None) => ("key_vault", n),
            (None, Some(n)) => ("key_vault_key", n),
            _ => {
                let msg = "a vault certificate takes exactly one of `key_vault` or `key_vault_key` (and no files)";
                self.error(pos, path, msg);
                return None;
            }
        };
        let (vault, name, refresh) = self.vault_form(inner, &join(path, key), "certificate")?;
        let object = if key == "key_vault" {
            VaultObject::Certificate(name)
        } else {
            VaultObject::CertificateKey(name)
        };
        Some(Credential::KeyVault(VaultCredential {
            vault,
            object,
            alg: alg?,
            refresh,
            access: VaultAccess::default(),
        }))
    }

    /// `{ vault, <object_key>, refresh }` → (vault origin, object name, refresh).
    fn vault_form(
        &mut self,
        node: &Node,
        path: &str,
        object_key: &str,
    ) -> Option<(String, String, Duration)> {
        let mut m = self.map(node, path)?;
        let vault = match m.take("vault") {
            Some(n) => self.vault_url(n, &join(path, "vault")),
            None => {
                self.error(m.pos, path, "missing required key `vault`");
                None
            }
        };
        let name = match m.take(object_key) {
            Some(n) => {
                let p = join(path, object_key);
                self.string(n, &p).filter(|s| {
                    let ok = valid_object_name(s);
                    if !ok {
                        let msg = format!("`{s}` is not a Key Vault object name (1-127 letters, digits and dashes)");
                        self.error(n.pos, &p, msg);
                    }
                    ok
                })
            }
            None => {
                self.error(m.pos, path, format!("missing required key `{object_key}`"));
                None
            }
        };
        let refresh = match m.take("refresh") {
            None => Some(DEFAULT_VAULT_REFRESH),
            Some(n) => {
                let p = join(path, "refresh");
                self.duration(n, &p).filter(|d| {
                    let ok = (MIN_REFRESH..=MAX_REFRESH).contains(d);
                    if !ok {
                        self.error(n.pos, &p, "refresh must be from 30s to 24h");
                    }
                    ok
                })
            }
        };
        let known = if object_key == "secret" {
            FORM_KEYS
        } else {
            CERT_FORM_KEYS
        };
        self.finish(m, &known);
        Some((vault?, name?, refresh?))
    }

    fn vault_url(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        match parse_origin(s.trim_end_matches('/')) {
            Ok(o) if o.https || o.loopback => Some(o.origin),
            Ok(_) => {
                let msg = format!("`{s}` must be https (http only for a loopback host)");
                self.error(node.pos, path, msg);
                None
            }
            Err(e) => {
                self.error(node.pos, path, e);
                None
            }
        }
    }

    /// The top-level `key_vault: { identity, scope }`.
    pub(super) fn key_vault(&mut self, node: &Node) -> VaultAccess {
        let mut access = VaultAccess::default();
        let Some(mut m) = self.map(node, "key_vault") else {
            return access;
        };
        if let Some(n) = m.take("scope")
            && let Some(s) = self.string(n, "key_vault.scope")
        {
            if s.ends_with("/.default") && s.starts_with("https://") {
                access.scope = s;
            } else {
                let msg = format!(
                    "`{s}` must be an https resource followed by /.default (default {DEFAULT_VAULT_SCOPE})"
                );
                self.error(n.pos, "key_vault.scope", msg);
            }
        }
        if let Some(n) = m.take("identity")
            && let Some(identity) = self.vault_identity(n, "key_vault.identity")
        {
            access.identity = identity;
        }
        self.finish(m, &["identity", "scope"]);
        access
    }

    fn vault_identity(&mut self, node: &Node, path: &str) -> Option<VaultIdentity> {
        let mut m = self.map(node, path)?;
        let managed = m.take("managed_identity");
        let workload = m.take("workload_identity");
        let pos = m.pos;
        self.finish(m, &["managed_identity", "workload_identity"]);
        match (managed, workload) {
            (Some(n), None) => match self.managed_identity(n, &join(path, "managed_identity"))? {
                Credential::ManagedIdentity {
                    client_id,
                    endpoint,
                } => Some(VaultIdentity::Managed {
                    client_id,
                    endpoint,
                }),
                _ => None,
            },
            (None, Some(n)) => self.vault_workload(n, &join(path, "workload_identity")),
            _ => {
                let msg = "expected exactly one of `managed_identity` or `workload_identity`";
                self.error(pos, path, msg);
                None
            }
        }
    }

    /// `workload_identity: { token_file, tenant_id, client_id, authority }`, each falling back to
    /// its `AZURE_*` variable.
    fn vault_workload(&mut self, node: &Node, path: &str) -> Option<VaultIdentity> {
        let mut given: [Option<String>; 4] = Default::default();
        const KEYS: [&str; 4] = ["token_file", "tenant_id", "client_id", "authority"];
        const VARS: [&str; 4] = [
            "AZURE_FEDERATED_TOKEN_FILE",
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_AUTHORITY_HOST",
        ];
        if !matches!(node.value, Value::Null) {
            let mut m = self.map(node, path)?;
            for (i, key) in KEYS.iter().enumerate() {
                given[i] = m.take(key).and_then(|n| self.string(n, &join(path, key)));
            }
            self.finish(m, &KEYS);
        }
        for (i, var) in VARS.iter().enumerate() {
            if given[i].is_none() {
                given[i] = std::env::var(var).ok().filter(|v| !v.trim().is_empty());
            }
            if given[i].is_none() && i < 3 {
                let msg = format!("no `{}`, and {var} is not set on this machine", KEYS[i]);
                self.warn(node.pos, &join(path, KEYS[i]), msg);
                if let Some(last) = self.diags.warnings.last_mut() {
                    last.fatal_for_serve = true;
                }
            }
        }
        let [token_file, tenant_id, client_id, authority] = given;
        let authority = match authority {
            None => "https://login.microsoftonline.com".to_string(),
            Some(a) => match parse_origin(a.trim_end_matches('/')) {
                Ok(o) if o.https || o.loopback => o.origin,
                _ => {
                    let msg = format!("`{a}` is not an https origin");
                    self.error(node.pos, &join(path, "authority"), msg);
                    return None;
                }
            },
        };
        Some(VaultIdentity::Workload {
            token_file: PathBuf::from(token_file.unwrap_or_default()),
            tenant_id: tenant_id.unwrap_or_default(),
            client_id: client_id.unwrap_or_default(),
            authority,
        })
    }
}

fn valid_object_name(s: &str) -> bool {
    (1..=127).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
#[path = "vault_tests.rs"]
mod tests;
