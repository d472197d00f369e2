//! The boundary of navigation, `$ref`, fetchXml, primary keys, alternate keys without metadata
//! and uninspectable queries: each denial pins its reason (the table, column or construct).

use super::*;
use Denial::Malformed as BAD;

const O: &str = "00b00000-0000-4000-8000-000000000001";
/// An account id that starts with a digit (a letter-first GUID in `$filter` is another issue).
const A0: &str = "00a00000-0000-4000-8000-000000000001";

/// Denied as `kind`, with a reason that contains every one of `names`.
fn denied(d: &Decision, kind: Denial, names: &[&str], what: &str) {
    assert_eq!(
        d.denial,
        Some(kind),
        "{what}: {} ({:?})",
        d.reason(),
        d.uses
    );
    for n in names {
        assert!(
            d.reason().contains(n),
            "{what}: `{n}` not in: {}",
            d.reason()
        );
    }
}

fn allowed(d: &Decision, what: &str) {
    assert!(d.allowed(), "{what}: {} ({:?})", d.reason(), d.uses);
}

fn opp_fetch(inner: &str) -> String {
    fetch_url(
        "opportunities",
        &format!("<fetch><entity name='opportunity'>{inner}</entity></fetch>"),
    )
}

#[test]
fn fetchxml_root_without_attribute_reads_every_column() {
    for inner in [
        "<order attribute='name'/>",
        "<filter><condition attribute='estimatedvalue' operator='gt' value='5'/></filter>",
        "",
    ] {
        let d = decide("GET", &opp_fetch(inner), None);
        denied(
            &d,
            NO,
            &["every column of `opportunities`", "<attribute>"],
            inner,
        );
    }
    allowed(
        &decide(
            "GET",
            &opp_fetch("<attribute name='name'/><order attribute='estimatedvalue'/>"),
            None,
        ),
        "listed columns",
    );
    // an unrestricted root without attributes is still a read of the table
    allowed(
        &decide(
            "GET",
            &fetch_url("contacts", "<fetch><entity name='contact'/></fetch>"),
            None,
        ),
        "contacts",
    );
}

#[test]
fn fetchxml_link_entity_without_attributes_is_a_join_not_a_read_of_every_column() {
    let xml = |link: &str| {
        fetch_url(
            "accounts",
            &format!(
                "<fetch><entity name='account'><attribute name='name'/>{link}</entity></fetch>"
            ),
        )
    };
    // joined on the lookup (fetchXml's `parentaccountid` is the Web API's `_parentaccountid_value`)
    let join = "<link-entity name='opportunity' from='parentaccountid' to='accountid' link-type='exists'/>";
    let d = decide("GET", &xml(join), None);
    denied(
        &d,
        NO,
        &["`_parentaccountid_value` of `opportunities`"],
        join,
    );
    allowed(
        &decide_under(&with_lookup(), "GET", &xml(join), Some(meta())),
        join,
    );
    let filtered = "<link-entity name='opportunity' from='parentaccountid' to='accountid'>\
        <filter><condition attribute='statuscode' operator='eq' value='1'/></filter></link-entity>";
    let d = decide_under(&with_lookup(), "GET", &xml(filtered), Some(meta()));
    denied(&d, NO, &["`statuscode` of `opportunities`"], filtered);
    let all = "<link-entity name='opportunity' from='parentaccountid' to='accountid'><all-attributes/></link-entity>";
    let d = decide_under(&with_lookup(), "GET", &xml(all), Some(meta()));
    denied(&d, NO, &["every column of `opportunities`"], all);
}

#[test]
fn fetchxml_takes_no_other_query_option() {
    let base = opp_fetch("<attribute name='name'/>");
    for (extra, named) in [
        ("$orderby=statuscode", "`$orderby`"),
        ("$top=1", "`$top`"),
        ("$count=true", "`$count`"),
        ("@p1=statuscode", "`@p1`"),
    ] {
        let d = decide("GET", &format!("{base}&{extra}"), None);
        denied(&d, BAD, &["fetchXml cannot be combined", named], extra);
    }
}

#[test]
fn fetchxml_constructs_not_understood_are_refused_by_name() {
    for (inner, named) in [
        (
            "<attribute name='name' rowaggregate='CountChildren'/>",
            "`rowaggregate`",
        ),
        (
            "<attribute name='name'/><filter><condition attribute='opportunityid' operator='under' value='x'/></filter>",
            "`under`",
        ),
        (
            "<attribute name='name'/><link-entity name='account' from='accountid' to='parentaccountid' link-type='sideways'/>",
            "link-type=\"sideways\"",
        ),
        ("<attribute name='name' secret='1'/>", "`secret`"),
    ] {
        denied(
            &decide("GET", &opp_fetch(inner), None),
            BAD,
            &[named],
            inner,
        );
    }
}

#[test]
fn fetchxml_paging_cookie_columns_are_counted() {
    let xml = |cookie: &str| {
        fetch_url(
            "opportunities",
            &format!(
                "<fetch page='2' paging-cookie='{cookie}'><entity name='opportunity'><attribute name='name'/></entity></fetch>"
            ),
        )
    };
    let leak =
        "&lt;cookie page=&quot;1&quot;&gt;&lt;statuscode last=&quot;5&quot;/&gt;&lt;/cookie&gt;";
    denied(
        &decide("GET", &xml(leak), None),
        NO,
        &["`statuscode` of `opportunities`"],
        leak,
    );
    let ok = format!(
        "&lt;cookie page=&quot;1&quot;&gt;&lt;opportunityid last=&quot;{{{O}}}&quot; first=&quot;{{{O}}}&quot;/&gt;&lt;/cookie&gt;"
    );
    allowed(&decide("GET", &xml(&ok), None), &ok);
    let odd = "&lt;cookie page=&quot;1&quot; parentAttributeName=&quot;x&quot;/&gt;";
    denied(
        &decide("GET", &xml(odd), None),
        BAD,
        &["`parentAttributeName`"],
        odd,
    );
}

#[test]
fn navigating_through_a_restricted_lookup_observes_it() {
    let reason = ["`_parentaccountid_value` of `opportunities`"];
    for url in [
        "opportunities?$select=name&$expand=parentaccountid($select=name)".to_string(),
        format!("opportunities({O})/parentaccountid"),
        format!("opportunities({O})/parentaccountid/name"),
        format!("opportunities({O})/parentaccountid/$ref"),
        format!("opportunities?$select=name&$filter=parentaccountid/accountid eq {A0}"),
        "opportunities?$select=name&$orderby=parentaccountid/name".to_string(),
        // collection-valued: the related opportunities' lookup
        format!("accounts({A})/opportunity_parent_account?$select=name"),
        format!("accounts({A})/opportunity_parent_account/$count"),
        "accounts?$expand=opportunity_parent_account($select=name)".to_string(),
        "accounts?$filter=opportunity_parent_account/any(o:o/name eq 'x')".to_string(),
    ] {
        denied(&decide("GET", &url, None), NO, &reason, &url);
        allowed(
            &decide_under(&with_lookup(), "GET", &url, Some(meta())),
            &url,
        );
    }
    // an unrestricted table's lookup is counted too, and allowed
    let d = decide(
        "GET",
        &format!("contacts({C})/parentcustomerid_account"),
        None,
    );
    allowed(&d, "contacts");
    assert!(
        d.uses.iter().any(|u| matches!(u, Use::Table(t)
            if &*t.set == "contacts" && t.columns == ["_parentcustomerid_value"])),
        "{:?}",
        d.uses
    );
}

#[test]
fn a_lookup_the_metadata_does_not_name_is_refused_under_a_column_list() {
    let csdl = String::from_utf8_lossy(include_bytes!("../../../sim/metadata.xml")).replace(
        r#"<ReferentialConstraint Property="_parentaccountid_value" ReferencedProperty="accountid" />"#,
        "",
    );
    let m = Metadata::parse(csdl.as_bytes()).expect("CSDL parses");
    let url = format!("opportunities({O})/parentaccountid");
    let d = decide_under(&with_lookup(), "GET", &url, Some(&m));
    denied(
        &d,
        NO,
        &["`the lookup behind parentaccountid` of `opportunities`"],
        &url,
    );
    let url = format!("accounts({A})/opportunity_parent_account?$select=name");
    let d = decide_under(&with_lookup(), "GET", &url, Some(&m));
    denied(
        &d,
        NO,
        &["the lookup behind opportunity_parent_account"],
        &url,
    );
    // no column list, nothing to refuse
    let d = decide_under(
        &policy(),
        "GET",
        "accounts?$expand=opportunity_parent_account($select=name)",
        Some(&m),
    );
    denied(&d, NO, &["the lookup behind"], "restricted target");
    allowed(
        &decide_under(
            &policy(),
            "GET",
            &format!("contacts({C})/parentcustomerid_account"),
            Some(&m),
        ),
        "unrestricted",
    );
}

#[test]
fn ref_reads_classify_their_query_options() {
    let d = decide(
        "GET",
        &format!("accounts({A})/contact_customer_accounts/$ref?$filter=createdby/fullname eq 'x'"),
        None,
    );
    denied(&d, NO, &["`systemusers`"], "filter through createdby");
    let url = format!("accounts({A})/opportunity_parent_account/$ref?$filter=statuscode eq 1");
    denied(
        &decide_under(&with_lookup(), "GET", &url, Some(meta())),
        NO,
        &["`statuscode` of `opportunities`"],
        &url,
    );
    let url = format!("accounts({A})/opportunity_parent_account/$ref?$orderby=statuscode");
    denied(
        &decide_under(&with_lookup(), "GET", &url, Some(meta())),
        NO,
        &["`statuscode`"],
        &url,
    );
    let url = format!("accounts({A})/contact_customer_accounts/$ref?savedQuery={A}");
    denied(&decide("GET", &url, None), NO, &["savedQuery"], &url);
    allowed(
        &decide(
            "GET",
            &format!("accounts({A})/contact_customer_accounts/$ref?$filter=fullname eq 'x'&$top=5"),
            None,
        ),
        "plain filter",
    );
    // a change of a reference takes no query option
    let d = decide(
        "PUT",
        &format!("contacts({C})/parentcustomerid_account/$ref?$filter=name eq 'x'"),
        Some(&format!(r#"{{"@odata.id":"accounts({A})"}}"#)),
    );
    denied(&d, BAD, &["takes no query options"], "PUT $ref");
}

#[test]
fn own_primary_key_is_not_counted_against_a_column_list() {
    for url in [
        "opportunities?$select=opportunityid,name".to_string(),
        format!("opportunities?$select=name&$filter=opportunityid eq {O}"),
        "opportunities?$select=name&$orderby=opportunityid".to_string(),
        format!("opportunities({O})/opportunityid"),
        "accounts?$expand=opportunity_parent_account($select=opportunityid,name;$filter=opportunityid ne null)"
            .to_string(),
        opp_fetch("<attribute name='opportunityid'/><attribute name='name'/>"),
    ] {
        allowed(&decide_under(&with_lookup(), "GET", &url, Some(meta())), &url);
    }
    // only the table's own key: a lookup is still a column, and another table's id is none
    for (url, column) in [
        (
            "opportunities?$select=name,accountid",
            "`accountid` in $select is not a column of opportunity",
        ),
        (
            "opportunities?$select=name,_parentaccountid_value",
            "`_parentaccountid_value` of `opportunities`",
        ),
        (
            "opportunities?$select=name,contactid",
            "`contactid` in $select is not a column of opportunity",
        ),
    ] {
        denied(&decide("GET", url, None), NO, &[column], url);
    }
}

#[test]
fn names_without_metadata_need_it() {
    // Without the CSDL no name can be told from a navigation property (`createdby` is one on
    // every table and leads to `systemusers`): a key, `$select`, `$filter`, `$orderby` or
    // `$skiptoken` that names one waits for the metadata, while a row by GUID, a collection,
    // `$top` and `$count` need none.
    let h = HeaderMap::new();
    let skiptoken = "$skiptoken=%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22%253ccookie%2520page%253d%25221%2522%253e%253ccreatedby%2520last%253d%2522x%2522%2520first%253d%2522x%2522%2520%252f%253e%253c%252fcookie%253e%22%20/%3E";
    for url in [
        "opportunities(statuscode=1)".to_string(),
        "opportunities(name='x')?$select=name".to_string(),
        "contacts(emailaddress1='a@b.com')".to_string(),
        format!("opportunities(opportunityid={O})"),
        "contacts(createdby='x')".to_string(),
        "contacts?$select=createdby".to_string(),
        "contacts?$select=fullname".to_string(),
        "contacts?$select=createdby&$filter=fullname eq 'x+'".to_string(),
        "contacts?$filter=createdby eq null".to_string(),
        "contacts?$orderby=createdby".to_string(),
        "contacts/$count?$filter=createdby eq null".to_string(),
        format!("contacts?{skiptoken}"),
    ] {
        let d = decide_with("GET", &url, None, &h, None);
        denied(&d, NO, &["metadata"], &url);
        let d = decide_with("DELETE", &url, None, &h, None);
        assert!(!d.allowed(), "DELETE {url}: {}", d.reason());
    }
    for url in [
        format!("contacts({C})"),
        "contacts".to_string(),
        "contacts?$top=5&$count=true".to_string(),
        "contacts/$count".to_string(),
    ] {
        allowed(&decide_with("GET", &url, None, &h, None), &url);
    }
    // DELETE by GUID is understood: the allowlist (no DELETE on contacts) decides.
    let d = decide_with("DELETE", &format!("contacts({C})"), None, &h, None);
    denied(
        &d,
        NO,
        &["DELETE on `contacts` is not allowed"],
        "DELETE by GUID",
    );
}

#[test]
fn a_key_property_must_be_a_column() {
    // A lookup in an alternate key is named by its `_x_value` column; a navigation property's
    // name (or any name that is no column) in a key is refused, in the path, after a
    // navigation and in a bound reference.
    for (method, url, body) in [
        ("GET", "contacts(createdby='x')".to_string(), None),
        ("GET", format!("contacts(createdby={C})"), None),
        ("GET", "contacts(nosuchcolumn='x')".to_string(), None),
        (
            "GET",
            "contacts(fullname='x',createdby='y')".to_string(),
            None,
        ),
        ("PATCH", "contacts(createdby='x')".to_string(), Some("{}")),
        (
            "GET",
            format!("accounts({A})/contact_customer_accounts(createdby='x')"),
            None,
        ),
        (
            "POST",
            "contacts".to_string(),
            Some(r#"{"parentcustomerid_account@odata.bind":"accounts(createdby='x')"}"#),
        ),
    ] {
        let d = decide(method, &url, body);
        assert!(!d.allowed(), "{method} {url}");
        assert!(
            d.reason().contains("is not a column of"),
            "{method} {url}: {}",
            d.reason()
        );
    }
    // A key's value is a literal, never a name.
    for url in [
        "contacts(emailaddress1=createdby)".to_string(),
        "contacts(emailaddress1=createdby)/fullname/$value".to_string(),
        "contacts(emailaddress1=fullname)".to_string(),
        format!("accounts({A})/contact_customer_accounts(emailaddress1=createdby)"),
    ] {
        let d = decide("GET", &url, None);
        assert!(!d.allowed(), "{url}");
        assert!(
            d.reason().contains("is not a literal"),
            "{url}: {}",
            d.reason()
        );
    }
    allowed(
        &decide("GET", &format!("contacts(_createdby_value={C})"), None),
        "a lookup's column in a key",
    );
    allowed(
        &decide(
            "GET",
            "contacts(fullname='a%20b',emailaddress1='x''y')",
            None,
        ),
        "quoted",
    );
    allowed(
        &decide("GET", "contacts(emailaddress1='a@b.com')", None),
        "alternate key",
    );
}

#[test]
fn a_navigation_property_in_select_reads_its_table() {
    // As in `$filter`, a navigation property named in `$select` counts as a read of the table it
    // leads to, at every level of `$expand`.
    for url in [
        "contacts?$select=createdby".to_string(),
        "contacts?$select=fullname,createdby".to_string(),
        format!("contacts({C})?$select=createdby"),
        "contacts/$count?$select=createdby".to_string(),
        "accounts?$expand=primarycontactid($select=createdby)".to_string(),
        "contacts?$expand=parentcustomerid_account($select=name,createdby)".to_string(),
    ] {
        denied(&decide("GET", &url, None), NO, &["`systemusers`"], &url);
    }
    // The target allowlisted: allowed, and the lookup the navigation is bound to is named too.
    let d = decide("GET", "accounts?$select=name,primarycontactid", None);
    allowed(&d, "navigation to an allowlisted table");
    let reads = format!("{:?}", d.uses);
    assert!(reads.contains("_primarycontactid_value"), "{reads}");
    // On a table with a column list, the bound lookup must be listed.
    denied(
        &decide("GET", "opportunities?$select=name,parentaccountid", None),
        NO,
        &["`_parentaccountid_value` of `opportunities`"],
        "navigation from a column-restricted table",
    );
}

#[test]
fn uninspectable_queries_never_open_a_column_restricted_table() {
    let mut p = policy();
    p.allow_uninspectable = vec!["savedQuery".into(), "userQuery".into(), "sql".into()];
    for q in [
        format!("savedQuery={A}"),
        format!("userQuery={A}"),
        "sql=SELECT%20statuscode%20FROM%20opportunity".into(),
    ] {
        let url = format!("opportunities?{q}");
        let d = decide_under(&p, "GET", &url, Some(meta()));
        denied(
            &d,
            NO,
            &["`opportunities` has a column list", "allow_uninspectable"],
            &url,
        );
        allowed(
            &decide_under(&p, "GET", &format!("accounts?{q}"), Some(meta())),
            &q,
        );
    }
}

#[test]
fn shapes_without_query_options_refuse_them_by_name() {
    let d = decide(
        "GET",
        &format!("contacts({C})/fullname?$filter=createdby/fullname eq 'x'"),
        None,
    );
    denied(
        &d,
        BAD,
        &["takes no query options", "`$filter`"],
        "property",
    );
    let d = decide("GET", &format!("contacts({C})/fullname/$value?@p1=1"), None);
    denied(&d, BAD, &["`@p1`"], "property value");
    let targets =
        r#"{"Targets":[{"@odata.type":"Microsoft.Dynamics.CRM.contact","firstname":"a"}]}"#;
    let d = decide(
        "POST",
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple?$expand=createdby",
        Some(targets),
    );
    denied(&d, BAD, &["`$expand`"], "bound action");
    // without metadata a listed function takes no parameters and no options: the metadata
    // declares its parameters and what its result holds
    let h = HeaderMap::new();
    allowed(&decide_with("GET", "WhoAmI", None, &h, None), "WhoAmI");
    allowed(&decide_with("GET", "WhoAmI()", None, &h, None), "WhoAmI()");
    for url in [
        "WhoAmI?$expand=x",
        "WhoAmI?$select=UserId",
        "WhoAmI(createdby=1)",
    ] {
        let d = decide_with("GET", url, None, &h, None);
        denied(&d, NO, &["metadata"], url);
    }
}
