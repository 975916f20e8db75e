//! Chats: direct chats between two users, and groups with members and admins. The
//! decision state holds members, roles and settings, never messages.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Claim, ClaimAction, Context, DomainEvent};
use crate::user::TextError;

/// The most members a group may have.
pub const MAX_MEMBERS: usize = 1_024;
/// The claim kind that makes a direct chat unique per pair of users.
pub const DIRECT_CLAIM: &str = "direct";

/// A group's name: 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl GroupName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(input: &str) -> Result<Self, TextError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(TextError::Blank);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(TextError::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        if trimmed.chars().any(char::is_control) {
            return Err(TextError::ControlCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GroupName {
    type Error = TextError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<GroupName> for String {
    fn from(name: GroupName) -> Self {
        name.0
    }
}

/// The key of the direct chat between two users, the same whichever opens it.
pub fn direct_key(a: Uuid, b: Uuid) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    format!("{}_{}", low.simple(), high.simple())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    /// Opens the direct chat between the actor and `other`. The caller says whether
    /// either has blocked the other.
    CreateDirect {
        chat_id: Uuid,
        other: Uuid,
        blocked: bool,
    },
    CreateGroup {
        chat_id: Uuid,
        name: GroupName,
        members: Vec<Uuid>,
    },
    AddMembers {
        users: Vec<Uuid>,
    },
    RemoveMember {
        user: Uuid,
    },
    Leave,
    SetAdmin {
        user: Uuid,
        admin: bool,
    },
    Rename {
        name: GroupName,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum ChatEvent {
    DirectChatCreated(DirectChatCreated),
    GroupCreated(GroupCreated),
    MembersAdded(MembersAdded),
    MemberRemoved(MemberRemoved),
    MemberLeft(MemberLeft),
    AdminChanged(AdminChanged),
    GroupRenamed(GroupRenamed),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectChatCreated {
    pub chat_id: Uuid,
    pub members: [Uuid; 2],
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCreated {
    pub chat_id: Uuid,
    pub name: GroupName,
    pub creator: Uuid,
    /// Everyone but the creator, in the order they were given.
    pub members: Vec<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersAdded {
    pub chat_id: Uuid,
    pub users: Vec<Uuid>,
    pub by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRemoved {
    pub chat_id: Uuid,
    pub user: Uuid,
    pub by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub removed_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLeft {
    pub chat_id: Uuid,
    pub user: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub left_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminChanged {
    pub chat_id: Uuid,
    pub user: Uuid,
    pub admin: bool,
    /// `None` when the group promoted its oldest member because the last admin left.
    pub by: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRenamed {
    pub chat_id: Uuid,
    pub name: GroupName,
    pub by: Uuid,
}

impl DomainEvent for ChatEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::DirectChatCreated(_) => "DirectChatCreated",
            Self::GroupCreated(_) => "GroupCreated",
            Self::MembersAdded(_) => "MembersAdded",
            Self::MemberRemoved(_) => "MemberRemoved",
            Self::MemberLeft(_) => "MemberLeft",
            Self::AdminChanged(_) => "AdminChanged",
            Self::GroupRenamed(_) => "GroupRenamed",
        }
    }

    fn from_payload<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Result<Self, D::Error> {
        match event_type {
            "DirectChatCreated" => {
                DirectChatCreated::deserialize(payload).map(Self::DirectChatCreated)
            }
            "GroupCreated" => GroupCreated::deserialize(payload).map(Self::GroupCreated),
            "MembersAdded" => MembersAdded::deserialize(payload).map(Self::MembersAdded),
            "MemberRemoved" => MemberRemoved::deserialize(payload).map(Self::MemberRemoved),
            "MemberLeft" => MemberLeft::deserialize(payload).map(Self::MemberLeft),
            "AdminChanged" => AdminChanged::deserialize(payload).map(Self::AdminChanged),
            "GroupRenamed" => GroupRenamed::deserialize(payload).map(Self::GroupRenamed),
            other => Err(serde::de::Error::custom(format!(
                "{other} is not a chat event"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("no such chat")]
    NotFound,
    #[error("this chat already exists")]
    AlreadyExists,
    #[error("only members may do this")]
    NotMember,
    #[error("only group admins may do this")]
    NotAdmin,
    #[error("a chat needs another user")]
    CannotChatWithSelf,
    #[error("one of the two has blocked the other")]
    Blocked,
    #[error("a group has at most {MAX_MEMBERS} members")]
    TooManyMembers,
    #[error("direct chats have no members to change, roles or names")]
    NotAGroup,
    #[error("to leave, leave; removing is for others")]
    CannotRemoveSelf,
    #[error("the actor is unknown")]
    NoActor,
    #[error("a group keeps at least one admin; promote another first")]
    LastAdmin,
    #[error("only the author may edit a message")]
    NotAuthor,
    #[error("a message can be edited for {} minutes after it was sent", EDIT_WINDOW.whole_minutes())]
    EditWindowClosed,
    #[error("only the author or a group admin may delete a message for everyone")]
    CannotDelete,
}

/// One member of a group, in the order they joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: Uuid,
    pub admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Chat {
    #[default]
    None,
    Direct {
        chat_id: Uuid,
        members: [Uuid; 2],
    },
    Group {
        chat_id: Uuid,
        name: GroupName,
        members: Vec<Member>,
    },
}

impl Chat {
    pub fn is_member(&self, user: Uuid) -> bool {
        match self {
            Self::None => false,
            Self::Direct { members, .. } => members.contains(&user),
            Self::Group { members, .. } => members.iter().any(|m| m.user_id == user),
        }
    }

    pub fn members(&self) -> Vec<Uuid> {
        match self {
            Self::None => Vec::new(),
            Self::Direct { members, .. } => members.to_vec(),
            Self::Group { members, .. } => members.iter().map(|m| m.user_id).collect(),
        }
    }
}

impl Aggregate for Chat {
    const KIND: &'static str = "chat";
    type Command = ChatCommand;
    type Event = ChatEvent;
    type Error = ChatError;

    fn decide(
        &self,
        command: &ChatCommand,
        context: &Context,
    ) -> Result<Vec<ChatEvent>, ChatError> {
        let actor = context.actor.ok_or(ChatError::NoActor)?;
        let now = context.now;
        match (self, command) {
            (
                Self::None,
                ChatCommand::CreateDirect {
                    chat_id,
                    other,
                    blocked,
                },
            ) => {
                if *other == actor {
                    return Err(ChatError::CannotChatWithSelf);
                }
                if *blocked {
                    return Err(ChatError::Blocked);
                }
                Ok(vec![ChatEvent::DirectChatCreated(DirectChatCreated {
                    chat_id: *chat_id,
                    members: [actor, *other],
                    created_at: now,
                })])
            }
            (
                Self::None,
                ChatCommand::CreateGroup {
                    chat_id,
                    name,
                    members,
                },
            ) => {
                let mut unique: Vec<Uuid> = Vec::with_capacity(members.len());
                for user in members {
                    if *user != actor && !unique.contains(user) {
                        unique.push(*user);
                    }
                }
                if unique.len() + 1 > MAX_MEMBERS {
                    return Err(ChatError::TooManyMembers);
                }
                Ok(vec![ChatEvent::GroupCreated(GroupCreated {
                    chat_id: *chat_id,
                    name: name.clone(),
                    creator: actor,
                    members: unique,
                    created_at: now,
                })])
            }
            (Self::None, _) => Err(ChatError::NotFound),
            (_, ChatCommand::CreateDirect { .. } | ChatCommand::CreateGroup { .. }) => {
                Err(ChatError::AlreadyExists)
            }
            (Self::Direct { .. }, _) => Err(ChatError::NotAGroup),
            (
                Self::Group {
                    chat_id, members, ..
                },
                command,
            ) => {
                let Some(me) = members.iter().find(|m| m.user_id == actor) else {
                    return Err(ChatError::NotMember);
                };
                let chat_id = *chat_id;
                match command {
                    ChatCommand::Leave => {
                        let mut events = vec![ChatEvent::MemberLeft(MemberLeft {
                            chat_id,
                            user: actor,
                            left_at: now,
                        })];
                        let other_admins = members.iter().any(|m| m.admin && m.user_id != actor);
                        if me.admin && !other_admins {
                            // The last admin leaves: the oldest remaining member takes over.
                            if let Some(oldest) = members.iter().find(|m| m.user_id != actor) {
                                events.push(ChatEvent::AdminChanged(AdminChanged {
                                    chat_id,
                                    user: oldest.user_id,
                                    admin: true,
                                    by: None,
                                }));
                            }
                        }
                        Ok(events)
                    }
                    _ if !me.admin => Err(ChatError::NotAdmin),
                    ChatCommand::AddMembers { users } => {
                        let mut new: Vec<Uuid> = Vec::new();
                        for user in users {
                            if !members.iter().any(|m| m.user_id == *user) && !new.contains(user) {
                                new.push(*user);
                            }
                        }
                        if new.is_empty() {
                            return Ok(Vec::new());
                        }
                        if members.len() + new.len() > MAX_MEMBERS {
                            return Err(ChatError::TooManyMembers);
                        }
                        Ok(vec![ChatEvent::MembersAdded(MembersAdded {
                            chat_id,
                            users: new,
                            by: actor,
                            added_at: now,
                        })])
                    }
                    ChatCommand::RemoveMember { user } => {
                        if *user == actor {
                            return Err(ChatError::CannotRemoveSelf);
                        }
                        if !members.iter().any(|m| m.user_id == *user) {
                            return Ok(Vec::new());
                        }
                        Ok(vec![ChatEvent::MemberRemoved(MemberRemoved {
                            chat_id,
                            user: *user,
                            by: actor,
                            removed_at: now,
                        })])
                    }
                    ChatCommand::SetAdmin { user, admin } => match members
                        .iter()
                        .find(|m| m.user_id == *user)
                    {
                        None => Err(ChatError::NotMember),
                        Some(member) if member.admin == *admin => Ok(Vec::new()),
                        Some(_) if !*admin && members.iter().filter(|m| m.admin).count() == 1 => {
                            Err(ChatError::LastAdmin)
                        }
                        Some(_) => Ok(vec![ChatEvent::AdminChanged(AdminChanged {
                            chat_id,
                            user: *user,
                            admin: *admin,
                            by: Some(actor),
                        })]),
                    },
                    ChatCommand::Rename { name } => {
                        Ok(vec![ChatEvent::GroupRenamed(GroupRenamed {
                            chat_id,
                            name: name.clone(),
                            by: actor,
                        })])
                    }
                    ChatCommand::CreateDirect { .. } | ChatCommand::CreateGroup { .. } => {
                        Err(ChatError::AlreadyExists)
                    }
                }
            }
        }
    }

    fn evolve(self, event: &ChatEvent) -> Self {
        match (self, event) {
            (Self::None, ChatEvent::DirectChatCreated(created)) => Self::Direct {
                chat_id: created.chat_id,
                members: created.members,
            },
            (Self::None, ChatEvent::GroupCreated(created)) => {
                let mut members = vec![Member {
                    user_id: created.creator,
                    admin: true,
                }];
                members.extend(created.members.iter().map(|user| Member {
                    user_id: *user,
                    admin: false,
                }));
                Self::Group {
                    chat_id: created.chat_id,
                    name: created.name.clone(),
                    members,
                }
            }
            (
                Self::Group {
                    chat_id,
                    mut name,
                    mut members,
                },
                event,
            ) => {
                match event {
                    ChatEvent::MembersAdded(added) => {
                        members.extend(added.users.iter().map(|user| Member {
                            user_id: *user,
                            admin: false,
                        }))
                    }
                    ChatEvent::MemberRemoved(MemberRemoved { user, .. })
                    | ChatEvent::MemberLeft(MemberLeft { user, .. }) => {
                        members.retain(|m| m.user_id != *user);
                    }
                    ChatEvent::AdminChanged(changed) => {
                        if let Some(member) = members.iter_mut().find(|m| m.user_id == changed.user)
                        {
                            member.admin = changed.admin;
                        }
                    }
                    ChatEvent::GroupRenamed(renamed) => name = renamed.name.clone(),
                    ChatEvent::DirectChatCreated(_) | ChatEvent::GroupCreated(_) => {}
                }
                Self::Group {
                    chat_id,
                    name,
                    members,
                }
            }
            (state, _) => state,
        }
    }

    fn claims(events: &[ChatEvent]) -> Vec<Claim> {
        events
            .iter()
            .filter_map(|event| match event {
                ChatEvent::DirectChatCreated(created) => Some(Claim {
                    kind: DIRECT_CLAIM,
                    key: direct_key(created.members[0], created.members[1]),
                    owner: created.chat_id,
                    action: ClaimAction::Take,
                }),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

/// A message's text: not blank, at most 64 KiB of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageBody(String);

impl MessageBody {
    pub const MAX_BYTES: usize = 64 * 1024;

    pub fn parse(input: &str) -> Result<Self, TextError> {
        if input.trim().is_empty() {
            return Err(TextError::Blank);
        }
        if input.len() > Self::MAX_BYTES {
            return Err(TextError::TooLong {
                max: Self::MAX_BYTES,
            });
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MessageBody {
    type Error = TextError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<MessageBody> for String {
    fn from(body: MessageBody) -> Self {
        body.0
    }
}

/// The id a client gives a send, so that a retried send is stored once: 1 to 64
/// printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a client id is 1 to 64 printable ASCII characters")]
pub struct ClientIdError;

impl ClientId {
    pub fn parse(input: &str) -> Result<Self, ClientIdError> {
        if (1..=64).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(input.to_owned()))
        } else {
            Err(ClientIdError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientId {
    type Error = ClientIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ClientId> for String {
    fn from(id: ClientId) -> Self {
        id.0
    }
}

/// The subject kind of a chat's messages. They live beside the chat's own subject, and
/// each send is guarded by the chat's last sequence (membership), not by other sends.
pub const MESSAGES_KIND: &str = "chatmsg";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessage {
    pub message_id: Uuid,
    pub client_id: ClientId,
    pub body: MessageBody,
    pub reply_to: Option<Uuid>,
    /// For a direct chat: one of the two has blocked the other.
    pub blocked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum MessageEvent {
    MessageSent(MessageSent),
    ReadMarked(ReadMarked),
    DeliveredMarked(DeliveredMarked),
    MessageEdited(MessageEdited),
    MessageDeleted(MessageDeleted),
    ReactionSet(ReactionSet),
}

/// A member's devices have received the chat up to a stream sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredMarked {
    pub chat_id: Uuid,
    pub user: Uuid,
    pub up_to: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub marked_at: OffsetDateTime,
}

/// How long after sending its author may edit a message.
pub const EDIT_WINDOW: time::Duration = time::Duration::minutes(15);

/// A message as the log has it, looked up by its stream sequence to decide on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    pub chat_id: Uuid,
    pub sequence: u64,
    pub message_id: Uuid,
    pub sender: Uuid,
    pub sent_at: OffsetDateTime,
}

/// A reaction: one emoji (or short token), 1 to 32 bytes, no whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reaction(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a reaction is 1 to 32 bytes without spaces")]
pub struct ReactionError;

impl Reaction {
    pub fn parse(input: &str) -> Result<Self, ReactionError> {
        let valid = (1..=32).contains(&input.len())
            && !input.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(input.to_owned()))
        } else {
            Err(ReactionError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reaction {
    type Error = ReactionError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Reaction> for String {
    fn from(reaction: Reaction) -> Self {
        reaction.0
    }
}

/// What a member may do to an existing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageAction {
    Edit(MessageBody),
    DeleteForEveryone,
    /// Sets (or with `None`, removes) the actor's one reaction.
    React(Option<Reaction>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEdited {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    /// The stream sequence of the message edited.
    pub sequence: u64,
    pub body: MessageBody,
    #[serde(with = "time::serde::rfc3339")]
    pub edited_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDeleted {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sequence: u64,
    pub by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub deleted_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionSet {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sequence: u64,
    pub user: Uuid,
    pub reaction: Option<Reaction>,
}

/// A member has read the chat up to a stream sequence (their own unread count clears;
/// whether others learn of it follows the member's privacy settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMarked {
    pub chat_id: Uuid,
    pub user: Uuid,
    pub up_to: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub marked_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSent {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sender: Uuid,
    pub client_id: ClientId,
    pub body: MessageBody,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

impl DomainEvent for MessageEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::MessageSent(_) => "MessageSent",
            Self::ReadMarked(_) => "ReadMarked",
            Self::DeliveredMarked(_) => "DeliveredMarked",
            Self::MessageEdited(_) => "MessageEdited",
            Self::MessageDeleted(_) => "MessageDeleted",
            Self::ReactionSet(_) => "ReactionSet",
        }
    }

    fn from_payload<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Result<Self, D::Error> {
        match event_type {
            "MessageSent" => MessageSent::deserialize(payload).map(Self::MessageSent),
            "ReadMarked" => ReadMarked::deserialize(payload).map(Self::ReadMarked),
            "DeliveredMarked" => DeliveredMarked::deserialize(payload).map(Self::DeliveredMarked),
            "MessageEdited" => MessageEdited::deserialize(payload).map(Self::MessageEdited),
            "MessageDeleted" => MessageDeleted::deserialize(payload).map(Self::MessageDeleted),
            "ReactionSet" => ReactionSet::deserialize(payload).map(Self::ReactionSet),
            other => Err(serde::de::Error::custom(format!(
                "{other} is not a message event"
            ))),
        }
    }
}

impl Chat {
    /// Decides an edit, a delete for everyone, or a reaction on an existing message.
    pub fn decide_on_message(
        &self,
        message: &MessageRef,
        action: &MessageAction,
        context: &Context,
    ) -> Result<MessageEvent, ChatError> {
        let actor = context.actor.ok_or(ChatError::NoActor)?;
        let chat_id = match self {
            Self::None => return Err(ChatError::NotFound),
            Self::Direct { chat_id, .. } | Self::Group { chat_id, .. } => *chat_id,
        };
        if !self.is_member(actor) || message.chat_id != chat_id {
            return Err(ChatError::NotMember);
        }
        let (message_id, sequence) = (message.message_id, message.sequence);
        match action {
            MessageAction::Edit(body) => {
                if message.sender != actor {
                    return Err(ChatError::NotAuthor);
                }
                if context.now - message.sent_at > EDIT_WINDOW {
                    return Err(ChatError::EditWindowClosed);
                }
                Ok(MessageEvent::MessageEdited(MessageEdited {
                    chat_id,
                    message_id,
                    sequence,
                    body: body.clone(),
                    edited_at: context.now,
                }))
            }
            MessageAction::DeleteForEveryone => {
                let admin = matches!(self, Self::Group { members, .. }
                    if members.iter().any(|m| m.user_id == actor && m.admin));
                if message.sender != actor && !admin {
                    return Err(ChatError::CannotDelete);
                }
                Ok(MessageEvent::MessageDeleted(MessageDeleted {
                    chat_id,
                    message_id,
                    sequence,
                    by: actor,
                    deleted_at: context.now,
                }))
            }
            MessageAction::React(reaction) => Ok(MessageEvent::ReactionSet(ReactionSet {
                chat_id,
                message_id,
                sequence,
                user: actor,
                reaction: reaction.clone(),
            })),
        }
    }

    /// Decides a delivered marker: members only.
    pub fn decide_mark_delivered(
        &self,
        up_to: u64,
        context: &Context,
    ) -> Result<DeliveredMarked, ChatError> {
        self.decide_mark_read(up_to, context)
            .map(|read| DeliveredMarked {
                chat_id: read.chat_id,
                user: read.user,
                up_to: read.up_to,
                marked_at: read.marked_at,
            })
    }

    /// Decides a read marker: members only.
    pub fn decide_mark_read(&self, up_to: u64, context: &Context) -> Result<ReadMarked, ChatError> {
        let user = context.actor.ok_or(ChatError::NoActor)?;
        let chat_id = match self {
            Self::None => return Err(ChatError::NotFound),
            Self::Direct { chat_id, .. } | Self::Group { chat_id, .. } => *chat_id,
        };
        if !self.is_member(user) {
            return Err(ChatError::NotMember);
        }
        Ok(ReadMarked {
            chat_id,
            user,
            up_to,
            marked_at: context.now,
        })
    }

    /// Decides a send: members only, and not into a direct chat where one blocked the
    /// other.
    pub fn decide_send(
        &self,
        send: &SendMessage,
        context: &Context,
    ) -> Result<MessageSent, ChatError> {
        let sender = context.actor.ok_or(ChatError::NoActor)?;
        let chat_id = match self {
            Self::None => return Err(ChatError::NotFound),
            Self::Direct { chat_id, .. } | Self::Group { chat_id, .. } => *chat_id,
        };
        if !self.is_member(sender) {
            return Err(ChatError::NotMember);
        }
        if matches!(self, Self::Direct { .. }) && send.blocked {
            return Err(ChatError::Blocked);
        }
        Ok(MessageSent {
            chat_id,
            message_id: send.message_id,
            sender,
            client_id: send.client_id.clone(),
            body: send.body.clone(),
            reply_to: send.reply_to,
            sent_at: context.now,
        })
    }
}
