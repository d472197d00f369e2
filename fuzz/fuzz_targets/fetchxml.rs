//! FetchXML (see `checks::fetchxml`): `fetchxml::parse` never panics and reports every table.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::fetchxml(data));
