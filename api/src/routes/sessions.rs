//! Sessions: login, refresh, logout, and the caller's list of sessions.

use axum::extract::State;
use axum::http::StatusCode;
use natter_domain::session::{DeviceName, RevokeReason};
use natter_domain::user::{Handle, Password};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Consistency, SequenceResponse, metadata};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, ClientAddress, wait_for};
use crate::{ApiError, ApiState, Problem};

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"handle": "alice", "password": "correct horse battery", "device_name": "Pixel 9"}))]
pub struct LoginRequest {
    pub handle: String,
    pub password: String,
    /// Shown in the list of sessions; up to 64 characters.
    pub device_name: Option<String>,
}

/// A signed-in session's tokens.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiIuLi4ifQ.c2ln", "token_type": "Bearer", "expires_in": 900, "refresh_token": "rt1.0190f3a17b2c7d3e8f405a6b7c8d9e0f.q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c", "session_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "user_id": "0190f3a1-0000-7000-8000-000000000001", "sequence": 7}))]
pub struct TokenResponse {
    /// A JWT (EdDSA) to send as `Authorization: Bearer …`.
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque; good for one refresh. Presenting a spent one ends the session.
    pub refresh_token: String,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub sequence: u64,
}

fn token_response(
    state: &ApiState,
    tokens: natter_commands::accounts::Tokens,
) -> Result<TokenResponse, ApiError> {
    let (access_token, expires_in) = state
        .auth
        .keys
        .issue(tokens.user_id, tokens.session_id, tokens.epoch)
        .map_err(ApiError::internal)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: tokens.refresh_token,
        session_id: tokens.session_id,
        user_id: tokens.user_id,
        sequence: tokens.last_sequence,
    })
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "wrong handle or password")
}

/// Signs in with a handle and password, opening a session.
///
/// Limited per address and per handle; a wrong handle and a wrong password get the
/// same answer.
#[utoipa::path(
    post, path = "/v1/sessions", tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 201, body = TokenResponse),
        (status = 400, description = "Invalid device name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong handle or password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Body of the wrong shape", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Password hashing saturated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    State(state): State<ApiState>,
    ClientAddress(address): ClientAddress,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<(StatusCode, axum::Json<TokenResponse>), ApiError> {
    let retry = |wait: std::time::Duration| ApiError::too_many_requests(wait.as_secs() + 1);
    state
        .limiter
        .check(
            &format!("login:ip:{address}"),
            state.config.login_per_address,
        )
        .map_err(retry)?;
    let handle_key = request.handle.trim().to_ascii_lowercase();
    let handle_key: String = handle_key.chars().take(Handle::MAX_LEN + 1).collect();
    state
        .limiter
        .check(
            &format!("login:handle:{handle_key}"),
            state.config.login_per_handle,
        )
        .map_err(retry)?;
    let device_name = DeviceName::parse(request.device_name.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request("invalid_device_name", e))?;
    let handle = Handle::parse(&request.handle).map_err(|_| invalid_credentials())?;
    let password = Password::parse(&request.password).map_err(|_| invalid_credentials())?;
    let tokens = state
        .accounts
        .login(&handle, &password, device_name, metadata(None))
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(token_response(&state, tokens)?),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"refresh_token": "rt1.0190f3a17b2c7d3e8f405a6b7c8d9e0f.q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c"}))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchanges a refresh token for a new access token and a new refresh token.
///
/// Each refresh token works once. A spent one presented again ends the session, unless
/// it is the one spent within the last few seconds (two requests of one client racing):
/// that one gets 409 `refresh_race` and the session lives on.
#[utoipa::path(
    post, path = "/v1/sessions/refresh", tag = "sessions",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Invalid or reused refresh token, or the session has ended", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The token was spent a moment ago by a racing request", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Body of the wrong shape", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn refresh(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    if request.refresh_token.len() > 256 {
        return Err(ApiError::unauthorized(
            "invalid_refresh_token",
            "the refresh token is not valid",
        ));
    }
    let tokens = state
        .accounts
        .refresh(&request.refresh_token, metadata(None))
        .await?;
    Ok(axum::Json(token_response(&state, tokens)?))
}

/// Signs out: ends the caller's session.
#[utoipa::path(
    delete, path = "/v1/sessions/current", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn logout(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let sequence = state
        .accounts
        .end_session(
            caller.user_id,
            caller.session_id,
            RevokeReason::Logout,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

/// Ends one of the caller's sessions.
#[utoipa::path(
    delete, path = "/v1/sessions/{session_id}", tag = "sessions", security(("bearer" = [])),
    params(("session_id" = Uuid, Path, description = "One of the caller's sessions")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session of the caller", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(session_id): ApiPath<Uuid>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let sequence = state
        .accounts
        .end_session(
            caller.user_id,
            session_id,
            RevokeReason::Revoked,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    pub session_id: Uuid,
    pub device_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The last login or refresh.
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// This is the session of the request.
    pub current: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"session_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "device_name": "Pixel 9", "created_at": "2026-11-26T12:00:00Z", "last_used_at": "2026-11-26T12:15:00Z", "expires_at": "2026-12-26T12:00:00Z", "current": true}]}))]
pub struct SessionList {
    pub items: Vec<SessionInfo>,
}

/// The caller's open sessions, newest first.
#[utoipa::path(
    get, path = "/v1/sessions", tag = "sessions", security(("bearer" = [])),
    params(Consistency),
    responses(
        (status = 200, body = SessionList),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Read model behind the consistency token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(consistency): ApiQuery<Consistency>,
) -> Result<axum::Json<SessionList>, ApiError> {
    wait_for(&state, "sessions", 1, consistency.min_sequence).await?;
    let rows = sqlx::query(
        "SELECT session_id, device_name, created_at, last_used_at, expires_at FROM sessions_v1
         WHERE user_id = $1 AND ended_at IS NULL AND expires_at > now()
         ORDER BY created_at DESC LIMIT 500",
    )
    .bind(caller.user_id)
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let items = rows
        .iter()
        .map(|row| {
            let session_id: Uuid = row.try_get("session_id")?;
            Ok(SessionInfo {
                session_id,
                device_name: row.try_get("device_name")?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
                expires_at: row.try_get("expires_at")?,
                current: session_id == caller.session_id,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(ApiError::internal)?;
    Ok(axum::Json(SessionList { items }))
}
