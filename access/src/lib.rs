//! Who may use Natter now, shared by its two faces (the REST API and the realtime
//! gateway) and beneath both: access tokens and the revocations that end them early,
//! the origins a browser may call from, and who is online (the presence bucket).
//!
//! Invariants: a token is accepted only if its EdDSA signature checks against a listed
//! key and no session end, sign-out everywhere or account deletion seen in the log
//! revokes it; the revocation view catches up from the log after every reconnect.

pub mod presence;
pub mod tokens;

/// Access tokens and the revocation view, as every face checks them.
#[derive(Debug, Clone)]
pub struct Auth {
    pub keys: tokens::TokenKeys,
    pub revocations: tokens::Revocations,
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
