//! A client of a running app for HTTP tests: users that sign in, and calls as them.

use natter::settings::{AuthSettings, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{TestApp, TestEnv};

const PASSWORD: &str = "correct horse battery";

/// Where an app answers: a test's own app, or the base URL of a process (such as
/// `http://127.0.0.1:8080`).
pub trait Served {
    fn url(&self, path: &str) -> String;
}

impl Served for TestApp {
    fn url(&self, path: &str) -> String {
        TestApp::url(self, path)
    }
}

impl Served for str {
    fn url(&self, path: &str) -> String {
        format!("{self}{path}")
    }
}

/// A signed-in user: their id and access token.
pub struct User {
    pub id: String,
    pub token: String,
}

/// A running app with generous rate limits, and a client for it.
pub struct Api {
    pub app: TestApp,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn start(env: &TestEnv) -> Self {
        let settings = AuthSettings {
            login_per_address: 1_000,
            login_per_handle: 1_000,
            register_per_address: 1_000,
            register_per_handle: 1_000,
            ..AuthSettings::default()
        };
        Self {
            app: env
                .spawn_app_with(&[Role::Api, Role::Projector], settings)
                .await,
            http: reqwest::Client::new(),
        }
    }

    /// Calls the API as `user`; the body of any answer, or null.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        user: &User,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(&self.http, &self.app, method, path, user, body).await
    }

    /// Registers and signs in `u_<name>`.
    pub async fn user(&self, name: &str) -> User {
        sign_up(&self.http, &self.app, name).await
    }

    /// A group of `members` created by the first; its id.
    pub async fn group(&self, members: &[&User]) -> String {
        group(&self.http, &self.app, members).await
    }

    /// Uploads `bytes` as a media item of `kind`; the status and the answer.
    pub async fn upload(&self, user: &User, kind: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        upload(&self.http, &self.app, user, kind, bytes).await
    }

    /// Sends a text; its sequence.
    pub async fn send(&self, chat: &str, from: &User, body: &str) -> u64 {
        send(&self.http, &self.app, chat, from, body).await
    }

    /// The direct chat of `from` with `to`, opened by `from`; its id.
    pub async fn direct(&self, from: &User, to: &User) -> String {
        let (status, chat) = self
            .call(
                reqwest::Method::POST,
                "/v1/chats/direct",
                from,
                Some(serde_json::json!({"user_id": to.id})),
            )
            .await;
        assert!(status.is_success(), "{chat}");
        chat["chat_id"].as_str().unwrap().to_owned()
    }
}

/// A group of `members` created by the first, through `app`; its id.
pub async fn group(
    http: &reqwest::Client,
    app: &(impl Served + ?Sized),
    members: &[&User],
) -> String {
    let others: Vec<&str> = members[1..].iter().map(|m| m.id.as_str()).collect();
    let (status, body) = call(
        http,
        app,
        Method::POST,
        "/v1/chats/groups",
        members[0],
        Some(json!({"name": "room", "members": others})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["chat_id"].as_str().unwrap().to_owned()
}

/// Uploads `bytes` through `app` as a media item of `kind`; the status and the answer.
pub async fn upload(
    http: &reqwest::Client,
    app: &(impl Served + ?Sized),
    user: &User,
    kind: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let response = http
        .post(app.url(&format!("/v1/media?kind={kind}")))
        .bearer_auth(&user.token)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends a text through `app`; its sequence.
pub async fn send(
    http: &reqwest::Client,
    app: &(impl Served + ?Sized),
    chat: &str,
    from: &User,
    body: &str,
) -> u64 {
    let (status, answer) = call(
        http,
        app,
        Method::POST,
        &format!("/v1/chats/{chat}/messages"),
        from,
        Some(json!({"client_id": uuid::Uuid::now_v7().to_string(), "body": body})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["sequence"].as_u64().unwrap()
}

/// Calls `app` as `user`; the body of any answer, or null.
pub async fn call(
    http: &reqwest::Client,
    app: &(impl Served + ?Sized),
    method: Method,
    path: &str,
    user: &User,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http.request(method, app.url(path)).bearer_auth(&user.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Registers `u_<name>` with a password and signs in, as a client would.
pub async fn sign_up(http: &reqwest::Client, app: &(impl Served + ?Sized), name: &str) -> User {
    sign_up_as(http, app, &format!("u_{name}")).await.0
}

/// Registers `handle` with a password and signs in: the user, and their session's id.
pub async fn sign_up_as(
    http: &reqwest::Client,
    app: &(impl Served + ?Sized),
    handle: &str,
) -> (User, String) {
    let registered = http
        .post(app.url("/v1/users"))
        .json(&json!({"handle": handle, "display_name": handle, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let registered: Value = registered.json().await.unwrap();
    let session: Value = http
        .post(app.url("/v1/sessions"))
        .json(&json!({"handle": handle, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = |value: &Value, key: &str| value[key].as_str().unwrap().to_owned();
    let user = User {
        id: text(&registered, "user_id"),
        token: text(&session, "access_token"),
    };
    (user, text(&session, "session_id"))
}
