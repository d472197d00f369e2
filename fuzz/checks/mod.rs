//! The checks the fuzz targets run, shared with the corpus replay test of the main crate
//! (`tests/fuzz_corpus.rs` includes this folder by path), so that a committed seed and a fuzzing
//! run check exactly the same thing. Each function panics when an invariant breaks.
// Each fuzz target binary uses one of the checks.
#![allow(dead_code)]

mod rewrite;
pub mod scan;

use std::sync::OnceLock;

// Only the json_rewrite target (and the corpus replay) use it.
#[allow(unused_imports)]
pub use rewrite::json_rewrite;

use dataverse_gateway::config::{Policy, TableRule, Verb};
use dataverse_gateway::policy::batch;
use dataverse_gateway::policy::classify::{Request, Urls, Use};
use dataverse_gateway::policy::inspect::{self, Inspected, MAX_BATCH_PARTS, Tenant};
use dataverse_gateway::policy::metadata::Metadata;
use dataverse_gateway::policy::odata::{fetchxml, is_identifier};
use http::{HeaderMap, HeaderValue, Method};

/// The boundary of the `batch_body` inputs and of `classify_url`'s multipart bodies.
pub const BATCH_CONTENT_TYPE: &str = "multipart/mixed; boundary=batch_fuzz";

const METHODS: [Method; 8] = [
    Method::GET,
    Method::POST,
    Method::PATCH,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::GET,
];

pub struct Fixture {
    pub meta: Metadata,
    pub policy: Policy,
    pub urls: Urls,
}

/// The simulator's CSDL and an allowlist without `systemusers` and `annotations`: every table
/// has a `createdby` lookup to `systemusers`, so reaching a table outside the allowlist is
/// always one navigation away.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let meta = Metadata::parse(include_bytes!("../../src/sim/metadata.xml")).expect("CSDL");
        let mut policy = Policy::default();
        let rule = |verbs: &[Verb], columns: Option<&[&str]>| TableRule {
            verbs: verbs.to_vec(),
            columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
        };
        let all = [Verb::Get, Verb::Post, Verb::Patch, Verb::Delete];
        policy.tables.insert("contacts".into(), rule(&all, None));
        policy.tables.insert(
            "accounts".into(),
            rule(&[Verb::Get, Verb::Post], Some(&["name", "revenue"])),
        );
        policy
            .tables
            .insert("leads".into(), rule(&[Verb::Get, Verb::Patch], None));
        policy.tables.insert(
            "opportunities".into(),
            rule(&[Verb::Get, Verb::Put], Some(&["name", "estimatedvalue"])),
        );
        policy.functions.push("WhoAmI".into());
        policy.actions.push("CreateMultiple".into());
        Fixture {
            meta,
            policy,
            urls: Urls {
                org: "https://org.crm.dynamics.com".into(),
                gateway: vec!["http://gw:8080/contoso".into(), "http://gw:8080".into()],
                api_version: "v9.2".into(),
            },
        }
    })
}

/// Tables the request could reach (by the independent scan) that the allowlist lacks.
fn unlisted(f: &Fixture, method: &Method, target: &str, body: &[u8]) -> Vec<String> {
    let mut idents = scan::url_identifiers(&scan::data_text(target));
    let ignores_body = matches!(*method, Method::GET | Method::HEAD | Method::DELETE)
        || target.split('?').next().unwrap_or("").ends_with("/$value");
    if !ignores_body && !body.is_empty() {
        match scan::json_identifiers(body) {
            Some(ids) => idents.extend(ids),
            None => idents.extend(scan::url_identifiers(&String::from_utf8_lossy(body))),
        }
    }
    scan::reachable(&f.meta, &idents)
        .into_iter()
        .filter(|set| !f.policy.tables.contains_key(set))
        .collect()
}

/// Input: one control byte (bits 0-2 method, 3 `Prefer: return=representation`, 4 multipart
/// Content-Type, 5 no metadata), then `path[?query]`, then optionally `\n` and the raw body.
/// `inspect` never panics; when it allows, (1) every table the independent scan finds in the
/// URL or body (or in each part of a `$batch`) is allowlisted, and (2) every table use it reports
/// is allowlisted for its verb.
pub fn classify_url(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let method = &METHODS[usize::from(control & 7)];
    let (line, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let line = String::from_utf8_lossy(line);
    let (path, query) = line
        .split_once('?')
        .map_or((&*line, None), |(p, q)| (p, Some(q)));
    let mut headers = HeaderMap::new();
    if control & 0x08 != 0 {
        headers.insert("prefer", HeaderValue::from_static("return=representation"));
    }
    let content_type = if control & 0x10 != 0 {
        BATCH_CONTENT_TYPE
    } else {
        "application/json"
    };
    headers.insert("content-type", HeaderValue::from_static(content_type));
    let tenant = Tenant {
        policy: &f.policy,
        metadata: (control & 0x20 == 0).then_some(&f.meta),
        urls: &f.urls,
    };
    let got = inspect::inspect(
        &tenant,
        &Request {
            method,
            path,
            query,
            headers: &headers,
            body,
        },
    );
    if !got.decision.allowed() {
        return;
    }
    if path == "$batch" {
        allowed_batch_is_allowlisted(body.unwrap_or_default(), content_type);
    } else {
        let bad = unlisted(f, method, &line, body.unwrap_or_default());
        assert!(bad.is_empty(), "allowed {method} {line} reaches {bad:?}");
    }
    for u in &got.decision.uses {
        match u {
            Use::Table(t) => {
                let rule = f.policy.tables.get(&*t.set);
                assert!(
                    rule.is_some_and(|r| r.allows(t.verb)),
                    "allowed {} on {}",
                    t.verb.as_str(),
                    t.set
                );
            }
            Use::Definition(set) => assert!(
                f.policy.tables.contains_key(set),
                "allowed the definition of {set}"
            ),
            _ => {}
        }
    }
}

/// Every part of an allowed batch reaches only allowlisted tables (independent scan).
fn allowed_batch_is_allowlisted(body: &[u8], content_type: &str) {
    let f = fixture();
    let Ok(parsed) = batch::parse(content_type, body, MAX_BATCH_PARTS) else {
        panic!("an allowed batch does not parse");
    };
    for part in parsed.parts() {
        let method: Method = part.method.parse().unwrap_or(Method::POST);
        let bad = unlisted(f, &method, &part.target, &part.body);
        assert!(
            bad.is_empty(),
            "allowed part {} {} reaches {bad:?}",
            part.method,
            part.target
        );
    }
}

fn inspect_batch(body: &[u8], content_type: &str) -> Inspected {
    let f = fixture();
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_str(content_type).expect("content type"),
    );
    let tenant = Tenant {
        policy: &f.policy,
        metadata: Some(&f.meta),
        urls: &f.urls,
    };
    inspect::inspect(
        &tenant,
        &Request {
            method: &Method::POST,
            path: "$batch",
            query: None,
            headers: &headers,
            body: Some(body),
        },
    )
}

/// A `multipart/mixed` body with the boundary `batch_fuzz`: `batch::parse` never panics; what it
/// accepts round-trips (`parse(serialize(b)) == b`, and `serialize` is stable); `inspect` never
/// panics; an allowed batch reaches only allowlisted tables (independent scan of every part),
/// and the body forwarded for it parses and is allowed again ("forward what was judged").
pub fn batch_body(data: &[u8]) {
    if let Ok(parsed) = batch::parse(BATCH_CONTENT_TYPE, data, MAX_BATCH_PARTS) {
        let wire = batch::serialize(&parsed);
        let again = batch::parse(&parsed.content_type(), &wire, MAX_BATCH_PARTS)
            .expect("serialize output parses");
        assert_eq!(parsed, again, "parse(serialize(b)) != b");
        assert_eq!(wire, batch::serialize(&again), "serialize is not stable");
    }
    let got = inspect_batch(data, BATCH_CONTENT_TYPE);
    if got.decision.allowed() {
        allowed_batch_is_allowlisted(data, BATCH_CONTENT_TYPE);
        let forwarded = got.body.expect("an allowed batch is re-serialised");
        batch::parse(BATCH_CONTENT_TYPE, &forwarded, MAX_BATCH_PARTS)
            .expect("the forwarded batch parses");
        let again = inspect_batch(&forwarded, BATCH_CONTENT_TYPE);
        assert!(
            again.decision.allowed(),
            "the forwarded batch is denied: {}",
            again.decision.reason()
        );
    }
}

/// A FetchXML document: `fetchxml::parse` never panics, and what it returns keeps the module's
/// invariants: the root entity is `tables[0]`, every table, alias and column is a plain
/// identifier; and every `name=` of an `<entity>`/`<link-entity>` in the text (independent scan)
/// is among the tables it reports.
pub fn fetchxml(data: &[u8]) {
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
    if xml.contains("<!") || xml.contains("<?") {
        return; // comments, CDATA and processing instructions may hold text that looks like an element
    }
    let reported: Vec<&str> = fetch
        .tables
        .iter()
        .map(|t| t.logical_name.as_str())
        .collect();
    for name in entity_names(xml) {
        assert!(
            reported.contains(&name.as_str()),
            "entity `{name}` is not reported: {reported:?}"
        );
    }
}

/// `name` attribute values of `<entity` and `<link-entity` elements, by a plain scan of the tags:
/// quoted attribute values are skipped as a whole (text inside one is not a tag), so only real
/// elements count. Every index sliced at is an ASCII byte (`<`, `>`, a quote, whitespace, `/`),
/// never inside a multi-byte character.
fn entity_names(xml: &str) -> Vec<String> {
    let b = xml.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' && b[j] != b'/' {
            j += 1;
        }
        let element = &xml[i + 1..j];
        let wanted = element == "entity" || element == "link-entity";
        // Attributes up to the tag's end: `seg` starts after the tag name or the last value.
        let (mut k, mut seg, mut quote) = (j, j, None::<u8>);
        while k < b.len() {
            let c = b[k];
            match quote {
                Some(q) if c == q => {
                    quote = None;
                    seg = k + 1;
                }
                Some(_) => {}
                None if c == b'"' || c == b'\'' => {
                    let key = xml[seg..k].trim().strip_suffix('=').map(str::trim);
                    if wanted && key == Some("name") {
                        let end = xml[k + 1..]
                            .find(c as char)
                            .map_or(xml.len(), |e| k + 1 + e);
                        out.push(unescape(&xml[k + 1..end]));
                    }
                    quote = Some(c);
                }
                None if c == b'>' => break,
                None => {}
            }
            k += 1;
        }
        i = k + 1;
    }
    out
}

/// An attribute value with XML's character and predefined entity references replaced, as any
/// XML reader reads it (`opportunit&#x41;x` is `opportunitAx`). An unknown reference is kept.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let decoded = after.find(';').and_then(|end| {
            let name = &after[..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .map(|h| u32::from_str_radix(h, 16))
                    .or_else(|| name.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}
