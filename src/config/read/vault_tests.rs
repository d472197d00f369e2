//! Unit tests of the Key Vault config reader: the three forms, `key_vault:`, and the errors.

use super::*;
use crate::config::vault::{
    DEFAULT_VAULT_REFRESH, VaultAccess, VaultCredential, VaultIdentity, VaultObject,
};

fn read(top: &str, credential: &str) -> Result<(Config, Vec<Diagnostic>), Diagnostics> {
    let text = format!(
        "{top}tenants:\n  a:\n    dataverse: {{ url: https://a.crm.dynamics.com }}\n    auth:\n      tenant_id: t\n      client_id: c\n{credential}\n    allow: {{}}\n"
    );
    crate::config::parse_str(&text, "t.yaml")
}

fn vault_of(c: &Config) -> &VaultCredential {
    match &c.tenants[0].auth.credential {
        Credential::KeyVault(v) => v,
        other => panic!("not a vault credential: {other:?}"),
    }
}

#[test]
fn the_three_forms_read_with_their_defaults() {
    let (c, _) = read(
        "",
        "      client_secret: { key_vault: { vault: https://raia-prod.vault.azure.net/, secret: contoso-dv } }",
    )
    .unwrap();
    let v = vault_of(&c);
    assert_eq!(v.vault, "https://raia-prod.vault.azure.net");
    assert_eq!(v.object, VaultObject::Secret("contoso-dv".into()));
    assert_eq!(v.refresh, DEFAULT_VAULT_REFRESH);
    assert_eq!(v.access, VaultAccess::default());
    assert_eq!(v.access.scope, "https://vault.azure.net/.default");

    let (c, _) = read(
        "",
        "      certificate: { key_vault: { vault: https://v.vault.azure.net, certificate: c1, refresh: 2m } }",
    )
    .unwrap();
    let v = vault_of(&c);
    assert_eq!(v.object, VaultObject::Certificate("c1".into()));
    assert_eq!(v.refresh, Duration::from_secs(120));
    assert_eq!(v.alg, AssertionAlg::Ps256);

    let (c, _) = read(
        "",
        "      certificate: { key_vault_key: { vault: https://v.vault.azure.net, certificate: c1 }, assertion_alg: RS256 }",
    )
    .unwrap();
    let v = vault_of(&c);
    assert_eq!(v.object, VaultObject::CertificateKey("c1".into()));
    assert_eq!(v.alg, AssertionAlg::Rs256);
}

#[test]
fn key_vault_section_gives_every_vault_credential_its_identity_and_scope() {
    let top = "key_vault:\n  identity:\n    managed_identity: { client_id: mi-1, endpoint: \"http://127.0.0.1:9/metadata/identity/oauth2/token\" }\n  scope: https://vault.azure.cn/.default\n";
    let (c, _) = read(
        top,
        "      client_secret: { key_vault: { vault: https://v.vault.azure.cn, secret: s } }",
    )
    .unwrap();
    let v = vault_of(&c);
    assert_eq!(v.access.scope, "https://vault.azure.cn/.default");
    assert_eq!(
        v.access.identity,
        VaultIdentity::Managed {
            client_id: Some("mi-1".into()),
            endpoint: Some("http://127.0.0.1:9/metadata/identity/oauth2/token".into())
        }
    );
    let top = "key_vault:\n  identity:\n    workload_identity: { token_file: /var/run/t, tenant_id: tt, client_id: cc }\n";
    let (c, _) = read(
        top,
        "      client_secret: { key_vault: { vault: https://v.vault.azure.net, secret: s } }",
    )
    .unwrap();
    assert!(matches!(
        &vault_of(&c).access.identity,
        VaultIdentity::Workload { tenant_id, client_id, authority, .. }
            if tenant_id == "tt" && client_id == "cc" && authority == "https://login.microsoftonline.com"
    ));
}

fn errors(top: &str, credential: &str) -> String {
    let d = read(top, credential).unwrap_err();
    d.errors.iter().map(|e| format!("{e}\n")).collect()
}

#[test]
fn bad_vault_forms_are_errors_with_their_paths() {
    let e = errors(
        "",
        "      client_secret: { key_vault: { vault: http://v.vault.azure.net, secret: s } }",
    );
    assert!(
        e.contains("auth.client_secret.key_vault.vault: `http://v.vault.azure.net` must be https"),
        "{e}"
    );
    let e = errors(
        "",
        "      client_secret: { key_vault: { vault: https://v.vault.azure.net, secret: \"a b\" } }",
    );
    assert!(
        e.contains("key_vault.secret: `a b` is not a Key Vault object name"),
        "{e}"
    );
    let e = errors(
        "",
        "      client_secret: { key_vault: { vault: https://v.vault.azure.net, certificate: s } }",
    );
    assert!(e.contains("missing required key `secret`"), "{e}");
    assert!(e.contains("unknown key `certificate`"), "{e}");
    let e = errors(
        "",
        "      certificate: { key_vault: { vault: https://v.vault.azure.net, certificate: c }, cert_file: a.pem }",
    );
    assert!(e.contains("unknown key `cert_file`"), "{e}");
    let e = errors(
        "",
        "      certificate: { key_vault: { vault: https://v.vault.azure.net, certificate: c }, key_vault_key: { vault: https://v.vault.azure.net, certificate: c } }",
    );
    assert!(
        e.contains("exactly one of `key_vault` or `key_vault_key`"),
        "{e}"
    );
    let e = errors(
        "",
        "      certificate: { key_vault_key: { vault: https://v.vault.azure.net, certificate: c, refresh: 5s } }",
    );
    assert!(e.contains("refresh must be from 30s to 24h"), "{e}");
    let e = errors(
        "key_vault:\n  scope: https://vault.azure.net\n",
        "      client_secret: { key_vault: { vault: https://v.vault.azure.net, secret: s } }",
    );
    assert!(e.contains("key_vault.scope:"), "{e}");
    let e = errors(
        "key_vault:\n  identity: { client_secret: x }\n",
        "      client_secret: { key_vault: { vault: https://v.vault.azure.net, secret: s } }",
    );
    assert!(e.contains("key_vault.identity"), "{e}");
}

#[test]
fn a_loopback_vault_may_be_http_and_plain_references_still_read() {
    let (c, _) = read(
        "",
        "      client_secret: { key_vault: { vault: \"http://127.0.0.1:8200\", secret: s } }",
    )
    .unwrap();
    assert_eq!(vault_of(&c).vault, "http://127.0.0.1:8200");
    let (c, _) = read("", "      client_secret: { env: SOME_VAR }").unwrap();
    assert!(matches!(
        c.tenants[0].auth.credential,
        Credential::ClientSecret(_)
    ));
}
