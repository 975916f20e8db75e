//! Opaque refresh tokens: `rt1.<session id>.<256 random bits>`. Only their SHA-256 is
//! stored.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use natter_domain::session::TokenHash;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const PREFIX: &str = "rt1";

/// A new refresh token for `session_id`, and its hash.
pub fn new_refresh_token(session_id: Uuid) -> (String, TokenHash) {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!(
        "{PREFIX}.{}.{}",
        session_id.simple(),
        URL_SAFE_NO_PAD.encode(secret)
    );
    let hash = hash_token(&token);
    (token, hash)
}

/// The session a refresh token belongs to, if it is shaped like one of ours.
pub fn session_of(token: &str) -> Option<Uuid> {
    let mut parts = token.split('.');
    let (Some(PREFIX), Some(session), Some(secret), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if secret.len() != 43 || URL_SAFE_NO_PAD.decode(secret).is_err() {
        return None;
    }
    Uuid::try_parse(session).ok()
}

pub fn hash_token(token: &str) -> TokenHash {
    TokenHash::new(hex_digest(token.as_bytes()))
}

/// Lower-case hex SHA-256.
pub fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_session_and_differ_every_time() {
        let session = Uuid::now_v7();
        let (first, first_hash) = new_refresh_token(session);
        let (second, _) = new_refresh_token(session);
        assert_ne!(first, second);
        assert_eq!(session_of(&first), Some(session));
        assert_eq!(hash_token(&first), first_hash);
        assert_eq!(session_of("rt1.nope.x"), None);
        assert_eq!(session_of(&format!("{first}.extra")), None);
        assert_eq!(session_of(""), None);
    }
}
