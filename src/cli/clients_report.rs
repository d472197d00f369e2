//! `check`'s section on clients: who each is (static key, or which Entra identity), its own
//! limits, and per tenant the EFFECTIVE policy it runs under (the tenant's intersected with its
//! own, computed when the config was read) and the Dataverse user it acts as. This is what a
//! reviewer reads to know what each agent can do. Pure: values in, text out.

use std::fmt::Write as _;

use crate::config::{ClientAuth, ClientKey, Config, EntraMatch, Limits};

/// Appends the clients section (nothing when no clients are configured).
pub fn write(out: &mut String, config: &Config) {
    if let Some(a) = &config.agent_auth {
        let _ = writeln!(
            out,
            "agent tokens: Entra ID tenant {}, audience {}, keys from {}",
            a.tenant_id,
            a.audience,
            a.openid_configuration()
        );
    }
    for c in &config.clients {
        let _ = writeln!(out, "client {} ({})", c.name, identity(c));
        if let Some(l) = &c.limits {
            let _ = writeln!(out, "  own limits: {}", limits(l));
        }
        for t in &c.tenants {
            write_tenant(out, config, c, t);
        }
    }
}

fn identity(c: &ClientKey) -> String {
    match &c.auth {
        ClientAuth::Key(_) => "static key".into(),
        ClientAuth::Entra(EntraMatch::AppId(id)) => format!("Entra token, app id {id}"),
        ClientAuth::Entra(EntraMatch::ObjectId(id)) => format!("Entra token, object id {id}"),
        ClientAuth::Entra(EntraMatch::Role(r)) => format!("Entra token with app role {r}"),
    }
}

fn limits(l: &Limits) -> String {
    let mut parts = Vec::new();
    if let Some(r) = l.requests_per_second {
        parts.push(format!("{r} requests/s, burst {}", l.burst.unwrap_or(r)));
    }
    if let Some(m) = l.max_concurrent {
        parts.push(format!("at most {m} in flight"));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn write_tenant(out: &mut String, config: &Config, c: &ClientKey, tenant: &str) {
    match c.policy_for(tenant) {
        Some(effective) => {
            let _ = writeln!(
                out,
                "  on tenant {tenant}: effective policy (the tenant's AND the client's)"
            );
            let mut rules = String::new();
            super::report::write_rules(&mut rules, effective);
            for line in rules.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        None if config.tenants.iter().any(|t| t.name == tenant) => {
            let _ = writeln!(out, "  on tenant {tenant}: the tenant's policy, unchanged");
        }
        None => {}
    }
    if let Some(id) = c.act_as(tenant) {
        let _ = writeln!(
            out,
            "    acts as the Dataverse user with Entra object id {id} (CallerObjectId)"
        );
    }
}
