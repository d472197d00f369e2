//! Unit tests of Key Vault answers: shapes as Key Vault sends them, and failures that name the
//! role, the object and the caller without carrying anything secret.

use super::*;

fn call(op: Operation) -> Call<'static> {
    Call {
        vault: "https://raia-prod.vault.azure.net",
        name: "contoso-dv",
        op,
        identity: "the managed identity mi-1",
    }
}

#[test]
fn a_secret_answer_gives_value_version_and_content_type() {
    let body = br#"{"value":"s3cr3t","contentType":"application/x-pkcs12","id":"https://raia-prod.vault.azure.net/secrets/contoso-dv/4387e9f3d6e14c459867679a90fd0f79","attributes":{"enabled":true,"exp":1893456000,"created":1,"updated":1,"recoveryLevel":"Recoverable+Purgeable"},"kid":"https://raia-prod.vault.azure.net/keys/contoso-dv/4387e9f3d6e14c459867679a90fd0f79","managed":true}"#;
    let b = parse_secret(&call(Operation::GetSecret), body).unwrap();
    assert_eq!(b.value.expose(), "s3cr3t");
    assert_eq!(b.version, "4387e9f3d6e14c459867679a90fd0f79");
    assert_eq!(b.content_type.as_deref(), Some("application/x-pkcs12"));
    assert_eq!(b.expires, Some(1_893_456_000));
    assert!(!format!("{b:?}").contains("s3cr3t"));
    let disabled = br#"{"value":"x","id":"https://v/secrets/n/1","attributes":{"enabled":false}}"#;
    let e = parse_secret(&call(Operation::GetSecret), disabled).unwrap_err();
    assert!(e.to_string().contains("disabled"), "{e}");
}

#[test]
fn a_certificate_answer_gives_der_version_and_key() {
    let body = br#"{"id":"https://v.vault.azure.net/certificates/c1/abc","kid":"https://v.vault.azure.net/keys/c1/def","sid":"https://v.vault.azure.net/secrets/c1/abc","x5t":"fLi3U52HunIVNXubkEnf8tP6Wbo","cer":"MIIBAg==","attributes":{"enabled":true}}"#;
    let b = parse_certificate(&call(Operation::GetCertificate), body).unwrap();
    assert_eq!(b.der, vec![0x30, 0x82, 0x01, 0x02]);
    assert_eq!(
        (
            b.version.as_str(),
            b.key_name.as_str(),
            b.key_version.as_str()
        ),
        ("abc", "c1", "def")
    );
    let no_kid = br#"{"id":"https://v/certificates/c1/abc","cer":"MIIBAg=="}"#;
    assert!(parse_certificate(&call(Operation::GetCertificate), no_kid).is_err());
}

#[test]
fn a_sign_answer_is_base64url() {
    let body = br#"{"kid":"https://v/keys/c1/def","value":"aKFG8NXcfTzq"}"#;
    assert_eq!(
        parse_signature(&call(Operation::Sign), body).unwrap().len(),
        9
    );
}

#[test]
fn refusals_name_the_role_the_object_and_the_caller() {
    let forbidden = br#"{"error":{"code":"Forbidden","message":"Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=11111111-2222;oid=33333333-4444;iss=https://sts.windows.net/t/\r\nAction: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n","innererror":{"code":"ForbiddenByRbac"}}}"#;
    let text = call(Operation::GetSecret)
        .failure(403, None, forbidden)
        .to_string();
    assert!(text.contains("Key Vault Secrets User"), "{text}");
    assert!(text.contains("`contoso-dv`"), "{text}");
    assert!(text.contains("the managed identity mi-1"), "{text}");
    assert!(
        text.contains("appid=11111111-2222;oid=33333333-4444"),
        "{text}"
    );
    assert!(text.contains("HTTP 403, Forbidden"), "{text}");
    let text = call(Operation::Sign).failure(403, None, b"{}").to_string();
    assert!(text.contains("Key Vault Crypto User"), "{text}");
    let text = call(Operation::GetCertificate)
        .failure(401, None, b"")
        .to_string();
    assert!(
        text.contains("Key Vault Certificate User (or Key Vault Reader)"),
        "{text}"
    );
    let text = call(Operation::GetSecret)
        .failure(404, None, br#"{"error":{"code":"SecretNotFound","message":"A secret with (name/id) contoso-dv was not found in this key vault."}}"#)
        .to_string();
    assert!(
        text.contains("has no secret `contoso-dv` (HTTP 404, SecretNotFound)"),
        "{text}"
    );
    let e = call(Operation::GetSecret).failure(429, Some("17"), b"");
    assert_eq!(
        backoff_for(&e, Duration::from_secs(1)),
        Duration::from_secs(17)
    );
    assert!(e.to_string().contains("retry after 17 s"), "{e}");
    let e = call(Operation::GetSecret).failure(429, None, b"");
    assert!(
        e.to_string()
            .contains(&format!("retry after {DEFAULT_RETRY_AFTER} s")),
        "{e}"
    );
}

#[test]
fn nothing_from_the_body_but_ids_and_codes_is_kept() {
    let hostile = br#"{"error":{"code":"Bad<script>","message":"Caller: appid=abc-123;token=eyJhbGciOi.secret value;oid=zz\r\n"}}"#;
    let text = call(Operation::GetSecret)
        .failure(403, None, hostile)
        .to_string();
    assert!(!text.contains("<script>"), "{text}");
    assert!(text.contains("(appid=abc-123)"), "{text}");
    assert!(
        !text.contains("eyJ") && !text.contains("secret value") && !text.contains("oid=zz"),
        "{text}"
    );
}
