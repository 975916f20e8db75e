//! Web Push against a push service of the test's own on loopback: it checks each push's
//! VAPID token (signed by the server's key, for this service's origin, not expired) and
//! decrypts it with the device's keys (RFC 8291), as a browser's push service and the
//! browser would. No push service outside can be reached from here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use natter::settings::{AuthSettings, PushSettings, Role, ServeArgs};
use p256::ecdsa::signature::Verifier as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::TestEnv;
use crate::common::http::{User, call, sign_up};

/// A push as the test's push service received it, decrypted.
#[derive(Debug, Clone)]
struct Received {
    device: String,
    payload: Value,
    topic: Option<String>,
}

/// A device: its keys, as a browser's `PushManager.subscribe` makes them.
struct Device {
    name: String,
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Device {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            secret: p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
            auth: rand::random(),
        }
    }

    fn subscription(&self, service: &PushService, previews: bool) -> Value {
        let public = self.secret.public_key().to_encoded_point(false);
        json!({
            "endpoint": format!("{}/push/{}", service.origin, self.name),
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(public.as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
            },
            "previews": previews,
        })
    }
}

/// A device's private key and authentication secret.
type DeviceKeys = (p256::SecretKey, [u8; 16]);

#[derive(Clone)]
struct ServiceState {
    origin: String,
    /// The server's VAPID public key (base64url), which every push must be signed by.
    server_key: Arc<Mutex<String>>,
    devices: Arc<Mutex<HashMap<String, DeviceKeys>>>,
    /// Devices whose subscription the service says is gone (410).
    gone: Arc<Mutex<Vec<String>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    received: tokio::sync::mpsc::UnboundedSender<Received>,
    problems: Arc<Mutex<Vec<String>>>,
}

/// The test's push service.
struct PushService {
    origin: String,
    state: ServiceState,
    received: tokio::sync::mpsc::UnboundedReceiver<Received>,
}

impl PushService {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let (sender, received) = tokio::sync::mpsc::unbounded_channel();
        let state = ServiceState {
            origin: origin.clone(),
            server_key: Arc::default(),
            devices: Arc::default(),
            gone: Arc::default(),
            hits: Arc::default(),
            received: sender,
            problems: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/push/{device}", axum::routing::post(receive))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            origin,
            state,
            received,
        }
    }

    fn add(&self, device: &Device) {
        self.state
            .devices
            .lock()
            .unwrap()
            .insert(device.name.clone(), (device.secret.clone(), device.auth));
    }

    fn hits(&self, device: &str) -> usize {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(device)
            .copied()
            .unwrap_or(0)
    }

    /// The next push, or `None` if none comes within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.received.recv())
            .await
            .ok()
            .flatten()
    }

    /// Every push until none comes within `quiet`, by device (the last of each).
    async fn drain(&mut self, quiet: Duration) -> HashMap<String, Value> {
        let mut got = HashMap::new();
        while let Some(push) = self.next(quiet).await {
            got.insert(push.device, push.payload);
        }
        got
    }

    fn problems(&self) -> Vec<String> {
        self.state.problems.lock().unwrap().clone()
    }
}

async fn receive(
    State(state): State<ServiceState>,
    Path(device): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    *state
        .hits
        .lock()
        .unwrap()
        .entry(device.clone())
        .or_default() += 1;
    let gone = state.gone.lock().unwrap().contains(&device);
    match check(&state, &device, &headers, &body) {
        Err(problem) => {
            let mut problems = state.problems.lock().unwrap();
            problems.push(format!("{device}: {problem}"));
            StatusCode::BAD_REQUEST
        }
        Ok(_) if gone => StatusCode::GONE,
        Ok(push) => {
            let _ = state.received.send(push);
            StatusCode::CREATED
        }
    }
}

/// Checks a push as a push service does (RFC 8030, 8292), then decrypts it as the
/// browser does (RFC 8291).
fn check(
    state: &ServiceState,
    device: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Received, String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if header("content-encoding").as_deref() != Some("aes128gcm") {
        return Err("not aes128gcm".into());
    }
    header("ttl").ok_or("no TTL")?;
    let authorization = header("authorization").ok_or("no Authorization")?;
    let (token, key) = authorization
        .strip_prefix("vapid t=")
        .and_then(|rest| rest.split_once(", k="))
        .ok_or("not a vapid authorization")?;
    if key != *state.server_key.lock().unwrap() {
        return Err("signed by another key than the server's".into());
    }
    let (signed, signature) = token.rsplit_once('.').ok_or("not a JWT")?;
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(
        &URL_SAFE_NO_PAD.decode(key).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let signature = p256::ecdsa::Signature::from_slice(
        &URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    verifying
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "the VAPID signature does not verify")?;
    let claims = signed.split('.').nth(1).ok_or("no claims")?;
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    if claims["aud"] != state.origin.as_str() {
        return Err(format!("audience {} is not this service", claims["aud"]));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp {exp} is not within a day"));
    }
    if !claims["sub"]
        .as_str()
        .is_some_and(|s| s.starts_with("mailto:"))
    {
        return Err("no contact (sub)".into());
    }
    let (secret, auth) = state
        .devices
        .lock()
        .unwrap()
        .get(device)
        .cloned()
        .ok_or("an unknown device")?;
    let auth = web_push_native::Auth::clone_from_slice(&auth);
    let plain = web_push_native::decrypt(body.to_vec(), &secret, &auth)
        .map_err(|e| format!("does not decrypt: {e}"))?;
    let payload: Value = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
    Ok(Received {
        device: device.to_owned(),
        payload,
        topic: header("topic"),
    })
}

fn push_settings() -> PushSettings {
    PushSettings {
        vapid_private_key: Some(natter::settings::Secret::new(natter_push::Vapid::generate())),
        vapid_subject: "mailto:ops@natter.test".into(),
        push_allow_private: true,
        push_batch_ms: 500,
    }
}

/// An app in the api and projector roles (no gateway: nobody counts as online).
async fn start(env: &TestEnv, push: PushSettings) -> crate::common::TestApp {
    env.spawn_app_serving(ServeArgs {
        push,
        auto_rebuild: true,
        web_dir: None,
        media: Default::default(),
        listen: "127.0.0.1:0".parse().unwrap(),
        roles: vec![Role::Api, Role::Projector],
        auth: AuthSettings {
            login_per_address: 1_000,
            register_per_address: 1_000,
            ..AuthSettings::default()
        },
        gateway: Default::default(),
    })
    .await
}

/// An app that sends pushes, a client, and a push service that takes the app's key.
async fn start_with_service(
    env: &TestEnv,
) -> (crate::common::TestApp, reqwest::Client, PushService) {
    let app = start(env, push_settings()).await;
    let http = reqwest::Client::new();
    let service = PushService::start().await;
    let key: Value = http
        .get(app.url("/v1/push/key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    *service.state.server_key.lock().unwrap() = key["public_key"].as_str().unwrap().to_owned();
    (app, http, service)
}

async fn subscribe(
    http: &reqwest::Client,
    app: &crate::common::TestApp,
    user: &User,
    body: Value,
) -> (StatusCode, Value) {
    call(
        http,
        app,
        Method::PUT,
        "/v1/sessions/current/push",
        user,
        Some(body),
    )
    .await
}

async fn send(
    http: &reqwest::Client,
    app: &crate::common::TestApp,
    chat: &str,
    from: &User,
    text: &str,
    mentions: &[&User],
) {
    let mentions: Vec<&str> = mentions.iter().map(|u| u.id.as_str()).collect();
    let (status, body) = call(
        http,
        app,
        Method::POST,
        &format!("/v1/chats/{chat}/messages"),
        from,
        Some(json!({"client_id": uuid::Uuid::now_v7().to_string(), "body": text, "mentions": mentions})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn new_messages_reach_an_away_member_encrypted_signed_and_gathered_per_chat() {
    let env = TestEnv::new().await;
    let (app, http, mut service) = start_with_service(&env).await;

    let (ann, ben) = (
        sign_up(&http, &app, "ann").await,
        sign_up(&http, &app, "ben").await,
    );
    let phone = Device::new("ben-phone");
    service.add(&phone);
    let (status, body) = subscribe(&http, &app, &ben, phone.subscription(&service, true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, chat) = call(
        &http,
        &app,
        Method::POST,
        "/v1/chats/direct",
        &ann,
        Some(json!({"user_id": ben.id})),
    )
    .await;
    let chat = chat["chat_id"].as_str().unwrap().to_owned();

    send(&http, &app, &chat, &ann, "are you there?", &[]).await;
    let first = service.next(Duration::from_secs(15)).await.expect("a push");
    assert_eq!(first.device, "ben-phone");
    assert_eq!(first.payload["type"], "messages");
    assert_eq!(first.payload["chat_id"], chat.as_str());
    assert_eq!(first.payload["count"], 1);
    assert_eq!(first.payload["text"], "are you there?");
    assert_eq!(first.payload["sender_name"], "u_ann");
    assert_eq!(first.payload["chat_kind"], "direct");
    assert_eq!(first.topic.as_deref(), Some(chat.replace('-', "").as_str()));

    // Three at once go as one push, carrying the newest.
    for text in ["one", "two", "three"] {
        send(&http, &app, &chat, &ann, text, &[]).await;
    }
    let gathered = service.next(Duration::from_secs(15)).await.expect("a push");
    assert_eq!(gathered.payload["count"], 3, "{:?}", gathered.payload);
    assert_eq!(gathered.payload["text"], "three");
    assert!(service.next(Duration::from_secs(2)).await.is_none());
    // The sender's own sends are never pushed to them, and nothing failed its checks.
    assert_eq!(service.hits("ann"), 0);
    assert_eq!(service.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn mutes_previews_blocks_and_gone_subscriptions_are_respected() {
    let env = TestEnv::new().await;
    let (app, http, mut service) = start_with_service(&env).await;

    let ann = sign_up(&http, &app, "ann").await;
    let ben = sign_up(&http, &app, "ben").await;
    let cat = sign_up(&http, &app, "cat").await;
    let dan = sign_up(&http, &app, "dan").await;
    let devices: Vec<(Device, &User, bool)> = vec![
        (Device::new("ben"), &ben, false),
        (Device::new("cat"), &cat, true),
        (Device::new("dan"), &dan, true),
    ];
    for (device, user, previews) in &devices {
        service.add(device);
        let (status, body) =
            subscribe(&http, &app, user, device.subscription(&service, *previews)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    service.state.gone.lock().unwrap().push("dan".into());
    let group = crate::common::http::group(&http, &app, &[&ann, &ben, &cat, &dan]).await;
    // Cat mutes the group.
    let (status, body) = call(
        &http,
        &app,
        Method::PUT,
        &format!("/v1/chats/{group}/settings"),
        &cat,
        Some(json!({"muted_until": "2099-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    send(&http, &app, &group, &ann, "lunch?", &[]).await;
    let got = service.drain(Duration::from_secs(4)).await;
    // Ben asked for no previews: which chat, how many, nothing of what or who.
    let ben_push = &got["ben"];
    assert_eq!(ben_push["count"], 1);
    for hidden in ["text", "sender_name", "chat_name", "chat_kind"] {
        assert!(ben_push.get(hidden).is_none(), "{hidden} in {ben_push}");
    }
    // Cat muted the group; Dan's push service said his subscription is gone.
    assert!(!got.contains_key("cat"), "{got:?}");
    assert!(!got.contains_key("dan"), "{got:?}");
    assert_eq!(service.hits("dan"), 1);

    // A mention reaches a muted member; the gone subscription was ended, and is not
    // sent to again.
    send(&http, &app, &group, &ann, "@cat lunch?", &[&cat]).await;
    let got = service.drain(Duration::from_secs(4)).await;
    assert_eq!(got["cat"]["mentioned"], true, "{got:?}");
    assert_eq!(got["cat"]["text"], "@cat lunch?");
    assert_eq!(service.hits("dan"), 1);

    // Cat turns previews off for this chat alone: her device still takes them elsewhere,
    // but this chat's pushes no longer say what or who.
    let (status, body) = call(
        &http,
        &app,
        Method::PUT,
        &format!("/v1/chats/{group}/settings"),
        &cat,
        Some(json!({"previews": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, chats) = call(
        &http,
        &app,
        Method::GET,
        &format!("/v1/chats?min_sequence={}", body["sequence"]),
        &cat,
        None,
    )
    .await;
    assert_eq!(chats["items"][0]["previews"], false, "{chats}");
    send(&http, &app, &group, &ann, "@cat still on?", &[&cat]).await;
    let got = service.drain(Duration::from_secs(4)).await;
    assert_eq!(got["cat"]["mentioned"], true, "{got:?}");
    for hidden in ["text", "sender_name", "chat_name"] {
        assert!(got["cat"].get(hidden).is_none(), "{hidden} in {got:?}");
    }

    // Ben blocks Ann: her messages are no longer pushed to him.
    let (status, body) = call(
        &http,
        &app,
        Method::PUT,
        &format!("/v1/users/me/blocks/{}", ann.id),
        &ben,
        None,
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(&http, &app, &group, &ann, "anyone?", &[]).await;
    let got = service.drain(Duration::from_secs(4)).await;
    assert!(!got.contains_key("ben"), "{got:?}");
    assert_eq!(service.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn subscriptions_are_checked_and_a_server_without_keys_says_so() {
    let env = TestEnv::new().await;
    let http = reqwest::Client::new();
    let strict = start(
        &env,
        PushSettings {
            push_allow_private: false,
            ..push_settings()
        },
    )
    .await;
    let ann = sign_up(&http, &strict, "ann").await;
    let device = Device::new("ann");
    let service = PushService::start().await;
    let good = device.subscription(&service, true);
    // A loopback endpoint is refused where private addresses are not allowed.
    let (status, problem) = subscribe(&http, &strict, &ann, good.clone()).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_endpoint")),
        "{problem}"
    );
    let mut bad_key = good.clone();
    bad_key["endpoint"] = json!("https://push.example.com/x");
    bad_key["keys"]["p256dh"] = json!("AAAA");
    let (status, problem) = subscribe(&http, &strict, &ann, bad_key).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_push_key")),
        "{problem}"
    );
    let mut unknown = good.clone();
    unknown["extra"] = json!(1);
    let (status, problem) = subscribe(&http, &strict, &ann, unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let mut public = good;
    public["endpoint"] = json!("https://push.example.com/x");
    let (status, body) = subscribe(&http, &strict, &ann, public).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(
        &http,
        &strict,
        Method::DELETE,
        "/v1/sessions/current/push",
        &ann,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    strict.stop().await.unwrap();

    let off = start(&env, PushSettings::default()).await;
    let response = http.get(off.url("/v1/push/key")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "push_disabled");
}
