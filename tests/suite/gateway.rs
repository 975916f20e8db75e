//! The realtime gateway against real NATS and Postgres, with two gateway processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::TestEnv;
use common::http::User;
use common::ws::{Realtime, Socket, event_type, seq, ws_url};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Reads event frames until one at or past `last`; their sequences.
async fn sequences_until(socket: &mut Socket, last: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    while seen.last().is_none_or(|&s| s < last) {
        seen.push(seq(&socket.next_event().await));
    }
    seen
}

#[tokio::test]
async fn a_message_sent_through_one_gateway_reaches_a_member_on_another_and_no_one_else() {
    let env = TestEnv::new().await;
    let rt = Realtime::start(&env).await;
    let [ann, bob, eve] = rt.users(&env, ["ann", "bob", "eve"]).await;
    let chat = rt.group(&[&ann, &bob]).await;
    let (mut bob_socket, _, _) = Socket::resume(&rt.second, &bob.token, None).await;
    let (mut eve_socket, _, _) = Socket::resume(&rt.main, &eve.token, None).await;
    let (mut ann_socket, _, _) = Socket::resume(&rt.main, &ann.token, None).await;

    let sent = rt.send(&chat, &ann, "hello across gateways").await;
    let frame = bob_socket.next_event().await;
    assert_eq!(seq(&frame), sent);
    assert_eq!(frame["chat_id"], chat.as_str());
    assert_eq!(event_type(&frame), "MessageSent");
    assert_eq!(frame["event"]["payload"]["body"], "hello across gateways");
    assert_eq!(
        seq(&ann_socket.next_event().await),
        sent,
        "the sender's devices get it too"
    );

    // Typing goes to the others in the chat, over core NATS, across gateways.
    ann_socket
        .send(json!({"type": "typing", "chat_id": chat, "state": "start"}))
        .await;
    let typing = bob_socket.next().await;
    assert_eq!(typing["type"], "typing", "{typing}");
    assert_eq!(typing["user_id"], ann.id.as_str());
    assert_eq!(typing["state"], "start");
    assert!(typing["expires_in_ms"].as_u64().unwrap() > 0);

    // Eve is in no chat: she sees neither the message nor the typing.
    assert_eq!(eve_socket.try_next(Duration::from_millis(300)).await, None);
    // Nor may she type into a chat she is not in.
    eve_socket
        .send(json!({"type": "typing", "chat_id": chat, "state": "start"}))
        .await;
    let refused = eve_socket.next().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "not_a_member");
    assert_eq!(refused["fatal"], false);
}

#[tokio::test]
async fn resuming_after_a_disconnect_in_a_burst_loses_nothing_and_repeats_nothing() {
    let env = TestEnv::new().await;
    let rt = Realtime::start(&env).await;
    let (ann, bob) = (rt.user(&env, "ann").await, rt.user(&env, "bob").await);
    let chat = rt.group(&[&ann, &bob]).await;
    let other = rt.group(&[&bob, &ann]).await;
    let (mut socket, _, start) = Socket::resume(&rt.second, &bob.token, None).await;

    let burst = 300;
    let sending = async {
        let mut sequences = Vec::new();
        for i in 0..burst {
            let target = if i % 3 == 0 { &other } else { &chat };
            sequences.push(rt.send(target, &ann, &format!("m{i}")).await);
        }
        sequences
    };
    // Take part of the burst, then drop the connection without a word.
    let taking = async move {
        let mut received = Vec::new();
        while received.len() < 60 {
            received.push(seq(&socket.next_event().await));
        }
        drop(socket);
        received
    };
    let (sent, mut received) = tokio::join!(sending, taking);
    let cursor = *received.last().unwrap();
    // Resume on the other gateway.
    let (mut socket, missed, ready) = Socket::resume(&rt.main, &bob.token, Some(cursor)).await;
    received.extend(missed.iter().map(seq));
    let last = *sent.iter().max().unwrap();
    if ready < last {
        received.extend(sequences_until(&mut socket, last).await);
    }
    let mut expected = sent.clone();
    expected.sort_unstable();
    assert!(
        received.windows(2).all(|w| w[0] < w[1]),
        "in stream order, no repeat"
    );
    assert_eq!(received, expected, "exactly what was sent after {start}");
}

#[tokio::test]
async fn a_member_gets_a_chat_only_between_joining_and_leaving_live_and_on_replay() {
    let env = TestEnv::new().await;
    let rt = Realtime::start(&env).await;
    let [ann, bob, cid] = rt.users(&env, ["ann", "bob", "cid"]).await;
    let chat = rt.group(&[&ann, &bob]).await;
    let (mut cid_socket, _, origin) = Socket::resume(&rt.second, &cid.token, None).await;
    let before = rt.send(&chat, &ann, "before cid").await;
    let (status, _) = rt
        .call(
            Method::POST,
            &format!("/v1/chats/{chat}/members"),
            &ann,
            Some(json!({"user_ids": [cid.id]})),
        )
        .await;
    assert!(status.is_success());
    let added = cid_socket.next_event().await;
    assert_eq!(event_type(&added), "MembersAdded");
    assert!(seq(&added) > before);
    let during = rt.send(&chat, &bob, "while cid is in").await;
    assert_eq!(seq(&cid_socket.next_event().await), during);
    let (status, _) = rt
        .call(
            Method::DELETE,
            &format!("/v1/chats/{chat}/members/{}", cid.id),
            &ann,
            None,
        )
        .await;
    assert!(status.is_success());
    let removed = cid_socket.next_event().await;
    assert_eq!(event_type(&removed), "MemberRemoved");
    let after = rt.send(&chat, &ann, "after cid").await;
    // Ann's later message reaches Bob but not Cid.
    let (_, to_bob, _) = Socket::resume(&rt.main, &bob.token, Some(after - 1)).await;
    assert_eq!(to_bob.iter().map(seq).collect::<Vec<_>>(), vec![after]);
    assert_eq!(cid_socket.try_next(Duration::from_millis(300)).await, None);

    // A replay from before any of it gives the same stretch and nothing outside it.
    let (_, replayed, _) = Socket::resume(&rt.main, &cid.token, Some(origin)).await;
    let replayed: Vec<u64> = replayed.iter().map(seq).collect();
    assert_eq!(replayed, vec![seq(&added), during, seq(&removed)]);
}

#[tokio::test]
async fn a_revoked_session_is_closed_within_a_second_and_refused_on_connect() {
    let env = TestEnv::new().await;
    let rt = Realtime::start(&env).await;
    let token = common::http::sign_up(&rt.http, &rt.main, "rev").await.token;
    let (mut on_main, _, _) = Socket::resume(&rt.main, &token, None).await;
    let (mut on_second, _, _) = Socket::resume(&rt.second, &token, None).await;

    let revoked = rt
        .http
        .delete(rt.main.url("/v1/sessions/current"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    for socket in [&mut on_main, &mut on_second] {
        let frame = socket
            .try_next(Duration::from_secs(1))
            .await
            .expect("closed within a second");
        assert_eq!(frame["code"], "session_ended", "{frame}");
        assert_eq!(frame["fatal"], true);
        let closed = socket.next().await;
        assert_eq!(closed, json!({"type": "closed", "code": 4001}));
    }
    let refused = tokio_tungstenite::connect_async(bearer_request(&rt, &token)).await;
    assert_http_status(refused, 401);
}

fn bearer_request(
    rt: &Realtime,
    token: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = ws_url(&rt.second).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn assert_http_status<T>(result: Result<T, tokio_tungstenite::tungstenite::Error>, status: u16) {
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        }
        Err(other) => panic!("expected HTTP {status}, got {other}"),
        Ok(_) => panic!("expected HTTP {status}, the upgrade succeeded"),
    }
}

#[tokio::test]
async fn bad_tokens_origins_and_frames_get_clear_errors() {
    let env = TestEnv::new().await;
    let rt = Realtime::start(&env).await;
    let ann = rt.user(&env, "ann").await;
    let no_token = ws_url(&rt.second).into_client_request().unwrap();
    assert_http_status(tokio_tungstenite::connect_async(no_token).await, 401);
    assert_http_status(
        tokio_tungstenite::connect_async(bearer_request(&rt, "not.a.token")).await,
        401,
    );
    let mut from_a_page = bearer_request(&rt, &ann.token);
    from_a_page
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert_http_status(tokio_tungstenite::connect_async(from_a_page).await, 403);
    // The web app served by the same process connects from its own origin.
    let mut same_origin = bearer_request(&rt, &ann.token);
    let host = same_origin.headers()["host"].to_str().unwrap().to_owned();
    same_origin
        .headers_mut()
        .insert("origin", format!("http://{host}").parse().unwrap());
    assert!(tokio_tungstenite::connect_async(same_origin).await.is_ok());
    // A token in the query, as browsers send it.
    let url = format!("{}?access_token={}", ws_url(&rt.main), ann.token);
    let (mut stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    use futures::StreamExt as _;
    assert!(stream.next().await.is_some());

    let mut socket = Socket::connect(&rt.main, &ann.token).await;
    assert_eq!(socket.hello["user_id"], ann.id.as_str());
    assert_eq!(socket.hello["v"], 1);
    socket.send(json!({"type": "ping", "id": "p1"})).await;
    assert_eq!(
        socket.next().await,
        json!({"type": "pong", "v": 1, "id": "p1"})
    );
    socket.send(json!({"type": "typing", "chat_id": "x"})).await;
    assert_eq!(socket.next().await["code"], "bad_frame");
    socket
        .send(json!({"type": "delivered", "chat_id": uuid::Uuid::nil(), "up_to": 1}))
        .await;
    assert_eq!(socket.next().await["code"], "resume_first");
    socket
        .send(json!({"type": "resume", "cursor": 1_000_000_000}))
        .await;
    let ahead = socket.next().await;
    assert_eq!(ahead["code"], "cursor_ahead", "{ahead}");
    assert_eq!(socket.next().await["code"], 4011);

    let (mut socket, _, _) = Socket::resume(&rt.main, &ann.token, None).await;
    socket
        .send(json!({"type": "read", "chat_id": uuid::Uuid::nil(), "up_to": 1}))
        .await;
    assert_eq!(socket.next().await["code"], "not_a_member");
    socket.send(json!({"type": "resume", "cursor": null})).await;
    assert_eq!(socket.next().await["code"], "already_resumed");
    for _ in 0..20 {
        socket.send(json!({"type": "nonsense"})).await;
    }
    let mut last = Value::Null;
    while last["type"] != "closed" {
        last = socket.next().await;
    }
    assert_eq!(last["code"], 1008);
    let metrics = rt
        .http
        .get(rt.main.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"natter_gateway_closed_total{reason="protocol_violation"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"natter_gateway_closed_total{reason="cursor_ahead"} 1"#));
}

#[tokio::test]
async fn delivered_acknowledgements_are_batched_into_one_marker_per_chat() {
    let env = TestEnv::new().await;
    let rt = Realtime::start(&env).await;
    let (ann, bob) = (rt.user(&env, "ann").await, rt.user(&env, "bob").await);
    let chat = rt.group(&[&ann, &bob]).await;
    let (mut socket, _, _) = Socket::resume(&rt.second, &bob.token, None).await;
    let mut last = 0;
    for i in 0..5 {
        last = rt.send(&chat, &ann, &format!("m{i}")).await;
    }
    let seen = sequences_until(&mut socket, last).await;
    for sequence in &seen {
        socket
            .send(json!({"type": "delivered", "chat_id": chat, "up_to": sequence}))
            .await;
    }
    // One DeliveredMarked for the five acknowledgements, up to the last.
    let marker = socket.next_event().await;
    assert_eq!(event_type(&marker), "DeliveredMarked", "{marker}");
    assert_eq!(marker["event"]["payload"]["up_to"], last);
    assert_eq!(socket.try_next(Duration::from_millis(1_500)).await, None);
    common::eventually(Duration::from_secs(5), "the delivered state", || async {
        let (_, history) = rt
            .call(
                Method::GET,
                &format!("/v1/chats/{chat}/messages?limit=10"),
                &ann,
                None,
            )
            .await;
        let messages = history["items"].as_array().cloned().unwrap_or_default();
        let newest = messages.iter().find(|m| m["sequence"] == last);
        newest.is_some_and(|m| m["receipt"] == "delivered")
    })
    .await;
}

/// The next event frame is of `kind`, for a message at `number` or a marker up to it.
async fn next_is(socket: &mut Socket, kind: &str, number: u64) {
    let frame = socket.next_event().await;
    assert_eq!(event_type(&frame), kind, "{frame}");
    let found = match kind {
        "MessageSent" => seq(&frame),
        _ => frame["event"]["payload"]["up_to"].as_u64().unwrap(),
    };
    assert_eq!(found, number, "{frame}");
}

#[tokio::test]
async fn a_members_markers_reach_their_own_devices_and_the_senders_they_concern() {
    let env = TestEnv::new().await;
    let rt = Realtime::start(&env).await;
    let [ann, bob, cid] = rt.users(&env, ["ann", "bob", "cid"]).await;
    let chat = rt.group(&[&ann, &bob, &cid]).await;
    // Ann's, Cid's, and Bob's two devices, on both gateways.
    let mut sockets = [
        Socket::resume(&rt.main, &ann.token, None).await.0,
        Socket::resume(&rt.second, &cid.token, None).await.0,
        Socket::resume(&rt.main, &bob.token, None).await.0,
        Socket::resume(&rt.second, &bob.token, None).await.0,
    ];
    // Everyone gets the message; Bob's device acknowledges it, the gateway writes his
    // marker, and both his devices get it.
    async fn round(rt: &Realtime, chat: &str, from: &User, sockets: &mut [Socket; 4]) -> u64 {
        let sent = rt.send(chat, from, "hello").await;
        for socket in sockets.iter_mut() {
            next_is(socket, "MessageSent", sent).await;
        }
        sockets[2]
            .send(json!({"type": "delivered", "chat_id": chat, "up_to": sent}))
            .await;
        next_is(&mut sockets[2], "DeliveredMarked", sent).await;
        next_is(&mut sockets[3], "DeliveredMarked", sent).await;
        sent
    }

    // Bob's first marker seen: the gateways know nothing before it, so everyone gets it.
    let first = round(&rt, &chat, &ann, &mut sockets).await;
    next_is(&mut sockets[0], "DeliveredMarked", first).await;
    next_is(&mut sockets[1], "DeliveredMarked", first).await;
    // His next passes only Cid's message: Cid gets it, Ann does not (her next frame is
    // the next message).
    let second = round(&rt, &chat, &cid, &mut sockets).await;
    next_is(&mut sockets[1], "DeliveredMarked", second).await;
    // The next passes Ann's message: she gets it, Cid does not.
    let third = round(&rt, &chat, &ann, &mut sockets).await;
    next_is(&mut sockets[0], "DeliveredMarked", third).await;
    let last = rt.send(&chat, &bob, "from bob").await;
    next_is(&mut sockets[0], "MessageSent", last).await;
    next_is(&mut sockets[1], "MessageSent", last).await;
}

#[tokio::test]
async fn a_slow_consumer_is_disconnected_and_resumes_without_loss() {
    let env = TestEnv::new().await;
    let settings = natter::settings::GatewaySettings {
        gateway_inbox: 16,
        ..Default::default()
    };
    let rt = Realtime::start_with(&env, settings).await;
    let (ann, bob) = (rt.user(&env, "ann").await, rt.user(&env, "bob").await);
    let chat = rt.group(&[&ann, &bob]).await;
    // A client with a small receive buffer that stops reading.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(rt.second.address).await.unwrap();
    let request = bearer_request(&rt, &bob.token);
    let (stream, _) = tokio_tungstenite::client_async_with_config(
        request,
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
        Some(common::ws::client_config()),
    )
    .await
    .unwrap();
    let mut slow = Socket {
        stream,
        hello: Value::Null,
    };
    assert_eq!(slow.next().await["type"], "hello");
    slow.send(json!({"type": "resume", "cursor": null})).await;
    let ready = slow.next().await;
    assert_eq!(ready["type"], "ready");

    let body = "x".repeat(8_000);
    let mut sent = Vec::new();
    for chunk in 0..40 {
        let sends = (0..20).map(|i| {
            let (rt, chat, ann, body) = (&rt, &chat, &ann, &body);
            async move { rt.send(chat, ann, &format!("{chunk}-{i}-{body}")).await }
        });
        sent.extend(futures::future::join_all(sends).await);
    }
    sent.sort_unstable();
    // Now read: what was queued, then the reason, then the close.
    let mut received = Vec::new();
    let reason = loop {
        let frame = slow.next().await;
        match frame["type"].as_str() {
            Some("event") => received.push(seq(&frame)),
            Some("error") => break frame,
            _ => panic!("unexpected {frame}"),
        }
    };
    assert_eq!(reason["code"], "slow_consumer", "{reason}");
    assert_eq!(slow.next().await["code"], 4008);
    assert!(received.len() < sent.len());
    let (mut socket, missed, ready) =
        Socket::resume(&rt.main, &bob.token, received.last().copied()).await;
    received.extend(missed.iter().map(seq));
    let last = *sent.last().unwrap();
    if ready < last {
        received.extend(sequences_until(&mut socket, last).await);
    }
    assert_eq!(received, sent);
}

/// Users in a few groups, and what each may see.
fn members_of(groups: &[Vec<usize>], user: usize) -> Vec<usize> {
    groups
        .iter()
        .enumerate()
        .filter(|(_, members)| members.contains(&user))
        .map(|(group, _)| group)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_two_hundred_clients_dropping_and_reconnecting_while_twenty_thousand_messages_flow() {
    use rand::{Rng, SeedableRng};
    let env = TestEnv::new().await;
    let rt = std::sync::Arc::new(Realtime::start(&env).await);
    let clients = 200;
    let messages = 20_000;
    let mut users = Vec::new();
    for i in 0..clients {
        users.push(rt.user(&env, &format!("soak{i}")).await);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // 40 groups of 5 to 15; every user in at least one.
    let mut groups: Vec<Vec<usize>> = (0..40)
        .map(|g| {
            let size = rng.random_range(5..=15);
            let mut members: Vec<usize> = vec![g % clients];
            while members.len() < size {
                let user = rng.random_range(0..clients);
                if !members.contains(&user) {
                    members.push(user);
                }
            }
            members
        })
        .collect();
    for user in 0..clients {
        if members_of(&groups, user).is_empty() {
            groups[user % 40].push(user);
        }
    }
    let mut chats = Vec::new();
    for members in &groups {
        let list: Vec<&User> = members.iter().map(|&m| &users[m]).collect();
        chats.push(rt.group(&list).await);
    }
    let start = env.log.last_sequence().await.unwrap();
    let done = std::sync::Arc::new(tokio::sync::watch::Sender::new(false));
    let users = std::sync::Arc::new(users);

    // Each client connects to either gateway, reads for a while, drops, and resumes.
    let mut readers = Vec::new();
    for user in 0..clients {
        let (rt, users, mut done) = (rt.clone(), users.clone(), done.subscribe());
        readers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + user as u64);
            let mut received: Vec<u64> = Vec::new();
            let mut cursor = start;
            let mut reconnects = 0u32;
            loop {
                let finished = *done.borrow_and_update();
                let app = if rng.random_bool(0.5) {
                    &rt.main
                } else {
                    &rt.second
                };
                let (mut socket, missed, _) =
                    Socket::resume(app, &users[user].token, Some(cursor)).await;
                received.extend(missed.iter().map(seq));
                cursor = received.last().copied().unwrap_or(cursor).max(cursor);
                if finished {
                    return (received, reconnects);
                }
                let stay = Duration::from_millis(rng.random_range(200..2_000));
                let until = tokio::time::Instant::now() + stay;
                while let Ok(Some(frame)) =
                    tokio::time::timeout_at(until, socket.try_next(Duration::from_secs(30))).await
                {
                    match frame["type"].as_str() {
                        Some("event") => {
                            let s = seq(&frame);
                            received.push(s);
                            cursor = s;
                        }
                        Some("closed") | Some("error") => break,
                        _ => {}
                    }
                }
                reconnects += 1;
                drop(socket);
            }
        }));
    }
    // The senders: random members of random groups, 32 at a time, straight through
    // the command handler of another process (the REST path has tests of its own).
    let writer = natter_commands::messages::Messages::new(
        env.second_log().await,
        natter_commands::CommandMetrics::default(),
    );
    let mut sends = Vec::new();
    for i in 0..messages {
        let group = rng.random_range(0..groups.len());
        let sender = groups[group][rng.random_range(0..groups[group].len())];
        sends.push((
            chats[group].parse::<uuid::Uuid>().unwrap(),
            users[sender].id.parse::<uuid::Uuid>().unwrap(),
            i,
        ));
    }
    let sent: Vec<u64> = futures::stream::iter(sends)
        .map(|(chat, sender, i)| {
            let writer = writer.clone();
            async move {
                let message = natter_commands::messages::NewMessage {
                    client_id: natter_domain::chat::ClientId::parse(&format!("soak-{i}")).unwrap(),
                    body: natter_domain::chat::MessageBody::parse(&format!("soak {i}")).unwrap(),
                    reply_to: None,
                    mentions: Vec::new(),
                    forwarded: 0,
                    attachment: None,
                };
                let metadata = natter_schema::Metadata::new(Some(sender), uuid::Uuid::now_v7());
                writer
                    .send(chat, sender, message, metadata)
                    .await
                    .unwrap()
                    .sequence
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(sent.len(), messages);
    done.send_replace(true);
    let mut total_reconnects = 0;
    for (user, reader) in readers.into_iter().enumerate() {
        let (received, reconnects) = reader.await.unwrap();
        total_reconnects += reconnects;
        let mut expected = Vec::new();
        for group in members_of(&groups, user) {
            let filter = format!("{}.evt.*.{}", env.prefix, chats[group]);
            let events: Vec<_> = env
                .log
                .read_matching(filter, natter_eventlog::Start::Sequence(start + 1))
                .collect::<Vec<_>>()
                .await;
            expected.extend(events.into_iter().map(|e| e.unwrap().sequence));
        }
        expected.sort_unstable();
        assert_eq!(received.len(), expected.len(), "client {user}: count");
        assert!(received == expected, "client {user}: sequence differs");
    }
    assert!(total_reconnects > clients as u32, "clients did reconnect");
}

use futures::StreamExt;

#[tokio::test]
async fn the_protocol_is_served_as_asyncapi_and_its_client_examples_parse() {
    let env = TestEnv::new().await;
    let rt = Realtime::start(&env).await;
    let response = rt
        .http
        .get(rt.main.url("/asyncapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let messages = doc["components"]["messages"].as_object().unwrap();
    let mut client_types = Vec::new();
    for (name, message) in messages {
        let example = &message["examples"][0]["payload"];
        if name.starts_with("client_") {
            serde_json::from_value::<natter_gateway::protocol::ClientFrame>(example.clone())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            client_types.push(example["type"].as_str().unwrap().to_owned());
        } else {
            assert_eq!(example["v"], 1, "{name}");
        }
    }
    client_types.sort();
    assert_eq!(
        client_types,
        [
            "auth",
            "delivered",
            "ping",
            "presence_subscribe",
            "read",
            "resume",
            "typing"
        ]
    );
}

#[tokio::test]
async fn presence_reaches_contacts_as_privacy_allows_and_a_flapping_connection_records_nothing() {
    let env = TestEnv::new().await;
    let settings = natter::settings::GatewaySettings {
        gateway_presence_debounce_ms: 400,
        ..Default::default()
    };
    let rt = Realtime::start_with(&env, settings).await;
    let [ann, bob, eve] = rt.users(&env, ["ann", "bob", "eve"]).await;
    let (status, _) = rt
        .call(
            Method::POST,
            "/v1/chats/direct",
            &ann,
            Some(json!({"user_id": bob.id})),
        )
        .await;
    assert!(status.is_success());
    let (status, _) = rt
        .call(
            Method::PUT,
            "/v1/users/me/privacy",
            &ann,
            Some(json!({"last_seen": "contacts"})),
        )
        .await;
    assert!(status.is_success());
    let presence_path = format!("/v1/users/{}/presence", ann.id);
    // Eve shares no direct chat with Ann: once Ann's setting is in, Ann's presence
    // does not exist for her. Bob, a contact, sees it.
    common::eventually(Duration::from_secs(5), "Ann's setting", || async {
        rt.call(Method::GET, &presence_path, &eve, None).await.0 == 404
    })
    .await;
    common::eventually(
        Duration::from_secs(5),
        "Bob sees Ann's presence",
        || async { rt.call(Method::GET, &presence_path, &bob, None).await.0 == 200 },
    )
    .await;

    let (mut bob_socket, _, _) = Socket::resume(&rt.second, &bob.token, None).await;
    bob_socket
        .send(json!({"type": "presence_subscribe", "user_ids": [ann.id, eve.id]}))
        .await;
    let now = bob_socket.next().await;
    assert_eq!(now["type"], "presence", "{now}");
    assert_eq!(now["user_id"], ann.id.as_str());
    assert_eq!(now["online"], false);
    let eves = bob_socket.next().await;
    assert_eq!(
        eves["user_id"],
        eve.id.as_str(),
        "Eve shows hers to everyone"
    );

    let (ann_socket, _, _) = Socket::resume(&rt.main, &ann.token, None).await;
    let online = bob_socket.next().await;
    assert_eq!(
        (online["user_id"].as_str(), online["online"].as_bool()),
        (Some(ann.id.as_str()), Some(true))
    );
    let (status, seen) = rt.call(Method::GET, &presence_path, &bob, None).await;
    assert_eq!((status.as_u16(), &seen["online"]), (200, &json!(true)));

    // Reconnecting within the debounce changes nothing anyone can see.
    drop(ann_socket);
    let (ann_socket, _, _) = Socket::resume(&rt.main, &ann.token, None).await;
    assert_eq!(bob_socket.try_next(Duration::from_millis(800)).await, None);
    drop(ann_socket);
    let offline = bob_socket.next().await;
    assert_eq!(offline["online"], false, "{offline}");
    let last_seen = offline["last_seen_at"].as_str().unwrap().to_owned();
    common::eventually(Duration::from_secs(5), "the recorded last seen", || async {
        let (_, seen) = rt.call(Method::GET, &presence_path, &bob, None).await;
        seen["online"] == false && seen["last_seen_at"].as_str() == Some(last_seen.as_str())
    })
    .await;
    let recorded: Vec<_> = env
        .log
        .read_matching(
            format!("{}.evt.user.{}", env.prefix, ann.id),
            natter_eventlog::Start::Sequence(1),
        )
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|event| event.unwrap().envelope.event_type)
        .filter(|kind| kind == "LastSeenRecorded")
        .collect();
    assert_eq!(recorded.len(), 1, "one last seen for one real departure");
}

/// A live event lost on its way to a gateway (here: a republished event whose subject's
/// previous one never came) makes the chat's watchers resync, by the sequences alone:
/// no notice of the loss is needed. Before, the gateway went on delivering, and the
/// client never had the lost event.
#[tokio::test]
async fn a_gap_in_a_chats_live_events_makes_its_watchers_resync() {
    let env = TestEnv::new().await;
    let rt = Realtime::start(&env).await;
    let (ann, bob) = (rt.user(&env, "ann").await, rt.user(&env, "bob").await);
    let chat = rt.group(&[&ann, &bob]).await;
    let first = rt.send(&chat, &ann, "one").await;
    let (mut socket, _, _) = Socket::resume(&rt.main, &bob.token, Some(first)).await;
    let second = rt.send(&chat, &ann, "two").await;
    assert_eq!(seq(&socket.next_event().await), second);

    // The stream republishes the next message of the chat, but the one before it
    // (stored after `second`) never reached the gateway.
    let client = common::connect(&env.nats_url).await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Sequence", (second + 2).to_string().as_str());
    headers.insert("Nats-Last-Sequence", (second + 1).to_string().as_str());
    client
        .publish_with_headers(
            format!("{}.live.chatmsg.{chat}", env.prefix),
            headers,
            "{}".into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();

    let frame = socket.next().await;
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], "resync", "{frame}");
    assert_eq!(socket.next().await["code"], 4009);
}

/// A gateway whose subscriptions hold only a few live events loses many of a burst;
/// its clients resync as often as needed and, resuming from their cursors, get every
/// message once, in order.
#[tokio::test]
async fn an_overflowing_subscription_loses_nothing_a_resuming_client_sees() {
    let env = TestEnv::new().await;
    let settings = natter::settings::GatewaySettings {
        gateway_subscription_capacity: 2,
        ..Default::default()
    };
    let rt = Realtime::start_with(&env, settings).await;
    let (ann, bob) = (rt.user(&env, "ann").await, rt.user(&env, "bob").await);
    let chat = rt.group(&[&ann, &bob]).await;
    let (mut socket, _, mut cursor) = Socket::resume(&rt.second, &bob.token, None).await;

    let overflowed = Arc::new(AtomicBool::new(false));
    let mut sender = Some(tokio::spawn({
        let (app, chat, token) = (rt.main.address, chat.clone(), ann.token.clone());
        let overflowed = Arc::clone(&overflowed);
        async move {
            let http = reqwest::Client::new();
            let mut sent = Vec::new();
            // Bursts of 100 at once: smaller ones, spread by a fast API, could all be
            // taken in before the subscription filled. At least three, and more (up to
            // twenty) until one overflows: on a cluster, whose appends are slower,
            // three bursts may all be taken in.
            for chunk in 0..20 {
                if chunk >= 3 && overflowed.load(Ordering::Relaxed) {
                    break;
                }
                let sends = (0..100).map(|i| {
                    let (http, chat, token) = (&http, &chat, &token);
                    async move {
                        let answer = http
                            .post(format!("http://{app}/v1/chats/{chat}/messages"))
                            .bearer_auth(token)
                            .json(&json!({"client_id": format!("{chunk}-{i}"), "body": "burst"}))
                            .send()
                            .await
                            .unwrap();
                        assert!(answer.status().is_success());
                        let body: Value = answer.json().await.unwrap();
                        body["sequence"].as_u64().unwrap()
                    }
                });
                sent.extend(futures::future::join_all(sends).await);
            }
            sent.sort_unstable();
            sent
        }
    }));

    let mut received = Vec::new();
    let mut resyncs = 0;
    let mut sent: Option<Vec<u64>> = None;
    loop {
        if let Some(sent) = &sent
            && received.last() == sent.last()
        {
            break;
        }
        if let Some(task) = sender.take_if(|task| task.is_finished()) {
            sent = Some(task.await.unwrap());
            continue;
        }
        let Some(frame) = socket.try_next(Duration::from_millis(200)).await else {
            continue;
        };
        match frame["type"].as_str() {
            Some("event") if event_type(&frame) == "MessageSent" => {
                cursor = seq(&frame);
                received.push(cursor);
            }
            Some("event") => cursor = seq(&frame),
            Some("closed") => {
                resyncs += 1;
                overflowed.store(true, Ordering::Relaxed);
                let (again, missed, ready) =
                    Socket::resume(&rt.second, &bob.token, Some(cursor)).await;
                for frame in missed {
                    if event_type(&frame) == "MessageSent" {
                        received.push(seq(&frame));
                    }
                }
                cursor = ready;
                socket = again;
            }
            _ => {}
        }
    }
    assert!(resyncs > 0, "the subscription never overflowed");
    assert_eq!(received, sent.unwrap(), "every message once, in order");
}

/// A read marker over the socket that does not move (sent again, or behind the last)
/// stores nothing and reaches no member; one that moves does. Before, every one was
/// appended and sent to every member.
#[tokio::test]
async fn read_markers_over_the_socket_that_do_not_move_store_nothing() {
    let env = TestEnv::new().await;
    let rt = Realtime::start(&env).await;
    let (ann, bob) = (rt.user(&env, "ann").await, rt.user(&env, "bob").await);
    let chat = rt.group(&[&ann, &bob]).await;
    let first = rt.send(&chat, &ann, "one").await;
    let second = rt.send(&chat, &ann, "two").await;
    let (mut socket, _, _) = Socket::resume(&rt.main, &bob.token, Some(second)).await;
    socket
        .send(json!({"type": "read", "chat_id": chat, "up_to": second}))
        .await;
    let marker = socket.next_event().await;
    assert_eq!(event_type(&marker), "ReadMarked", "{marker}");
    let stored = env.log.last_sequence().await.unwrap();

    for up_to in [second, first, second] {
        socket
            .send(json!({"type": "read", "chat_id": chat, "up_to": up_to}))
            .await;
    }
    assert_eq!(socket.try_next(Duration::from_millis(1_000)).await, None);
    assert_eq!(env.log.last_sequence().await.unwrap(), stored);
}
