use super::*;

const ID: &str = "00000000-0000-0000-0000-000000000001";

fn name(n: &str, key: Option<KeySpec>) -> Head<'_> {
    Head::Name { name: n, key }
}

#[test]
fn heads() {
    assert_eq!(parse_path("").unwrap().head, Head::ServiceRoot);
    assert_eq!(parse_path("contacts").unwrap().head, name("contacts", None));
    assert_eq!(parse_path("$metadata").unwrap().head, Head::Metadata);
    assert_eq!(parse_path("$batch").unwrap().head, Head::Batch);
    assert_eq!(
        parse_path("$1/primarycontactid/$ref").unwrap().head,
        Head::ContentId("$1")
    );
    assert_eq!(
        parse_path("WhoAmI()").unwrap().head,
        name("WhoAmI", Some(KeySpec::Empty))
    );
    let raw = format!("contacts({ID})");
    let p = parse_path(&raw).unwrap();
    assert_eq!(p.head, name("contacts", Some(KeySpec::Guid(ID.into()))));
}

#[test]
fn tails() {
    let raw = format!("contacts({ID})/parentcustomerid_account/contact_customer_accounts/$count");
    let p = parse_path(&raw).unwrap();
    assert_eq!(
        p.tail,
        vec![
            Segment::Name {
                name: "parentcustomerid_account",
                key: None
            },
            Segment::Name {
                name: "contact_customer_accounts",
                key: None
            },
            Segment::Count
        ]
    );
    let raw = format!("contacts({ID})/fullname/$value");
    let p = parse_path(&raw).unwrap();
    assert_eq!(p.tail[1], Segment::Value);
    let p = parse_path("accounts/Microsoft.Dynamics.CRM.CreateMultiple").unwrap();
    assert_eq!(
        p.tail,
        vec![Segment::Qualified {
            name: "CreateMultiple",
            params: None
        }]
    );
    let raw = format!("accounts({ID})/contact_customer_accounts/$ref");
    let p = parse_path(&raw).unwrap();
    assert_eq!(p.tail[1], Segment::Ref);
}

#[test]
fn keys() {
    let p = parse_path("contacts(emailaddress1='a%40b.com',firstname='O''Neil')").unwrap();
    let pairs = vec![
        ("emailaddress1".to_string(), "'a@b.com'".to_string()),
        ("firstname".to_string(), "'O''Neil'".to_string()),
    ];
    assert_eq!(p.head, name("contacts", Some(KeySpec::Pairs(pairs))));
    let p = parse_path("RetrieveTotalRecordCount(EntityNames=['account','contact'])").unwrap();
    let pairs = vec![(
        "EntityNames".to_string(),
        "['account','contact']".to_string(),
    )];
    assert_eq!(
        p.head,
        name("RetrieveTotalRecordCount", Some(KeySpec::Pairs(pairs)))
    );
    assert!(matches!(
        parse_path("contacts(@p1)"),
        Err(ParseError::NotUnderstood(_))
    ));
}

#[test]
fn non_canonical_paths_are_malformed() {
    for p in [
        "%63ontacts",
        "contacts%2F00000000-0000-0000-0000-000000000001",
        "contacts(emailaddress1='a%2Fb')",
        "contacts(emailaddress1='a%252F')",
        "contacts/./x",
        "contacts/../accounts",
        "contacts//x",
        "contacts/",
        "contacts\\x",
        "contacts(emailaddress1='x'",
        "contacts(emailaddress1='x)",
        "contacts(a=1 b=2)",
        "contacts(a=1,a=2)",
        "contacts(emailaddress1='a%27%27)",
        "contacts(emailaddress1='%00')",
        "https://evil/api",
        "contacts(emailaddress1='a%2fb')",
        "contacts(emailaddress1='a%5Cb')",
        "contacts(emailaddress1='a%5cb')",
        "contacts(emailaddress1='a%25')",
        "contacts(x='HTTP:evil')",
        "contacts(x='hTtPs:evil')",
        "Microsoft.Dynamics.CRM.WhoAmI()",
        "contacts/$foo",
        "$metadata/x",
        "contacts(emailaddress1='\u{1}')",
    ] {
        assert!(
            matches!(parse_path(p), Err(ParseError::Malformed(_))),
            "{p}: {:?}",
            parse_path(p)
        );
    }
}

/// Every path of up to four pieces over an alphabet of what the one-pass check tells apart
/// (and what the full checks refuse) parses as the full checks parse it, the same value or
/// the same error; the one pass takes a good share of them.
#[test]
fn plain_paths_parse_as_the_full_checks_parse_them() {
    let alphabet = [
        "a",
        "Z",
        "_",
        "1",
        "/",
        ".",
        "..",
        "(",
        ")",
        "()",
        "$",
        "$count",
        "$1",
        "%",
        "%2f",
        "%63",
        ":",
        "https:",
        "\\",
        " ",
        "\u{1}",
        "\u{7f}",
        "\u{85}",
        "é",
        "Microsoft.Dynamics.CRM.",
        "contacts",
    ];
    let inputs = crate::policy::odata::strings_over(&alphabet, 4);
    let mut plain = 0;
    for raw in &inputs {
        let fast = plain_path(raw);
        if let Some(p) = &fast {
            plain += 1;
            assert_eq!(Ok(p), parse_checked(raw).as_ref(), "{raw:?}");
        }
        assert_eq!(parse_path(raw), parse_checked(raw), "{raw:?}");
    }
    assert!(plain > 300, "{plain} plain paths");
    for raw in [
        "contacts",
        "accounts/contact_customer_accounts",
        "a1/_b/c_2",
    ] {
        assert!(plain_path(raw).is_some(), "{raw:?}");
    }
    for raw in [
        "", "/", "a/", "/a", "a//b", "1a", "a/1", "a.b", "a(1)", "$batch", "a%41",
    ] {
        assert!(plain_path(raw).is_none(), "{raw:?}");
    }
}
