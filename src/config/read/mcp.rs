//! Reader for the top-level `mcp:` section.

use super::*;
use crate::config::mcp::{McpSettings, PAGE_SIZE_RANGE, RESULT_BYTES_RANGE};

impl Reader {
    pub(super) fn mcp(&mut self, node: &Node) -> McpSettings {
        let mut s = McpSettings::default();
        let Some(mut m) = self.map(node, "mcp") else {
            return s;
        };
        let (min, max) = PAGE_SIZE_RANGE;
        if let Some(n) = m
            .take("max_page_size")
            .and_then(|n| self.number(n, "mcp.max_page_size", min, max))
        {
            s.max_page_size = n;
        }
        let path = "mcp.max_result_bytes";
        if let Some(n) = m.take("max_result_bytes") {
            let (min, max) = RESULT_BYTES_RANGE;
            match self.size(n, path) {
                Some(b) if (min..=max).contains(&b) => s.max_result_bytes = b,
                Some(_) => self.error(n.pos, path, "must be from 1KiB to 64MiB"),
                None => {}
            }
        }
        self.finish(m, &["max_page_size", "max_result_bytes"]);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_str;
    use super::*;

    const TENANTS: &str = "tenants:\n  t:\n    dataverse:\n      url: https://t.crm.dynamics.com\n    auth:\n      tenant_id: a\n      client_id: b\n      client_secret: { env: DVGW_TEST_UNSET }\n";

    #[test]
    fn mcp_defaults_and_values() {
        let (c, _) = parse_str(TENANTS, "g.yaml").unwrap();
        assert_eq!(c.mcp, McpSettings::default());
        assert_eq!((c.mcp.max_page_size, c.mcp.max_result_bytes), (50, 1 << 20));
        let text = format!("mcp:\n  max_page_size: 200\n  max_result_bytes: 4MiB\n{TENANTS}");
        let (c, _) = parse_str(&text, "g.yaml").unwrap();
        assert_eq!(
            (c.mcp.max_page_size, c.mcp.max_result_bytes),
            (200, 4 << 20)
        );
    }

    #[test]
    fn bad_mcp_values_are_errors_with_positions() {
        let text =
            format!("mcp:\n  max_page_size: 0\n  max_result_bytes: 65MiB\n  page: 3\n{TENANTS}");
        let errors: Vec<String> = parse_str(&text, "g.yaml")
            .unwrap_err()
            .errors
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            errors,
            [
                "g.yaml:2:18: mcp.max_page_size: expected a whole number from 1 to 5000",
                "g.yaml:3:21: mcp.max_result_bytes: must be from 1KiB to 64MiB",
                "g.yaml:4:3: mcp.page: unknown key `page` (expected one of: max_page_size, max_result_bytes)",
            ]
        );
    }
}
