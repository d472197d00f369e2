use super::*;

fn joined(paths: &[super::Path<'_>]) -> Vec<String> {
    paths.iter().map(|p| p.join("/")).collect()
}

fn paths(expr: &str) -> Vec<String> {
    joined(&filter_refs(expr, &[]).unwrap().paths)
}

fn with(aliases: &[(&str, &str)]) -> Vec<Pair<'static>> {
    aliases
        .iter()
        .map(|(n, v)| (n.to_string().into(), v.to_string().into()))
        .collect()
}

fn refused(expr: &str, aliases: &[(&str, &str)]) -> String {
    match filter_refs(expr, &with(aliases)) {
        Err(e) => e.to_string(),
        Ok(r) => panic!("`{expr}` was understood: {r:?}"),
    }
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
    assert_eq!(
        paths(
            "firstname eq lastname and revenue gt 1e3 and modifiedon lt 2024-01-01 and t eq 12:30:00"
        ),
        vec!["firstname", "lastname", "revenue", "modifiedon", "t"]
    );
}

/// Item 8: a GUID literal is a literal whatever its first digit and case; on the old lexer the
/// ones starting with a letter were member paths.
#[test]
fn guid_literals_with_any_first_digit() {
    for first in "0123456789abcdefABCDEF".chars() {
        let guid = format!("{first}3c20000-0000-4000-8000-00000000000a");
        for g in [guid.clone(), guid.to_ascii_uppercase()] {
            let expr = format!("_parentcustomerid_value eq {g} or contactid ne {g}");
            assert_eq!(
                paths(&expr),
                vec!["_parentcustomerid_value", "contactid"],
                "{expr}"
            );
        }
    }
    // Not a GUID: a word with the GUID's shape glued to more name characters.
    assert!(filter_refs("a eq f3c20000-0000-4000-8000-00000000000ab", &[]).is_err());
    assert!(filter_refs("a eq f3c20000-0000-4000-8000-00000000000a_x", &[]).is_err());
    // A number token must be a whole literal, not digits glued to a name.
    assert!(filter_refs("a eq 1-secret", &[]).is_err());
    assert!(filter_refs("a eq 5x", &[]).is_err());
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

/// Item 2: an alias whose value is a member path reads that column, wherever it is used.
#[test]
fn aliases_bind_as_their_values() {
    let a = with(&[("p", "description"), ("p1", "revenue"), ("p3", "'x'")]);
    let r = filter_refs("contains(@p,'x')", &a).unwrap();
    assert_eq!(joined(&r.paths), vec!["description"]);
    assert_eq!(r.aliases, vec!["p"]);
    let r = filter_refs("@p1 ne @p3", &a).unwrap();
    assert_eq!(joined(&r.paths), vec!["revenue"]);
    assert_eq!(r.aliases, vec!["p1", "p3"]);
    // bound in the lambda's scope, as if written in place
    let a = with(&[("v", "c/secret")]);
    let r = filter_refs("contact_customer_accounts/any(c: c/fullname eq @v)", &a).unwrap();
    assert_eq!(
        joined(&r.paths),
        vec![
            "contact_customer_accounts",
            "contact_customer_accounts/fullname",
            "contact_customer_accounts/secret"
        ]
    );
    // an alias of an alias, and of an expression
    let a = with(&[("a", "@b"), ("b", "tolower(secret)")]);
    assert_eq!(
        joined(&filter_refs("@a eq 'x'", &a).unwrap().paths),
        vec!["secret"]
    );
    // in $orderby
    let a = with(&[("p2", "secret")]);
    let r = orderby_refs("@p2 asc, name", &a).unwrap();
    assert_eq!(joined(&r.paths), vec!["secret", "name"]);
    // literal values name nothing
    for v in [
        "'x'",
        "5",
        "null",
        "true",
        "c0000000-0000-4000-8000-000000000001",
        "['a','b']",
        "[\"5\",\"6\"]",
    ] {
        let a = with(&[("p", v)]);
        let r = filter_refs("name eq @p", &a).unwrap();
        assert_eq!(joined(&r.paths), vec!["name"], "{v}");
    }
    // record references are left to the classifier
    let a = with(&[("p", "{\"@odata.id\":\"accounts(1)\"}")]);
    let r = filter_refs("x eq @p", &a).unwrap();
    assert_eq!((joined(&r.paths), r.aliases), (vec!["x".into()], vec!["p"]));
}

#[test]
fn bad_aliases_are_refused_naming_them() {
    let m = refused("name eq @p", &[]);
    assert!(m.contains("`@p`") && m.contains("not defined"), "{m}");
    let m = refused("name eq @p", &[("p", "@p")]);
    assert!(m.contains("`@p`") && m.contains("itself"), "{m}");
    let m = refused("name eq @p", &[("p", "cast(x,Edm.String)")]);
    assert!(m.contains("`@p`"), "{m}");
    let m = refused("name eq @p", &[("p", "a eq 'x")]);
    assert!(m.contains("`@p`"), "{m}");
    assert!(literal_alias("p", "'x'").is_ok());
    assert!(literal_alias("p", "[1,-2,'a',\"b\",null]").is_ok());
    let m = literal_alias("p", "secret").unwrap_err().to_string();
    assert!(m.contains("`@p`"), "{m}");
    assert!(literal_alias("p", "[secret]").is_err());
}

/// Items 7a and 10: query functions' arguments are understood one by one.
#[test]
fn query_functions() {
    let r = filter_refs(
        "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=7) and statecode eq 0",
        &[],
    )
    .unwrap();
    assert_eq!(joined(&r.columns), vec!["createdon"]);
    assert_eq!(joined(&r.paths), vec!["statecode"]);
    let between = r#"Microsoft.Dynamics.CRM.Between(PropertyName='estimatedvalue',PropertyValues=["5","2000"])"#;
    assert_eq!(
        joined(&filter_refs(between, &[]).unwrap().columns),
        vec!["estimatedvalue"]
    );
    let a = with(&[("p1", "'lastname'"), ("p2", "['Smith','Jones']")]);
    let r = filter_refs(
        "Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)",
        &a,
    )
    .unwrap();
    assert_eq!(
        (joined(&r.columns), r.aliases),
        (vec!["lastname".into()], vec!["p1", "p2"])
    );
    let r = filter_refs(
        "Microsoft.Dynamics.CRM.EqualUserId(PropertyName='ownerid')",
        &[],
    )
    .unwrap();
    assert_eq!(joined(&r.columns), vec!["ownerid"]);
    let r = filter_refs(
        "Microsoft.Dynamics.CRM.InFiscalPeriodAndYear(PropertyName='createdon',PropertyValue1=1,PropertyValue2=2024)",
        &[],
    )
    .unwrap();
    assert_eq!(joined(&r.columns), vec!["createdon"]);
    assert_eq!(
        joined(
            &filter_refs(
                "Microsoft.Dynamics.CRM.EqualUserId(PropertyName='owninguser/fullname')",
                &[]
            )
            .unwrap()
            .columns
        ),
        vec!["owninguser/fullname"]
    );
}

#[test]
fn query_function_arguments_must_be_understood() {
    for (expr, named) in [
        // an identifier in an argument used to be skipped
        (
            "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[secret])",
            "array",
        ),
        (
            "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=secret)",
            "PropertyValue",
        ),
        (
            "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',Other='x')",
            "`Other`",
        ),
        (
            "Microsoft.Dynamics.CRM.LastXDays(propertyname='createdon')",
            "`propertyname`",
        ),
        (
            "Microsoft.Dynamics.CRM.LastXDays(PropertyName=secret)",
            "PropertyName",
        ),
        (
            "Microsoft.Dynamics.CRM.EqualUserId(PropertyName='a b')",
            "a b",
        ),
        (
            "Microsoft.Dynamics.CRM.NoSuchFunction(PropertyName='name')",
            "`NoSuchFunction`",
        ),
        (
            "Microsoft.Dynamics.CRM.Under(PropertyName='accountid',PropertyValue='x')",
            "`Under`",
        ),
        (
            "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=@p)",
            "PropertyValues",
        ),
    ] {
        let m = refused(expr, &[("p", "secret")]);
        assert!(m.contains(named), "{expr}: {m}");
    }
    let m = refused(
        "Microsoft.Dynamics.CRM.EqualUserId(PropertyName=@p)",
        &[("p", "secret")],
    );
    assert!(m.contains("PropertyName"), "{m}");
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
        "a has Microsoft.Dynamics.CRM.x'1'",
        "a eq duration'P1D'",
        "a eq \"x\"",
        "a eq b c",
        "a eq @p.x",
    ] {
        assert!(filter_refs(e, &[]).is_err(), "{e}");
    }
    for e in ["fullname eq 'x", "(a eq 1", "a eq 1)", "a eq", "a eq ?"] {
        assert!(
            matches!(filter_refs(e, &[]), Err(ParseError::Malformed(_))),
            "{e}"
        );
    }
    let deep = format!("{}a eq 1{}", "(".repeat(200), ")".repeat(200));
    assert!(filter_refs(&deep, &[]).is_err());
    // each alias uses the next one twice: 2^40 expansions if unbounded
    let mut chain: Vec<Pair<'_>> = (0..40)
        .map(|i| {
            let value = format!("@a{} eq @a{}", i + 1, i + 1);
            (format!("a{i}").into(), value.into())
        })
        .collect();
    chain.push(("a40".into(), "x".into()));
    assert!(filter_refs("@a0", &chain).is_err());
}

#[test]
fn orderby() {
    let r = orderby_refs("fullname desc,parentcustomerid_account/name", &[]).unwrap();
    assert_eq!(
        joined(&r.paths),
        vec!["fullname", "parentcustomerid_account/name"]
    );
    assert!(orderby_refs("a sideways", &[]).is_err());
    assert!(orderby_refs("cast(a)", &[]).is_err());
    assert!(orderby_refs("a desc desc", &[]).is_err());
}
