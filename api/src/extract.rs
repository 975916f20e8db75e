//! Extractors whose failures are problem+json: JSON bodies, the caller's identity and
//! address, and the consistency token.
//!
//! `ApiJson`, `ApiPath` and `ApiQuery` turn malformed input into problems. `Caller`
//! checks the access token and the revocation view. `ClientAddress` is the peer's
//! address or, behind a proxy listed in `NATTER_TRUSTED_PROXIES`, the rightmost
//! `X-Forwarded-For` hop that no trusted proxy wrote (the leftmost hops are the client's
//! own words). `wait_for` holds a query until its read model reaches a consistency token.

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

/// The client's address: the socket's or, behind trusted proxies, the rightmost
/// `X-Forwarded-For` hop that no trusted proxy wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<ApiState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |info| info.0.ip());
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok());
        Ok(Self(client_address(
            peer,
            forwarded,
            &state.config.trusted_proxies,
        )))
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy. Then the
/// `X-Forwarded-For` hops are read from the right (each proxy appends the address it saw)
/// and the first one that is not a trusted proxy is the client. A client may write
/// anything on the left of the header, so the leftmost hop is taken only when every hop
/// to its right is trusted.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[TrustedProxy],
) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|proxy| proxy.contains(*address));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded.flat_map(|value| value.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(address) = hop.trim().parse::<IpAddr>() else {
            // A hop that is no address was not written by a proxy we trust.
            break;
        };
        client = address;
        if !is_trusted(&address) {
            break;
        }
    }
    client
}

/// A proxy whose `X-Forwarded-For` is believed: an address, or a network in CIDR
/// notation (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    network: IpAddr,
    prefix: u8,
}

impl TrustedProxy {
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            // An IPv4 peer seen through an IPv6 socket (::ffff:a.b.c.d).
            (IpAddr::V4(_), IpAddr::V6(address)) => address
                .to_ipv4_mapped()
                .is_some_and(|address| self.contains(IpAddr::V4(address))),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

impl std::str::FromStr for TrustedProxy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (address, prefix) = text.split_once('/').unwrap_or((text, ""));
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or a CIDR network"))?;
        let widest = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            widest
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= widest)
                .ok_or_else(|| format!("{text:?}: the prefix length is 0 to {widest}"))?
        };
        Ok(Self { network, prefix })
    }
}

pub use natter_access::same_origin;

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
    let last = state
        .log
        .last_sequence()
        .await
        .map_err(ApiError::internal)?;
    if sequence > last {
        return Err(token_past_the_log(sequence, last));
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
            return Err(token_not_reached(sequence));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A token from the future was never handed out: the client's mistake, not a wait.
pub(crate) fn token_past_the_log(sequence: u64, last: u64) -> ApiError {
    ApiError::bad_request(
        "invalid_consistency_token",
        format!("min_sequence {sequence} is past the end of the log ({last})"),
    )
}

/// The read model did not reach the token within the consistency timeout.
pub(crate) fn token_not_reached(sequence: u64) -> ApiError {
    ApiError::unavailable(
        "consistency_timeout",
        format!("the read model has not reached sequence {sequence} yet; retry"),
        1,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::IpAddr;

    use super::{TrustedProxy, client_address};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> Vec<TrustedProxy> {
        list.iter().map(|text| text.parse().unwrap()).collect()
    }

    #[test]
    fn the_client_is_the_rightmost_hop_no_trusted_proxy_wrote() {
        let trusted = proxies(&["10.0.0.0/8", "192.168.1.1"]);
        // Through two trusted proxies: the client is the hop before them.
        let header = ["6.6.6.6, 203.0.113.7, 10.1.2.3"];
        assert_eq!(
            client_address(ip("192.168.1.1"), header.into_iter(), &trusted),
            ip("203.0.113.7")
        );
        // The client's own prefix (a forged 6.6.6.6) is never believed.
        assert_eq!(
            client_address(
                ip("10.9.9.9"),
                ["6.6.6.6, 203.0.113.7"].into_iter(),
                &trusted
            ),
            ip("203.0.113.7")
        );
        // Not through a trusted proxy: the header is the client's own words.
        assert_eq!(
            client_address(ip("198.51.100.2"), header.into_iter(), &trusted),
            ip("198.51.100.2")
        );
        // No proxies configured: never believed.
        assert_eq!(
            client_address(ip("10.0.0.1"), header.into_iter(), &[]),
            ip("10.0.0.1")
        );
        // Several headers count as one list; garbage stops the walk at the last good hop.
        assert_eq!(
            client_address(
                ip("10.0.0.1"),
                ["1.1.1.1", "not-an-ip, 10.0.0.2"].into_iter(),
                &trusted
            ),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn networks_parse_and_match_by_prefix() {
        let net: TrustedProxy = "fd00::/8".parse().unwrap();
        assert!(net.contains(ip("fd12::1")));
        assert!(!net.contains(ip("fe80::1")));
        let v4: TrustedProxy = "172.16.0.0/12".parse().unwrap();
        assert!(v4.contains(ip("172.31.255.1")));
        assert!(!v4.contains(ip("172.32.0.1")));
        assert!(v4.contains(ip("::ffff:172.16.0.9")));
        assert!(
            "0.0.0.0/0"
                .parse::<TrustedProxy>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<TrustedProxy>().is_err(), "{bad}");
        }
    }
}
