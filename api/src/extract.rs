//! Extractors whose failures are problem+json: JSON bodies, the caller's identity and
//! address, and the consistency token.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, OptionalFromRequest, Path, Query, Request,
};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::auth::TokenError;
use crate::{ApiError, ApiState};

/// A JSON body; malformed, oversized or mistyped bodies are 4xx problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ApiState> for ApiJson<T> {
    type Rejection = ApiError;

    /// Every documented body is a JSON object. serde would also take an array for a
    /// struct (its fields in order: `["X","Y"]` as a profile), so arrays are refused
    /// before they reach it.
    async fn from_request(request: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let bytes = bytes::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|rejection| json_problem(&rejection.into()))?;
        let request = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
        let array = bytes.trim_ascii_start().starts_with(b"[");
        match <axum::Json<T> as FromRequest<ApiState>>::from_request(request, state).await {
            Err(rejection @ JsonRejection::MissingJsonContentType(_)) => {
                Err(json_problem(&rejection))
            }
            _ if array => Err(ApiError::bad_request(
                "invalid_body",
                "the body must be a JSON object, not an array",
            )),
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

/// `Option<ApiJson<T>>`: an empty body (or one of whitespace only) is `None`, whatever
/// its content type; any other body must be JSON of the right shape.
impl<T: DeserializeOwned> OptionalFromRequest<ApiState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(
        request: Request,
        state: &ApiState,
    ) -> Result<Option<Self>, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let bytes = bytes::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|rejection| json_problem(&rejection.into()))?;
        if bytes.trim_ascii().is_empty() {
            return Ok(None);
        }
        let request = Request::from_parts(parts, axum::body::Body::from(bytes));
        <Self as FromRequest<ApiState>>::from_request(request, state)
            .await
            .map(Some)
    }
}

fn json_problem(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        JsonRejection::JsonDataError(error) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            error.body_text(),
        ),
        JsonRejection::JsonSyntaxError(error) => {
            ApiError::bad_request("malformed_json", error.body_text())
        }
        JsonRejection::BytesRejection(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is too large",
            )
        }
        other => ApiError::bad_request("invalid_body", other.body_text()),
    }
}

/// Path parameters; a malformed one (say, not a UUID) is a 400 problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<ApiState> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|rejection| ApiError::bad_request("invalid_path", rejection.body_text()))
    }
}

/// Query parameters; malformed ones are a 400 problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<ApiState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}

/// The caller, from a valid access token of a session that has not ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or(TokenError::Missing)?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(TokenError::Invalid)?;
        let claims = state.auth.keys.verify(token.trim())?;
        if !state.auth.revocations.admits(&claims) {
            return Err(TokenError::Revoked.into());
        }
        Ok(Self {
            user_id: claims.sub,
            session_id: claims.sid,
        })
    }
}

/// The client's address: the socket's, or the first `X-Forwarded-For` entry when the
/// server is configured to trust its proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<ApiState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        if state.config.trust_forwarded_for
            && let Some(forwarded) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .and_then(|first| first.trim().parse::<IpAddr>().ok())
        {
            return Ok(Self(forwarded));
        }
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |info| info.0.ip());
        Ok(Self(address))
    }
}

/// Whether `origin` (a browser's `Origin` header) names the server the request was sent
/// to: its host and port are the request's `Host`, whatever the scheme (a proxy may end
/// TLS in front of this process).
pub fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

/// Waits, with a bound, until projection `name` v`version` has applied `sequence`: a
/// client passing back a command's sequence reads its own write.
pub async fn wait_for(
    state: &ApiState,
    name: &str,
    version: i32,
    sequence: Option<u64>,
) -> Result<(), ApiError> {
    let Some(sequence) = sequence.filter(|s| *s > 0) else {
        return Ok(());
    };
    let reached = natter_projections::checkpoint(&state.pool, name, version)
        .await
        .map_err(ApiError::internal)?;
    if reached >= sequence {
        return Ok(());
    }
    // A token from the future was never handed out: the client's mistake, not a wait.
    let last = state
        .log
        .last_sequence()
        .await
        .map_err(ApiError::internal)?;
    if sequence > last {
        return Err(ApiError::bad_request(
            "invalid_consistency_token",
            format!("min_sequence {sequence} is past the end of the log ({last})"),
        ));
    }
    let deadline = tokio::time::Instant::now() + state.config.consistency_timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        let reached = natter_projections::checkpoint(&state.pool, name, version)
            .await
            .map_err(ApiError::internal)?;
        if reached >= sequence {
            return Ok(());
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err(ApiError::unavailable(
                "consistency_timeout",
                format!("the read model has not reached sequence {sequence} yet; retry"),
                1,
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
