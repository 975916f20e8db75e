//! Replies, mentions, forwards, stars, pinned messages and deletes for oneself,
//! through real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::TestEnv;
use common::http::{Api, User};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Chat<'a> {
    api: &'a Api,
    id: String,
}

impl Chat<'_> {
    async fn group<'a>(api: &'a Api, admin: &User, members: &[&User]) -> Chat<'a> {
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let (_, group) = api
            .call(
                Method::POST,
                "/v1/chats/groups",
                admin,
                Some(json!({"name": "Crew", "members": ids})),
            )
            .await;
        Chat {
            api,
            id: group["chat_id"].as_str().unwrap().to_owned(),
        }
    }

    async fn call(
        &self,
        method: Method,
        rest: &str,
        user: &User,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.api
            .call(method, &format!("/v1/chats/{}{rest}", self.id), user, body)
            .await
    }

    /// Sends and returns the message's sequence.
    async fn send(&self, from: &User, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, "/messages", from, Some(body)).await
    }

    async fn say(&self, from: &User, client_id: &str, text: &str) -> u64 {
        let (status, sent) = self
            .send(from, json!({"client_id": client_id, "body": text}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sent}");
        sent["sequence"].as_u64().unwrap()
    }

    async fn history(&self, reader: &User, at: u64) -> Vec<Value> {
        let (status, page) = self
            .call(
                Method::GET,
                &format!("/messages?min_sequence={at}"),
                reader,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        page["items"].as_array().unwrap().clone()
    }

    async fn summary(&self, user: &User, at: u64) -> Value {
        let (_, list) = self
            .api
            .call(
                Method::GET,
                &format!("/v1/chats?min_sequence={at}"),
                user,
                None,
            )
            .await;
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["chat_id"] == self.id.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn code(problem: &Value) -> Option<&str> {
    problem["code"].as_str()
}

#[tokio::test]
async fn replies_stay_in_their_chat_and_mentions_flag_the_chat_for_whom_they_name() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (ada, bo, cy) = (
        api.user("ada").await,
        api.user("bo").await,
        api.user("cy").await,
    );
    let crew = Chat::group(&api, &ada, &[&bo, &cy]).await;
    let other = Chat::group(&api, &ada, &[&bo]).await;
    let elsewhere = other.say(&ada, "o1", "elsewhere").await;
    let first = crew.say(&ada, "m1", "first").await;

    let (status, problem) = crew
        .send(
            &bo,
            json!({"client_id": "r0", "body": "re", "reply_to": elsewhere}),
        )
        .await;
    assert_eq!(
        (status, code(&problem)),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reply_not_in_chat"))
    );
    let (status, sent) = crew
        .send(
            &bo,
            json!({"client_id": "r1", "body": "re @cy", "reply_to": first, "mentions": [cy.id, "0190f3a1-0000-7000-8000-0000000000ff"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let at = sent["sequence"].as_u64().unwrap();
    let history = crew.history(&ada, at).await;
    let reply = history.last().unwrap();
    assert_eq!(reply["reply_to"], first);
    assert_eq!(reply["mentions"], json!([cy.id]), "strangers are dropped");

    assert_eq!(crew.summary(&cy, at).await["mentioned"], true);
    assert_eq!(crew.summary(&ada, at).await["mentioned"], false);
    // Reading clears the flag.
    let (_, read) = crew
        .call(Method::POST, "/read", &cy, Some(json!({"up_to": at})))
        .await;
    let read_at = read["sequence"].as_u64().unwrap();
    assert_eq!(crew.summary(&cy, read_at).await["mentioned"], false);

    let too_many: Vec<String> = (0..65).map(|_| cy.id.clone()).collect();
    let (status, problem) = crew
        .send(
            &bo,
            json!({"client_id": "r2", "body": "hi", "mentions": too_many}),
        )
        .await;
    assert_eq!(
        (status, code(&problem)),
        (StatusCode::BAD_REQUEST, Some("too_many_mentions"))
    );
}

#[tokio::test]
async fn forwards_copy_what_the_sender_can_see_and_count_their_hops() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (ada, bo, cy) = (
        api.user("ada").await,
        api.user("bo").await,
        api.user("cy").await,
    );
    let source = Chat::group(&api, &ada, &[&bo]).await;
    let target = Chat::group(&api, &bo, &[&cy]).await;
    let third = Chat::group(&api, &cy, &[&ada]).await;
    let original = source.say(&ada, "s1", "the code is 4711").await;
    let doomed = source.say(&ada, "s2", "oops").await;
    source.history(&bo, doomed).await;

    let (status, sent) = target
        .send(
            &bo,
            json!({"client_id": "f1", "forward": {"chat_id": source.id, "sequence": original}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let hop1 = sent["sequence"].as_u64().unwrap();
    let forwarded = target.history(&cy, hop1).await;
    assert_eq!(forwarded[0]["body"], "the code is 4711");
    assert_eq!(forwarded[0]["forwarded"], 1);
    let (_, sent) = third
        .send(
            &cy,
            json!({"client_id": "f2", "forward": {"chat_id": target.id, "sequence": hop1}}),
        )
        .await;
    let hop2 = sent["sequence"].as_u64().unwrap();
    assert_eq!(third.history(&ada, hop2).await[0]["forwarded"], 2);

    // Only what the sender can see: cy was never in the source chat.
    let (status, _) = third
        .send(
            &cy,
            json!({"client_id": "f3", "forward": {"chat_id": source.id, "sequence": original}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nothing deleted for everyone.
    let (_, deleted) = source
        .call(Method::DELETE, &format!("/messages/{doomed}"), &ada, None)
        .await;
    source
        .history(&bo, deleted["sequence"].as_u64().unwrap())
        .await;
    let (status, problem) = target
        .send(
            &bo,
            json!({"client_id": "f4", "forward": {"chat_id": source.id, "sequence": doomed}}),
        )
        .await;
    assert_eq!(
        (status, code(&problem)),
        (StatusCode::CONFLICT, Some("message_deleted"))
    );
    // A body and a forward at once, or neither, is a bad request.
    for body in [
        json!({"client_id": "f5", "body": "x", "forward": {"chat_id": source.id, "sequence": original}}),
        json!({"client_id": "f6"}),
    ] {
        let (status, problem) = target.send(&bo, body).await;
        assert_eq!(
            (status, code(&problem)),
            (StatusCode::BAD_REQUEST, Some("invalid_message"))
        );
    }
}

#[tokio::test]
async fn stars_are_personal_pins_are_the_admins_and_a_fourth_pin_drops_the_oldest() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (ada, bo, cy) = (
        api.user("ada").await,
        api.user("bo").await,
        api.user("cy").await,
    );
    let crew = Chat::group(&api, &ada, &[&bo]).await;
    let mut sequences = Vec::new();
    for n in 0..4 {
        sequences.push(
            crew.say(&ada, &format!("m{n}"), &format!("message {n}"))
                .await,
        );
    }

    let (status, starred) = crew
        .call(
            Method::PUT,
            &format!("/messages/{}/star", sequences[1]),
            &bo,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = crew
        .call(
            Method::PUT,
            &format!("/messages/{}/star", sequences[1]),
            &cy,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not a member");
    let at = starred["sequence"].as_u64().unwrap();
    let (_, stars) = api
        .call(
            Method::GET,
            &format!("/v1/starred?min_sequence={at}"),
            &bo,
            None,
        )
        .await;
    assert_eq!(stars["items"].as_array().unwrap().len(), 1);
    assert_eq!(stars["items"][0]["body"], "message 1");
    let (_, stars) = api.call(Method::GET, "/v1/starred", &ada, None).await;
    assert_eq!(stars["items"], json!([]), "stars are the starrer's own");
    assert_eq!(crew.history(&bo, at).await[1]["starred"], true);
    assert_eq!(crew.history(&ada, at).await[1]["starred"], false);
    let (_, unstarred) = crew
        .call(
            Method::DELETE,
            &format!("/messages/{}/star", sequences[1]),
            &bo,
            None,
        )
        .await;
    let (_, stars) = api
        .call(
            Method::GET,
            &format!("/v1/starred?min_sequence={}", unstarred["sequence"]),
            &bo,
            None,
        )
        .await;
    assert_eq!(stars["items"], json!([]));

    let (status, problem) = crew
        .call(
            Method::PUT,
            &format!("/messages/{}/pin", sequences[0]),
            &bo,
            None,
        )
        .await;
    assert_eq!(
        (status, code(&problem)),
        (StatusCode::FORBIDDEN, Some("not_admin"))
    );
    let mut last = 0;
    for sequence in &sequences {
        let (status, pinned) = crew
            .call(
                Method::PUT,
                &format!("/messages/{sequence}/pin"),
                &ada,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        last = pinned["sequence"].as_u64().unwrap();
    }
    let (_, details) = crew
        .call(Method::GET, &format!("?min_sequence={last}"), &bo, None)
        .await;
    let pinned: Vec<u64> = details["pinned_messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(pinned, vec![sequences[3], sequences[2], sequences[1]]);
    // Pinning a pinned message again moves it to the front and drops nothing.
    let (_, repinned) = crew
        .call(
            Method::PUT,
            &format!("/messages/{}/pin", sequences[2]),
            &ada,
            None,
        )
        .await;
    let (_, details) = crew
        .call(
            Method::GET,
            &format!("?min_sequence={}", repinned["sequence"]),
            &bo,
            None,
        )
        .await;
    let repinned: Vec<u64> = details["pinned_messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(repinned, vec![sequences[2], sequences[3], sequences[1]]);
    assert_eq!(crew.history(&bo, last).await[0]["pinned"], false);
    assert_eq!(crew.history(&bo, last).await[3]["pinned"], true);
    let (status, _) = crew
        .call(Method::PUT, "/messages/999999999/pin", &ada, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_for_oneself_hides_a_message_from_ones_own_history_search_and_unread() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (ada, bo) = (api.user("ada").await, api.user("bo").await);
    let crew = Chat::group(&api, &ada, &[&bo]).await;
    let kept = crew.say(&ada, "m1", "pelican one").await;
    let hidden = crew.say(&ada, "m2", "pelican two").await;
    assert_eq!(crew.summary(&bo, hidden).await["unread_count"], 2);

    let (status, done) = crew
        .call(
            Method::DELETE,
            &format!("/messages/{hidden}?scope=me"),
            &bo,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let at = done["sequence"].as_u64().unwrap();
    let mine: Vec<u64> = crew
        .history(&bo, at)
        .await
        .iter()
        .map(|m| m["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(mine, vec![kept]);
    assert_eq!(crew.history(&ada, at).await.len(), 2, "others still see it");
    let summary = crew.summary(&bo, at).await;
    assert_eq!(summary["unread_count"], 1);
    assert_eq!(summary["last_message"]["sequence"], kept);
    let (_, found) = api
        .call(
            Method::GET,
            &format!("/v1/search/messages?q=pelican&min_sequence={at}"),
            &bo,
            None,
        )
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let (status, problem) = crew
        .call(
            Method::DELETE,
            &format!("/messages/{kept}?scope=them"),
            &bo,
            None,
        )
        .await;
    assert_eq!(
        (status, code(&problem)),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
}

#[tokio::test]
async fn a_late_joiner_neither_sees_nor_touches_what_came_before_and_tombstones_take_nothing() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (ada, bo, cy) = (
        api.user("ada").await,
        api.user("bo").await,
        api.user("cy").await,
    );
    let crew = Chat::group(&api, &ada, &[&bo]).await;
    let before = crew.say(&ada, "m1", "before cy").await;
    let (_, added) = crew
        .call(
            Method::POST,
            "/members",
            &ada,
            Some(json!({"user_ids": [cy.id]})),
        )
        .await;
    let at = added["sequence"].as_u64().unwrap();
    let summary = crew.summary(&cy, at).await;
    assert_eq!(summary["last_message"], Value::Null, "{summary}");
    for (method, rest) in [
        (Method::PUT, format!("/messages/{before}/reaction")),
        (Method::PUT, format!("/messages/{before}/star")),
    ] {
        let body = (rest.ends_with("reaction")).then(|| json!({"reaction": "👍"}));
        let (status, _) = crew.call(method, &rest, &cy, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{rest}");
    }
    let (status, problem) = crew
        .send(
            &cy,
            json!({"client_id": "c1", "body": "re", "reply_to": before}),
        )
        .await;
    assert_eq!(
        (status, code(&problem)),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reply_not_in_chat"))
    );

    // A message deleted for everyone takes no reactions, stars or pins.
    let doomed = crew.say(&bo, "m2", "oops").await;
    let (_, deleted) = crew
        .call(Method::DELETE, &format!("/messages/{doomed}"), &bo, None)
        .await;
    crew.history(&ada, deleted["sequence"].as_u64().unwrap())
        .await;
    for (rest, body) in [
        (
            format!("/messages/{doomed}/reaction"),
            Some(json!({"reaction": "👍"})),
        ),
        (format!("/messages/{doomed}/star"), None),
        (format!("/messages/{doomed}/pin"), None),
    ] {
        let (status, problem) = crew.call(Method::PUT, &rest, &ada, body).await;
        assert_eq!(
            (status, code(&problem)),
            (StatusCode::CONFLICT, Some("message_deleted")),
            "{rest}"
        );
    }
    // A read marker past the end of the log reads only what was there.
    let (_, read) = crew
        .call(
            Method::POST,
            "/read",
            &cy,
            Some(json!({"up_to": 9_000_000_000_000u64})),
        )
        .await;
    let later = crew.say(&ada, "m3", "after the marker").await;
    let summary = crew
        .summary(&cy, later.max(read["sequence"].as_u64().unwrap()))
        .await;
    assert_eq!(summary["unread_count"], 1, "{summary}");
}
