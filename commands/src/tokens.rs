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
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex. Each send's id for the log's deduplication is one: formatting byte
/// by byte took a quarter of the send handler's own time (issue 18).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
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

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
        assert_eq!(
            hex_digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
