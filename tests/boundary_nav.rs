//! The navigation, `$ref`, fetchXml, primary-key, alternate-key and uninspectable-query boundary
//! through the real proxy: a denied request never reaches the simulator and its error names the
//! reason; an allowed one reaches it exactly as sent.

mod common;

use common::*;

const OPP: &str = "0990e000-0000-4000-8000-000000000001";
const ACC: &str = "a0000000-0000-4000-8000-000000000001";
/// An account id that starts with a digit (letter-first GUIDs in `$filter` are another issue).
const ACC0: &str = "00a00000-0000-4000-8000-000000000001";

const POLICY: &str = "
    allow:
      contacts: [GET, POST, PATCH]
      accounts: [GET]
      leads: [GET]
      opportunities:
        verbs: [GET]
        columns: [name, estimatedvalue]
    allow_uninspectable: [savedQuery]
";

/// The same, with the opportunities' lookup to their account in the column list.
const POLICY_LOOKUP: &str = "
    allow:
      contacts: [GET, POST, PATCH]
      accounts: [GET]
      opportunities:
        verbs: [GET]
        columns: [name, estimatedvalue, _parentaccountid_value]
";

fn fetch_query(xml: &str) -> String {
    let mut out = String::from("fetchXml=");
    for b in xml.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Sends `method path` and returns the status, the error code and message (empty when none).
async fn send(h: &Harness, method: &str, path: &str) -> (u16, String, String) {
    let r = h
        .http
        .request(method.parse().unwrap(), h.api(path))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if r.status().is_success() {
        (status, String::new(), String::new())
    } else {
        let (code, message) = error_of(r).await;
        (status, code, message)
    }
}

/// Each case is refused with `status` and a message naming `reason`, and nothing reaches the org.
async fn refused(h: &Harness, cases: &[(&str, String, u16, &str)]) {
    for (method, path, status, reason) in cases {
        let (got, _, message) = send(h, method, path).await;
        assert_eq!(got, *status, "{method} {path}: {message}");
        assert!(
            message.contains(reason),
            "{method} {path}: `{reason}` not in: {message}"
        );
    }
    let seen: Vec<String> = h
        .upstream_requests()
        .iter()
        .map(|r| r.uri.clone())
        .collect();
    assert!(seen.is_empty(), "denied requests reached the org: {seen:?}");
}

/// Each path reaches the org exactly as sent (the policy added nothing and dropped nothing).
async fn forwarded(h: &Harness, paths: &[String]) {
    for (i, path) in paths.iter().enumerate() {
        let (status, code, message) = send(h, "GET", path).await;
        assert!(
            !code.starts_with("Gateway"),
            "{path}: {status} {code} {message}"
        );
        let seen = h.upstream_requests();
        assert_eq!(
            seen.len(),
            i + 1,
            "{path} did not reach the org ({status} {message})"
        );
        assert_eq!(seen[i].uri, format!("/api/data/v9.2/{path}"));
    }
}

#[tokio::test]
async fn fetchxml_without_attributes_and_with_other_options_is_refused() {
    let h = Harness::with_policy(POLICY).await;
    let opp = |inner: &str| {
        format!(
            "opportunities?{}",
            fetch_query(&format!(
                "<fetch><entity name='opportunity'>{inner}</entity></fetch>"
            ))
        )
    };
    let every = "every column of `opportunities`";
    refused(
        &h,
        &[
            ("GET", opp("<order attribute='name'/>"), 403, every),
            (
                "GET",
                opp("<filter><condition attribute='name' operator='eq' value='x'/></filter>"),
                403,
                every,
            ),
            (
                "GET",
                format!("{}&$orderby=statuscode", opp("<attribute name='name'/>")),
                400,
                "`$orderby`",
            ),
            (
                "GET",
                opp("<attribute name='name' rowaggregate='CountChildren'/>"),
                400,
                "`rowaggregate`",
            ),
            (
                "GET",
                opp("<attribute name='name'/><link-entity name='account' from='accountid' to='parentaccountid'/>"),
                403,
                "`_parentaccountid_value` of `opportunities`",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn fetchxml_with_listed_attributes_is_forwarded() {
    let h = Harness::with_policy(POLICY).await;
    forwarded(
        &h,
        &[format!(
            "opportunities?{}",
            fetch_query(
                "<fetch><entity name='opportunity'><attribute name='opportunityid'/><attribute name='name'/><order attribute='estimatedvalue'/></entity></fetch>"
            )
        )],
    )
    .await;
}

#[tokio::test]
async fn navigating_through_a_restricted_lookup_is_refused() {
    let h = Harness::with_policy(POLICY).await;
    let lookup = "`_parentaccountid_value` of `opportunities`";
    let cases: Vec<(&str, String, u16, &str)> = [
        "opportunities?$select=name&$expand=parentaccountid($select=name)".to_string(),
        format!("opportunities({OPP})/parentaccountid"),
        format!("opportunities({OPP})/parentaccountid/$ref"),
        format!("opportunities?$select=name&$filter=parentaccountid/accountid eq {ACC0}"),
        format!("accounts({ACC})/opportunity_parent_account?$select=name"),
        "accounts?$expand=opportunity_parent_account($select=name)".to_string(),
    ]
    .into_iter()
    .map(|p| ("GET", p, 403, lookup))
    .collect();
    refused(&h, &cases).await;
}

#[tokio::test]
async fn navigating_through_a_listed_lookup_is_forwarded() {
    let h = Harness::with_policy(POLICY_LOOKUP).await;
    forwarded(
        &h,
        &[
            format!("opportunities({OPP})/parentaccountid"),
            "opportunities?$select=name&$expand=parentaccountid($select=name)".to_string(),
            format!("accounts({ACC})/opportunity_parent_account?$select=name"),
            // the expanded table's own primary key is not counted either
            "accounts?$expand=opportunity_parent_account($select=opportunityid,name)".to_string(),
        ],
    )
    .await;
    // the single-valued navigation returns the related account itself
    let r = h
        .get(&format!("opportunities({OPP})/parentaccountid"))
        .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["accountid"], ACC, "{body}");
}

#[tokio::test]
async fn ref_reads_classify_their_options() {
    let h = Harness::with_policy(POLICY).await;
    refused(
        &h,
        &[
            (
                "GET",
                format!(
                    "accounts({ACC})/contact_customer_accounts/$ref?$filter=createdby/fullname eq 'x'"
                ),
                403,
                "`systemusers`",
            ),
            (
                "GET",
                format!("accounts({ACC})/contact_customer_accounts/$ref?$expand=createdby"),
                403,
                "`systemusers`",
            ),
        ],
    )
    .await;
    forwarded(
        &h,
        &[format!(
            "accounts({ACC})/contact_customer_accounts/$ref?$filter=fullname%20eq%20%27x%27&$top=2"
        )],
    )
    .await;
}

#[tokio::test]
async fn own_primary_key_of_a_restricted_table_is_allowed() {
    let h = Harness::with_policy(POLICY).await;
    refused(
        &h,
        &[
            (
                "GET",
                "opportunities?$select=name,_parentaccountid_value".to_string(),
                403,
                "`_parentaccountid_value`",
            ),
            (
                "GET",
                "opportunities?$select=name,accountid".to_string(),
                403,
                "`accountid` in $select is not a column of opportunity",
            ),
        ],
    )
    .await;
    forwarded(
        &h,
        &[
            "opportunities?$select=opportunityid,name".to_string(),
            format!("opportunities?$select=name&$filter=opportunityid%20eq%20{OPP}"),
        ],
    )
    .await;
    let r = h.get("opportunities?$select=opportunityid,name").await;
    let body: serde_json::Value = r.json().await.unwrap();
    let row = &body["value"][0];
    assert!(
        row.get("opportunityid").is_some() && row.get("name").is_some(),
        "{row}"
    );
    assert!(row.get("statuscode").is_none(), "{row}");
}

#[tokio::test]
async fn names_wait_for_the_metadata() {
    // Without the CSDL a key or `$select` name cannot be told from a navigation property
    // (`createdby` leads to systemusers): refused until the metadata is loaded, while a row by
    // GUID passes.
    let h = Harness::with_policy(POLICY).await;
    h.gateway.snapshot().tenants[0].metadata.store(None);
    refused(
        &h,
        &[
            (
                "GET",
                "opportunities(statuscode=1)".to_string(),
                403,
                "metadata",
            ),
            (
                "GET",
                "contacts(emailaddress1='a@b.com')".to_string(),
                403,
                "metadata",
            ),
            (
                "GET",
                "contacts?$select=createdby".to_string(),
                403,
                "metadata",
            ),
        ],
    )
    .await;
    forwarded(&h, &[format!("accounts({ACC})")]).await;
}

#[tokio::test]
async fn uninspectable_queries_are_refused_on_column_restricted_tables() {
    let h = Harness::with_policy(POLICY).await;
    let q = "savedQuery=00000000-0000-0000-0000-000000000001";
    refused(
        &h,
        &[(
            "GET",
            format!("opportunities?{q}"),
            403,
            "`opportunities` has a column list",
        )],
    )
    .await;
    forwarded(&h, &[format!("accounts?{q}")]).await;
}
