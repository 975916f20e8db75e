//! Operators' rebuilds against real NATS and Postgres: a read model rebuilt beside the
//! live one while the API serves and writes, a new version built at start and switched
//! in, an export replayed into an empty stream, and the read model as of a past point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::http::{Api, User};
use common::{TestEnv, eventually};
use natter::projections::{ProjectionName, ProjectionsCommand};
use natter::settings::Role;
use natter_eventlog::StoredEvent;
use natter_projections::build::{self, BuildError, BuildLock, Found, RebuildOptions, Staged};
use natter_projections::verify::{checksums, verify};
use natter_projections::{
    Chats, Decoded, Projection, ProjectionMetrics, Runner, Sessions, UserDirectory, checkpoint,
};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use tokio::sync::oneshot;

/// A group of two and `messages` messages from ann; the chat and both users.
async fn chat_with_messages(api: &Api, messages: usize) -> (String, User, User) {
    let ann = api.user("ann").await;
    let bob = api.user("bob").await;
    let chat = api.group(&[&ann, &bob]).await;
    for i in 0..messages {
        api.send(&chat, &ann, &format!("seed {i}")).await;
    }
    (chat, ann, bob)
}

/// Waits until every projection has reached the end of the log.
async fn caught_up(env: &TestEnv) {
    let last = env.log.last_sequence().await.unwrap();
    for (name, version) in natter_projections::CURRENT {
        eventually(
            Duration::from_secs(20),
            "the projections catch up",
            || async { checkpoint(&env.pool, name, *version).await.unwrap() >= last },
        )
        .await;
    }
}

async fn schemas_like(pool: &PgPool, pattern: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE $1")
        .bind(pattern)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rebuild_under_load_serves_every_request_and_ends_equal_to_a_fresh_build() {
    let env = TestEnv::new().await;
    let api = Arc::new(Api::start(&env).await);
    let (chat, ann, bob) = chat_with_messages(&api, 300).await;
    let (ann, bob) = (Arc::new(ann), Arc::new(bob));

    // Sends, edits, deletes, and reads of the chat list and the history, until stopped:
    // every answer must be a success, and no read model may ever look empty.
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn({
        let (api, chat, ann, stop, requests) = (
            Arc::clone(&api),
            chat.clone(),
            Arc::clone(&ann),
            Arc::clone(&stop),
            Arc::clone(&requests),
        );
        async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let sequence = api.send(&chat, &ann, &format!("load {i}")).await;
                let message = format!("/v1/chats/{chat}/messages/{sequence}");
                let (status, body) = match i % 3 {
                    0 => {
                        api.call(
                            Method::PATCH,
                            &message,
                            &ann,
                            Some(json!({"body": "edited"})),
                        )
                        .await
                    }
                    1 => api.call(Method::DELETE, &message, &ann, None).await,
                    _ => (StatusCode::OK, json!(null)),
                };
                assert!(status.is_success(), "{status} {body}");
                requests.fetch_add(2, Ordering::Relaxed);
                i += 1;
            }
        }
    });
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (api, chat, bob, stop, requests) = (
                Arc::clone(&api),
                chat.clone(),
                Arc::clone(&bob),
                Arc::clone(&stop),
                Arc::clone(&requests),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (status, list) = api.call(Method::GET, "/v1/chats", &bob, None).await;
                    assert_eq!(status, StatusCode::OK, "{list}");
                    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
                    assert!(list["items"][0]["unread_count"].as_u64().unwrap() >= 200);
                    let (status, page) = api
                        .call(
                            Method::GET,
                            &format!("/v1/chats/{chat}/messages?limit=20"),
                            &bob,
                            None,
                        )
                        .await;
                    assert_eq!(status, StatusCode::OK, "{page}");
                    assert_eq!(page["items"].as_array().unwrap().len(), 20, "{page}");
                    requests.fetch_add(2, Ordering::Relaxed);
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    // Two rebuilds of one read model at once: the second is refused.
    let held = BuildLock::try_take(&env.pool, &build::staging_schema::<Chats>())
        .await
        .unwrap();
    let refused = build::rebuild(
        &env.log,
        &env.pool,
        &Chats,
        RebuildOptions::manual(),
        &|_| {},
    )
    .await;
    assert!(
        matches!(refused, Err(BuildError::AlreadyRunning(_))),
        "{refused:?}"
    );
    held.release().await;

    let before = requests.load(Ordering::Relaxed);
    for name in [
        ProjectionName::Chats,
        ProjectionName::UserDirectory,
        ProjectionName::Sessions,
        ProjectionName::Media,
    ] {
        natter::projections::run(
            &env.settings(),
            ProjectionsCommand::Rebuild {
                name,
                keep_old: false,
                fresh: false,
            },
        )
        .await
        .unwrap();
    }
    let during = requests.load(Ordering::Relaxed) - before;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    for reader in readers {
        reader.await.unwrap();
    }
    assert!(
        during > 20,
        "the load ran through the rebuilds ({during} requests)"
    );

    caught_up(&env).await;
    let verified = verify(&env.log, &env.pool, &Chats, &|_| {}).await.unwrap();
    assert_eq!(verified.differences, vec![], "at sequence {}", verified.at);
    assert!(verified.at > 300, "the load was verified too");
    assert!(
        verify(&env.log, &env.pool, &UserDirectory, &|_| {})
            .await
            .unwrap()
            .differences
            .is_empty()
    );
    let status = natter_projections::status(&env.pool, &env.log)
        .await
        .unwrap();
    for status in &status.projections {
        let rebuilt = status.last_rebuild.as_ref().expect("each was rebuilt");
        assert_eq!(rebuilt.reason, "manual");
    }
    assert_eq!(
        schemas_like(&env.pool, "natter\\_%").await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn an_interrupted_rebuild_resumes_where_it_stopped_and_can_keep_the_old_tables() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (chat, ann, _) = chat_with_messages(&api, 40).await;
    caught_up(&env).await;
    let halfway = env.log.last_sequence().await.unwrap() / 2;

    // A rebuild stopped halfway leaves its staged tables and checkpoint behind.
    let staged = Staged::open::<Chats>(&env.pool, &build::staging_schema::<Chats>())
        .await
        .unwrap();
    staged
        .build_to(&env.log, &Chats, halfway, &|_| {})
        .await
        .unwrap();
    assert_eq!(staged.checkpoint::<Chats>().await.unwrap(), halfway);
    api.send(&chat, &ann, "after the interruption").await;

    let rebuilt = build::rebuild(
        &env.log,
        &env.pool,
        &Chats,
        RebuildOptions {
            keep_old: true,
            ..RebuildOptions::manual()
        },
        &|_| {},
    )
    .await
    .unwrap();
    let (resumed_from, through): (i64, i64) = sqlx::query_as(
        "SELECT resumed_from, through FROM projection_rebuilds WHERE name = 'chats'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(resumed_from as u64, halfway);
    assert_eq!(through as u64, rebuilt.through);
    let kept = rebuilt.kept.expect("the old tables are kept");
    let old_messages: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {kept}.messages_v1"))
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(old_messages >= 40, "the replaced tables hold the old rows");
    // A kept schema is not a build: nothing is built into it.
    let refused = build::build_at(&env.log, &env.pool, &Chats, &kept, 3, &|_| {}).await;
    assert!(
        matches!(refused, Err(BuildError::NotABuild(_))),
        "{refused:?}"
    );
    // Indexes keep their names across the switch, for later migrations that name them.
    let index: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('public.messages_v1_client_id')::text")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(index.as_deref(), Some("messages_v1_client_id"));
    caught_up(&env).await;
    assert!(
        verify(&env.log, &env.pool, &Chats, &|_| {})
            .await
            .unwrap()
            .differences
            .is_empty()
    );

    // A build whose tables are gone but whose checkpoint is left (a crash of old between
    // a switch and its clean-up) starts again from the first event.
    let schema = build::staging_schema::<Chats>();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::query(&format!(
        "CREATE TABLE {schema}.projection_checkpoints (LIKE public.projection_checkpoints INCLUDING ALL)"
    ))
    .execute(&env.pool)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO {schema}.projection_checkpoints (name, version, sequence) VALUES ('chats', 1, $1)"
    ))
    .bind(i64::try_from(rebuilt.through).unwrap())
    .execute(&env.pool)
    .await
    .unwrap();
    build::rebuild(
        &env.log,
        &env.pool,
        &Chats,
        RebuildOptions::manual(),
        &|_| {},
    )
    .await
    .unwrap();
    let resumed_from: i64 = sqlx::query_scalar(
        "SELECT resumed_from FROM projection_rebuilds WHERE name = 'chats' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(resumed_from, 0);
    caught_up(&env).await;
    assert!(
        verify(&env.log, &env.pool, &Chats, &|_| {})
            .await
            .unwrap()
            .differences
            .is_empty()
    );
}

/// A read model of message counts per chat, version 1: the one a deployment serves.
struct StatsV1;
/// Version 2 adds each chat's last sender, derived from the same old events.
struct StatsV2;

fn sent(stored: &StoredEvent) -> Option<(String, Option<uuid::Uuid>)> {
    (stored.envelope.event_type == "MessageSent")
        .then(|| (stored.envelope.aggregate_id.clone(), stored.envelope.actor))
}

impl Projection for StatsV1 {
    const NAME: &'static str = "chat_stats";
    const VERSION: i32 = 1;
    const KINDS: &'static [&'static str] = &["chatmsg"];
    const TABLES: &'static [&'static str] = &["chat_stats_v1"];
    type Event = (String, Option<uuid::Uuid>);

    fn decode(
        &self,
        stored: &StoredEvent,
    ) -> Result<Option<Self::Event>, natter_schema::SchemaError> {
        Ok(sent(stored))
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        events: &[Decoded<Self::Event>],
    ) -> Result<(), sqlx::Error> {
        for event in events {
            sqlx::query(
                "INSERT INTO chat_stats_v1 (chat_id, messages) VALUES ($1, 1)
                 ON CONFLICT (chat_id) DO UPDATE SET messages = chat_stats_v1.messages + 1",
            )
            .bind(&event.event.0)
            .execute(&mut *connection)
            .await?;
        }
        Ok(())
    }
}

impl Projection for StatsV2 {
    const NAME: &'static str = "chat_stats";
    const VERSION: i32 = 2;
    const KINDS: &'static [&'static str] = &["chatmsg"];
    const TABLES: &'static [&'static str] = &["chat_stats_v2"];
    type Event = (String, Option<uuid::Uuid>);

    fn decode(
        &self,
        stored: &StoredEvent,
    ) -> Result<Option<Self::Event>, natter_schema::SchemaError> {
        Ok(sent(stored))
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        events: &[Decoded<Self::Event>],
    ) -> Result<(), sqlx::Error> {
        for event in events {
            sqlx::query(
                "INSERT INTO chat_stats_v2 (chat_id, messages, last_sender) VALUES ($1, 1, $2)
                 ON CONFLICT (chat_id) DO UPDATE
                 SET messages = chat_stats_v2.messages + 1, last_sender = EXCLUDED.last_sender",
            )
            .bind(&event.event.0)
            .bind(event.event.1)
            .execute(&mut *connection)
            .await?;
        }
        Ok(())
    }
}

fn run_projection<P: Projection>(env: &TestEnv, projection: P) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    let runner = Runner::new(
        env.log.clone(),
        env.pool.clone(),
        projection,
        ProjectionMetrics::default(),
    );
    tokio::spawn(runner.run(async move {
        let _ = stopped.await;
    }));
    stop
}

#[tokio::test]
async fn a_new_version_deployed_over_the_old_is_built_beside_it_and_serves_the_new_field() {
    let env = TestEnv::new().await;
    let api = Arc::new(Api::start(&env).await);
    let (chat, ann, _) = chat_with_messages(&api, 100).await;
    let ann = Arc::new(ann);

    // Version 1 is live: its table (a migration's), its runner, and its readers.
    sqlx::query("CREATE TABLE chat_stats_v1 (chat_id text PRIMARY KEY, messages bigint NOT NULL)")
        .execute(&env.pool)
        .await
        .unwrap();
    let stop_v1 = run_projection(&env, StatsV1);
    let count_v1 = |pool: PgPool, chat: String| async move {
        sqlx::query_scalar::<_, i64>("SELECT messages FROM chat_stats_v1 WHERE chat_id = $1")
            .bind(chat)
            .fetch_optional(&pool)
            .await
            .unwrap()
    };
    eventually(Duration::from_secs(20), "version 1 is built", || {
        let (pool, chat) = (env.pool.clone(), chat.clone());
        async move { count_v1(pool, chat).await == Some(100) }
    })
    .await;

    // Sends go on throughout; the old deployment's readers always find the chat.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (api, chat, ann, stop) = (
            Arc::clone(&api),
            chat.clone(),
            Arc::clone(&ann),
            Arc::clone(&stop),
        );
        async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                api.send(&chat, &ann, &format!("during the deploy {i}"))
                    .await;
                i += 1;
            }
            i
        }
    });
    let old_reader = tokio::spawn({
        let (pool, chat, stop) = (env.pool.clone(), chat.clone(), Arc::clone(&stop));
        async move {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let count = count_v1(pool.clone(), chat.clone()).await;
                assert!(count.unwrap() >= 100);
                reads += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            reads
        }
    });

    // The deploy of version 2: its migration makes the new, empty table, which readers
    // must not be sent to until it has been built.
    sqlx::query(
        "CREATE TABLE chat_stats_v2 (chat_id text PRIMARY KEY, messages bigint NOT NULL, last_sender uuid)",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        build::found(&env.pool, "chat_stats", 2).await.unwrap(),
        Found::Outdated { live_version: 1 }
    );
    let new_reader = tokio::spawn({
        let (pool, chat, stop, ann) = (
            env.pool.clone(),
            chat.clone(),
            Arc::clone(&stop),
            ann.id.clone(),
        );
        async move {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                // Not ready while the version it reads is being built.
                if build::found(&pool, "chat_stats", 2).await.unwrap() == Found::Current {
                    let row: Option<(i64, Option<uuid::Uuid>)> = sqlx::query_as(
                        "SELECT messages, last_sender FROM chat_stats_v2 WHERE chat_id = $1",
                    )
                    .bind(&chat)
                    .fetch_optional(&pool)
                    .await
                    .unwrap();
                    let (messages, last_sender) = row.expect("never an empty read model");
                    assert!(messages >= 100);
                    assert_eq!(last_sender.unwrap().to_string(), ann);
                    reads += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            reads
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Two new processes start at once: one builds, the other waits for it.
    let (first, second) = tokio::join!(
        build::bring_up_to_date(&env.log, &env.pool, &StatsV2, true),
        build::bring_up_to_date(&env.log, &env.pool, &StatsV2, true),
    );
    first.unwrap();
    second.unwrap();
    assert_eq!(
        build::found(&env.pool, "chat_stats", 2).await.unwrap(),
        Found::Current
    );
    let stop_v2 = run_projection(&env, StatsV2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let sent_meanwhile = writer.await.unwrap();
    assert!(old_reader.await.unwrap() > 10);
    assert!(new_reader.await.unwrap() > 10, "the new version served");
    assert!(sent_meanwhile > 5);

    let last = env.log.last_sequence().await.unwrap();
    for version in [1, 2] {
        eventually(
            Duration::from_secs(20),
            "both versions catch up",
            || async { checkpoint(&env.pool, "chat_stats", version).await.unwrap() >= last },
        )
        .await;
    }
    let (v1, v2): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT messages FROM chat_stats_v1 WHERE chat_id = $1),
                (SELECT messages FROM chat_stats_v2 WHERE chat_id = $1)",
    )
    .bind(&chat)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!((v1, v2), (100 + sent_meanwhile, 100 + sent_meanwhile));
    let reason: Vec<String> =
        sqlx::query_scalar("SELECT reason FROM projection_rebuilds WHERE name = 'chat_stats'")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(reason, ["automatic"], "built once");
    assert!(
        verify(&env.log, &env.pool, &StatsV2, &|_| {})
            .await
            .unwrap()
            .differences
            .is_empty()
    );
    let _ = (stop_v1.send(()), stop_v2.send(()));
}

#[tokio::test]
async fn readiness_waits_for_a_read_model_of_this_version() {
    let env = TestEnv::new().await;
    let app = env.spawn_app(&[Role::Api]).await;
    let http = reqwest::Client::new();
    let ready = http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    // The live tables are of an older version of chats than this build's.
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, version, sequence) VALUES ('chats', 0, 10)",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let ready = http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let problem: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(problem["code"], "rebuilding", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("chats"));
}

/// Some of everything the chat read models hold.
async fn varied_history(api: &Api) -> (String, User, User) {
    let (chat, ann, bob) = chat_with_messages(api, 12).await;
    let path = |rest: &str| format!("/v1/chats/{chat}{rest}");
    let reply = api.send(&chat, &bob, "a reply").await;
    let calls = [
        (
            &bob,
            Method::PATCH,
            path(&format!("/messages/{reply}")),
            json!({"body": "an edited reply"}),
        ),
        (
            &ann,
            Method::PUT,
            path(&format!("/messages/{reply}/reaction")),
            json!({"reaction": "👍"}),
        ),
        (&ann, Method::POST, path("/read"), json!({"up_to": reply})),
    ];
    for (user, method, path, body) in calls {
        let (status, answer) = api.call(method, &path, user, Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
    }
    let doomed = api.send(&chat, &ann, "deleted for everyone").await;
    let (status, _) = api
        .call(
            Method::DELETE,
            &path(&format!("/messages/{doomed}")),
            &ann,
            None,
        )
        .await;
    assert!(status.is_success());
    // An account signed out everywhere: its sessions end by the account's epoch.
    let cid = api.user("cid").await;
    let (status, _) = api.call(Method::DELETE, "/v1/sessions", &cid, None).await;
    assert!(status.is_success());
    (chat, ann, bob)
}

#[tokio::test]
async fn an_export_replayed_into_an_empty_stream_projects_to_identical_read_models() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    varied_history(&api).await;
    caught_up(&env).await;
    let mut export = Vec::new();
    let exported = natter::events::export(
        &env.log,
        &natter::events::Filter::default(),
        &natter::events::Range::default(),
        natter::events::Format::Ndjson,
        &mut export,
    )
    .await
    .unwrap();

    let copy = TestEnv::new().await;
    let imported = natter::events::import(&copy.log, &export[..])
        .await
        .unwrap();
    assert_eq!(imported, exported);
    let again = natter::events::import(&copy.log, &export[..]).await;
    assert!(again.is_err(), "a stream with events is refused");
    let projector = copy.spawn_app(&[Role::Projector]).await;
    caught_up(&copy).await;
    projector.stop().await.unwrap();

    async fn same<P: Projection>(a: &TestEnv, b: &TestEnv) {
        let (a, b) = (
            checksums::<P>(&a.pool, "public").await.unwrap(),
            checksums::<P>(&b.pool, "public").await.unwrap(),
        );
        assert_eq!(a, b, "{}", P::NAME);
    }
    same::<Chats>(&env, &copy).await;
    same::<UserDirectory>(&env, &copy).await;
    same::<Sessions>(&env, &copy).await;
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages_v1")
        .fetch_one(&copy.pool)
        .await
        .unwrap();
    assert_eq!(messages, 14, "the copy is not empty");
}

#[tokio::test]
async fn the_read_model_at_a_past_point_is_what_the_live_one_held_then() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (chat, ann, bob) = varied_history(&api).await;
    caught_up(&env).await;
    let then = env.log.last_sequence().await.unwrap();
    let held_then = checksums::<Chats>(&env.pool, "public").await.unwrap();
    let (_, list_then) = api.call(Method::GET, "/v1/chats", &bob, None).await;
    // The moment the last event then was stored, by the server's clock.
    let moment = env.log.event_at(then).await.unwrap().unwrap().stored_at;

    // Life goes on: more messages, an edit, a deletion, a reaction.
    for i in 0..5 {
        api.send(&chat, &ann, &format!("later {i}")).await;
    }
    let late = api.send(&chat, &bob, "later still").await;
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/v1/chats/{chat}/messages/{late}"),
            &bob,
            None,
        )
        .await;
    assert!(status.is_success());
    caught_up(&env).await;
    assert_ne!(
        checksums::<Chats>(&env.pool, "public").await.unwrap(),
        held_then
    );

    for (at_seq, at_time, into) in [
        (Some(then), None, "as_of_seq"),
        (None, Some(moment), "as_of_time"),
    ] {
        natter::projections::run(
            &env.settings(),
            ProjectionsCommand::Build {
                name: ProjectionName::Chats,
                at_seq,
                at_time,
                into: into.to_owned(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            checksums::<Chats>(&env.pool, into).await.unwrap(),
            held_then,
            "{into}"
        );
    }
    // What bob's chat list showed then, from the past read model.
    let unread_then: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM as_of_seq.messages_v1 x
         JOIN as_of_seq.chat_members_v1 m ON m.chat_id = x.chat_id AND m.user_id::text = $2
         WHERE x.chat_id::text = $1 AND x.sequence > GREATEST(m.read_up_to, m.joined_sequence)
           AND x.sender <> m.user_id AND NOT x.deleted",
    )
    .bind(&chat)
    .bind(&bob.id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        list_then["items"][0]["unread_count"].as_i64().unwrap(),
        unread_then
    );

    // A schema already past the point asked for, and a schema name that is not ours.
    let ahead = build::build_at(&env.log, &env.pool, &Chats, "as_of_seq", 3, &|_| {}).await;
    assert!(
        matches!(ahead, Err(BuildError::SchemaAhead { .. })),
        "{ahead:?}"
    );
    let public = build::build_at(&env.log, &env.pool, &Chats, "public", 3, &|_| {}).await;
    assert!(
        matches!(public, Err(BuildError::BadSchema(_))),
        "{public:?}"
    );
}

#[tokio::test]
async fn the_admin_api_shows_each_read_model_behind_a_token_of_its_own() {
    let env = TestEnv::new().await;
    let token = "an operators' token of forty characters!";
    let auth = natter::settings::AuthSettings {
        admin_token: Some(natter::settings::Secret::new(token)),
        ..Default::default()
    };
    let app = env
        .spawn_app_with(&[Role::Api, Role::Projector], auth)
        .await;
    let http = reqwest::Client::new();
    let status = |bearer: Option<&str>| {
        let mut request = http.get(app.url("/v1/admin/projections"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        async move {
            let response = request.send().await.unwrap();
            (
                response.status(),
                response.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    for wrong in [None, Some("not the token"), Some(&token[1..])] {
        let (code, problem) = status(wrong).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{problem}");
        assert_eq!(problem["code"], "invalid_admin_token");
    }
    caught_up(&env).await;
    build::rebuild(
        &env.log,
        &env.pool,
        &Sessions,
        RebuildOptions::manual(),
        &|_| {},
    )
    .await
    .unwrap();
    let (code, body) = status(Some(token)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let projections = body["projections"].as_array().unwrap();
    assert_eq!(
        projections.len(),
        natter_projections::CURRENT.len(),
        "{body}"
    );
    for projection in projections {
        assert_eq!(projection["current"], true);
        assert!(
            projection["lag"].as_u64().is_some() && projection["checkpoint"].as_u64().is_some()
        );
        let rebuilt = &projection["last_rebuild"];
        assert_eq!(
            rebuilt.is_null(),
            projection["name"] != "sessions",
            "{projection}"
        );
    }

    // Without a token configured, the admin API is off.
    let plain = env.spawn_app(&[Role::Api]).await;
    let response = http
        .get(plain.url("/v1/admin/projections"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "admin_disabled");
}
