//! Inspection: one request (or every part of a `$batch`) classified and decided, and the body
//! to forward.
//!
//! Pure: used by the proxy and by `explain` alike, so what `explain` prints is what the gateway
//! does. A `$batch` is allowed only when every part is; a denial names each offending part.
//! Inside an allowed batch, parts keep only the inner headers the top level would forward (and
//! are refused for the headers the top level refuses), absolute URLs naming the gateway are
//! pointed at the org, a Content-ID is carried in the part's MIME headers, and the batch is
//! re-serialised. A part is judged with the batch's own `Prefer` too (it may apply to the
//! parts). A denial caused by a table read only through a requested annotation names the
//! annotation and the lookup.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::config::Policy;
use crate::policy::batch::{self, Item, Part};
use crate::policy::classify::{self, Env, Request, Urls};
use crate::policy::decision::{Decision, Denial, decide};
use crate::policy::headers;
use crate::policy::metadata::Metadata;

/// Most parts a batch may hold (Dataverse's own limit).
pub const MAX_BATCH_PARTS: usize = 1000;

pub struct Inspected {
    pub decision: Decision,
    /// A replacement body to forward (a re-serialised batch); `None` forwards the original.
    pub body: Option<Bytes>,
}

pub struct Tenant<'a> {
    pub policy: &'a Policy,
    pub metadata: Option<&'a Metadata>,
    pub urls: &'a Urls,
}

pub fn inspect(t: &Tenant<'_>, req: &Request<'_>) -> Inspected {
    if req.path == "$batch" {
        return inspect_batch(t, req);
    }
    let content_ids = BTreeMap::new();
    let env = Env {
        metadata: t.metadata,
        known_functions: &t.policy.functions,
        urls: t.urls,
        content_ids: &content_ids,
    };
    Inspected {
        decision: judge(t, req, &env, req.headers),
        body: None,
    }
}

/// Classifies and decides one request; `decide_headers` are the headers it is sent with.
/// A denial caused by a table read only through a requested annotation says so.
fn judge(t: &Tenant<'_>, req: &Request<'_>, env: &Env<'_>, decide_headers: &HeaderMap) -> Decision {
    let mut classified = classify::classify(req, env);
    let reads = match &mut classified {
        Ok(c) => {
            count_conditional_reads(c, t.policy);
            c.annotation_reads.clone()
        }
        Err(_) => vec![],
    };
    let mut decision = decide(t.policy, classified, decide_headers);
    if !decision.allowed() {
        explain_annotation_reads(&mut decision, &reads, t.policy);
    }
    decision
}

/// The lookups of a main read without `$select` come back unless the table's column list (which
/// the gateway then adds as `$select`) leaves them out: those reads count; the others are dropped.
fn count_conditional_reads(c: &mut classify::Classified, policy: &crate::config::Policy) {
    let kept = |r: &classify::AnnotationRead| {
        !r.conditional
            || policy
                .tables
                .get(&r.owner)
                .and_then(|rule| rule.columns.as_ref())
                .is_none_or(|cols| cols.contains(&r.column))
    };
    c.annotation_reads.retain(kept);
    for read in &c.annotation_reads {
        let touch = classify::Use::Table(read.touch());
        if read.conditional && !c.uses.contains(&touch) {
            c.uses.push(touch);
        }
    }
}

/// Rewrites the reasons that concern annotation reads to name the annotation and the lookup.
fn explain_annotation_reads(
    decision: &mut Decision,
    reads: &[classify::AnnotationRead],
    policy: &crate::config::Policy,
) {
    let mut explained_sets: Vec<&str> = Vec::new();
    for read in reads {
        if explained_sets.contains(&read.set.as_str()) {
            continue;
        }
        explained_sets.push(&read.set);
        let mut alone = classify::Classified::default();
        alone.uses.push(classify::Use::Table(read.touch()));
        let d = decide(policy, Ok(alone), &HeaderMap::new());
        if d.allowed() {
            continue;
        }
        let explained = format!(
            "Prefer odata.include-annotations asks for {}, which returns the primary name of \
             the `{}` row `{}`.`{}` points to: {}",
            classify::FORMATTED_VALUE,
            read.set,
            read.owner,
            read.column,
            d.reason
        );
        decision.reason = match decision.reason.contains(&d.reason) {
            true => decision.reason.replacen(&d.reason, &explained, 1),
            false => format!("{}; {explained}", decision.reason),
        };
    }
}

fn inspect_batch(t: &Tenant<'_>, req: &Request<'_>) -> Inspected {
    let deny = |d: Decision| Inspected {
        decision: d,
        body: None,
    };
    if *req.method != Method::POST {
        return deny(Decision::malformed("$batch is sent with POST"));
    }
    if req.query.is_some_and(|q| !q.is_empty()) {
        return deny(Decision::malformed("$batch takes no query options"));
    }
    let content_type = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parsed = match batch::parse(content_type, req.body.unwrap_or_default(), MAX_BATCH_PARTS)
    {
        Ok(b) => b,
        Err(e) => return deny(Decision::malformed(e.to_string())),
    };
    // Most parts use a few tables: sized once rather than grown through large reallocations.
    let mut uses = Vec::with_capacity(4 * parsed.parts().count());
    let mut problems: Vec<(Denial, String)> = Vec::new();
    let mut number = 0;
    for item in &mut parsed.items {
        let mut content_ids = BTreeMap::new();
        let parts: Vec<&mut Part> = match item {
            Item::Request(p) => vec![p],
            Item::ChangeSet { parts, .. } => parts.iter_mut().collect(),
        };
        for part in parts {
            number += 1;
            let d = inspect_part(t, part, req.headers, &mut content_ids);
            uses.extend(d.uses);
            if let Some(kind) = d.denial {
                problems.push((
                    kind,
                    format!(
                        "part {number} ({} {}): {}",
                        part.method, part.target, d.reason
                    ),
                ));
            }
        }
    }
    if !problems.is_empty() {
        let kind = if problems.iter().all(|(k, _)| *k == Denial::Malformed) {
            Denial::Malformed
        } else {
            Denial::Policy
        };
        let reason = problems
            .into_iter()
            .map(|(_, m)| m)
            .collect::<Vec<_>>()
            .join("; ");
        return Inspected {
            decision: Decision {
                denial: Some(kind),
                uses,
                reason,
                add_select: None,
                if_match_star: false,
            },
            body: None,
        };
    }
    let reason = format!("every one of the {number} parts is allowed");
    let decision = Decision {
        denial: None,
        uses,
        reason,
        add_select: None,
        if_match_star: false,
    };
    Inspected {
        decision,
        body: Some(Bytes::from(batch::serialize(&parsed))),
    }
}

/// Classifies one part, and on success rewrites it for the org: absolute target, allowed
/// headers only, `$select`/`If-Match` additions.
fn inspect_part(
    t: &Tenant<'_>,
    part: &mut Part,
    outer: &HeaderMap,
    content_ids: &mut BTreeMap<String, String>,
) -> Decision {
    let method: Method = match part.method.parse() {
        Ok(m) => m,
        Err(_) => return Decision::malformed(format!("`{}` is not an HTTP method", part.method)),
    };
    let inner = match part_headers(part) {
        Ok(h) => h,
        Err(e) => return Decision::malformed(e),
    };
    if let Err(e) = headers::check_request(&inner) {
        return Decision::malformed(e);
    }
    // The batch's own preferences may apply to its parts: the part is judged with both (a copy
    // of the part's headers only when the batch has any).
    let prefer = http::header::HeaderName::from_static("prefer");
    let judged = match outer.contains_key(&prefer) {
        false => std::borrow::Cow::Borrowed(&inner),
        true => {
            let mut judged = inner.clone();
            for v in outer.get_all(&prefer) {
                judged.append(prefer.clone(), v.clone());
            }
            std::borrow::Cow::Owned(judged)
        }
    };
    let target = std::mem::take(&mut part.target);
    let (path, query) = match relative_target(&target, t.urls) {
        Ok(x) => x,
        Err(e) => {
            part.target = target;
            return Decision::malformed(e);
        }
    };
    if path == "$batch" {
        part.target = target;
        return Decision::malformed("a batch may not contain another batch");
    }
    let env = Env {
        metadata: t.metadata,
        known_functions: &t.policy.functions,
        urls: t.urls,
        content_ids,
    };
    let request = Request {
        method: &method,
        path,
        query,
        headers: &judged,
        body: Some(&part.body),
    };
    let decision = judge(t, &request, &env, &inner);
    if !decision.allowed() {
        part.target = target;
        return decision;
    }
    if let Some(id) = &part.content_id
        && method == Method::POST
        && let Some(set) = created_set(&decision)
    {
        content_ids.insert(format!("${id}"), set);
    }
    rewrite_part(part, path, query, &inner, &decision, t.urls);
    decision
}

/// The entity set a POST creates its row in: its first create, whether it names the collection
/// (`contacts`) or reaches it through a navigation property; deep inserts come after it.
fn created_set(decision: &Decision) -> Option<String> {
    decision.uses.iter().find_map(|u| match u {
        crate::policy::classify::Use::Table(t) if t.verb == crate::config::Verb::Post => {
            Some(t.set.clone())
        }
        _ => None,
    })
}

/// A part's inner request headers, as the top-level request's would be: what is not a valid
/// header is refused (it could not be judged, and is never forwarded).
fn part_headers(part: &Part) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (k, v) in &part.headers {
        match (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => return Err(format!("the inner header `{k}` is not a valid HTTP header")),
        }
    }
    Ok(map)
}

/// A part's target as (raw resource path, raw query): relative, `/api/data/vX/...`, an absolute
/// URL of this gateway or of the org, or `$n...`. Any other host is malformed.
pub fn relative_target<'t>(
    target: &'t str,
    urls: &Urls,
) -> Result<(&'t str, Option<&'t str>), String> {
    // Case-insensitive prefix tests in place (no lowercased copies: this runs for every part).
    let starts = |s: &str, prefix: &str| {
        s.as_bytes()
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    let mut rest = target;
    if starts(target, "http://") || starts(target, "https://") {
        let base = std::iter::once(&urls.org)
            .chain(&urls.gateway)
            .filter(|b| starts(target, b) && target[b.len()..].starts_with('/'))
            .max_by_key(|b| b.len())
            .ok_or_else(|| format!("`{target}` points at another host"))?;
        rest = &target[base.len()..];
    }
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let rest = rest
        .strip_prefix("api/data/")
        .and_then(|r| r.strip_prefix(urls.api_version.as_str()))
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(rest);
    if rest.starts_with("api/data/") {
        return Err(format!("`{target}` names another API version"));
    }
    Ok(match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    })
}

fn rewrite_part(
    part: &mut Part,
    path: &str,
    query: Option<&str>,
    inner: &HeaderMap,
    d: &Decision,
    urls: &Urls,
) {
    // One string: `<org>/api/data/<version>/<path>[?<query>[&]$select=<columns>]`.
    let query = query.unwrap_or("");
    let select = d.add_select.as_deref();
    let mut target = String::with_capacity(
        urls.org.len() + urls.api_version.len() + path.len() + query.len() + 32,
    );
    if path.starts_with('$') {
        // Content-ID references stay relative: Dataverse resolves them.
        target.push_str(path);
    } else {
        target.extend([
            urls.org.as_str(),
            "/api/data/",
            &urls.api_version,
            "/",
            path,
        ]);
    }
    if !query.is_empty() || select.is_some() {
        target.push('?');
        target.push_str(query);
    }
    if let Some(s) = select {
        if !query.is_empty() {
            target.push('&');
        }
        target.extend(["$select=", s]);
    }
    part.target = target;
    // The headers `copy_request_headers` would put in a fresh map, in its order, with
    // `If-Match: *` inserted as `HeaderMap::insert` would (in place of the first `If-Match`,
    // the others dropped; else last), written straight into the part's list.
    let text = |v: &HeaderValue| v.to_str().unwrap_or_default().to_string();
    let mut kept: Vec<(String, String)> = Vec::with_capacity(inner.len() + 2);
    let prefer = headers::for_each_forwarded(inner, |k, v| {
        kept.push((k.as_str().to_string(), text(v)));
    });
    if prefer && let Some(v) = headers::forwarded_prefer(inner) {
        kept.push(("prefer".to_string(), text(&v)));
    }
    if d.if_match_star {
        let if_match = |k: &str| k == http::header::IF_MATCH.as_str();
        match kept.iter().position(|(k, _)| if_match(k)) {
            Some(first) => {
                kept[first].1 = "*".to_string();
                let mut i = 0;
                kept.retain(|(k, _)| {
                    i += 1;
                    i - 1 == first || !if_match(k)
                });
            }
            None => kept.push((http::header::IF_MATCH.as_str().to_string(), "*".to_string())),
        }
    }
    let content_length = part
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .cloned();
    part.headers = kept;
    if let Some(cl) = content_length {
        part.headers.push(cl);
    }
    // A Content-ID given among the inner headers moves to the part's MIME headers, where every
    // reader of the batch looks for it (`$n` references depend on it).
    if let Some(id) = &part.content_id {
        let has =
            |h: &[(String, String)]| h.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-id"));
        if !has(&part.mime_headers) {
            part.mime_headers
                .push(("Content-ID".to_string(), id.clone()));
        }
    }
}

/// For explain: a short verdict name.
pub fn verdict(d: &Decision) -> &'static str {
    match d.denial {
        None => "ALLOW",
        Some(Denial::Policy) => "DENY (403)",
        Some(Denial::Malformed) => "DENY (400)",
    }
}
