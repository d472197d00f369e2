//! The simulator's Dataverse side over real HTTP: paging, keys, writes, privileges, throttling,
//! streaming, HTTP/2. (Functions, `$metadata` and EntityDefinitions are in `sim_metadata.rs`;
//! filters, lookups and the shapes where a leak would show in `sim_queries.rs`; its Entra ID
//! side in `sim_entra.rs`.)

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::sim_client::SimClient;
use dataverse_gateway::sim::SimConfig;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

#[tokio::test]
async fn paging_reaches_every_row_through_absolute_next_links() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    let base = h.sim.base_url();
    let prefer = [("prefer", "odata.maxpagesize=3")];
    let mut url = h.url("contacts?$select=fullname");
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let reply = h
            .send(
                Method::GET,
                &url,
                &[("authorization", &format!("Bearer {token}")), prefer[0]],
                "",
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("preference-applied"), "odata.maxpagesize=3");
        let json = reply.json();
        assert_eq!(
            json["@odata.context"],
            format!("{base}/api/data/v9.2/$metadata#contacts")
        );
        let rows = json["value"].as_array().expect("rows");
        assert!(rows.len() <= 3);
        for row in rows {
            assert!(
                row["@odata.etag"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("W/\""))
            );
            assert!(row["fullname"].is_string());
            assert!(
                row.get("lastname").is_none(),
                "$select applies on every page"
            );
            ids.push(row["contactid"].as_str().expect("id").to_string());
        }
        pages += 1;
        match json["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&format!("{base}/api/data/v9.2/contacts?")),
                    "{next}"
                );
                assert!(next.contains("$skiptoken=%3Ccookie"), "{next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (8, 8));
    let top = h
        .get("contacts?$top=2&$filter=statecode%20eq%200", &token)
        .await
        .json();
    assert_eq!(top["value"].as_array().map(Vec::len), Some(2));
    assert!(top.get("@odata.nextLink").is_none());
}

#[tokio::test]
async fn retrieves_single_rows_by_id_and_alternate_key() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    let list = h.get("contacts", &token).await.json();
    let first = &list["value"][0];
    let id = first["contactid"].as_str().expect("id");
    let reply = h
        .get(&format!("contacts({id})?$select=emailaddress1"), &token)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let row = reply.json();
    assert!(
        row["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("$metadata#contacts/$entity"))
    );
    assert_eq!(row["contactid"], id);
    let email = row["emailaddress1"].as_str().expect("email").to_string();
    let by_key = h
        .get(&format!("contacts(emailaddress1='{email}')"), &token)
        .await;
    assert_eq!(by_key.json()["contactid"], id);

    let missing = "c0000000-0000-4000-8000-0000000000ff";
    let reply = h.get(&format!("contacts({missing})"), &token).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "0x80040217");
    assert_eq!(
        reply.json()["error"]["message"],
        format!("contact With Id = {missing} Does Not Exist")
    );
    assert!(
        reply
            .header("content-type")
            .starts_with("application/json; odata.metadata=minimal")
    );
    let bad_select = h.get(&format!("contacts({id})?$select=nope"), &token).await;
    assert_eq!(bad_select.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn writes_change_the_rows() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    let base = h.sim.base_url();
    let created = h
        .api(
            Method::POST,
            "leads",
            &token,
            &[],
            r#"{"subject":"Hello","fullname":"A B"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::NO_CONTENT);
    let entity_id = created.header("odata-entityid").to_string();
    assert!(
        entity_id.starts_with(&format!("{base}/api/data/v9.2/leads(")),
        "{entity_id}"
    );
    let path = entity_id.rsplit('/').next().expect("path").to_string();
    assert_eq!(h.get(&path, &token).await.json()["subject"], "Hello");

    let prefer = [("prefer", "return=representation")];
    let rep = h
        .api(
            Method::POST,
            "leads",
            &token,
            &prefer,
            r#"{"subject":"Rep"}"#,
        )
        .await;
    assert_eq!(rep.status, StatusCode::CREATED);
    assert_eq!(rep.json()["subject"], "Rep");
    assert!(rep.header("odata-entityid").starts_with(&base));

    let patched = h
        .api(
            Method::PATCH,
            &path,
            &token,
            &[],
            r#"{"subject":"Changed"}"#,
        )
        .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT);
    let row = h.get(&path, &token).await.json();
    assert_eq!(
        (&row["subject"], &row["fullname"]),
        (&Value::from("Changed"), &Value::from("A B"))
    );

    let absent = "1ead0000-0000-4000-8000-0000000000ee";
    let if_match = [("if-match", "*")];
    let refused = h
        .api(
            Method::PATCH,
            &format!("leads({absent})"),
            &token,
            &if_match,
            "{}",
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let upserted = h
        .api(
            Method::PATCH,
            &format!("leads({absent})"),
            &token,
            &[],
            r#"{"subject":"Up"}"#,
        )
        .await;
    assert_eq!(upserted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get(&format!("leads({absent})"), &token).await.json()["subject"],
        "Up"
    );

    assert_eq!(
        h.api(Method::DELETE, &path, &token, &[], "").await.status,
        StatusCode::NO_CONTENT
    );
    let gone = h.api(Method::DELETE, &path, &token, &[], "").await;
    assert_eq!(
        (gone.status, gone.error_code().as_str()),
        (StatusCode::NOT_FOUND, "0x80040217")
    );
    assert_eq!(h.get(&path, &token).await.status, StatusCode::NOT_FOUND);

    let malformed = h.api(Method::POST, "leads", &token, &[], "{nope").await;
    assert_eq!(
        (malformed.status, malformed.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "0x80040333")
    );
    let leads = h.get("leads", &token).await.json();
    assert_eq!(leads["value"].as_array().map(Vec::len), Some(5 + 3 - 1));
}

#[tokio::test]
async fn privileges_and_unknown_sets_answer_like_dataverse() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    let denied = h.get("systemusers", &token).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.error_code(), "0x80040220");
    let message = denied.json()["error"]["message"]
        .as_str()
        .expect("message")
        .to_string();
    let user = h.sim.app_user_id(0);
    assert!(
        message.starts_with(&format!(
            "Principal user (Id={user}, type=8, roleCount=1, privilegeCount=42) is missing prv"
        )),
        "{message}"
    );
    assert!(
        message.contains("is missing prvReadSystemUser privilege (Id="),
        "{message}"
    );
    assert!(
        message.contains("on OTC=8 for entity 'systemuser'"),
        "{message}"
    );
    let write = h.api(Method::POST, "systemusers", &token, &[], "{}").await;
    assert!(
        write.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("prvCreateSystemUser"))
    );

    for segment in ["Contacts", "widgets"] {
        let reply = h.get(segment, &token).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.error_code(), "0x8006088a");
        assert_eq!(
            reply.json()["error"]["message"],
            format!("Resource not found for the segment '{segment}'.")
        );
    }
    let outside = h
        .send(
            Method::GET,
            &format!("{}/index.html", h.sim.base_url()),
            &[],
            "",
        )
        .await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn throttles_the_next_requests() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    h.sim.throttle_next(2, 7);
    for _ in 0..2 {
        let reply = h.get("accounts", &token).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(reply.header("retry-after"), "7");
        assert_eq!(reply.error_code(), "0x80072322");
    }
    assert_eq!(h.get("accounts", &token).await.status, StatusCode::OK);
    assert_eq!(h.sim.requests().len(), 3);
}

#[tokio::test]
async fn streams_the_large_annotations_collection() {
    let size = 3 * 1024 * 1024 + 17;
    let h = SimClient::start(SimConfig {
        large_response_bytes: size,
        ..SimConfig::default()
    })
    .await;
    let token = h.token().await;
    let reply = h.get("annotations", &token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers.get("content-length").is_none(),
        "streamed, not buffered"
    );
    assert_eq!(reply.body.len() as u64, size);
    let context = format!(
        "{{\"@odata.context\":\"{}/api/data/v9.2/$metadata#annotations\",\"value\":[",
        h.sim.base_url()
    );
    assert!(reply.body.starts_with(context.as_bytes()));
    assert!(reply.body.ends_with(b"]}"));
    let rows = reply.json()["value"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    assert!(rows > 40, "{rows} rows");
}

#[tokio::test]
async fn counts_concurrent_requests() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    // responses are held until all five requests have arrived: they overlap by construction
    h.sim.hold_responses();
    let who = || h.get("WhoAmI", &token);
    let all = async { tokio::join!(who(), who(), who(), who(), who()) };
    let arrived = async {
        tokio::time::timeout(Duration::from_secs(10), h.sim.requests_reached(5))
            .await
            .expect("five requests reach the simulator");
        assert_eq!(h.sim.max_in_flight(), 5);
        h.sim.release_responses();
    };
    let (replies, ()) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(all, arrived)
    })
    .await
    .expect("the held requests are answered once released");
    let statuses = [
        replies.0.status,
        replies.1.status,
        replies.2.status,
        replies.3.status,
        replies.4.status,
    ];
    assert!(statuses.iter().all(|s| *s == StatusCode::OK));
    assert_eq!(h.sim.max_in_flight(), 5);
}

#[tokio::test]
async fn speaks_http2_and_shuts_down() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    let h2: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let request = Request::get(h.url("WhoAmI()"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = h2.request(request).await.expect("h2 response");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    drop(h2);

    let addr = h.sim.addr();
    h.sim.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}
