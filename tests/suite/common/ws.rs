//! Realtime tests: a Natter with the API, projector and a gateway, a second process
//! running only a gateway, users with tokens both accept, and a WebSocket client.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use natter::settings::{AuthSettings, GatewaySettings, Role, Secret};
use natter_access::tokens::TokenKeys;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use super::http::User;
use super::{TestApp, TestEnv};

/// The signing key every process of a realtime test shares.
pub const KEYS: &str = "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// How long a test waits for one frame.
pub const FRAME_WAIT: Duration = Duration::from_secs(15);

pub fn auth_settings() -> AuthSettings {
    AuthSettings {
        jwt_keys: Some(Secret::new(KEYS)),
        login_per_address: 10_000,
        login_per_handle: 10_000,
        register_per_address: 10_000,
        register_per_handle: 10_000,
        ..AuthSettings::default()
    }
}

/// Two processes on one log and database: `main` runs everything, `second` only a
/// gateway.
pub struct Realtime {
    pub main: TestApp,
    pub second: TestApp,
    pub http: reqwest::Client,
    keys: TokenKeys,
}

impl Realtime {
    pub async fn start(env: &TestEnv) -> Self {
        Self::start_with(env, GatewaySettings::default()).await
    }

    pub async fn start_with(env: &TestEnv, gateway: GatewaySettings) -> Self {
        let main = env
            .spawn_app_full(
                &[Role::Api, Role::Projector, Role::Gateway],
                auth_settings(),
                gateway.clone(),
            )
            .await;
        let second = env
            .spawn_app_full(&[Role::Gateway], auth_settings(), gateway)
            .await;
        Self {
            main,
            second,
            http: reqwest::Client::new(),
            keys: TokenKeys::parse(KEYS, "natter", "natter-api", time::Duration::minutes(15))
                .unwrap(),
        }
    }

    /// A user registered straight into the log, with a token for a session of their own.
    pub async fn user(&self, env: &TestEnv, handle: &str) -> User {
        let id = super::register(&super::accounts(&env.log), handle).await;
        let (token, _) = self.keys.issue(id, Uuid::now_v7(), 0).unwrap();
        User {
            id: id.to_string(),
            token,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        user: &User,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        super::http::call(&self.http, &self.main, method, path, user, body).await
    }

    /// Users registered straight into the log, with tokens.
    pub async fn users<const N: usize>(&self, env: &TestEnv, handles: [&str; N]) -> [User; N] {
        let mut users = Vec::with_capacity(N);
        for handle in handles {
            users.push(self.user(env, handle).await);
        }
        users.try_into().unwrap_or_else(|_| unreachable!())
    }

    /// A group of `members` created by the first; its id.
    pub async fn group(&self, members: &[&User]) -> String {
        super::http::group(&self.http, &self.main, members).await
    }

    /// Sends a text; its sequence.
    pub async fn send(&self, chat: &str, from: &User, body: &str) -> u64 {
        super::http::send(&self.http, &self.main, chat, from, body).await
    }
}

pub fn ws_url(app: &TestApp) -> String {
    format!("ws://{}/v1/ws", app.address)
}

/// A WebSocket client of the gateway.
pub struct Socket {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub hello: Value,
}

impl Socket {
    /// Connects with `token` and reads the hello.
    pub async fn connect(app: &TestApp, token: &str) -> Self {
        let mut request = ws_url(app).into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (stream, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(client_config()), true)
                .await
                .unwrap();
        let mut socket = Self {
            stream,
            hello: Value::Null,
        };
        let hello = socket.next().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        socket.hello = hello;
        socket
    }

    /// Connects and resumes after `cursor`; the events sent before `ready`, and the
    /// ready cursor.
    pub async fn resume(
        app: &TestApp,
        token: &str,
        cursor: Option<u64>,
    ) -> (Self, Vec<Value>, u64) {
        let mut socket = Self::connect(app, token).await;
        socket
            .send(json!({"type": "resume", "cursor": cursor}))
            .await;
        let mut events = Vec::new();
        loop {
            let frame = socket.next().await;
            match frame["type"].as_str() {
                Some("event") => events.push(frame),
                Some("ready") => {
                    let cursor = frame["cursor"].as_u64().unwrap();
                    return (socket, events, cursor);
                }
                _ => panic!("unexpected frame before ready: {frame}"),
            }
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON frame; a close frame comes back as `{"type":"closed","code":…}`.
    pub async fn next(&mut self) -> Value {
        self.try_next(FRAME_WAIT)
            .await
            .expect("timed out waiting for a frame")
    }

    pub async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(wait, self.stream.next()).await.ok()?;
            match message {
                Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.as_ref().map(|f| u16::from(f.code));
                    return Some(json!({"type": "closed", "code": code}));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(json!({"type": "closed", "code": null})),
            }
        }
    }

    /// The next event frame, skipping others.
    pub async fn next_event(&mut self) -> Value {
        loop {
            let frame = self.next().await;
            match frame["type"].as_str() {
                Some("event") => return frame,
                Some("closed") => panic!("closed while waiting for an event: {frame}"),
                _ => {}
            }
        }
    }
}

/// The sequence of an event frame.
pub fn seq(frame: &Value) -> u64 {
    frame["seq"].as_u64().unwrap()
}

/// The event type inside an event frame.
pub fn event_type(frame: &Value) -> &str {
    frame["event"]["event_type"].as_str().unwrap()
}

/// Client socket settings: a small read buffer, since tungstenite zero-fills all of it
/// (128 KiB by default) before every read.
pub fn client_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024)
}
