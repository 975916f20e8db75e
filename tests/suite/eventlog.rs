//! The event log against a real JetStream server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::TestEnv;
use futures::TryStreamExt;
use natter_eventlog::{AppendErrorKind, EventLog, LogConfig, LogError, NewEvent, Start};
use natter_schema::Envelope;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

fn envelope(kind: &str, id: &str, n: u64) -> Envelope {
    Envelope {
        event_id: Uuid::now_v7(),
        event_type: "TestEvent".into(),
        schema_version: 1,
        aggregate_type: kind.into(),
        aggregate_id: id.into(),
        actor: None,
        occurred_at: OffsetDateTime::now_utc(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        payload: json!({ "n": n }),
    }
}

fn event(log: &EventLog, id: &str, expected: Option<u64>, n: u64) -> NewEvent {
    NewEvent {
        subject: log.subject("thing", id),
        expected_sequence: expected,
        expected_subject: None,
        dedupe_id: None,
        envelope: envelope("thing", id, n),
    }
}

#[tokio::test]
async fn concurrent_appends_to_one_aggregate_have_one_winner_per_sequence() {
    let env = TestEnv::new().await;
    let writers = 8;
    let mut logs = Vec::new();
    for _ in 0..writers {
        logs.push(env.second_log().await);
    }
    let rounds = 10;
    let mut expected = 0;
    for round in 0..rounds {
        let mut tasks = tokio::task::JoinSet::new();
        for (w, log) in logs.iter().enumerate() {
            let log = log.clone();
            tasks.spawn(async move {
                log.append(&[event(
                    &log,
                    "contended",
                    Some(expected),
                    round * 100 + w as u64,
                )])
                .await
            });
        }
        let mut winners = Vec::new();
        while let Some(result) = tasks.join_next().await {
            match result.unwrap() {
                Ok(appended) => winners.push(appended.last_sequence()),
                Err(error) => assert_eq!(error.kind(), AppendErrorKind::Conflict),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one writer wins");
        expected = winners[0];
    }
    let stored = env
        .log
        .load(&env.log.subject("thing", "contended"), 0)
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        rounds as usize,
        "one event per round, no repeat"
    );
    let sequences: Vec<u64> = stored.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=rounds).collect::<Vec<_>>(), "no gap");
}

#[tokio::test]
async fn a_guarded_append_made_twice_is_stored_once_and_the_second_conflicts() {
    let env = TestEnv::new().await;
    let first = event(&env.log, "dup", Some(0), 1);
    let stored = env.log.append(std::slice::from_ref(&first)).await.unwrap();
    assert!(!stored.duplicate);
    // A second call is a new decision on an old state: a conflict, to be decided again.
    // (Only an append of its own that went unconfirmed does an append look for.)
    let again = env
        .log
        .append(std::slice::from_ref(&first))
        .await
        .unwrap_err();
    assert_eq!(again.kind(), AppendErrorKind::Conflict);
    assert_eq!(env.log.last_sequence().await.unwrap(), 1);
}

#[tokio::test]
async fn a_batch_is_stored_whole_with_each_sequence_reported() {
    let env = TestEnv::new().await;
    env.log
        .append(&[event(&env.log, "other", None, 0)])
        .await
        .unwrap();
    let batch = vec![
        event(&env.log, "a", Some(0), 1),
        event(&env.log, "b", Some(0), 2),
        event(&env.log, "a", None, 3),
    ];
    let appended = env.log.append(&batch).await.unwrap();
    assert_eq!(appended.sequences, vec![2, 3, 4]);
    let a = env
        .log
        .load(&env.log.subject("thing", "a"), 0)
        .await
        .unwrap();
    assert_eq!(a.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![2, 4]);
    assert_eq!(a[1].envelope.payload, json!({"n": 3}));
}

#[tokio::test]
async fn a_batch_with_a_stale_expectation_stores_nothing() {
    let env = TestEnv::new().await;
    env.log
        .append(&[event(&env.log, "a", Some(0), 1)])
        .await
        .unwrap();
    let batch = vec![
        event(&env.log, "b", Some(0), 2),
        event(&env.log, "c", Some(0), 3),
        // Stale: subject a is at sequence 1.
        event(&env.log, "a", Some(0), 4),
    ];
    let error = env.log.append(&batch).await.unwrap_err();
    assert_eq!(error.kind(), AppendErrorKind::Conflict);
    assert_eq!(
        env.log.last_sequence().await.unwrap(),
        1,
        "nothing of the batch stored"
    );
    assert!(
        env.log
            .load(&env.log.subject("thing", "b"), 0)
            .await
            .unwrap()
            .is_empty()
    );
    // The same batch with the right expectation goes through.
    let mut batch = batch;
    batch[2].expected_sequence = Some(1);
    assert_eq!(
        env.log.append(&batch).await.unwrap().sequences,
        vec![2, 3, 4]
    );
}

#[tokio::test]
async fn replay_returns_the_stream_order_from_a_sequence_or_a_time() {
    let env = TestEnv::new().await;
    let mut appended = Vec::new();
    for n in 0..2_500u64 {
        let id = format!("agg{}", n % 7);
        appended.extend(
            env.log
                .append(&[event(&env.log, &id, None, n)])
                .await
                .unwrap()
                .sequences,
        );
    }
    let all: Vec<_> = env
        .log
        .read(Start::Sequence(1))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.iter().map(|e| e.sequence).collect::<Vec<_>>(), appended);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, e)| e.envelope.payload == json!({"n": i}))
    );

    let tail: Vec<_> = env
        .log
        .read(Start::Sequence(2_001))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(tail.first().map(|e| e.sequence), Some(2_001));
    assert_eq!(tail.len(), 500);

    let middle = all[1_200].stored_at;
    let from_time: Vec<_> = env
        .log
        .read(Start::Time(middle))
        .try_collect()
        .await
        .unwrap();
    assert!(from_time.iter().all(|e| e.stored_at >= middle));
    assert!(from_time.first().unwrap().sequence <= 1_201);
    assert_eq!(from_time.last().unwrap().sequence, 2_500);

    let future = OffsetDateTime::now_utc() + Duration::from_secs(3_600);
    let none: Vec<_> = env
        .log
        .read(Start::Time(future))
        .try_collect()
        .await
        .unwrap();
    assert!(none.is_empty());
    let past_end: Vec<_> = env
        .log
        .read(Start::Sequence(9_999))
        .try_collect()
        .await
        .unwrap();
    assert!(past_end.is_empty());
}

#[tokio::test]
async fn one_aggregate_loads_from_a_sequence() {
    let env = TestEnv::new().await;
    for n in 0..3_000u64 {
        let id = if n % 2 == 0 { "even" } else { "odd" };
        env.log
            .append(&[event(&env.log, id, None, n)])
            .await
            .unwrap();
    }
    let subject = env.log.subject("thing", "even");
    let even = env.log.load(&subject, 0).await.unwrap();
    assert_eq!(even.len(), 1_500, "more than one direct-get page");
    assert!(even.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let newer = env.log.load(&subject, 2_000).await.unwrap();
    assert_eq!(newer.first().unwrap().sequence, 2_001);
    assert_eq!(
        env.log
            .last_on_subject(&subject)
            .await
            .unwrap()
            .unwrap()
            .sequence,
        2_999
    );
    assert!(
        env.log
            .load(&env.log.subject("thing", "none"), 0)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Reads that must see every acknowledged event do, right after each append. In a
/// replicated stream the followers apply an event after the leader has acknowledged
/// it, and a direct get that one of them answers stops short: these reads complete it
/// from the leader. CI runs this suite on three nodes, where eight writers, each on its
/// own connection (to any node), keep the followers busy.
#[tokio::test]
async fn reads_right_after_an_append_see_it() {
    let env = TestEnv::new().await;
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let log = env.second_log().await;
        writers.spawn(async move {
            let id = format!("fresh{writer}");
            let subject = log.subject("thing", &id);
            for n in 0..100 {
                let appended = log.append(&[event(&log, &id, None, n)]).await.unwrap();
                let sequence = appended.sequences[0];
                let page = log.read_page(&subject, 1, 1024, sequence).await.unwrap();
                assert_eq!(page.len() as u64, n + 1, "a range read up to the append");
                assert_eq!(page.last().unwrap().sequence, sequence);
                let loaded = log.load_current(&subject, sequence - 1).await.unwrap();
                assert_eq!(loaded.len(), 1, "a load from the sequence before it");
                let last = log.last_on_subject_current(&subject).await.unwrap();
                assert_eq!(last.unwrap().sequence, sequence, "the subject's last");
                let at = log.event_at(sequence).await.unwrap();
                assert_eq!(at.unwrap().sequence, sequence, "the event at its sequence");
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let end = env.log.last_sequence().await.unwrap();
    assert!(env.log.event_at(end + 1).await.unwrap().is_none());
}

#[tokio::test]
async fn a_stored_version_1_event_is_upcast_when_read() {
    let env = TestEnv::new().await;
    let user_id = Uuid::now_v7();
    let mut old = envelope("user", &user_id.to_string(), 0);
    old.event_type = "UserRegistered".into();
    old.schema_version = 1;
    old.payload = json!({"user_id": user_id, "handle": "olduser", "name": "Old User",
                         "registered_at": "2025-01-01T00:00:00Z"});
    let subject = env.log.subject("user", &user_id.to_string());
    // Written raw, as a version-1 writer did.
    env.log
        .jetstream()
        .publish(subject.clone(), serde_json::to_vec(&old).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let stored = env.log.load(&subject, 0).await.unwrap();
    assert_eq!(stored[0].envelope.schema_version, 3);
    assert_eq!(stored[0].envelope.payload["display_name"], "Old User");

    let users = common::accounts(&env.log);
    let (state, sequence) = users.users().load(&user_id.to_string()).await.unwrap();
    assert_eq!(sequence, 1);
    let natter_domain::user::User::Active(profile) = state else {
        panic!("not registered")
    };
    assert_eq!(profile.display_name.as_str(), "Old User");
}

#[tokio::test]
async fn a_server_older_than_2_12_is_refused_by_name() {
    let binary = std::env::var("NATTER_TEST_OLD_NATS_SERVER")
        .unwrap_or_else(|_| "/usr/sbin/nats-server".into());
    assert!(
        std::path::Path::new(&binary).exists(),
        "an old nats-server is needed at {binary} (Debian's package; scripts/deps.sh installs it)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = std::env::temp_dir().join(format!("natter-old-nats-{port}"));
    let mut server = tokio::process::Command::new(&binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&store)
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    let mut client = None;
    for _ in 0..100 {
        if let Ok(connected) = async_nats::connect(&url).await {
            client = Some(connected);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = client.expect("old server did not start");
    let found = client.server_info().version;
    let error = EventLog::open(client, LogConfig::new("OLD", "old"))
        .await
        .unwrap_err();
    let _ = server.kill().await;
    let _ = std::fs::remove_dir_all(store);
    match &error {
        LogError::ServerTooOld {
            found: reported,
            needed,
        } => {
            assert_eq!(reported, &found);
            assert_eq!(needed.to_string(), "2.12.0");
        }
        other => panic!("expected ServerTooOld, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&found) && message.contains("2.12.0"),
        "{message}"
    );
}

#[tokio::test]
async fn subjects_in_one_log_do_not_leak_into_another() {
    let first = TestEnv::new().await;
    let second = TestEnv::new().await;
    first
        .log
        .append(&[event(&first.log, "x", None, 1)])
        .await
        .unwrap();
    assert_eq!(second.log.last_sequence().await.unwrap(), 0);
    let ids: HashSet<_> = first
        .log
        .read(Start::Sequence(1))
        .map_ok(|e| e.envelope.event_id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn a_guarded_batch_made_twice_is_stored_once_and_the_second_conflicts() {
    let env = TestEnv::new().await;
    let batch = vec![
        event(&env.log, "p", Some(0), 1),
        event(&env.log, "q", Some(0), 2),
    ];
    let first = env.log.append(&batch).await.unwrap();
    assert_eq!(first.sequences, vec![1, 2]);
    let again = env.log.append(&batch).await.unwrap_err();
    assert_eq!(again.kind(), AppendErrorKind::Conflict);
    assert_eq!(env.log.last_sequence().await.unwrap(), 2);
}

#[tokio::test]
async fn unconditional_appends_are_deduplicated_by_event_id() {
    let env = TestEnv::new().await;
    let single = event(&env.log, "free", None, 1);
    let stored = env.log.append(std::slice::from_ref(&single)).await.unwrap();
    let again = env.log.append(std::slice::from_ref(&single)).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.sequences, stored.sequences);

    let batch = vec![
        event(&env.log, "free", None, 2),
        event(&env.log, "loose", None, 3),
    ];
    env.log.append(&batch).await.unwrap();
    // An atomic batch's ids are checked as a whole: a batch made again is refused.
    let retried = env.log.append(&batch).await.unwrap_err();
    assert_eq!(retried.kind(), AppendErrorKind::Duplicate);
    assert_eq!(env.log.last_sequence().await.unwrap(), 3);
}

#[tokio::test]
async fn an_append_can_be_guarded_by_another_subject() {
    let env = TestEnv::new().await;
    let guard = env.log.subject("thing", "guard");
    let at = env
        .log
        .append(&[event(&env.log, "guard", Some(0), 1)])
        .await
        .unwrap()
        .last_sequence();
    let guarded = |expected: u64, n: u64| NewEvent {
        expected_sequence: Some(expected),
        expected_subject: Some(guard.clone()),
        ..event(&env.log, "guarded", None, n)
    };
    // Any number of appends on the guarded subject, as long as the guard stands still.
    env.log.append(&[guarded(at, 2)]).await.unwrap();
    env.log.append(&[guarded(at, 3)]).await.unwrap();
    env.log
        .append(&[event(&env.log, "guard", Some(at), 4)])
        .await
        .unwrap();
    let error = env.log.append(&[guarded(at, 5)]).await.unwrap_err();
    assert_eq!(error.kind(), AppendErrorKind::Conflict);
    assert_eq!(
        env.log
            .load(&env.log.subject("thing", "guarded"), 0)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_read_can_pick_out_one_kind_of_subject() {
    let env = TestEnv::new().await;
    for n in 0..30u64 {
        let kind = if n % 3 == 0 { "wanted" } else { "other" };
        let subject = env.log.subject(kind, &n.to_string());
        let mut new = event(&env.log, "x", None, n);
        new.subject = subject;
        env.log.append(&[new]).await.unwrap();
    }
    let filter = format!("{}.evt.wanted.>", env.prefix);
    let wanted: Vec<_> = env
        .log
        .read_matching(filter.clone(), Start::Sequence(1))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(wanted.len(), 10);
    assert!(wanted.iter().all(|e| e.subject.contains(".evt.wanted.")));
    let an_hour_ago = OffsetDateTime::now_utc() - Duration::from_secs(3_600);
    let since: Vec<_> = env
        .log
        .read_matching(filter, Start::Time(an_hour_ago))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(since.len(), 10);
}

#[tokio::test]
async fn an_append_no_stream_takes_is_unavailable_with_nothing_stored() {
    let env = TestEnv::new().await;
    let client = common::connect(&env.nats_url).await.unwrap();
    // The stream exists for this test's prefix only: another prefix reaches no stream,
    // as every subject does while a stream has no leader.
    let orphan = EventLog::attach(
        client,
        LogConfig::new(&env.stream, format!("{}x", env.prefix)),
    )
    .unwrap();
    let error = orphan
        .append(&[event(&orphan, "a", None, 1)])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), AppendErrorKind::Unavailable, "{error}");
    assert_eq!(env.second_log().await.last_sequence().await.unwrap(), 0);
}
