//! A login session: opened by a password login, kept alive by rotating refresh tokens,
//! ended by logout, revocation, a password change, reuse of a spent refresh token, or
//! its absolute lifetime.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Context, DomainEvent};
use crate::push::PushSubscription;

/// The aggregate kind of sessions.
pub const SESSION_KIND: &str = "session";

/// The SHA-256 of a refresh token, hex-encoded. Tokens themselves are never stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn new(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(***)")
    }
}

/// How many spent refresh tokens a session remembers for reuse detection.
pub const SPENT_TOKENS_KEPT: usize = 32;

/// A device label: up to 64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceName(String);

impl DeviceName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(input: &str) -> Result<Self, crate::user::TextError> {
        crate::text::clean_text(input, Self::MAX_CHARS, true).map(Self)
    }
}

crate::text::text_value!(DeviceName, crate::user::TextError);

/// Where the account stands, as the session's decisions need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountStanding {
    /// The account exists and is not deleted.
    pub active: bool,
    /// The session is still admitted by the account's session epoch.
    pub admits_session: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCommand {
    Open(Open),
    Refresh(Refresh),
    Revoke {
        by_user: Uuid,
        reason: RevokeReason,
    },
    /// Pushes for the session's device go to `subscription` (replacing any before);
    /// `previews` says whether they may carry message text.
    SubscribePush {
        by_user: Uuid,
        subscription: PushSubscription,
        previews: bool,
    },
    /// No more pushes for the session's device. With `endpoint`, only if the
    /// subscription is still that one (the push service said it is gone, and the device
    /// may have subscribed anew meanwhile).
    UnsubscribePush {
        by_user: Uuid,
        reason: PushEndReason,
        endpoint: Option<String>,
    },
}

/// Why a session's push subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushEndReason {
    /// The device asked for no more.
    Unsubscribed,
    /// The push service answered that the subscription no longer exists (404 or 410).
    Gone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub device_name: DeviceName,
    pub refresh_hash: TokenHash,
    /// The account's session epoch at login.
    pub epoch: u32,
    /// The session ends this long after it opened, however often it is refreshed.
    pub lifetime: time::Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub presented: TokenHash,
    pub next: TokenHash,
    pub account: AccountStanding,
    /// A just-spent token presented again within this time is a race between two
    /// refreshes of the same client, refused without ending the session.
    pub grace: time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    Logout,
    Revoked,
    RefreshTokenReused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum SessionEvent {
    SessionOpened(SessionOpened),
    SessionRefreshed(SessionRefreshed),
    SessionRevoked(SessionRevoked),
    PushSubscribed(PushSubscribed),
    PushUnsubscribed(PushUnsubscribed),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscribed {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub subscription: PushSubscription,
    pub previews: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub subscribed_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushUnsubscribed {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub reason: PushEndReason,
    #[serde(with = "time::serde::rfc3339")]
    pub unsubscribed_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOpened {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub device_name: DeviceName,
    pub refresh_hash: TokenHash,
    pub epoch: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRefreshed {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub refresh_hash: TokenHash,
    #[serde(with = "time::serde::rfc3339")]
    pub refreshed_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRevoked {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub reason: RevokeReason,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
}

impl DomainEvent for SessionEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::SessionOpened(_) => "SessionOpened",
            Self::SessionRefreshed(_) => "SessionRefreshed",
            Self::SessionRevoked(_) => "SessionRevoked",
            Self::PushSubscribed(_) => "PushSubscribed",
            Self::PushUnsubscribed(_) => "PushUnsubscribed",
        }
    }

    fn from_payload<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Result<Self, D::Error> {
        match event_type {
            "SessionOpened" => SessionOpened::deserialize(payload).map(Self::SessionOpened),
            "SessionRefreshed" => {
                SessionRefreshed::deserialize(payload).map(Self::SessionRefreshed)
            }
            "SessionRevoked" => SessionRevoked::deserialize(payload).map(Self::SessionRevoked),
            "PushSubscribed" => PushSubscribed::deserialize(payload).map(Self::PushSubscribed),
            "PushUnsubscribed" => {
                PushUnsubscribed::deserialize(payload).map(Self::PushUnsubscribed)
            }
            other => Err(serde::de::Error::custom(format!(
                "{other} is not a session event"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no such session")]
    NotFound,
    #[error("this session already exists")]
    AlreadyOpen,
    #[error("the session has ended")]
    Ended,
    #[error("the refresh token is not valid")]
    InvalidToken,
    #[error("this refresh token was just used by another request; use the newer one")]
    RefreshRace,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Session {
    #[default]
    None,
    Open(Box<OpenSession>),
    Ended {
        user_id: Uuid,
        reason: RevokeReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub epoch: u32,
    pub expires_at: OffsetDateTime,
    pub current: TokenHash,
    /// Spent tokens with when they were spent, newest last.
    pub spent: Vec<(TokenHash, OffsetDateTime)>,
    /// Where the device's pushes go, and whether they may carry message text.
    pub push: Option<(PushSubscription, bool)>,
}

impl Session {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::None => None,
            Self::Open(open) => Some(open.user_id),
            Self::Ended { user_id, .. } => Some(*user_id),
        }
    }
}

impl Aggregate for Session {
    const KIND: &'static str = SESSION_KIND;
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = SessionError;

    fn decide(
        &self,
        command: &SessionCommand,
        context: &Context,
    ) -> Result<Vec<SessionEvent>, SessionError> {
        let now = context.now;
        match (self, command) {
            (Self::None, SessionCommand::Open(open)) => {
                Ok(vec![SessionEvent::SessionOpened(SessionOpened {
                    session_id: open.session_id,
                    user_id: open.user_id,
                    device_name: open.device_name.clone(),
                    refresh_hash: open.refresh_hash.clone(),
                    epoch: open.epoch,
                    opened_at: now,
                    expires_at: now + open.lifetime,
                })])
            }
            (_, SessionCommand::Open(_)) => Err(SessionError::AlreadyOpen),
            (Self::None, _) => Err(SessionError::NotFound),
            (Self::Ended { user_id, .. }, SessionCommand::Revoke { by_user, .. }) => {
                if user_id == by_user {
                    Ok(Vec::new())
                } else {
                    Err(SessionError::NotFound)
                }
            }
            (Self::Ended { .. }, SessionCommand::Refresh(_)) => Err(SessionError::Ended),
            (Self::Ended { user_id, .. }, SessionCommand::SubscribePush { by_user, .. }) => {
                if user_id == by_user {
                    Err(SessionError::Ended)
                } else {
                    Err(SessionError::NotFound)
                }
            }
            // An ended session's subscription ended with it.
            (Self::Ended { user_id, .. }, SessionCommand::UnsubscribePush { by_user, .. }) => {
                if user_id == by_user {
                    Ok(Vec::new())
                } else {
                    Err(SessionError::NotFound)
                }
            }
            (
                Self::Open(session),
                SessionCommand::SubscribePush {
                    by_user,
                    subscription,
                    previews,
                },
            ) => {
                if session.user_id != *by_user {
                    return Err(SessionError::NotFound);
                }
                if now >= session.expires_at {
                    return Err(SessionError::Ended);
                }
                if session.push.as_ref() == Some(&(subscription.clone(), *previews)) {
                    return Ok(Vec::new());
                }
                Ok(vec![SessionEvent::PushSubscribed(PushSubscribed {
                    session_id: session.session_id,
                    user_id: session.user_id,
                    subscription: subscription.clone(),
                    previews: *previews,
                    subscribed_at: now,
                })])
            }
            (
                Self::Open(session),
                SessionCommand::UnsubscribePush {
                    by_user,
                    reason,
                    endpoint,
                },
            ) => {
                if session.user_id != *by_user {
                    return Err(SessionError::NotFound);
                }
                let current = session
                    .push
                    .as_ref()
                    .map(|(subscription, _)| &subscription.endpoint);
                let ends = match endpoint {
                    Some(endpoint) => current == Some(endpoint),
                    None => current.is_some(),
                };
                if !ends {
                    return Ok(Vec::new());
                }
                Ok(vec![SessionEvent::PushUnsubscribed(PushUnsubscribed {
                    session_id: session.session_id,
                    user_id: session.user_id,
                    reason: *reason,
                    unsubscribed_at: now,
                })])
            }
            (Self::Open(session), SessionCommand::Revoke { by_user, reason }) => {
                if session.user_id != *by_user {
                    return Err(SessionError::NotFound);
                }
                Ok(vec![revoked(session, *reason, now)])
            }
            (Self::Open(session), SessionCommand::Refresh(refresh)) => {
                if now >= session.expires_at
                    || !refresh.account.active
                    || !refresh.account.admits_session
                {
                    return Err(SessionError::Ended);
                }
                if refresh.presented == session.current {
                    return Ok(vec![SessionEvent::SessionRefreshed(SessionRefreshed {
                        session_id: session.session_id,
                        user_id: session.user_id,
                        refresh_hash: refresh.next.clone(),
                        refreshed_at: now,
                    })]);
                }
                match session
                    .spent
                    .iter()
                    .rev()
                    .position(|(hash, _)| *hash == refresh.presented)
                {
                    // The token spent last, a moment ago: two refreshes raced.
                    Some(0)
                        if session
                            .spent
                            .last()
                            .is_some_and(|(_, spent_at)| now - *spent_at <= refresh.grace) =>
                    {
                        Err(SessionError::RefreshRace)
                    }
                    // A spent token again: it leaked. End the session for everyone.
                    Some(_) => Ok(vec![revoked(
                        session,
                        RevokeReason::RefreshTokenReused,
                        now,
                    )]),
                    None => Err(SessionError::InvalidToken),
                }
            }
        }
    }

    fn evolve(self, event: &SessionEvent) -> Self {
        match (self, event) {
            (Self::None, SessionEvent::SessionOpened(opened)) => {
                Self::Open(Box::new(OpenSession {
                    session_id: opened.session_id,
                    user_id: opened.user_id,
                    epoch: opened.epoch,
                    expires_at: opened.expires_at,
                    current: opened.refresh_hash.clone(),
                    spent: Vec::new(),
                    push: None,
                }))
            }
            (Self::Open(mut session), SessionEvent::SessionRefreshed(refreshed)) => {
                let spent = std::mem::replace(&mut session.current, refreshed.refresh_hash.clone());
                session.spent.push((spent, refreshed.refreshed_at));
                if session.spent.len() > SPENT_TOKENS_KEPT {
                    session.spent.remove(0);
                }
                Self::Open(session)
            }
            (Self::Open(mut session), SessionEvent::PushSubscribed(subscribed)) => {
                session.push = Some((subscribed.subscription.clone(), subscribed.previews));
                Self::Open(session)
            }
            (Self::Open(mut session), SessionEvent::PushUnsubscribed(_)) => {
                session.push = None;
                Self::Open(session)
            }
            (Self::Open(session), SessionEvent::SessionRevoked(revoked)) => Self::Ended {
                user_id: session.user_id,
                reason: revoked.reason,
            },
            (state, _) => state,
        }
    }
}

fn revoked(session: &OpenSession, reason: RevokeReason, now: OffsetDateTime) -> SessionEvent {
    SessionEvent::SessionRevoked(SessionRevoked {
        session_id: session.session_id,
        user_id: session.user_id,
        reason,
        revoked_at: now,
    })
}

#[cfg(test)]
mod tests;
