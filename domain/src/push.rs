//! A device's Web Push subscription, as a browser's `PushManager.subscribe` gives it:
//! the push service's endpoint (RFC 8030) and the keys its messages are encrypted to
//! (RFC 8291). Checked here for shape; whether the key is a point on the curve is the
//! sender's to check.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The longest endpoint taken. Push services' endpoints are a few hundred characters.
pub const MAX_ENDPOINT_CHARS: usize = 2048;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    /// The push service's URL for this device: `https://…` (plain `http://` only where
    /// the sender allows it, as tests do on loopback).
    pub endpoint: String,
    /// The device's P-256 public key, uncompressed (65 bytes), base64url without padding.
    pub p256dh: String,
    /// The device's authentication secret (16 bytes), base64url without padding.
    pub auth: String,
}

impl std::fmt::Debug for PushSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The endpoint and keys let anyone push to the device: never in logs.
        f.write_str("PushSubscription(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushSubscriptionError {
    #[error("endpoint is an http or https URL of at most 2048 characters")]
    Endpoint,
    #[error("keys.p256dh is an uncompressed P-256 public key (65 bytes) in base64url")]
    PublicKey,
    #[error("keys.auth is 16 bytes in base64url")]
    Auth,
}

impl PushSubscription {
    /// A subscription from what the browser gives; keys are taken with or without
    /// base64 padding and kept without.
    pub fn parse(endpoint: &str, p256dh: &str, auth: &str) -> Result<Self, PushSubscriptionError> {
        let scheme_ok = endpoint.starts_with("https://") || endpoint.starts_with("http://");
        if !scheme_ok
            || endpoint.chars().count() > MAX_ENDPOINT_CHARS
            || endpoint
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(PushSubscriptionError::Endpoint);
        }
        let decode = |value: &str| URL_SAFE_NO_PAD.decode(value.trim_end_matches('='));
        let key = decode(p256dh).map_err(|_| PushSubscriptionError::PublicKey)?;
        if key.len() != 65 || key[0] != 4 {
            return Err(PushSubscriptionError::PublicKey);
        }
        let secret = decode(auth).map_err(|_| PushSubscriptionError::Auth)?;
        if secret.len() != 16 {
            return Err(PushSubscriptionError::Auth);
        }
        Ok(Self {
            endpoint: endpoint.to_owned(),
            p256dh: URL_SAFE_NO_PAD.encode(key),
            auth: URL_SAFE_NO_PAD.encode(secret),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> String {
        let mut key = vec![4u8];
        key.extend([7u8; 64]);
        base64::engine::general_purpose::URL_SAFE.encode(key)
    }

    #[test]
    fn subscriptions_are_checked_and_kept_unpadded() {
        let auth = URL_SAFE_NO_PAD.encode([1u8; 16]);
        let parsed = PushSubscription::parse("https://push.example/x", &key(), &auth).unwrap();
        assert!(!parsed.p256dh.ends_with('='));
        assert_eq!(
            PushSubscription::parse("ftp://push.example/x", &key(), &auth),
            Err(PushSubscriptionError::Endpoint)
        );
        assert_eq!(
            PushSubscription::parse("https://push.example/x", "AAAA", &auth),
            Err(PushSubscriptionError::PublicKey)
        );
        assert_eq!(
            PushSubscription::parse("https://push.example/x", &key(), "AAAA"),
            Err(PushSubscriptionError::Auth)
        );
        let long = format!("https://push.example/{}", "x".repeat(MAX_ENDPOINT_CHARS));
        assert_eq!(
            PushSubscription::parse(&long, &key(), &auth),
            Err(PushSubscriptionError::Endpoint)
        );
    }
}
