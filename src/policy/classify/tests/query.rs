//! Query options against the allowlist: parameter aliases bound to columns, GUID literals,
//! Dataverse query functions and `$apply` (issue items 2, 7a, 7b, 8 and 10). Each denial pins
//! the column, alias or construct its reason names.

use super::*;

/// The decision for `GET url`. An expansion into `opportunities` observes their account lookup,
/// so those requests are decided under a policy whose column list shows it.
fn get(url: &str) -> Decision {
    if url.contains("$expand=opportunity_parent_account") {
        decide_under(&with_lookup(), "GET", url, Some(meta()))
    } else {
        decide("GET", url, None)
    }
}

/// Denied (403) with a reason that contains every `names`.
fn denied(url: &str, names: &[&str]) {
    let d = get(url);
    assert_eq!(
        d.denial,
        Some(Denial::Policy),
        "{url}: {} (uses: {:?})",
        d.reason(),
        d.uses
    );
    for n in names {
        assert!(
            d.reason().contains(n),
            "{url}: `{}` does not name {n}",
            d.reason()
        );
    }
}

fn allowed(url: &str) -> Decision {
    let d = get(url);
    assert!(d.allowed(), "{url}: {} (uses: {:?})", d.reason(), d.uses);
    d
}

#[test]
fn aliases_whose_value_is_a_path_bind_to_that_column() {
    let column = "column `statuscode` of `opportunities`";
    for url in [
        "opportunities?$select=name&$filter=contains(@p,'x')&@p=statuscode",
        "opportunities?$select=name&$filter=@p1 ne @p3&@p1=statuscode&@p3=5",
        "opportunities/$count?$filter=@p eq 1&@p=statuscode",
        "opportunities?$apply=filter(@p eq 1)/groupby((name))&@p=statuscode",
        "opportunities?$select=name&$orderby=@p desc&@p=statuscode",
        "accounts?$expand=opportunity_parent_account($select=name;$filter=@p eq 1)&@p=statuscode",
        "accounts?$expand=opportunity_parent_account($select=name;$orderby=@p)&@p=statuscode",
        // an alias of an alias
        "opportunities?$select=name&$filter=@a eq 1&@a=@b&@b=statuscode",
    ] {
        denied(url, &[column]);
    }
    denied(
        "contacts?$filter=@p eq 'x'&@p=createdby/fullname",
        &["`systemusers`"],
    );
    // the same shapes on allowed columns pass
    for url in [
        "opportunities?$select=name&$filter=contains(@p,'x')&@p=name",
        "opportunities?$select=name&$filter=@p1 ne @p3&@p1=estimatedvalue&@p3=5",
        "accounts?$expand=opportunity_parent_account($select=name;$filter=@p eq 'x')&@p=name",
        "contacts?$filter=fullname eq @p1 and @p2 gt 0&@p1='x'&@p2=_parentcustomerid_value",
    ] {
        allowed(url);
    }
}

#[test]
fn unused_undefined_and_unparseable_aliases_are_refused_naming_them() {
    for url in [
        "contacts?$select=fullname&@p=secret",
        "contacts?$filter=fullname eq @q&@q='x'&@p=1",
        "EntityDefinitions(LogicalName='contact')?@p=1",
        "contacts?$filter=fullname eq @p&@p=cast(x,Edm.String)",
        "contacts?$filter=fullname eq @p&@p=a eq 'x",
    ] {
        let d = decide("GET", url, None);
        assert!(!d.allowed(), "{url}");
        assert!(d.reason().contains("`@p`"), "{url}: {}", d.reason());
    }
    let d = decide("GET", "contacts?$filter=fullname eq @p", None);
    assert_eq!(d.denial, Some(Denial::Malformed), "{}", d.reason());
    assert!(d.reason().contains("`@p`"), "{}", d.reason());
}

#[test]
fn guid_literals_starting_with_any_hex_digit() {
    for first in "0123456789abcdefABCDEF".chars() {
        let g = format!("{first}3c2aa00-0000-4000-8000-00000000000b");
        allowed(&format!("contacts?$filter=_parentcustomerid_value eq {g}"));
        allowed(&format!(
            "contacts?$select=fullname&$filter=_parentcustomerid_value ne {} or contactid eq {g}",
            g.to_ascii_uppercase()
        ));
        allowed(&format!(
            "opportunities?$select=name&$filter=name ne 'x' and estimatedvalue eq {g}"
        ));
    }
    // the GUID is a literal, not a column: the column list still applies to the real column
    denied(
        "opportunities?$select=name&$filter=_parentaccountid_value eq f3c2aa00-0000-4000-8000-00000000000b",
        &["`_parentaccountid_value`"],
    );
}

#[test]
fn documented_query_function_syntax_is_allowed() {
    let d = allowed(
        r#"opportunities?$select=name&$filter=Microsoft.Dynamics.CRM.Between(PropertyName='estimatedvalue',PropertyValues=["5","2000"])"#,
    );
    assert!(d.reason().contains("allow.opportunities"), "{}", d.reason());
    allowed(
        "contacts?$filter=Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)&@p1='lastname'&@p2=['Smith','Jones']",
    );
    allowed("contacts?$orderby=@p2 asc&@p2=fullname");
    // "my records": a lookup named by its own name compares its value column only
    let d = allowed("leads?$filter=Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby')");
    assert!(
        d.uses.iter().any(
            |u| matches!(u, Use::Table(t) if &*t.set == "leads" && t.columns == ["_createdby_value"])
        ),
        "{:?}",
        d.uses
    );
    // and the column list applies to that column, inline or through an alias
    denied(
        "opportunities?$select=name&$filter=Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)&@p1='statuscode'&@p2=[1,2]",
        &["column `statuscode`"],
    );
    denied(
        "opportunities?$select=name&$filter=Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby')",
        &["column `_createdby_value`"],
    );
}

/// `ownerid` leads to `principal`, a type without an entity set: the lookup's own column is
/// what the function compares, not a related table.
#[test]
fn owner_functions_on_lookups_to_abstract_types() {
    let csdl = String::from_utf8_lossy(include_bytes!("../../../sim/metadata.xml"))
        .replacen(
            r#"<Property Name="subject" Type="Edm.String" Unicode="false" />"#,
            r#"<Property Name="subject" Type="Edm.String" Unicode="false" /><Property Name="_ownerid_value" Type="Edm.Guid" /><NavigationProperty Name="ownerid" Type="mscrm.principal" />"#,
            1,
        )
        .replacen(
            r#"<EntityType Name="crmbaseentity" Abstract="true" />"#,
            r#"<EntityType Name="crmbaseentity" Abstract="true" /><EntityType Name="principal" Abstract="true" />"#,
            1,
        );
    let meta = Metadata::parse(csdl.as_bytes()).expect("CSDL parses");
    let h = HeaderMap::new();
    for f in ["EqualUserId", "NotEqualUserId"] {
        let url = format!("leads?$filter=Microsoft.Dynamics.CRM.{f}(PropertyName='ownerid')");
        let d = decide_with("GET", &url, None, &h, Some(&meta));
        assert!(d.allowed(), "{url}: {}", d.reason());
    }
}

#[test]
fn every_query_function_argument_is_understood() {
    for (url, names) in [
        (
            "opportunities?$select=name&$filter=Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[statuscode])",
            &["array"][..],
        ),
        (
            "opportunities?$select=name&$filter=Microsoft.Dynamics.CRM.LastXDays(PropertyName='name',PropertyValue=statuscode)",
            &["PropertyValue"],
        ),
        (
            "opportunities?$select=name&$filter=Microsoft.Dynamics.CRM.LastXDays(PropertyName='name',Column=statuscode)",
            &["`Column`", "LastXDays"],
        ),
        (
            "opportunities?$select=name&$filter=Microsoft.Dynamics.CRM.Secret(PropertyName='name')",
            &["`Secret`"],
        ),
        (
            "contacts?$filter=Microsoft.Dynamics.CRM.Under(PropertyName='contactid',PropertyValue='x')",
            &["`Under`"],
        ),
    ] {
        denied(url, names);
    }
}

#[test]
fn apply_filter_without_select_is_a_main_read() {
    let d = allowed("opportunities?$apply=filter(name eq 'x')");
    assert_eq!(d.add_select.as_deref(), Some("name,estimatedvalue"));
    let d = allowed("opportunities?$apply=filter(name eq 'x')&$select=name");
    assert_eq!(d.add_select, None);
    let d = allowed("opportunities?$apply=filter(name eq 'x')/groupby((name))");
    assert_eq!(d.add_select, None);
    denied(
        "opportunities?$apply=filter(statuscode eq 1)",
        &["column `statuscode`"],
    );
    // inside an expansion there is no main read: the restricted table needs its $select
    denied(
        "accounts?$expand=opportunity_parent_account($filter=name eq 'x')",
        &["`opportunities`", "$select"],
    );
}

/// A function's table-name parameter given through an alias names those tables just the same.
#[test]
fn table_names_in_function_parameters_given_through_aliases() {
    let csdl = String::from_utf8_lossy(include_bytes!("../../../sim/metadata.xml"))
        .replacen(
            r#"<EntityContainer Name="System">"#,
            r#"<Function Name="RetrieveTotalRecordCount"><Parameter Name="EntityNames" Type="Collection(Edm.String)" Nullable="false" /><ReturnType Type="Edm.String" /></Function><EntityContainer Name="System"><FunctionImport Name="RetrieveTotalRecordCount" Function="mscrm.RetrieveTotalRecordCount" />"#,
            1,
        );
    let meta = Metadata::parse(csdl.as_bytes()).expect("CSDL parses");
    let mut p = policy();
    p.functions.push("RetrieveTotalRecordCount".into());
    let urls = urls();
    let ids = BTreeMap::new();
    let env = Env {
        metadata: Some(&meta),
        known_functions: &p.functions,
        urls: &urls,
        content_ids: &ids,
    };
    let h = HeaderMap::new();
    let run = |path: &str, query: Option<&str>| {
        let req = Request {
            method: &http::Method::GET,
            path,
            query,
            headers: &h,
            body: None,
        };
        decision::decide(&p, classify(&req, &env), &h)
    };
    let d = run("RetrieveTotalRecordCount(EntityNames=['contact'])", None);
    assert!(d.allowed(), "{}", d.reason());
    let d = run(
        "RetrieveTotalRecordCount(EntityNames=@p1)",
        Some(r#"@p1=["contact"]"#),
    );
    assert!(d.allowed(), "{}", d.reason());
    for (path, query) in [
        (
            "RetrieveTotalRecordCount(EntityNames=@p1)",
            Some("@p1=['systemuser']"),
        ),
        ("RetrieveTotalRecordCount(EntityNames=['systemuser'])", None),
    ] {
        let d = run(path, query);
        assert!(
            d.reason().contains("`systemusers`"),
            "{path}: {}",
            d.reason()
        );
    }
    let d = run(
        "RetrieveTotalRecordCount(EntityNames=@p1)",
        Some("@p1=['contact']&@p2=1"),
    );
    assert!(d.reason().contains("`@p2`"), "{}", d.reason());
}

/// A function call names only the parameters its declaration has, each a literal or an alias;
/// `$select` on its result is understood when it returns rows of a table, checked as that
/// table's `$select`.
#[test]
fn function_parameters_and_select_follow_the_declaration() {
    let csdl = String::from_utf8_lossy(include_bytes!("../../../sim/metadata.xml"))
        .replacen(
            r#"<EntityContainer Name="System">"#,
            r#"<Function Name="RetrieveTotalRecordCount"><Parameter Name="EntityNames" Type="Collection(Edm.String)" Nullable="false" /><ReturnType Type="Edm.String" /></Function><Function Name="RecentContacts"><Parameter Name="Days" Type="Edm.Int32" /><ReturnType Type="Collection(mscrm.contact)" /></Function><EntityContainer Name="System"><FunctionImport Name="RetrieveTotalRecordCount" Function="mscrm.RetrieveTotalRecordCount" /><FunctionImport Name="RecentContacts" Function="mscrm.RecentContacts" />"#,
            1,
        );
    let meta = Metadata::parse(csdl.as_bytes()).expect("CSDL parses");
    let mut p = policy();
    p.functions.push("RetrieveTotalRecordCount".into());
    p.functions.push("RecentContacts".into());
    let run = |path: &str, query: Option<&str>| {
        let url = query.map_or(path.to_string(), |q| format!("{path}?{q}"));
        decide_under(&p, "GET", &url, Some(&meta))
    };
    for (path, query) in [
        ("RecentContacts(Days=7)", None),
        ("RecentContacts(Days=@d)", Some("@d=7")),
        (
            "RecentContacts(Days=7)",
            Some("$select=fullname,emailaddress1"),
        ),
    ] {
        let d = run(path, query);
        assert!(d.allowed(), "{path}?{query:?}: {}", d.reason());
    }
    for (path, query, reason) in [
        (
            "WhoAmI(createdby=1)",
            None,
            "`createdby` is not a parameter of the function WhoAmI",
        ),
        (
            "RetrieveTotalRecordCount(createdby=['contact'])",
            None,
            "`createdby` is not a parameter",
        ),
        (
            "RetrieveTotalRecordCount(EntityNames=createdby)",
            None,
            "`EntityNames=createdby` of RetrieveTotalRecordCount is not a literal",
        ),
        (
            "RecentContacts(Days=fullname)",
            None,
            "`Days=fullname` of RecentContacts is not a literal",
        ),
        (
            "WhoAmI()",
            Some("$select=createdby"),
            "`$select` on the result of WhoAmI is not inspected",
        ),
        (
            "WhoAmI()",
            Some("$select=UserId"),
            "`$select` on the result of WhoAmI is not inspected",
        ),
        (
            "RecentContacts(Days=7)",
            Some("$select=createdby"),
            "`systemusers`",
        ),
        (
            "RecentContacts(Days=7)",
            Some("$select=CreatedBy"),
            "`CreatedBy` in $select is not a column of contact",
        ),
    ] {
        let d = run(path, query);
        assert!(!d.allowed(), "{path}?{query:?}");
        assert!(
            d.reason().contains(reason),
            "{path}?{query:?}: {}",
            d.reason()
        );
    }
}

/// Without metadata a lambda's collection cannot be told from a column: a column list naming
/// the navigation must not let the related table through.
#[test]
fn lambdas_need_metadata() {
    let mut p = policy();
    p.tables.insert(
        "accounts".into(),
        TableRule {
            verbs: vec![Verb::Get],
            columns: Some(vec!["name".into(), "contact_customer_accounts".into()]),
        },
    );
    for url in [
        "accounts/$count?$filter=contact_customer_accounts/any()",
        "accounts?$select=name&$filter=contact_customer_accounts/any(c:c/fullname eq 'x')",
    ] {
        let d = decide_under(&p, "GET", url, None);
        assert_eq!(d.denial, Some(Denial::Policy), "{url}: {}", d.reason());
        assert!(d.reason().contains("metadata"), "{url}: {}", d.reason());
    }
}

/// A `$skiptoken`'s paging cookie names the columns Dataverse compares: checked like filtered
/// columns, the table's own primary key excepted.
#[test]
fn skiptoken_paging_cookies_are_checked_like_filters() {
    let skip = |inner: &str| {
        let outer = format!(
            "<cookie pagenumber=\"2\" pagingcookie=\"{}\" istracking=\"False\" />",
            encode(inner)
        );
        encode(&outer)
    };
    let own = skip(
        "<cookie page=\"1\"><opportunityid last=\"{0B000000-0000-4000-8000-000000000001}\" /></cookie>",
    );
    allowed(&format!("opportunities?$select=name&$skiptoken={own}"));
    let forged = skip("<cookie page=\"1\"><statuscode last=\"3\" /></cookie>");
    denied(
        &format!("opportunities?$select=name&$skiptoken={forged}"),
        &["column `statuscode` of `opportunities`"],
    );
    let d = decide(
        "GET",
        &format!("contacts?$skiptoken={}", encode("<cookie x=\"1\" />")),
        None,
    );
    assert_eq!(d.denial, Some(Denial::Malformed), "{}", d.reason());
    assert!(d.reason().contains("`x`"), "{}", d.reason());
}
