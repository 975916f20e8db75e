//! Sessions: login, refresh, logout (here or everywhere), and the caller's list of
//! sessions. Browsers keep the refresh token in an HttpOnly cookie (cookie mode).
//!
//! A login or refresh with `Natter-Token-Transport: cookie` hands out the refresh token in
//! the `natter_refresh` cookie (HttpOnly, Secure, SameSite=Strict,
//! `Path=/v1/sessions/refresh`, for the session's remaining lifetime), not in the body,
//! out of reach of the page's scripts. A refresh with no body spends the cookie, and only
//! with `Natter-CSRF: 1` (a header a foreign page cannot send without a CORS preflight,
//! which is never granted) and an `Origin`, if any, equal to `Host`. The cookie goes only
//! to the refresh that spends it; logout, signing out everywhere and a refresh answered
//! 401 remove it.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use natter_domain::session::{DeviceName, RevokeReason};
use natter_domain::user::{Handle, Password};
use natter_projections::reads;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Consistency, SequenceResponse, metadata};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, ClientAddress, same_origin, wait_for};
use crate::{ApiError, ApiState};

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"handle": "alice", "password": "correct horse battery", "device_name": "Pixel 9"}))]
pub struct LoginRequest {
    /// As registered (surrounding spaces are dropped, case does not matter); any other
    /// text is wrong credentials.
    #[schema(min_length = 3, max_length = 32)]
    pub handle: String,
    /// 8 to 128 characters; any other text is wrong credentials.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// Shown in the list of sessions; up to 64 characters.
    #[schema(max_length = 64)]
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
    /// Opaque; good for one refresh. Presenting a spent one ends the session. Absent
    /// when the request asked for `Natter-Token-Transport: cookie` (or refreshed with
    /// the cookie): the `natter_refresh` cookie carries it instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub sequence: u64,
}

/// The header that chooses how the refresh token is handed out.
pub const TOKEN_TRANSPORT_HEADER: &str = "natter-token-transport";
/// The header a refresh with the cookie must carry, set to `1`.
pub const CSRF_HEADER: &str = "natter-csrf";
/// The cookie that carries the refresh token in cookie mode.
pub const REFRESH_COOKIE: &str = "natter_refresh";
/// Where the browser sends the cookie: to the refresh alone, the one request that
/// spends it. Logging out clears it with a cookie of the same path, which needs no
/// sight of it.
pub const REFRESH_COOKIE_PATH: &str = "/v1/sessions/refresh";

/// How a login or refresh hands out the refresh token (`Natter-Token-Transport`): in
/// the JSON body (`body`, the default), or in an HttpOnly cookie that the page's scripts
/// cannot read (`cookie`, for browsers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenTransport {
    Body,
    Cookie,
}

impl FromRequestParts<ApiState> for TokenTransport {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &ApiState) -> Result<Self, ApiError> {
        match parts
            .headers
            .get(TOKEN_TRANSPORT_HEADER)
            .map(|v| v.as_bytes())
        {
            None => Ok(Self::Body),
            Some(value) if value.eq_ignore_ascii_case(b"body") => Ok(Self::Body),
            Some(value) if value.eq_ignore_ascii_case(b"cookie") => Ok(Self::Cookie),
            Some(_) => Err(ApiError::bad_request(
                "invalid_token_transport",
                "Natter-Token-Transport is `body` or `cookie`",
            )),
        }
    }
}

/// The `Set-Cookie` value that hands the browser `token` for `max_age` seconds; an empty
/// token and 0 remove it.
fn refresh_cookie(token: &str, max_age: i64) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; \
         Path={REFRESH_COOKIE_PATH}; Max-Age={max_age}"
    ))
    .map_err(ApiError::internal)
}

fn cleared_refresh_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "natter_refresh=; HttpOnly; Secure; SameSite=Strict; Path=/v1/sessions/refresh; Max-Age=0",
    )
}

/// The refresh token of the request's `natter_refresh` cookie, if it sent one.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == REFRESH_COOKIE && !value.is_empty())
        .map(|(_, value)| value)
}

/// A browser sends the cookie with any request to its path, including one a foreign
/// page makes it send. Such a page cannot set a custom header without a CORS preflight,
/// which this server never grants; and a browser names the page's origin in `Origin`.
fn check_csrf(headers: &HeaderMap) -> Result<(), ApiError> {
    let rejected = |detail| ApiError::new(StatusCode::FORBIDDEN, "csrf_rejected", detail);
    if headers.get(CSRF_HEADER).is_none_or(|value| value != "1") {
        return Err(rejected(
            "a refresh with the cookie needs the header Natter-CSRF: 1",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok());
        if !origin
            .to_str()
            .is_ok_and(|origin| same_origin(origin, host))
        {
            return Err(rejected("the request comes from another origin"));
        }
    }
    Ok(())
}

/// The answer of a login or refresh: the tokens, with the refresh token in the body or
/// in the cookie. Never stored by caches.
fn token_answer(
    state: &ApiState,
    status: StatusCode,
    tokens: natter_commands::accounts::Tokens,
    transport: TokenTransport,
) -> Result<Response, ApiError> {
    let (access_token, expires_in) = state
        .auth
        .keys
        .issue(tokens.user_id, tokens.session_id, tokens.epoch)
        .map_err(ApiError::internal)?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let refresh_token = match transport {
        TokenTransport::Body => Some(tokens.refresh_token),
        TokenTransport::Cookie => {
            // The cookie lives as long as the session, to the second rounded up.
            let left = tokens.expires_at - OffsetDateTime::now_utc();
            let max_age = left.whole_seconds() + i64::from(left.subsec_nanoseconds() > 0);
            headers.insert(
                header::SET_COOKIE,
                refresh_cookie(&tokens.refresh_token, max_age.max(0))?,
            );
            None
        }
    };
    let body = TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token,
        session_id: tokens.session_id,
        user_id: tokens.user_id,
        sequence: tokens.last_sequence,
    };
    Ok((status, headers, axum::Json(body)).into_response())
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "wrong handle or password")
}

fn invalid_refresh_token() -> ApiError {
    ApiError::unauthorized("invalid_refresh_token", "the refresh token is not valid")
}

/// Signs in with a handle and password, opening a session.
///
/// Limited per address and per handle; a wrong handle and a wrong password get the
/// same answer. With `Natter-Token-Transport: cookie` (browsers), the refresh token is
/// not in the body but in the `natter_refresh` cookie (HttpOnly, Secure,
/// SameSite=Strict, Path=/v1/sessions/refresh, for the session's lifetime).
#[utoipa::path(
    post, path = "/v1/sessions", tag = "sessions",
    params(
        ("Natter-Token-Transport" = inline(Option<TokenTransport>), Header, description = "`cookie`: hand out the refresh token in the `natter_refresh` cookie instead of the body"),
    ),
    request_body = LoginRequest,
    responses(
        (status = 201, body = TokenResponse, headers(
            ("Set-Cookie" = String, description = "In cookie mode only: `natter_refresh=<token>; HttpOnly; Secure; SameSite=Strict; Path=/v1/sessions/refresh; Max-Age=<seconds the session has left>`"),
        )),
        (status = 400, description = "Invalid device name or Natter-Token-Transport"),
        (status = 401, description = "Wrong handle or password"),
        (status = 422, description = "Body of the wrong shape"),
        (status = 429, description = "Too many attempts"),
        (status = 503, description = "Password hashing saturated"),
    )
)]
pub async fn login(
    State(state): State<ApiState>,
    ClientAddress(address): ClientAddress,
    transport: TokenTransport,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
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
    token_answer(&state, StatusCode::CREATED, tokens, transport)
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"refresh_token": "rt1.0190f3a17b2c7d3e8f405a6b7c8d9e0f.q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c"}))]
pub struct RefreshRequest {
    /// As handed out; a longer text is refused unread.
    #[schema(max_length = 256)]
    pub refresh_token: String,
}

/// Exchanges a refresh token for a new access token and a new refresh token.
///
/// Each refresh token works once. A spent one presented again ends the session, unless
/// it is the one spent within the last few seconds (two requests of one client racing):
/// that one gets 409 `refresh_race` and the session lives on.
///
/// Browsers send no body: the token then comes from the `natter_refresh` cookie, and the
/// new one goes back in it (the answer has no `refresh_token`). Such a request must
/// carry `Natter-CSRF: 1`, and an `Origin`, if any, must be this server (else 403
/// `csrf_rejected`). A refresh with the cookie that gets 401 also removes the cookie.
#[utoipa::path(
    post, path = "/v1/sessions/refresh", tag = "sessions",
    params(
        ("Natter-Token-Transport" = inline(Option<TokenTransport>), Header, description = "`cookie`: hand out the new refresh token in the `natter_refresh` cookie (implied when the token came from it)"),
        ("Natter-CSRF" = Option<String>, Header, description = "`1`; required when the token comes from the cookie"),
    ),
    request_body(content = Option<RefreshRequest>, description = "The refresh token; no body (or an empty one, or `null`) to use the `natter_refresh` cookie"),
    responses(
        (status = 200, body = TokenResponse, headers(
            ("Set-Cookie" = String, description = "In cookie mode only: the new `natter_refresh` cookie, as at login"),
        )),
        (status = 401, description = "Invalid or reused refresh token, no token at all, or the session has ended", headers(
            ("Set-Cookie" = String, description = "In cookie mode: `natter_refresh=; …; Max-Age=0`, removing the cookie"),
        )),
        (status = 403, description = "A refresh with the cookie without `Natter-CSRF: 1`, or from another origin"),
        (status = 409, description = "The token was spent a moment ago by a racing request"),
        (status = 422, description = "Body of the wrong shape"),
    )
)]
pub async fn refresh(
    State(state): State<ApiState>,
    transport: TokenTransport,
    headers: HeaderMap,
    request: Option<ApiJson<Option<RefreshRequest>>>,
) -> Result<Response, Response> {
    let request = request.and_then(|ApiJson(request)| request);
    let (token, transport) = match &request {
        Some(request) => (request.refresh_token.as_str(), transport),
        None => {
            let token =
                cookie_token(&headers).ok_or_else(|| invalid_refresh_token().into_response())?;
            check_csrf(&headers).map_err(IntoResponse::into_response)?;
            (token, TokenTransport::Cookie)
        }
    };
    let refreshed = if token.len() > 256 {
        Err(invalid_refresh_token())
    } else {
        state
            .accounts
            .refresh(token, metadata(None))
            .await
            .map_err(ApiError::from)
    };
    match refreshed {
        Ok(tokens) => {
            token_answer(&state, StatusCode::OK, tokens, transport).map_err(|e| e.into_response())
        }
        // The cookie can never work again: remove it. (A racing refresh, 409, has just
        // set a newer one, which must stay.)
        Err(error)
            if transport == TokenTransport::Cookie
                && error.status() == StatusCode::UNAUTHORIZED =>
        {
            Err(([(header::SET_COOKIE, cleared_refresh_cookie())], error).into_response())
        }
        Err(error) => Err(error.into_response()),
    }
}

/// Signs out: ends the caller's session, and removes the `natter_refresh` cookie.
#[utoipa::path(
    delete, path = "/v1/sessions/current", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, body = SequenceResponse, headers(
            ("Set-Cookie" = String, description = "`natter_refresh=; …; Max-Age=0`, removing the cookie"),
        )),
        (status = 401, description = "Not signed in"),
    )
)]
pub async fn logout(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let sequence = state
        .accounts
        .end_session(
            caller.user_id,
            caller.session_id,
            RevokeReason::Logout,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok((
        [(header::SET_COOKIE, cleared_refresh_cookie())],
        axum::Json(SequenceResponse { sequence }),
    ))
}

/// Signs out everywhere: ends every session of the caller, this one included, and
/// removes the `natter_refresh` cookie.
///
/// Sessions opened a moment ago, not yet in the list of sessions, end too. Access
/// tokens of the ended sessions are refused within a second.
#[utoipa::path(
    delete, path = "/v1/sessions", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, body = SequenceResponse, headers(
            ("Set-Cookie" = String, description = "`natter_refresh=; …; Max-Age=0`, removing the cookie"),
        )),
        (status = 401, description = "Not signed in"),
    )
)]
pub async fn sign_out_everywhere(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let sequence = state
        .accounts
        .sign_out_everywhere(caller.user_id, metadata(Some(caller.user_id)))
        .await?;
    Ok((
        [(header::SET_COOKIE, cleared_refresh_cookie())],
        axum::Json(SequenceResponse { sequence }),
    ))
}

/// Ends one of the caller's sessions.
#[utoipa::path(
    delete, path = "/v1/sessions/{session_id}", tag = "sessions", security(("bearer" = [])),
    params(("session_id" = Uuid, Path, description = "One of the caller's sessions")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 401, description = "Not signed in"),
        (status = 404, description = "No such session of the caller"),
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
    get, path = "/v1/sessions", tag = "sessions", operation_id = "list_sessions", security(("bearer" = [])),
    params(Consistency),
    responses(
        (status = 200, body = SessionList),
        (status = 401, description = "Not signed in"),
    )
)]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(consistency): ApiQuery<Consistency>,
) -> Result<axum::Json<SessionList>, ApiError> {
    let (sessions, version) = (
        <natter_projections::Sessions as natter_projections::Projection>::NAME,
        <natter_projections::Sessions as natter_projections::Projection>::VERSION,
    );
    wait_for(&state, sessions, version, consistency.min_sequence).await?;
    let items = reads::sessions::open(&state.pool, caller.user_id)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|session| SessionInfo {
            session_id: session.session_id,
            device_name: session.device_name,
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
            current: session.session_id == caller.session_id,
        })
        .collect();
    Ok(axum::Json(SessionList { items }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_cleared_cookie_is_the_cookie_emptied_and_expired() {
        assert_eq!(cleared_refresh_cookie(), refresh_cookie("", 0).unwrap());
    }

    #[test]
    fn the_refresh_token_is_read_from_any_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; natter_refresh="),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("b=2;natter_refresh=rt1.x.y ; c=3"),
        );
        assert_eq!(cookie_token(&headers), Some("rt1.x.y"));
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }
}
