//! Client idempotency keys (`Idempotency-Key`) as claims in the log: taken in the same
//! atomic append as the command they belong to, they hold as long as the log does.
//!
//! The claim is `idem.<sha256(scope, key)>` (used for registrations and group creation).
//! It records the owner and a fingerprint of the request, never the password. The same
//! key with the same request replays the first result; with another request it is
//! refused (422).

use natter_domain::{Claim, ClaimAction};
use natter_eventlog::{EventLog, LogError};
use uuid::Uuid;

use crate::{ClaimHolder, ExtraClaim, claim_state, tokens};

/// The claim kind of client idempotency keys.
pub const IDEMPOTENCY_CLAIM: &str = "idem";

/// A client's idempotency key, digested with its scope, and the request's fingerprint.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub digest: String,
    pub fingerprint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("this Idempotency-Key was used with a different request")]
    Reused,
    #[error(transparent)]
    Log(#[from] LogError),
}

impl IdempotencyKey {
    /// `scope` separates clients (an operation, and a user where there is one);
    /// `fingerprint` digests the request.
    pub fn new(scope: &str, key: &str, fingerprint: String) -> Self {
        Self {
            digest: tokens::hex_digest(format!("{scope}\n{key}").as_bytes()),
            fingerprint,
        }
    }

    /// The claim to append with the command whose result is `owner`.
    pub fn claim(&self, owner: Uuid) -> ExtraClaim {
        ExtraClaim {
            claim: Claim {
                kind: IDEMPOTENCY_CLAIM,
                key: self.digest.clone(),
                owner,
                action: ClaimAction::Take,
            },
            fingerprint: Some(self.fingerprint.clone()),
        }
    }

    /// The result of an earlier request with this key, if there was one; a refusal when
    /// that request was a different one.
    pub async fn earlier(&self, log: &EventLog) -> Result<Option<Uuid>, IdempotencyError> {
        match claim_state(log, IDEMPOTENCY_CLAIM, &self.digest).await?.0 {
            ClaimHolder::Held { owner, fingerprint } => {
                if fingerprint.as_deref() == Some(self.fingerprint.as_str()) {
                    Ok(Some(owner))
                } else {
                    Err(IdempotencyError::Reused)
                }
            }
            ClaimHolder::Free | ClaimHolder::Released { .. } => Ok(None),
        }
    }
}
