//! The simulator's queries over real HTTP: simple filters, properties and lookups, and the
//! shapes where Dataverse returns data a gateway must account for (so that an end-to-end test
//! can see a leak): FetchXML without `<attribute>`, parameter aliases bound to columns,
//! `$expand` of lookups and the annotations `Prefer: odata.include-annotations` asks for.

mod common;

use common::sim_client::{Reply, SimClient, encode};
use dataverse_gateway::sim::SimConfig;
use http::{Method, StatusCode};
use serde_json::Value;

const FORMATTED: &str = "OData.Community.Display.V1.FormattedValue";
const LOGICAL: &str = "Microsoft.Dynamics.CRM.lookuplogicalname";
const NAVIGATION: &str = "Microsoft.Dynamics.CRM.associatednavigationproperty";
const CONTACT: &str = "c0000000-0000-4000-8000-000000000001";

async fn get_with(h: &SimClient, token: &str, path: &str, prefer: &str) -> Reply {
    h.api(Method::GET, path, token, &[("prefer", prefer)], "")
        .await
}

fn rows(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()["value"].as_array().cloned().expect("rows")
}

fn names(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r["name"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn fetchxml_without_attributes_returns_every_column() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    let fetch = |xml: &str| format!("opportunities?fetchXml={}", encode(xml));
    let filtered = r#"<fetch><entity name="opportunity"><filter><condition attribute="name" operator="eq" value="Grinder replacement"/></filter><order attribute="name"/></entity></fetch>"#;
    let got = rows(&h.get(&fetch(filtered), &token).await);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["name"], "Grinder replacement");
    assert_eq!(got[0]["statuscode"], 3, "a column nobody named comes back");
    assert!(got[0]["_parentaccountid_value"].is_string());
    let named =
        r#"<fetch top="2"><entity name="opportunity"><attribute name="name"/></entity></fetch>"#;
    let got = rows(&h.get(&fetch(named), &token).await);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.get("statuscode").is_none()));
    assert!(
        got.iter().all(|r| r["opportunityid"].is_string()),
        "the key always"
    );
    let all = r#"<fetch><entity name="opportunity"><attribute name="name"/><all-attributes/></entity></fetch>"#;
    assert!(rows(&h.get(&fetch(all), &token).await)[0]["statuscode"].is_number());
    let wrong = r#"<fetch><entity name="account"><attribute name="name"/></entity></fetch>"#;
    assert_eq!(
        h.get(&fetch(wrong), &token).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn parameter_aliases_bind_to_columns() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    // `@p eq 3&@p=statuscode` filters on the column, not on the text "statuscode"
    let won = "opportunities?$select=name&$filter=@p%20eq%20@v&@p=statuscode&@v=3";
    assert_eq!(
        names(&rows(&h.get(won, &token).await)),
        ["Grinder replacement"]
    );
    let open = "opportunities?$select=name&$filter=@p%20eq%20@v&@p=statuscode&@v=1";
    assert_eq!(rows(&h.get(open, &token).await).len(), 4);
    let reversed = "opportunities?$select=name&$filter=2%20eq%20@p&@p=statuscode";
    assert_eq!(
        names(&rows(&h.get(reversed, &token).await)),
        ["Annual maintenance"]
    );
    let contains = "accounts?$select=name&$filter=contains(@p,'toys')&@p=name";
    assert_eq!(
        names(&rows(&h.get(contains, &token).await)),
        ["Tailspin Toys"]
    );
    let undefined = h.get("accounts?$filter=name%20eq%20@nope", &token).await;
    assert_eq!(undefined.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn lookups_carry_the_related_rows_name_when_asked() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    let path = "contacts?$select=fullname,_parentcustomerid_value&$top=1";
    let plain = rows(&h.get(path, &token).await);
    assert!(
        plain[0]
            .as_object()
            .expect("row")
            .keys()
            .all(|k| !k.contains(FORMATTED)),
        "no annotation unless asked"
    );
    let reply = get_with(&h, &token, path, "odata.include-annotations=\"*\"").await;
    assert_eq!(
        reply.header("preference-applied"),
        "odata.include-annotations=\"*\""
    );
    let row = &rows(&reply)[0];
    let key = "_parentcustomerid_value";
    assert_eq!(
        row[format!("{key}@{FORMATTED}")],
        "Contoso Ltd",
        "an account's name"
    );
    assert_eq!(row[format!("{key}@{LOGICAL}")], "account");
    assert_eq!(
        row[format!("{key}@{NAVIGATION}")],
        "parentcustomerid_account"
    );
    // an exact term, together with another preference in the same header
    let prefer = format!("odata.maxpagesize=1, odata.include-annotations=\"{FORMATTED}\"");
    let row = &rows(&get_with(&h, &token, path, &prefer).await)[0];
    assert_eq!(row[format!("{key}@{FORMATTED}")], "Contoso Ltd");
    assert!(row.get(format!("{key}@{LOGICAL}")).is_none());
    // a namespace wildcard
    let row = &rows(
        &get_with(
            &h,
            &token,
            path,
            "odata.include-annotations=\"Microsoft.Dynamics.CRM.*\"",
        )
        .await,
    )[0];
    assert_eq!(row[format!("{key}@{LOGICAL}")], "account");
    assert!(row.get(format!("{key}@{FORMATTED}")).is_none());
    // on a single row and on a choice column
    let one = get_with(
        &h,
        &token,
        &format!("contacts({CONTACT})"),
        "odata.include-annotations=\"*\"",
    )
    .await;
    assert_eq!(
        one.json()[format!("_createdby_value@{FORMATTED}")],
        "Alex Wilber"
    );
    let won = "opportunities?$select=name,statuscode&$filter=statuscode%20eq%203";
    let row = &rows(&get_with(&h, &token, won, "odata.include-annotations=\"*\"").await)[0];
    assert_eq!(row[format!("statuscode@{FORMATTED}")], "Won");
}

#[tokio::test]
async fn expansions_and_written_rows_are_annotated_too() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    let all = [("prefer", "odata.include-annotations=\"*\"")];
    let path = format!(
        "contacts({CONTACT})?$select=fullname&$expand=parentcustomerid_account($select=name,_primarycontactid_value)"
    );
    let row = h.api(Method::GET, &path, &token, &all, "").await.json();
    let account = &row["parentcustomerid_account"];
    assert_eq!(account["name"], "Contoso Ltd");
    assert!(
        account.get("revenue").is_none(),
        "the expansion's $select applies"
    );
    assert_eq!(
        account[format!("_primarycontactid_value@{FORMATTED}")],
        "Yvonne McKay"
    );
    let prefer = [(
        "prefer",
        "return=representation,odata.include-annotations=\"*\"",
    )];
    let body = r#"{"firstname":"Ann","parentcustomerid_account@odata.bind":"/accounts(a0000000-0000-4000-8000-000000000002)"}"#;
    let mut headers = prefer.to_vec();
    headers.push(("content-type", "application/json"));
    let created = h
        .api(Method::POST, "contacts", &token, &headers, body)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let applied = created.header("preference-applied");
    assert!(applied.contains("return=representation"), "{applied}");
    assert_eq!(
        created.json()[format!("_parentcustomerid_value@{FORMATTED}")],
        "Fabrikam Inc"
    );
}

#[tokio::test]
async fn simple_filters_select_and_paging_work_together() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    let one = h
        .get(
            "contacts?$select=fullname&$filter=lastname%20eq%20'mckay'",
            &token,
        )
        .await
        .json();
    assert_eq!(one["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["value"][0]["fullname"], "Yvonne McKay");
    let rich = h
        .get(
            "accounts?$filter=revenue%20eq%201500000%20and%20name%20ne%20null",
            &token,
        )
        .await
        .json();
    assert_eq!(rich["value"][0]["name"], "Contoso Ltd");
    let ignored = h
        .get("contacts?$filter=fullname%20gt%20'x'", &token)
        .await
        .json();
    assert_eq!(ignored["value"].as_array().map(Vec::len), Some(8));
    let some = h
        .get("contacts?$filter=contains(fullname,'AN')", &token)
        .await
        .json();
    let names: Vec<&str> = some["value"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["fullname"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Susanna Stubberod",
            "Nancy Anderson",
            "Scott Konersmann",
            "Paul Cannon"
        ]
    );

    // Contacts 1 and 7 belong to account 1: two pages of one, the options kept.
    let account = "a0000000-0000-4000-8000-000000000001";
    let bearer = format!("Bearer {token}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("prefer", "odata.maxpagesize=1"),
    ];
    let first_url = h.url(&format!(
        "contacts?$select=fullname&$filter=_parentcustomerid_value%20eq%20{account}"
    ));
    let first = h.send(Method::GET, &first_url, &headers, "").await.json();
    assert_eq!(first["value"].as_array().map(Vec::len), Some(1));
    let next = first["@odata.nextLink"].as_str().expect("next link");
    assert!(
        next.contains("$select=fullname&$filter=_parentcustomerid_value%20eq%20"),
        "{next}"
    );
    let second = h.send(Method::GET, next, &headers, "").await.json();
    assert_eq!(second["value"].as_array().map(Vec::len), Some(1));
    assert!(second.get("@odata.nextLink").is_none());
    assert!(second["value"][0].get("lastname").is_none());
    assert_ne!(
        second["value"][0]["contactid"],
        first["value"][0]["contactid"]
    );
}

#[tokio::test]
async fn reads_properties_and_follows_lookups() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    let base = h.sim.base_url();
    let id = "c0000000-0000-4000-8000-000000000001";
    let name = h.get(&format!("contacts({id})/fullname"), &token).await;
    assert_eq!(name.status, StatusCode::OK);
    assert_eq!(
        name.json(),
        serde_json::json!({
            "@odata.context": format!("{base}/api/data/v9.2/$metadata#contacts({id})/fullname"),
            "value": "Yvonne McKay"
        })
    );
    let raw = h
        .get(&format!("contacts({id})/fullname/$value"), &token)
        .await;
    assert_eq!(raw.header("content-type"), "text/plain");
    assert_eq!(&raw.body[..], b"Yvonne McKay");

    let parent = h
        .get(
            &format!("contacts({id})/parentcustomerid_account?$select=name"),
            &token,
        )
        .await;
    assert_eq!(parent.status, StatusCode::OK);
    let parent = parent.json();
    assert_eq!(parent["name"], "Contoso Ltd");
    assert!(
        parent["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("#accounts/$entity"))
    );

    let put = h
        .api(
            Method::PUT,
            &format!("contacts({id})/emailaddress1"),
            &token,
            &[],
            r#"{"value":null}"#,
        )
        .await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);
    let empty = h
        .get(&format!("contacts({id})/emailaddress1"), &token)
        .await;
    assert_eq!(empty.status, StatusCode::NO_CONTENT, "null answers 204");
    let orphan = h
        .api(
            Method::POST,
            "contacts",
            &token,
            &[],
            r#"{"lastname":"Solo"}"#,
        )
        .await;
    let orphan = orphan
        .header("odata-entityid")
        .rsplit('/')
        .next()
        .expect("id")
        .to_string();
    let none = h
        .get(&format!("{orphan}/parentcustomerid_account"), &token)
        .await;
    assert_eq!(none.status, StatusCode::NO_CONTENT);

    let unknown = h.get(&format!("contacts({id})/nickname"), &token).await;
    assert_eq!(
        (unknown.status, unknown.error_code().as_str()),
        (StatusCode::NOT_FOUND, "0x8006088a")
    );
    let creator = h.get(&format!("contacts({id})/createdby"), &token).await;
    assert_eq!(
        creator.status,
        StatusCode::FORBIDDEN,
        "systemusers are not readable"
    );
}
