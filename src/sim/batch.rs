//! `POST $batch`: a `multipart/mixed` body run part by part through [`dispatch`] and answered
//! with a `multipart/mixed; boundary=batchresponse_<guid>` body (see `multipart`).
//!
//! Parsing is [`crate::policy::batch::parse`], which enforces Dataverse's structure (at most 1000
//! requests; no GET, nesting or `$batch` inside change sets; `$n` naming only an earlier Content-ID
//! of the same change set) and tolerates LF-only lines and `Name:value` headers; a body it refuses
//! is answered by one 400 JSON error. Each part's target becomes a path on this simulator:
//! absolute URLs must be under the simulator's origin (scheme aside; `localhost` and `127.0.0.1`
//! are the same host), as Dataverse requires its own service root; `/`-rooted paths are kept;
//! other relative ones are resolved against `/api/data/v9.2/`; and `$n` — at the start of a
//! target or as an `@odata.bind` / `@odata.id` value — becomes the `OData-EntityId` of the row
//! request `n` wrote. Parts run with the batch's caller and their own headers only.
//!
//! A change set holds the store lock from its first part to its last, so other requests never
//! see it half done; when a part fails, the store is restored to its state before the change set
//! and the change set is answered by that part's error alone (OData 4.0, 11.7.4). Without
//! `Prefer: odata.continue-on-error` the batch stops at the first failure and answers 400, as
//! Dataverse does; with it every item runs and the batch answers 200.

use std::borrow::Cow;
use std::collections::HashMap;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use serde_json::Value;

use super::data::Store;
use super::dispatch::{API, Caller, Inner, dispatch};
use super::multipart::{Answer, Writer};
use super::response::{SimBody, bad_request, full, set_header};
use super::state::{Shared, lock};
use crate::policy::batch::{Item, Part};

/// Most requests in one batch, counting those in change sets (Dataverse's limit).
const MAX_PARTS: usize = 1000;

/// Content-ID → URL of the row that request wrote, within one change set.
type Refs = HashMap<String, String>;

pub fn execute(
    shared: &Shared,
    caller: &Caller,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<SimBody> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let batch = match crate::policy::batch::parse(content_type, body, MAX_PARTS) {
        Ok(batch) => batch,
        Err(e) => return bad_request(&e.to_string()),
    };
    let keep_going = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().starts_with("odata.continue-on-error"));
    let mut writer = Writer::default();
    let mut failed = false;
    for item in &batch.items {
        let ok = match item {
            Item::Request(part) => {
                let answer = run(shared, caller, &mut lock(&shared.store), part, &Refs::new());
                writer.single(&answer);
                answer.ok()
            }
            Item::ChangeSet { parts, .. } => change_set(shared, caller, parts, &mut writer),
        };
        failed |= !ok;
        if !ok && !keep_going {
            break;
        }
    }
    let (content_type, body) = writer.finish();
    let mut response = Response::new(full(body));
    *response.status_mut() = if failed && !keep_going {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    set_header(&mut response, "content-type", &content_type);
    if keep_going {
        set_header(
            &mut response,
            "preference-applied",
            "odata.continue-on-error",
        );
    }
    response
}

/// Runs a change set atomically; false when it failed (and was rolled back).
fn change_set(shared: &Shared, caller: &Caller, parts: &[Part], writer: &mut Writer) -> bool {
    let mut store = lock(&shared.store);
    let snapshot = store.clone();
    let mut refs = Refs::new();
    let mut answers = Vec::with_capacity(parts.len());
    for part in parts {
        let answer = run(shared, caller, &mut store, part, &refs);
        if !answer.ok() {
            *store = snapshot;
            writer.single(&answer);
            return false;
        }
        if let (Some(id), Some(url)) = (&part.content_id, answer.entity_id()) {
            refs.insert(id.clone(), url.to_string());
        }
        answers.push((part.content_id.clone(), answer));
    }
    writer.change_set(&answers);
    true
}

fn run(shared: &Shared, caller: &Caller, store: &mut Store, part: &Part, refs: &Refs) -> Answer {
    let resolved = resolve_target(&shared.base_url, &part.target, refs)
        .and_then(|target| Ok((target, resolve_body(&part.body, refs)?)));
    let (target, body) = match resolved {
        Ok(resolved) => resolved,
        Err(message) => return Answer::from_response(bad_request(&message)),
    };
    let Ok(method) = Method::from_bytes(part.method.as_bytes()) else {
        return Answer::from_response(bad_request("The request method is not valid."));
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &part.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    let caller = match super::agents::impersonate(shared, &headers, caller) {
        Ok(caller) => caller,
        Err(refused) => return Answer::from_response(*refused),
    };
    let inner = Inner {
        method: &method,
        target: &target,
        headers: &headers,
        body: &body,
    };
    Answer::from_response(dispatch(shared, &caller, store, &inner))
}

/// The path and query a part's target names on this simulator, or why it names none.
fn resolve_target(base: &str, target: &str, refs: &Refs) -> Result<String, String> {
    let target = expand_reference(target, refs)?;
    let path = local_path(base, &target)?;
    // Some clients put a reference after the service root: `<root>/$1/lastname`.
    match path.strip_prefix(API) {
        Some(rest) if rest.starts_with('$') && refs.contains_key(reference_id(rest)) => {
            let expanded = expand_reference(rest, refs)?;
            local_path(base, &expanded)
        }
        _ => Ok(path),
    }
}

/// An absolute URL (under the simulator's origin), a rooted path, or one relative to the API.
fn local_path(base: &str, target: &str) -> Result<String, String> {
    let lower = target.to_ascii_lowercase();
    let Some(scheme_end) = ["http://", "https://"]
        .iter()
        .find(|s| lower.starts_with(*s))
        .map(|s| s.len())
    else {
        return Ok(match target.strip_prefix('/') {
            Some(_) => target.to_string(),
            None => format!("{API}{target}"),
        });
    };
    let rest = &target[scheme_end..];
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let own = base.split_once("://").map_or(base, |(_, a)| a);
    if same_authority(authority, own) {
        Ok(format!("/{}", path.trim_start_matches('/')))
    } else {
        Err(format!(
            "The URI '{target}' is not valid because it is not based on '{base}{API}'."
        ))
    }
}

/// `1` of `$1/x` (like ODataLib, the Content-ID runs to the first `/`).
fn reference_id(reference: &str) -> &str {
    let rest = reference.strip_prefix('$').unwrap_or(reference);
    rest.split('/').next().unwrap_or(rest)
}

/// `$n/rest` → `<url of n>/rest`; `$metadata` and other targets are left alone.
fn expand_reference<'a>(target: &'a str, refs: &Refs) -> Result<Cow<'a, str>, String> {
    let Some(rest) = target.strip_prefix('$') else {
        return Ok(Cow::Borrowed(target));
    };
    let id = reference_id(target);
    let tail = &rest[id.len()..];
    if id.split(['?', '#']).next() == Some("metadata") {
        return Ok(Cow::Borrowed(target));
    }
    match refs.get(id) {
        Some(url) => Ok(Cow::Owned(format!("{url}{tail}"))),
        None => Err(missing_reference(id)),
    }
}

fn missing_reference(id: &str) -> String {
    format!("Content-ID Reference: '${id}' does not exist in the batch context.")
}

/// Hosts compare case-insensitively, with `localhost` standing for `127.0.0.1`.
fn same_authority(a: &str, b: &str) -> bool {
    let normal = |s: &str| {
        let s = s.to_ascii_lowercase();
        match s.strip_prefix("localhost") {
            Some(port) => format!("127.0.0.1{port}"),
            None => s,
        }
    };
    normal(a) == normal(b)
}

/// The body with every `$n` link (`...@odata.bind`, `@odata.id`) replaced by its URL.
fn resolve_body<'a>(body: &'a [u8], refs: &Refs) -> Result<Cow<'a, [u8]>, String> {
    if refs.is_empty() || !body.contains(&b'$') {
        return Ok(Cow::Borrowed(body));
    }
    let Ok(mut json) = serde_json::from_slice::<Value>(body) else {
        return Ok(Cow::Borrowed(body));
    };
    replace_links(&mut json, refs)?;
    serde_json::to_vec(&json)
        .map(Cow::Owned)
        .map_err(|e| e.to_string())
}

fn replace_links(value: &mut Value, refs: &Refs) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key.ends_with("@odata.bind") || key == "@odata.id" {
                    replace_link(value, refs)?;
                }
                replace_links(value, refs)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                replace_links(item, refs)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn replace_link(value: &mut Value, refs: &Refs) -> Result<(), String> {
    match value {
        Value::String(link) if link.starts_with('$') => {
            let expanded = expand_reference(link, refs)?.into_owned();
            *link = expanded;
        }
        Value::Array(links) => {
            for link in links {
                replace_link(link, refs)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://127.0.0.1:4000";

    fn refs() -> Refs {
        let url = format!("{BASE}/api/data/v9.2/contacts(c1)");
        Refs::from([("1".to_string(), url)])
    }

    #[test]
    fn targets_become_local_paths() {
        let got = |t: &str| resolve_target(BASE, t, &refs());
        assert_eq!(
            got("contacts?$top=1"),
            Ok("/api/data/v9.2/contacts?$top=1".into())
        );
        assert_eq!(
            got("/api/data/v9.2/leads"),
            Ok("/api/data/v9.2/leads".into())
        );
        assert_eq!(
            got("HTTPS://LocalHost:4000/api/data/v9.2/leads"),
            Ok("/api/data/v9.2/leads".into())
        );
        assert_eq!(
            got("$1/lastname"),
            Ok("/api/data/v9.2/contacts(c1)/lastname".into())
        );
        assert_eq!(got("$metadata"), Ok("/api/data/v9.2/$metadata".into()));
        assert_eq!(
            got(&format!("{BASE}/api/data/v9.2/$1/fullname")),
            Ok("/api/data/v9.2/contacts(c1)/fullname".into())
        );
        assert!(got("$2").is_err_and(|e| e.contains("'$2' does not exist")));
        assert!(got("http://gateway:8080/api/data/v9.2/leads").is_err());
    }

    #[test]
    fn body_links_are_replaced() {
        let body = br#"{"a@odata.bind":"$1","n":{"@odata.id":"$1"},"x":"$1","l":["$9"]}"#;
        let got = resolve_body(body, &refs()).expect("resolved");
        let json: Value = serde_json::from_slice(&got).expect("json");
        let url = format!("{BASE}/api/data/v9.2/contacts(c1)");
        assert_eq!(json["a@odata.bind"], url.as_str());
        assert_eq!(json["n"]["@odata.id"], url.as_str());
        assert_eq!(json["x"], "$1", "only links are references");
        assert!(resolve_body(br#"{"b@odata.bind":"$2"}"#, &refs()).is_err());
        assert!(matches!(
            resolve_body(b"not json $1", &refs()),
            Ok(Cow::Borrowed(_))
        ));
    }
}
