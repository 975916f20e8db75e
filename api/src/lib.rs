//! The HTTP API: the versioned REST endpoints under `/v1`, their OpenAPI 3.1 document
//! (`/openapi.json`, Swagger UI at `/docs`), liveness, readiness and Prometheus metrics.
//! Every error leaves as `application/problem+json` with a stable `code`.
//!
//! Invariants:
//! - Writes go through the commands, reads through the read models; the API writes no
//!   read model and appends to the log only through `natter-commands`.
//! - Every error is an `ApiError`: 4xx say what was wrong with the request; a failure of
//!   the server is logged once, where `ApiError::internal` makes it, and reveals nothing
//!   to the client (`internal`, or 503 `unavailable` when a store cannot be reached).
//! - Every request with a token is checked against the signature and the revocation view
//!   (`extract::Caller`); rate limits are checked before any password hashing.
//! - A query given a consistency token (`min_sequence`) waits, with a bound, until its
//!   read model has reached it (`extract::wait_for`).
//! - It never depends on the gateway, nor the gateway on it: both stand on `natter-access`.

pub mod admin;
pub mod collector;
pub mod connection;
pub mod extract;
pub mod health;
pub mod limits;
pub mod media;
mod openapi;
mod problem;
pub mod routes;
pub mod uploads;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use natter_commands::accounts::Accounts;
use natter_eventlog::EventLog;
use prometheus_client::registry::Registry;
use sqlx::PgPool;

pub use openapi::{ApiDoc, openapi_json};
pub use problem::{ApiError, Problem};

use crate::limits::{Limit, RateLimiter};

pub use natter_access::Auth;
/// The access layer's modules, under the names the API's code has always used.
pub use natter_access::{presence, tokens as auth};

/// The largest body of a send or an edit. A message's text is up to 64 KiB of UTF-8,
/// which JSON may escape to six bytes a byte (`\u0001`), beside its other fields.
pub const MESSAGE_BODY_LIMIT: usize = 512 * 1024;

/// The API's own settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Proxies whose `X-Forwarded-For` names the client (see `extract::client_address`);
    /// empty: the peer address is the client's.
    pub trusted_proxies: Vec<extract::TrustedProxy>,
    /// How long a query waits for its read model to reach a consistency token.
    pub consistency_timeout: Duration,
    pub login_per_address: Limit,
    pub login_per_handle: Limit,
    pub register_per_address: Limit,
    pub register_per_handle: Limit,
    /// Read and delivered markers per user, over REST.
    pub markers_per_user: Limit,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// The operators' token for `/v1/admin`; `None` turns those endpoints off.
    pub admin_token: Option<admin::AdminToken>,
    pub push: PushConfig,
}

/// What the API needs of Web Push.
#[derive(Debug, Clone, Default)]
pub struct PushConfig {
    /// The VAPID public key clients subscribe with; `None`: no pushes are sent.
    pub public_key: Option<String>,
    /// Endpoints on private addresses and plain http are taken (development, tests).
    pub allow_private: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            consistency_timeout: Duration::from_secs(3),
            login_per_address: Limit::per_minute(60),
            login_per_handle: Limit::per_minute(10),
            register_per_address: Limit::per_minute(10),
            register_per_handle: Limit::per_minute(5),
            markers_per_user: Limit::per_minute(120),
            body_limit: 16 * 1024,
            admin_token: None,
            push: PushConfig::default(),
        }
    }
}

/// What every handler may use: one pointer, since axum clones the state for every
/// extractor of every request, and cloning the services themselves (their NATS clients,
/// pools and caches) took a tenth of a send's time (issue 18).
#[derive(Debug, Clone)]
pub struct ApiState(Arc<Services>);

impl ApiState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for ApiState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`ApiState`].
#[derive(Debug)]
pub struct Services {
    pub pool: PgPool,
    /// Sends by client id, looked up in batches.
    pub sent_lookup: natter_projections::reads::messages::SentLookup,
    pub log: EventLog,
    pub registry: Arc<Registry>,
    pub accounts: Accounts,
    pub chats: natter_commands::chats::Chats,
    pub messages: natter_commands::messages::Messages,
    pub auth: Auth,
    pub limiter: RateLimiter,
    pub config: Arc<ApiConfig>,
    pub presence: presence::Presence,
    pub media: std::sync::Arc<media::MediaService>,
    /// The web app served at `/` behind the API's routes, if there is one.
    pub web: Option<Arc<web::WebApp>>,
}

/// The whole HTTP surface. With `rest` false (a process without the `api` role), only
/// health, readiness and metrics.
pub fn router(state: ApiState, rest: bool) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/admin/projections", get(admin::projections));
    if rest {
        router = router
            .route(
                "/v1/users",
                post(routes::accounts::register).get(routes::accounts::search),
            )
            .route(
                "/v1/users/by-handle/{handle}",
                get(routes::accounts::by_handle),
            )
            .route(
                "/v1/users/me",
                get(routes::accounts::me)
                    .patch(routes::accounts::change_profile)
                    .delete(routes::accounts::delete_account),
            )
            .route(
                "/v1/users/me/password",
                put(routes::accounts::change_password),
            )
            .route(
                "/v1/users/me/privacy",
                put(routes::accounts::change_privacy),
            )
            .route(
                "/v1/users/me/photo",
                put(routes::accounts::set_photo).delete(routes::accounts::remove_photo),
            )
            .route("/v1/users/me/blocks", get(routes::accounts::blocks))
            .route(
                "/v1/users/me/blocks/{user_id}",
                put(routes::accounts::block).delete(routes::accounts::unblock),
            )
            .route("/v1/users/{user_id}", get(routes::accounts::user))
            .route(
                "/v1/users/{user_id}/presence",
                get(routes::accounts::presence),
            )
            .route("/v1/chats", get(routes::chats::list))
            .route("/v1/chats/direct", post(routes::chats::open_direct))
            .route("/v1/chats/groups", post(routes::chats::create_group))
            .route(
                "/v1/chats/{chat_id}",
                get(routes::chats::details).patch(routes::chats::edit),
            )
            .route(
                "/v1/chats/{chat_id}/members",
                post(routes::chats::add_members),
            )
            .route(
                "/v1/chats/{chat_id}/read",
                post(routes::messages::mark_read),
            )
            .route(
                "/v1/chats/{chat_id}/settings",
                put(routes::chats::change_settings),
            )
            .route(
                "/v1/chats/{chat_id}/delivered",
                post(routes::messages::mark_delivered),
            )
            .route("/v1/search/messages", get(routes::search::search_messages))
            .route("/v1/starred", get(routes::messages::starred))
            .route(
                "/v1/chats/{chat_id}/invites",
                post(routes::chats::create_invite).get(routes::chats::invites),
            )
            .route(
                "/v1/chats/{chat_id}/invites/{code}",
                delete(routes::chats::revoke_invite),
            )
            .route("/v1/invites/{code}", post(routes::chats::join_by_invite))
            .route(
                "/v1/chats/{chat_id}/messages/{sequence}/star",
                put(routes::messages::star).delete(routes::messages::unstar),
            )
            .route(
                "/v1/chats/{chat_id}/messages/{sequence}/pin",
                put(routes::messages::pin).delete(routes::messages::unpin),
            )
            .route(
                "/v1/chats/{chat_id}/messages/{sequence}",
                axum::routing::patch(routes::messages::edit_message)
                    .layer(DefaultBodyLimit::max(MESSAGE_BODY_LIMIT))
                    .delete(routes::messages::delete_message),
            )
            .route(
                "/v1/chats/{chat_id}/messages/{sequence}/reaction",
                put(routes::messages::react).delete(routes::messages::unreact),
            )
            .route(
                "/v1/chats/{chat_id}/messages",
                post(routes::messages::send_message)
                    .layer(DefaultBodyLimit::max(MESSAGE_BODY_LIMIT))
                    .get(routes::messages::history),
            )
            .route(
                "/v1/chats/{chat_id}/members/{user_id}",
                delete(routes::chats::remove_member),
            )
            .route(
                "/v1/chats/{chat_id}/admins/{user_id}",
                put(routes::chats::promote).delete(routes::chats::demote),
            )
            .route(
                "/v1/sessions",
                post(routes::sessions::login)
                    .get(routes::sessions::list)
                    .delete(routes::sessions::sign_out_everywhere),
            )
            .route("/v1/sessions/refresh", post(routes::sessions::refresh))
            .route("/v1/sessions/current", delete(routes::sessions::logout))
            .route(
                "/v1/sessions/current/push",
                put(routes::push::subscribe).delete(routes::push::unsubscribe),
            )
            .route("/v1/push/key", get(routes::push::key))
            .route(
                "/v1/sessions/{session_id}",
                delete(routes::sessions::revoke),
            )
            .route("/v1/media", post(routes::media::upload))
            .merge(
                Router::new()
                    .route(
                        "/v1/media/uploads",
                        post(routes::uploads::create).options(routes::uploads::discover),
                    )
                    .route(
                        "/v1/media/uploads/{upload_id}",
                        get(routes::uploads::progress)
                            .head(routes::uploads::offset)
                            .patch(routes::uploads::append)
                            .delete(routes::uploads::terminate),
                    )
                    .layer(axum::middleware::map_response(
                        routes::uploads::tus_resumable,
                    )),
            )
            .route("/v1/media/{media_id}", get(routes::media::details))
            .route("/v1/media/{media_id}/content", get(routes::media::content))
            .route(
                "/v1/media/{media_id}/thumbnail",
                get(routes::media::thumbnail),
            )
            .route("/v1/media/{media_id}/url", get(routes::media::download_url))
            .route("/openapi.json", get(openapi::serve_openapi))
            .route("/asyncapi.json", get(openapi::serve_asyncapi))
            .merge(openapi::swagger_ui());
    }
    let body_limit = state.config.body_limit;
    router
        .method_not_allowed_fallback(problem::method_not_allowed)
        .fallback(web::fallback)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(connection::announce_close))
        .with_state(state)
}
