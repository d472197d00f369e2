//! Human-readable reports for `check` and `explain`. Pure: values in, text out.

use std::fmt::Write as _;

use crate::config::{Config, Diagnostic, Verb};
use crate::policy::decision::Decision;

/// The per-tenant policy matrix (table x verb, columns, functions, actions) and the warnings.
pub fn policy_matrix(config: &Config, warnings: &[Diagnostic]) -> String {
    let mut out = String::new();
    for t in &config.tenants {
        let default = if t.default { " (default)" } else { "" };
        let _ = writeln!(
            out,
            "tenant {}{default} -> {} [{}]",
            t.name, t.dataverse.url, t.dataverse.api_version
        );
        write_rules(&mut out, &t.policy);
        let _ = match t.limits.max_concurrent {
            Some(n) => writeln!(out, "  in flight to Dataverse: at most {n}"),
            None => writeln!(
                out,
                "  in flight to Dataverse: at most {} (default: max_concurrent not set; Dataverse fails beyond 52 per app user)",
                crate::config::DEFAULT_MAX_CONCURRENT
            ),
        };
    }
    super::clients_report::write(&mut out, config);
    if !warnings.is_empty() {
        let _ = writeln!(out, "warnings:");
        for w in warnings {
            let _ = writeln!(out, "  {w}");
        }
    }
    out
}

/// The rules of one policy: table x verb and columns, functions, actions, metadata reads.
pub fn write_rules(out: &mut String, policy: &crate::config::Policy) {
    let width = policy
        .tables
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "  {:width$}  GET  POST  PATCH  PUT  DELETE  columns",
        "table"
    );
    for (set, rule) in &policy.tables {
        let cell = |v: Verb, w: usize| format!("{:w$}", if rule.allows(v) { "yes" } else { "-" });
        let columns = rule
            .columns
            .as_ref()
            .map_or("all".to_string(), |c| c.join(", "));
        let _ = writeln!(
            out,
            "  {set:width$}  {}  {}  {}  {}  {}  {columns}",
            cell(Verb::Get, 3),
            cell(Verb::Post, 4),
            cell(Verb::Patch, 5),
            cell(Verb::Put, 3),
            cell(Verb::Delete, 6),
        );
    }
    if policy.tables.is_empty() {
        let _ = writeln!(out, "  (no tables: every table request is denied)");
    }
    let _ = writeln!(out, "  functions: {}", list(&policy.functions));
    let _ = writeln!(out, "  actions: {}", list(&policy.actions));
    if !policy.allow_uninspectable.is_empty() {
        let kinds = policy.allow_uninspectable.join(", ");
        let _ = writeln!(out, "  UNINSPECTABLE queries allowed: {kinds}");
    }
    let mut meta = vec!["EntityDefinitions of listed tables".to_string()];
    if policy.allow_all_entity_definitions {
        meta.push("all EntityDefinitions".into());
    }
    if policy.allow_metadata {
        meta.push("$metadata".into());
    }
    let _ = writeln!(out, "  metadata reads: {}", meta.join(", "));
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

/// What `explain` prints for one decision.
pub fn explanation(tenant: &str, method: &str, url: &str, d: &Decision) -> String {
    let mut out = String::new();
    let verdict = crate::policy::inspect::verdict(d);
    let _ = writeln!(out, "{verdict} {method} {url}");
    let _ = writeln!(out, "  tenant: {tenant}");
    for a in &d.uses {
        let _ = writeln!(out, "  touches: {a}");
    }
    let _ = writeln!(
        out,
        "  {}: {}",
        if d.allowed() { "rule" } else { "reason" },
        d.reason()
    );
    if let Some(s) = &d.add_select {
        let _ = writeln!(out, "  adds: $select={s}");
    }
    if d.if_match_star {
        let _ = writeln!(out, "  adds: If-Match: * (PATCH must not create rows)");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_prints_each_tenants_concurrency_cap_and_says_when_it_is_the_default() {
        let text = "tenants:
  a:
    dataverse: { url: https://a.crm.dynamics.com }
    auth: { tenant_id: t, client_id: c, client_secret: { env: DVGW_TEST_UNSET } }
  b:
    dataverse: { url: https://b.crm.dynamics.com }
    auth: { tenant_id: t, client_id: c2, client_secret: { env: DVGW_TEST_UNSET } }
    limits: { max_concurrent: 8 }
";
        let (config, warnings) = crate::config::parse_str(text, "g.yaml").unwrap();
        let out = super::policy_matrix(&config, &warnings);
        assert!(
            out.contains("in flight to Dataverse: at most 52 (default: max_concurrent not set"),
            "{out}"
        );
        assert!(out.contains("in flight to Dataverse: at most 8\n"), "{out}");
    }
}
