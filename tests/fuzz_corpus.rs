//! The fuzz targets' committed corpora (`fuzz/corpus/<target>/seed-*`) replayed as ordinary tests,
//! through the very check functions the targets run (`fuzz/checks`, included by path), so that
//! every seed keeps passing on the stable toolchain without libFuzzer.

#[path = "../fuzz/checks/mod.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every committed seed of `target`; at least one must exist.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    for seed in seeds {
        let data = std::fs::read(&seed).expect("seed readable");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its check", seed.display());
    }
}

#[test]
fn classify_url_corpus() {
    replay("classify_url", checks::classify_url);
}

#[test]
fn batch_body_corpus() {
    replay("batch_body", checks::batch_body);
}

#[test]
fn fetchxml_corpus() {
    replay("fetchxml", checks::fetchxml);
}

#[test]
fn json_rewrite_corpus() {
    replay("json_rewrite", checks::json_rewrite);
}

/// The independent scan finds what names data, and skips literal data.
#[test]
fn scan_reaches_names_not_literals() {
    let f = checks::fixture();
    let reach = |url: &str| checks::scan::reachable(&f.meta, &checks::scan::url_identifiers(url));
    assert!(reach("contacts?$filter=createdby/fullname eq 'x'").contains("systemusers"));
    assert!(reach("contacts?$expand=createdby").contains("systemusers"));
    assert!(
        reach("contacts?fetchXml=%3Cfetch%3E%3Centity%20name='systemuser'/%3E")
            .contains("systemusers")
    );
    // Where a column is named by its logical name, a lookup's name (`createdby`, also its
    // navigation property's) is the lookup column; a table's logical name still counts.
    for url in [
        "contacts?$filter=Microsoft.Dynamics.CRM.In(PropertyName=@p,PropertyValues=['a'])&@p='createdby'",
        "contacts?$filter=Microsoft.Dynamics.CRM.In(PropertyName='createdby',PropertyValues=['a'])",
        "contacts?fetchXml=%3Cfetch%3E%3Centity%20name='contact'%3E%3Cattribute%20name='createdby'/%3E%3C/entity%3E%3C/fetch%3E",
    ] {
        assert!(!reach(url).contains("systemusers"), "{url}");
    }
    assert!(
        reach("contacts?fetchXml=%3Cfetch%3E%3Centity%20name='contact'%3E%3Clink-entity%20name='systemuser'%20from='systemuserid'%20to='createdby'/%3E%3C/entity%3E%3C/fetch%3E")
            .contains("systemusers")
    );
    assert!(
        reach("contacts?$filter=Microsoft.Dynamics.CRM.In(PropertyName='fullname',PropertyValues=['a'])&$orderby=createdby")
            .contains("systemusers")
    );
    assert!(
        reach("contacts?$filter=Microsoft.Dynamics.CRM.In(PropertyName='createdby/fullname',PropertyValues=['a'])")
            .contains("systemusers")
    );
    assert!(!reach("contacts?$filter=fullname eq 'createdby'").contains("systemusers"));
    assert!(!reach("contacts(fullname='annotations')").contains("annotations"));
    // A definition read's system query options name metadata properties; anything else counts.
    let data = |url: &str| reach(&checks::scan::data_text(url));
    assert!(
        !data("EntityDefinitions(LogicalName='contact')/Attributes?$orderby=createdby")
            .contains("systemusers")
    );
    assert!(
        data("EntityDefinitions(LogicalName='contact')/Attributes?fetchXml=%3Centity%20name='systemuser'/%3E")
            .contains("systemusers")
    );
    assert!(data("EntityDefinitions(LogicalName='contact')/createdby").contains("systemusers"));
    assert!(data("contacts?$orderby=createdby").contains("systemusers"));
    let body =
        br#"{"fullname":"createdby","parentcustomerid_account@odata.bind":"/systemusers(1)"}"#;
    let ids = checks::scan::json_identifiers(body).expect("JSON");
    let sets = checks::scan::reachable(&f.meta, &ids);
    assert!(
        sets.contains("systemusers") && sets.contains("accounts"),
        "{sets:?}"
    );
}
