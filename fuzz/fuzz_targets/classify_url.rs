//! `inspect` on arbitrary requests (see `checks::classify_url`): never panics, and an allowed
//! request reaches only allowlisted tables, by an independent scan of its URL and body.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::classify_url(data));
