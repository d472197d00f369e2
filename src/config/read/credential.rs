//! The credential part of `auth`: exactly one of `client_secret`, `certificate`,
//! `managed_identity`, `workload_identity`; the identity fields each kind needs (workload
//! identity falls back to `AZURE_*` environment variables); and the hygiene warnings (two tenants
//! sharing one app registration, an authority and a Dataverse host in different clouds).
//!
//! Pure apart from reading the environment and checking that files exist, as the secret reader
//! already does: an unreadable file or a missing variable is a warning for `check` (a reviewer
//! runs it without the secrets) that stops `serve`.

use super::sections::parse_origin;
use super::*;
use crate::config::{AssertionAlg, CertificateFiles, CertificateSource};

const CREDENTIAL_KEYS: [&str; 4] = [
    "client_secret",
    "certificate",
    "managed_identity",
    "workload_identity",
];

/// `tenant_id`, `client_id` and `authority` as written (authority already validated).
pub(super) struct Identity {
    pub tenant_id: Option<(String, Pos)>,
    pub client_id: Option<(String, Pos)>,
    pub authority: Option<String>,
}

/// The cloud a host belongs to, when it is one of Microsoft's well-known ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Public,
    UsGovernment,
    China,
}

impl Cloud {
    fn name(self) -> &'static str {
        match self {
            Cloud::Public => "the public cloud",
            Cloud::UsGovernment => "US Government",
            Cloud::China => "China (21Vianet)",
        }
    }
}

/// The cloud of an Entra authority origin.
pub fn authority_cloud(origin: &str) -> Option<Cloud> {
    let host = host_of(origin);
    match host.as_str() {
        "login.microsoftonline.com" | "login.windows.net" => Some(Cloud::Public),
        "login.microsoftonline.us" => Some(Cloud::UsGovernment),
        "login.partner.microsoftonline.cn" | "login.chinacloudapi.cn" => Some(Cloud::China),
        _ => None,
    }
}

/// The cloud of a Dataverse origin (GCC, `crm9`, uses the public cloud's Entra ID).
pub fn dataverse_cloud(origin: &str) -> Option<Cloud> {
    let host = host_of(origin);
    if host.ends_with(".crm.dynamics.cn") {
        Some(Cloud::China)
    } else if host.ends_with(".microsoftdynamics.us") || host.ends_with(".appsplatform.us") {
        Some(Cloud::UsGovernment)
    } else if host.ends_with(".dynamics.com") {
        Some(Cloud::Public)
    } else {
        None
    }
}

fn host_of(origin: &str) -> String {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host.to_ascii_lowercase()
}

impl Reader {
    /// `assertion_alg` under a certificate (file or vault): PS256 (the default) or RS256.
    pub(super) fn assertion_alg(
        &mut self,
        node: Option<&Node>,
        path: &str,
    ) -> Option<AssertionAlg> {
        let Some(n) = node else {
            return Some(AssertionAlg::Ps256);
        };
        match self.string(n, &join(path, "assertion_alg")).as_deref() {
            Some("PS256") => Some(AssertionAlg::Ps256),
            Some("RS256") => Some(AssertionAlg::Rs256),
            Some(other) => {
                let msg = format!("`{other}` is not PS256 or RS256");
                self.error(n.pos, &join(path, "assertion_alg"), msg);
                None
            }
            None => None,
        }
    }

    /// Reads the one credential of an `auth` mapping.
    pub(super) fn credential(&mut self, m: &mut Map<'_>, path: &str) -> Option<Credential> {
        let given: Vec<(&str, &Node)> = CREDENTIAL_KEYS
            .iter()
            .filter_map(|k| m.take(k).map(|n| (*k, n)))
            .collect();
        let (key, node) = match given.as_slice() {
            [one] => *one,
            [] => {
                let msg = format!("one credential is required: {}", CREDENTIAL_KEYS.join(", "));
                self.error(m.pos, path, msg);
                return None;
            }
            [_, rest @ ..] => {
                for (k, n) in rest {
                    let msg = format!(
                        "only one credential may be given (found `{}` too)",
                        given[0].0
                    );
                    self.error(n.pos, &join(path, k), msg);
                }
                return None;
            }
        };
        let p = join(path, key);
        match key {
            "client_secret" if super::vault::has_key(node, "key_vault") => {
                self.vault_secret(node, &p)
            }
            "client_secret" => self.secret_ref(node, &p).map(Credential::ClientSecret),
            "certificate"
                if super::vault::has_key(node, "key_vault")
                    || super::vault::has_key(node, "key_vault_key") =>
            {
                self.vault_certificate(node, &p)
            }
            "certificate" => self.certificate(node, &p).map(Credential::Certificate),
            "managed_identity" => self.managed_identity(node, &p),
            _ => self.workload_identity(node, &p),
        }
    }

    fn certificate(&mut self, node: &Node, path: &str) -> Option<CertificateFiles> {
        let mut m = self.map(node, path)?;
        let file = |r: &mut Reader, m: &mut Map<'_>, key: &str| {
            let n = m.take(key)?;
            let p = join(path, key);
            let file = r.path(n, &p)?;
            if let Err(e) = std::fs::metadata(&file) {
                let msg = format!("cannot read {} on this machine: {e}", file.display());
                r.warn(n.pos, &p, msg);
                if let Some(last) = r.diags.warnings.last_mut() {
                    last.fatal_for_serve = true;
                }
            }
            Some(file)
        };
        let cert_file = file(self, &mut m, "cert_file");
        let key_file = file(self, &mut m, "key_file");
        let pkcs12_file = file(self, &mut m, "pkcs12_file");
        let password = m
            .take("password")
            .and_then(|n| self.secret_ref(n, &join(path, "password")));
        let alg = self.assertion_alg(m.take("assertion_alg"), path);
        let pos = m.pos;
        self.finish(
            m,
            &[
                "cert_file",
                "key_file",
                "pkcs12_file",
                "password",
                "assertion_alg",
            ],
        );
        let source = match (cert_file, key_file, pkcs12_file) {
            (Some(cert_file), key_file, None) if password.is_none() => CertificateSource::Pem {
                cert_file,
                key_file,
            },
            (None, None, Some(file)) => CertificateSource::Pkcs12 { file, password },
            _ => {
                let msg = "expected `cert_file` (+ optional `key_file`) or `pkcs12_file` (+ optional `password`)";
                self.error(pos, path, msg);
                return None;
            }
        };
        Some(CertificateFiles { source, alg: alg? })
    }

    pub(super) fn managed_identity(&mut self, node: &Node, path: &str) -> Option<Credential> {
        if let Value::Null = node.value {
            return Some(Credential::ManagedIdentity {
                client_id: None,
                endpoint: None,
            });
        }
        let mut m = self.map(node, path)?;
        let client_id = m
            .take("client_id")
            .and_then(|n| self.string(n, &join(path, "client_id")));
        let endpoint = m.take("endpoint").and_then(|n| {
            let p = join(path, "endpoint");
            let s = self.string(n, &p)?;
            match s.parse::<http::Uri>() {
                Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
                    Some(s)
                }
                _ => {
                    self.error(n.pos, &p, format!("`{s}` is not an http(s) URL"));
                    None
                }
            }
        });
        self.finish(m, &["client_id", "endpoint"]);
        Some(Credential::ManagedIdentity {
            client_id,
            endpoint,
        })
    }

    fn workload_identity(&mut self, node: &Node, path: &str) -> Option<Credential> {
        let mut token_file = None;
        if !matches!(node.value, Value::Null) {
            let mut m = self.map(node, path)?;
            token_file = m
                .take("token_file")
                .and_then(|n| self.path(n, &join(path, "token_file")));
            self.finish(m, &["token_file"]);
        }
        let token_file = match token_file
            .or_else(|| env("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from))
        {
            Some(f) => f,
            None => {
                let msg =
                    "no `token_file`, and AZURE_FEDERATED_TOKEN_FILE is not set on this machine";
                self.fatal_warning(node.pos, path, msg);
                PathBuf::new()
            }
        };
        Some(Credential::WorkloadIdentity { token_file })
    }

    /// Fills `tenant_id`, `client_id` and `authority` for the credential kind; reports what is
    /// missing. Returns `(tenant_id, client_id, authority)`.
    pub(super) fn identity(
        &mut self,
        pos: Pos,
        path: &str,
        given: Identity,
        credential: Option<&Credential>,
    ) -> (Option<String>, Option<String>, Option<String>) {
        let workload = matches!(credential, Some(Credential::WorkloadIdentity { .. }));
        let managed = matches!(credential, Some(Credential::ManagedIdentity { .. }));
        let field = |r: &mut Reader, value: Option<(String, Pos)>, key: &str, var: &str| match value
        {
            Some((v, _)) => Some(v),
            None if managed => Some(String::new()),
            None if workload => env(var).or_else(|| {
                let msg = format!("no `{key}`, and {var} is not set on this machine");
                r.fatal_warning(pos, &join(path, key), &msg);
                Some(String::new())
            }),
            None => {
                r.error(pos, path, format!("missing required key `{key}`"));
                None
            }
        };
        let client_pos = given.client_id.as_ref().map(|(_, p)| *p);
        let tenant_id = field(self, given.tenant_id, "tenant_id", "AZURE_TENANT_ID");
        let client_id = field(self, given.client_id, "client_id", "AZURE_CLIENT_ID");
        let authority = given.authority.or_else(|| {
            let host = env("AZURE_AUTHORITY_HOST").filter(|_| workload);
            let host = host.and_then(|h| parse_origin(h.trim_end_matches('/')).ok());
            Some(host.map_or("https://login.microsoftonline.com".into(), |o| o.origin))
        });
        if let (Some(id), Some(p)) = (&client_id, client_pos)
            && !id.is_empty()
        {
            let tenant = path.trim_end_matches(".auth").to_string();
            if let Some((_, other)) = self
                .client_ids
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(id))
            {
                let msg = format!(
                    "{other} uses the same client_id: give each environment its own app registration and application user"
                );
                self.warn(p, &join(path, "client_id"), msg);
            }
            self.client_ids.push((id.clone(), tenant));
        }
        (tenant_id, client_id, authority)
    }

    /// Warns when the authority and the Dataverse host are in different clouds.
    pub(super) fn cloud_check(&mut self, pos: Pos, path: &str, authority: &str, dataverse: &str) {
        if let (Some(a), Some(d)) = (authority_cloud(authority), dataverse_cloud(dataverse))
            && a != d
        {
            let msg = format!(
                "the authority {authority} is in {}, but {dataverse} is in {}: tokens will be refused (set `authority`)",
                a.name(),
                d.name()
            );
            self.warn(pos, &join(path, "authority"), msg);
        }
    }

    fn fatal_warning(&mut self, pos: Pos, path: &str, msg: &str) {
        self.warn(pos, path, msg);
        if let Some(last) = self.diags.warnings.last_mut() {
            last.fatal_for_serve = true;
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
#[path = "credential_tests.rs"]
mod tests;
