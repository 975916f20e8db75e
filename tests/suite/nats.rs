//! Natter and its NATS servers: a list of servers, a server that restarts (killed or
//! stopped, with its store or a fresh one), a bucket deleted under a running app, and
//! what is missed while disconnected. A test that stops or moves a server runs one of
//! its own (`common::nats`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::http::{User, call, group, sign_up_as};
use common::nats::{PrivateCluster, PrivateNats, free_port};
use common::{TestApp, TestEnv, eventually};
use natter::settings::{AuthSettings, Role, ServeArgs};
use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ALL_ROLES: &[Role] = &[Role::Api, Role::Gateway, Role::Projector];

fn serve_args(roles: &[Role]) -> ServeArgs {
    ServeArgs {
        push: Default::default(),
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

async fn status(http: &reqwest::Client, app: &TestApp, path: &str, token: Option<&str>) -> u16 {
    let mut request = http.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// Waits for `/readyz` to answer `expected`, noting every answer on the way.
async fn readiness_becomes(
    http: &reqwest::Client,
    app: &TestApp,
    expected: u16,
    seen: &mut Vec<u16>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = status(http, app, "/readyz", None).await;
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        if now == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never answered {expected}; answers: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
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

#[tokio::test]
async fn after_nats_restarts_presence_answers_again_and_readiness_waits_for_the_stream_and_buckets()
{
    let mut nats = PrivateNats::start().await;
    let env = TestEnv::on_nats(&nats.url()).await;
    let app = env.spawn_app_serving(serve_args(ALL_ROLES)).await;
    let http = reqwest::Client::new();
    let (User { id: ann, token }, _) = sign_up_as(&http, &app, "ann").await;
    let presence = format!("/v1/users/{ann}/presence");
    eventually(Duration::from_secs(10), "Ann in the directory", || async {
        status(&http, &app, &presence, Some(&token)).await == 200
    })
    .await;
    let mut readiness = Vec::new();
    readiness_becomes(&http, &app, 200, &mut readiness).await;

    let url = nats.url();
    let js = || async { async_nats::jetstream::new(common::connect(&url).await.unwrap()) };
    let bucket = format!("{}_presence", env.stream);

    // Killed, and started again with its store: the stream is there, the presence
    // bucket (kept in memory) is not, until the app makes it again.
    nats.kill().await;
    readiness_becomes(&http, &app, 503, &mut readiness).await;
    nats.start_again().await;
    readiness_becomes(&http, &app, 200, &mut readiness).await;
    assert_eq!(readiness, [200, 503, 200]);
    js().await.get_key_value(&bucket).await.unwrap();
    assert_eq!(status(&http, &app, &presence, Some(&token)).await, 200);
    // The projections still follow the log.
    let (User { id: bob, .. }, _) = sign_up_as(&http, &app, "bob").await;
    eventually(Duration::from_secs(10), "Bob in the directory", || async {
        let path = format!("/v1/users/{bob}/presence");
        status(&http, &app, &path, Some(&token)).await == 200
    })
    .await;

    // Stopped, and started again with a fresh store: the stream and the bucket are gone
    // until the app makes them again. The log is a new one, whose sequences start again:
    // the read models built from the old one stop (instead of reading on from their
    // checkpoints), and readiness says so until they are rebuilt.
    nats.stop().await;
    readiness_becomes(&http, &app, 503, &mut readiness).await;
    nats.wipe();
    nats.start_again().await;
    eventually(
        Duration::from_secs(30),
        "readiness to name the stall",
        || async {
            let answer = http.get(app.url("/readyz")).send().await;
            let Ok(answer) = answer else { return false };
            let problem: Value = answer.json().await.unwrap_or(Value::Null);
            problem["code"] == "projection_stalled"
        },
    )
    .await;
    let js = js().await;
    js.get_stream(&env.stream).await.unwrap();
    js.get_key_value(&bucket).await.unwrap();
    assert_eq!(status(&http, &app, &presence, Some(&token)).await, 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_presence_bucket_deleted_under_a_running_app_is_made_again_on_use() {
    let env = TestEnv::new().await;
    let presence = natter_access::presence::Presence::open(&env.log)
        .await
        .unwrap();
    let user = uuid::Uuid::now_v7();
    let bucket = format!("{}_presence", env.stream);
    env.log.jetstream().delete_key_value(&bucket).await.unwrap();
    assert!(!presence.is_online(user).await.unwrap());
    env.log.jetstream().delete_key_value(&bucket).await.unwrap();
    presence.mark(user, "g1").await.unwrap();
    assert!(presence.is_online(user).await.unwrap());
    env.log.jetstream().delete_key_value(&bucket).await.unwrap();
    presence.clear(user, "g1").await.unwrap();
    assert!(!presence.is_online(user).await.unwrap());
    env.log.jetstream().delete_key_value(&bucket).await.unwrap();
}

#[tokio::test]
async fn a_session_revoked_while_natter_was_disconnected_is_refused_within_a_second_of_reconnecting()
 {
    let mut nats = PrivateNats::start().await;
    let env = TestEnv::on_nats(&nats.url()).await;
    let app = env
        .spawn_app_serving(serve_args(&[Role::Api, Role::Projector]))
        .await;
    let http = reqwest::Client::new();
    let (User { id: ann, token }, session) = sign_up_as(&http, &app, "ann").await;
    eventually(Duration::from_secs(10), "Ann's profile", || async {
        status(&http, &app, "/v1/users/me", Some(&token)).await == 200
    })
    .await;

    // The server goes away; it comes back on another port, where the app does not look,
    // and another process ends Ann's session there.
    nats.stop().await;
    let mut readiness = Vec::new();
    readiness_becomes(&http, &app, 503, &mut readiness).await;
    let elsewhere = free_port();
    nats.start_on(elsewhere).await;
    let other_process = common::open_log_on(
        &format!("nats://127.0.0.1:{elsewhere}"),
        &env.stream,
        &env.prefix,
    )
    .await;
    common::accounts(&other_process)
        .end_session(
            ann.parse().unwrap(),
            session.parse().unwrap(),
            natter_domain::session::RevokeReason::Revoked,
            natter_schema::Metadata::new(ann.parse().ok(), uuid::Uuid::now_v7()),
        )
        .await
        .unwrap();
    drop(other_process);
    nats.stop().await;
    assert_eq!(status(&http, &app, "/v1/users/me", Some(&token)).await, 200);

    // Back where the app looks: once it is ready again, the token is refused within a
    // second.
    nats.start_again().await;
    readiness_becomes(&http, &app, 200, &mut readiness).await;
    let reconnected = std::time::Instant::now();
    loop {
        let now = status(&http, &app, "/v1/users/me", Some(&token)).await;
        if now == 401 {
            break;
        }
        assert!(
            reconnected.elapsed() < Duration::from_secs(1),
            "still accepted a second after reconnecting ({now})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_send_the_log_does_not_confirm_answers_outcome_unknown_and_its_retry_is_stored_once() {
    let mut nats = PrivateNats::start().await;
    let env = TestEnv::on_nats(&nats.url()).await;
    let mut settings = env.settings();
    settings.nats_ack_timeout_ms = 300;
    let app = env.spawn_app_as(&settings, serve_args(ALL_ROLES)).await;
    let http = reqwest::Client::new();
    let (ann, _) = sign_up_as(&http, &app, "ann").await;
    let (bo, _) = sign_up_as(&http, &app, "bob").await;
    let chat = group(&http, &app, &[&ann, &bo]).await;
    let path = format!("/v1/chats/{chat}/messages");
    let send = json!({"client_id": "frozen-1", "body": "are you there?"});
    common::http::send(&http, &app, &chat, &ann, "hello").await;

    // The server takes the send and never answers: stored or not, nobody can tell yet.
    nats.pause().await;
    let answer = http
        .post(app.url(&path))
        .bearer_auth(&ann.token)
        .json(&send)
        .send()
        .await
        .unwrap();
    nats.resume().await;
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.headers().contains_key("retry-after"));
    let problem: Value = answer.json().await.unwrap();
    assert_eq!(problem["code"], "outcome_unknown", "{problem}");

    // The client retries with the same client id, as told: one message, whatever the
    // frozen server did with the attempts it held.
    let (status, stored) = call(&http, &app, Method::POST, &path, &ann, Some(send)).await;
    assert!(status.is_success(), "{status} {stored}");
    let sequence = stored["sequence"].as_u64().unwrap();
    let (_, history) = call(
        &http,
        &app,
        Method::GET,
        &format!("{path}?min_sequence={sequence}"),
        &bo,
        None,
    )
    .await;
    let bodies: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|message| message["body"].as_str())
        .collect();
    assert_eq!(bodies, ["hello", "are you there?"], "{history}");
    nats.kill().await;
}

#[tokio::test]
async fn an_append_that_landed_unconfirmed_is_found_not_doubled_or_refused() {
    let mut nats = PrivateNats::start().await;
    let env = TestEnv::on_nats(&nats.url()).await;
    let mut config = natter_eventlog::LogConfig::new(&env.stream, &env.prefix);
    config.ack_timeout = Duration::from_millis(300);
    let client = common::connect(&nats.url()).await.unwrap();
    let log = natter_eventlog::EventLog::open(client, config)
        .await
        .unwrap();
    let event = natter_eventlog::NewEvent {
        subject: log.subject("thing", "t1"),
        expected_sequence: Some(0),
        expected_subject: None,
        dedupe_id: None,
        envelope: natter_schema::Envelope {
            event_id: uuid::Uuid::now_v7(),
            event_type: "TestEvent".into(),
            schema_version: 1,
            aggregate_type: "thing".into(),
            aggregate_id: "t1".into(),
            actor: None,
            occurred_at: time::OffsetDateTime::now_utc(),
            correlation_id: uuid::Uuid::now_v7(),
            causation_id: None,
            payload: json!({"n": 1}),
        },
    };
    // The first attempt reaches a frozen server and times out; the server then stores
    // it, and the retry, guarded by the same expectation, conflicts with it.
    nats.pause().await;
    let append = tokio::spawn({
        let log = log.clone();
        let event = event.clone();
        async move { log.append(&[event]).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.resume().await;
    let appended = append.await.unwrap().unwrap();
    assert_eq!(appended.sequences, vec![1]);
    assert!(appended.duplicate);
    assert_eq!(log.last_sequence().await.unwrap(), 1);
    nats.kill().await;
}

/// The bodies of the (at most 100) messages of `chat` once the read model has reached
/// `last`, sorted.
async fn stored_bodies(
    http: &reqwest::Client,
    app: &TestApp,
    chat: &str,
    reader: &User,
    last: u64,
) -> Vec<String> {
    let path = format!("/v1/chats/{chat}/messages?min_sequence={last}&limit=100");
    let (status, history) = call(http, app, Method::GET, &path, reader, None).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let mut bodies: Vec<String> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["body"].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    bodies
}

/// Sends `count` messages to `chat` at once, each from one of `senders` in turn, and a
/// third of them twice at once with the same client id (a retry racing its original).
/// Every answer must be a success: a conflict of concurrent writers is the server's to
/// settle. The bodies, in the order sent.
async fn send_at_once(app: &TestApp, chat: &str, senders: &[&User], count: usize) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut sends = tokio::task::JoinSet::new();
    let mut bodies = Vec::new();
    for n in 0..count {
        let body = format!("m{n}");
        bodies.push(body.clone());
        let request = http
            .post(app.url(&format!("/v1/chats/{chat}/messages")))
            .bearer_auth(&senders[n % senders.len()].token)
            .json(&json!({"client_id": format!("c{n}"), "body": body}));
        let copies = if n % 3 == 0 { 2 } else { 1 };
        for _ in 0..copies {
            let request = request.try_clone().unwrap();
            sends.spawn(async move {
                let answer = request.send().await.unwrap();
                let status = answer.status();
                (status, answer.text().await.unwrap())
            });
        }
    }
    while let Some(answer) = sends.join_next().await {
        let (status, text) = answer.unwrap();
        assert!(status.is_success(), "{status}: {text}");
    }
    bodies
}

#[tokio::test]
async fn on_a_three_node_cluster_simultaneous_sends_to_one_group_all_land_once() {
    let cluster = PrivateCluster::start().await;
    let env = TestEnv::on_cluster(&cluster.url()).await;
    let app = env.spawn_app_serving(serve_args(ALL_ROLES)).await;
    let http = reqwest::Client::new();
    let (ann, _) = sign_up_as(&http, &app, "ann").await;
    let (bob, _) = sign_up_as(&http, &app, "bob").await;
    let (cy, _) = sign_up_as(&http, &app, "cyd").await;
    let chat = group(&http, &app, &[&ann, &bob, &cy]).await;

    let mut sent = send_at_once(&app, &chat, &[&ann, &bob, &cy], 60).await;

    let last = env.log.last_sequence().await.unwrap();
    let stored = stored_bodies(&http, &app, &chat, &bob, last).await;
    sent.sort();
    assert_eq!(stored, sent, "every send once");
}

/// Sends `count` numbered messages to `chat` one after another, retrying each with its
/// client id on a 503 or a broken connection, as a client is told to.
async fn send_retrying(app_url: String, token: String, chat: String, tag: &str, count: usize) {
    let http = reqwest::Client::new();
    for n in 0..count {
        let body = json!({"client_id": format!("{tag}-{n}"), "body": format!("{tag}-{n}")});
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let answer = http
                .post(format!("{app_url}/v1/chats/{chat}/messages"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            match answer {
                Ok(answer) if answer.status().is_success() => break,
                Ok(answer) if answer.status() == StatusCode::SERVICE_UNAVAILABLE => {}
                Ok(answer) => panic!("{}: {}", answer.status(), answer.text().await.unwrap()),
                Err(_) => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{tag}-{n} never stored"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The name of the node leading this test's stream, once it has one.
async fn stream_leader(env: &TestEnv) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut stream) = env.log.jetstream().get_stream(&env.stream).await
            && let Ok(info) = stream.info().await
            && let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone())
        {
            return leader;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream has no leader"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn on_a_cluster_a_killed_stream_leader_loses_and_doubles_nothing_and_the_read_model_verifies()
{
    let mut cluster = PrivateCluster::start().await;
    let env = TestEnv::on_cluster(&cluster.url()).await;
    let app = env.spawn_app_serving(serve_args(ALL_ROLES)).await;
    let http = reqwest::Client::new();
    let (ann, _) = sign_up_as(&http, &app, "ann").await;
    let (bob, _) = sign_up_as(&http, &app, "bob").await;
    let chat = group(&http, &app, &[&ann, &bob]).await;

    let writers: Vec<_> = [("a", &ann), ("b", &bob)]
        .into_iter()
        .map(|(tag, user)| {
            tokio::spawn(send_retrying(
                app.url(""),
                user.token.clone(),
                chat.clone(),
                tag,
                45,
            ))
        })
        .collect();
    // Kill the stream's leader under load, then a second node once the first is back.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let node = cluster.index_of(&stream_leader(&env).await);
        cluster.kill(node).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.start_again(node).await;
    }
    for writer in writers {
        writer.await.unwrap();
    }

    // The cluster may still be electing after the last restart.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let last = loop {
        match env.log.last_sequence().await {
            Ok(last) => break last,
            Err(error) => assert!(tokio::time::Instant::now() < deadline, "{error}"),
        }
    };
    let stored = stored_bodies(&http, &app, &chat, &bob, last).await;
    let mut sent: Vec<String> = (0..45)
        .flat_map(|n| [format!("a-{n}"), format!("b-{n}")])
        .collect();
    sent.sort();
    assert_eq!(stored, sent, "every send once");
    let verified = natter_projections::verify::verify(
        &env.log,
        &env.pool,
        &natter_projections::chats::Chats,
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(verified.differences, vec![], "at {}", verified.at);
}
