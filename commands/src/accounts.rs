//! Accounts and sessions: registration, login, token refresh, logout, profile, password,
//! privacy, blocks and deletion. Passwords are checked here (on the hashing pool), then
//! the pure aggregates decide.

use natter_domain::push::PushSubscription;
use natter_domain::session::{
    AccountStanding, DeviceName, Open, PushEndReason, Refresh, RevokeReason, Session,
    SessionCommand, SessionError, SessionEvent,
};
use natter_domain::user::{
    About, ChangePassword, ChangePrivacy, ChangeProfile, DeleteAccount, DisplayName, HANDLE_CLAIM,
    Handle, Password, PasswordHash, PhoneNumber, Profile, Register, User, UserCommand, UserError,
    UserEvent,
};
use natter_eventlog::EventLog;
use natter_schema::Metadata;
use uuid::Uuid;

use crate::passwords::{HashError, PasswordHasher};
use crate::{
    ClaimHolder, CommandError, CommandHandler, CommandMetrics, Executed, ExtraClaim,
    claim_state_current, tokens,
};

use crate::idempotency::IdempotencyError;
pub use crate::idempotency::{IDEMPOTENCY_CLAIM, IdempotencyKey};

/// Lifetimes and grace periods, from settings.
#[derive(Debug, Clone, Copy)]
pub struct AccountPolicy {
    /// A session ends this long after login, however often it is refreshed.
    pub session_lifetime: time::Duration,
    /// A just-spent refresh token presented again this soon is a race, not a theft.
    pub refresh_grace: time::Duration,
    /// A deleted account's handle is free again after this long.
    pub handle_cool_down: time::Duration,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        Self {
            session_lifetime: time::Duration::days(30),
            refresh_grace: time::Duration::seconds(10),
            handle_cool_down: time::Duration::days(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the handle is taken")]
    HandleTaken,
    #[error("wrong handle or password")]
    InvalidCredentials,
    #[error("the refresh token is not valid")]
    InvalidRefreshToken,
    #[error("a spent refresh token was presented again; the session has ended")]
    RefreshTokenReused,
    #[error(transparent)]
    User(UserError),
    #[error(transparent)]
    Session(SessionError),
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("password hashing is saturated; try again shortly")]
    Busy,
    #[error("the account changed concurrently; try again")]
    Conflict,
    #[error(transparent)]
    Interrupted(#[from] crate::Interrupted),
    #[error("{0}")]
    Internal(String),
}

impl From<HashError> for AccountError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self::Busy,
            HashError::Failed => Self::Internal("password hashing failed".into()),
        }
    }
}

impl<E: std::error::Error + 'static> From<CommandError<E>> for AccountError
where
    AccountError: From<E>,
{
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Rejected(rejected) => rejected.into(),
            CommandError::ClaimTaken {
                kind: HANDLE_CLAIM, ..
            } => Self::HandleTaken,
            CommandError::ClaimTaken { kind, key } => {
                Self::Internal(format!("claim {kind} {key} taken"))
            }
            CommandError::Conflict { .. } => Self::Conflict,
            other => crate::failed(other, Self::Internal),
        }
    }
}

impl From<UserError> for AccountError {
    fn from(error: UserError) -> Self {
        Self::User(error)
    }
}

impl From<SessionError> for AccountError {
    fn from(error: SessionError) -> Self {
        Self::Session(error)
    }
}

/// A new account, as the client sent it (already validated).
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub handle: Handle,
    pub display_name: DisplayName,
    pub about: About,
    pub phone: Option<PhoneNumber>,
    pub password: Password,
}

#[derive(Debug, Clone, Copy)]
pub struct Registered {
    pub user_id: Uuid,
    pub last_sequence: u64,
    /// The same Idempotency-Key and request came before; this is its result again.
    pub replayed: bool,
}

/// What a login or a refresh hands out; the API turns it into an access token too.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub user_id: Uuid,
    pub session_id: Uuid,
    /// The session's epoch, carried in access tokens (see `Profile::admits_session`).
    pub epoch: u32,
    pub refresh_token: String,
    /// When the session ends, however often it is refreshed.
    pub expires_at: time::OffsetDateTime,
    pub last_sequence: u64,
}

/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Accounts {
    users: CommandHandler<User>,
    sessions: CommandHandler<Session>,
    hasher: PasswordHasher,
    policy: AccountPolicy,
}

impl Accounts {
    pub fn new(
        log: EventLog,
        metrics: CommandMetrics,
        hasher: PasswordHasher,
        policy: AccountPolicy,
    ) -> Self {
        Self {
            users: CommandHandler::new(log.clone(), metrics.clone()),
            sessions: CommandHandler::new(log, metrics),
            hasher,
            policy,
        }
    }

    pub fn users(&self) -> &CommandHandler<User> {
        &self.users
    }

    /// Registers an account. With an idempotency key, a retry of the same request gets
    /// the first result, for as long as the log keeps the key (not only NATS's window).
    pub async fn register(
        &self,
        account: NewAccount,
        idempotency: Option<IdempotencyKey>,
        metadata: Metadata,
    ) -> Result<Registered, AccountError> {
        if let Some(key) = &idempotency
            && let Some(replay) = self.replay(key).await?
        {
            return Ok(replay);
        }
        let password_hash = self.hasher.hash(&account.password).await?;
        let user_id = Uuid::now_v7();
        let extra: Vec<ExtraClaim> = idempotency.iter().map(|key| key.claim(user_id)).collect();
        let command = UserCommand::Register(Register {
            user_id,
            handle: account.handle,
            display_name: account.display_name,
            about: account.about,
            phone: account.phone,
            password_hash,
        });
        match self
            .users
            .execute_with(&user_id.to_string(), &command, metadata, &extra)
            .await
        {
            Ok(executed) => Ok(Registered {
                user_id,
                last_sequence: executed.last_sequence,
                replayed: false,
            }),
            // A concurrent retry with the same key got there first.
            Err(CommandError::ClaimTaken {
                kind: IDEMPOTENCY_CLAIM,
                ..
            }) => match &idempotency {
                Some(key) => self.replay(key).await?.ok_or(AccountError::Conflict),
                None => Err(AccountError::Conflict),
            },
            Err(error) => Err(error.into()),
        }
    }

    /// Registers with a hash computed elsewhere (benchmarks and tests that measure
    /// something other than argon2).
    pub async fn register_hashed(
        &self,
        account: NewAccount,
        password_hash: PasswordHash,
        metadata: Metadata,
    ) -> Result<Registered, AccountError> {
        let user_id = Uuid::now_v7();
        let command = UserCommand::Register(Register {
            user_id,
            handle: account.handle,
            display_name: account.display_name,
            about: account.about,
            phone: account.phone,
            password_hash,
        });
        let executed = self
            .users
            .execute(&user_id.to_string(), &command, metadata)
            .await?;
        Ok(Registered {
            user_id,
            last_sequence: executed.last_sequence,
            replayed: false,
        })
    }

    async fn replay(&self, key: &IdempotencyKey) -> Result<Option<Registered>, AccountError> {
        let owner = match key.earlier(self.users.log()).await {
            Ok(owner) => owner,
            Err(IdempotencyError::Reused) => return Err(AccountError::IdempotencyKeyReused),
            Err(IdempotencyError::Log(error)) => {
                return Err(crate::failed(error, AccountError::Internal));
            }
        };
        let Some(owner) = owner else { return Ok(None) };
        let (_, last_sequence) = self.users.load(&owner.to_string()).await?;
        Ok(Some(Registered {
            user_id: owner,
            last_sequence,
            replayed: true,
        }))
    }

    /// Checks the password and opens a session. Whether the handle exists or the
    /// password is wrong, the answer (and its cost) is the same.
    pub async fn login(
        &self,
        handle: &Handle,
        password: &Password,
        device_name: DeviceName,
        metadata: Metadata,
    ) -> Result<Tokens, AccountError> {
        let (holder, _) = claim_state_current(self.users.log(), HANDLE_CLAIM, handle.as_str())
            .await
            .map_err(|e| crate::failed(e, AccountError::Internal))?;
        let profile = match holder {
            ClaimHolder::Held { owner, .. } => self.profile(owner).await?,
            ClaimHolder::Free | ClaimHolder::Released { .. } => None,
        };
        let hash = profile.as_ref().and_then(|p| p.password_hash.as_ref());
        if !self.hasher.verify(password, hash).await? {
            return Err(AccountError::InvalidCredentials);
        }
        let Some(profile) = profile else {
            return Err(AccountError::InvalidCredentials);
        };
        let session_id = Uuid::now_v7();
        let (refresh_token, refresh_hash) = tokens::new_refresh_token(session_id);
        let command = SessionCommand::Open(Open {
            session_id,
            user_id: profile.user_id,
            device_name,
            refresh_hash,
            epoch: profile.session_epoch,
            lifetime: self.policy.session_lifetime,
        });
        let metadata = Metadata {
            actor: Some(profile.user_id),
            ..metadata
        };
        let executed = self
            .sessions
            .execute(&session_id.to_string(), &command, metadata)
            .await?;
        let expires_at = executed
            .events
            .iter()
            .find_map(|(_, event)| match event {
                SessionEvent::SessionOpened(opened) => Some(opened.expires_at),
                _ => None,
            })
            .ok_or_else(|| AccountError::Internal("a login opened no session".into()))?;
        Ok(Tokens {
            user_id: profile.user_id,
            session_id,
            epoch: profile.session_epoch,
            refresh_token,
            expires_at,
            last_sequence: executed.last_sequence,
        })
    }

    /// Rotates a refresh token: the presented one is spent, a new one handed out.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        metadata: Metadata,
    ) -> Result<Tokens, AccountError> {
        let session_id =
            tokens::session_of(refresh_token).ok_or(AccountError::InvalidRefreshToken)?;
        let id = session_id.to_string();
        // Current, not as a replica may hold it: a session opened or refreshed a moment
        // ago must not look unknown, nor its new token like a spent one.
        let (session, _) = self.sessions.load_current(&id).await?;
        let (user_id, epoch, expires_at) = match &session {
            Session::Open(open) => (open.user_id, open.epoch, open.expires_at),
            Session::Ended { .. } => return Err(AccountError::Session(SessionError::Ended)),
            Session::None => return Err(AccountError::InvalidRefreshToken),
        };
        let profile = self.profile(user_id).await?;
        let account = AccountStanding {
            active: profile.is_some(),
            admits_session: profile
                .as_ref()
                .is_some_and(|p| p.admits_session(session_id, epoch)),
        };
        let (next_token, next) = tokens::new_refresh_token(session_id);
        let command = SessionCommand::Refresh(Refresh {
            presented: tokens::hash_token(refresh_token),
            next,
            account,
            grace: self.policy.refresh_grace,
        });
        let metadata = Metadata {
            actor: Some(user_id),
            ..metadata
        };
        let executed = self
            .sessions
            .execute(&id, &command, metadata)
            .await
            .map_err(|error| match error {
                CommandError::Rejected(SessionError::InvalidToken | SessionError::NotFound) => {
                    AccountError::InvalidRefreshToken
                }
                other => other.into(),
            })?;
        let reused = executed.events.iter().any(|(_, event)| {
            matches!(event, SessionEvent::SessionRevoked(revoked) if revoked.reason == RevokeReason::RefreshTokenReused)
        });
        if reused {
            return Err(AccountError::RefreshTokenReused);
        }
        Ok(Tokens {
            user_id,
            session_id,
            epoch,
            refresh_token: next_token,
            expires_at,
            last_sequence: executed.last_sequence,
        })
    }

    /// Ends one of `user_id`'s sessions. Someone else's session is "not found".
    pub async fn end_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        reason: RevokeReason,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        let command = SessionCommand::Revoke {
            by_user: user_id,
            reason,
        };
        self.session_command(session_id, &command, metadata).await
    }

    /// Sends the pushes of `user_id`'s session `session_id` to `subscription` from now
    /// on; `previews` says whether they may carry message text.
    pub async fn subscribe_push(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        subscription: PushSubscription,
        previews: bool,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        let command = SessionCommand::SubscribePush {
            by_user: user_id,
            subscription,
            previews,
        };
        self.session_command(session_id, &command, metadata).await
    }

    /// Ends the push subscription of `user_id`'s session `session_id`; with `endpoint`,
    /// only if the subscription is still that one.
    pub async fn unsubscribe_push(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        reason: PushEndReason,
        endpoint: Option<String>,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        let command = SessionCommand::UnsubscribePush {
            by_user: user_id,
            reason,
            endpoint,
        };
        self.session_command(session_id, &command, metadata).await
    }

    async fn session_command(
        &self,
        session_id: Uuid,
        command: &SessionCommand,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        let executed = self
            .sessions
            .execute(&session_id.to_string(), command, metadata)
            .await?;
        Ok(executed.last_sequence)
    }

    /// Ends every session of the account, the caller's own included, by moving the
    /// account's session epoch on (as a password change does, exempting none): sessions
    /// opened a moment ago that no read model shows yet end too.
    pub async fn sign_out_everywhere(
        &self,
        user_id: Uuid,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        self.user_command(user_id, UserCommand::SignOutEverywhere, metadata)
            .await
    }

    /// Changes the password after checking the old one; every other session ends.
    pub async fn change_password(
        &self,
        user_id: Uuid,
        current_session: Uuid,
        old: &Password,
        new: &Password,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        self.check_password(user_id, old).await?;
        let password_hash = self.hasher.hash(new).await?;
        let command = UserCommand::ChangePassword(ChangePassword {
            password_hash,
            kept_session: Some(current_session),
        });
        self.user_command(user_id, command, metadata).await
    }

    /// Deletes the account after checking the password. Its events stay in the log.
    pub async fn delete(
        &self,
        user_id: Uuid,
        password: &Password,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        self.check_password(user_id, password).await?;
        let command = UserCommand::Delete(DeleteAccount {
            handle_cool_down: self.policy.handle_cool_down,
        });
        self.user_command(user_id, command, metadata).await
    }

    pub async fn change_profile(
        &self,
        user_id: Uuid,
        change: ChangeProfile,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        self.user_command(user_id, UserCommand::ChangeProfile(change), metadata)
            .await
    }

    /// Sets or removes the user's photo: a media item the caller has checked is an image
    /// of the user's own.
    pub async fn change_photo(
        &self,
        user_id: Uuid,
        media_id: Option<Uuid>,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        self.user_command(user_id, UserCommand::ChangePhoto { media_id }, metadata)
            .await
    }

    pub async fn change_privacy(
        &self,
        user_id: Uuid,
        change: ChangePrivacy,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        self.user_command(user_id, UserCommand::ChangePrivacy(change), metadata)
            .await
    }

    /// Records when the user's last connection closed (an older time changes nothing).
    pub async fn record_last_seen(
        &self,
        user_id: Uuid,
        at: time::OffsetDateTime,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        self.user_command(user_id, UserCommand::RecordLastSeen { at }, metadata)
            .await
    }

    /// Blocks another existing account.
    pub async fn block(
        &self,
        user_id: Uuid,
        other: Uuid,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        if other != user_id && self.profile(other).await?.is_none() {
            return Err(AccountError::User(UserError::NotFound));
        }
        self.user_command(user_id, UserCommand::Block { user_id: other }, metadata)
            .await
    }

    pub async fn unblock(
        &self,
        user_id: Uuid,
        other: Uuid,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        self.user_command(user_id, UserCommand::Unblock { user_id: other }, metadata)
            .await
    }

    /// The account's current state, if it exists and is not deleted. An account that
    /// seems not to exist is looked for again at the stream leader: a replica a moment
    /// behind may not have its registration yet.
    pub async fn profile(&self, user_id: Uuid) -> Result<Option<Profile>, AccountError> {
        let (user, _) = self
            .users
            .load_found(&user_id.to_string(), |user| user.profile().is_some())
            .await?;
        Ok(user.profile().cloned())
    }

    async fn check_password(&self, user_id: Uuid, password: &Password) -> Result<(), AccountError> {
        let profile = self.profile(user_id).await?;
        let hash = profile.as_ref().and_then(|p| p.password_hash.as_ref());
        if self.hasher.verify(password, hash).await? {
            Ok(())
        } else {
            Err(AccountError::InvalidCredentials)
        }
    }

    async fn user_command(
        &self,
        user_id: Uuid,
        command: UserCommand,
        metadata: Metadata,
    ) -> Result<u64, AccountError> {
        let metadata = Metadata {
            actor: Some(user_id),
            ..metadata
        };
        let executed: Executed<UserEvent> = self
            .users
            .execute(&user_id.to_string(), &command, metadata)
            .await?;
        Ok(executed.last_sequence)
    }
}
