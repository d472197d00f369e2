//! One table-driven test per way a Dataverse request can reach data (the request shapes of
//! docs/policy.md), each with allowed and denied variants.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use http::HeaderMap;

use super::*;
use crate::config::{Policy, TableRule};
use crate::policy::decision::{self, Decision, Denial};

mod body;
mod query;

const C: &str = "c0000000-0000-4000-8000-000000000001";
const A: &str = "a0000000-0000-4000-8000-000000000001";

fn meta() -> &'static Metadata {
    static M: OnceLock<Metadata> = OnceLock::new();
    M.get_or_init(|| {
        Metadata::parse(include_bytes!("../../../sim/metadata.xml")).expect("sim CSDL parses")
    })
}

fn policy() -> Policy {
    let mut p = Policy::default();
    let rule = |verbs: &[Verb]| TableRule {
        verbs: verbs.to_vec(),
        columns: None,
    };
    p.tables.insert(
        "contacts".into(),
        rule(&[Verb::Get, Verb::Post, Verb::Patch]),
    );
    p.tables.insert("accounts".into(), rule(&[Verb::Get]));
    p.tables
        .insert("leads".into(), rule(&[Verb::Get, Verb::Patch]));
    p.tables.insert(
        "opportunities".into(),
        TableRule {
            verbs: vec![Verb::Get],
            columns: Some(vec!["name".into(), "estimatedvalue".into()]),
        },
    );
    p.functions.push("WhoAmI".into());
    p.actions.push("CreateMultiple".into());
    p
}

fn urls() -> Urls {
    Urls {
        org: "https://org.crm.dynamics.com".into(),
        gateway: vec!["http://gw:8080/contoso".into(), "http://gw:8080".into()],
        api_version: "v9.2".into(),
    }
}

fn decide_with(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &HeaderMap,
    metadata: Option<&Metadata>,
) -> Decision {
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q)));
    let policy = policy();
    let urls = urls();
    let ids = BTreeMap::new();
    let env = Env {
        metadata,
        known_functions: &policy.functions,
        urls: &urls,
        content_ids: &ids,
    };
    let method: http::Method = method.parse().unwrap();
    let req = Request {
        method: &method,
        path,
        query,
        headers,
        body: body.map(str::as_bytes),
    };
    decision::decide(&policy, classify(&req, &env), headers)
}

fn decide(method: &str, url: &str, body: Option<&str>) -> Decision {
    decide_with(method, url, body, &HeaderMap::new(), Some(meta()))
}

/// `opportunities` may also show the lookup to their account.
fn with_lookup() -> Policy {
    let mut p = policy();
    if let Some(rule) = p.tables.get_mut("opportunities") {
        rule.columns = Some(vec![
            "name".into(),
            "estimatedvalue".into(),
            "_parentaccountid_value".into(),
        ]);
    }
    p
}

fn decide_under(policy: &Policy, method: &str, url: &str, metadata: Option<&Metadata>) -> Decision {
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q)));
    let urls = urls();
    let ids = BTreeMap::new();
    let env = Env {
        metadata,
        known_functions: &policy.functions,
        urls: &urls,
        content_ids: &ids,
    };
    let h = HeaderMap::new();
    let method: http::Method = method.parse().unwrap();
    let req = Request {
        method: &method,
        path,
        query,
        headers: &h,
        body: None,
    };
    decision::decide(policy, classify(&req, &env), &h)
}

/// `s` percent-encoded for a query value (unreserved characters kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `set?fetchXml=<percent-encoded xml>`
fn fetch_url(set: &str, xml: &str) -> String {
    format!("{set}?fetchXml={}", encode(xml))
}

/// An expected denial: its kind and a text its reason must contain, naming the table, verb,
/// column or construct that caused it (so "not understood" and "not allowlisted" never pass for
/// each other).
type Expect = Option<(Denial, &'static str)>;

/// Denied by the allowlist, or not inspectable (403), for `reason`.
fn no(reason: &'static str) -> Expect {
    Some((Denial::Policy, reason))
}

/// Malformed (400), for `reason`.
fn bad(reason: &'static str) -> Expect {
    Some((Denial::Malformed, reason))
}

/// Asserts that `d` is the expected outcome, reason included.
fn assert_outcome(d: &Decision, expected: Expect, what: &str) {
    let denial = expected.map(|(denial, _)| denial);
    assert_eq!(
        d.denial,
        denial,
        "{what}: {} (uses: {:?})",
        d.reason(),
        d.uses
    );
    if let Some((_, reason)) = expected {
        assert!(
            d.reason().contains(reason),
            "{what}: the reason should say `{reason}`, it says `{}`",
            d.reason()
        );
    }
}

/// Each row: method, URL, body, expected outcome (None = allowed).
fn check(rows: &[(&str, String, Option<&str>, Expect)]) {
    for (m, u, b, expected) in rows {
        let d = decide(m, u, *b);
        assert_outcome(&d, *expected, &format!("{m} {u} {b:?}"));
    }
}

use Denial::Policy as NO;

mod money;
mod nav;
mod reads;
mod redteam;
mod writes;
