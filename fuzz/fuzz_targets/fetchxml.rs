//! FetchXML: [`fetchxml::parse`] never panics, and what it returns keeps the module's
//! invariants: the root entity is `tables[0]`, every table, alias and column is a plain
//! identifier.
#![no_main]

use dataverse_gateway::odata::{fetchxml, is_identifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(fetch) = fetchxml::parse(xml) else {
        return;
    };
    assert_eq!(
        fetch.tables.first().map(|t| &t.logical_name),
        Some(&fetch.entity)
    );
    for t in &fetch.tables {
        assert!(is_identifier(&t.logical_name), "table {:?}", t.logical_name);
        assert!(
            t.alias.as_deref().is_none_or(is_identifier),
            "alias {:?}",
            t.alias
        );
        for c in &t.columns {
            assert!(is_identifier(c), "column {c:?} of {}", t.logical_name);
        }
    }
});
