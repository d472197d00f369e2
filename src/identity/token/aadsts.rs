//! What Entra ID error codes (`AADSTSnnnn`) mean to an operator, in Microsoft identity
//! platform terms (see docs/operations.md).
//!
//! Pure. Classification uses the numeric code from `error_codes[0]` (or the `AADSTSnnnn` prefix
//! of the description), never the free text.

/// One line an operator can act on, for a known AADSTS code.
pub fn meaning(code: u32) -> Option<&'static str> {
    Some(match code {
        7000215 => {
            "wrong client secret (often the secret's ID was configured instead of its value)"
        }
        7000222 => "the client secret has expired: create a new one and rotate it",
        7000218 => "no credential was sent: configure client_secret or another credential",
        700016 => "application not found in the tenant: check client_id and tenant_id",
        90002 => "tenant not found: check tenant_id and the authority (cloud)",
        500011 => "the Dataverse environment was not found in the tenant: check the scope URL",
        700027 => "the certificate is not registered on the app, or its signature is invalid",
        700024 => "the client assertion is outside its validity window: check the clock",
        700021 => "the client assertion's issuer or subject is wrong",
        700023 => "the client assertion's audience is wrong",
        50027 => "the client assertion is malformed",
        70021 => "no federated credential matches the presented token (workload identity)",
        53003 => "blocked by Conditional Access",
        1002012 => "invalid scope: it must be the Dataverse URL followed by /.default",
        70011 => "invalid scope: it must be the Dataverse URL followed by /.default",
        _ => return None,
    })
}

/// The AADSTS code of an Entra error response body, if any.
pub fn code_of(error_codes: Option<&serde_json::Value>, description: Option<&str>) -> Option<u32> {
    if let Some(n) = error_codes.and_then(|c| c.get(0)).and_then(|c| c.as_u64()) {
        return u32::try_from(n).ok();
    }
    let rest = description?.strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_from_error_codes_first() {
        let codes = serde_json::json!([7000215]);
        assert_eq!(code_of(Some(&codes), Some("AADSTS90002: x")), Some(7000215));
        assert_eq!(
            code_of(None, Some("AADSTS90002: Tenant not found")),
            Some(90002)
        );
        assert_eq!(code_of(None, Some("something else")), None);
        assert!(meaning(7000222).unwrap().contains("expired"));
        assert!(meaning(1).is_none());
    }

    #[test]
    fn every_code_of_reference_c_has_a_one_line_meaning() {
        let codes = [
            7000215, 7000222, 7000218, 700016, 90002, 500011, 700027, 700024, 700021, 700023,
            50027, 70021, 53003,
        ];
        for code in codes {
            let m = meaning(code).unwrap_or_else(|| panic!("AADSTS{code} has no meaning"));
            assert!(!m.contains('\n') && m.len() < 120, "{code}: {m}");
        }
    }
}
