//! Access tokens: EdDSA-signed JWTs (the one algorithm accepted), with a key id so that
//! keys can rotate; and the revocation view that refuses tokens of ended sessions within
//! moments, fed by the log's session and account events.
//!
//! - `TokenKeys` issues and verifies, pinned to EdDSA (`Validation::new(Algorithm::EdDSA)`
//!   and Ed25519 keys, a header saying anything else refused) and chosen by `kid`; Natter
//!   never signs or decrypts with RSA (see `deny.toml`). A token whose signature checked
//!   out is remembered by its SHA-256 until it expires; expiry and revocation are still
//!   checked on every request.
//! - Access tokens carry their session's epoch (`sep`): a password change or signing out
//!   everywhere moves the account's epoch on, so every older token is refused at once
//!   (after a password change, except the session that made it), even of sessions opened
//!   a moment ago that no read model lists yet.
//! - `Revocations` lists the sessions and accounts that ended within an access token's
//!   lifetime. Its feed reads the recent past first and then follows the live subjects;
//!   it keeps the sequence up to which it has seen every such event, and after a
//!   reconnect reads on from there in the log (after a subscription dropped messages,
//!   the whole window again), so a session ended while the connection was down is refused
//!   as soon as NATS is back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures::StreamExt as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use natter_domain::session::{SESSION_KIND, SessionEvent};
use natter_domain::user::{USER_KIND, UserEvent};
use natter_eventlog::{EventLog, Space, Start, decode_envelope};
use natter_schema::Envelope;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user.
    pub sub: Uuid,
    /// The session.
    pub sid: Uuid,
    /// The session's epoch (see the account's password changes).
    pub sep: u32,
    /// Always `access`: a token of another type is refused.
    pub typ: String,
    pub iat: i64,
    pub exp: i64,
}

const ACCESS: &str = "access";
/// Clock skew allowed on a token's expiry.
const LEEWAY_SECS: i64 = 5;
/// PKCS#8 v1 framing of a raw Ed25519 private key (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error(
        "signing keys look like `kid=<base64 32-byte seed>`, comma-separated, the first signing"
    )]
    Malformed,
    #[error("key id {0:?} is listed twice")]
    Duplicate(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is missing")]
    Missing,
    #[error("the access token is not valid")]
    Invalid,
    #[error("the access token has expired")]
    Expired,
    #[error("the session of this access token has ended")]
    Revoked,
}

impl TokenError {
    /// The stable code both faces answer with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "unauthenticated",
            Self::Invalid => "invalid_token",
            Self::Expired => "token_expired",
            Self::Revoked => "session_ended",
        }
    }
}

/// The keys that sign and verify access tokens. Cheap to clone.
#[derive(Clone)]
pub struct TokenKeys {
    signing_kid: String,
    signing: Arc<EncodingKey>,
    verifying: Arc<HashMap<String, DecodingKey>>,
    issuer: String,
    audience: String,
    ttl: time::Duration,
    /// Tokens whose signature checked out, by SHA-256, until they expire: a client sends
    /// one token for many requests, and an EdDSA verification costs more than the rest
    /// of a small request. Expiry is still checked on every use; revocation is the
    /// caller's, on every request.
    verified: moka::sync::Cache<[u8; 32], AccessClaims>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("signing_kid", &self.signing_kid)
            .field("verifying", &self.verifying.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Parses `kid=<base64 seed>[,kid=<seed>...]`: the first key signs, all verify.
    pub fn parse(
        spec: &str,
        issuer: &str,
        audience: &str,
        ttl: time::Duration,
    ) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kid, seed) = entry.split_once('=').ok_or(KeyError::Malformed)?;
            let seed = STANDARD
                .decode(seed.trim())
                .or_else(|_| URL_SAFE_NO_PAD.decode(seed.trim()))
                .map_err(|_| KeyError::Malformed)?;
            let seed: [u8; 32] = seed.try_into().map_err(|_| KeyError::Malformed)?;
            let kid = kid.trim();
            if kid.is_empty() || kid.len() > 64 {
                return Err(KeyError::Malformed);
            }
            keys.push((kid.to_owned(), seed));
        }
        Self::from_seeds(keys, issuer, audience, ttl)
    }

    /// A fresh random key, for development: tokens do not survive a restart and do not
    /// verify on other instances.
    pub fn ephemeral(issuer: &str, audience: &str, ttl: time::Duration) -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let kid = format!("dev-{}", &Uuid::now_v7().simple().to_string()[..12]);
        match Self::from_seeds(vec![(kid, seed)], issuer, audience, ttl) {
            Ok(keys) => keys,
            Err(_) => unreachable_keys(),
        }
    }

    fn from_seeds(
        seeds: Vec<(String, [u8; 32])>,
        issuer: &str,
        audience: &str,
        ttl: time::Duration,
    ) -> Result<Self, KeyError> {
        let Some((signing_kid, signing_seed)) = seeds.first().cloned() else {
            return Err(KeyError::Malformed);
        };
        let mut verifying = HashMap::new();
        for (kid, seed) in &seeds {
            let public = ed25519_dalek::SigningKey::from_bytes(seed)
                .verifying_key()
                .to_bytes();
            if verifying
                .insert(kid.clone(), DecodingKey::from_ed_der(&public))
                .is_some()
            {
                return Err(KeyError::Duplicate(kid.clone()));
            }
        }
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&signing_seed);
        Ok(Self {
            signing_kid,
            signing: Arc::new(EncodingKey::from_ed_der(&der)),
            verifying: Arc::new(verifying),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
            verified: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::try_from(ttl).unwrap_or(Duration::from_secs(900)))
                .build(),
        })
    }

    pub fn ttl(&self) -> time::Duration {
        self.ttl
    }

    /// Signs an access token for a session; returns it and its lifetime in seconds.
    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        epoch: u32,
    ) -> Result<(String, i64), TokenError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id,
            sid: session_id,
            sep: epoch,
            typ: ACCESS.into(),
            iat: now,
            exp: now + self.ttl.whole_seconds(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.signing_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing)
            .map_err(|_| TokenError::Invalid)?;
        Ok((token, self.ttl.whole_seconds()))
    }

    /// Checks signature (EdDSA only, by key id), issuer, audience, type and expiry.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest) {
            if claims.exp + LEEWAY_SECS < OffsetDateTime::now_utc().unix_timestamp() {
                return Err(TokenError::Expired);
            }
            return Ok(claims);
        }
        let claims = self.verify_signed(token)?;
        self.verified.insert(digest, claims.clone());
        Ok(claims)
    }

    fn verify_signed(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or(TokenError::Invalid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS.unsigned_abs();
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, key, &validation).map_err(|error| {
                match error.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })?;
        if data.claims.typ != ACCESS {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

fn unreachable_keys() -> TokenKeys {
    // `from_seeds` only fails on an empty or duplicated list; one fresh key is neither.
    panic!("one fresh key is always a valid key set")
}

/// Which sessions and accounts have ended recently enough that their access tokens may
/// still be unexpired. Entries live as long as an access token does.
#[derive(Debug, Clone)]
pub struct Revocations {
    ended_sessions: moka::sync::Cache<Uuid, ()>,
    deleted_users: moka::sync::Cache<Uuid, ()>,
    /// The newest session epoch of an account, and the session exempt from it.
    epochs: moka::sync::Cache<Uuid, (u32, Option<Uuid>)>,
    /// How far back the log is read at start: an access token's lifetime and some.
    window: Duration,
    /// Moves on whenever a session or account ends, so that open connections can check
    /// their own token again at once.
    ended: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl Revocations {
    pub fn new(access_ttl: time::Duration) -> Self {
        let window =
            Duration::from_secs(u64::try_from(access_ttl.whole_seconds()).unwrap_or(900) + 60);
        let cache = || moka::sync::Cache::builder().time_to_live(window).build();
        Self {
            ended_sessions: cache(),
            deleted_users: cache(),
            epochs: moka::sync::Cache::builder().time_to_live(window).build(),
            window,
            ended: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// Changes whenever a session or an account ends (or an account's older sessions
    /// do); a holder of claims then asks [`Self::admits`] again.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.ended.subscribe()
    }

    fn ended(&self) {
        self.ended.send_modify(|generation| *generation += 1);
    }

    /// Whether a token with these claims is still good.
    pub fn admits(&self, claims: &AccessClaims) -> bool {
        if self.ended_sessions.contains_key(&claims.sid)
            || self.deleted_users.contains_key(&claims.sub)
        {
            return false;
        }
        match self.epochs.get(&claims.sub) {
            Some((epoch, exempt)) => claims.sep >= epoch || exempt == Some(claims.sid),
            None => true,
        }
    }

    /// Takes note of one event of the log.
    pub fn observe(&self, envelope: &Envelope) {
        let decoded = |e: &Envelope| (e.event_type.clone(), e.schema_version, e.payload.clone());
        match envelope.aggregate_type.as_str() {
            "session" => {
                let (event_type, version, payload) = decoded(envelope);
                if let Ok(SessionEvent::SessionRevoked(revoked)) =
                    natter_schema::decode::<SessionEvent>(&event_type, version, &payload)
                {
                    self.ended_sessions.insert(revoked.session_id, ());
                    self.ended();
                }
            }
            "user" => {
                let (event_type, version, payload) = decoded(envelope);
                match natter_schema::decode::<UserEvent>(&event_type, version, &payload) {
                    Ok(UserEvent::PasswordChanged(changed)) => self.epoch_moved(
                        changed.user_id,
                        changed.session_epoch,
                        changed.kept_session,
                    ),
                    Ok(UserEvent::SignedOutEverywhere(signed_out)) => {
                        self.epoch_moved(signed_out.user_id, signed_out.session_epoch, None);
                    }
                    Ok(UserEvent::AccountDeleted(deleted)) => {
                        self.deleted_users.insert(deleted.user_id, ());
                        self.ended();
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Sessions of `user_id` opened under an epoch older than `epoch` have ended, except
    /// `exempt`.
    fn epoch_moved(&self, user_id: Uuid, epoch: u32, exempt: Option<Uuid>) {
        let newer = self
            .epochs
            .get(&user_id)
            .is_none_or(|(known, _)| epoch >= known);
        if newer {
            self.epochs.insert(user_id, (epoch, exempt));
            self.ended();
        }
    }

    /// Follows the log: subscribes to the live session and account events first, then
    /// reads the recent past, so that nothing falls between the two. Returns once the
    /// past is read; the live part runs until aborted.
    ///
    /// Live events are missed while the connection is down: the feed keeps the sequence
    /// up to which it has seen every session and account event and, once the log's
    /// keeper says NATS is back with the stream in place, reads on from there in the
    /// log. A session ended meanwhile is refused as soon as that read reaches it.
    pub async fn follow(
        self,
        log: EventLog,
    ) -> Result<tokio::task::JoinHandle<()>, natter_eventlog::LogError> {
        // Both taken before anything is read: a reconnect from here on is noticed.
        let mut link = log.link();
        let mut feed = Feed {
            epoch: log.connection(),
            seen: 0,
            revocations: self,
            log,
        };
        let mut live = feed.subscribe().await?;
        feed.seen = feed.read_after(None).await?;
        Ok(tokio::spawn(async move {
            let mut overflows = link.borrow().overflows;
            // Whether live events may have been lost without a reconnect: the window is
            // then read again, as at start.
            let mut rewind = false;
            loop {
                tokio::select! {
                    message = live.next() => match message {
                        Some(message) => feed.live(&message),
                        // The subscriptions ended (the client was closed): subscribe
                        // again, then read what went by.
                        None => {
                            live = feed.resubscribe().await;
                            feed.catch_up(true).await;
                        }
                    },
                    changed = link.changed() => {
                        if changed.is_err() {
                            // The log is gone, and with it the connection.
                            return;
                        }
                        let now = *link.borrow_and_update();
                        rewind |= now.overflows != overflows;
                        overflows = now.overflows;
                        if now.ready {
                            feed.catch_up(rewind).await;
                            rewind = false;
                        }
                    }
                }
            }
        }))
    }
}

/// The revocation feed's reading of the log.
struct Feed {
    revocations: Revocations,
    log: EventLog,
    /// Every session and account event up to this sequence has been observed.
    seen: u64,
    /// The client's connection count when `seen` was last read from the log: a live
    /// event received on a later connection may come after a gap, so it does not move
    /// `seen` on.
    epoch: u64,
}

impl Feed {
    fn live(&mut self, message: &async_nats::Message) {
        match decode_envelope(&message.payload) {
            Ok(envelope) => self.revocations.observe(&envelope),
            Err(error) => {
                tracing::warn!(%error, "unreadable live event");
                return;
            }
        }
        let sequence = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Nats-Sequence"))
            .and_then(|sequence| sequence.as_str().parse::<u64>().ok());
        if let Some(sequence) = sequence
            && self.log.connection() == self.epoch
        {
            self.seen = self.seen.max(sequence);
        }
    }

    /// The live session and account events, as the stream republishes them.
    async fn subscribe(&self) -> Result<Live, natter_eventlog::LogError> {
        let subjects = self.log.subjects();
        let subscribe = |subject: String| async move {
            self.log
                .client()
                .subscribe(subject)
                .await
                .map_err(|e| natter_eventlog::LogError::Read(e.to_string()))
        };
        let sessions = subscribe(subjects.kind(Space::Live, SESSION_KIND)).await?;
        let users = subscribe(subjects.kind(Space::Live, USER_KIND)).await?;
        Ok(futures::stream::select(sessions, users))
    }

    async fn resubscribe(&self) -> Live {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.subscribe().await {
                Ok(live) => return live,
                Err(error) => tracing::warn!(%error, "subscribing to session events again"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Reads what was stored after `seen` (with `rewind`, the whole window), retrying
    /// until it succeeds. The live subscriptions are in place again, so whatever is
    /// stored later comes live, or is read here too: observing an event twice changes
    /// nothing.
    async fn catch_up(&mut self, rewind: bool) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let epoch = self.log.connection();
            let after = (!rewind).then_some(self.seen);
            match self.read_after(after).await {
                Ok(seen) => {
                    tracing::info!(after = ?after, seen, "revocations caught up");
                    self.seen = seen;
                    self.epoch = epoch;
                    return;
                }
                Err(error) => tracing::warn!(%error, "catching up with session events"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Observes the session and account events after `after` (`None`: those of the
    /// last access token's lifetime); the sequence up to which all are seen.
    async fn read_after(&self, after: Option<u64>) -> Result<u64, natter_eventlog::LogError> {
        // Read first: everything up to here is read below.
        let end = self.log.last_sequence().await?;
        let start = match after {
            // A log shorter than the one seen was made anew (a server with a fresh
            // store): read it as at start.
            Some(seen) if seen <= end => Start::Sequence(seen + 1),
            _ => Start::Time(OffsetDateTime::now_utc() - self.revocations.window),
        };
        // Only session and account events, picked out by the server: reading every
        // event of the window would cost as much as the traffic of the window.
        let subjects = self.log.subjects();
        let mut last = end;
        for kind in [SESSION_KIND, USER_KIND] {
            let filter = subjects.kind(Space::Evt, kind);
            let mut past = Box::pin(self.log.read_matching(filter, start));
            while let Some(event) = past.next().await {
                let event = event?;
                last = last.max(event.sequence);
                self.revocations.observe(&event.envelope);
            }
        }
        Ok(last)
    }
}

type Live = futures::stream::Select<async_nats::Subscriber, async_nats::Subscriber>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys(spec: &str) -> TokenKeys {
        TokenKeys::parse(spec, "natter", "natter-api", time::Duration::minutes(15)).unwrap()
    }

    const SEED_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const SEED_B: &str = "HxwdHhscGxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwI=";

    #[test]
    fn a_token_verifies_with_its_key_and_an_old_listed_key_still_verifies() {
        let old = keys(&format!("old={SEED_A}"));
        let (token, ttl) = old.issue(Uuid::nil(), Uuid::max(), 3).unwrap();
        assert_eq!(ttl, 900);
        assert_eq!(old.verify(&token).unwrap().sep, 3);
        let rotated = keys(&format!("new={SEED_B},old={SEED_A}"));
        assert_eq!(rotated.verify(&token).unwrap().sub, Uuid::nil());
        let forgotten = keys(&format!("new={SEED_B}"));
        assert_eq!(forgotten.verify(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn a_remembered_token_still_expires_and_a_tampered_one_is_checked_afresh() {
        let keys = keys(&format!("k={SEED_A}"));
        let (token, _) = keys.issue(Uuid::nil(), Uuid::max(), 1).unwrap();
        let claims = keys.verify(&token).unwrap();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        assert_eq!(keys.verified.get(&digest), Some(claims.clone()));
        // The same token, remembered as verified, past its expiry.
        let expired = AccessClaims {
            exp: OffsetDateTime::now_utc().unix_timestamp() - LEEWAY_SECS - 1,
            ..claims
        };
        keys.verified.insert(digest, expired);
        assert_eq!(keys.verify(&token), Err(TokenError::Expired));
        let mut tampered = token.clone();
        tampered.push('A');
        assert_eq!(keys.verify(&tampered), Err(TokenError::Invalid));
    }

    #[test]
    fn malformed_key_lists_are_refused() {
        let parse = |spec| TokenKeys::parse(spec, "i", "a", time::Duration::minutes(1)).map(|_| ());
        assert_eq!(parse(""), Err(KeyError::Malformed));
        assert_eq!(parse("k=notbase64!"), Err(KeyError::Malformed));
        assert_eq!(parse("k=AAAA"), Err(KeyError::Malformed));
        assert_eq!(
            parse(&format!("k={SEED_A},k={SEED_B}")),
            Err(KeyError::Duplicate("k".into()))
        );
    }
}
