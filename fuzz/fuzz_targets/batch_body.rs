//! `$batch` bodies (see `checks::batch_body`): parse/serialise round-trip, `inspect` never panics,
//! an allowed batch reaches only allowlisted tables and its forwarded body is allowed again.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::batch_body(data));
