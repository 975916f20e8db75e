//! Natter and its NATS servers: a list of servers. A test that stops or moves a server
//! runs one of its own (`common::nats`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::TestEnv;
use common::nats::{PrivateNats, free_port};
use natter::settings::{AuthSettings, Role, ServeArgs};
use reqwest::StatusCode;

const ALL_ROLES: &[Role] = &[Role::Api, Role::Gateway, Role::Projector];

fn serve_args(roles: &[Role]) -> ServeArgs {
    ServeArgs {
        auto_rebuild: true,
        web_dir: None,
        media: Default::default(),
        listen: "127.0.0.1:0".parse().unwrap(),
        roles: roles.to_vec(),
        auth: AuthSettings {
            hash_workers: Some(1),
            ..AuthSettings::default()
        },
        gateway: Default::default(),
    }
}

#[tokio::test]
async fn natter_starts_with_a_list_of_servers_when_one_is_down_and_keeps_credentials_out_of_errors()
{
    let nats = PrivateNats::start_with(Some(("natter", "s3cret-pass"))).await;
    let env = TestEnv::on_nats(&nats.url()).await;
    let down = free_port();
    let mut settings = env.settings();
    // Both orders: the client tries the servers in random order.
    for list in [
        format!("nats://natter:s3cret-pass@127.0.0.1:{down},{}", nats.url()),
        format!("{}, nats://natter:s3cret-pass@127.0.0.1:{down}", nats.url()),
    ] {
        settings.nats_url = list;
        let app = natter::Application::build(&settings, &serve_args(ALL_ROLES))
            .await
            .unwrap();
        let address = app.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        let ready = reqwest::get(format!("http://{address}/readyz"))
            .await
            .unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    // With every server down, the error names them all, and not the password.
    let other = free_port();
    settings.nats_url = format!(
        "nats://natter:s3cret-pass@127.0.0.1:{down},nats://natter:s3cret-pass@127.0.0.1:{other}"
    );
    let error = natter::Application::build(&settings, &serve_args(&[Role::Api]))
        .await
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains(&format!("nats://127.0.0.1:{down},nats://127.0.0.1:{other}")),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}
