//! Messages through real HTTP: sends, retries, history and who may see what.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::TestEnv;
use common::http::{Api, User};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn direct(api: &Api, a: &User, b: &User) -> String {
    let (_, chat) = api
        .call(
            Method::POST,
            "/v1/chats/direct",
            a,
            Some(json!({"user_id": b.id})),
        )
        .await;
    chat["chat_id"].as_str().unwrap().to_owned()
}

async fn send(
    api: &Api,
    chat: &str,
    from: &User,
    client_id: &str,
    body: &str,
) -> (StatusCode, Value) {
    api.call(
        Method::POST,
        &format!("/v1/chats/{chat}/messages"),
        from,
        Some(json!({"client_id": client_id, "body": body})),
    )
    .await
}

async fn bodies(
    api: &Api,
    chat: &str,
    reader: &User,
    query: &str,
) -> (StatusCode, Vec<String>, Value) {
    let (status, page) = api
        .call(
            Method::GET,
            &format!("/v1/chats/{chat}/messages?{query}"),
            reader,
            None,
        )
        .await;
    let bodies = page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|m| m["body"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    (status, bodies, page)
}

#[tokio::test]
async fn messages_arrive_in_order_and_page_both_ways() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (ana, bo) = (api.user("ana").await, api.user("bo").await);
    let chat = direct(&api, &ana, &bo).await;
    let mut last = Value::Null;
    for n in 1..=5 {
        let (status, sent) = send(&api, &chat, &ana, &format!("c{n}"), &format!("m{n}")).await;
        assert_eq!(status, StatusCode::CREATED, "{sent}");
        last = sent;
    }
    let (status, all, _) = bodies(
        &api,
        &chat,
        &bo,
        &format!("min_sequence={}", last["sequence"]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all, ["m1", "m2", "m3", "m4", "m5"]);
    let (_, latest, page) = bodies(&api, &chat, &bo, "limit=2").await;
    assert_eq!(
        (latest.as_slice(), page["has_more"].as_bool()),
        (&["m4".to_owned(), "m5".to_owned()][..], Some(true))
    );
    let oldest_shown = page["items"][0]["sequence"].as_u64().unwrap();
    let (_, older, _) = bodies(&api, &chat, &bo, &format!("before={oldest_shown}&limit=2")).await;
    assert_eq!(older, ["m2", "m3"]);
    let (_, newer, page) =
        bodies(&api, &chat, &bo, &format!("after={oldest_shown}&limit=10")).await;
    assert_eq!(
        (newer.as_slice(), page["has_more"].as_bool()),
        (&["m5".to_owned()][..], Some(false))
    );
    let (status, _, _) = bodies(&api, &chat, &bo, "before=1&after=2").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A reply names its message by sequence.
    let first = api
        .call(
            Method::GET,
            &format!("/v1/chats/{chat}/messages?limit=1&after=0"),
            &bo,
            None,
        )
        .await
        .1;
    let first_sequence = first["items"][0]["sequence"].clone();
    let (status, reply) = api
        .call(
            Method::POST,
            &format!("/v1/chats/{chat}/messages"),
            &bo,
            Some(json!({"client_id": "r1", "body": "re: m1", "reply_to": first_sequence})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, _, page) = bodies(
        &api,
        &chat,
        &ana,
        &format!("min_sequence={}&limit=1", reply["sequence"]),
    )
    .await;
    assert_eq!(page["items"][0]["reply_to"], first_sequence);
}

#[tokio::test]
async fn a_retried_send_is_stored_once() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (cy, di) = (api.user("cy").await, api.user("di").await);
    let chat = direct(&api, &cy, &di).await;
    let (first, second) = tokio::join!(
        send(&api, &chat, &cy, "same-id", "hello"),
        send(&api, &chat, &cy, "same-id", "hello"),
    );
    assert_eq!(
        first.1["message_id"], second.1["message_id"],
        "{first:?} {second:?}"
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED]);
    let (status, again) = send(&api, &chat, &cy, "same-id", "hello").await;
    assert_eq!(
        (status, &again["message_id"]),
        (StatusCode::OK, &first.1["message_id"])
    );
    let (status, problem) = send(&api, &chat, &cy, "same-id", "something else").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("client_id_reused"))
    );
    // The same client id from the other member is another message.
    let (status, theirs) = send(&api, &chat, &di, "same-id", "hello").await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, all, _) = bodies(
        &api,
        &chat,
        &cy,
        &format!("min_sequence={}", theirs["sequence"]),
    )
    .await;
    assert_eq!(all, ["hello", "hello"]);
}

/// A UUIDv7 client id made `offset_secs` from now (negative: in the past).
fn v7_made(offset_secs: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs);
    let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap();
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        millis / 1_000,
        u32::try_from(millis % 1_000).unwrap() * 1_000_000,
    ))
    .to_string()
}

#[tokio::test]
async fn uuid_v7_client_ids_are_deduplicated_by_their_age() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (cy, di) = (api.user("cy").await, api.user("di").await);
    let chat = direct(&api, &cy, &di).await;
    // Made just now, an hour ago (past the log's window: looked up) or by a clock 20 s
    // ahead, sent twice at once and then again: one message each.
    for id in [v7_made(0), v7_made(-3_600), v7_made(20)] {
        let (first, second) = tokio::join!(
            send(&api, &chat, &cy, &id, "hello"),
            send(&api, &chat, &cy, &id, "hello"),
        );
        let mut statuses = [first.0, second.0];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED], "{id}");
        assert_eq!(first.1["message_id"], second.1["message_id"], "{id}");
        let (status, again) = send(&api, &chat, &cy, &id, "hello").await;
        assert_eq!(
            (status, &again["message_id"]),
            (StatusCode::OK, &first.1["message_id"]),
            "{id}"
        );
        let (status, problem) = send(&api, &chat, &cy, &id, "something else").await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("client_id_reused")),
            "{id}"
        );
    }
    // Dated two minutes ahead of the server's clock: refused, and nothing stored.
    let (status, problem) = send(&api, &chat, &cy, &v7_made(120), "from the future").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("client_id_ahead")),
        "{problem}"
    );
    let (status, last) = send(&api, &chat, &cy, &v7_made(0), "last").await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, all, _) = bodies(
        &api,
        &chat,
        &cy,
        &format!("min_sequence={}", last["sequence"]),
    )
    .await;
    assert_eq!(all, ["hello", "hello", "hello", "last"]);
}

#[tokio::test]
async fn retries_after_the_logs_deduplication_window_are_found_in_the_read_model() {
    let env = TestEnv::new().await;
    // A log that forgets message ids after a second.
    let mut settings = env.settings();
    settings.duplicate_window_secs = 1;
    let auth = natter::settings::AuthSettings {
        login_per_address: 1_000,
        register_per_address: 1_000,
        ..natter::settings::AuthSettings::default()
    };
    let app = env
        .spawn_app_as(
            &settings,
            natter::settings::ServeArgs {
                push: Default::default(),
                auto_rebuild: true,
                web_dir: None,
                media: Default::default(),
                listen: "127.0.0.1:0".parse().unwrap(),
                roles: vec![
                    natter::settings::Role::Api,
                    natter::settings::Role::Projector,
                ],
                auth,
                gateway: Default::default(),
            },
        )
        .await;
    let api = Api {
        app,
        http: reqwest::Client::new(),
    };
    let (cy, di) = (api.user("cy").await, api.user("di").await);
    let chat = direct(&api, &cy, &di).await;
    let mut first = Vec::new();
    for n in 0..20 {
        let (status, sent) = send(&api, &chat, &cy, &format!("c{n}"), &format!("m{n}")).await;
        assert_eq!(status, StatusCode::CREATED, "{sent}");
        first.push(sent);
    }
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    // All retried at once, with one new send and one reused id among them: the lookups
    // share queries, and each gets its own answer.
    let texts: Vec<(String, String)> = (0..20)
        .map(|n| (format!("c{n}"), format!("m{n}")))
        .collect();
    let retries = texts
        .iter()
        .map(|(id, text)| send(&api, &chat, &cy, id, text));
    let (retried, fresh, reused) = tokio::join!(
        futures::future::join_all(retries),
        send(&api, &chat, &cy, "c20", "m20"),
        send(&api, &chat, &cy, "c3", "not m3"),
    );
    for (n, (status, again)) in retried.iter().enumerate() {
        assert_eq!(*status, StatusCode::OK, "{again}");
        assert_eq!(again["message_id"], first[n]["message_id"], "{n}");
        assert_eq!(again["sequence"], first[n]["sequence"], "{n}");
    }
    assert_eq!(fresh.0, StatusCode::CREATED, "{}", fresh.1);
    assert_eq!(
        (reused.0, reused.1["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("client_id_reused"))
    );
    let (_, all, _) = bodies(
        &api,
        &chat,
        &cy,
        &format!("min_sequence={}", fresh.1["sequence"]),
    )
    .await;
    assert_eq!(all.len(), 21, "{all:?}");
}

#[tokio::test]
async fn strangers_blocked_users_and_bad_bodies_are_refused() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (ed, flo, gus) = (
        api.user("ed").await,
        api.user("flo").await,
        api.user("gus").await,
    );
    let chat = direct(&api, &ed, &flo).await;
    let (status, _) = send(&api, &chat, &gus, "x", "hi").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = bodies(&api, &chat, &gus, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, problem) = send(&api, &chat, &ed, "x", "   ").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_body_text"))
    );
    let (status, problem) = send(&api, &chat, &ed, "has space", "hi").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_client_id"))
    );
    let (status, _) = send(&api, &chat, &ed, "big", &"x".repeat(64 * 1024 + 1)).await;
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
        "{status}"
    );
    // Flo blocks Ed: Ed can no longer message Flo.
    let (status, _) = api
        .call(
            Method::PUT,
            &format!("/v1/users/me/blocks/{}", ed.id),
            &flo,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = send(&api, &chat, &ed, "after-block", "hi").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("blocked"))
    );
    let (status, _) = send(&api, &chat, &flo, "blocker", "hi").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "nor the other way while it holds"
    );
    // Unblocked, the chat is open again.
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/v1/users/me/blocks/{}", ed.id),
            &flo,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&api, &chat, &ed, "after-unblock", "hi").await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_removed_member_keeps_what_they_saw_and_nothing_after() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (hu, ivo) = (api.user("hu").await, api.user("ivo").await);
    let (_, group) = api
        .call(
            Method::POST,
            "/v1/chats/groups",
            &hu,
            Some(json!({"name": "G", "members": [ivo.id]})),
        )
        .await;
    let chat = group["chat_id"].as_str().unwrap().to_owned();
    send(&api, &chat, &hu, "1", "before").await;
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/v1/chats/{chat}/members/{}", ivo.id),
            &hu,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = send(&api, &chat, &hu, "2", "after").await;
    let (status, seen, _) = bodies(
        &api,
        &chat,
        &ivo,
        &format!("min_sequence={}", after["sequence"]),
    )
    .await;
    assert_eq!((status, seen), (StatusCode::OK, vec!["before".to_owned()]));
    let (status, _) = send(&api, &chat, &ivo, "3", "let me back").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sixteen_writers_in_one_group_each_stored_once_in_one_order() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let mut writers = Vec::new();
    for n in 0..16 {
        writers.push(api.user(&format!("w{n}")).await);
    }
    let members: Vec<&str> = writers[1..].iter().map(|w| w.id.as_str()).collect();
    let (_, group) = api
        .call(
            Method::POST,
            "/v1/chats/groups",
            &writers[0],
            Some(json!({"name": "Busy", "members": members})),
        )
        .await;
    let chat = group["chat_id"].as_str().unwrap().to_owned();
    let per_writer = 10;
    let sends = writers.iter().enumerate().map(|(w, writer)| {
        let (api, chat) = (&api, chat.clone());
        async move {
            let mut last = 0;
            for i in 0..per_writer {
                let (status, sent) =
                    send(api, &chat, writer, &format!("{w}-{i}"), &format!("{w}-{i}")).await;
                assert_eq!(status, StatusCode::CREATED, "{sent}");
                last = sent["sequence"].as_u64().unwrap();
            }
            last
        }
    });
    let lasts = futures::future::join_all(sends).await;
    let newest = lasts.into_iter().max().unwrap();
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let (_, page) = api
            .call(
                Method::GET,
                &format!("/v1/chats/{chat}/messages?after={after}&limit=100&min_sequence={newest}"),
                &writers[3],
                None,
            )
            .await;
        let items = page["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        after = items.last().unwrap()["sequence"].as_u64().unwrap();
        seen.extend(items);
    }
    assert_eq!(seen.len(), 16 * per_writer, "every send stored once");
    let sequences: Vec<u64> = seen
        .iter()
        .map(|m| m["sequence"].as_u64().unwrap())
        .collect();
    assert!(
        sequences.windows(2).all(|w| w[0] < w[1]),
        "one order, no repeat"
    );
    let unique: std::collections::HashSet<&str> =
        seen.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), 16 * per_writer);
    // Per writer, the chat's order is the order they sent in.
    for w in 0..16 {
        let mine: Vec<&str> = seen
            .iter()
            .map(|m| m["body"].as_str().unwrap())
            .filter(|b| b.starts_with(&format!("{w}-")))
            .collect();
        let expected: Vec<String> = (0..per_writer).map(|i| format!("{w}-{i}")).collect();
        assert_eq!(mine, expected);
    }
}

async fn unread(api: &Api, reader: &User, chat: &str, min_sequence: u64) -> (u64, Value) {
    let (status, list) = api
        .call(
            Method::GET,
            &format!("/v1/chats?min_sequence={min_sequence}"),
            reader,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chat_id"] == chat)
        .cloned()
        .unwrap();
    (item["unread_count"].as_u64().unwrap(), item)
}

#[tokio::test]
async fn unread_counts_follow_sends_and_read_markers() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (jo, kai, lu) = (
        api.user("jo").await,
        api.user("kai").await,
        api.user("lu").await,
    );
    let chat = direct(&api, &jo, &kai).await;
    let mut sequences = Vec::new();
    for n in 1..=3 {
        let (_, sent) = send(&api, &chat, &jo, &format!("u{n}"), &format!("note {n}")).await;
        sequences.push(sent["sequence"].as_u64().unwrap());
    }
    let (count, item) = unread(&api, &kai, &chat, sequences[2]).await;
    assert_eq!(count, 3);
    assert_eq!(item["last_message"]["preview"], "note 3");
    assert_eq!(
        unread(&api, &jo, &chat, sequences[2]).await.0,
        0,
        "one's own messages are read"
    );

    let read_path = format!("/v1/chats/{chat}/read");
    let read = |up_to: u64| {
        api.call(
            Method::POST,
            &read_path,
            &kai,
            Some(json!({"up_to": up_to})),
        )
    };
    let (status, marked) = read(sequences[1]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        unread(&api, &kai, &chat, marked["sequence"].as_u64().unwrap())
            .await
            .0,
        1
    );
    // A marker never moves back.
    let (_, marked) = read(sequences[0]).await;
    assert_eq!(
        unread(&api, &kai, &chat, marked["sequence"].as_u64().unwrap())
            .await
            .0,
        1
    );
    let (_, marked) = read(sequences[2]).await;
    assert_eq!(
        unread(&api, &kai, &chat, marked["sequence"].as_u64().unwrap())
            .await
            .0,
        0
    );
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/v1/chats/{chat}/read"),
            &lu,
            Some(json!({"up_to": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Unread counts recounted from the stored events of one chat, independently of the
/// projection: for each current member, messages from others after their read marker
/// and their (latest) joining, neither deleted for everyone nor by them for themselves.
async fn recount_unread(env: &TestEnv, chat: &str) -> std::collections::HashMap<String, u64> {
    use futures::TryStreamExt as _;
    use natter_domain::chat::{ChatEvent, MessageEvent};
    use std::collections::{HashMap, HashSet};

    let events: Vec<_> = env
        .log
        .read(natter_eventlog::Start::Sequence(1))
        .try_collect()
        .await
        .unwrap();
    let mut joined: HashMap<String, u64> = HashMap::new();
    let mut read: HashMap<String, u64> = HashMap::new();
    let mut sent: Vec<(u64, String)> = Vec::new();
    let mut deleted: HashSet<u64> = HashSet::new();
    let mut hidden: HashSet<(String, u64)> = HashSet::new();
    for stored in events {
        let e = &stored.envelope;
        if e.aggregate_id != chat {
            continue;
        }
        let seq = stored.sequence;
        match e.aggregate_type.as_str() {
            "chat" => match natter_schema::decode::<ChatEvent>(
                &e.event_type,
                e.schema_version,
                &e.payload,
            )
            .unwrap()
            {
                ChatEvent::GroupCreated(c) => {
                    for user in std::iter::once(c.creator).chain(c.members) {
                        joined.insert(user.to_string(), seq);
                    }
                }
                ChatEvent::MembersAdded(a) => {
                    for user in a.users {
                        joined.insert(user.to_string(), seq);
                    }
                }
                ChatEvent::MemberJoined(j) => {
                    joined.insert(j.user.to_string(), seq);
                }
                ChatEvent::MemberLeft(l) => {
                    joined.remove(&l.user.to_string());
                }
                ChatEvent::MemberRemoved(r) => {
                    joined.remove(&r.user.to_string());
                }
                _ => {}
            },
            "chatmsg" => match natter_schema::decode::<MessageEvent>(
                &e.event_type,
                e.schema_version,
                &e.payload,
            )
            .unwrap()
            {
                MessageEvent::MessageSent(m) => sent.push((seq, m.sender.to_string())),
                MessageEvent::MessageDeleted(d) => {
                    deleted.insert(d.sequence);
                }
                MessageEvent::MessageHidden(h) => {
                    hidden.insert((h.user.to_string(), h.sequence));
                }
                MessageEvent::ReadMarked(r) => {
                    let marker = read.entry(r.user.to_string()).or_default();
                    *marker = (*marker).max(r.up_to);
                }
                _ => {}
            },
            _ => {}
        }
    }
    joined
        .iter()
        .map(|(user, from)| {
            let after = read.get(user).copied().unwrap_or(0).max(*from);
            let count = sent
                .iter()
                .filter(|(seq, sender)| {
                    *seq > after
                        && sender != user
                        && !deleted.contains(seq)
                        && !hidden.contains(&(user.clone(), *seq))
                })
                .count();
            (user.clone(), count as u64)
        })
        .collect()
}

#[tokio::test]
async fn unread_counts_match_a_recount_from_the_events_after_a_random_walk() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let mut people = Vec::new();
    for n in 0..5 {
        people.push(api.user(&format!("r{n}")).await);
    }
    let (_, group) = api
        .call(
            Method::POST,
            "/v1/chats/groups",
            &people[0],
            Some(json!({"name": "R", "members": [people[1].id, people[2].id]})),
        )
        .await;
    let chat = group["chat_id"].as_str().unwrap().to_owned();
    // What the walk needs to choose its steps: who is in, and the messages (sequence,
    // sender). The expected counts come from the events, not from this.
    let mut member = [true, true, true, false, false];
    let mut messages: Vec<(u64, usize)> = Vec::new();
    let mut last = group["sequence"].as_u64().unwrap();
    // A fixed pseudo-random walk (xorshift), so that a failure reproduces.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut steps = [0usize; 6];
    for step in 0..150 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let who = (x % 5) as usize;
        let pick = messages
            .get((x >> 32) as usize % messages.len().max(1))
            .copied();
        let path = |rest: &str| format!("/v1/chats/{chat}{rest}");
        let (kind, outcome) = match ((x >> 8) % 12, pick) {
            (0..=4, _) if member[who] => (
                0,
                send(&api, &chat, &people[who], &format!("s{step}"), "hi").await,
            ),
            (5..=6, Some((up_to, _))) if member[who] => (
                1,
                api.call(
                    Method::POST,
                    &path("/read"),
                    &people[who],
                    Some(json!({"up_to": up_to})),
                )
                .await,
            ),
            (7, _) if !member[who] => {
                // Person 0 stays an admin throughout and adds them back.
                member[who] = true;
                (
                    2,
                    api.call(
                        Method::POST,
                        &path("/members"),
                        &people[0],
                        Some(json!({"user_ids": [people[who].id]})),
                    )
                    .await,
                )
            }
            (8, _) if who != 0 && member[who] => {
                member[who] = false;
                (
                    3,
                    api.call(
                        Method::DELETE,
                        &path(&format!("/members/{}", people[who].id)),
                        &people[who],
                        None,
                    )
                    .await,
                )
            }
            // The author, or the admin, deletes for everyone.
            (9..=10, Some((sequence, sender))) if member[who] && (who == sender || who == 0) => (
                4,
                api.call(
                    Method::DELETE,
                    &path(&format!("/messages/{sequence}")),
                    &people[who],
                    None,
                )
                .await,
            ),
            (11, Some((sequence, _))) if member[who] => (
                5,
                api.call(
                    Method::DELETE,
                    &path(&format!("/messages/{sequence}?scope=me")),
                    &people[who],
                    None,
                )
                .await,
            ),
            _ => continue,
        };
        let (status, body) = outcome;
        assert!(status.is_success(), "step {step}: {status} {body}");
        last = body["sequence"].as_u64().unwrap();
        if kind == 0 {
            messages.push((last, who));
        }
        steps[kind] += 1;
    }
    assert!(
        steps.iter().all(|n| *n > 0) && messages.len() > 20,
        "the walk covers every kind of step: {steps:?}"
    );
    let expected = recount_unread(&env, &chat).await;
    assert!(
        expected.values().any(|n| *n > 0),
        "something is left unread: {expected:?}"
    );
    for (who, person) in people.iter().enumerate() {
        if !member[who] {
            continue;
        }
        assert_eq!(
            unread(&api, person, &chat, last).await.0,
            expected[&person.id],
            "person {who}"
        );
    }
}

#[tokio::test]
async fn edits_deletes_and_reactions_follow_their_rules() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (mo, ned, ola) = (
        api.user("mo").await,
        api.user("ned").await,
        api.user("ola").await,
    );
    let (_, group) = api
        .call(
            Method::POST,
            "/v1/chats/groups",
            &mo,
            Some(json!({"name": "E", "members": [ned.id, ola.id]})),
        )
        .await;
    let chat = group["chat_id"].as_str().unwrap().to_owned();
    let (_, sent) = send(&api, &chat, &ned, "e1", "typo hre").await;
    let sequence = sent["sequence"].as_u64().unwrap();
    let message = |rest: &str| format!("/v1/chats/{chat}/messages/{sequence}{rest}");

    let (status, problem) = api
        .call(
            Method::PATCH,
            &message(""),
            &mo,
            Some(json!({"body": "not mine"})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_author"))
    );
    let (status, edited) = api
        .call(
            Method::PATCH,
            &message(""),
            &ned,
            Some(json!({"body": "typo here"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = api
        .call(
            Method::GET,
            &format!(
                "/v1/chats/{chat}/messages?min_sequence={}",
                edited["sequence"]
            ),
            &ola,
            None,
        )
        .await;
    assert_eq!(
        (
            page["items"][0]["body"].as_str(),
            page["items"][0]["edited"].as_bool()
        ),
        (Some("typo here"), Some(true))
    );

    // One reaction per member, replaced or removed.
    api.call(
        Method::PUT,
        &message("/reaction"),
        &ned,
        Some(json!({"reaction": "👍"})),
    )
    .await;
    api.call(
        Method::PUT,
        &message("/reaction"),
        &ola,
        Some(json!({"reaction": "👍"})),
    )
    .await;
    api.call(
        Method::PUT,
        &message("/reaction"),
        &ned,
        Some(json!({"reaction": "❤"})),
    )
    .await;
    let (status, last) = api
        .call(
            Method::PUT,
            &message("/reaction"),
            &mo,
            Some(json!({"reaction": "❤"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, removed) = api
        .call(Method::DELETE, &message("/reaction"), &mo, None)
        .await;
    assert!(removed["sequence"].as_u64() > last["sequence"].as_u64());
    let (_, page) = api
        .call(
            Method::GET,
            &format!(
                "/v1/chats/{chat}/messages?min_sequence={}",
                removed["sequence"]
            ),
            &ola,
            None,
        )
        .await;
    let mut reactions: Vec<(String, u64)> = page["items"][0]["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["reaction"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    reactions.sort();
    assert_eq!(reactions, [("❤".to_owned(), 1), ("👍".to_owned(), 1)]);
    let (status, problem) = api
        .call(
            Method::PUT,
            &message("/reaction"),
            &ola,
            Some(json!({"reaction": "a b"})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_reaction"))
    );

    // Ola may not delete Ned's message; Mo, an admin, may. The body leaves every read model.
    let (status, problem) = api.call(Method::DELETE, &message(""), &ola, None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("cannot_delete"))
    );
    let (status, deleted) = api.call(Method::DELETE, &message(""), &mo, None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = api
        .call(
            Method::GET,
            &format!(
                "/v1/chats/{chat}/messages?min_sequence={}",
                deleted["sequence"]
            ),
            &ola,
            None,
        )
        .await;
    let tombstone = &page["items"][0];
    assert_eq!(
        (tombstone["deleted"].as_bool(), tombstone["body"].as_str()),
        (Some(true), Some(""))
    );
    assert_eq!(tombstone["reactions"], json!([]));
    let (_, list) = api.call(Method::GET, "/v1/chats", &ola, None).await;
    assert_eq!(list["items"][0]["last_message"]["deleted"], true);
    assert_eq!(list["items"][0]["last_message"]["preview"], "");
    let (_, after_delete) = api
        .call(
            Method::PATCH,
            &message(""),
            &ned,
            Some(json!({"body": "back?"})),
        )
        .await;
    let (_, page) = api
        .call(
            Method::GET,
            &format!(
                "/v1/chats/{chat}/messages?min_sequence={}",
                after_delete["sequence"].as_u64().unwrap_or(0)
            ),
            &ola,
            None,
        )
        .await;
    assert_eq!(
        page["items"][0]["body"], "",
        "an edit never brings a deleted message back"
    );

    // Sequences that are not messages of this chat.
    for bad in [
        format!("/v1/chats/{chat}/messages/999999"),
        format!("/v1/chats/{chat}/messages/1"),
    ] {
        let (status, _) = api
            .call(Method::PATCH, &bad, &ned, Some(json!({"body": "x"})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
}

#[tokio::test]
async fn search_finds_what_the_caller_can_see_ranked_with_snippets() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (pia, quy, ray) = (
        api.user("pia").await,
        api.user("quy").await,
        api.user("ray").await,
    );
    let ours = direct(&api, &pia, &quy).await;
    let theirs = direct(&api, &quy, &ray).await;
    send(&api, &ours, &pia, "s1", "Climbing at the wall tonight?").await;
    send(
        &api,
        &ours,
        &quy,
        "s2",
        "climbing climbing climbing, always climbing",
    )
    .await;
    let (_, gone) = send(&api, &ours, &pia, "s3", "secret climbing plan").await;
    send(&api, &theirs, &ray, "s4", "climbing without pia").await;
    let (_, deleted) = api
        .call(
            Method::DELETE,
            &format!("/v1/chats/{ours}/messages/{}", gone["sequence"]),
            &pia,
            None,
        )
        .await;
    let at = deleted["sequence"].as_u64().unwrap();
    let (status, found) = search(&api, at, &pia, "q=CLIMBING".into()).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let items = found["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        2,
        "not the deleted message, not another chat's: {found}"
    );
    assert!(
        items[0]["snippet"]
            .as_str()
            .unwrap()
            .contains("<b>climbing</b>")
    );
    assert!(
        items[0]["snippet"]
            .as_str()
            .unwrap()
            .starts_with("<b>climbing</b> <b>climbing</b>"),
        "best match first"
    );
    let (_, paged) = search(&api, at, &pia, "q=climbing&limit=1".into()).await;
    let cursor = paged["next_cursor"].as_str().unwrap().to_owned();
    let (_, second) = search(
        &api,
        at,
        &pia,
        format!("q=climbing&limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(second["items"][0]["message_id"], items[1]["message_id"]);
    let (_, in_theirs) = search(&api, at, &quy, format!("q=climbing&chat_id={theirs}")).await;
    assert_eq!(in_theirs["items"].as_array().unwrap().len(), 1);
    let (_, phrase) = search(&api, at, &quy, "q=%22at+the+wall%22".into()).await;
    assert_eq!(phrase["items"].as_array().unwrap().len(), 1);
    let (status, _) = search(&api, at, &pia, "q=%20".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn search(api: &Api, at: u64, user: &User, query: String) -> (StatusCode, Value) {
    let path = format!("/v1/search/messages?{query}&min_sequence={at}");
    api.call(Method::GET, &path, user, None).await
}

#[tokio::test]
async fn a_common_word_is_searched_newest_band_first_and_every_match_is_reached() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (sam, tia) = (api.user("sam").await, api.user("tia").await);
    let chat = direct(&api, &sam, &tia).await;
    for n in 0..3 {
        send(&api, &chat, &sam, &format!("old{n}"), "old pelican").await;
    }
    // Twenty thousand events of a kind no read model reads push the old messages out
    // of the newest band.
    let mut acks = Vec::new();
    for n in 0..20_000 {
        let ack = env
            .log
            .jetstream()
            .publish(env.log.subject("filler", &n.to_string()), "{}".into())
            .await
            .unwrap();
        acks.push(ack);
        if acks.len() == 2_000 {
            for ack in acks.drain(..) {
                ack.await.unwrap();
            }
        }
    }
    for ack in acks {
        ack.await.unwrap();
    }
    let mut last = 0;
    for n in 0..210 {
        let (status, sent) = send(&api, &chat, &tia, &format!("new{n}"), "new pelican").await;
        assert_eq!(status, StatusCode::CREATED);
        last = sent["sequence"].as_u64().unwrap();
    }
    let mut seen = Vec::new();
    let mut query = "q=pelican&limit=50".to_owned();
    for _ in 0..20 {
        let (status, page) = search(&api, last, &sam, query.clone()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|hit| hit["sequence"].as_u64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("q=pelican&limit=50&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 213, "every match once");
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 213);
    assert!(
        seen[..210].iter().all(|s| *s > seen[210]),
        "the newest band comes first"
    );
}

#[tokio::test]
async fn the_sender_sees_sent_delivered_and_read_from_the_members_markers() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (sam, tia, uma, vic) = (
        api.user("sam").await,
        api.user("tia").await,
        api.user("uma").await,
        api.user("vic").await,
    );
    let (_, group) = api
        .call(
            Method::POST,
            "/v1/chats/groups",
            &sam,
            Some(json!({"name": "R", "members": [tia.id, uma.id]})),
        )
        .await;
    let chat = group["chat_id"].as_str().unwrap().to_owned();
    let (_, sent) = send(&api, &chat, &sam, "r1", "did you get this?").await;
    let up_to = sent["sequence"].as_u64().unwrap();
    let state = |at: u64| {
        let (api, sam, chat) = (&api, &sam, chat.clone());
        async move {
            let (_, page) = api
                .call(
                    Method::GET,
                    &format!("/v1/chats/{chat}/messages?min_sequence={at}"),
                    sam,
                    None,
                )
                .await;
            page["items"][0]["receipt"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(state(up_to).await, "sent");
    let mark = |who: &'static str, user: &User| {
        let path = format!("/v1/chats/{chat}/{who}");
        let (api, token) = (&api, user.token.clone());
        async move {
            let user = User {
                id: String::new(),
                token,
            };
            let (status, marked) = api
                .call(Method::POST, &path, &user, Some(json!({"up_to": up_to})))
                .await;
            assert_eq!(status, StatusCode::OK);
            marked["sequence"].as_u64().unwrap()
        }
    };
    let at = mark("delivered", &tia).await;
    assert_eq!(state(at).await, "sent", "one of two");
    let at = mark("delivered", &uma).await;
    assert_eq!(state(at).await, "delivered");
    // A member who joins later does not hold it back.
    let (_, added) = api
        .call(
            Method::POST,
            &format!("/v1/chats/{chat}/members"),
            &sam,
            Some(json!({"user_ids": [vic.id]})),
        )
        .await;
    assert_eq!(
        state(added["sequence"].as_u64().unwrap()).await,
        "delivered"
    );
    mark("read", &tia).await;
    let at = mark("read", &uma).await;
    assert_eq!(state(at).await, "read");
    // Someone who turned read receipts off never counts as having read.
    let (_, private) = api
        .call(
            Method::PUT,
            "/v1/users/me/privacy",
            &uma,
            Some(json!({"read_receipts": false})),
        )
        .await;
    let at = private["sequence"].as_u64().unwrap();
    // The privacy setting is in the user directory, another projection: wait for it.
    common::eventually(
        std::time::Duration::from_secs(5),
        "the privacy change",
        || async { state(at).await == "delivered" },
    )
    .await;
    // Others see no receipt state on messages that are not theirs.
    let (_, page) = api
        .call(
            Method::GET,
            &format!("/v1/chats/{chat}/messages"),
            &tia,
            None,
        )
        .await;
    assert_eq!(page["items"][0]["receipt"], Value::Null);
}

/// Issue 15: a read or delivered marker at or below where the member's marker is
/// already changes nothing, so it is neither stored nor sent to every member; it
/// answers the chat's current sequence, as other commands that change nothing do.
#[tokio::test]
async fn markers_that_do_not_move_append_nothing() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (jo, kai) = (api.user("jo").await, api.user("kai").await);
    let chat = direct(&api, &jo, &kai).await;
    let first = api.send(&chat, &jo, "one").await;
    let second = api.send(&chat, &jo, "two").await;
    let mark = |kind: &str, up_to: u64| {
        let path = format!("/v1/chats/{chat}/{kind}");
        let (api, kai) = (&api, &kai);
        async move {
            let (status, marked) = api
                .call(Method::POST, &path, kai, Some(json!({"up_to": up_to})))
                .await;
            assert_eq!(status, StatusCode::OK, "{marked}");
            marked["sequence"].as_u64().unwrap()
        }
    };
    let read = mark("read", second).await;
    assert_eq!(unread(&api, &kai, &chat, read).await.0, 0);
    let last = env.log.last_sequence().await.unwrap();
    assert_eq!(last, read, "the marker that moved was stored");

    for (kind, up_to) in [
        ("read", second),
        ("read", first),
        ("read", 0),
        // Reading implies having received.
        ("delivered", second),
        ("delivered", first),
    ] {
        let token = mark(kind, up_to).await;
        assert!(token <= last, "{kind} {up_to}: a token of what is stored");
        assert_eq!(unread(&api, &kai, &chat, token).await.0, 0);
    }
    assert_eq!(
        env.log.last_sequence().await.unwrap(),
        last,
        "markers that did not move were appended"
    );

    // One that moves is stored again; a stranger's is refused, moved or not.
    let third = api.send(&chat, &jo, "three").await;
    assert_eq!(mark("delivered", third).await, third + 1);
    let lu = api.user("lu").await;
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/v1/chats/{chat}/read"),
            &lu,
            Some(json!({"up_to": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Markers are limited per user (read and delivered together): a burst beyond the
/// limit is 429 `rate_limited` with Retry-After, and other users are not held back.
#[tokio::test]
async fn a_burst_of_markers_beyond_the_limit_is_refused() {
    let env = TestEnv::new().await;
    let settings = natter::settings::AuthSettings {
        login_per_address: 1_000,
        register_per_address: 1_000,
        markers_per_user: 5,
        ..natter::settings::AuthSettings::default()
    };
    let api = Api {
        app: env
            .spawn_app_with(
                &[
                    natter::settings::Role::Api,
                    natter::settings::Role::Projector,
                ],
                settings,
            )
            .await,
        http: reqwest::Client::new(),
    };
    let (jo, kai) = (api.user("jo").await, api.user("kai").await);
    let chat = direct(&api, &jo, &kai).await;
    let up_to = api.send(&chat, &jo, "one").await;
    let mark = |kind: &str, user: &User| {
        api.http
            .post(api.app.url(&format!("/v1/chats/{chat}/{kind}")))
            .bearer_auth(&user.token)
            .json(&json!({"up_to": up_to}))
            .send()
    };
    for kind in ["delivered", "read", "read", "delivered", "read"] {
        assert_eq!(mark(kind, &kai).await.unwrap().status(), StatusCode::OK);
    }
    let refused = mark("delivered", &kai).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=13).contains(&retry_after), "{retry_after}");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    assert_eq!(mark("read", &jo).await.unwrap().status(), StatusCode::OK);
}
