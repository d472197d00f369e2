//! Routing (see docs/configuration.md, `tenants` and `hosts`): which tenant a request is for, and the Dataverse path it names.
//!
//! Pure. `/{tenant}/api/data/{version}/...` names the tenant; `/api/data/{version}/...` goes to
//! the tenant whose `hosts` match the Host header, else the default tenant. Anything else is
//! not found.

use std::collections::HashMap;

use crate::config::Tenant;

#[derive(Debug, Default, Clone)]
pub struct Routes {
    by_name: HashMap<String, usize>,
    by_host: HashMap<String, usize>,
    default: Option<usize>,
}

/// A routed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed<'a> {
    /// Index of the tenant in the config's tenant list.
    pub tenant: usize,
    /// The request named the tenant in its path (`/{tenant}/api/...`).
    pub prefixed: bool,
    pub api_version: &'a str,
    /// The raw resource path after `/api/data/{version}/`, possibly empty.
    pub resource: &'a str,
}

impl Routes {
    pub fn new(tenants: &[Tenant]) -> Routes {
        let mut routes = Routes::default();
        for (i, t) in tenants.iter().enumerate() {
            routes.by_name.insert(t.name.clone(), i);
            for h in &t.hosts {
                routes.by_host.insert(h.to_ascii_lowercase(), i);
            }
            if t.default {
                routes.default = Some(i);
            }
        }
        routes
    }

    /// `host` is the Host header (or HTTP/2 authority), with or without a port.
    pub fn route<'a>(&self, path: &'a str, host: Option<&str>) -> Result<Routed<'a>, String> {
        if let Some(rest) = path.strip_prefix("/api/data/") {
            let tenant = host
                .filter(|_| !self.by_host.is_empty())
                .and_then(|h| {
                    let h = strip_port(h);
                    match h.bytes().any(|b| b.is_ascii_uppercase()) {
                        true => self.by_host.get(&h.to_ascii_lowercase()),
                        false => self.by_host.get(h),
                    }
                })
                .copied()
                .or(self.default)
                .ok_or("no tenant serves this host: use /{tenant}/api/data/... or configure a default tenant")?;
            return Ok(split_version(rest, tenant, false));
        }
        let Some((name, rest)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
            return Err(format!("`{path}` is not a Dataverse Web API path"));
        };
        let Some(rest) = rest.strip_prefix("api/data/") else {
            return Err(format!("`{path}` is not a Dataverse Web API path"));
        };
        let tenant = *self
            .by_name
            .get(name)
            .ok_or_else(|| format!("unknown tenant `{name}`"))?;
        Ok(split_version(rest, tenant, true))
    }
}

fn split_version(rest: &str, tenant: usize, prefixed: bool) -> Routed<'_> {
    let (api_version, resource) = rest.split_once('/').unwrap_or((rest, ""));
    Routed {
        tenant,
        prefixed,
        api_version,
        resource,
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        let mut r = Routes::default();
        r.by_name.insert("contoso".into(), 0);
        r.by_name.insert("fabrikam".into(), 1);
        r.by_host.insert("fabrikam.gw.internal".into(), 1);
        r.default = Some(0);
        r
    }

    #[test]
    fn routes_by_prefix_host_and_default() {
        let r = routes();
        let x = r.route("/fabrikam/api/data/v9.2/contacts", None).unwrap();
        assert_eq!(
            (x.tenant, x.prefixed, x.api_version, x.resource),
            (1, true, "v9.2", "contacts")
        );
        let x = r
            .route(
                "/api/data/v9.2/contacts(1)",
                Some("Fabrikam.gw.internal:8080"),
            )
            .unwrap();
        assert_eq!(
            (x.tenant, x.prefixed, x.resource),
            (1, false, "contacts(1)")
        );
        let x = r.route("/api/data/v9.2/WhoAmI", Some("other:1")).unwrap();
        assert_eq!(x.tenant, 0);
        let x = r.route("/api/data/v9.2", None).unwrap();
        assert_eq!((x.api_version, x.resource), ("v9.2", ""));
    }

    #[test]
    fn unknown_is_not_found() {
        let r = routes();
        assert!(r.route("/nope/api/data/v9.2/contacts", None).is_err());
        assert!(r.route("/", None).is_err());
        assert!(r.route("/contoso/other", None).is_err());
        assert!(r.route("/metrics", None).is_err());
        let no_default = Routes {
            default: None,
            ..routes()
        };
        assert!(
            no_default
                .route("/api/data/v9.2/contacts", Some("x"))
                .is_err()
        );
    }
}
