use super::*;

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn token(header: serde_json::Value) -> String {
    format!(
        "{}.{}.{}",
        b64(&header),
        b64(&serde_json::json!({})),
        "c2ln"
    )
}

#[test]
fn only_rs256_with_a_kid_gets_past_the_header() {
    let ok = token(serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}));
    assert_eq!(parse(&ok).unwrap().kid, "k1");
    for (header, want) in [
        (
            serde_json::json!({"alg": "none", "kid": "k1"}),
            Rejection::Algorithm("none".into()),
        ),
        (
            serde_json::json!({"alg": "HS256", "kid": "k1"}),
            Rejection::Algorithm("HS256".into()),
        ),
        (
            serde_json::json!({"alg": "PS256", "kid": "k1"}),
            Rejection::Algorithm("PS256".into()),
        ),
        (serde_json::json!({"alg": "RS256"}), Rejection::Malformed),
    ] {
        assert_eq!(parse(&token(header.clone())).unwrap_err(), want, "{header}");
    }
    for bad in [
        "",
        "a.b",
        "a.b.c.d",
        "!!.e30.c2ln",
        &"a".repeat(MAX_TOKEN_BYTES + 1),
    ] {
        assert_eq!(parse(bad).unwrap_err(), Rejection::Malformed);
    }
}

fn claims() -> Claims {
    Claims {
        iss: "https://login.example/tid-1/v2.0".into(),
        aud: Audience::One("api://gw".into()),
        tid: "tid-1".into(),
        exp: Some(10_000),
        nbf: Some(9_000),
        oid: Some("OID".into()),
        appid: None,
        azp: Some("APP".into()),
        roles: vec!["Gateway.Sales".into()],
    }
}

#[test]
fn claims_are_checked_in_order_with_bounded_skew() {
    let issuers = [
        "https://login.example/tid-1/v2.0".to_string(),
        "https://sts.windows.net/tid-1/".to_string(),
    ];
    let expect = Expect {
        tenant_id: "tid-1",
        audience: "api://gw",
        issuers: &issuers,
    };
    let id = check_claims(&claims(), &expect, 9_500).unwrap();
    assert_eq!(id.app_id.as_deref(), Some("app"));
    assert_eq!(id.object_id.as_deref(), Some("oid"));
    assert_eq!(id.expires_at, 10_000 + SKEW_SECS);
    let v1 = Claims {
        iss: issuers[1].clone(),
        azp: None,
        appid: Some("V1APP".into()),
        ..claims()
    };
    assert_eq!(
        check_claims(&v1, &expect, 9_500).unwrap().app_id.as_deref(),
        Some("v1app")
    );
    let cases = [
        (
            Claims {
                tid: "tid-2".into(),
                ..claims()
            },
            9_500,
            Rejection::Tenant,
        ),
        (
            Claims {
                iss: "https://evil/tid-1/v2.0".into(),
                ..claims()
            },
            9_500,
            Rejection::Issuer,
        ),
        (
            Claims {
                aud: Audience::One("api://other".into()),
                ..claims()
            },
            9_500,
            Rejection::Audience,
        ),
        (
            Claims {
                aud: Audience::None,
                ..claims()
            },
            9_500,
            Rejection::Audience,
        ),
        (claims(), 10_000 + SKEW_SECS + 1, Rejection::Expired),
        (claims(), 9_000 - SKEW_SECS - 1, Rejection::NotYetValid),
        (
            Claims {
                exp: None,
                ..claims()
            },
            9_500,
            Rejection::Malformed,
        ),
    ];
    for (c, now, want) in cases {
        assert_eq!(check_claims(&c, &expect, now).unwrap_err(), want);
    }
    assert!(check_claims(&claims(), &expect, 10_000 + SKEW_SECS).is_ok());
}

#[test]
fn jwks_keeps_rsa_signing_keys_only() {
    let body = serde_json::json!({"keys": [
        {"kty": "RSA", "use": "sig", "kid": "a", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "use": "enc", "kid": "b", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "kid": "c", "x": "AQAB"},
        {"kty": "RSA", "kid": "d", "n": "AQAB", "e": "AQAB"},
    ]});
    let keys = parse_jwks(body.to_string().as_bytes()).unwrap();
    let kids: Vec<_> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["a", "d"]);
    assert_eq!(keys[0].e, vec![1, 0, 1]);
    assert!(parse_jwks(b"nope").is_err());
}
