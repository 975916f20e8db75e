//! Odd and hostile input, as a new user or a fuzzer sends it: each gets a clear problem
//! with a stable code, and the documented limits are the ones enforced.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::TestEnv;
use common::http::Api;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn problem(response: reqwest::Response) -> (StatusCode, String, Value) {
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "a {status} without a problem body"
    );
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["code"].as_str().unwrap_or_default().to_owned(),
        body,
    )
}

#[tokio::test]
async fn messages_take_the_documented_64_kib_and_no_more() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let ann = api.user("ann").await;
    let bob = api.user("bob").await;
    let chat = api.group(&[&ann, &bob]).await;
    let path = format!("/v1/chats/{chat}/messages");

    // 64 KiB of text, with quotes JSON must escape: stored whole.
    let body = "\"a".repeat(32 * 1024);
    let (status, sent) = api
        .call(
            Method::POST,
            &path,
            &ann,
            Some(json!({"client_id": "big", "body": body})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let edited = "b".repeat(64 * 1024);
    let (status, answer) = api
        .call(
            Method::PATCH,
            &format!("{path}/{}", sent["sequence"]),
            &ann,
            Some(json!({"body": edited})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // One byte over: the text is refused by its rule, not by the transport.
    let (status, answer) = api
        .call(
            Method::POST,
            &path,
            &ann,
            Some(json!({"client_id": "over", "body": "c".repeat(64 * 1024 + 1)})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "invalid_body_text");

    // Far over: refused while it streams in.
    let huge = api
        .http
        .post(api.app.url(&path))
        .bearer_auth(&ann.token)
        .json(&json!({"client_id": "huge", "body": "d".repeat(2 * 1024 * 1024)}))
        .send()
        .await
        .unwrap();
    let (status, code, _) = problem(huge).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );

    // Other routes keep their small limit.
    let profile = api
        .http
        .patch(api.app.url("/v1/users/me"))
        .bearer_auth(&ann.token)
        .json(&json!({"about": "e".repeat(64 * 1024)}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(profile).await.0, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn an_array_is_not_an_object() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let ann = api.user("ann").await;
    // serde reads a struct from an array of its fields: ["X", "Y"] would set the name.
    for (method, path, body) in [
        (Method::PATCH, "/v1/users/me", json!(["X", "Y"])),
        (Method::PUT, "/v1/users/me/privacy", json!(["nobody"])),
        (Method::POST, "/v1/chats/groups", json!(["room", []])),
    ] {
        let response = api
            .http
            .request(method.clone(), api.app.url(path))
            .bearer_auth(&ann.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, code, answer) = problem(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_body"),
            "{method} {path}: {answer}"
        );
    }
    let (status, me) = api.call(Method::GET, "/v1/users/me", &ann, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["display_name"], "u_ann", "the array changed the profile");
}

#[tokio::test]
async fn markers_past_the_sequence_range_are_refused_not_clamped() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let ann = api.user("ann").await;
    let bob = api.user("bob").await;
    let chat = api.group(&[&ann, &bob]).await;
    for marker in ["read", "delivered"] {
        let path = format!("/v1/chats/{chat}/{marker}");
        let (status, answer) = api
            .call(Method::POST, &path, &bob, Some(json!({"up_to": u64::MAX})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{marker}: {answer}");
        assert_eq!(answer["code"], "invalid_up_to");
        let (status, answer) = api
            .call(Method::POST, &path, &bob, Some(json!({"up_to": i64::MAX})))
            .await;
        assert_eq!(status, StatusCode::OK, "{marker}: {answer}");
    }
}

#[tokio::test]
async fn a_wrong_method_and_a_bad_query_say_what_was_wrong() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let ann = api.user("ann").await;
    let response = api
        .http
        .put(api.app.url("/v1/chats"))
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap();
    let allow = response.headers().get("allow").cloned();
    let (status, code, _) = problem(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    assert_eq!(allow.unwrap(), "GET,HEAD");

    for (q, says) in [
        ("%01abc", "control character"),
        ("%20", "empty"),
        (&"x".repeat(201)[..], "201 characters"),
    ] {
        let (status, answer) = api
            .call(
                Method::GET,
                &format!("/v1/search/messages?q={q}"),
                &ann,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["code"], "invalid_query");
        assert!(
            answer["detail"].as_str().unwrap().contains(says),
            "{q}: {answer}"
        );
    }
}

/// Sends `head` and then `body_len` bytes on one keep-alive connection, as a simple
/// client does (the whole request, then the answer), and reads until the server closes:
/// how the sending ended, and the answer.
async fn refused_while_sending(
    address: std::net::SocketAddr,
    head: String,
    body_len: usize,
) -> (std::io::Result<()>, std::io::Result<String>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let sending = tokio::spawn(async move {
        let sent = writer.write_all(&vec![b' '; body_len]).await;
        (sent, writer)
    });
    let (sent, writer) = tokio::time::timeout(std::time::Duration::from_secs(10), sending)
        .await
        .expect("the server stopped reading without closing")
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        reader.read_to_end(&mut answer),
    )
    .await
    .expect("the server neither answered nor closed");
    drop(writer);
    (
        sent,
        read.map(|_| String::from_utf8_lossy(&answer).into_owned()),
    )
}

/// An answer to a request whose body is still coming, split into its status, its
/// headers (names in lower case) and its body, which must be as long as it says.
fn parse_answer(answer: &str) -> (u16, Vec<(String, String)>, Value) {
    let (head, body) = answer.split_once("\r\n\r\n").expect(answer);
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .map(|(_, value)| value.parse().unwrap())
        .expect(answer);
    assert_eq!(body.len(), length, "the answer was cut: {answer}");
    (status, headers, serde_json::from_str(body).unwrap())
}

/// Issue 15 and RFC 9112 §9.6: an answer given before the body was read (413 from its
/// declared length, 415 from its type) is followed by a close, so it says
/// `Connection: close`, and the close lets a client still sending read the whole answer
/// instead of a connection reset.
#[tokio::test]
async fn an_early_refusal_reaches_a_keep_alive_client_whole_and_announces_the_close() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let ann = api.user("ann").await;
    let length = 8 * 1024 * 1024;
    let cases = [
        (
            format!(
                "POST /v1/sessions HTTP/1.1\r\nHost: natter\r\nConnection: keep-alive\r\n\
                 Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
            ),
            413,
            "body_too_large",
        ),
        (
            format!(
                "PATCH /v1/media/uploads/{} HTTP/1.1\r\nHost: natter\r\n\
                 Connection: keep-alive\r\nAuthorization: Bearer {}\r\n\
                 Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: text/plain\r\n\
                 Content-Length: {length}\r\n\r\n",
                uuid::Uuid::now_v7(),
                ann.token
            ),
            415,
            "invalid_content_type",
        ),
    ];
    for (head, expected, code) in cases {
        let (sent, answer) = refused_while_sending(api.app.address, head, length).await;
        let answer = answer.unwrap_or_else(|error| panic!("{expected}: answer lost: {error}"));
        let (status, headers, problem) = parse_answer(&answer);
        assert_eq!((status, problem["code"].as_str()), (expected, Some(code)));
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_ascii_lowercase())
        };
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/problem+json")
        );
        assert_eq!(
            header("connection").as_deref(),
            Some("close"),
            "{expected}: the close is not announced: {answer}"
        );
        // The server read the rest and threw it away before closing: a reset would have
        // failed the client's sending (EPIPE or ECONNRESET), and with it, in many clients
        // and on other systems, the answer.
        assert!(sent.is_ok(), "{expected}: the client was reset: {sent:?}");
    }
}
