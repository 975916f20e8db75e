//! The whole application through real HTTP on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::{TestEnv, eventually};
use natter::settings::Role;

const ALL_ROLES: &[Role] = &[Role::Api, Role::Gateway, Role::Projector];

#[tokio::test]
async fn health_readiness_and_unknown_paths() {
    let env = TestEnv::new().await;
    let app = env.spawn_app(ALL_ROLES).await;
    let http = reqwest::Client::new();
    let health = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    let missing = http.get(app.url("/v1/nothing-here")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(problem["code"], "not_found");
    assert_eq!(problem["status"], 404);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_shutdown_does_not_wait_for_a_media_sweep_waiting_on_a_stalled_read_model() {
    let env = TestEnv::new().await;
    // An event of a newer build stops the directory there; the media sweep, which first
    // waits (up to a minute) for the read models to reach the log's end, waits on it.
    let id = uuid::Uuid::now_v7().to_string();
    let newer = common::raw_event(
        &env.log,
        "user",
        &id,
        "NicknameChosen",
        serde_json::json!({"nickname": "x"}),
    );
    env.log.append(&[newer]).await.unwrap();
    let app = env.spawn_app(&[Role::Projector]).await;
    // The first sweep starts at once, and is waiting by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the app stops without waiting for the sweep")
        .unwrap();
}

#[tokio::test]
async fn not_ready_until_migrations_are_applied() {
    let env = TestEnv::with_migrations(false).await;
    let app = env.spawn_app(&[Role::Api]).await;
    let http = reqwest::Client::new();
    let ready = http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(problem["code"], "unavailable");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("natter migrate")
    );

    natter_schema::MIGRATOR.run(&env.pool).await.unwrap();
    let ready = http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_registration_reaches_the_directory_and_the_metrics() {
    let env = TestEnv::new().await;
    let settings = env.settings();
    let serve = natter::settings::ServeArgs {
        push: Default::default(),
        auto_rebuild: true,
        web_dir: None,
        media: Default::default(),
        listen: "127.0.0.1:0".parse().unwrap(),
        roles: ALL_ROLES.to_vec(),
        auth: natter::settings::AuthSettings::default(),
        gateway: natter::settings::GatewaySettings::default(),
    };
    let app = natter::Application::build(&settings, &serve).await.unwrap();
    let users = app.accounts().clone();
    let address = app.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));

    let executed = common::register_named(&users, "zoe", "Zoë").await;
    let id = executed.user_id;
    eventually(Duration::from_secs(10), "the directory row", || async {
        sqlx::query_scalar::<_, String>(
            "SELECT display_name FROM user_directory_v1 WHERE user_id = $1",
        )
        .bind(id)
        .fetch_optional(&env.pool)
        .await
        .unwrap()
        .is_some_and(|name| name == "Zoë")
    })
    .await;
    let checkpoint = natter_projections::checkpoint(&env.pool, "user_directory", 1)
        .await
        .unwrap();
    assert!(checkpoint >= executed.last_sequence);

    let metrics = reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    for name in [
        "natter_append_latency_seconds_count 1",
        "natter_append_conflicts_total 0",
        "natter_projection_events_applied_total{projection=\"user_directory_v1\"} 1",
        "natter_projection_lag_events{projection=\"user_directory_v1\"} 0",
    ] {
        assert!(text.contains(name), "metrics lack {name:?}:\n{text}");
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_binary_refuses_an_unreachable_nats_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["projections", "status"])
        .env("NATTER_NATS_URL", format!("nats://127.0.0.1:{port}"))
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("connecting to NATS"), "{stderr}");
}
