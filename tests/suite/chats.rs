//! Chats through real HTTP: direct chats, groups, membership and admin rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::TestEnv;
use common::http::Api;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn a_direct_chat_exists_once_per_pair_even_when_both_open_it_at_once() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (ann, ben) = (api.user("ann").await, api.user("ben").await);
    let (a, b) = tokio::join!(
        api.call(
            Method::POST,
            "/v1/chats/direct",
            &ann,
            Some(json!({"user_id": ben.id}))
        ),
        api.call(
            Method::POST,
            "/v1/chats/direct",
            &ben,
            Some(json!({"user_id": ann.id}))
        ),
    );
    assert_eq!(a.1["chat_id"], b.1["chat_id"], "{a:?} {b:?}");
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CREATED],
        "one opens it, the other finds it"
    );
    let (status, again) = api
        .call(
            Method::POST,
            "/v1/chats/direct",
            &ann,
            Some(json!({"user_id": ben.id})),
        )
        .await;
    assert_eq!(
        (status, &again["chat_id"]),
        (StatusCode::OK, &a.1["chat_id"])
    );

    let (status, list) = api
        .call(
            Method::GET,
            &format!("/v1/chats?min_sequence={}", again["sequence"]),
            &ben,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["kind"], "direct");
}

#[tokio::test]
async fn the_chat_list_names_the_peer_of_a_direct_chat_and_none_for_a_group() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (eve, fox) = (api.user("eve").await, api.user("fox").await);
    let (status, direct) = api
        .call(
            Method::POST,
            "/v1/chats/direct",
            &eve,
            Some(json!({"user_id": fox.id})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{direct}");
    let group = api.group(&[&eve, &fox]).await;
    let (_, message) = api
        .call(
            Method::POST,
            &format!("/v1/chats/{group}/messages"),
            &eve,
            Some(json!({"client_id": uuid::Uuid::now_v7().to_string(), "body": "hi"})),
        )
        .await;

    for (user, peer) in [(&eve, &fox), (&fox, &eve)] {
        let (status, list) = api
            .call(
                Method::GET,
                &format!("/v1/chats?min_sequence={}", message["sequence"]),
                user,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let items = list["items"].as_array().unwrap();
        let summary = |chat: &Value| {
            items
                .iter()
                .find(|item| item["chat_id"] == *chat)
                .cloned()
                .unwrap_or_else(|| panic!("{chat} not in {list}"))
        };
        assert_eq!(summary(&direct["chat_id"])["peer_id"], peer.id.as_str());
        assert_eq!(summary(&json!(group))["peer_id"], Value::Null);
    }
}

#[tokio::test]
async fn blocks_oneself_and_strangers_are_refused() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (cat, dan) = (api.user("cat").await, api.user("dan").await);
    let (status, _) = api
        .call(
            Method::PUT,
            &format!("/v1/users/me/blocks/{}", cat.id),
            &dan,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = api
        .call(
            Method::POST,
            "/v1/chats/direct",
            &cat,
            Some(json!({"user_id": dan.id})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("blocked"))
    );
    let (status, problem) = api
        .call(
            Method::POST,
            "/v1/chats/direct",
            &cat,
            Some(json!({"user_id": cat.id})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("cannot_chat_with_self")
        )
    );
    let stranger = uuid::Uuid::now_v7();
    let (status, problem) = api
        .call(
            Method::POST,
            "/v1/chats/direct",
            &cat,
            Some(json!({"user_id": stranger})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_user"))
    );
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/chats/groups",
            &cat,
            Some(json!({"name": "G", "members": [stranger]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, problem) = api
        .call(
            Method::POST,
            "/v1/chats/groups",
            &cat,
            Some(json!({"name": "  ", "members": []})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_name"))
    );
}

#[tokio::test]
async fn only_admins_manage_a_group_and_the_last_admin_hands_over() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (eve, fin, gil, hal) = (
        api.user("eve").await,
        api.user("fin").await,
        api.user("gil").await,
        api.user("hal").await,
    );
    let (status, group) = api
        .call(
            Method::POST,
            "/v1/chats/groups",
            &eve,
            Some(json!({"name": "Crew", "members": [fin.id, gil.id]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let chat = group["chat_id"].as_str().unwrap().to_owned();
    let path = |rest: &str| format!("/v1/chats/{chat}{rest}");

    // Not an admin: no membership changes, no renames.
    let (status, problem) = api
        .call(
            Method::POST,
            &path("/members"),
            &fin,
            Some(json!({"user_ids": [hal.id]})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_admin"))
    );
    let (status, _) = api
        .call(
            Method::PATCH,
            &path(""),
            &fin,
            Some(json!({"name": "Mine"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Not a member: the chat does not exist.
    let (status, _) = api.call(Method::GET, &path(""), &hal, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .call(
            Method::POST,
            &path("/members"),
            &hal,
            Some(json!({"user_ids": [hal.id]})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = api
        .call(
            Method::POST,
            &path("/members"),
            &eve,
            Some(json!({"user_ids": [hal.id]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The creator leaves: the oldest member (fin) becomes admin.
    let (status, left) = api
        .call(
            Method::DELETE,
            &path(&format!("/members/{}", eve.id)),
            &eve,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, details) = api
        .call(
            Method::GET,
            &format!("/v1/chats/{chat}?min_sequence={}", left["sequence"]),
            &fin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{details}");
    let members = details["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert!(
        members
            .iter()
            .any(|m| m["user_id"] == fin.id.as_str() && m["admin"] == true)
    );
    let (status, _) = api.call(Method::GET, &path(""), &eve, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a former member no longer sees it"
    );

    // The last admin cannot step down; after promoting another, they can.
    let (status, problem) = api
        .call(
            Method::DELETE,
            &path(&format!("/admins/{}", fin.id)),
            &fin,
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_admin"))
    );
    let (status, _) = api
        .call(
            Method::PUT,
            &path(&format!("/admins/{}", gil.id)),
            &fin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .call(
            Method::DELETE,
            &path(&format!("/admins/{}", fin.id)),
            &fin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Gil removes Hal and renames the group.
    let (status, _) = api
        .call(
            Method::DELETE,
            &path(&format!("/members/{}", hal.id)),
            &gil,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, renamed) = api
        .call(
            Method::PATCH,
            &path(""),
            &gil,
            Some(json!({"name": "Crew 2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = api
        .call(
            Method::GET,
            &format!("/v1/chats?min_sequence={}", renamed["sequence"]),
            &hal,
            None,
        )
        .await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (_, list) = api.call(Method::GET, "/v1/chats", &gil, None).await;
    assert_eq!(list["items"][0]["name"], "Crew 2");
    let (status, problem) = api
        .call(Method::GET, "/v1/chats/not-a-uuid", &gil, None)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_path"))
    );
}

#[tokio::test]
async fn chat_settings_pin_at_most_three_archive_and_mute() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let me = api.user("me_user").await;
    let mut chats = Vec::new();
    for n in 0..4 {
        let other = api.user(&format!("peer_{n}")).await;
        chats.push(api.direct(&me, &other).await);
    }
    let settings = |chat: &str| format!("/v1/chats/{chat}/settings");
    let mut last = Value::Null;
    for chat in &chats[..3] {
        let (status, changed) = api
            .call(
                Method::PUT,
                &settings(chat),
                &me,
                Some(json!({"pinned": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        last = changed;
    }
    let (status, problem) = api
        .call(
            Method::PUT,
            &settings(&chats[3]),
            &me,
            Some(json!({"pinned": true})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("too_many_pinned"))
    );
    let (_, archived) = api
        .call(
            Method::PUT,
            &settings(&chats[3]),
            &me,
            Some(json!({"archived": true, "muted_until": "2030-01-01T00:00:00Z"})),
        )
        .await;
    let (_, list) = api
        .call(
            Method::GET,
            &format!(
                "/v1/chats?min_sequence={}",
                archived["sequence"]
                    .as_u64()
                    .max(last["sequence"].as_u64())
                    .unwrap()
            ),
            &me,
            None,
        )
        .await;
    let items = list["items"].as_array().unwrap();
    assert!(
        items[..3].iter().all(|c| c["pinned"] == true),
        "pinned first: {list}"
    );
    let fourth = items
        .iter()
        .find(|c| c["chat_id"] == chats[3].as_str())
        .unwrap();
    assert_eq!(
        (fourth["archived"].as_bool(), fourth["muted_until"].as_str()),
        (Some(true), Some("2030-01-01T00:00:00Z"))
    );
    // null unmutes; leaving the field out leaves it.
    let (_, unmuted) = api
        .call(
            Method::PUT,
            &settings(&chats[3]),
            &me,
            Some(json!({"muted_until": null})),
        )
        .await;
    let (_, list) = api
        .call(
            Method::GET,
            &format!("/v1/chats?min_sequence={}", unmuted["sequence"]),
            &me,
            None,
        )
        .await;
    let fourth = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chat_id"] == chats[3].as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        (fourth["archived"].as_bool(), &fourth["muted_until"]),
        (Some(true), &Value::Null)
    );
    // Not a member: not found.
    let stranger = api.user("stranger").await;
    let (status, _) = api
        .call(
            Method::PUT,
            &settings(&chats[0]),
            &stranger,
            Some(json!({"archived": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_group_creation_safe() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (wes, xia) = (api.user("wes").await, api.user("xia").await);
    let create = |body: Value| {
        api.http
            .post(api.app.url("/v1/chats/groups"))
            .bearer_auth(&wes.token)
            .header("idempotency-key", "group-7f3a")
            .json(&body)
            .send()
    };
    let body = json!({"name": "Once", "members": [xia.id]});
    let first = create(body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = create(body).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["chat_id"], first["chat_id"]);
    let other = create(json!({"name": "Twice", "members": [xia.id]}))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, list) = api
        .call(
            Method::GET,
            &format!("/v1/chats?min_sequence={}", again["sequence"]),
            &wes,
            None,
        )
        .await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "one group, not two"
    );
    // The same key from another user is another request.
    let theirs = api
        .http
        .post(api.app.url("/v1/chats/groups"))
        .bearer_auth(&xia.token)
        .header("idempotency-key", "group-7f3a")
        .json(&json!({"name": "Once", "members": [wes.id]}))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), StatusCode::CREATED);
}

/// The chat list comes in pages: pinned chats first, then the most recently active, and
/// following `next_cursor` gives every chat once, in the order of one whole page.
#[tokio::test]
async fn the_chat_list_comes_in_pages_that_add_up_to_the_whole() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let me = api.user("pager").await;
    let mut chats = Vec::new();
    let mut sequence = 0;
    for n in 0..7 {
        let other = api.user(&format!("paged_{n}")).await;
        let chat = api.direct(&me, &other).await;
        sequence = api.send(&chat, &other, "hi").await;
        chats.push(chat);
    }
    // Two older chats pinned: they come first.
    for chat in &chats[1..3] {
        let (status, changed) = api
            .call(
                Method::PUT,
                &format!("/v1/chats/{chat}/settings"),
                &me,
                Some(json!({"pinned": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        sequence = changed["sequence"].as_u64().unwrap();
    }
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["chat_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, whole) = api
        .call(
            Method::GET,
            &format!("/v1/chats?min_sequence={sequence}"),
            &me,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(whole["next_cursor"], Value::Null);
    let whole = ids(&whole);
    let mut expected: Vec<String> = chats[1..3].iter().rev().cloned().collect();
    expected.extend([6, 5, 4, 3, 0].map(|n| chats[n].clone()));
    // Pinned first (each pinned by a later event, but ordered by their activity).
    assert_eq!(whole[2..], expected[2..], "{whole:?}");
    assert_eq!(
        whole[..2].iter().collect::<std::collections::BTreeSet<_>>(),
        expected[..2].iter().collect()
    );

    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/v1/chats?limit=3".to_owned(),
            Some(cursor) => format!("/v1/chats?limit=3&cursor={cursor}"),
        };
        let (status, page) = api.call(Method::GET, &path, &me, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        paged.extend(ids(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(paged, whole);

    for (path, code) in [
        ("/v1/chats?limit=0", "invalid_query"),
        ("/v1/chats?limit=1001", "invalid_query"),
        ("/v1/chats?cursor=bm90IGEgY3Vyc29y", "invalid_cursor"),
        ("/v1/chats?cursor=%25%25", "invalid_cursor"),
    ] {
        let (status, problem) = api.call(Method::GET, path, &me, None).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{path}: {problem}"
        );
    }
}
