//! `mcp:`: bounds of the MCP front door (what one tool call may return).

/// `mcp: { max_page_size, max_result_bytes }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McpSettings {
    /// Most rows one `query` call returns (`page_size` may ask for fewer); default 50.
    pub max_page_size: u32,
    /// Largest Web API response body one tool call returns; default 1 MiB. A larger one is a
    /// tool error asking for fewer columns or rows.
    pub max_result_bytes: u64,
}

/// `max_page_size` bounds: Dataverse serves at most 5000 rows a page.
pub const PAGE_SIZE_RANGE: (u64, u64) = (1, 5000);
/// `max_result_bytes` bounds: 1 KiB to 64 MiB.
pub const RESULT_BYTES_RANGE: (u64, u64) = (1 << 10, 64 << 20);

impl Default for McpSettings {
    fn default() -> Self {
        McpSettings {
            max_page_size: 50,
            max_result_bytes: 1 << 20,
        }
    }
}
