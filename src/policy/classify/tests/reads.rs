//! Reads, one table per request shape: collections, properties, navigation, references,
//! `$expand`, lookups and lambdas, `$apply`, aliases, fetchXml and uninspectable queries.

use super::*;

#[test]
fn collections_records_and_keys() {
    check(&[
        ("GET", "contacts".into(), None, None),
        ("GET", format!("contacts({C})"), None, None),
        (
            "GET",
            "contacts(emailaddress1='a@b.com')".into(),
            None,
            None,
        ),
        (
            "GET",
            "contacts(firstname='Joe',emailaddress1='x')".into(),
            None,
            None,
        ),
        (
            "GET",
            "systemusers".into(),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            "Contacts".into(),
            None,
            no("`Contacts` is not an entity set or operation of this org"),
        ),
        (
            "DELETE",
            format!("contacts({C})"),
            None,
            no("DELETE on `contacts` is not allowed (allowed: GET, POST, PATCH)"),
        ),
        (
            "DELETE",
            format!("accounts({A})"),
            None,
            no("DELETE on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "GET",
            "contacts()".into(),
            None,
            bad("`contacts()` has an empty key"),
        ),
    ]);
}

#[test]
fn properties_value_and_count() {
    check(&[
        ("GET", format!("contacts({C})/fullname"), None, None),
        ("GET", format!("contacts({C})/fullname/$value"), None, None),
        ("DELETE", format!("contacts({C})/fullname"), None, None),
        (
            "PUT",
            format!("contacts({C})/fullname"),
            Some(r#"{"value":"x"}"#),
            None,
        ),
        // Setting one column is an update: the PATCH right covers it.
        (
            "PUT",
            format!("accounts({A})/name"),
            Some(r#"{"value":"x"}"#),
            no("PATCH on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "GET",
            format!("systemusers({C})/fullname"),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        ("GET", "contacts/$count".into(), None, None),
        (
            "GET",
            "systemusers/$count".into(),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            format!("contacts({C})/$count"),
            None,
            bad("$count must end a collection path"),
        ),
        (
            "GET",
            format!("contacts({C})/nosuchcolumn"),
            None,
            no("`nosuchcolumn` is not a navigation property or column of contact"),
        ),
    ]);
}

#[test]
fn navigation_single_and_multi_hop() {
    check(&[
        (
            "GET",
            format!("contacts({C})/parentcustomerid_account"),
            None,
            None,
        ),
        (
            "GET",
            format!("accounts({A})/contact_customer_accounts"),
            None,
            None,
        ),
        (
            "GET",
            format!("accounts({A})/contact_customer_accounts({C})"),
            None,
            None,
        ),
        (
            "GET",
            format!("contacts({C})/createdby"),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            format!("contacts({C})/parentcustomerid_account/createdby"),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        // the related opportunities' lookup is observed, and their column list omits it
        (
            "GET",
            format!("contacts({C})/parentcustomerid_account/opportunity_parent_account"),
            None,
            no("`_parentaccountid_value` of `opportunities`"),
        ),
        (
            "POST",
            format!("accounts({A})/contact_customer_accounts"),
            Some(r#"{"firstname":"x"}"#),
            None,
        ),
        (
            "GET",
            "contacts/parentcustomerid_account".into(),
            None,
            bad("`parentcustomerid_account` needs a single contacts row before it"),
        ),
    ]);
}

#[test]
fn references() {
    let body_c = format!(r#"{{"@odata.id":"contacts({C})"}}"#);
    let body_u = format!(r#"{{"@odata.id":"systemusers({C})"}}"#);
    check(&[
        (
            "GET",
            format!("accounts({A})/contact_customer_accounts/$ref"),
            None,
            None,
        ),
        (
            "POST",
            format!("accounts({A})/contact_customer_accounts/$ref"),
            Some(&body_c),
            no("PATCH on `accounts` is not allowed (allowed: GET)"),
        ),
        (
            "PUT",
            format!("contacts({C})/parentcustomerid_account/$ref"),
            Some(&format!(r#"{{"@odata.id":"accounts({A})"}}"#)),
            None,
        ),
        (
            "PUT",
            format!("contacts({C})/parentcustomerid_account/$ref"),
            Some(&body_u),
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "DELETE",
            format!("contacts({C})/parentcustomerid_account/$ref"),
            None,
            None,
        ),
        (
            "PUT",
            format!("contacts({C})/parentcustomerid_account/$ref"),
            Some(r#"{"@odata.id":"https://evil.example/api/data/v9.2/accounts(1)"}"#),
            bad("`https://evil.example/api/data/v9.2/accounts(1)` refers to another host"),
        ),
    ]);
}

#[test]
fn expand_nested_with_options() {
    check(&[
        ("GET", "contacts?$expand=parentcustomerid_account($select=name)".into(), None, None),
        ("GET", "contacts?$expand=createdby($select=fullname)".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$expand=contact_customer_accounts($select=fullname;$expand=createdby($select=fullname))".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$expand=contact_customer_accounts($filter=createdby/fullname eq 'x')".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$expand=contact_customer_accounts($select=fullname;$filter=Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby/fullname'))".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$apply=filter(Microsoft.Dynamics.CRM.EqualUserId(propertyname='createdby/fullname'))".into(), None, no("`propertyname` is not an argument of the query function `EqualUserId`")),
        ("GET", "accounts?$apply=filter(Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby/fullname'))".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$expand=contact_customer_accounts($select=fullname;$orderby=fullname;$top=2)".into(), None, None),
        ("GET", "accounts?$expand=opportunity_parent_account".into(), None, no("column `_parentaccountid_value` of `opportunities` is not in its column list")),
        // observes the opportunities' `_parentaccountid_value`, outside their column list
        ("GET", "accounts?$expand=opportunity_parent_account($select=name)".into(), None, no("column `_parentaccountid_value` of `opportunities` is not in its column list")),
        ("GET", "accounts?$expand=opportunity_parent_account($select=name,statuscode)".into(), None, no("column `statuscode` of `opportunities` is not in its column list")),
        // a name that is no member of the table is refused, as Dataverse refuses it
        ("GET", "accounts?$expand=opportunity_parent_account($select=name,secret)".into(), None, no("`secret` in $select is not a column of opportunity")),
        ("GET", "contacts?$select=FullName".into(), None, no("`FullName` in $select is not a column of contact")),
        ("GET", "contacts?$select=CreatedBy".into(), None, no("`CreatedBy` in $select is not a column of contact")),
        ("GET", "accounts?$expand=*".into(), None, no("`$expand=*`: only navigation property names are inspected")),
        ("GET", "accounts?$expand=nosuchnav".into(), None, no("`nosuchnav` is not a navigation property of account")),
    ]);
}

#[test]
fn lookups_and_lambdas_in_filter_and_orderby() {
    check(&[
        ("GET", "contacts?$filter=parentcustomerid_account/name eq 'x'".into(), None, None),
        ("GET", "contacts?$filter=createdby/fullname eq 'x'".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$filter=contact_customer_accounts/any(c:c/fullname eq 'x')".into(), None, None),
        ("GET", "accounts?$filter=contact_customer_accounts/any(c:c/createdby/fullname eq 'x')".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$filter=opportunity_parent_account/all(o:o/secret gt 1)".into(), None, no("`opportunity_parent_account/secret` does not resolve on account")),
        ("GET", "contacts?$orderby=parentcustomerid_account/name desc".into(), None, None),
        ("GET", "contacts?$orderby=createdby/fullname".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "contacts?$filter=Microsoft.Dynamics.CRM.LastXDays(PropertyName='fullname',PropertyValue=7)".into(), None, None),
        ("GET", "contacts?$filter=Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby/fullname')".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
    ]);
}

#[test]
fn apply() {
    check(&[
        ("GET", "accounts?$apply=groupby((primarycontactid/fullname))".into(), None, None),
        ("GET", "accounts?$apply=groupby((createdby/fullname))".into(), None, no("GET on `systemusers`: the table is not in this tenant's allowlist")),
        ("GET", "accounts?$apply=filter(name eq 'x')/groupby((name),aggregate(revenue with sum as total))".into(), None, None),
        ("GET", "accounts?$apply=aggregate($count as n)".into(), None, None),
        ("GET", "accounts?$apply=compute(x)".into(), None, no("`compute` in $apply is not inspected")),
        // An aggregate's name is new: never a column's or a navigation property's.
        ("GET", "accounts?$apply=aggregate($count as createdby)".into(), None, no("the `$apply` alias `createdby` must be a new name")),
        ("GET", "accounts?$apply=groupby((name),aggregate(revenue with sum as primarycontactid))".into(), None, no("the `$apply` alias `primarycontactid` must be a new name")),
        ("GET", "accounts?$apply=aggregate(revenue with max as name)".into(), None, no("the `$apply` alias `name` must be a new name")),
        ("GET", "accounts?$apply=aggregate(revenue with max as x/y)".into(), None, no("the `$apply` alias `x/y` must be a new name")),
        ("GET", "accounts?$apply=aggregate($count as Contacts)".into(), None, no("the `$apply` alias `Contacts` is spelled like a table or navigation property")),
        ("GET", "accounts?$apply=aggregate($count as CreatedBy)".into(), None, no("the `$apply` alias `CreatedBy` is spelled like a table or navigation property")),
        // Only the standard aggregation methods.
        ("GET", "accounts?$apply=aggregate(revenue with createdby as total)".into(), None, no("aggregate `revenue with createdby as total` is not inspected")),
        ("GET", "accounts?$apply=aggregate(revenue with countdistinct as n, revenue with average as a)".into(), None, None),
    ]);
}

#[test]
fn parameter_aliases() {
    check(&[
        // an alias, a lambda variable: names of the request's choosing, never spelled like a
        // table or navigation property (in any case), so none could be read as one
        ("GET", "contacts?$filter=fullname eq @createdby&@createdby='x'".into(), None, no("the parameter alias `createdby` is spelled like a table or navigation property")),
        ("GET", "contacts?$filter=fullname eq @SystemUsers&@SystemUsers='x'".into(), None, no("the parameter alias `SystemUsers` is spelled like")),
        ("GET", "accounts?$filter=contact_customer_accounts/any(createdby:createdby/fullname eq 'x')".into(), None, no("the lambda variable `createdby` is spelled like")),
        ("GET", "accounts?$expand=contact_customer_accounts($select=fullname;$filter=contact_customer_accounts/any(Contact:Contact/fullname eq 'x'))".into(), None, no("the lambda variable `Contact` is spelled like")),
        ("GET", "accounts?$filter=contact_customer_accounts/any(c:c/fullname eq 'x')".into(), None, None),
        (
            "GET",
            "contacts?$filter=fullname eq @p1&@p1='x'".into(),
            None,
            None,
        ),
        (
            "GET",
            "contacts?$filter=fullname eq @p1".into(),
            None,
            bad("parameter alias `@p1` is used but not defined"),
        ),
        (
            "GET",
            "contacts?$filter=fullname eq @p1&@p1=createdby/fullname".into(),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            format!("contacts?$filter=fullname eq @p1&@p1={{'@odata.id':'systemusers({C})'}}")
                .replace('\'', "\""),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
    ]);
}

#[test]
fn fetchxml() {
    let fx = |xml: &str| {
        format!(
            "accounts?fetchXml={}",
            xml.replace(' ', "%20")
                .replace('<', "%3C")
                .replace('>', "%3E")
                .replace('"', "%22")
                .replace('=', "%3D")
                .replace('/', "%2F")
        )
    };
    check(&[
        (
            "GET",
            fx(
                r#"<fetch><entity name="account"><attribute name="name"/><link-entity name="contact" from="parentcustomerid" to="accountid"><attribute name="fullname"/></link-entity></entity></fetch>"#,
            ),
            None,
            None,
        ),
        (
            "GET",
            fx(
                r#"<fetch><entity name="account"><link-entity name="systemuser" from="systemuserid" to="createdby"/></entity></fetch>"#,
            ),
            None,
            no("GET on `systemusers`: the table is not in this tenant's allowlist"),
        ),
        (
            "GET",
            fx(r#"<fetch><entity name="contact"><attribute name="fullname"/></entity></fetch>"#),
            None,
            bad("fetchXml queries `contact` but the URL names `accounts`"),
        ),
    ]);
}

#[test]
fn stored_and_sql_queries_are_uninspectable() {
    check(&[
        (
            "GET",
            format!("accounts?savedQuery={A}"),
            None,
            no(
                "savedQuery runs a stored or SQL query the gateway cannot inspect (allow_uninspectable)",
            ),
        ),
        (
            "GET",
            format!("accounts?userQuery={A}"),
            None,
            no(
                "userQuery runs a stored or SQL query the gateway cannot inspect (allow_uninspectable)",
            ),
        ),
        (
            "GET",
            "accounts?sql=SELECT%20name%20FROM%20account".into(),
            None,
            no("sql runs a stored or SQL query the gateway cannot inspect (allow_uninspectable)"),
        ),
    ]);
    let mut p = policy();
    p.allow_uninspectable.push("savedQuery".into());
    let urls = urls();
    let ids = BTreeMap::new();
    let env = Env {
        metadata: Some(meta()),
        known_functions: &p.functions,
        urls: &urls,
        content_ids: &ids,
    };
    let h = HeaderMap::new();
    let req = Request {
        method: &http::Method::GET,
        path: "accounts",
        query: Some(&format!("savedQuery={A}")),
        headers: &h,
        body: None,
    };
    assert!(decision::decide(&p, classify(&req, &env), &h).allowed());
}
