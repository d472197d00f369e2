//! The streaming JSON rewriter (see `checks::json_rewrite`): framing never changes the output,
//! held-back bytes stay bounded, and JSON bodies get exactly their annotation values rewritten.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::json_rewrite(data));
