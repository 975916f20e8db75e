//! The REST endpoints, grouped by resource.

pub mod accounts;
pub mod chats;
pub mod media;
pub mod messages;
pub mod push;
pub mod search;
pub mod sessions;
pub mod uploads;

use natter_schema::Metadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The answer to a command: the stream sequence of its last event. Pass it back as
/// `min_sequence` to a query to read your own write.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(example = json!({"sequence": 1042}))]
pub struct SequenceResponse {
    pub sequence: u64,
}

/// Raw bytes.
// A request body's schema: a `Vec<u8>` would be described as an array of numbers.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(pub Vec<u8>);

/// The consistency token a query may wait for.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Consistency {
    /// Wait (briefly) until the read model has applied this stream sequence: the
    /// `sequence` of an earlier command response.
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub min_sequence: Option<u64>,
}

/// Metadata for a command a request causes.
pub(crate) fn metadata(actor: Option<Uuid>) -> Metadata {
    Metadata::new(actor, Uuid::now_v7())
}

/// The request's `Idempotency-Key`, if it sent one, digested with `scope`.
pub(crate) fn idempotency_key(
    headers: &axum::http::HeaderMap,
    scope: &str,
    fingerprint: impl FnOnce() -> String,
) -> Result<Option<natter_commands::idempotency::IdempotencyKey>, crate::ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|key| (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            crate::ApiError::bad_request(
                "invalid_idempotency_key",
                "1 to 255 printable ASCII characters",
            )
        })?;
    Ok(Some(natter_commands::idempotency::IdempotencyKey::new(
        scope,
        key,
        fingerprint(),
    )))
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`, with
/// `#[serde(default)]`).
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// [`present`] for an RFC 3339 time.
pub(crate) fn present_time<'de, D>(
    deserializer: D,
) -> Result<Option<Option<time::OffsetDateTime>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    time::serde::rfc3339::option::deserialize(deserializer).map(Some)
}

/// A search text (`q`): present, at most `max` characters, no control characters. The
/// answer names whichever of those it broke.
pub(crate) fn check_text_query(text: &str, max: usize) -> Result<(), crate::ApiError> {
    let problem = |detail: String| Err(crate::ApiError::bad_request("invalid_query", detail));
    if text.is_empty() {
        return problem(format!("q is empty: send 1 to {max} characters"));
    }
    let count = text.chars().count();
    if count > max {
        return problem(format!("q has {count} characters; at most {max}"));
    }
    if text.chars().any(char::is_control) {
        return problem("q contains a control character".into());
    }
    Ok(())
}

/// The largest stream sequence: JetStream's sequences, and Postgres's columns, are
/// signed 64-bit.
pub(crate) const MAX_SEQUENCE: u64 = i64::MAX as u64;

/// A marker's `up_to`, refused (not clamped) above the largest stream sequence.
pub(crate) fn check_up_to(up_to: u64) -> Result<u64, crate::ApiError> {
    if up_to > MAX_SEQUENCE {
        return Err(crate::ApiError::bad_request(
            "invalid_up_to",
            format!("up_to is a stream sequence, at most {MAX_SEQUENCE}"),
        ));
    }
    Ok(up_to)
}
