//! Property tests for the security boundary. Each case draws a schema — random tables written
//! out as CSDL and read back with `Metadata::parse` (so the parser is tested, not trusted), or
//! the simulator's CSDL — then a request over it, with an oracle the generator builds as it
//! goes: every (table, verb) and (table, column) the request touches, under the issue's
//! semantics (see `oracle.rs`), never computed by the classifier. [`inspect::inspect`] judges it
//! under a random allowlist:
//!
//! - (a) allowed ⇒ every oracle table is allowlisted for its verb and every oracle column of a
//!   column-restricted table is listed; the side effects the decision relies on are there (the
//!   added `$select` on a column-restricted main read, the added `If-Match: *` on a PATCH
//!   without POST, no impersonation or verb-tunnelling header forwarded, `Prefer` intact). A
//!   failure here is a security bug.
//! - (b) nothing panics, also on mutated requests.
//! - (c) oracle allowlisted ⇒ allowed: well-formed requests are not over-denied, with or
//!   without column lists (not asserted where the issue lets the gateway refuse, see
//!   [`oracle::Call::may_refuse`], and without metadata, where refusing is failing closed).
//! - (d) a client's policy only narrows the tenant's: allowed under their intersection iff
//!   allowed under both (`narrow.rs`).
//!
//! Shapes: reads with `$select`/`$filter`/`$orderby`/`$expand` (lookup paths, lambdas, query
//! functions in their documented forms, parameter aliases bound to literals and to columns),
//! navigation through lookups, alternate keys, GUIDs with any first hex digit, creates and
//! updates (binds, deep inserts), property reads and writes, `$count`, fetchXml (root with and
//! without `<attribute>`, `<all-attributes/>`, nested link-entities, filters, orders), the bulk
//! actions with `Targets`, `$ref` reads and writes, `EntityDefinitions`, an unbound function,
//! headers (impersonation, `X-HTTP-Method[-Override]`, `Prefer` annotations,
//! `If-Match`/`If-None-Match`), `$batch` with change sets and Content-ID references (in the MIME
//! part headers and in the inner headers), and requests without metadata.
//!
//! Running: the default case counts keep the file under a minute in a debug build. For a long
//! local run set `PROPTEST_CASES` (e.g. `PROPTEST_CASES=100000 cargo test --test property`).
//! Failures are replayable: proptest prints the minimal failing byte string and its seed, and
//! saves the seed in `tests/property/main.proptest-regressions` (committed); every later run
//! replays the saved seeds first.
//!
//! Generation draws from a byte string (a choice sequence, `choices.rs`): proptest shrinks the
//! bytes, and the byte 0 is always the simplest choice, so a failure shrinks to a small schema,
//! request and allowlist, printed in full by the assertion.

mod batch;
mod calls;
mod checks;
mod choices;
mod csdl;
mod expr;
mod generator;
mod narrow;
mod oracle;
mod regressions;
mod schema;
mod sim_csdl;
mod writes;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use choices::Choices;
use generator::Gen;

/// `PROPTEST_CASES` when set, else `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/property/main.proptest-regressions",
        ))),
        max_shrink_iters: 20_000,
        ..ProptestConfig::default()
    }
}

/// Draws the schema (one case in five the simulator's), then the case and its allowlist.
fn with_case<T>(bytes: &[u8], f: impl FnOnce(&schema::Schema, &mut Gen<'_>) -> T) -> T {
    let mut c = Choices::new(bytes);
    let generated;
    let s = if c.chance(20) {
        sim_csdl::sim()
    } else {
        generated = schema::draw(&mut c);
        &generated
    };
    let mut g = Gen::new(c, s);
    f(s, &mut g)
}

proptest! {
    #![proptest_config(config(10_000))]

    /// (a) and (c).
    #[test]
    fn allowed_iff_the_oracle_is_allowlisted(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        with_case(&bytes, |s, g| {
            let case = g.case();
            let policy = g.policy(&case);
            checks::check(s, &policy, &case)
        })?;
    }
}

proptest! {
    #![proptest_config(config(2_000))]

    /// (d): a client's policy narrows the tenant's: allowed under the intersection iff both allow.
    #[test]
    fn a_client_policy_only_narrows_the_tenants(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        with_case(&bytes, |s, g| {
            let case = g.case();
            let tenant = g.policy(&case);
            let client = g.policy(&case);
            narrow::check(s, &tenant, &client, &case)
        })?;
    }
}

proptest! {
    #![proptest_config(config(3_000))]

    /// (b): requests with random byte edits (in the URL, the query and the body) never panic.
    #[test]
    fn mutated_requests_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        in_body in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), edit_byte(), 0..3u8), 1..8),
    ) {
        with_case(&bytes, |s, g| {
            let mut case = g.case();
            let policy = g.policy(&case);
            mutate(&mut case, in_body, &edits);
            let _ = checks::run(s, &policy, &case);
        });
    }
}

fn mutate(case: &mut oracle::Case, in_body: bool, edits: &[(prop::sample::Index, u8, u8)]) {
    let call = &mut case.calls[0];
    let mut raw = match (&case.batch, in_body) {
        (Some(b), _) => b.clone(),
        (None, true) => call.body.clone().unwrap_or_default(),
        (None, false) => call.target(),
    }
    .into_bytes();
    for (at, byte, op) in edits {
        let i = if raw.is_empty() {
            0
        } else {
            at.index(raw.len())
        };
        match op {
            0 if !raw.is_empty() => {
                raw.remove(i);
            }
            1 => raw.insert(i, *byte),
            _ if !raw.is_empty() => raw[i] = *byte,
            _ => raw.push(*byte),
        }
    }
    let edited = String::from_utf8_lossy(&raw).into_owned();
    match (&mut case.batch, in_body) {
        (Some(b), _) => *b = edited,
        (None, true) => call.body = Some(edited),
        (None, false) => match edited.split_once('?') {
            Some((p, q)) => (call.path, call.query) = (p.to_string(), Some(q.to_string())),
            None => (call.path, call.query) = (edited, None),
        },
    }
}

/// A byte to insert or overwrite: any byte, or one that means something to the parsers.
fn edit_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(b"'()/$%&=@,;:?\"{}[]<>\r\n-".to_vec()),
    ]
}

/// Not a property: a survey of failure classes for triage. Runs `PROPTEST_CASES` (default
/// 20 000) random cases without stopping and prints, per class (the failure's first line with
/// names masked), how often it occurred and its shortest example. `cargo test --test property
/// -- --ignored survey --nocapture`.
#[test]
#[ignore]
fn survey() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000u32);
    let mut runner = TestRunner::default();
    let strategy = prop::collection::vec(any::<u8>(), 0..600);
    let mut classes: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for _ in 0..cases {
        let bytes = strategy.new_tree(&mut runner).expect("bytes").current();
        let result = with_case(&bytes, |s, g| {
            let case = g.case();
            let policy = g.policy(&case);
            checks::check(s, &policy, &case)
        });
        if let Err(e) = result {
            let msg = e.to_string();
            let gateway = msg
                .lines()
                .find(|l| l.starts_with("  gateway:"))
                .filter(|_| msg.contains("OVER-DENIAL"))
                .unwrap_or_default();
            let first = format!(
                "{}{} {gateway}",
                msg.lines().next().unwrap_or_default(),
                tags(&msg)
            );
            let class: String = first
                .split('`')
                .enumerate()
                .map(|(i, p)| if i % 2 == 1 { "_" } else { p })
                .collect::<String>()
                .replace(|c: char| c.is_ascii_digit(), "#")
                .chars()
                .take(220)
                .collect();
            let entry = classes.entry(class).or_insert((0, msg.clone()));
            entry.0 += 1;
            if msg.len() < entry.1.len() {
                entry.1 = msg;
            }
        }
    }
    for (class, (n, example)) in &classes {
        println!("=== {n} × {class}\n{example}\n");
    }
}

/// Survey tags: the constructs a failing case uses, to tell failure classes apart.
fn tags(msg: &str) -> String {
    let requests: String = msg
        .split("  schema CSDL:")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("    oracle") && !l.starts_with("  gateway"))
        .collect::<Vec<_>>()
        .join("\n");
    let has = |s: &str| requests.contains(s);
    let mut t = Vec::new();
    for (tag, present) in [
        ("$ref", has("/$ref")),
        ("fetchXml", has("fetchXml=")),
        (
            "annotations",
            has("FormattedValue") || has("include-annotations=\"*\""),
        ),
        (
            "alias",
            has("=@p") || has("(@p") || has(" @p") || has("+@p"),
        ),
        ("bulk", has("Multiple")),
        ("batch", has("sent as one $batch")),
        ("expand", has("expand=")),
        ("definitions", has("EntityDefinitions")),
    ] {
        if present {
            t.push(tag);
        }
    }
    let col = msg.lines().next().unwrap_or_default();
    if col.contains("column `_") {
        t.push("lookup-column");
    }
    format!(" [{}]", t.join(","))
}
