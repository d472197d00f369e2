//! `$skiptoken` through the real proxy: the Web API's paging cookie names the columns Dataverse
//! pages on (compared with the values it carries), so a forged cookie could filter a
//! column-restricted table on a column outside its list. The columns are checked like filtered
//! columns: a nextLink the org issued pages on the primary key and passes; a forged cookie
//! naming a protected column is refused and never reaches the org.

mod common;

use common::*;
use serde_json::Value;

const POLICY: &str = "
    allow:
      opportunities:
        verbs: [GET]
        columns: [name, estimatedvalue]
";

/// `$skiptoken` value: an outer cookie whose inner paging cookie names `columns`.
fn forged(columns: &[(&str, &str)]) -> String {
    let mut inner = String::from("<cookie page=\"1\">");
    for (c, last) in columns {
        inner.push_str(&format!("<{c} last=\"{last}\" />"));
    }
    inner.push_str("</cookie>");
    let outer = format!(
        "<cookie pagenumber=\"2\" pagingcookie=\"{}\" istracking=\"False\" />",
        encode(&inner)
    );
    encode(&outer)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_orgs_own_nextlinks_page_a_column_restricted_table() {
    let h = Harness::with_policy(POLICY).await;
    let mut url = h.api("opportunities?$select=name");
    let (mut rows, mut pages) = (0, 0);
    loop {
        let r = h
            .http
            .get(&url)
            .header("prefer", "odata.maxpagesize=2")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let page: Value = r.json().await.unwrap();
        rows += page["value"].as_array().unwrap().len();
        pages += 1;
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.contains("%24skiptoken=") || next.contains("$skiptoken="));
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(rows, 6, "every seeded opportunity, page by page");
    assert!(pages > 1);
}

#[tokio::test]
async fn a_forged_paging_cookie_on_a_protected_column_never_reaches_the_org() {
    let h = Harness::with_policy(POLICY).await;
    let cases = [
        (
            forged(&[
                ("statuscode", "3"),
                ("opportunityid", "{00000000-0000-0000-0000-000000000000}"),
            ]),
            403,
            "`statuscode` of `opportunities`",
        ),
        (
            forged(&[("nosuchcolumn", "1")]),
            403,
            "`nosuchcolumn`, which is not a column of opportunity",
        ),
        (
            encode("<cookie pagenumber=\"2\" lastid=\"x\" />"),
            400,
            "`lastid`",
        ),
    ];
    for (token, status, reason) in cases {
        let url = h.api(&format!("opportunities?$select=name&$skiptoken={token}"));
        let r = h.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), status, "{url}");
        let (_, message) = error_of(r).await;
        assert!(message.contains(reason), "{url}: {message}");
    }
    assert!(
        h.upstream_requests().is_empty(),
        "nothing reached the org: {:?}",
        h.upstream_requests()
    );
}
