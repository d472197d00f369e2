//! Unit tests of the credential reader and its hygiene warnings.

use super::*;

#[test]
fn clouds_of_well_known_hosts() {
    assert_eq!(
        authority_cloud("https://login.microsoftonline.com"),
        Some(Cloud::Public)
    );
    assert_eq!(
        authority_cloud("https://login.microsoftonline.us"),
        Some(Cloud::UsGovernment)
    );
    assert_eq!(
        authority_cloud("https://login.chinacloudapi.cn"),
        Some(Cloud::China)
    );
    assert_eq!(authority_cloud("http://127.0.0.1:9"), None);
    assert_eq!(
        dataverse_cloud("https://org.crm9.dynamics.com"),
        Some(Cloud::Public)
    );
    assert_eq!(
        dataverse_cloud("https://org.crm.microsoftdynamics.us"),
        Some(Cloud::UsGovernment)
    );
    assert_eq!(
        dataverse_cloud("https://org.crm.appsplatform.us"),
        Some(Cloud::UsGovernment)
    );
    assert_eq!(
        dataverse_cloud("https://org.crm.dynamics.cn"),
        Some(Cloud::China)
    );
    assert_eq!(
        dataverse_cloud("https://org.api.crm4.dynamics.com"),
        Some(Cloud::Public)
    );
}

fn read(auth: &str, second_tenant: &str) -> Result<(Config, Vec<Diagnostic>), Diagnostics> {
    let text = format!(
        "tenants:\n  a:\n    dataverse: {{ url: https://a.crm.dynamics.com }}\n    auth:\n{auth}\n    allow: {{}}\n{second_tenant}"
    );
    crate::config::parse_str(&text, "t.yaml")
}

#[test]
fn each_credential_kind_reads() {
    let ids = "      tenant_id: t\n      client_id: c\n";
    let (c, _) = read(
        &format!("{ids}      certificate: {{ cert_file: a.pem, assertion_alg: RS256 }}"),
        "",
    )
    .unwrap();
    assert!(
        matches!(&c.tenants[0].auth.credential, Credential::Certificate(f) if f.alg == AssertionAlg::Rs256)
    );
    let (c, _) = read(
        &format!("{ids}      certificate: {{ pkcs12_file: a.pfx, password: {{ env: P }} }}"),
        "",
    )
    .unwrap();
    assert!(
        matches!(&c.tenants[0].auth.credential, Credential::Certificate(f) if matches!(f.source, CertificateSource::Pkcs12 { .. }))
    );
    let (c, _) = read(
        "      managed_identity: { endpoint: \"http://127.0.0.1:9/t\" }",
        "",
    )
    .unwrap();
    assert!(matches!(
        &c.tenants[0].auth.credential,
        Credential::ManagedIdentity {
            endpoint: Some(_),
            ..
        }
    ));
    let (c, _) = read(
        &format!("{ids}      workload_identity: {{ token_file: /t }}"),
        "",
    )
    .unwrap();
    assert!(matches!(
        &c.tenants[0].auth.credential,
        Credential::WorkloadIdentity { .. }
    ));
}

#[test]
fn credential_errors_are_positioned() {
    let ids = "      tenant_id: t\n      client_id: c\n";
    let e = read(
        &format!("{ids}      client_secret: x\n      managed_identity: {{}}"),
        "",
    )
    .unwrap_err();
    assert!(e.to_string().contains("only one credential"), "{e}");
    let e = read(
        &format!("{ids}      certificate: {{ key_file: k.pem }}"),
        "",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("t.yaml:7:20: tenants.a.auth.certificate: expected"),
        "{e}"
    );
    let e = read(
        &format!("{ids}      certificate: {{ cert_file: c.pem, assertion_alg: ES256 }}"),
        "",
    )
    .unwrap_err();
    assert!(e.to_string().contains("not PS256 or RS256"), "{e}");
    let e = read("      client_secret: x", "").unwrap_err();
    assert!(
        e.to_string().contains("missing required key `tenant_id`"),
        "{e}"
    );
}

#[test]
fn check_warns_about_a_shared_client_id_and_a_cloud_mismatch() {
    let auth = "      tenant_id: t\n      client_id: C1\n      authority: https://login.microsoftonline.us\n      client_secret: x";
    let second = "  b:\n    dataverse: { url: https://b.crm.dynamics.com }\n    auth: { tenant_id: t, client_id: c1, client_secret: y }\n    allow: {}\n";
    let (_, warnings) = read(auth, second).unwrap();
    let text: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    let text = text.join("\n");
    assert!(
        text.contains("tenants.b.auth.client_id: tenants.a uses the same client_id"),
        "{text}"
    );
    assert!(
        text.contains("is in US Government, but https://a.crm.dynamics.com is in the public cloud"),
        "{text}"
    );
}
