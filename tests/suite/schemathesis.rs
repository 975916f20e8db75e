//! Schemathesis (PyPI) against the served OpenAPI document: generated requests for every
//! operation, no 5xx, and every response as the document says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::TestEnv;
use natter::settings::{AuthSettings, Role};
use serde_json::{Value, json};

/// Not the password in the document's examples, which schemathesis sends as they are.
const PASSWORD: &str = "schemathesis only secret";

#[tokio::test]
async fn generated_requests_get_documented_answers_and_no_server_error() {
    let env = TestEnv::new().await;
    let app = env
        .spawn_app_with(&[Role::Api, Role::Projector], AuthSettings::default())
        .await;
    let http = reqwest::Client::new();
    let registered = http
        .post(app.url("/v1/users"))
        .json(&json!({"handle": "schema_user", "display_name": "Schema", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let session: Value = http
        .post(app.url("/v1/sessions"))
        .json(&json!({"handle": "schema_user", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["access_token"].as_str().unwrap().to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/schemathesis.sh");
    let base = app.url("");
    // Signing out (here or everywhere) and deleting the account would end the session that the rest of the
    // run uses; both are tested in tests/auth.rs. Schemathesis cannot generate a body of
    // tus's `application/offset+octet-stream`; the tus PATCH is tested in tests/media.rs.
    let output = tokio::process::Command::new("bash")
        .args([script, base.trim_end_matches('/'), &token, "--"])
        .args([
            "--exclude-operation-id",
            "logout",
            "--exclude-operation-id",
            "sign_out_everywhere",
            "--exclude-operation-id",
            "delete_account",
            "--exclude-operation-id",
            "append",
        ])
        .env("NATTER_SCHEMATHESIS_MAX_EXAMPLES", "15")
        .env("NATTER_SCHEMATHESIS_DEADLINE", "240")
        .output()
        .await
        .expect("bash runs scripts/schemathesis.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The summary, for the test log.
    let tail: Vec<&str> = stdout.lines().rev().take(20).collect();
    eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}"
    );
    app.stop().await.unwrap();
}
