//! Readers for the operational keys of `gateway.yaml`: `audit` and `log_format`.

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
}
