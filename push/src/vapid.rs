//! VAPID (RFC 8292): the server's P-256 key pair, whose public half browsers subscribe
//! with (`applicationServerKey`), and the signed token each push carries so that the
//! push service knows it comes from the server the device subscribed to.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};

/// How long a push's token is good for (RFC 8292 allows at most 24 hours).
const TOKEN_LIFETIME: time::Duration = time::Duration::hours(12);

#[derive(Clone)]
pub struct Vapid {
    key: SigningKey,
    /// The public key, uncompressed, in base64url: what clients subscribe with.
    public: String,
    /// Who runs the server: a `mailto:` or `https:` URL, given to push services.
    subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("public", &self.public)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VapidError {
    #[error("the VAPID private key is 32 bytes in base64url (as `natter push keys` prints it)")]
    Key,
    #[error("the VAPID subject is a mailto: or https: URL")]
    Subject,
}

impl Vapid {
    /// The key pair from its private key (32 bytes, base64url) and the subject.
    pub fn new(private_key: &str, subject: &str) -> Result<Self, VapidError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(private_key.trim().trim_end_matches('='))
            .map_err(|_| VapidError::Key)?;
        let key = SigningKey::from_slice(&bytes).map_err(|_| VapidError::Key)?;
        if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
            return Err(VapidError::Subject);
        }
        let public = URL_SAFE_NO_PAD.encode(key.verifying_key().to_encoded_point(false).as_bytes());
        Ok(Self {
            key,
            public,
            subject: subject.to_owned(),
        })
    }

    /// A new private key, base64url: for `natter push keys`.
    pub fn generate() -> String {
        let key = SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        URL_SAFE_NO_PAD.encode(key.to_bytes())
    }

    /// The public key clients subscribe with (base64url, uncompressed point).
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header of a push to `endpoint`: `vapid t=<JWT>, k=<key>`,
    /// the JWT (ES256) naming the endpoint's origin as its audience.
    pub fn authorization(&self, endpoint: &reqwest::Url, now: time::OffsetDateTime) -> String {
        let audience = endpoint.origin().ascii_serialization();
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": audience,
            "exp": (now + TOKEN_LIFETIME).unix_timestamp(),
            "sub": self.subject,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let signature: Signature = self.key.sign(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(signature.to_bytes());
        format!("vapid t={signed}.{signature}, k={}", self.public)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier as _;

    use super::*;

    #[test]
    fn the_token_is_signed_by_the_public_key_it_names() {
        let vapid = Vapid::new(&Vapid::generate(), "mailto:ops@example.com").unwrap();
        let endpoint = reqwest::Url::parse("https://push.example:8443/send/abc").unwrap();
        let header = vapid.authorization(&endpoint, time::OffsetDateTime::now_utc());
        let (token, key) = header
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        assert_eq!(key, vapid.public_key());
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let key = VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(key).unwrap()).unwrap();
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
        key.verify(signed.as_bytes(), &signature).unwrap();
        let claims = URL_SAFE_NO_PAD
            .decode(signed.split('.').nth(1).unwrap())
            .unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
        assert_eq!(claims["aud"], "https://push.example:8443");
        assert_eq!(claims["sub"], "mailto:ops@example.com");
    }

    #[test]
    fn bad_keys_and_subjects_are_refused() {
        assert!(matches!(
            Vapid::new("short", "mailto:a@b"),
            Err(VapidError::Key)
        ));
        assert!(matches!(
            Vapid::new(&Vapid::generate(), "ops@example.com"),
            Err(VapidError::Subject)
        ));
    }
}
