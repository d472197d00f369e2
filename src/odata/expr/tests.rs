use super::*;

fn paths(expr: &str) -> Vec<String> {
    let r = filter_refs(expr).unwrap();
    r.paths.iter().map(|p| p.join("/")).collect()
}

#[test]
fn plain_columns_and_literals() {
    assert_eq!(
        paths(
            "fullname eq 'a/b@c' and contains(emailaddress1,'x''y') and _parentcustomerid_value eq 00000000-0000-0000-0000-000000000001 and createdon gt 2024-01-01T00:00:00Z and revenue ge -5.5"
        ),
        vec![
            "fullname",
            "emailaddress1",
            "_parentcustomerid_value",
            "createdon",
            "revenue"
        ]
    );
    assert_eq!(
        paths("statecode in (0,1) and not (revenue eq null)"),
        vec!["statecode", "revenue"]
    );
}

#[test]
fn lookup_paths_and_lambdas() {
    assert_eq!(
        paths("parentcustomerid_account/name eq 'x'"),
        vec!["parentcustomerid_account/name"]
    );
    assert_eq!(
        paths(
            "contact_customer_accounts/any(c: c/fullname eq 'x' and c/parentcustomerid_account/name eq 'y')"
        ),
        vec![
            "contact_customer_accounts",
            "contact_customer_accounts/fullname",
            "contact_customer_accounts/parentcustomerid_account/name"
        ]
    );
    assert_eq!(
        paths("a/any(x: x/b/all(y: y/c eq 1 and x/d eq 2))"),
        vec!["a", "a/b", "a/b/c", "a/d"]
    );
    assert_eq!(
        paths("opportunity_customer_accounts/any()"),
        vec!["opportunity_customer_accounts"]
    );
}

#[test]
fn crm_functions_and_aliases() {
    assert_eq!(
        paths(
            "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=7) and statecode eq 0"
        ),
        vec!["statecode", "createdon"]
    );
    let r = filter_refs(
        "fullname eq @p1 or Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=@p2)",
    )
    .unwrap();
    assert_eq!(r.aliases, vec!["p1", "p2"]);
    assert_eq!(
        property_name_args(
            "Microsoft.Dynamics.CRM.EqualUserId(PropertyName='owninguser/fullname')"
        )
        .unwrap(),
        vec![vec!["owninguser".to_string(), "fullname".to_string()]]
    );
}

#[test]
fn unknown_things_are_not_understood() {
    for e in [
        "cast(x,Edm.String) eq 'a'",
        "isof('Microsoft.Dynamics.CRM.account')",
        "a/Microsoft.Dynamics.CRM.account/name eq 1",
        "$it/name eq 1",
        "unknownfn(a)",
        "a/any(x x/b)",
    ] {
        assert!(filter_refs(e).is_err(), "{e}");
    }
    assert!(matches!(
        filter_refs("fullname eq 'x"),
        Err(ParseError::Malformed(_))
    ));
    assert!(matches!(
        filter_refs("(a eq 1"),
        Err(ParseError::Malformed(_))
    ));
    assert!(matches!(
        filter_refs("a eq 1)"),
        Err(ParseError::Malformed(_))
    ));
}

#[test]
fn orderby() {
    let r = orderby_refs("fullname desc,parentcustomerid_account/name").unwrap();
    assert_eq!(
        r.paths,
        vec![
            vec!["fullname".to_string()],
            vec!["parentcustomerid_account".to_string(), "name".to_string()]
        ]
    );
    assert!(orderby_refs("a sideways").is_err());
    assert!(orderby_refs("cast(a)").is_err());
}
