//! Writes a synthetic Dynamics-365-like CSDL (`$metadata`) to standard output, for benchmarks
//! and tests at real sizes (the file itself is never committed).
//!
//! Usage: `synthetic_csdl [TABLES]` (default 1800 tables, about 30 MB); see
//! `dataverse_gateway::policy::metadata::synthetic_csdl` for its shape.

use std::io::Write;

fn main() -> std::io::Result<()> {
    let tables = match std::env::args().nth(1) {
        Some(n) => match n.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                eprintln!("usage: synthetic_csdl [TABLES]");
                std::process::exit(2);
            }
        },
        None => 1800,
    };
    let csdl = dataverse_gateway::policy::metadata::synthetic_csdl(tables);
    std::io::stdout().lock().write_all(csdl.as_bytes())
}
