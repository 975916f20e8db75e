//! Chat commands: opening direct chats (once per pair, whoever opens first), groups,
//! membership and roles.
//!
//! - A direct chat is a claim on the pair, `direct.<lower id>_<higher id>`: two users
//!   opening their chat at once get the same chat, since the second open finds the claim
//!   taken and answers with its owner.
//! - Opening a direct chat reads both accounts' blocks again after creating it and records
//!   any it finds on the chat; blocking records the block on the account, then on the
//!   pair's chat if there is one, so the chat decides its own sends alone.
//! - Invite links are claims: `InviteCreated` takes `invite.<code>` for the group and
//!   `InviteRevoked` releases it; joining resolves the code through the claim, then the
//!   group decides (the code must still be open). Codes are 122 random bits.

use natter_domain::chat::{
    Chat, ChatCommand, ChatError, DIRECT_CLAIM, GroupName, INVITE_CLAIM, InviteCode, direct_key,
};
use natter_domain::prefs::{ChangeChatSettings, ChatPrefs, PrefsError};
use natter_domain::user::User;
use natter_eventlog::EventLog;
use natter_schema::Metadata;
use uuid::Uuid;

use crate::idempotency::{IDEMPOTENCY_CLAIM, IdempotencyError, IdempotencyKey};
use crate::{ClaimHolder, CommandError, CommandHandler, CommandMetrics, claim_state_current};

#[derive(Debug, thiserror::Error)]
pub enum ChatsError {
    #[error(transparent)]
    Chat(ChatError),
    #[error("no such user")]
    UnknownUser,
    #[error("the chat changed concurrently; try again")]
    Conflict,
    #[error(transparent)]
    Prefs(PrefsError),
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Interrupted(#[from] crate::Interrupted),
    #[error("{0}")]
    Internal(String),
}

/// The stable code of a chat's refusal, as both faces name it. A chat one is not in
/// does not exist, as far as one can tell: both are `not_found`.
pub fn chat_error_code(error: &ChatError) -> &'static str {
    match error {
        ChatError::NotFound | ChatError::NotMember => "not_found",
        ChatError::NotAdmin => "not_admin",
        ChatError::Blocked => "blocked",
        ChatError::AlreadyExists => "already_exists",
        ChatError::LastAdmin => "last_admin",
        ChatError::CannotChatWithSelf => "cannot_chat_with_self",
        ChatError::TooManyMembers => "too_many_members",
        ChatError::NotAGroup => "not_a_group",
        ChatError::CannotRemoveSelf => "cannot_remove_self",
        ChatError::NotAuthor => "not_author",
        ChatError::CannotDelete => "cannot_delete",
        ChatError::EditWindowClosed => "edit_window_closed",
        ChatError::TooManyInvites => "too_many_invites",
        ChatError::InviteInvalid => "invite_not_found",
        ChatError::ReplyNotInChat => "reply_not_in_chat",
        ChatError::MessageDeleted => "message_deleted",
        ChatError::NoActor => "internal",
    }
}

impl ChatsError {
    /// The stable code both faces answer with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Chat(chat) => chat_error_code(chat),
            Self::UnknownUser => "unknown_user",
            Self::Conflict => "conflict",
            Self::Prefs(PrefsError::TooManyPinned) => "too_many_pinned",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::Interrupted(interrupted) => interrupted.code(),
            Self::Prefs(PrefsError::NoActor) | Self::Internal(_) => "internal",
        }
    }
}

impl From<CommandError<ChatError>> for ChatsError {
    fn from(error: CommandError<ChatError>) -> Self {
        match error {
            CommandError::Rejected(rejected) => Self::Chat(rejected),
            CommandError::Conflict { .. } => Self::Conflict,
            other => crate::failed(other, Self::Internal),
        }
    }
}

/// A chat command's outcome: the chat, and the stream sequence to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatOutcome {
    pub chat_id: Uuid,
    pub last_sequence: u64,
    /// The direct chat existed already (opened by either of the two).
    pub existed: bool,
}

/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Chats {
    chats: CommandHandler<Chat>,
    users: CommandHandler<User>,
    prefs: CommandHandler<ChatPrefs>,
}

impl Chats {
    pub fn new(log: EventLog, metrics: CommandMetrics) -> Self {
        Self {
            chats: CommandHandler::new(log.clone(), metrics.clone()),
            users: CommandHandler::new(log.clone(), metrics.clone()),
            prefs: CommandHandler::new(log, metrics),
        }
    }

    /// Opens the direct chat of `actor` and `other`, or finds the one that exists.
    /// Blocking either way refuses a new chat.
    pub async fn open_direct(
        &self,
        actor: Uuid,
        other: Uuid,
        metadata: Metadata,
    ) -> Result<ChatOutcome, ChatsError> {
        if let Some(existing) = self.existing_direct(actor, other).await? {
            return Ok(existing);
        }
        let (me, them) = (self.user(actor).await?, self.user(other).await?);
        let (Some(me), Some(them)) = (me, them) else {
            return Err(ChatsError::UnknownUser);
        };
        let blocked = me.blocked.contains(&other) || them.blocked.contains(&actor);
        let chat_id = Uuid::now_v7();
        let command = ChatCommand::CreateDirect {
            chat_id,
            other,
            blocked,
        };
        let metadata = Metadata {
            actor: Some(actor),
            ..metadata
        };
        match self
            .chats
            .execute(&chat_id.to_string(), &command, metadata)
            .await
        {
            Ok(executed) => {
                // A block made while the chat was being opened found no chat to record
                // itself on: the blocks are read again, and recorded now.
                let mut last_sequence = executed.last_sequence;
                for (who, whom) in [(actor, other), (other, actor)] {
                    if self
                        .user(who)
                        .await?
                        .is_some_and(|p| p.blocked.contains(&whom))
                    {
                        let block = ChatCommand::SetBlocked { blocked: true };
                        last_sequence = self.execute(chat_id, &block, who, metadata).await?;
                    }
                }
                Ok(ChatOutcome {
                    chat_id,
                    last_sequence,
                    existed: false,
                })
            }
            // The other opened it at the same moment: theirs is the chat.
            Err(CommandError::ClaimTaken {
                kind: DIRECT_CLAIM, ..
            }) => self
                .existing_direct(actor, other)
                .await?
                .ok_or_else(|| ChatsError::Internal("direct chat claim without a chat".into())),
            Err(error) => Err(error.into()),
        }
    }

    async fn existing_direct(&self, a: Uuid, b: Uuid) -> Result<Option<ChatOutcome>, ChatsError> {
        let (holder, _) = claim_state_current(self.chats.log(), DIRECT_CLAIM, &direct_key(a, b))
            .await
            .map_err(|e| crate::failed(e, ChatsError::Internal))?;
        match holder {
            ClaimHolder::Held { owner, .. } => {
                let (_, last_sequence) = self.chats.load(&owner.to_string()).await?;
                Ok(Some(ChatOutcome {
                    chat_id: owner,
                    last_sequence,
                    existed: true,
                }))
            }
            ClaimHolder::Free | ClaimHolder::Released { .. } => Ok(None),
        }
    }

    /// Creates a group of `actor` (its admin) and `members`, who must all exist. With an
    /// idempotency key, a retry of the same request gets the group made the first time.
    pub async fn create_group(
        &self,
        actor: Uuid,
        name: GroupName,
        members: Vec<Uuid>,
        idempotency: Option<IdempotencyKey>,
        metadata: Metadata,
    ) -> Result<ChatOutcome, ChatsError> {
        if let Some(key) = &idempotency
            && let Some(earlier) = self.earlier(key).await?
        {
            return Ok(earlier);
        }
        self.require_users(&members).await?;
        let chat_id = Uuid::now_v7();
        let command = ChatCommand::CreateGroup {
            chat_id,
            name,
            members,
        };
        let extra: Vec<_> = idempotency.iter().map(|key| key.claim(chat_id)).collect();
        let metadata = Metadata {
            actor: Some(actor),
            ..metadata
        };
        match self
            .chats
            .execute_with(&chat_id.to_string(), &command, metadata, &extra)
            .await
        {
            Ok(executed) => Ok(ChatOutcome {
                chat_id,
                last_sequence: executed.last_sequence,
                existed: false,
            }),
            // A concurrent retry with the same key got there first.
            Err(CommandError::ClaimTaken {
                kind: IDEMPOTENCY_CLAIM,
                ..
            }) => match &idempotency {
                Some(key) => self.earlier(key).await?.ok_or(ChatsError::Conflict),
                None => Err(ChatsError::Conflict),
            },
            Err(error) => Err(error.into()),
        }
    }

    async fn earlier(&self, key: &IdempotencyKey) -> Result<Option<ChatOutcome>, ChatsError> {
        let owner = key
            .earlier(self.chats.log())
            .await
            .map_err(|error| match error {
                IdempotencyError::Reused => ChatsError::IdempotencyKeyReused,
                IdempotencyError::Log(error) => crate::failed(error, ChatsError::Internal),
            })?;
        let Some(chat_id) = owner else {
            return Ok(None);
        };
        let (_, last_sequence) = self.chats.load(&chat_id.to_string()).await?;
        Ok(Some(ChatOutcome {
            chat_id,
            last_sequence,
            existed: true,
        }))
    }

    /// Any membership, role, info or invite change by `actor`.
    pub async fn change(
        &self,
        chat_id: Uuid,
        actor: Uuid,
        command: ChatCommand,
        metadata: Metadata,
    ) -> Result<u64, ChatsError> {
        if let ChatCommand::AddMembers { users } = &command {
            self.require_users(users).await?;
        }
        self.execute(chat_id, &command, actor, metadata).await
    }

    /// Opens a new invite link to a group (admins only); its code is the secret.
    pub async fn create_invite(
        &self,
        chat_id: Uuid,
        actor: Uuid,
        metadata: Metadata,
    ) -> Result<(InviteCode, u64), ChatsError> {
        // 122 random bits: a code cannot be guessed.
        let code = InviteCode::parse(&Uuid::new_v4().simple().to_string())
            .map_err(|e| ChatsError::Internal(e.to_string()))?;
        let command = ChatCommand::CreateInvite { code: code.clone() };
        let sequence = self.execute(chat_id, &command, actor, metadata).await?;
        Ok((code, sequence))
    }

    /// The group's open invite codes, for its admins.
    pub async fn invites(&self, chat_id: Uuid, actor: Uuid) -> Result<Vec<InviteCode>, ChatsError> {
        match self.chat(chat_id).await? {
            Chat::Group(group) if group.is_admin(actor) => Ok(group.invites),
            Chat::Group(group) if group.members.iter().any(|m| m.user_id == actor) => {
                Err(ChatsError::Chat(ChatError::NotAdmin))
            }
            Chat::Direct { members, .. } if members.contains(&actor) => {
                Err(ChatsError::Chat(ChatError::NotAGroup))
            }
            _ => Err(ChatsError::Chat(ChatError::NotFound)),
        }
    }

    /// Joins the group an invite code opens; a member joining again changes nothing.
    pub async fn join_by_invite(
        &self,
        actor: Uuid,
        code: InviteCode,
        metadata: Metadata,
    ) -> Result<ChatOutcome, ChatsError> {
        let (holder, _) = claim_state_current(self.chats.log(), INVITE_CLAIM, code.as_str())
            .await
            .map_err(|e| crate::failed(e, ChatsError::Internal))?;
        let ClaimHolder::Held { owner: chat_id, .. } = holder else {
            return Err(ChatsError::Chat(ChatError::InviteInvalid));
        };
        let command = ChatCommand::JoinByInvite { code };
        let last_sequence = self.execute(chat_id, &command, actor, metadata).await?;
        Ok(ChatOutcome {
            chat_id,
            last_sequence,
            existed: false,
        })
    }

    /// Records on the direct chat of `actor` and `other`, if there is one, that the
    /// actor blocks (or no longer blocks) the other: sends are decided on the chat.
    /// The account's own block list is the user aggregate's (`Accounts::block`), which
    /// goes first: it checks the request, and a retry after a failure here is a no-op
    /// there that completes this step.
    pub async fn set_direct_blocked(
        &self,
        actor: Uuid,
        other: Uuid,
        blocked: bool,
        metadata: Metadata,
    ) -> Result<Option<u64>, ChatsError> {
        if actor == other {
            return Ok(None);
        }
        let Some(chat) = self.existing_direct(actor, other).await? else {
            return Ok(None);
        };
        let command = ChatCommand::SetBlocked { blocked };
        self.execute(chat.chat_id, &command, actor, metadata)
            .await
            .map(Some)
    }

    /// Changes the caller's own settings for a chat they are in.
    pub async fn change_settings(
        &self,
        user: Uuid,
        change: ChangeChatSettings,
        metadata: Metadata,
    ) -> Result<u64, ChatsError> {
        if !self.chat(change.chat_id).await?.is_member(user) {
            return Err(ChatsError::Chat(ChatError::NotFound));
        }
        let metadata = Metadata {
            actor: Some(user),
            ..metadata
        };
        self.prefs
            .execute(&user.to_string(), &change, metadata)
            .await
            .map(|executed| executed.last_sequence)
            .map_err(|error| match error {
                CommandError::Rejected(rejected) => ChatsError::Prefs(rejected),
                CommandError::Conflict { .. } => ChatsError::Conflict,
                other => crate::failed(other, ChatsError::Internal),
            })
    }

    /// The chat's state, for reads that must be exact (authorization): as the stream
    /// leader holds it, so a member added a moment ago is one.
    pub async fn chat(&self, chat_id: Uuid) -> Result<Chat, ChatsError> {
        Ok(self.chats.load_current(&chat_id.to_string()).await?.0)
    }

    async fn execute(
        &self,
        chat_id: Uuid,
        command: &ChatCommand,
        actor: Uuid,
        metadata: Metadata,
    ) -> Result<u64, ChatsError> {
        let metadata = Metadata {
            actor: Some(actor),
            ..metadata
        };
        Ok(self
            .chats
            .execute(&chat_id.to_string(), command, metadata)
            .await?
            .last_sequence)
    }

    async fn user(
        &self,
        user_id: Uuid,
    ) -> Result<Option<natter_domain::user::Profile>, ChatsError> {
        // "Unknown" is decided at the leader: a replica a moment behind may not have
        // the registration yet.
        let (user, _) = self
            .users
            .load_found(&user_id.to_string(), |user| user.profile().is_some())
            .await
            .map_err(|e| crate::failed(e, ChatsError::Internal))?;
        Ok(user.profile().cloned())
    }

    async fn require_users(&self, users: &[Uuid]) -> Result<(), ChatsError> {
        if users.len() > natter_domain::chat::MAX_MEMBERS {
            return Err(ChatsError::Chat(ChatError::TooManyMembers));
        }
        for user in users {
            if self.user(*user).await?.is_none() {
                return Err(ChatsError::UnknownUser);
            }
        }
        Ok(())
    }
}
