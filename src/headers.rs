//! Header hygiene, both directions.
//!
//! Pure. Invariants:
//! - upstream requests carry only the agent headers on an explicit allowlist; so the agent's
//!   `Authorization` and `Cookie`, hop-by-hop headers, impersonation (`MSCRMCallerID`,
//!   `CallerObjectId`) and logic-bypass (`MSCRM.Bypass*`,
//!   `MSCRM.SuppressCallbackRegistrationExpanderJob`) headers never reach Dataverse, and a header
//!   invented tomorrow does not either;
//! - `Prefer` keeps only harmless preferences (no `respond-async`, no `odata.callback`);
//! - verb-tunnelling headers (`X-HTTP-Method`, ...) are refused, because the policy decides on
//!   the method it sees;
//! - responses lose hop-by-hop headers, headers named in `Connection`, and the org's cookies.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Agent headers forwarded to Dataverse (lower-case). `prefer` is filtered separately.
const FORWARDED: &[&str] = &[
    "accept",
    "accept-language",
    "content-type",
    "if-match",
    "if-none-match",
    "odata-version",
    "odata-maxversion",
    "user-agent",
    "consistency",
    "mscrm.suppressduplicatedetection",
];

const METHOD_OVERRIDES: &[&str] = &[
    "x-http-method",
    "x-http-method-override",
    "x-method-override",
];

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Refuses requests that tunnel another verb through a header.
pub fn check_request(headers: &HeaderMap) -> Result<(), String> {
    for name in METHOD_OVERRIDES {
        if headers.contains_key(*name) {
            return Err(format!(
                "the `{name}` header is not accepted: send the real HTTP method"
            ));
        }
    }
    Ok(())
}

/// Copies the allowlisted agent headers into `out` (the upstream request's headers).
pub fn copy_request_headers(agent: &HeaderMap, out: &mut HeaderMap) {
    for name in FORWARDED {
        for value in agent.get_all(*name) {
            out.append(HeaderName::from_static(name), value.clone());
        }
    }
    let prefs: Vec<&str> = agent
        .get_all(header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| harmless_preference(p))
        .collect();
    if !prefs.is_empty()
        && let Ok(v) = HeaderValue::from_str(&prefs.join(","))
    {
        out.insert(HeaderName::from_static("prefer"), v);
    }
}

fn harmless_preference(p: &str) -> bool {
    let name = p
        .split(['=', ';'])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        name.as_str(),
        "return"
            | "odata.maxpagesize"
            | "odata.include-annotations"
            | "odata.continue-on-error"
            | "odata.track-changes"
    ) && !p.to_ascii_lowercase().contains("callback")
}

/// Cleans an upstream response's headers in place.
pub fn clean_response_headers(headers: &mut HeaderMap) {
    remove_connection_listed(headers);
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    headers.remove(header::SET_COOKIE);
    headers.remove(header::WWW_AUTHENTICATE);
}

fn remove_connection_listed(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
}

/// A request id from the agent, if it is a sane one (visible ASCII, at most 128 bytes).
pub fn agent_request_id(headers: &HeaderMap) -> Option<HeaderValue> {
    ["x-ms-client-request-id", "x-request-id"]
        .iter()
        .filter_map(|n| headers.get(*n))
        .find(|v| {
            !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn method_overrides_are_refused() {
        assert!(check_request(&map(&[("X-HTTP-Method", "DELETE")])).is_err());
        assert!(check_request(&map(&[("x-method-override", "PATCH")])).is_err());
        assert!(check_request(&map(&[("accept", "*/*")])).is_ok());
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
}
