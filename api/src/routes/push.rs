//! Web Push subscriptions: the server's VAPID key, and each session's subscription
//! (`natter_push` sends the pushes, from the projector role).

use axum::extract::State;
use axum::http::StatusCode;
use natter_domain::push::PushSubscription;
use natter_domain::session::PushEndReason;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{SequenceResponse, metadata};
use crate::extract::{ApiJson, Caller};
use crate::{ApiError, ApiState};

/// What the server sends pushes with.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushKey {
    /// The VAPID public key (RFC 8292): an uncompressed P-256 point in base64url, to
    /// pass as `applicationServerKey` to `PushManager.subscribe`.
    pub public_key: String,
}

/// A subscription, as `PushSubscription.toJSON()` gives it, and whether pushes may
/// carry message text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    /// The push service's URL for this device (`https`).
    #[schema(max_length = 2048, pattern = "^https?://")]
    pub endpoint: String,
    pub keys: SubscriptionKeys,
    /// Present in `toJSON()`; ignored.
    #[serde(default, rename = "expirationTime")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 9_007_199_254_740_991_f64)]
    pub expiration_time: Option<serde_json::Value>,
    /// Whether pushes may show the sender, chat and text (default true); with false a
    /// push says only which chat has how many new messages.
    #[serde(default = "previews_by_default")]
    pub previews: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionKeys {
    /// The device's P-256 public key, base64url (65 bytes).
    #[schema(max_length = 100)]
    pub p256dh: String,
    /// The device's authentication secret, base64url (16 bytes).
    #[schema(max_length = 30)]
    pub auth: String,
}

fn previews_by_default() -> bool {
    true
}

fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "push_disabled",
        "this server sends no pushes (no VAPID key is configured)",
    )
}

/// The key to subscribe with (no token needed).
#[utoipa::path(
    get, path = "/v1/push/key", tag = "push",
    responses(
        (status = 200, body = PushKey),
        (status = 404, description = "This server sends no pushes (`push_disabled`)"),
    )
)]
pub async fn key(State(state): State<ApiState>) -> Result<axum::Json<PushKey>, ApiError> {
    let public_key = state.config.push.public_key.clone().ok_or_else(disabled)?;
    Ok(axum::Json(PushKey { public_key }))
}

/// Sends this session's pushes to a subscription, replacing any before. New messages
/// are pushed while none of the caller's apps is open, but for muted chats (unless the
/// message mentions the caller) and blocked senders. The subscription ends with the
/// session, when deleted, or when its push service says it is gone.
#[utoipa::path(
    put, path = "/v1/sessions/current/push", tag = "push", security(("bearer" = [])),
    request_body = SubscribeRequest,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 400, description = "Not a subscription: the endpoint (`invalid_endpoint`: an https URL of a public host) or a key (`invalid_push_key`)"),
        (status = 401, description = "Not signed in"),
        (status = 404, description = "This server sends no pushes (`push_disabled`)"),
    )
)]
pub async fn subscribe(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<SubscribeRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    if state.config.push.public_key.is_none() {
        return Err(disabled());
    }
    natter_push::check_endpoint(&request.endpoint, state.config.push.allow_private)
        .map_err(|error| ApiError::bad_request("invalid_endpoint", error.to_string()))?;
    let subscription =
        PushSubscription::parse(&request.endpoint, &request.keys.p256dh, &request.keys.auth)
            .map_err(|error| {
                let code = match error {
                    natter_domain::push::PushSubscriptionError::Endpoint => "invalid_endpoint",
                    _ => "invalid_push_key",
                };
                ApiError::bad_request(code, error.to_string())
            })?;
    let sequence = state
        .accounts
        .subscribe_push(
            caller.user_id,
            caller.session_id,
            subscription,
            request.previews,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

/// Ends this session's pushes.
#[utoipa::path(
    delete, path = "/v1/sessions/current/push", tag = "push", security(("bearer" = [])),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 401, description = "Not signed in"),
    )
)]
pub async fn unsubscribe(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let sequence = state
        .accounts
        .unsubscribe_push(
            caller.user_id,
            caller.session_id,
            PushEndReason::Unsubscribed,
            None,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}
