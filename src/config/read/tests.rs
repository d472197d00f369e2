use super::*;

const GOOD: &str = r#"
listen: 127.0.0.1:8080
tenants:
  contoso:
    default: true
    dataverse:
      url: https://contoso.crm.dynamics.com/
    auth:
      tenant_id: t
      client_id: c
      client_secret: { env: DVGW_TEST_UNSET_SECRET }
    allow:
      contacts: [GET, POST]
      opportunities:
        verbs: [GET]
        columns: [name]
    functions: [WhoAmI]
"#;

fn errors(text: &str) -> Vec<String> {
    parse_str(text, "g.yaml")
        .unwrap_err()
        .errors
        .iter()
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn good_config_reads_with_defaults_and_warns_about_unresolved_secret() {
    let (config, warnings) = parse_str(GOOD, "g.yaml").unwrap();
    let t = &config.tenants[0];
    assert_eq!(t.dataverse.url, "https://contoso.crm.dynamics.com");
    assert_eq!(t.dataverse.api_version, "v9.2");
    assert_eq!(t.auth.scope, "https://contoso.crm.dynamics.com/.default");
    assert_eq!(
        t.auth.token_endpoint(),
        "https://login.microsoftonline.com/t/oauth2/v2.0/token"
    );
    assert_eq!(
        t.policy.tables["contacts"].verbs,
        vec![Verb::Get, Verb::Post]
    );
    assert_eq!(
        t.policy.tables["opportunities"].columns.as_deref(),
        Some(&["name".to_string()][..])
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.message.contains("DVGW_TEST_UNSET_SECRET")),
        "{warnings:?}"
    );
}

#[test]
fn every_error_is_listed_with_line_and_column() {
    let text = r#"
listen: 127.0.0.1:8080
bogus: 1
tenants:
  Bad_Name:
    default: true
    dataverse: { url: "http://contoso.crm.dynamics.com" }
    auth: { tenant_id: t, client_id: c, client_secret: { env: X } }
  other:
    default: true
    dataverse: { url: "https://o.crm.dynamics.com" }
    auth: { tenant_id: t, client_id: c, client_secret: { env: X }, colour: blue }
    allow:
      contacts: [GET, FETCH]
      contacts: [GET]
"#;
    let errs = errors(text);
    let joined = errs.join("\n");
    assert!(
        joined.contains("g.yaml:3:1: bogus: unknown key `bogus`"),
        "{joined}"
    );
    assert!(
        joined.contains("g.yaml:5:3: tenants.Bad_Name: tenant name"),
        "{joined}"
    );
    assert!(
        joined.contains(
            "tenants.Bad_Name.dataverse.url: `http://contoso.crm.dynamics.com` must use https"
        ),
        "{joined}"
    );
    assert!(
        joined.contains("g.yaml:12:68: tenants.other.auth.colour: unknown key"),
        "{joined}"
    );
    assert!(joined.contains("`FETCH` is not one of"), "{joined}");
    assert!(joined.contains("g.yaml:15:7: tenants.other.allow.contacts: duplicate key `contacts` (first defined at 14:7)"), "{joined}");
    assert!(joined.contains("g.yaml:10:14: tenants.other.default: at most one tenant may be `default: true` (`Bad_Name` already is)"), "{joined}");
}

#[test]
fn syntax_errors_have_a_position() {
    let errs = errors("tenants: [\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("g.yaml:"), "{errs:?}");
    assert!(errs[0].contains("invalid YAML"), "{errs:?}");
}

#[test]
fn http_is_allowed_only_on_loopback() {
    for (url, ok) in [
        ("http://127.0.0.1:1234", true),
        ("http://localhost:1", true),
        ("http://[::1]:8080", true),
        ("http://10.0.0.1", false),
        ("http://127.0.0.1.evil.net", false),
        ("https://org.crm.dynamics.com", true),
        ("https://org.crm.dynamics.com/api/data", false),
        ("https://user:pw@org.crm.dynamics.com", false),
        ("ftp://x", false),
    ] {
        let text = GOOD.replace("https://contoso.crm.dynamics.com/", url);
        assert_eq!(parse_str(&text, "g").is_ok(), ok, "{url}");
    }
}

#[test]
fn inline_secrets_are_accepted_with_a_warning_that_does_not_show_them() {
    let text = GOOD.replace("{ env: DVGW_TEST_UNSET_SECRET }", "s3cr3t-value");
    let (_, warnings) = parse_str(&text, "g").unwrap();
    let all = warnings.iter().map(|w| w.to_string()).collect::<String>();
    assert!(all.contains("inline secret"), "{all}");
    assert!(!all.contains("s3cr3t-value"));
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
    assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("30"), None);
    assert_eq!(parse_duration("s"), None);
}
