//! Readers for the operational keys of `gateway.yaml`: `audit`, `log_format`, `timeouts` and
//! the top-level `limits`.

use super::*;

impl Reader {
    pub(super) fn audit(&mut self, node: &Node) -> Option<Audit> {
        let mut m = self.map(node, "audit")?;
        let output = match m.take("output") {
            Some(n) => self
                .string(n, "audit.output")
                .and_then(|s| match s.as_str() {
                    "stdout" => Some(AuditOutput::Stdout),
                    "" => {
                        self.error(n.pos, "audit.output", "expected `stdout` or a file path");
                        None
                    }
                    _ => Some(AuditOutput::File(s.into())),
                }),
            None => {
                self.error(m.pos, "audit", "missing required key `output`");
                None
            }
        };
        let query_values = m
            .take("query_values")
            .map_or(Some(false), |n| self.boolean(n, "audit.query_values"));
        self.finish(m, &["output", "query_values"]);
        Some(Audit {
            output: output?,
            query_values: query_values?,
        })
    }

    pub(super) fn log_format(&mut self, node: &Node) -> Option<LogFormat> {
        let s = self.string(node, "log_format")?;
        match s.as_str() {
            "auto" => Some(LogFormat::Auto),
            "json" => Some(LogFormat::Json),
            "text" => Some(LogFormat::Text),
            _ => {
                let msg = format!("`{s}` is not a log format: expected auto, json or text");
                self.error(node.pos, "log_format", msg);
                None
            }
        }
    }

    pub(super) fn timeouts(&mut self, node: &Node) -> Timeouts {
        let mut t = Timeouts::default();
        let Some(mut m) = self.map(node, "timeouts") else {
            return t;
        };
        let fields: [(&str, &mut Duration); 10] = [
            ("connect", &mut t.connect),
            ("response_headers", &mut t.response_headers),
            ("idle", &mut t.idle),
            ("request_head", &mut t.request_head),
            ("request_body_idle", &mut t.request_body_idle),
            ("request_body", &mut t.request_body),
            ("upstream_body_idle", &mut t.upstream_body_idle),
            ("response_body_idle", &mut t.response_body_idle),
            ("token_request", &mut t.token_request),
            ("token_wait", &mut t.token_wait),
        ];
        let mut keys = Vec::with_capacity(fields.len());
        for (key, slot) in fields {
            keys.push(key);
            let path = join("timeouts", key);
            let Some(n) = m.take(key) else { continue };
            match self.duration(n, &path) {
                Some(d) if d.is_zero() => self.error(n.pos, &path, "must be longer than 0s"),
                Some(d) => *slot = d,
                None => {}
            }
        }
        self.finish(m, &keys);
        t
    }

    /// Top-level `limits:` (the tenants' own `limits:` are read by [`Reader::limits`]).
    pub(super) fn process_limits(&mut self, node: &Node) -> ProcessLimits {
        let mut l = ProcessLimits::default();
        let Some(mut m) = self.map(node, "limits") else {
            return l;
        };
        l.max_connections = m
            .take("max_connections")
            .and_then(|n| self.number(n, "limits.max_connections", 1, 10_000_000));
        let p = "limits.max_buffered_bytes";
        if let Some(n) = m.take("max_buffered_bytes").and_then(|n| self.size(n, p)) {
            l.max_buffered_bytes = n;
        }
        self.finish(m, &["max_connections", "max_buffered_bytes"]);
        l
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_str;
    use super::*;

    const TENANTS: &str = "tenants:\n  t:\n    dataverse:\n      url: https://t.crm.dynamics.com\n    auth:\n      tenant_id: a\n      client_id: b\n      client_secret: { env: DVGW_TEST_UNSET }\n";

    #[test]
    fn ops_keys_read_with_defaults() {
        let (c, _) = parse_str(TENANTS, "g.yaml").unwrap();
        assert_eq!(c.log_format, LogFormat::Auto);
        assert_eq!(c.shutdown_grace, Duration::from_secs(30));
        assert!(c.audit.is_none() && c.admin_listen.is_none());
        let text = format!(
            "admin_listen: 127.0.0.1:9090\nlog_format: json\nshutdown_grace: 5s\naudit:\n  output: /var/log/audit.jsonl\n  query_values: true\n{TENANTS}"
        );
        let (c, _) = parse_str(&text, "g.yaml").unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.shutdown_grace, Duration::from_secs(5));
        let audit = c.audit.unwrap();
        assert_eq!(
            audit.output,
            AuditOutput::File("/var/log/audit.jsonl".into())
        );
        assert!(audit.query_values);
    }

    #[test]
    fn bad_ops_keys_are_errors_with_positions() {
        let text = format!("log_format: pretty\naudit:\n  query_values: maybe\n{TENANTS}");
        let errors: Vec<String> = parse_str(&text, "g.yaml")
            .unwrap_err()
            .errors
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            errors,
            [
                "g.yaml:1:13: log_format: `pretty` is not a log format: expected auto, json or text",
                "g.yaml:3:3: audit: missing required key `output`",
                "g.yaml:3:17: audit.query_values: expected true or false",
            ]
        );
    }
}
