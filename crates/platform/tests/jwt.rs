//! Bearer-token authentication against hostile and malformed tokens. Keys in tests/fixtures are
//! test-only.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::{HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use trialops_platform::AppError;
use trialops_platform::identity::auth::{Authenticator, JwtAuthenticator, Role};

const PRIVATE: &[u8] = include_bytes!("fixtures/jwt-test-private.pem");
const PUBLIC: &[u8] = include_bytes!("fixtures/jwt-test-public.pem");
const OTHER_PRIVATE: &[u8] = include_bytes!("fixtures/jwt-other-private.pem");
const ISSUER: &str = "https://idp.hospital.test";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn authenticator() -> JwtAuthenticator {
    let key = DecodingKey::from_ec_pem(PUBLIC).unwrap();
    JwtAuthenticator::new(key, Algorithm::ES256, ISSUER, "trialops", 30)
}

fn token_with(key: &[u8], claims: serde_json::Value) -> String {
    let key = EncodingKey::from_ec_pem(key).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap()
}

fn claims(f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> serde_json::Value {
    let mut c = serde_json::json!({
        "sub": "coordinator-17", "role": "site_coordinator", "site": "COG-101",
        "iss": ISSUER, "aud": "trialops", "exp": now() + 600, "nbf": now() - 5,
    });
    if let Some(map) = c.as_object_mut() {
        f(map);
    }
    c
}

fn check(token: &str) -> Result<trialops_platform::identity::auth::Principal, String> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    authenticator().authenticate(&headers).map_err(|e| match e {
        AppError::Unauthenticated(m) => m,
        other => panic!("not UNAUTHENTICATED: {other}"),
    })
}

#[test]
fn a_valid_token_names_the_principal() {
    let p = check(&token_with(PRIVATE, claims(|_| {}))).unwrap();
    assert_eq!(
        (p.subject.as_str(), p.role, p.site.as_deref()),
        ("coordinator-17", Role::SiteCoordinator, Some("COG-101"))
    );
    // 10 s past expiry is within the 30 s leeway.
    assert!(
        check(&token_with(
            PRIVATE,
            claims(|c| {
                c.insert("exp".into(), (now() - 10).into());
            })
        ))
        .is_ok()
    );
}

#[test]
fn hostile_tokens_are_refused_with_a_reason() {
    let cases: Vec<(&str, String)> = vec![
        (
            "the token has expired",
            token_with(
                PRIVATE,
                claims(|c| {
                    c.insert("exp".into(), (now() - 120).into());
                }),
            ),
        ),
        (
            "the token is not valid yet",
            token_with(
                PRIVATE,
                claims(|c| {
                    c.insert("nbf".into(), (now() + 600).into());
                }),
            ),
        ),
        (
            "the token's signature does not verify",
            token_with(OTHER_PRIVATE, claims(|_| {})),
        ),
        (
            "the token's issuer is not trusted",
            token_with(
                PRIVATE,
                claims(|c| {
                    c.insert("iss".into(), "https://evil.test".into());
                }),
            ),
        ),
        (
            "the token is not for trialops",
            token_with(
                PRIVATE,
                claims(|c| {
                    c.insert("aud".into(), "billing".into());
                }),
            ),
        ),
        (
            "unknown role \"superuser\"",
            token_with(
                PRIVATE,
                claims(|c| {
                    c.insert("role".into(), "superuser".into());
                }),
            ),
        ),
        (
            "the token is not valid",
            token_with(
                PRIVATE,
                claims(|c| {
                    c.remove("exp");
                }),
            ),
        ),
        ("the token is not valid", "not.a.token".to_owned()),
    ];
    for (expected, token) in cases {
        assert_eq!(check(&token).err().as_deref(), Some(expected));
    }
    // An HS256 token signed with the public key's bytes (algorithm confusion) is refused.
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(|_| {}),
        &EncodingKey::from_secret(PUBLIC),
    )
    .unwrap();
    assert!(check(&forged).is_err());
}

#[test]
fn credentials_must_be_a_bearer_token() {
    let auth = authenticator();
    assert!(matches!(
        auth.authenticate(&HeaderMap::new()),
        Err(AppError::Unauthenticated(_))
    ));
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("Basic dXNlcjpwYXNz"));
    assert!(matches!(auth.authenticate(&headers), Err(AppError::Unauthenticated(_))));
}

#[test]
fn a_jwks_file_verifies_rotated_keys_by_kid() {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    let jwk = |private: &[u8], kid: &str| {
        let key = EncodingKey::from_ec_pem(private).unwrap();
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        jwk
    };
    let set = JwkSet {
        keys: vec![jwk(PRIVATE, "current"), jwk(OTHER_PRIVATE, "next")],
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, serde_json::to_vec(&set).unwrap()).unwrap();
    let settings = trialops_platform::Settings {
        auth_mode: trialops_platform::config::settings::AuthMode::Jwt,
        jwt_key_file: Some(file),
        jwt_issuer: Some(ISSUER.to_owned()),
        ..trialops_platform::Settings::default()
    };
    let auth = trialops_platform::identity::auth::from_settings(&settings).unwrap();
    let signed = |private: &[u8], kid: Option<&str>| {
        let key = EncodingKey::from_ec_pem(private).unwrap();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims(|_| {}), &key).unwrap()
    };
    let verify = |token: String| {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        headers.insert("authorization", value);
        auth.authenticate(&headers).map_err(|e| e.to_string())
    };
    assert!(verify(signed(PRIVATE, Some("current"))).is_ok());
    assert!(verify(signed(OTHER_PRIVATE, Some("next"))).is_ok(), "the rotated key");
    let forged = verify(signed(PRIVATE, Some("next"))).err().unwrap_or_default();
    assert!(forged.contains("signature"), "{forged}");
    for token in [signed(PRIVATE, Some("retired")), signed(PRIVATE, None)] {
        let unknown = verify(token).err().unwrap_or_default();
        assert!(unknown.contains("kid"), "{unknown}");
    }
}

#[test]
fn critical_extensions_and_two_credentials_are_refused() {
    // A "crit" header naming an extension (RFC 7515 4.1.11): refused, though otherwise valid.
    let key = EncodingKey::from_ec_pem(PRIVATE).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.crit = Some(vec!["exp-extension".into()]);
    let critical = jsonwebtoken::encode(&header, &claims(|_| {}), &key).unwrap();
    let refused = check(&critical).err().unwrap_or_default();
    assert!(refused.contains("crit"), "{refused}");

    // Two authorization headers, each valid alone: ambiguous, refused.
    let valid = token_with(PRIVATE, claims(|_| {}));
    let mut headers = HeaderMap::new();
    for _ in 0..2 {
        headers.append(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {valid}")).unwrap(),
        );
    }
    let two = authenticator().authenticate(&headers).err().map(|e| e.to_string());
    assert!(
        two.as_deref()
            .is_some_and(|m| m.contains("more than one authorization header")),
        "{two:?}"
    );
}
