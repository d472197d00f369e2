//! Running a case through the gateway's pure pipeline (header check, then `inspect`) and the
//! properties: (a) allowed ⇒ the oracle is within the allowlist, with the side effects the
//! decision relies on (the added `$select`, the added `If-Match: *`, no impersonation or
//! verb-tunnelling header forwarded, `Prefer` forwarded intact); (c) the oracle is within the
//! allowlist ⇒ allowed.

use std::fmt::Write as _;

use dataverse_gateway::config::{Policy, Verb};
use dataverse_gateway::policy::batch;
use dataverse_gateway::policy::classify::{Request, Urls};
use dataverse_gateway::policy::decision::Decision;
use dataverse_gateway::policy::headers;
use dataverse_gateway::policy::inspect::{self, Inspected, Tenant};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::batch::BOUNDARY;
use crate::oracle::{Call, Case, Returned, call_needs, column_list_applies, judge};
use crate::schema::Schema;

pub fn urls() -> Urls {
    Urls {
        org: crate::generator::ORG.into(),
        gateway: crate::generator::GATEWAYS
            .iter()
            .map(|g| g.to_string())
            .collect(),
        api_version: "v9.2".into(),
    }
}

pub fn header_map(headers: &[(&str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    map
}

/// What reaches the org for one call of an allowed case: target and headers.
pub struct Forwarded {
    pub target: String,
    pub headers: Vec<(String, String)>,
}

/// The proxy's order for one request: verb-tunnelling headers refused, then `inspect`.
pub fn run(s: &Schema, policy: &Policy, case: &Case) -> Inspected {
    let urls = urls();
    let tenant = Tenant {
        policy,
        metadata: (!case.no_metadata).then_some(&s.meta),
        urls: &urls,
    };
    let (method, path, query, headers, body) = match &case.batch {
        Some(body) => {
            let ct = format!("multipart/mixed; boundary={BOUNDARY}");
            let h = header_map(&[("content-type", ct)]);
            (Method::POST, "$batch", None, h, Some(body.as_str()))
        }
        None => {
            let c = &case.calls[0];
            let h = header_map(&c.headers);
            let (m, p, q, b) = (&c.method, &c.path, c.query.as_deref(), c.body.as_deref());
            (m.clone(), p.as_str(), q, h, b)
        }
    };
    if let Err(e) = headers::check_request(&headers) {
        return Inspected {
            decision: Decision::malformed(e),
            body: None,
        };
    }
    inspect::inspect(
        &tenant,
        &Request {
            method: &method,
            path,
            query,
            headers: &headers,
            body: body.map(str::as_bytes),
        },
    )
}

/// What the gateway forwards for each call of an allowed case.
fn forwarded(case: &Case, got: &Inspected) -> Result<Vec<Forwarded>, String> {
    match &case.batch {
        None => {
            let c = &case.calls[0];
            let mut out = HeaderMap::new();
            headers::copy_request_headers(&header_map(&c.headers), &mut out);
            let mut hs: Vec<(String, String)> = out
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect();
            if got.decision.if_match_star {
                hs.push(("if-match".into(), "*".into()));
            }
            let target = match &got.decision.add_select {
                Some(sel) => format!(
                    "{}{}$select={sel}",
                    c.target(),
                    if c.query.is_some() { "&" } else { "?" }
                ),
                None => c.target(),
            };
            Ok(vec![Forwarded {
                target,
                headers: hs,
            }])
        }
        Some(_) => {
            let body = got
                .body
                .as_ref()
                .ok_or("an allowed batch is not re-serialised")?;
            let ct = format!("multipart/mixed; boundary={BOUNDARY}");
            let parsed = batch::parse(&ct, body, inspect::MAX_BATCH_PARTS)
                .map_err(|e| format!("the forwarded batch does not parse: {e:?}"))?;
            Ok(parsed
                .parts()
                .map(|p| {
                    let mut hs = p.headers.clone();
                    hs.extend(p.mime_headers.iter().cloned());
                    Forwarded {
                        target: p.target.clone(),
                        headers: hs,
                    }
                })
                .collect())
        }
    }
}

fn header<'h>(f: &'h Forwarded, name: &str) -> Vec<&'h str> {
    f.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The forwarded `Prefer` asks for `FormattedValue` (or every annotation).
fn asks_formatted(f: &Forwarded) -> bool {
    header(f, "prefer").iter().any(|v| {
        let v = v.to_ascii_lowercase().replace(' ', "");
        v.contains("formattedvalue")
            || v.contains("include-annotations=\"*\"")
            || v.contains("include-annotations=*")
    })
}

pub fn describe(s: &Schema, policy: &Policy, case: &Case, got: &Inspected) -> String {
    let mut out = String::new();
    for call in &case.calls {
        writeln!(out, "  {} {}", call.method, call.target()).unwrap();
        for (k, v) in &call.headers {
            writeln!(out, "    {k}: {v}").unwrap();
        }
        if let Some(b) = &call.body {
            writeln!(out, "    body: {b}").unwrap();
        }
        for n in &call.needs {
            writeln!(
                out,
                "    oracle: {}{} {} {:?}{}{}{}",
                if n.definition {
                    "EntityDefinitions "
                } else {
                    ""
                },
                n.verb.as_str(),
                s.tables[n.table].set,
                n.columns,
                if n.all_columns { " (all columns)" } else { "" },
                if n.main_read { " (main read)" } else { "" },
                match &n.returned {
                    Some(Returned::All) => " returns all".to_string(),
                    Some(Returned::Columns(c)) => format!(" returns {c:?}"),
                    None => String::new(),
                },
            )
            .unwrap();
        }
    }
    if let Some(b) = &case.batch {
        writeln!(out, "  sent as one $batch:\n{b}").unwrap();
    }
    if case.no_metadata {
        writeln!(out, "  (no metadata loaded)").unwrap();
    }
    writeln!(out, "  policy:").unwrap();
    for (set, rule) in &policy.tables {
        let verbs: Vec<&str> = rule.verbs.iter().map(|v| v.as_str()).collect();
        writeln!(out, "    {set}: {verbs:?} columns {:?}", rule.columns).unwrap();
    }
    writeln!(out, "    functions: {:?}", policy.functions).unwrap();
    writeln!(
        out,
        "  gateway: {} ({}) add_select {:?} if_match_star {}",
        inspect::verdict(&got.decision),
        got.decision.reason(),
        got.decision.add_select,
        got.decision.if_match_star
    )
    .unwrap();
    if let Some(csdl) = &s.csdl {
        writeln!(out, "  schema CSDL:\n{csdl}").unwrap();
    }
    out
}

fn functions_ok(policy: &Policy, call: &Call) -> Result<(), String> {
    match call
        .functions
        .iter()
        .find(|f| !policy.functions.contains(f))
    {
        Some(f) => Err(format!("function `{f}` is not listed")),
        None => Ok(()),
    }
}

/// Properties (a) and (c) for one case.
pub fn check(s: &Schema, policy: &Policy, case: &Case) -> Result<(), TestCaseError> {
    let got = run(s, policy, case);
    let show = || describe(s, policy, case, &got);
    if got.decision.allowed() {
        let fwd =
            forwarded(case, &got).map_err(|e| TestCaseError::fail(format!("{e}\n{}", show())))?;
        prop_assert_eq!(fwd.len(), case.calls.len(), "parts lost\n{}", show());
        for (call, f) in case.calls.iter().zip(&fwd) {
            if let Some(why) = call.refused {
                prop_assert!(false, "SECURITY: allowed despite {why}\n{}", show());
            }
            let needs = call_needs(s, call, Some(policy), asks_formatted(f));
            let expected = judge(s, policy, &needs).and_then(|()| functions_ok(policy, call));
            if let Err(e) = expected {
                prop_assert!(false, "SECURITY: allowed although {e}\n{}", show());
            }
            side_effects(s, policy, call, f)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{}", show())))?;
        }
        if let Some(b) = &got.body {
            let lower = String::from_utf8_lossy(b).to_ascii_lowercase();
            for h in ["mscrmcallerid", "callerobjectid", "x-http-method"] {
                prop_assert!(
                    !lower.contains(h),
                    "SECURITY: `{h}` forwarded in the batch\n{}",
                    show()
                );
            }
        }
    } else if !case.no_metadata {
        // (c): with every oracle item allowlisted, the request must pass (column lists too).
        let mut exempt = false;
        let mut all_ok = true;
        for call in &case.calls {
            let needs = call_needs(s, call, Some(policy), true);
            let ok = call.refused.is_none()
                && judge(s, policy, &needs).is_ok()
                && functions_ok(policy, call).is_ok();
            all_ok &= ok;
            exempt |= call.may_refuse
                || annotation_needs_restricted(s, policy, call)
                || annotation_over_approximated(s, call);
        }
        prop_assert!(
            !all_ok || exempt,
            "OVER-DENIAL: every oracle item is allowlisted (column lists apply: {})\n{}",
            case.calls
                .iter()
                .any(|c| column_list_applies(s, policy, &c.needs)),
            show()
        );
    }
    Ok(())
}

/// A `FormattedValue` read of a column-restricted target: the CSDL does not say which column is
/// the primary name, so the gateway may refuse what it cannot check.
fn annotation_needs_restricted(s: &Schema, policy: &Policy, call: &Call) -> bool {
    let all = call_needs(s, call, Some(policy), true);
    let own = call.needs.len();
    all[own..].iter().any(|n| {
        policy
            .tables
            .get(&s.tables[n.table].set)
            .is_some_and(|r| r.columns.is_some())
    })
}

/// The gateway's documented over-approximation, on the refusing side: with FormattedValue
/// asked for, a lookup a request names without returning it (filtered, ordered, navigated
/// through) counts as if it came back.
fn annotation_over_approximated(s: &Schema, call: &Call) -> bool {
    call.annotations
        && call.needs.iter().any(|n| {
            let returned = |c: &String| match &n.returned {
                Some(Returned::All) => true,
                Some(Returned::Columns(r)) => r.contains(c),
                None => false,
            };
            n.columns.iter().any(|c| {
                !returned(c)
                    && s.tables[n.table]
                        .singles()
                        .iter()
                        .any(|nav| nav.lookup.as_ref() == Some(c))
            })
        })
}

fn side_effects(s: &Schema, policy: &Policy, call: &Call, f: &Forwarded) -> Result<(), String> {
    for h in [
        "mscrmcallerid",
        "callerobjectid",
        "x-http-method",
        "x-http-method-override",
    ] {
        if !header(f, h).is_empty() {
            return Err(format!("SECURITY: `{h}` is forwarded"));
        }
    }
    for p in header(f, "prefer") {
        if p.matches('"').count() % 2 != 0 {
            return Err(format!("Prefer forwarded with an unbalanced quote: {p}"));
        }
    }
    // The main read of a column-restricted table without `$select` gets `$select` added.
    if let Some(n) = call.main_read().filter(|n| n.all_columns)
        && let Some(cols) = policy
            .tables
            .get(&s.tables[n.table].set)
            .and_then(|r| r.columns.clone())
    {
        let want = format!("$select={}", cols.join(","));
        if !f.target.ends_with(&want) {
            return Err(format!(
                "no `{want}` added to the column-restricted main read: {}",
                f.target
            ));
        }
    }
    // A PATCH that may create needs POST, or the gateway's `If-Match: *`.
    if let Some(t) = call.upsert
        && policy
            .tables
            .get(&s.tables[t].set)
            .is_some_and(|r| !r.allows(Verb::Post))
        && !header(f, "if-match").contains(&"*")
    {
        return Err(format!(
            "PATCH on `{}` (no POST) forwarded without If-Match: *",
            s.tables[t].set
        ));
    }
    Ok(())
}
