//! Accounts, sessions and tokens through real HTTP against real NATS and Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::{TestApp, TestEnv, eventually};
use natter::settings::{AuthSettings, Role, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ALL_ROLES: &[Role] = &[Role::Api, Role::Gateway, Role::Projector];
/// The test's signing key (an Ed25519 seed), so that tests can forge tokens with it.
const SEED: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const PASSWORD: &str = "correct horse battery";

fn auth_settings() -> AuthSettings {
    AuthSettings {
        jwt_keys: Some(Secret::new(format!("test={SEED}"))),
        login_per_address: 1_000,
        login_per_handle: 1_000,
        register_per_address: 1_000,
        register_per_handle: 1_000,
        hash_workers: Some(1),
        ..AuthSettings::default()
    }
}

/// A client of one running app.
struct Api {
    app: TestApp,
    http: reqwest::Client,
}

impl Api {
    async fn start(env: &TestEnv, settings: AuthSettings) -> Self {
        Self {
            app: env.spawn_app_with(ALL_ROLES, settings).await,
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    async fn register(&self, handle: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/users",
                None,
                json!({"handle": handle, "display_name": handle, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn login(&self, handle: &str, device: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/sessions",
                None,
                json!({"handle": handle, "password": PASSWORD, "device_name": device}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Waits until `token` is refused, as a revoked session's must be, within a second.
    async fn refused_within_a_second(&self, token: &str) {
        let started = std::time::Instant::now();
        loop {
            let (status, body) = self.get("/v1/users/me", token).await;
            if status == StatusCode::UNAUTHORIZED {
                assert_eq!(body["code"], "session_ended");
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "still accepted after a second"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A cookie-mode client: what it sends along with a refresh.
#[derive(Clone, Copy, Default)]
struct CookieRefresh<'a> {
    cookie: Option<&'a str>,
    csrf: bool,
    origin: Option<&'a str>,
}

impl Api {
    /// Signs in as a browser would: the refresh token comes back in the cookie.
    async fn cookie_login(&self, handle: &str, device: &str) -> (Value, String) {
        let response = self
            .http
            .post(self.app.url("/v1/sessions"))
            .header("natter-token-transport", "cookie")
            .json(&json!({"handle": handle, "password": PASSWORD, "device_name": device}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let (cookie, max_age) = refresh_cookie(&response);
        assert_eq!(max_age, 30 * 86_400, "the session's lifetime");
        let body: Value = response.json().await.unwrap();
        assert!(body.get("refresh_token").is_none(), "{body}");
        (body, cookie)
    }

    /// `POST /v1/sessions/refresh` with no body, as a browser sends it.
    async fn cookie_refresh(&self, request: CookieRefresh<'_>) -> reqwest::Response {
        let mut builder = self.http.post(self.app.url("/v1/sessions/refresh"));
        if let Some(cookie) = request.cookie {
            builder = builder.header("cookie", format!("theme=dark; natter_refresh={cookie}"));
        }
        if request.csrf {
            builder = builder.header("natter-csrf", "1");
        }
        if let Some(origin) = request.origin {
            builder = builder.header("origin", origin);
        }
        builder.send().await.unwrap()
    }

    /// The app's own origin, as a browser on its pages names it.
    fn origin(&self) -> String {
        self.app.url("")
    }
}

/// The token in the answer's one `natter_refresh` cookie and its Max-Age, every other
/// attribute checked.
fn refresh_cookie(response: &reqwest::Response) -> (String, i64) {
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = cookies[0];
    let (token, attributes) = cookie
        .strip_prefix("natter_refresh=")
        .and_then(|rest| rest.split_once("; "))
        .unwrap_or_else(|| panic!("{cookie}"));
    let max_age = attributes
        .strip_prefix("HttpOnly; Secure; SameSite=Strict; Path=/v1/sessions/refresh; Max-Age=")
        .unwrap_or_else(|| panic!("{cookie}"));
    (token.to_owned(), max_age.parse().unwrap())
}

/// The answer removes the cookie.
fn clears_the_cookie(response: &reqwest::Response) {
    assert_eq!(refresh_cookie(response), (String::new(), 0));
}

/// The problem's status and code, from a response.
async fn problem(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

fn token(body: &Value) -> &str {
    body["access_token"].as_str().unwrap()
}

fn refresh_token(body: &Value) -> &str {
    body["refresh_token"].as_str().unwrap()
}

#[tokio::test]
async fn ones_own_profile_right_after_sign_up_is_waited_for_not_missing() {
    let env = TestEnv::new().await;
    // No projector yet: nothing builds the directory until one starts.
    let api = Api {
        app: env.spawn_app_with(&[Role::Api], auth_settings()).await,
        http: reqwest::Client::new(),
    };
    api.register("joe").await;
    let session = api.login("joe", "phone").await;
    let ((status, me), _projector) =
        tokio::join!(api.get("/v1/users/me", token(&session)), async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            env.spawn_app(&[Role::Projector]).await
        });
    assert_eq!(
        (status, &me["handle"]),
        (StatusCode::OK, &json!("joe")),
        "{me}"
    );
}

#[tokio::test]
async fn register_log_in_and_read_your_own_profile() {
    let env = TestEnv::new().await;
    let api = Api::start(&env, auth_settings()).await;
    let response = api
        .http
        .post(api.app.url("/v1/users"))
        .json(
            &json!({"handle": "  Alice ", "display_name": "Alice", "password": PASSWORD,
                      "phone": "+49 30 1234567", "about": "hello"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let registered: Value = response.json().await.unwrap();
    assert_eq!(registered["handle"], "alice");
    assert_eq!(
        location,
        format!("/v1/users/{}", registered["user_id"].as_str().unwrap())
    );

    let session = api.login("ALICE", "laptop").await;
    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["expires_in"], 900);
    let (status, me) = api
        .get(
            &format!("/v1/users/me?min_sequence={}", registered["sequence"]),
            token(&session),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["handle"], "alice");
    assert_eq!(me["phone"], "+49301234567");
    assert_eq!(me["privacy"]["read_receipts"], true);

    // Read your own write: the consistency token of a change.
    let (status, changed) = api
        .send(
            reqwest::Method::PATCH,
            "/v1/users/me",
            Some(token(&session)),
            Some(json!({"display_name": "Alice L."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, me) = api
        .get(
            &format!("/v1/users/me?min_sequence={}", changed["sequence"]),
            token(&session),
        )
        .await;
    assert_eq!(me["display_name"], "Alice L.");
}

#[tokio::test]
async fn bad_input_gets_a_problem_with_a_stable_code() {
    let env = TestEnv::new().await;
    let api = Api::start(&env, auth_settings()).await;
    api.register("bob").await;
    let cases = [
        (
            json!({"handle": "BOB", "display_name": "B", "password": PASSWORD}),
            StatusCode::CONFLICT,
            "handle_taken",
        ),
        (
            json!({"handle": "b!", "display_name": "B", "password": PASSWORD}),
            StatusCode::BAD_REQUEST,
            "invalid_handle",
        ),
        (
            json!({"handle": "carl", "display_name": " ", "password": PASSWORD}),
            StatusCode::BAD_REQUEST,
            "invalid_display_name",
        ),
        (
            json!({"handle": "carl", "display_name": "C", "password": "short"}),
            StatusCode::BAD_REQUEST,
            "invalid_password",
        ),
        (
            json!({"handle": "carl", "display_name": "C", "password": "x".repeat(129)}),
            StatusCode::BAD_REQUEST,
            "invalid_password",
        ),
        (
            json!({"handle": "carl", "display_name": "C", "password": PASSWORD, "phone": "12"}),
            StatusCode::BAD_REQUEST,
            "invalid_phone",
        ),
        (
            json!({"handle": "carl", "display_name": "C"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"handle": 5, "display_name": "C", "password": PASSWORD}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let (got, problem) = api.post("/v1/users", None, body.clone()).await;
        assert_eq!(
            (got, problem["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
    }
    let raw = |body: &'static str, content_type: &'static str| {
        api.http
            .post(api.app.url("/v1/users"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = raw("{not json", "application/json").await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let response = raw("{}", "text/plain").await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = api
        .http
        .post(api.app.url("/v1/users"))
        .header("content-type", "application/json")
        .body(format!("{{\"handle\": \"{}\"}}", "a".repeat(64 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let problem: Value = huge.json().await.unwrap();
    assert_eq!(problem["code"], "body_too_large");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_handle_look_the_same() {
    let env = TestEnv::new().await;
    let api = Api::start(&env, auth_settings()).await;
    api.register("carol").await;
    let (wrong_status, wrong) = api
        .post(
            "/v1/sessions",
            None,
            json!({"handle": "carol", "password": "not the password"}),
        )
        .await;
    let (unknown_status, unknown) = api
        .post(
            "/v1/sessions",
            None,
            json!({"handle": "nobody_here", "password": "not the password"}),
        )
        .await;
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!((wrong_status, &wrong), (unknown_status, &unknown));
    assert_eq!(wrong["code"], "invalid_credentials");
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_ends_the_session() {
    let env = TestEnv::new().await;
    let settings = AuthSettings {
        refresh_grace_secs: 0,
        ..auth_settings()
    };
    let api = Api::start(&env, settings).await;
    api.register("dave").await;
    let first = api.login("dave", "phone").await;
    let (status, second) = api
        .post(
            "/v1/sessions/refresh",
            None,
            json!({"refresh_token": refresh_token(&first)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(refresh_token(&second), refresh_token(&first));
    assert_eq!(second["session_id"], first["session_id"]);
    let (status, _) = api.get("/v1/users/me", token(&second)).await;
    assert_eq!(status, StatusCode::OK);

    // The first token again: stolen. The whole session ends.
    let (status, reused) = api
        .post(
            "/v1/sessions/refresh",
            None,
            json!({"refresh_token": refresh_token(&first)}),
        )
        .await;
    assert_eq!(
        (status, reused["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("refresh_token_reused"))
    );
    let (status, ended) = api
        .post(
            "/v1/sessions/refresh",
            None,
            json!({"refresh_token": refresh_token(&second)}),
        )
        .await;
    assert_eq!(
        (status, ended["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("session_ended"))
    );
    api.refused_within_a_second(token(&second)).await;

    let (status, garbage) = api
        .post(
            "/v1/sessions/refresh",
            None,
            json!({"refresh_token": "rt1.nope"}),
        )
        .await;
    assert_eq!(
        (status, garbage["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_refresh_token"))
    );
}

#[tokio::test]
async fn of_two_racing_refreshes_one_wins_and_the_session_lives() {
    let env = TestEnv::new().await;
    let api = Api::start(&env, auth_settings()).await;
    api.register("erin").await;
    let session = api.login("erin", "phone").await;
    let body = json!({"refresh_token": refresh_token(&session)});
    let (a, b) = tokio::join!(
        api.post("/v1/sessions/refresh", None, body.clone()),
        api.post("/v1/sessions/refresh", None, body.clone()),
    );
    let mut outcomes = [a, b];
    outcomes.sort_by_key(|(status, _)| status.as_u16());
    assert_eq!(outcomes[0].0, StatusCode::OK, "{:?}", outcomes);
    assert_eq!(outcomes[1].0, StatusCode::CONFLICT, "{:?}", outcomes);
    assert_eq!(outcomes[1].1["code"], "refresh_race");
    // The winner's token carries on.
    let (status, _) = api
        .post(
            "/v1/sessions/refresh",
            None,
            json!({"refresh_token": refresh_token(&outcomes[0].1)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn logout_and_revocation_refuse_the_access_token_within_a_second() {
    let env = TestEnv::new().await;
    let api = Api::start(&env, auth_settings()).await;
    api.register("fay").await;
    let laptop = api.login("fay", "laptop").await;
    let phone = api.login("fay", "phone").await;
    let (status, listed) = api
        .get(
            &format!("/v1/sessions?min_sequence={}", phone["sequence"]),
            token(&laptop),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .any(|s| s["device_name"] == "phone" && s["current"] == false)
    );
    assert!(
        items
            .iter()
            .any(|s| s["device_name"] == "laptop" && s["current"] == true)
    );

    // Revoke the phone from the laptop.
    let path = format!("/v1/sessions/{}", phone["session_id"].as_str().unwrap());
    let (status, _) = api
        .send(reqwest::Method::DELETE, &path, Some(token(&laptop)), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    api.refused_within_a_second(token(&phone)).await;

    // Someone else's session is not found.
    api.register("gus").await;
    let gus = api.login("gus", "x").await;
    let path = format!("/v1/sessions/{}", laptop["session_id"].as_str().unwrap());
    let (status, problem) = api
        .send(reqwest::Method::DELETE, &path, Some(token(&gus)), None)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // Log out.
    let (status, _) = api
        .send(
            reqwest::Method::DELETE,
            "/v1/sessions/current",
            Some(token(&laptop)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    api.refused_within_a_second(token(&laptop)).await;
    let (status, _) = api
        .post(
            "/v1/sessions/refresh",
            None,
            json!({"refresh_token": refresh_token(&laptop)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_password_change_ends_every_other_session() {
    let env = TestEnv::new().await;
    let api = Api::start(&env, auth_settings()).await;
    api.register("hana").await;
    let here = api.login("hana", "here").await;
    let there = api.login("hana", "there").await;
    let (status, problem) = api
        .send(
            reqwest::Method::PUT,
            "/v1/users/me/password",
            Some(token(&here)),
            Some(json!({"old_password": "wrong password!", "new_password": "a brand new secret"})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );
    let (status, _) = api
        .send(
            reqwest::Method::PUT,
            "/v1/users/me/password",
            Some(token(&here)),
            Some(json!({"old_password": PASSWORD, "new_password": "a brand new secret"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    api.refused_within_a_second(token(&there)).await;
    let (status, _) = api
        .post(
            "/v1/sessions/refresh",
            None,
            json!({"refresh_token": refresh_token(&there)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // This session lives on, and only the new password works.
    let (status, _) = api.get("/v1/users/me", token(&here)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .post(
            "/v1/sessions/refresh",
            None,
            json!({"refresh_token": refresh_token(&here)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .post(
            "/v1/sessions",
            None,
            json!({"handle": "hana", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api
        .post(
            "/v1/sessions",
            None,
            json!({"handle": "hana", "password": "a brand new secret"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn in_cookie_mode_the_refresh_token_lives_in_an_http_only_cookie() {
    let env = TestEnv::new().await;
    let settings = AuthSettings {
        refresh_grace_secs: 0,
        ..auth_settings()
    };
    let api = Api::start(&env, settings).await;
    api.register("iris").await;
    let (session, first) = api.cookie_login("iris", "browser").await;
    assert!(first.starts_with("rt1."), "{first}");
    let (status, _) = api.get("/v1/users/me", token(&session)).await;
    assert_eq!(status, StatusCode::OK);

    // The cookie alone is not enough: a foreign page can make the browser send it.
    let cookie = Some(first.as_str());
    let unmarked = api
        .cookie_refresh(CookieRefresh {
            cookie,
            ..Default::default()
        })
        .await;
    assert!(unmarked.headers().get("set-cookie").is_none());
    assert_eq!(
        problem(unmarked).await,
        (StatusCode::FORBIDDEN, "csrf_rejected".into())
    );
    let foreign = api
        .cookie_refresh(CookieRefresh {
            cookie,
            csrf: true,
            origin: Some("https://evil.example"),
        })
        .await;
    assert_eq!(
        problem(foreign).await,
        (StatusCode::FORBIDDEN, "csrf_rejected".into())
    );
    let nothing = api
        .cookie_refresh(CookieRefresh {
            csrf: true,
            ..Default::default()
        })
        .await;
    assert_eq!(
        problem(nothing).await,
        (StatusCode::UNAUTHORIZED, "invalid_refresh_token".into())
    );

    // From the app's own page: the cookie rotates, and the body holds no token.
    let origin = api.origin();
    let refreshed = api
        .cookie_refresh(CookieRefresh {
            cookie,
            csrf: true,
            origin: Some(&origin),
        })
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    assert_eq!(refreshed.headers()["cache-control"], "no-store");
    let (second, max_age) = refresh_cookie(&refreshed);
    assert_ne!(second, first);
    assert!(
        (30 * 86_400 - 60..=30 * 86_400).contains(&max_age),
        "{max_age}"
    );
    let body: Value = refreshed.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["session_id"], session["session_id"]);
    let (status, _) = api.get("/v1/users/me", token(&body)).await;
    assert_eq!(status, StatusCode::OK);
    // No Origin (some browsers omit it on same-origin requests) is let in too.
    let third = api
        .cookie_refresh(CookieRefresh {
            cookie: Some(&second),
            csrf: true,
            origin: None,
        })
        .await;
    assert_eq!(third.status(), StatusCode::OK);
    let (third_cookie, _) = refresh_cookie(&third);
    let third: Value = third.json().await.unwrap();

    // The first cookie again, as a thief would send it: the session ends, and the
    // answer removes the cookie.
    let reused = api
        .cookie_refresh(CookieRefresh {
            cookie,
            csrf: true,
            origin: Some(&origin),
        })
        .await;
    clears_the_cookie(&reused);
    assert_eq!(
        problem(reused).await,
        (StatusCode::UNAUTHORIZED, "refresh_token_reused".into())
    );
    api.refused_within_a_second(token(&third)).await;
    let ended = api
        .cookie_refresh(CookieRefresh {
            cookie: Some(&third_cookie),
            csrf: true,
            origin: Some(&origin),
        })
        .await;
    clears_the_cookie(&ended);
    assert_eq!(
        problem(ended).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );
}

#[tokio::test]
async fn logging_out_removes_the_cookie() {
    let env = TestEnv::new().await;
    let api = Api::start(&env, auth_settings()).await;
    api.register("jay").await;
    let (session, cookie) = api.cookie_login("jay", "browser").await;
    let response = api
        .http
        .delete(api.app.url("/v1/sessions/current"))
        .bearer_auth(token(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    clears_the_cookie(&response);
    api.refused_within_a_second(token(&session)).await;
    let refreshed = api
        .cookie_refresh(CookieRefresh {
            cookie: Some(&cookie),
            csrf: true,
            origin: None,
        })
        .await;
    assert_eq!(
        problem(refreshed).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_of_the_caller() {
    let env = TestEnv::new().await;
    let api = Api::start(&env, auth_settings()).await;
    api.register("kim").await;
    api.register("lou").await;
    let phone = api.login("kim", "phone").await;
    let laptop = api.login("kim", "laptop").await;
    let (browser, cookie) = api.cookie_login("kim", "browser").await;
    let other = api.login("lou", "phone").await;

    let response = api
        .http
        .delete(api.app.url("/v1/sessions"))
        .bearer_auth(token(&browser))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    clears_the_cookie(&response);
    for session in [&browser, &phone, &laptop] {
        api.refused_within_a_second(token(session)).await;
    }
    let (status, ended) = api
        .post(
            "/v1/sessions/refresh",
            None,
            json!({"refresh_token": refresh_token(&phone)}),
        )
        .await;
    assert_eq!(
        (status, ended["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("session_ended"))
    );
    let refreshed = api
        .cookie_refresh(CookieRefresh {
            cookie: Some(&cookie),
            csrf: true,
            origin: None,
        })
        .await;
    assert_eq!(
        problem(refreshed).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );

    // Someone else's session lives on; a new login works and is the only one listed.
    let (status, _) = api.get("/v1/users/me", token(&other)).await;
    assert_eq!(status, StatusCode::OK);
    let again = api.login("kim", "phone").await;
    let (status, listed) = api
        .get(
            &format!("/v1/sessions?min_sequence={}", again["sequence"]),
            token(&again),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed: Vec<&Value> = listed["items"].as_array().unwrap().iter().collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["session_id"], again["session_id"]);

    let (status, problem) = api
        .send(reqwest::Method::DELETE, "/v1/sessions", None, None)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
}

#[tokio::test]
async fn blocks_and_privacy_shape_what_others_see() {
    let env = TestEnv::new().await;
    let api = Api::start(&env, auth_settings()).await;
    let ivy_id = api.register("ivy").await["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let jon = api.register("jon").await;
    let jon_id = jon["user_id"].as_str().unwrap().to_owned();
    let ivy = api.login("ivy", "x").await;
    let jon_session = api.login("jon", "x").await;
    api.send(
        reqwest::Method::PATCH,
        "/v1/users/me",
        Some(token(&ivy)),
        Some(json!({"about": "ivy here"})),
    )
    .await;

    let (status, problem) = api
        .send(
            reqwest::Method::PUT,
            &format!("/v1/users/me/blocks/{ivy_id}"),
            Some(token(&ivy)),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("cannot_block_self"))
    );
    let nobody = uuid::Uuid::now_v7();
    let (status, _) = api
        .send(
            reqwest::Method::PUT,
            &format!("/v1/users/me/blocks/{nobody}"),
            Some(token(&ivy)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, blocked) = api
        .send(
            reqwest::Method::PUT,
            &format!("/v1/users/me/blocks/{jon_id}"),
            Some(token(&ivy)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, again) = api
        .send(
            reqwest::Method::PUT,
            &format!("/v1/users/me/blocks/{jon_id}"),
            Some(token(&ivy)),
            None,
        )
        .await;
    assert_eq!(
        again["sequence"], blocked["sequence"],
        "blocking twice changes nothing"
    );
    let (_, list) = api
        .get(
            &format!("/v1/users/me/blocks?min_sequence={}", blocked["sequence"]),
            token(&ivy),
        )
        .await;
    assert_eq!(list["items"][0]["user_id"], jon_id.as_str());

    // A blocked user does not see the blocker's about.
    let (status, seen) = api
        .get(
            &format!(
                "/v1/users/by-handle/IVY?min_sequence={}",
                blocked["sequence"]
            ),
            token(&jon_session),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["about"], Value::Null);
    let (_, unblocked) = api
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/users/me/blocks/{jon_id}"),
            Some(token(&ivy)),
            None,
        )
        .await;
    let (_, seen) = api
        .get(
            &format!("/v1/users/{ivy_id}?min_sequence={}", unblocked["sequence"]),
            token(&jon_session),
        )
        .await;
    assert_eq!(seen["about"], "ivy here");

    // About for nobody: hidden from others, shown to oneself.
    let (_, private) = api
        .send(
            reqwest::Method::PUT,
            "/v1/users/me/privacy",
            Some(token(&ivy)),
            Some(json!({"about": "nobody"})),
        )
        .await;
    let (_, seen) = api
        .get(
            &format!("/v1/users/{ivy_id}?min_sequence={}", private["sequence"]),
            token(&jon_session),
        )
        .await;
    assert_eq!(seen["about"], Value::Null);
    let (_, mine) = api.get(&format!("/v1/users/{ivy_id}"), token(&ivy)).await;
    assert_eq!(mine["about"], "ivy here");
    let (_, me) = api.get("/v1/users/me", token(&ivy)).await;
    assert_eq!(me["privacy"]["about"], "nobody");
}

#[tokio::test]
async fn search_pages_through_handles_and_names() {
    let env = TestEnv::new().await;
    let api = Api::start(&env, auth_settings()).await;
    let mut last = Value::Null;
    for handle in ["kim_a", "kim_b", "kim_c", "kimberly", "other"] {
        last = api.register(handle).await;
    }
    let kim = api.login("kim_a", "x").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/users?q=KIM&limit=2&min_sequence={}", last["sequence"]);
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = api.get(&path, token(&kim)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["handle"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["kim_a", "kim_b", "kim_c", "kimberly"]);
    let (status, problem) = api.get("/v1/users?q=kim&cursor=%%%", token(&kim)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, _) = api.get("/v1/users?q=&limit=2", token(&kim)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.get("/v1/users?q=kim&limit=1000", token(&kim)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .get("/v1/users/by-handle/nobody_at_all", token(&kim))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_registration() {
    let env = TestEnv::new().await;
    let api = Api::start(&env, auth_settings()).await;
    let send = |body: Value| {
        api.http
            .post(api.app.url("/v1/users"))
            .header("idempotency-key", "4f0e5c1a-retry-me")
            .json(&body)
            .send()
    };
    let body = json!({"handle": "lea", "display_name": "Lea", "password": PASSWORD});
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = send(body).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["user_id"], first["user_id"]);
    let other = send(json!({"handle": "leo", "display_name": "Leo", "password": PASSWORD}))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = other.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency_key_reused");
}

#[tokio::test]
async fn logins_are_rate_limited_before_any_hashing() {
    let env = TestEnv::new().await;
    let settings = AuthSettings {
        login_per_handle: 3,
        register_per_address: 2,
        ..auth_settings()
    };
    let api = Api::start(&env, settings).await;
    api.register("max").await;
    for _ in 0..3 {
        let (status, _) = api
            .post(
                "/v1/sessions",
                None,
                json!({"handle": "max", "password": "wrong password"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The right password now: refused all the same, so the limit is checked before the
    // password is (and so before any hashing).
    let response = api
        .http
        .post(api.app.url("/v1/sessions"))
        .json(&json!({"handle": "MAX", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    // Registrations per address.
    api.register("nia").await;
    let (status, _) = api
        .post(
            "/v1/users",
            None,
            json!({"handle": "ned", "display_name": "N", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn password_changes_and_deletions_are_rate_limited_before_any_hashing() {
    let env = TestEnv::new().await;
    let settings = AuthSettings {
        login_per_handle: 3,
        ..auth_settings()
    };
    let api = Api::start(&env, settings).await;
    api.register("ola").await;
    let session = api.login("ola", "phone").await;
    // A stolen access token guessing the password: three tries, then refused unheard.
    for _ in 0..2 {
        let (status, _) = api
            .send(
                reqwest::Method::PUT,
                "/v1/users/me/password",
                Some(token(&session)),
                Some(
                    json!({"old_password": "a wrong guess", "new_password": "a brand new secret"}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = api
        .send(
            reqwest::Method::DELETE,
            "/v1/users/me",
            Some(token(&session)),
            Some(json!({"password": "another wrong guess"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for (method, path, body) in [
        (
            reqwest::Method::PUT,
            "/v1/users/me/password",
            json!({"old_password": PASSWORD, "new_password": "a brand new secret"}),
        ),
        (
            reqwest::Method::DELETE,
            "/v1/users/me",
            json!({"password": PASSWORD}),
        ),
    ] {
        let (status, problem) = api
            .send(method, path, Some(token(&session)), Some(body))
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")),
            "{path}"
        );
    }
    // The account is untouched: the right password still signs in.
    api.login("ola", "laptop").await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_is_the_hop_it_saw_whatever_the_client_wrote() {
    let env = TestEnv::new().await;
    let settings = AuthSettings {
        login_per_address: 2,
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..auth_settings()
    };
    let api = Api::start(&env, settings).await;
    let attempt = |forwarded: String| {
        let request = api
            .http
            .post(api.app.url("/v1/sessions"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"handle": "nobody", "password": "wrong password"}));
        async move { request.send().await.unwrap().status() }
    };
    // One client (203.0.113.7, as the proxy saw it) forging a new first hop each time:
    // still one address, limited after two attempts.
    for forged in 1..=2 {
        let status = attempt(format!("6.6.6.{forged}, 203.0.113.7")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let status = attempt("6.6.6.3, 203.0.113.7".into()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy has its own count.
    let status = attempt("203.0.113.8".into()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn registrations_of_one_handle_are_rate_limited() {
    let env = TestEnv::new().await;
    let settings = AuthSettings {
        register_per_handle: 2,
        ..auth_settings()
    };
    let api = Api::start(&env, settings).await;
    api.register("quin").await;
    let body = json!({"handle": "QUIN", "display_name": "Q", "password": PASSWORD});
    let (status, _) = api.post("/v1/users", None, body.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, problem) = api.post("/v1/users", None, body).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
}

#[tokio::test]
async fn a_deleted_account_is_gone_and_its_handle_free_after_the_cool_down() {
    let env = TestEnv::new().await;
    let settings = AuthSettings {
        handle_cool_down_secs: 1,
        ..auth_settings()
    };
    let api = Api::start(&env, settings).await;
    api.register("otto").await;
    let session = api.login("otto", "x").await;
    let (status, _) = api
        .send(
            reqwest::Method::DELETE,
            "/v1/users/me",
            Some(token(&session)),
            Some(json!({"password": "wrong password"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, deleted) = api
        .send(
            reqwest::Method::DELETE,
            "/v1/users/me",
            Some(token(&session)),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    api.refused_within_a_second(token(&session)).await;
    let (status, _) = api
        .post(
            "/v1/sessions",
            None,
            json!({"handle": "otto", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let other = api.register("pia").await;
    let pia = api.login("pia", "x").await;
    let (status, _) = api
        .get(
            &format!(
                "/v1/users/by-handle/otto?min_sequence={}",
                deleted["sequence"]
                    .as_u64()
                    .max(other["sequence"].as_u64())
                    .unwrap()
            ),
            token(&pia),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the directory dropped the profile"
    );
    eventually(
        Duration::from_secs(5),
        "the handle to come free",
        || async {
            let (status, _) = api
                .post(
                    "/v1/users",
                    None,
                    json!({"handle": "otto", "display_name": "New Otto", "password": PASSWORD}),
                )
                .await;
            assert!(status == StatusCode::CREATED || status == StatusCode::CONFLICT);
            status == StatusCode::CREATED
        },
    )
    .await;
}
