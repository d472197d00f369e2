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
use crate::policy::batch::serialize as write;
use crate::policy::batch::{self, ItemRef, PartRef};
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
    // Outside a batch no request has Content-IDs to refer to: one shared empty map, not one
    // built and dropped per request.
    static NO_CONTENT_IDS: BTreeMap<String, String> = BTreeMap::new();
    let env = Env {
        metadata: t.metadata,
        known_functions: &t.policy.functions,
        urls: t.urls,
        content_ids: &NO_CONTENT_IDS,
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
    // The decision does not read them: taken, not copied.
    if let (Ok(c), Some(meta)) = (&mut classified, t.metadata.filter(|m| m.any_currency())) {
        currency_of_listed_money(c, t.policy, meta);
    }
    let reads = match &mut classified {
        Ok(c) if !c.annotation_reads.is_empty() => {
            count_conditional_reads(c, t.policy);
            std::mem::take(&mut c.annotation_reads)
        }
        _ => vec![],
    };
    let mut decision = decide(t.policy, classified, decide_headers);
    if !decision.allowed() {
        explain_annotation_reads(&mut decision, &reads, t.policy);
    }
    decision
}

/// A main read without `$select` of a table with a column list is sent with the list as its
/// `$select`; when the list names a money column, the row's currency lookup comes back with it,
/// so the lookup is read as if named (and refused unless the list holds it too).
fn currency_of_listed_money(
    c: &mut classify::Classified,
    policy: &crate::config::Policy,
    meta: &crate::policy::metadata::Metadata,
) {
    use crate::config::Verb;
    use crate::policy::metadata::CURRENCY_LOOKUP;
    let implied = c.uses.iter().find_map(|u| match u {
        classify::Use::Table(t) if t.main && t.all_columns && t.verb == Verb::Get => {
            let cols = policy.tables.get(&*t.set)?.columns.as_ref()?;
            meta.money_without_currency(&t.set, cols.iter().map(String::as_str))?;
            Some(std::sync::Arc::clone(&t.set))
        }
        _ => None,
    });
    if let Some(set) = implied {
        let mut columns = classify::Columns::new();
        columns.push(CURRENCY_LOOKUP);
        c.uses.push(classify::Use::Table(classify::Touch {
            set,
            verb: Verb::Get,
            columns,
            all_columns: false,
            main: false,
        }));
    }
}

/// The column lists of `policy` that name a money column of their table without its currency
/// lookup, as `(entity set, money column)`: every read of such a column is denied (the lookup
/// comes back with it), which an operator should hear about when the metadata arrives.
pub fn money_without_currency(
    policy: &crate::config::Policy,
    meta: &crate::policy::metadata::Metadata,
) -> Vec<(String, String)> {
    policy
        .tables
        .iter()
        .filter_map(|(set, rule)| {
            let columns = rule.columns.as_ref()?.iter().map(String::as_str);
            let money = meta.money_without_currency(set, columns)?;
            Some((set.clone(), money.to_owned()))
        })
        .collect()
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
        let why = d.reason();
        let explained = format!(
            "Prefer odata.include-annotations asks for {}, which returns the primary name of \
             the `{}` row `{}`.`{}` points to: {}",
            classify::FORMATTED_VALUE,
            read.set,
            read.owner,
            read.column,
            why
        );
        let reason = decision.reason_mut();
        *reason = match reason.contains(&*why) {
            true => reason.replacen(&*why, &explained, 1),
            false => format!("{reason}; {explained}"),
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
    let body = req.body.unwrap_or_default();
    let parsed = match batch::parse_borrowed(content_type, body, MAX_BATCH_PARTS) {
        Ok(b) => b,
        Err(e) => return deny(Decision::malformed(e.to_string())),
    };
    let count: usize = parsed.items.iter().map(|item| item.parts().len()).sum();
    let mut uses = Vec::new();
    let mut problems: Vec<(Denial, String)> = Vec::new();
    let mut number = 0;
    // The batch as it is forwarded, written part by part as each is allowed and rewritten (what
    // `batch::serialize` writes for the rewritten batch); dropped when a part is denied.
    let mut out = Vec::with_capacity(body.len() + body.len() / 2 + 64 * count + 64);
    let mut batch = PerBatch::new(t.urls, req.headers);
    for item in &parsed.items {
        let mut content_ids = BTreeMap::new();
        let change_set = match item {
            ItemRef::Request(_) => None,
            ItemRef::ChangeSet { boundary, .. } => Some(boundary.as_str()),
        };
        write::open_item(&mut out, &parsed.boundary, change_set);
        for part in item.parts() {
            number += 1;
            if let Some(boundary) = change_set {
                write::open_change_set_part(&mut out, boundary);
            }
            let mut d = inspect_part(t, part, &mut batch, &mut content_ids, &mut out);
            if change_set.is_some() {
                write::close_change_set_part(&mut out);
            }
            if let Some(kind) = d.denial {
                problems.push((
                    kind,
                    format!(
                        "part {number} ({} {}): {}",
                        part.method,
                        part.target,
                        d.reason()
                    ),
                ));
            }
            add_distinct(&mut uses, std::mem::take(&mut d.uses));
        }
        if let Some(boundary) = change_set {
            write::close_change_set(&mut out, boundary);
        }
        write::close_item(&mut out);
    }
    write::close_batch(&mut out, &parsed.boundary);
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
            decision: Decision::new(Some(kind), uses, reason),
            body: None,
        };
    }
    let reason = format!("every one of the {number} parts is allowed");
    let decision = Decision::new(None, uses, reason);
    Inspected {
        decision,
        body: Some(Bytes::from(out)),
    }
}

/// Distinct uses a batch keeps for its decision, compared with (at most) the first ones.
const DISTINCT_USES_COMPARED: usize = 64;

/// Appends the uses of one part that the batch has not listed yet: a batch of a hundred
/// requests on one table lists that table once, in the order of first use. A use is compared
/// only with the first [`DISTINCT_USES_COMPARED`] listed, so a batch of a thousand different
/// parts costs at most that many comparisons per use (and may then list a repeat).
fn add_distinct(uses: &mut Vec<classify::Use>, new: Vec<classify::Use>) {
    for u in new {
        let compared = &uses[..uses.len().min(DISTINCT_USES_COMPARED)];
        if !compared.contains(&u) {
            uses.push(u);
        }
    }
}

/// What the parts of one batch share: worked out once, not for every part.
struct PerBatch<'r> {
    /// The batch's own headers.
    outer: &'r HeaderMap,
    /// Whether the batch has a `Prefer` header.
    outer_prefer: bool,
    /// `<org>/api/data/<version>/`, what a rewritten target starts with.
    org_prefix: String,
    /// The part's inner headers, refilled for every part (its allocation reused).
    inner: HeaderMap,
}

impl<'r> PerBatch<'r> {
    fn new(urls: &Urls, outer: &'r HeaderMap) -> Self {
        PerBatch {
            outer,
            outer_prefer: outer.contains_key(http::header::HeaderName::from_static("prefer")),
            org_prefix: format!("{}/api/data/{}/", urls.org, urls.api_version),
            inner: HeaderMap::new(),
        }
    }
}

/// Classifies one part, and on success writes it to `out` rewritten for the org: absolute
/// target, allowed headers only, `$select`/`If-Match` additions.
fn inspect_part(
    t: &Tenant<'_>,
    part: &PartRef<'_>,
    batch: &mut PerBatch<'_>,
    content_ids: &mut BTreeMap<String, String>,
    out: &mut Vec<u8>,
) -> Decision {
    let method: Method = match part.method.parse() {
        Ok(m) => m,
        Err(_) => return Decision::malformed(format!("`{}` is not an HTTP method", part.method)),
    };
    if let Err(e) = part_headers(part, &mut batch.inner) {
        return Decision::malformed(e);
    }
    let inner = &batch.inner;
    if let Err(e) = headers::check_request(inner) {
        return Decision::malformed(e);
    }
    // The batch's own preferences may apply to its parts: the part is judged with both (a copy
    // of the part's headers only when the batch has any).
    let judged = match batch.outer_prefer {
        false => std::borrow::Cow::Borrowed(inner),
        true => {
            let prefer = http::header::HeaderName::from_static("prefer");
            let mut judged = inner.clone();
            for v in batch.outer.get_all(&prefer) {
                judged.append(prefer.clone(), v.clone());
            }
            std::borrow::Cow::Owned(judged)
        }
    };
    let (path, query) = match relative_target(part.target, t.urls) {
        Ok(x) => x,
        Err(e) => return Decision::malformed(e),
    };
    if path == "$batch" {
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
        body: Some(part.body),
    };
    let decision = judge(t, &request, &env, inner);
    if !decision.allowed() {
        return decision;
    }
    if let Some(id) = part.content_id
        && method == Method::POST
        && let Some(set) = created_set(&decision)
    {
        content_ids.insert(format!("${id}"), set);
    }
    write_part(out, part, path, query, inner, &decision, &batch.org_prefix);
    decision
}

/// The entity set a POST creates its row in: its first create, whether it names the collection
/// (`contacts`) or reaches it through a navigation property; deep inserts come after it.
fn created_set(decision: &Decision) -> Option<String> {
    decision.uses.iter().find_map(|u| match u {
        crate::policy::classify::Use::Table(t) if t.verb == crate::config::Verb::Post => {
            Some(t.set.to_string())
        }
        _ => None,
    })
}

/// A part's inner request headers, as the top-level request's would be, into `map` (emptied
/// first): what is not a valid header is refused (it could not be judged, and is never
/// forwarded).
fn part_headers(part: &PartRef<'_>, map: &mut HeaderMap) -> Result<(), String> {
    map.clear();
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
    Ok(())
}

/// A part's target as (raw resource path, raw query): relative, `/api/data/vX/...`, an absolute
/// URL of this gateway or of the org, or `$n...`. Any other host is malformed.
pub fn relative_target<'t>(
    target: &'t str,
    urls: &Urls,
) -> Result<(&'t str, Option<&'t str>), String> {
    // Case-insensitive prefix tests in place (no lowercased copies: this runs for every part):
    // the same bytes (the usual case) or, byte by byte, the same but for case (after a cheap
    // look at the last byte, which most other prefixes fail).
    let starts = |s: &str, prefix: &str| {
        let prefix = prefix.as_bytes();
        let lower = |b: Option<&u8>| b.map(u8::to_ascii_lowercase);
        s.as_bytes().get(..prefix.len()).is_some_and(|head| {
            head == prefix
                || (lower(head.last()) == lower(prefix.last()) && head.eq_ignore_ascii_case(prefix))
        })
    };
    let mut rest = target;
    if starts(target, "http://") || starts(target, "https://") {
        // The longest base the target starts with, followed by a `/` (bases of one length
        // that both match are the same text but for case: either cut is the same).
        let mut base: Option<&str> = None;
        for b in std::iter::once(&urls.org).chain(&urls.gateway) {
            let longer = base.is_none_or(|base| b.len() >= base.len());
            if longer && target.as_bytes().get(b.len()) == Some(&b'/') && starts(target, b) {
                base = Some(b);
            }
        }
        let base = base.ok_or_else(|| format!("`{target}` points at another host"))?;
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
    Ok(
        match crate::policy::odata::find_byte(b'?', rest.as_bytes()) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        },
    )
}

/// Writes an allowed part as it is forwarded: its MIME headers as written (with a Content-ID
/// given among the inner headers added to them, where every reader of the batch looks for it:
/// `$n` references depend on it), the target pointed at the org (`$select` added when the
/// decision says so), the inner headers the top level would forward (`copy_request_headers`'
/// order; `If-Match: *` put where `HeaderMap::insert` would: in place of the first `If-Match`,
/// the others dropped, else last), and the body. `org_prefix` is `<org>/api/data/<version>/`.
fn write_part(
    out: &mut Vec<u8>,
    part: &PartRef<'_>,
    path: &str,
    query: Option<&str>,
    inner: &HeaderMap,
    d: &Decision,
    org_prefix: &str,
) {
    for (name, value) in &part.mime_headers {
        write::mime_header(out, name, value);
    }
    if let Some(id) = part.content_id
        && !part
            .mime_headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-id"))
    {
        write::mime_header(out, "Content-ID", id);
    }
    write::end_mime_headers(out);
    // The request line: `<method> <org>/api/data/<version>/<path>[?<query>[&]$select=<columns>]
    // <version>`, written piece by piece (the line maps CR and LF in each piece as in the whole).
    let query = query.unwrap_or("");
    let select = d.add_select.as_deref();
    let start = out.len();
    out.extend_from_slice(part.method.as_bytes());
    out.push(b' ');
    if !path.starts_with('$') {
        // Content-ID references stay relative: Dataverse resolves them.
        out.extend_from_slice(org_prefix.as_bytes());
    }
    out.extend_from_slice(path.as_bytes());
    if !query.is_empty() || select.is_some() {
        out.push(b'?');
        out.extend_from_slice(query.as_bytes());
    }
    if let Some(s) = select {
        if !query.is_empty() {
            out.push(b'&');
        }
        out.extend_from_slice(b"$select=");
        out.extend_from_slice(s.as_bytes());
    }
    out.push(b' ');
    out.extend_from_slice(part.version.as_bytes());
    write::end_line(out, start);
    fn text(v: &HeaderValue) -> &str {
        v.to_str().unwrap_or_default()
    }
    let if_match = http::header::IF_MATCH.as_str();
    let mut if_match_written = false;
    let prefer = headers::for_each_forwarded(inner, |k, v| {
        if d.if_match_star && k.as_str() == if_match {
            if !if_match_written {
                write::request_header(out, if_match, "*");
                if_match_written = true;
            }
            return;
        }
        write::request_header(out, k.as_str(), text(v));
    });
    if prefer && let Some(v) = headers::forwarded_prefer(inner) {
        write::request_header(out, "prefer", text(&v));
    }
    if d.if_match_star && !if_match_written {
        write::request_header(out, if_match, "*");
    }
    write::end_part(out, part.body);
}

/// For explain: a short verdict name.
pub fn verdict(d: &Decision) -> &'static str {
    match d.denial {
        None => "ALLOW",
        Some(Denial::Policy) => "DENY (403)",
        Some(Denial::Malformed) => "DENY (400)",
    }
}

#[cfg(test)]
mod tests {
    //! The batch the inspector writes part by part is the batch the owned pipeline wrote: parse
    //! into owned parts, rewrite each allowed part in place (with the `HeaderMap` the rewrite
    //! used), `batch::serialize`. The oracle below is that pipeline as it was.

    use proptest::prelude::*;

    use super::*;
    use crate::config::{TableRule, Verb};
    use crate::policy::batch::{Item, Part};

    fn old_rewrite(
        part: &mut Part,
        path: &str,
        query: Option<&str>,
        inner: &HeaderMap,
        d: &Decision,
        urls: &Urls,
    ) {
        let query = query.unwrap_or("");
        let select = d.add_select.as_deref();
        let mut target = String::new();
        if path.starts_with('$') {
            target.push_str(path);
        } else {
            target = format!("{}/api/data/{}/{path}", urls.org, urls.api_version);
        }
        if !query.is_empty() || select.is_some() {
            target.push('?');
            target.push_str(query);
        }
        if let Some(s) = select {
            if !query.is_empty() {
                target.push('&');
            }
            target.push_str("$select=");
            target.push_str(s);
        }
        part.target = target;
        let mut kept = HeaderMap::new();
        headers::copy_request_headers(inner, &mut kept);
        if d.if_match_star {
            kept.insert(http::header::IF_MATCH, HeaderValue::from_static("*"));
        }
        let content_length = part
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .cloned();
        part.headers = kept
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        if let Some(cl) = content_length {
            part.headers.push(cl);
        }
        if let Some(id) = &part.content_id {
            let has = |h: &[(String, String)]| {
                h.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-id"))
            };
            if !has(&part.mime_headers) {
                part.mime_headers
                    .push(("Content-ID".to_string(), id.clone()));
            }
        }
    }

    /// The body the owned pipeline forwarded, with each part judged as the inspector judges it.
    fn oracle(t: &Tenant<'_>, req: &Request<'_>) -> Option<Bytes> {
        let content_type = req.headers[http::header::CONTENT_TYPE].to_str().unwrap();
        let body = req.body.unwrap();
        let borrowed = batch::parse_borrowed(content_type, body, MAX_BATCH_PARTS).ok()?;
        let mut owned = batch::parse(content_type, body, MAX_BATCH_PARTS).ok()?;
        for (item, raw) in owned.items.iter_mut().zip(&borrowed.items) {
            let mut content_ids = BTreeMap::new();
            let parts: Vec<&mut Part> = match item {
                Item::Request(p) => vec![p],
                Item::ChangeSet { parts, .. } => parts.iter_mut().collect(),
            };
            for (part, raw) in parts.into_iter().zip(raw.parts()) {
                let mut batch = PerBatch::new(t.urls, req.headers);
                let d = inspect_part(t, raw, &mut batch, &mut content_ids, &mut Vec::new());
                if !d.allowed() {
                    return None;
                }
                let mut inner = HeaderMap::new();
                part_headers(raw, &mut inner).unwrap();
                let (path, query) = relative_target(raw.target, t.urls).unwrap();
                old_rewrite(part, path, query, &inner, &d, t.urls);
            }
        }
        Some(Bytes::from(batch::serialize(&owned)))
    }

    fn policy() -> Policy {
        let mut p = Policy::default();
        let rule = |verbs: Vec<Verb>, columns: Option<Vec<&str>>| TableRule {
            verbs,
            columns: columns.map(|c| c.into_iter().map(str::to_string).collect()),
        };
        p.tables.insert(
            "contacts".into(),
            rule(vec![Verb::Get, Verb::Post, Verb::Patch, Verb::Delete], None),
        );
        // PATCH without POST: `If-Match: *` is added; a column list: `$select` is added.
        p.tables.insert(
            "accounts".into(),
            rule(
                vec![Verb::Get, Verb::Patch],
                Some(vec!["name", "accountid"]),
            ),
        );
        p.tables
            .insert("leads".into(), rule(vec![Verb::Get, Verb::Post], None));
        p
    }

    fn urls() -> Urls {
        Urls {
            org: "https://org.crm.dynamics.com".into(),
            gateway: vec!["http://gw:8080/contoso".into(), "http://gw:8080".into()],
            api_version: "v9.2".into(),
        }
    }

    /// Inner header blocks, the interesting ones for the rewrite.
    const HEADERS: &[&str] = &[
        "",
        "Accept: application/json\r\n",
        "accept: application/json\r\nIf-Match: W/\"1\"\r\nif-match: W/\"2\"\r\n",
        "Prefer: return=representation, respond-async\r\nAccept: */*\r\nPrefer: odata.maxpagesize=5\r\n",
        "X-Other: 1\r\nContent-Type: application/json\r\nOData-Version: 4.0\r\nAccept: text/x\u{e9}\r\n",
        "If-None-Match: W/\"x\"\r\nUser-Agent: a\tb\r\nCONSISTENCY: Strong\r\n",
        "Content-ID: 7\r\nAccept: application/json\r\n",
        "MSCRMCallerID: 00000000-0000-0000-0000-000000000009\r\nAuthorization: x\r\n",
    ];

    /// Requests: method, target, body.
    const REQUESTS: &[(&str, &str, &str)] = &[
        ("GET", "contacts?$select=fullname&$top=2", ""),
        ("GET", "accounts", ""),
        ("GET", "/api/data/v9.2/accounts?$filter=name%20eq%20'a'", ""),
        ("GET", "http://gw:8080/contoso/api/data/v9.2/leads", ""),
        (
            "GET",
            "https://org.crm.dynamics.com/api/data/v9.2/contacts(00000000-0000-0000-0000-000000000001)",
            "",
        ),
        (
            "PATCH",
            "accounts(00000000-0000-0000-0000-000000000002)",
            "{\"name\":\"x\"}",
        ),
        (
            "PATCH",
            "contacts(00000000-0000-0000-0000-000000000003)",
            "{\"fullname\":\"y\"}",
        ),
        ("POST", "contacts", "{\"lastname\":\"Hopper\"}"),
        (
            "DELETE",
            "contacts(00000000-0000-0000-0000-000000000004)",
            "",
        ),
    ];

    fn part(mime: &str, request: usize, headers: usize, lf: bool) -> String {
        let (method, target, body) = REQUESTS[request];
        let s = format!(
            "Content-Type: application/http\r\n{mime}\r\n{method} {target} HTTP/1.1\r\n{}\r\n{body}",
            HEADERS[headers]
        );
        if lf { s.replace("\r\n", "\n") } else { s }
    }

    /// Inspects `body` as a `$batch` and checks its forwarded bytes against the owned
    /// pipeline's; whether it was allowed.
    fn check(body: &str) -> bool {
        let meta = Metadata::parse(include_bytes!("../sim/metadata.xml")).unwrap();
        let (policy, urls) = (policy(), urls());
        let t = Tenant {
            policy: &policy,
            metadata: Some(&meta),
            urls: &urls,
        };
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/mixed; boundary=b"),
        );
        let req = Request {
            method: &Method::POST,
            path: "$batch",
            query: None,
            headers: &h,
            body: Some(body.as_bytes()),
        };
        let got = inspect(&t, &req);
        let want = oracle(&t, &req);
        assert_eq!(got.body, want, "{body}\n{}", got.decision.reason());
        got.decision.allowed()
    }

    #[test]
    fn a_batch_lists_each_use_once_in_order_of_first_use() {
        let table = |set: &str, column: &str| {
            classify::Use::Table(classify::Touch {
                set: std::sync::Arc::from(set),
                verb: Verb::Get,
                columns: [column].into(),
                all_columns: false,
                main: false,
            })
        };
        let mut uses = Vec::new();
        for _ in 0..100 {
            add_distinct(
                &mut uses,
                vec![table("contacts", "a"), table("accounts", "n")],
            );
        }
        add_distinct(
            &mut uses,
            vec![table("contacts", "b"), table("accounts", "n")],
        );
        assert_eq!(
            uses,
            [
                table("contacts", "a"),
                table("accounts", "n"),
                table("contacts", "b")
            ]
        );
        // Past the compared prefix a repeat is listed again: the cost per use stays bounded.
        let mut many: Vec<_> = (0..DISTINCT_USES_COMPARED)
            .map(|i| table("contacts", &format!("c{i}")))
            .collect();
        add_distinct(&mut many, vec![table("leads", "x")]);
        add_distinct(
            &mut many,
            vec![table("leads", "x"), table("contacts", "c0")],
        );
        assert_eq!(many.len(), DISTINCT_USES_COMPARED + 2);
    }

    #[test]
    fn the_written_batch_is_the_owned_pipelines() {
        let mut allowed = 0;
        for request in 0..REQUESTS.len() {
            for headers in 0..HEADERS.len() {
                let body = format!(
                    "--b\r\n{}\r\n--b--\r\n",
                    part(
                        "Content-Transfer-Encoding: binary\r\n",
                        request,
                        headers,
                        false
                    )
                );
                allowed += usize::from(check(&body));
                let lf = format!("--b\n{}\n--b--\n", part("", request, headers, true));
                check(&lf);
            }
        }
        assert!(allowed > 20, "{allowed}");
    }

    proptest! {
        /// Mixed batches: top-level parts and change sets with Content-IDs (in the MIME headers
        /// or the inner ones), `$n` targets, CRLF or LF.
        #[test]
        fn mixed_batches_are_written_as_the_owned_pipeline_wrote_them(
            items in prop::collection::vec(
                (any::<bool>(), prop::collection::vec((0..REQUESTS.len(), 0..HEADERS.len(), any::<bool>()), 1..4)),
                1..5,
            ),
            lf in any::<bool>(),
        ) {
            let mut body = String::from("preamble\r\n");
            for (change_set, parts) in &items {
                if *change_set {
                    body.push_str("--b\r\nContent-Type: multipart/mixed; boundary=\"c s\"\r\n\r\n");
                    for (i, (request, headers, id)) in parts.iter().enumerate() {
                        let (request, mime) = match (*id, i) {
                            (true, i) if i > 0 => (REQUESTS.len() + 1, format!("Content-ID: {}\r\n", i + 1)),
                            (true, i) => (*request, format!("Content-ID: {}\r\n", i + 1)),
                            (false, _) => (*request, String::new()),
                        };
                        let text = match request.checked_sub(REQUESTS.len() + 1) {
                            // A `$1` reference to the first part (when it created a row).
                            Some(_) => format!(
                                "Content-Type: application/http\r\n{mime}\r\nPATCH $1 HTTP/1.1\r\n{}\r\n{{\"lastname\":\"x\"}}",
                                HEADERS[*headers]
                            ),
                            None => part(&mime, request.min(REQUESTS.len() - 1), *headers, false),
                        };
                        body.push_str(&format!("--c s\r\n{text}\r\n"));
                    }
                    body.push_str("--c s--\r\n");
                } else {
                    for (request, headers, _) in parts {
                        body.push_str(&format!("--b\r\n{}\r\n", part("", *request, *headers, false)));
                    }
                }
            }
            body.push_str("--b--\r\nepilogue");
            if lf {
                body = body.replace("\r\n", "\n");
            }
            check(&body);
        }
    }
}
