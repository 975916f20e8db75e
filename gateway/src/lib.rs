//! The realtime gateway: WebSocket connections that receive, in stream order, every
//! stored event of their user's chats, live and after any disconnect, with typing
//! signals beside them. The protocol is in `docs/realtime.md`, and the API serves it
//! as an AsyncAPI document at `/asyncapi.json`.
//!
//! Invariants:
//! - A connection gets its chats' stored events in stream order, each once, and only
//!   events the log has stored (the stream's republish): `hub.rs`, `ordered.rs`.
//! - A resume from a cursor is exact: no gap and no duplicate between what the log
//!   replays and what comes live (`sync.rs`); a join while connected cannot open a gap,
//!   and live events that may have been missed close connections with `resync`, never go
//!   missing (`hub.rs`).
//! - Memory per connection is bounded: a full inbox (`NATTER_GATEWAY_INBOX` events)
//!   closes the connection with `slow_consumer`, and a socket write that takes longer
//!   than 10 s closes it as unresponsive.
//! - Gateway processes share nothing but NATS; online is ephemeral (the presence bucket)
//!   and last seen is an event (`presence.rs`).
//! - It never depends on the API crate: tokens come from `natter-access`, and refusals
//!   are written here from the errors' stable codes.

mod connection;
mod hub;
pub mod membership;
pub mod metrics;
mod ordered;
mod presence;
pub mod protocol;
mod sync;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use natter_access::tokens::TokenError;
use natter_access::{Auth, same_origin};
use natter_commands::messages::Messages;
use natter_eventlog::EventLog;
use serde::Deserialize;
use sqlx::PgPool;

use crate::hub::HubHandle;

/// The gateway's settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Origins a browser may connect from (`*` for any). A request without an `Origin`
    /// header (not a browser) is always let through.
    pub allowed_origins: Vec<String>,
    /// Live events held for one connection before it counts as too slow.
    pub inbox_capacity: usize,
    /// The most events one resume replays; a cursor further back is refused.
    pub max_replay: usize,
    /// How often delivered acknowledgements are written to the log, per chat at most.
    pub delivered_flush: Duration,
    /// Interval of the server's WebSocket pings; a client silent for three is gone.
    pub heartbeat: Duration,
    /// How long a frame may take to be written before the client counts as gone.
    pub send_timeout: Duration,
    /// How long a new connection may take to send `resume`.
    pub resume_timeout: Duration,
    /// How long a user's last connection must stay closed before they count as gone
    /// (and their last seen is recorded): flapping connections change nothing.
    pub presence_debounce: Duration,
    /// Live messages one NATS subscription holds for the hub; beyond, they are lost,
    /// and the chats they belonged to resync.
    pub subscription_capacity: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            inbox_capacity: 1024,
            max_replay: 20_000,
            delivered_flush: Duration::from_secs(1),
            heartbeat: Duration::from_secs(30),
            send_timeout: Duration::from_secs(10),
            resume_timeout: Duration::from_secs(10),
            presence_debounce: Duration::from_secs(5),
            subscription_capacity: 1 << 16,
        }
    }
}

/// What every connection shares.
#[derive(Debug)]
struct Shared {
    hub: HubHandle,
    /// The hub's own NATS connection, also used to publish typing signals.
    client: async_nats::Client,
    log: EventLog,
    pool: PgPool,
    auth: Auth,
    messages: Messages,
    presence: natter_access::presence::Presence,
    metrics: metrics::GatewayMetrics,
    config: GatewayConfig,
    next_connection: AtomicU64,
}

/// What the gateway uses of the rest of Natter.
#[derive(Debug)]
pub struct Services {
    pub log: EventLog,
    pub pool: PgPool,
    pub auth: Auth,
    pub messages: Messages,
    pub accounts: natter_commands::accounts::Accounts,
    pub presence: natter_access::presence::Presence,
    pub metrics: metrics::GatewayMetrics,
}

/// A running gateway: the hub and what the WebSocket endpoint needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    /// Connects the hub to NATS on a connection of its own and starts it.
    pub async fn start(
        nats_url: &str,
        services: Services,
        config: GatewayConfig,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), StartError> {
        let Services {
            log,
            pool,
            auth,
            messages,
            accounts,
            presence,
            metrics,
        } = services;
        let (events, connection_events) = tokio::sync::mpsc::channel(64);
        let url = natter_eventlog::NatsUrl::parse(nats_url);
        let client = url
            .options()
            .name("natter-gateway")
            .connection_timeout(Duration::from_secs(5))
            // A full subscription loses live events; the hub notices each gap by the
            // sequences and the chat's watchers resume.
            .subscription_capacity(config.subscription_capacity)
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    let _ = events.try_send(event);
                }
            })
            .connect(url.servers())
            .await?;
        let (changes, changed) = tokio::sync::mpsc::unbounded_channel();
        let tracker = presence::Tracker {
            presence: presence.clone(),
            accounts,
            client: client.clone(),
            subjects: log.subjects(),
            gateway: uuid::Uuid::now_v7().simple().to_string(),
            debounce: config.presence_debounce,
        };
        tokio::spawn(tracker.run(changed));
        let (hub, task) = hub::start(client.clone(), connection_events, log.clone(), changes);
        let shared = Arc::new(Shared {
            hub,
            client,
            log,
            pool,
            auth,
            messages,
            presence,
            metrics,
            config,
            next_connection: AtomicU64::new(1),
        });
        Ok((Self { shared }, task))
    }

    /// `GET /v1/ws`, the WebSocket (described by the API's `/asyncapi.json`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/ws", get(upgrade))
            .with_state(self.clone())
    }
}

/// The gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("connecting the gateway to NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
}

#[derive(Debug, Deserialize)]
struct UpgradeQuery {
    /// For browsers, which cannot set headers on a WebSocket request.
    access_token: Option<String>,
}

/// Checks the origin and the access token, then upgrades to a WebSocket.
async fn upgrade(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Query(query): Query<UpgradeQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let shared = &gateway.shared;
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok());
        let allowed = origin.to_str().is_ok_and(|origin| {
            // The web app served by this process connects from its own origin.
            same_origin(origin, host)
                || shared
                    .config
                    .allowed_origins
                    .iter()
                    .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
        });
        if !allowed {
            return problem(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin may not open realtime connections",
            );
        }
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(token) = bearer.or(query.access_token) else {
        return refused(TokenError::Missing);
    };
    let claims = match shared.auth.keys.verify(token.trim()) {
        Ok(claims) => claims,
        Err(error) => return refused(error),
    };
    if !shared.auth.revocations.admits(&claims) {
        return refused(TokenError::Revoked);
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return problem(
                StatusCode::UPGRADE_REQUIRED,
                "websocket_required",
                &format!("open this endpoint as a WebSocket: {rejection}"),
            );
        }
    };
    let gateway = gateway.clone();
    upgrade
        .read_buffer_size(connection::READ_BUFFER)
        .write_buffer_size(connection::WRITE_BUFFER)
        .max_write_buffer_size(connection::MAX_WRITE_BUFFER)
        .max_message_size(connection::MAX_CLIENT_FRAME)
        .max_frame_size(connection::MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| connection::serve(socket, gateway.shared, claims))
}

/// A refused token, answered as the API answers it: 401 with its code.
fn refused(error: TokenError) -> Response {
    problem(StatusCode::UNAUTHORIZED, error.code(), &error.to_string())
}

/// An `application/problem+json` answer (RFC 9457) with Natter's stable `code`, as the
/// REST API writes its own.
fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "code": code,
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}
