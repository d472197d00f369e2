//! Header hygiene, both directions.
//!
//! Pure. Fail closed by construction: an agent header reaches Dataverse only when it is on an
//! explicit allowlist ([`forwarded`], and `Prefer` preference by preference); every other header
//! is dropped, and the headers that would change what a request does beyond what the policy
//! judged are refused. Invariants:
//! - the agent's `Authorization` and `Cookie`, hop-by-hop headers, impersonation
//!   (`MSCRMCallerID`, `CallerObjectId`) and logic-bypass (`MSCRM.Bypass*`,
//!   `MSCRM.SuppressCallbackRegistrationExpanderJob`) headers never reach Dataverse, and a header
//!   invented tomorrow does not either;
//! - `Prefer` is parsed as RFC 7240 (quoted strings may hold commas and semicolons); one that
//!   does not parse is refused, and only harmless preferences are forwarded, re-serialised
//!   (`return`, `odata.maxpagesize`, `odata.include-annotations`, `odata.continue-on-error`,
//!   `odata.track-changes`; no `respond-async`, no `odata.callback`, no parameters);
//! - verb-tunnelling headers (`X-HTTP-Method`, ...) are refused, because the policy decides on
//!   the method it sees;
//! - the same rules apply to the requests inside a `$batch` (see [`crate::policy::inspect`]);
//! - responses lose hop-by-hop headers, headers named in `Connection`, and the org's cookies.

use std::sync::Mutex;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::config::secret::Secret;

mod prefer;

pub use prefer::{Preference, asks_annotation, preferences};

static PREFER: HeaderName = HeaderName::from_static("prefer");

static METHOD_OVERRIDES: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-method-override"),
];

/// Request id headers an agent may send, in order of preference.
static REQUEST_IDS: [HeaderName; 2] = [
    HeaderName::from_static("x-ms-client-request-id"),
    HeaderName::from_static("x-request-id"),
];

/// Refuses requests that tunnel another verb through a header, and `Prefer` headers that are not
/// RFC 7240 (the policy reads them: what it cannot parse it cannot judge).
pub fn check_request(headers: &HeaderMap) -> Result<(), String> {
    // One pass over the names the agent sent (a handful) instead of a hashed lookup per name.
    let mut prefer = false;
    for name in headers.keys() {
        if let Some(o) = METHOD_OVERRIDES.iter().find(|o| *o == name) {
            return Err(format!(
                "the `{o}` header is not accepted: send the real HTTP method"
            ));
        }
        prefer |= name == PREFER;
    }
    match prefer {
        true => preferences(headers).map(|_| ()),
        false => Ok(()),
    }
}

/// Copies the allowlisted agent headers into `out` (the upstream request's headers).
pub fn copy_request_headers(agent: &HeaderMap, out: &mut HeaderMap) {
    // One pass over what the agent sent (a handful of headers) rather than a lookup per name.
    let prefer = for_each_forwarded(agent, |name, value| {
        out.append(name.clone(), value.clone());
    });
    if prefer && let Some(v) = forwarded_prefer(agent) {
        out.insert(PREFER.clone(), v);
    }
}

/// Calls `f` with each allowlisted agent header but `Prefer`, in the map's order (what
/// [`copy_request_headers`] appends first); returns whether the agent sent a `Prefer`.
pub fn for_each_forwarded(agent: &HeaderMap, mut f: impl FnMut(&HeaderName, &HeaderValue)) -> bool {
    let mut prefer = false;
    for (name, value) in agent {
        if forwarded(name.as_str()) {
            f(name, value);
        }
        prefer |= name == PREFER;
    }
    prefer
}

/// The `Prefer` value [`copy_request_headers`] forwards: the harmless preferences, re-serialised;
/// `None` when none is left.
pub fn forwarded_prefer(agent: &HeaderMap) -> Option<HeaderValue> {
    // A Prefer header that does not parse was refused by `check_request`; here it is dropped.
    let kept: Vec<String> = preferences(agent)
        .unwrap_or_default()
        .iter()
        .filter_map(Preference::forwarded)
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept.join(",")).ok()
}

/// The agent headers forwarded to Dataverse (`name` lowercase, as in a `HeaderName`); `prefer`
/// is filtered separately.
fn forwarded(name: &str) -> bool {
    matches!(
        name,
        "accept"
            | "accept-language"
            | "content-type"
            | "if-match"
            | "if-none-match"
            | "odata-version"
            | "odata-maxversion"
            | "user-agent"
            | "consistency"
            | "mscrm.suppressduplicatedetection"
    )
}

/// Which of the headers the response phase reads next an upstream response has, as seen by the
/// pass of [`clean_response_headers`]: those absent need no lookup (a hashed lookup per name
/// costs more than the whole pass).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Present {
    pub location: bool,
    pub odata_entity_id: bool,
    pub content_encoding: bool,
    pub content_length: bool,
}

/// Cleans an upstream response's headers in place (without allocating for the usual
/// `Connection: keep-alive`), and says which headers of [`Present`] it kept.
pub fn clean_response_headers(headers: &mut HeaderMap) -> Present {
    // One pass over the headers to see which unwanted names are there (usually only
    // `Connection: keep-alive`) and whether `Connection` names anything else; then remove just
    // those. Names are compared as text (lowercase in a `HeaderName`): a length switch.
    let mut found = 0u16;
    let mut lists_others = false;
    let mut present = Present::default();
    for (name, value) in headers.iter() {
        let name = name.as_str();
        if let Some(i) = unwanted_response(name) {
            found |= 1 << i;
            lists_others |= i == 0 && lists_others_than_hops(value);
            continue;
        }
        match name {
            "location" => present.location = true,
            "odata-entityid" => present.odata_entity_id = true,
            "content-encoding" => present.content_encoding = true,
            "content-length" => present.content_length = true,
            _ => {}
        }
    }
    if lists_others {
        remove_connection_listed(headers);
        // `Connection` may have named one of them.
        present = Present {
            location: present.location && headers.contains_key(header::LOCATION),
            odata_entity_id: present.odata_entity_id && headers.contains_key("odata-entityid"),
            content_encoding: present.content_encoding
                && headers.contains_key(header::CONTENT_ENCODING),
            content_length: present.content_length && headers.contains_key(header::CONTENT_LENGTH),
        };
    }
    for (i, name) in UNWANTED_RESPONSE.iter().enumerate() {
        if found & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    present
}

/// Hop-by-hop headers, and what the org must not set on the agent's side.
static UNWANTED_RESPONSE: [HeaderName; 11] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::SET_COOKIE,
    header::WWW_AUTHENTICATE,
];

/// The index of `name` in [`UNWANTED_RESPONSE`].
fn unwanted_response(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => 8,
        "set-cookie" => 9,
        "www-authenticate" => 10,
        _ => return None,
    })
}

/// The names a `Connection` value lists (empty elements and non-text values list nothing).
fn connection_names(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value
        .to_str()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
}

/// Whether a `Connection` value names a header that is not removed anyway. The usual value
/// (`keep-alive`) is answered without splitting the list.
fn lists_others_than_hops(value: &HeaderValue) -> bool {
    if value.as_bytes().eq_ignore_ascii_case(b"keep-alive") {
        return false;
    }
    connection_names(value).any(|n| !is_hop(n))
}

/// Whether `name` (any case) is one of [`UNWANTED_RESPONSE`], removed anyway.
fn is_hop(name: &str) -> bool {
    UNWANTED_RESPONSE
        .iter()
        .any(|u| u.as_str().eq_ignore_ascii_case(name))
}

/// Removes the headers `Connection` names. The names are copied out first because they live
/// in the map they are removed from; they are looked up as text.
fn remove_connection_listed(headers: &mut HeaderMap) {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(connection_names)
        .filter(|n| !is_hop(n))
        .map(str::to_owned)
        .collect();
    for name in listed {
        // An invalid name matches nothing.
        headers.remove(name.as_str());
    }
}

/// A request id from the agent, if it is a sane one (visible ASCII, at most 128 bytes).
pub fn agent_request_id(headers: &HeaderMap) -> Option<HeaderValue> {
    REQUEST_IDS
        .iter()
        .filter_map(|n| headers.get(n))
        .find(|v| {
            !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
}

/// The upstream `Authorization` value for the tenant's current token, built once per token: a
/// token is about 1.5 KB, and formatting and validating it for every request would cost more
/// than all the other header work.
#[derive(Default)]
pub struct Bearer(Mutex<Option<(Secret, HeaderValue)>>);

impl Bearer {
    /// `Bearer {token}`, marked sensitive; `None` if the token cannot be a header value.
    pub fn header(&self, token: &Secret) -> Option<HeaderValue> {
        let mut cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, v)) = &*cached
            && t.same(token)
        {
            return Some(v.clone());
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose())).ok()?;
        value.set_sensitive(true);
        *cached = Some((token.clone(), value.clone()));
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unwanted_response_switch_names_every_unwanted_header_at_its_index() {
        for (i, name) in UNWANTED_RESPONSE.iter().enumerate() {
            assert_eq!(unwanted_response(name.as_str()), Some(i), "{name}");
        }
        assert_eq!(unwanted_response("content-type"), None);
    }

    #[test]
    fn only_the_listed_agent_headers_are_forwarded() {
        for name in [
            header::ACCEPT,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::USER_AGENT,
        ] {
            assert!(forwarded(name.as_str()), "{name}");
        }
        for name in ["authorization", "cookie", "prefer", "mscrmcallerid", "host"] {
            assert!(!forwarded(name), "{name}");
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn dangerous_agent_headers_never_go_upstream() {
        let agent = map(&[
            ("authorization", "Bearer agent-token"),
            ("cookie", "a=b"),
            ("MSCRMCallerID", "00000000-0000-0000-0000-000000000009"),
            ("CallerObjectId", "x"),
            ("MSCRM.BypassCustomPluginExecution", "true"),
            ("MSCRM.BypassBusinessLogicExecution", "CustomSync"),
            ("MSCRM.BypassBusinessLogicExecutionStepIds", "x"),
            ("MSCRM.SuppressCallbackRegistrationExpanderJob", "true"),
            ("MSCRM.SolutionUniqueName", "x"),
            ("connection", "keep-alive"),
            ("x-forwarded-for", "1.2.3.4"),
            (
                "prefer",
                "respond-async, odata.callback;url=\"http://evil\", odata.maxpagesize=2",
            ),
            ("prefer", "return=representation"),
            ("accept", "application/json"),
            ("if-match", "*"),
        ]);
        let mut out = HeaderMap::new();
        copy_request_headers(&agent, &mut out);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["accept", "if-match", "prefer"]);
        assert_eq!(out["prefer"], "odata.maxpagesize=2,return=representation");
    }

    #[test]
    fn prefer_is_parsed_with_quoted_strings() {
        let agent = map(&[(
            "prefer",
            "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.lookuplogicalname\", return=representation",
        )]);
        assert!(check_request(&agent).is_ok());
        let mut out = HeaderMap::new();
        copy_request_headers(&agent, &mut out);
        assert_eq!(
            out["prefer"],
            "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.lookuplogicalname\",return=representation"
        );
        // Semicolons and escaped quotes inside the value, parameters dropped, junk dropped.
        let agent = map(&[(
            "prefer",
            "odata.include-annotations=\"a;b\\\"c\";x=1, odata.maxpagesize=abc, Return=minimal",
        )]);
        let mut out = HeaderMap::new();
        copy_request_headers(&agent, &mut out);
        assert_eq!(
            out["prefer"],
            "odata.include-annotations=\"a;b\\\"c\",return=minimal"
        );
        for bad in [
            "odata.include-annotations=\"*",
            "return=\"representation\"x",
            "a b",
            "=x",
        ] {
            let e = check_request(&map(&[("prefer", bad)])).unwrap_err();
            assert!(e.contains("Prefer"), "{bad}: {e}");
        }
    }

    #[test]
    fn annotation_filters_follow_odata_rules() {
        let term = "OData.Community.Display.V1.FormattedValue";
        let asks = |v: &str| {
            let prefs = preferences(&map(&[("prefer", v)])).unwrap();
            asks_annotation(&prefs, term)
        };
        for yes in [
            "odata.include-annotations=\"*\"",
            "odata.include-annotations=*",
            "odata.include-annotations=\"OData.Community.*\"",
            "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\"",
            "odata.include-annotations=\"odata.community.display.v1.formattedvalue\"",
            "odata.include-annotations=\"-OData.*,OData.Community.Display.V1.*\"",
            "odata.include-annotations=\"x\", odata.include-annotations=\"*\"",
        ] {
            assert!(asks(yes), "{yes}");
        }
        for no in [
            "return=representation",
            "odata.include-annotations=\"Microsoft.Dynamics.CRM.*\"",
            "odata.include-annotations=\"*,-OData.Community.Display.V1.FormattedValue\"",
            "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue,-OData.Community.Display.V1.FormattedValue\"",
            "odata.include-annotations=\"OData.Community.*,-OData.Community.Display.*\"",
            "odata.include-annotations=\"OData.Community.Display.V1.FormattedValueX\"",
            "odata.include-annotations=\"OData.Comm*\"",
        ] {
            assert!(!asks(no), "{no}");
        }
    }

    #[test]
    fn method_overrides_are_refused() {
        assert!(check_request(&map(&[("X-HTTP-Method", "DELETE")])).is_err());
        assert!(check_request(&map(&[("x-method-override", "PATCH")])).is_err());
        assert!(check_request(&map(&[("X-HTTP-Method-Override", "PUT")])).is_err());
        assert!(check_request(&map(&[("accept", "*/*")])).is_ok());
    }

    #[test]
    fn the_pass_reports_the_headers_kept_that_the_response_phase_reads() {
        let mut h = map(&[
            ("connection", "keep-alive"),
            ("content-type", "application/json"),
            ("content-length", "12"),
            ("location", "https://org/x"),
        ]);
        let present = clean_response_headers(&mut h);
        assert_eq!(
            present,
            Present {
                location: true,
                odata_entity_id: false,
                content_encoding: false,
                content_length: true,
            }
        );
        // A header `Connection` names is removed, and no longer reported.
        let mut h = map(&[
            ("connection", "content-encoding, odata-entityid"),
            ("content-encoding", "gzip"),
            ("odata-entityid", "https://org/x"),
            ("content-length", "12"),
        ]);
        let present = clean_response_headers(&mut h);
        assert!(!present.content_encoding && !present.odata_entity_id && present.content_length);
        assert!(!h.contains_key("content-encoding") && !h.contains_key("odata-entityid"));
        for (headers, want) in [
            (
                vec![("odata-entityid", "x")],
                Present {
                    odata_entity_id: true,
                    ..Present::default()
                },
            ),
            (
                vec![("content-encoding", "gzip")],
                Present {
                    content_encoding: true,
                    ..Present::default()
                },
            ),
            (vec![("x-other", "1")], Present::default()),
        ] {
            assert_eq!(clean_response_headers(&mut map(&headers)), want);
        }
    }

    #[test]
    fn response_hygiene() {
        let mut h = map(&[
            ("connection", "x-secret-hop, close"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("set-cookie", "ARRAffinity=abc"),
            ("odata-version", "4.0"),
        ]);
        clean_response_headers(&mut h);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["odata-version"]);

        // Several Connection values, any case, a long one, junk tokens.
        let long = format!("{}, x-far-hop", "x-pad, ".repeat(60));
        let mut h = map(&[
            ("connection", "X-Other-Hop"),
            ("connection", &long),
            ("connection", "bad name, ,"),
            ("x-other-hop", "1"),
            ("x-far-hop", "1"),
            ("www-authenticate", "Bearer"),
            ("transfer-encoding", "chunked"),
            ("proxy-authenticate", "Basic"),
            ("etag", "W/\"1\""),
        ]);
        clean_response_headers(&mut h);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["etag"]);
    }

    #[test]
    fn request_ids_are_taken_only_when_sane() {
        let h = map(&[("x-request-id", "abc-123")]);
        assert_eq!(agent_request_id(&h).unwrap(), "abc-123");
        let h = map(&[("x-ms-client-request-id", "ms-1"), ("x-request-id", "abc")]);
        assert_eq!(agent_request_id(&h).unwrap(), "ms-1");
        let long = "a".repeat(200);
        assert!(agent_request_id(&map(&[("x-request-id", &long)])).is_none());
    }

    #[test]
    fn the_bearer_header_follows_the_token() {
        let bearer = Bearer::default();
        let a = bearer.header(&Secret::new("a")).unwrap();
        assert_eq!(a, "Bearer a");
        assert!(a.is_sensitive());
        assert_eq!(bearer.header(&Secret::new("a")).unwrap(), "Bearer a");
        assert_eq!(bearer.header(&Secret::new("b")).unwrap(), "Bearer b");
        assert!(bearer.header(&Secret::new("bad\n")).is_none());
    }
}
