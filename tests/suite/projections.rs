//! The projection runner and the user directory against real JetStream and Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestEnv, eventually};
use futures::TryStreamExt;
use natter_domain::user::{About, ChangeProfile, DisplayName, UserEvent};
use natter_eventlog::{Start, StoredEvent};
use natter_projections::{
    Chats, Decoded, Projection, ProjectionMetrics, Runner, UserDirectory, apply_batch, checkpoint,
    decode_all,
};
use natter_schema::Metadata;
use sqlx::{PgPool, Row};
use uuid::Uuid;

type Rows = Vec<(Uuid, String, String, String, i64, Option<Uuid>)>;

async fn rows(pool: &PgPool) -> Rows {
    sqlx::query("SELECT user_id, handle, display_name, about, last_sequence, photo_media_id FROM user_directory_v1 ORDER BY user_id")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

/// Registers `users` accounts, renames every third one and gives every fifth a photo;
/// returns what the directory must hold: handle and display name by id.
async fn seed(env: &TestEnv, users: usize) -> BTreeMap<Uuid, (String, String)> {
    let commands = common::accounts(&env.log);
    let mut expected = BTreeMap::new();
    for i in 0..users {
        let handle = format!("user_{i}");
        let id = common::register_named(&commands, &handle, &format!("User {i}"))
            .await
            .user_id;
        expected.insert(id, (handle, format!("User {i}")));
    }
    let ids: Vec<Uuid> = expected.keys().copied().collect();
    for (n, id) in ids.iter().enumerate().filter(|(n, _)| n % 3 == 0) {
        let renamed = format!("Renamed {n}");
        commands
            .change_profile(
                *id,
                ChangeProfile {
                    display_name: Some(DisplayName::parse(&renamed).unwrap()),
                    about: Some(About::parse("hello").unwrap()),
                },
                Metadata::new(None, Uuid::now_v7()),
            )
            .await
            .unwrap();
        expected.get_mut(id).unwrap().1 = renamed;
    }
    for id in ids.iter().step_by(5) {
        commands
            .change_photo(
                *id,
                Some(Uuid::now_v7()),
                Metadata::new(None, Uuid::now_v7()),
            )
            .await
            .unwrap();
    }
    expected
}

fn assert_matches(rows: &Rows, expected: &BTreeMap<Uuid, (String, String)>) {
    assert_eq!(rows.len(), expected.len());
    for (id, handle, name, _, _, _) in rows {
        assert_eq!(
            expected.get(id),
            Some(&(handle.clone(), name.clone())),
            "row of {id}"
        );
    }
}

/// Every event of the log that the user directory reads, decoded.
async fn all_events(env: &TestEnv) -> Vec<Decoded<UserEvent>> {
    let stored: Vec<StoredEvent> = env
        .log
        .read(Start::Sequence(1))
        .try_collect()
        .await
        .unwrap();
    decode_all(&UserDirectory, &stored).unwrap()
}

/// A runner of the directory, in a task of its own until stopped.
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), natter_projections::RunnerError>>,
}

impl Running {
    fn start(env: &TestEnv, max_batch: usize) -> Self {
        Self::reporting_to(env, max_batch, ProjectionMetrics::default())
    }

    fn reporting_to(env: &TestEnv, max_batch: usize, metrics: ProjectionMetrics) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runner = Runner::new(env.log.clone(), env.pool.clone(), UserDirectory, metrics)
            .with_max_batch(max_batch);
        let task = tokio::spawn(runner.run(async move {
            let _ = stopped.await;
        }));
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// Waits until the directory's checkpoint reaches `sequence`.
async fn caught_up(env: &TestEnv, sequence: u64) {
    eventually(
        Duration::from_secs(30),
        "the projection to catch up",
        || async {
            checkpoint(&env.pool, UserDirectory::NAME, UserDirectory::VERSION)
                .await
                .unwrap()
                >= sequence
        },
    )
    .await;
}

/// Runs the projection until it has applied the whole log, then stops it.
async fn run_to_end(env: &TestEnv, max_batch: usize) {
    let last = env.log.last_sequence().await.unwrap();
    let running = Running::start(env, max_batch);
    caught_up(env, last).await;
    running.stop().await;
}

#[tokio::test]
async fn the_runner_builds_the_directory_and_acknowledges_after_commit() {
    let env = TestEnv::new().await;
    let expected = seed(&env, 60).await;
    run_to_end(&env, 7).await;
    assert_matches(&rows(&env.pool).await, &expected);
    let last = env.log.last_sequence().await.unwrap();
    let stream = env.log.jetstream().get_stream(&env.stream).await.unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer(
            &natter_projections::consumer_name::<natter_projections::UserDirectory>(&env.pool)
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(
        info.ack_floor.stream_sequence, last,
        "every applied event acknowledged"
    );
}

#[tokio::test]
async fn applying_every_event_twice_changes_nothing() {
    let env = TestEnv::new().await;
    let expected = seed(&env, 40).await;
    let events = all_events(&env).await;
    let last = env.log.last_sequence().await.unwrap();
    let applied = apply_batch(&env.pool, &UserDirectory, &events, 0, last)
        .await
        .unwrap();
    assert_eq!(applied, events.len() as u64);
    let once = rows(&env.pool).await;
    assert_matches(&once, &expected);

    // Through the runner's path: everything is at or below the checkpoint, so skipped.
    for event in &events {
        let again = apply_batch(
            &env.pool,
            &UserDirectory,
            std::slice::from_ref(event),
            last,
            event.sequence,
        )
        .await
        .unwrap();
        assert_eq!(again, 0);
    }
    // And the projection itself, bypassing the checkpoint, one by one and as a batch.
    let mut tx = env.pool.begin().await.unwrap();
    for event in &events {
        UserDirectory
            .apply(&mut tx, std::slice::from_ref(event))
            .await
            .unwrap();
    }
    UserDirectory.apply(&mut tx, &events).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(rows(&env.pool).await, once);
}

#[tokio::test]
async fn a_worker_killed_at_any_point_resumes_to_the_same_rows() {
    let env = TestEnv::new().await;
    let expected = seed(&env, 150).await;
    let events = all_events(&env).await;
    let last = env.log.last_sequence().await.unwrap();

    // Committed but never acknowledged: a crash between commit and ack.
    let half = &events[..events.len() / 2];
    apply_batch(
        &env.pool,
        &UserDirectory,
        half,
        0,
        half.last().unwrap().sequence,
    )
    .await
    .unwrap();

    // Killed (the task dropped mid-flight) a few times, at different moments.
    for delay_ms in [5u64, 20, 60] {
        let runner = Runner::new(
            env.log.clone(),
            env.pool.clone(),
            UserDirectory,
            ProjectionMetrics::default(),
        )
        .with_max_batch(5);
        let task = tokio::spawn(runner.run(std::future::pending()));
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        task.abort();
        let _ = task.await;
        let at = checkpoint(&env.pool, UserDirectory::NAME, UserDirectory::VERSION)
            .await
            .unwrap();
        assert!(at >= half.last().unwrap().sequence && at <= last);
    }
    run_to_end(&env, 5).await;
    assert_matches(&rows(&env.pool).await, &expected);
}

#[tokio::test]
async fn rebuilding_from_the_first_event_gives_the_same_rows() {
    let env = TestEnv::new().await;
    let expected = seed(&env, 50).await;
    run_to_end(&env, 1_000).await;
    let live = rows(&env.pool).await;
    assert_matches(&live, &expected);

    natter_projections::reset(&env.pool, &UserDirectory)
        .await
        .unwrap();
    assert!(rows(&env.pool).await.is_empty());
    assert_eq!(
        checkpoint(&env.pool, UserDirectory::NAME, UserDirectory::VERSION)
            .await
            .unwrap(),
        0
    );
    run_to_end(&env, 3).await;
    assert_eq!(rows(&env.pool).await, live);
}

#[tokio::test]
async fn status_shows_checkpoint_and_lag_in_the_library_and_the_cli() {
    let env = TestEnv::new().await;
    seed(&env, 10).await;
    let events = all_events(&env).await;
    let last = env.log.last_sequence().await.unwrap();
    apply_batch(
        &env.pool,
        &UserDirectory,
        &events[..4],
        0,
        events[3].sequence,
    )
    .await
    .unwrap();

    let at = events[3].sequence;
    let status = natter_projections::status(&env.pool, &env.log)
        .await
        .unwrap();
    assert_eq!(status.log_end, last);
    let statuses = status.projections;
    assert_eq!(statuses.len(), 1);
    assert_eq!((statuses[0].checkpoint, statuses[0].lag), (at, last - at));

    let settings = env.settings();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["projections", "status", "--json"])
        .env("NATTER_NATS_URL", &settings.nats_url)
        .env("NATTER_DATABASE_URL", settings.database_url.expose())
        .env("NATTER_STREAM", &settings.stream)
        .env("NATTER_SUBJECT_PREFIX", &settings.subject_prefix)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["log_end"], last);
    let json = &json["projections"];
    assert_eq!(json[0]["name"], "user_directory");
    assert_eq!(json[0]["checkpoint"], at);
    assert_eq!(json[0]["lag"], last - at);
    assert_eq!(json[0]["last_rebuild"], serde_json::Value::Null);
}

/// A delivery lost on its way (as when a cluster node dies with a pull request's
/// messages in flight) must not be skipped. Here another client takes some of the
/// projection's deliveries off its own durable consumer and never acknowledges them:
/// the runner sees later sequences first. Before, it applied them and acknowledged
/// past the missing ones (`AckPolicy::All`), which were then gone from the read model
/// for good while the checkpoint said otherwise.
#[tokio::test]
async fn deliveries_lost_on_their_way_are_never_skipped() {
    let env = TestEnv::new().await;
    let mut expected = seed(&env, 3).await;
    run_to_end(&env, 1).await;
    let running = Running::start(&env, 1);
    let name = natter_projections::consumer_name::<UserDirectory>(&env.pool)
        .await
        .unwrap();
    let stream = env.log.jetstream().get_stream(&env.stream).await.unwrap();
    // The runner's consumer of this life (recreated at start).
    let consumer: async_nats::jetstream::consumer::PullConsumer = loop {
        if let Ok(info) = stream.consumer_info(&name).await
            && info.num_waiting > 0
        {
            break stream.get_consumer(&name).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let commands = common::accounts(&env.log);
    let mut stolen = 0;
    for round in 0..20 {
        // A pull request of the interloper's, waiting beside the runner's.
        let mut taken = consumer
            .batch()
            .max_messages(3)
            .expires(Duration::from_millis(1_500))
            .messages()
            .await
            .unwrap();
        for i in 0..6 {
            let handle = format!("late_{round}_{i}");
            let id = common::register_named(&commands, &handle, &handle)
                .await
                .user_id;
            expected.insert(id, (handle.clone(), handle));
        }
        while let Ok(Some(message)) = taken.try_next().await {
            // Taken, and never acknowledged.
            drop(message);
            stolen += 1;
        }
        if stolen > 0 {
            break;
        }
    }
    assert!(
        stolen > 0,
        "the interloper never got a delivery: nothing was tested"
    );
    caught_up(&env, env.log.last_sequence().await.unwrap()).await;
    running.stop().await;
    assert_matches(&rows(&env.pool).await, &expected);
}

/// A runner whose lock connection dropped has lost the lock (Postgres let it go with the
/// session), and another may hold it now: it must write nothing until it has the lock
/// again. Before, it went on applying through the pool as if it still held it.
#[tokio::test]
async fn a_runner_that_lost_its_lock_writes_nothing_until_it_has_it_again() {
    use sqlx::Connection as _;
    let env = TestEnv::new().await;
    let mut expected = seed(&env, 3).await;
    let running = Running::start(&env, 2_000);
    caught_up(&env, env.log.last_sequence().await.unwrap()).await;

    // The lock's connection dies, and someone else takes the lock at once.
    let holder: i32 = sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let mut other = sqlx::PgConnection::connect(&env.database_url)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(holder)
        .execute(&mut other)
        .await
        .unwrap();
    let key = format!(
        "natter.projection.{}.v{}",
        UserDirectory::NAME,
        UserDirectory::VERSION
    );
    // Postgres lets the lock go once the killed backend has gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(&key)
            .fetch_one(&mut other)
            .await
            .unwrap();
        if taken {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the killed session kept the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let commands = common::accounts(&env.log);
    for i in 0..5 {
        let handle = format!("while_locked_{i}");
        let id = common::register_named(&commands, &handle, &handle)
            .await
            .user_id;
        expected.insert(id, (handle.clone(), handle));
    }
    let last = env.log.last_sequence().await.unwrap();
    // Nothing to wait for here but time: the runner must not write in it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        checkpoint(&env.pool, UserDirectory::NAME, UserDirectory::VERSION)
            .await
            .unwrap()
            < last,
        "the runner wrote while another held its lock"
    );

    // The other lets go: the runner takes the lock again and catches up.
    other.close().await.unwrap();
    caught_up(&env, last).await;
    running.stop().await;
    assert_matches(&rows(&env.pool).await, &expected);
}

/// An event of the directory's kinds that this build cannot read (a type a newer build
/// added) stops the projection there: nothing after it is applied, the checkpoint stays
/// before it, and `natter_projection_stalled_at` names it. Before, it was skipped (and
/// logged), and the checkpoint moved on past it.
#[tokio::test]
async fn an_event_the_projection_cannot_read_stops_it_there() {
    let env = TestEnv::new().await;
    let expected = seed(&env, 2).await;
    run_to_end(&env, 100).await;
    let id = expected.keys().next().unwrap().to_string();
    let newer = common::raw_event(
        &env.log,
        "user",
        &id,
        "NicknameChosen",
        serde_json::json!({"nickname": "x"}),
    );
    let at = env.log.append(&[newer]).await.unwrap().last_sequence();
    // A registration after it, which must wait behind it.
    common::register_named(&common::accounts(&env.log), "after_it", "After it").await;

    let metrics = ProjectionMetrics::default();
    let running = Running::reporting_to(&env, 100, metrics.clone());
    let label = vec![(
        "projection",
        format!("{}_v{}", UserDirectory::NAME, UserDirectory::VERSION),
    )];
    eventually(
        Duration::from_secs(30),
        "the projection to stall",
        || async { metrics.stalled_at.get_or_create(&label).get() == i64::try_from(at).unwrap() },
    )
    .await;
    assert_eq!(
        checkpoint(&env.pool, UserDirectory::NAME, UserDirectory::VERSION)
            .await
            .unwrap(),
        at - 1
    );
    assert_matches(&rows(&env.pool).await, &expected);
    // Operators see it where they look: `natter projections status` (and `/readyz`,
    // which reads the same record).
    let status = natter_projections::status(&env.pool, &env.log)
        .await
        .unwrap();
    let directory = status
        .projections
        .iter()
        .find(|p| p.name == UserDirectory::NAME)
        .unwrap();
    let stall = directory.stalled.as_ref().expect("the stall is recorded");
    assert_eq!(stall.sequence, at);
    assert!(stall.reason.contains("NicknameChosen"), "{}", stall.reason);
    let stalled = natter_projections::stalled(&env.pool).await.unwrap();
    assert_eq!(stalled.len(), 1);
    running.stop().await;
}

/// A log made anew under the same name (a NATS store wiped) starts its sequences again:
/// a read model built from the old one stops, says why, and keeps its checkpoint, instead
/// of reading on from that checkpoint in the new log and skipping everything before it.
/// A rebuild then builds it from the new log.
#[tokio::test]
async fn a_log_made_anew_stops_a_read_model_built_from_the_old_one() {
    let env = TestEnv::new().await;
    seed(&env, 5).await;
    run_to_end(&env, 100).await;
    let before = checkpoint(&env.pool, UserDirectory::NAME, UserDirectory::VERSION)
        .await
        .unwrap();
    assert!(before > 0);

    // The store is wiped: the same stream, empty, made again; and a new user in it.
    env.log
        .jetstream()
        .delete_stream(&env.stream)
        .await
        .unwrap();
    env.log.ensure_stream().await.unwrap();
    common::register_named(&common::accounts(&env.log), "anew", "Anew").await;

    let running = Running::start(&env, 100);
    eventually(
        Duration::from_secs(30),
        "the stall to be recorded",
        || async {
            !natter_projections::stalled(&env.pool)
                .await
                .unwrap()
                .is_empty()
        },
    )
    .await;
    running.stop().await;
    let (_, _, at, reason) = natter_projections::stalled(&env.pool)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(at, before);
    assert!(reason.contains("made anew"), "{reason}");
    assert_eq!(
        checkpoint(&env.pool, UserDirectory::NAME, UserDirectory::VERSION)
            .await
            .unwrap(),
        before
    );

    // Rebuilt from the first event of the new log, it runs on.
    natter_projections::reset(&env.pool, &UserDirectory)
        .await
        .unwrap();
    run_to_end(&env, 100).await;
    let names: Vec<String> = rows(&env.pool).await.into_iter().map(|row| row.1).collect();
    assert_eq!(names, ["anew"]);
    assert!(
        natter_projections::stalled(&env.pool)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Projection commits are asynchronous, so a Postgres crash can take the last ones back
/// while the consumer has read on past them. A writer that finds the checkpoint behind
/// what it committed must not apply on (that would leave a hole below the new
/// checkpoint for good, as the fault suite saw after an immediate Postgres restart: nine
/// acknowledged messages missing); it reads again from the database's checkpoint.
#[tokio::test]
async fn a_batch_is_refused_when_the_checkpoint_lost_a_commit() {
    let env = TestEnv::new().await;
    seed(&env, 6).await;
    let events = all_events(&env).await;
    let (first, rest) = events.split_at(3);
    let through = first.last().unwrap().sequence;
    apply_batch(&env.pool, &UserDirectory, first, 0, through)
        .await
        .unwrap();
    // The database loses that commit: the checkpoint goes back to where it was.
    sqlx::query("UPDATE projection_checkpoints SET sequence = 0 WHERE name = $1")
        .bind(UserDirectory::NAME)
        .execute(&env.pool)
        .await
        .unwrap();
    let last = rest.last().unwrap().sequence;
    let refused = apply_batch(&env.pool, &UserDirectory, rest, through, last)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            natter_projections::ApplyError::CheckpointBehind {
                found: 0,
                expected
            } if expected == through
        ),
        "{refused}"
    );
    assert_eq!(
        checkpoint(&env.pool, UserDirectory::NAME, UserDirectory::VERSION)
            .await
            .unwrap(),
        0
    );
}

/// A projection's consumer delivers only the projection's kinds: a directory of users
/// never takes a chat's events off the wire. Its checkpoint still follows the log over
/// them, so that a consistency token from any command resolves on it.
/// `n` events of `kind` no projection reads (each of a new aggregate).
fn others(env: &TestEnv, kind: &str, n: usize) -> Vec<natter_eventlog::NewEvent> {
    (0..n)
        .map(|_| {
            let id = Uuid::now_v7().to_string();
            common::raw_event(
                &env.log,
                kind,
                &id,
                "NoProjectionsConcern",
                serde_json::json!({}),
            )
        })
        .collect()
}

/// How many events of `kinds` the log holds after sequence `from`.
async fn events_since(env: &TestEnv, from: u64, kinds: &[&str]) -> u64 {
    let events: Vec<StoredEvent> = env
        .log
        .read(Start::Sequence(from + 1))
        .try_collect()
        .await
        .unwrap();
    let of_kinds = events.iter().filter(|event| {
        env.log
            .kind_of(&event.subject)
            .is_some_and(|kind| kinds.contains(&kind))
    });
    u64::try_from(of_kinds.count()).unwrap()
}

#[tokio::test]
async fn the_chats_projection_catches_up_on_the_whole_log_then_takes_only_its_kinds() {
    use natter_domain::chat::{ClientId, MessageBody};
    let env = TestEnv::new().await;
    let accounts = common::accounts(&env.log);
    let (ann, bob) = (
        common::register(&accounts, "ann").await,
        common::register(&accounts, "bob").await,
    );
    let metrics = natter_commands::CommandMetrics::default();
    let metadata = || Metadata::new(Some(ann), Uuid::now_v7());
    let chat = natter_commands::chats::Chats::new(env.log.clone(), metrics.clone())
        .open_direct(ann, bob, metadata())
        .await
        .unwrap()
        .chat_id;
    let messages = natter_commands::messages::Messages::new(env.log.clone(), metrics);
    let send = |n: usize| {
        let messages = &messages;
        async move {
            let message = natter_commands::messages::NewMessage {
                client_id: ClientId::parse(&format!("m{n}")).unwrap(),
                body: MessageBody::parse(&format!("message {n}")).unwrap(),
                reply_to: None,
                mentions: Vec::new(),
                forwarded: 0,
                attachment: None,
            };
            messages.send(chat, ann, message, metadata()).await.unwrap();
        }
    };
    // A backlog of 30 messages among 300 events of no projection's.
    for n in 0..30 {
        send(n).await;
        env.log.append(&others(&env, "other", 10)).await.unwrap();
    }
    let stored = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM messages_v1 WHERE chat_id = $1")
            .bind(chat)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let at_end = |through: u64| {
        let pool = env.pool.clone();
        async move {
            checkpoint(&pool, Chats::NAME, Chats::VERSION)
                .await
                .unwrap()
                >= through
        }
    };

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = Runner::new(
        env.log.clone(),
        env.pool.clone(),
        Chats,
        ProjectionMetrics::default(),
    )
    .with_max_batch(25)
    .with_whole_log_from(50);
    let task = tokio::spawn(runner.run(async move {
        let _ = stopped.await;
    }));
    let last = env.log.last_sequence().await.unwrap();
    eventually(Duration::from_secs(30), "the backlog applied", || {
        at_end(last)
    })
    .await;
    assert_eq!(stored(env.pool.clone()).await, 30);

    // Caught up, its consumer takes the chats' kinds only.
    let name = natter_projections::consumer_name::<Chats>(&env.pool)
        .await
        .unwrap();
    let stream = env.log.jetstream().get_stream(&env.stream).await.unwrap();
    let kinds: Vec<String> = Chats::KINDS.iter().map(|k| env.log.events_of(k)).collect();
    eventually(
        Duration::from_secs(10),
        "a consumer of the chats' kinds",
        || {
            let (stream, name, kinds) = (stream.clone(), name.clone(), kinds.clone());
            async move {
                let info = stream.consumer_info(&name).await.unwrap();
                info.config.filter_subjects == kinds
            }
        },
    )
    .await;
    // Live, others' events are not delivered to it. (What a new consumer says it last
    // delivered differs between one server and a cluster: count from the log's end.)
    let from = env.log.last_sequence().await.unwrap();
    let before = stream.consumer_info(&name).await.unwrap().delivered;
    env.log.append(&others(&env, "other", 100)).await.unwrap();
    send(30).await;
    let last = env.log.last_sequence().await.unwrap();
    eventually(Duration::from_secs(30), "the live message applied", || {
        at_end(last)
    })
    .await;
    assert_eq!(stored(env.pool.clone()).await, 31);
    let chats_since = events_since(&env, from, Chats::KINDS).await;
    let after = stream.consumer_info(&name).await.unwrap().delivered;
    assert!(chats_since > 0);
    assert_eq!(
        after.consumer_sequence - before.consumer_sequence,
        chats_since,
        "delivered: the chats' events since, none of the 100 others"
    );
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_projection_takes_only_its_kinds_and_its_checkpoint_follows_the_log() {
    let env = TestEnv::new().await;
    let mut expected = seed(&env, 3).await;
    run_to_end(&env, 100).await;
    let from = checkpoint(&env.pool, UserDirectory::NAME, UserDirectory::VERSION)
        .await
        .unwrap();
    let running = Running::start(&env, 100);
    env.log.append(&others(&env, "chat", 40)).await.unwrap();
    let commands = common::accounts(&env.log);
    let id = common::register_named(&commands, "among_others", "Among others")
        .await
        .user_id;
    expected.insert(id, ("among_others".into(), "Among others".into()));
    let last = env
        .log
        .append(&others(&env, "chat", 40))
        .await
        .unwrap()
        .last_sequence();

    // No event of the directory's after the registration: the checkpoint gets to the
    // end of the log all the same.
    caught_up(&env, last).await;
    assert_matches(&rows(&env.pool).await, &expected);
    let users_since = events_since(&env, from, UserDirectory::KINDS).await;
    let name = natter_projections::consumer_name::<UserDirectory>(&env.pool)
        .await
        .unwrap();
    let stream = env.log.jetstream().get_stream(&env.stream).await.unwrap();
    let info = stream.consumer_info(&name).await.unwrap();
    assert!(users_since > 0);
    assert_eq!(
        info.delivered.consumer_sequence,
        users_since,
        "the consumer delivered the users' events since {from}, and no other ({} in all)",
        last - from
    );
    running.stop().await;
}
