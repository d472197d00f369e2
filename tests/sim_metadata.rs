//! The simulator's functions and schema over real HTTP: WhoAmI and RetrieveVersion, the
//! `$metadata` document, and EntityDefinitions for every simulated table.

mod common;

use common::sim_client::SimClient;
use dataverse_gateway::sim::SimConfig;
use http::StatusCode;

#[tokio::test]
async fn serves_functions_and_metadata() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    let base = h.sim.base_url();
    let who = h.get("WhoAmI", &token).await.json();
    assert_eq!(
        who["@odata.context"],
        format!("{base}/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse")
    );
    for field in ["BusinessUnitId", "UserId", "OrganizationId"] {
        assert!(who[field].is_string(), "{field}");
    }
    assert_eq!(
        h.get("RetrieveVersion()", &token).await.json()["Version"],
        "9.2.25011.00000"
    );
    let metadata = h.get("$metadata", &token).await;
    assert_eq!(metadata.header("content-type"), "application/xml");
    let xml = String::from_utf8_lossy(&metadata.body);
    assert!(xml.contains("<edmx:Edmx Version=\"4.0\""));
    assert!(xml.contains("<Schema Namespace=\"Microsoft.Dynamics.CRM\" Alias=\"mscrm\""));
    assert!(xml.contains("<EntityContainer Name=\"System\">"));
    assert!(xml.contains("<EntitySet Name=\"opportunities\" EntityType=\"mscrm.opportunity\">"));
}

#[tokio::test]
async fn entity_definitions_describe_every_simulated_table() {
    let h = SimClient::start(SimConfig::default()).await;
    let token = h.token().await;
    let base = h.sim.base_url();
    let reply = h
        .get(
            "EntityDefinitions(LogicalName='contact')?$select=LogicalName,EntitySetName",
            &token,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let contact = reply.json();
    assert_eq!(
        contact["@odata.context"],
        format!(
            "{base}/api/data/v9.2/$metadata#EntityDefinitions(LogicalName,EntitySetName)/$entity"
        )
    );
    assert_eq!(contact["EntitySetName"], "contacts");
    assert!(contact["MetadataId"].is_string(), "the key is always there");
    assert!(contact.get("SchemaName").is_none());
    let full = h
        .get("EntityDefinitions(LogicalName='contact')", &token)
        .await
        .json();
    for (name, want) in [
        ("SchemaName", "Contact"),
        ("PrimaryIdAttribute", "contactid"),
        ("PrimaryNameAttribute", "fullname"),
        ("LogicalCollectionName", "contacts"),
    ] {
        assert_eq!(full[name], want, "{name}");
    }
    assert_eq!(full["ObjectTypeCode"], 2);

    // The Python SDK's lookup, with `+` and with `%20` for spaces.
    for query in [
        "%24select=LogicalName%2CEntitySetName%2CPrimaryIdAttribute&%24filter=LogicalName+eq+%27contact%27",
        "$select=LogicalName,EntitySetName,PrimaryIdAttribute&$filter=LogicalName%20eq%20%27contact%27",
    ] {
        let listed = h
            .get(&format!("EntityDefinitions?{query}"), &token)
            .await
            .json();
        let value = listed["value"].as_array().expect("value");
        assert_eq!(value.len(), 1, "{query}");
        assert_eq!(value[0]["PrimaryIdAttribute"], "contactid");
        assert_eq!(value[0]["MetadataId"], full["MetadataId"]);
    }
    let by_id = h
        .get(
            &format!(
                "EntityDefinitions({})",
                full["MetadataId"].as_str().expect("id")
            ),
            &token,
        )
        .await;
    assert_eq!(by_id.json()["LogicalName"], "contact");
    let users = h
        .get("EntityDefinitions(LogicalName='systemuser')", &token)
        .await;
    assert_eq!(users.status, StatusCode::OK, "metadata is not data");

    let picklists = h
        .get(
            "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options)",
            &token,
        )
        .await;
    assert_eq!(picklists.status, StatusCode::OK);
    assert_eq!(picklists.json()["value"], serde_json::json!([]));
    let attribute = h
        .get(
            "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='firstname')",
            &token,
        )
        .await
        .json();
    assert_eq!(attribute["AttributeType"], "String");
    assert_eq!(
        attribute["@odata.type"],
        "#Microsoft.Dynamics.CRM.StringAttributeMetadata"
    );
    let filtered = h
        .get(
            "EntityDefinitions(LogicalName='contact')/Attributes?$filter=LogicalName%20eq%20'parentcustomerid'&$select=LogicalName,AttributeType",
            &token,
        )
        .await
        .json();
    assert_eq!(filtered["value"][0]["AttributeType"], "Customer");
    assert_eq!(filtered["value"].as_array().map(Vec::len), Some(1));

    for missing in [
        "EntityDefinitions(LogicalName='widget')",
        "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='nope')",
    ] {
        let reply = h.get(missing, &token).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(reply.error_code(), "0x80040217");
    }
}
