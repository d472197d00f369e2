//! Bypasses found by red-teaming the merged classifier: each test pins the reason of the
//! denial that closes one, and the ordinary request next to it that must stay allowed.

use super::*;

fn contact_fetch(inner: &str) -> String {
    fetch_url(
        "contacts",
        &format!(
            "<fetch><entity name='contact'><attribute name='fullname'/>{inner}</entity></fetch>"
        ),
    )
}

/// FetchXML accepts the lookup's virtual name columns (`parentcustomeridname`, `createdbyname`,
/// `owneridname`, ...): the primary name of the related row, here an account's or a user's,
/// tables outside the allowlist. They are not Web API properties, so the gateway's metadata does
/// not know them; a FetchXML column the metadata does not know is refused, naming it, wherever
/// it appears (selected, filtered, ordered, joined on).
#[test]
fn fetchxml_columns_unknown_to_the_metadata_are_refused() {
    let rows = [
        (
            "<filter><condition attribute='parentcustomeridname' operator='like' value='A%'/></filter>",
            "`parentcustomeridname`, which is not a column of contact",
        ),
        (
            "<order attribute='parentcustomeridname'/>",
            "`parentcustomeridname`, which is not a column of contact",
        ),
        (
            "<attribute name='createdbyname'/>",
            "`createdbyname`, which is not a column of contact",
        ),
        (
            "<link-entity name='lead' from='emailaddress1' to='emailaddress1'><attribute name='createdbyname'/></link-entity>",
            "`createdbyname`, which is not a column of lead",
        ),
        (
            "<link-entity name='lead' from='emailaddress1' to='emailaddress1' alias='l'/><filter><condition entityname='l' attribute='createdbyname' operator='eq' value='x'/></filter>",
            "`createdbyname`, which is not a column of lead",
        ),
        (
            "<link-entity name='lead' from='fullname' to='parentcustomeridname'/>",
            "`parentcustomeridname`, which is not a column of contact",
        ),
    ];
    for (inner, reason) in rows {
        let d = decide("GET", &contact_fetch(inner), None);
        assert_outcome(&d, no(reason), inner);
    }
    // Known columns, and a lookup under its FetchXML logical name, stay allowed.
    for inner in [
        "<attribute name='createdby'/><order attribute='lastname'/>",
        "<filter><condition attribute='parentcustomerid' operator='null'/></filter>",
        "<link-entity name='lead' from='emailaddress1' to='emailaddress1'><attribute name='subject'/></link-entity>",
    ] {
        let d = decide("GET", &contact_fetch(inner), None);
        assert!(d.allowed(), "{inner}: {} ({:?})", d.reason(), d.uses);
    }
}

/// The Web API query functions that compare with the caller's teams or reports read data of
/// tables the query does not name (team membership, the users' hierarchy), exactly as the
/// FetchXML operators `eq-userteams`, `eq-useroruserteams`, `eq-useroruserhierarchy` and
/// `eq-useroruserhierarchyandteams`, which are refused: the same data is refused whichever
/// query language asks. "My records" (`EqualUserId`) stays allowed.
#[test]
fn query_functions_reading_the_callers_teams_or_reports_are_refused() {
    let rows = [
        ("EqualUserTeams", "caller's teams"),
        ("EqualUserOrUserTeams", "caller's teams"),
        ("EqualUserOrUserHierarchy", "report to the caller"),
        ("EqualUserOrUserHierarchyAndTeams", "report to the caller"),
    ];
    for (f, why) in rows {
        let url = format!(
            "contacts?$select=fullname&$filter=Microsoft.Dynamics.CRM.{f}(PropertyName='createdby')"
        );
        let d = decide("GET", &url, None);
        assert_outcome(&d, no(why), &url);
        assert!(d.reason().contains(f), "{url}: {}", d.reason());
        let fetch = contact_fetch(&format!(
            "<filter><condition attribute='createdby' operator='{}'/></filter>",
            fetch_operator(f)
        ));
        let d = decide("GET", &fetch, None);
        assert!(d.reason().contains(why), "{fetch}: {}", d.reason());
    }
    for f in ["EqualUserId", "NotEqualUserId", "EqualBusinessId"] {
        let url = format!(
            "contacts?$select=fullname&$filter=Microsoft.Dynamics.CRM.{f}(PropertyName='createdby')"
        );
        let d = decide("GET", &url, None);
        assert!(d.allowed(), "{url}: {}", d.reason());
    }
}

/// The FetchXML operator of the same meaning as the query function `f`.
fn fetch_operator(f: &str) -> &'static str {
    match f {
        "EqualUserTeams" => "eq-userteams",
        "EqualUserOrUserTeams" => "eq-useroruserteams",
        "EqualUserOrUserHierarchy" => "eq-useroruserhierarchy",
        _ => "eq-useroruserhierarchyandteams",
    }
}

/// A table's definition is metadata, but only its known parts are: unknown sub-resources and
/// query parameters that carry a query of their own are refused, naming them.
#[test]
fn entity_definitions_take_only_their_known_parts() {
    let base = "EntityDefinitions(LogicalName='contact')";
    for url in [
        base.to_string(),
        format!("{base}/Attributes"),
        format!(
            "{base}/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet"
        ),
        format!("{base}/Keys"),
    ] {
        let d = decide("GET", &url, None);
        assert!(d.allowed(), "{url}: {}", d.reason());
    }
    for (url, reason) in [
        (
            format!("{base}/Attributes/Microsoft6Dynamics"),
            "`Microsoft6Dynamics`",
        ),
        (format!("{base}/Attributes?fetchXml=x"), "`fetchXml`"),
        (
            format!("{base}/Attributes/Microsoft.Dynamics.CRM.WhoAmI()"),
            "`WhoAmI`",
        ),
        (format!("{base}/Attributes/$count"), "$count"),
    ] {
        let d = decide("GET", &url, None);
        assert!(!d.allowed(), "{url}");
        assert!(d.reason().contains(reason), "{url}: {}", d.reason());
    }
}

/// A fetchXml condition operator the gateway does not know is refused, naming it: its meaning
/// (which data it compares) cannot be accounted for.
#[test]
fn unknown_fetchxml_operators_are_refused() {
    let q = |op: &str| {
        let xml = format!(
            "<fetch><entity name='contact'><attribute name='fullname'/><filter>\
             <condition attribute='fullname' operator='{op}' value='x'/></filter></entity></fetch>"
        );
        decide("GET", &fetch_url("contacts", &xml), None)
    };
    for op in [
        "eq",
        "like",
        "begins-with",
        "last-x-days",
        "eq-userid",
        "not-null",
    ] {
        let d = q(op);
        assert!(d.allowed(), "{op}: {}", d.reason());
    }
    for op in [
        "foo",
        "EQ",
        "eq-useroruserhierarchyandteamsx",
        "like e='true'",
    ] {
        let d = q(op);
        assert!(!d.allowed(), "{op}");
        assert!(d.reason().contains("operator"), "{op}: {}", d.reason());
    }
}
