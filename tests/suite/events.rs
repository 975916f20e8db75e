//! `natter events` against a real log: export, stats and tail, and an export loaded
//! into DuckDB as an analyst would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestEnv;
use common::http::Api;
use natter::events::{Filter, Format, Range, export, stats, tail};
use reqwest::Method;
use serde_json::{Value, json};

/// Two signed-in users (their registrations carry password hashes, their sessions
/// refresh-token hashes), a group and five messages; the group's id and its creator.
async fn history(api: &Api) -> (String, common::http::User) {
    let ann = api.user("ann").await;
    let bob = api.user("bob").await;
    let chat = api.group(&[&ann, &bob]).await;
    for i in 0..5 {
        api.send(&chat, &ann, &format!("message {i}")).await;
    }
    (chat, ann)
}

async fn exported(env: &TestEnv, filter: &Filter, range: &Range) -> Vec<Value> {
    let mut out = Vec::new();
    let written = export(&env.log, filter, range, Format::Ndjson, &mut out)
        .await
        .unwrap();
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, written);
    lines
}

#[tokio::test]
async fn an_export_has_every_event_in_order_with_stable_fields_and_no_secret_hashes() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (chat, _) = history(&api).await;
    // A device's push subscription: its endpoint and keys let whoever holds them push.
    let (device, session) = common::http::sign_up_as(&api.http, &api.app, "pushed").await;
    let key = format!("BA{}", "A".repeat(85));
    let subscription = natter_domain::push::PushSubscription::parse(
        "https://push.example.com/secret-endpoint",
        &key,
        "AAAAAAAAAAAAAAAAAAAAAA",
    )
    .unwrap();
    common::accounts(&env.log)
        .subscribe_push(
            device.id.parse().unwrap(),
            session.parse().unwrap(),
            subscription,
            true,
            natter_schema::Metadata::new(None, uuid::Uuid::now_v7()),
        )
        .await
        .unwrap();
    let last = env.log.last_sequence().await.unwrap();

    let all = exported(&env, &Filter::default(), &Range::default()).await;
    assert_eq!(all.len() as u64, last, "one line per stored event");
    let sequences: Vec<u64> = all
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=last).collect::<Vec<_>>());
    for field in [
        "event_id",
        "type",
        "schema_version",
        "actor",
        "aggregate_type",
        "aggregate_id",
        "occurred_at",
        "stored_at",
        "correlation_id",
        "payload",
    ] {
        assert!(
            all.iter().all(|e| e.get(field).is_some()),
            "{field} in every line"
        );
    }
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("$argon2"), "no password hash leaves the log");
    let registration = all.iter().find(|e| e["type"] == "UserRegistered").unwrap();
    assert_eq!(registration["payload"]["password_hash"], "[redacted]");
    let session = all.iter().find(|e| e["type"] == "SessionOpened").unwrap();
    assert_eq!(session["payload"]["refresh_hash"], "[redacted]");
    assert!(
        !text.contains("secret-endpoint"),
        "no push endpoint leaves the log"
    );
    let pushed = all.iter().find(|e| e["type"] == "PushSubscribed").unwrap();
    for field in ["endpoint", "p256dh", "auth"] {
        assert_eq!(pushed["payload"]["subscription"][field], "[redacted]");
    }

    // One chat's events, a type, an actor, and a stretch of sequences.
    let in_chat = exported(
        &env,
        &Filter {
            chat: Some(chat.parse().unwrap()),
            ..Filter::default()
        },
        &Range::default(),
    )
    .await;
    assert!(in_chat.iter().all(|e| e["aggregate_id"] == chat.as_str()));
    assert_eq!(
        in_chat
            .iter()
            .filter(|e| e["type"] == "MessageSent")
            .count(),
        5
    );
    let sent = Filter {
        types: vec!["MessageSent".into()],
        ..Filter::default()
    };
    let messages = exported(&env, &sent, &Range::default()).await;
    assert_eq!(messages.len(), 5);
    let second = messages[1]["sequence"].as_u64().unwrap();
    let fourth = messages[3]["sequence"].as_u64().unwrap();
    let middle = exported(
        &env,
        &sent,
        &Range {
            from_seq: Some(second),
            to_seq: Some(fourth),
            ..Range::default()
        },
    )
    .await;
    assert_eq!(middle.len(), 3);
    let by_actor = exported(
        &env,
        &Filter {
            actor: messages[0]["actor"].as_str().map(|a| a.parse().unwrap()),
            types: vec!["MessageSent".into()],
            ..Filter::default()
        },
        &Range::default(),
    )
    .await;
    assert_eq!(by_actor.len(), 5);

    // Bad input is refused before anything is read.
    let bad = Filter {
        aggregate: Some("chat:".into()),
        ..Filter::default()
    };
    assert!(
        export(
            &env.log,
            &bad,
            &Range::default(),
            Format::Ndjson,
            &mut Vec::new()
        )
        .await
        .is_err()
    );

    let counted = stats(&env.log, &Filter::default(), &Range::default())
        .await
        .unwrap();
    assert_eq!(counted.total, last);
    assert_eq!(counted.by_type["MessageSent"], 5);
    assert_eq!(counted.by_day.values().sum::<u64>(), last);
}

/// Runs a DuckDB query (from the PyPI package) and returns its one row, space-separated.
fn duckdb(query: &str) -> String {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/venv/bin/python");
    let script = format!("import duckdb; print(*duckdb.sql(\"{query}\").fetchone())");
    let output = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .expect("DuckDB is not installed in .tools/venv; run scripts/deps.sh");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn an_export_loads_into_duckdb_with_the_counts_expected() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (chat, ann) = history(&api).await;
    let last = env.log.last_sequence().await.unwrap();
    for format in [Format::Ndjson, Format::Parquet] {
        let mut out = Vec::new();
        export(
            &env.log,
            &Filter::default(),
            &Range::default(),
            format,
            &mut out,
        )
        .await
        .unwrap();
        let file = std::env::temp_dir().join(format!("natter-export-{}-{format:?}", env.prefix));
        std::fs::write(&file, out).unwrap();
        let table = match format {
            Format::Ndjson => format!(
                "read_json_auto('{}', format = 'newline_delimited')",
                file.display()
            ),
            Format::Parquet => format!("read_parquet('{}')", file.display()),
        };
        let counts = duckdb(&format!(
            "select count(*), count(*) filter (where type = 'MessageSent'), max(sequence), \
             count(distinct aggregate_id) filter (where aggregate_type = 'chatmsg'), \
             count(*) filter (where type = 'MessageSent' and actor::text = '{}' \
                                   and aggregate_id = '{chat}' and occurred_at <= stored_at) \
             from {table}",
            ann.id
        ));
        assert_eq!(counts, format!("{last} 5 {last} 1 5"), "{format:?}");
        if format == Format::Parquet {
            // Typed columns: timestamps are timestamps, the payload is JSON.
            let typed = duckdb(&format!(
                "select min(typeof(stored_at)), count(*) filter (where json_extract_string(payload, '$.body') = 'message 0') from {table}"
            ));
            assert_eq!(typed, "TIMESTAMP WITH TIME ZONE 1");
        }
        let _ = std::fs::remove_file(&file);
    }
}

/// A writer the test can read while `tail` writes to it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tail_prints_matching_events_as_they_are_stored() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (chat, ann) = history(&api).await;
    let out = Shared::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let log = env.second_log().await;
    let filter = Filter {
        types: vec!["MessageSent".into()],
        ..Filter::default()
    };
    let mut writer = out.clone();
    let follower = tokio::spawn(async move {
        tail(&log, &filter, &mut writer, async {
            let _ = stopped.await;
        })
        .await
    });
    let printed = |out: &Shared| -> Vec<Value> {
        String::from_utf8(out.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    // Sends until one shows up: the tail subscribes in its own task.
    let mut sent = Vec::new();
    for i in 0..50 {
        let (_, message) = api
            .call(
                Method::POST,
                &format!("/v1/chats/{chat}/messages"),
                &ann,
                Some(json!({"client_id": format!("live-{i}"), "body": "live"})),
            )
            .await;
        sent.push(message["sequence"].as_u64().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
        if printed(&out)
            .iter()
            .any(|e| e["sequence"] == *sent.last().unwrap())
        {
            break;
        }
    }
    let lines = printed(&out);
    assert!(!lines.is_empty(), "the tail printed the live messages");
    assert!(lines.iter().all(|e| e["type"] == "MessageSent"));
    let tailed: Vec<u64> = lines
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(
        tailed,
        sent[sent.len() - tailed.len()..],
        "in order, none missed once on"
    );
    let _ = stop.send(());
    follower.await.unwrap().unwrap();
}

/// The dev and test server's read-only user (scripts/nats.conf.tmpl).
fn analyst_nats_url() -> String {
    std::env::var("NATTER_TEST_NATS_ANALYST_URL")
        .unwrap_or_else(|_| "nats://analyst:analyst-read-only@127.0.0.1:4333".into())
}

#[tokio::test]
async fn analysts_read_follow_and_rebuild_from_the_log_as_a_read_only_nats_user() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (chat, ann) = history(&api).await;
    let mut settings = env.settings();
    settings.nats_url = analyst_nats_url();
    let log = natter::app::open_log_read_only(&settings).await.unwrap();
    let last = env.log.last_sequence().await.unwrap();

    let mut out = Vec::new();
    let written = export(
        &log,
        &Filter::default(),
        &Range::default(),
        Format::Ndjson,
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(written, last);
    let counted = stats(&log, &Filter::default(), &Range::default())
        .await
        .unwrap();
    assert_eq!(serde_json::to_value(&counted).unwrap()["total"], last);

    // Following the log live needs only subscriptions.
    let out = Shared::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let follower = tokio::spawn({
        let (log, mut writer) = (log.clone(), out.clone());
        async move {
            tail(&log, &Filter::default(), &mut writer, async {
                let _ = stopped.await;
            })
            .await
        }
    });
    for i in 0..50 {
        api.call(
            Method::POST,
            &format!("/v1/chats/{chat}/messages"),
            &ann,
            Some(json!({"client_id": format!("ro-{i}"), "body": "read me"})),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !out.0.lock().unwrap().is_empty() {
            break;
        }
    }
    assert!(
        !out.0.lock().unwrap().is_empty(),
        "the tail saw live events"
    );
    let _ = stop.send(());
    follower.await.unwrap().unwrap();

    // Operators' builds read the log the same way.
    natter::projections::run(
        &settings,
        natter::projections::ProjectionsCommand::Build {
            name: natter::projections::ProjectionName::Chats,
            at_seq: Some(last),
            at_time: None,
            into: "analysis".into(),
        },
    )
    .await
    .unwrap();
    let built: i64 = sqlx::query_scalar(
        "SELECT sequence FROM analysis.projection_checkpoints WHERE name = 'chats'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(built as u64, last);
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM analysis.messages_v1")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(messages, 5);

    // And the user can change nothing: neither append nor create a stream.
    let before = env.log.last_sequence().await.unwrap();
    let envelope = natter_schema::Envelope {
        event_id: uuid::Uuid::now_v7(),
        event_type: "MessageSent".into(),
        schema_version: 2,
        aggregate_type: "chatmsg".into(),
        aggregate_id: chat.clone(),
        actor: None,
        occurred_at: time::OffsetDateTime::now_utc(),
        correlation_id: uuid::Uuid::now_v7(),
        causation_id: None,
        payload: json!({}),
    };
    let appended = log
        .append(&[natter_eventlog::NewEvent {
            subject: log.subject("chatmsg", &chat),
            expected_sequence: None,
            expected_subject: None,
            dedupe_id: None,
            envelope,
        }])
        .await;
    assert!(appended.is_err(), "an analyst cannot append");
    let url = natter_eventlog::NatsUrl::parse(&analyst_nats_url());
    let client = url.options().connect(url.address()).await.unwrap();
    let created = natter_eventlog::EventLog::open(
        client,
        natter_eventlog::LogConfig::new(format!("ANALYST_{}", env.stream), "analysttry"),
    )
    .await;
    assert!(created.is_err(), "an analyst cannot create a stream");
    assert!(
        env.log
            .jetstream()
            .get_stream(format!("ANALYST_{}", env.stream))
            .await
            .is_err(),
        "no stream was created"
    );
    assert_eq!(
        env.log.last_sequence().await.unwrap(),
        before,
        "nothing was stored"
    );
}
