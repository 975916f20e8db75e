//! A client of a running app for HTTP tests: users that sign in, and calls as them.

use natter::settings::{AuthSettings, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{TestApp, TestEnv};

const PASSWORD: &str = "correct horse battery";

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
}

/// Calls `app` as `user`; the body of any answer, or null.
pub async fn call(
    http: &reqwest::Client,
    app: &TestApp,
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
pub async fn sign_up(http: &reqwest::Client, app: &TestApp, name: &str) -> User {
    let handle = format!("u_{name}");
    let registered: Value = http
        .post(app.url("/v1/users"))
        .json(&json!({"handle": handle, "display_name": handle, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session: Value = http
        .post(app.url("/v1/sessions"))
        .json(&json!({"handle": handle, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    User {
        id: registered["user_id"].as_str().unwrap().to_owned(),
        token: session["access_token"].as_str().unwrap().to_owned(),
    }
}
