//! Forged and tampered access tokens are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::TestEnv;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use natter::settings::{AuthSettings, Role, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SEED: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OTHER_SEED: &str = "HxwdHhscGxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwI=";
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn ed_key(seed: &str) -> EncodingKey {
    let mut der = PKCS8_PREFIX.to_vec();
    der.extend(STANDARD.decode(seed).unwrap());
    EncodingKey::from_ed_der(&der)
}

fn public_key(seed: &str) -> Vec<u8> {
    let seed: [u8; 32] = STANDARD.decode(seed).unwrap().try_into().unwrap();
    ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes()
        .to_vec()
}

fn sign(claims: &Value, key: &EncodingKey, algorithm: Algorithm, kid: &str) -> String {
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[tokio::test]
async fn forged_tampered_and_expired_tokens_are_refused() {
    let env = TestEnv::new().await;
    let settings = AuthSettings {
        jwt_keys: Some(Secret::new(format!("k1={SEED}"))),
        ..AuthSettings::default()
    };
    let app = env
        .spawn_app_with(&[Role::Api, Role::Projector], settings)
        .await;
    let http = reqwest::Client::new();
    let registered: Value = http
        .post(app.url("/v1/users"))
        .json(&json!({"handle": "zed", "display_name": "Zed", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session: Value = http
        .post(app.url("/v1/sessions"))
        .json(&json!({"handle": "zed", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let genuine = session["access_token"].as_str().unwrap().to_owned();
    let me = |token: String| {
        let http = http.clone();
        let url = app.url("/v1/users/me");
        async move {
            let response = http.get(url).bearer_auth(token).send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body["code"].as_str().unwrap_or("").to_owned())
        }
    };
    assert_eq!(
        me(genuine.clone()).await.0,
        StatusCode::OK,
        "the genuine token works ({})",
        registered["user_id"]
    );

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": "natter", "aud": "natter-api", "sub": session["user_id"], "sid": session["session_id"],
        "sep": 0, "typ": "access", "iat": now, "exp": now + 600,
    });
    let key = ed_key(SEED);
    // Sanity: a token the test signs with the real key is accepted, so each refusal
    // below is for the one thing that changed.
    assert_eq!(
        me(sign(&claims, &key, Algorithm::EdDSA, "k1")).await.0,
        StatusCode::OK
    );

    let header_none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut attacks: Vec<(&str, String)> = vec![
        ("alg none", format!("{header_none}.{body}.")),
        (
            "another key",
            sign(&claims, &ed_key(OTHER_SEED), Algorithm::EdDSA, "k1"),
        ),
        ("unknown kid", sign(&claims, &key, Algorithm::EdDSA, "k9")),
        (
            "HS256 keyed with the public key",
            sign(
                &claims,
                &EncodingKey::from_secret(&public_key(SEED)),
                Algorithm::HS256,
                "k1",
            ),
        ),
    ];
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("someone-else");
    attacks.push((
        "wrong audience",
        sign(&wrong_aud, &key, Algorithm::EdDSA, "k1"),
    ));
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("evil");
    attacks.push((
        "wrong issuer",
        sign(&wrong_iss, &key, Algorithm::EdDSA, "k1"),
    ));
    let mut refresh_type = claims.clone();
    refresh_type["typ"] = json!("refresh");
    attacks.push((
        "wrong type",
        sign(&refresh_type, &key, Algorithm::EdDSA, "k1"),
    ));
    // Tampered: the payload of the genuine token swapped for another user's.
    let parts: Vec<&str> = genuine.split('.').collect();
    let mut tampered_claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    tampered_claims["sub"] = json!(uuid::Uuid::now_v7());
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(tampered_claims.to_string()),
        parts[2]
    );
    attacks.push(("tampered payload", tampered));
    attacks.push(("garbage", "not.a.token".into()));
    for (name, token) in attacks {
        assert_eq!(
            me(token).await,
            (StatusCode::UNAUTHORIZED, "invalid_token".into()),
            "{name}"
        );
    }

    let mut expired = claims.clone();
    expired["iat"] = json!(now - 3_600);
    expired["exp"] = json!(now - 60);
    assert_eq!(
        me(sign(&expired, &key, Algorithm::EdDSA, "k1")).await,
        (StatusCode::UNAUTHORIZED, "token_expired".into())
    );
    let missing = http.get(app.url("/v1/users/me")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = missing.json().await.unwrap();
    assert_eq!(problem["code"], "unauthenticated");
}

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_one() {
    let env = TestEnv::new().await;
    let app = env.spawn_app(&[Role::Api]).await;
    let served: Value = reqwest::get(app.url("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        served == committed,
        "the API's OpenAPI document changed: review it, then run `cargo run -- openapi > docs/openapi.json`"
    );
    assert_eq!(served["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
    let docs = reqwest::get(app.url("/docs/")).await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
}
