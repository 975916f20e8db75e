//! Chats: direct chats between two users, and groups with members, admins, info and
//! invite links. The decision state holds members, roles and settings, never messages.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Claim, ClaimAction, Context};
use crate::user::TextError;

mod message;

pub use message::*;

/// The aggregate kind of chats: their events are on `<prefix>.evt.chat.<chat id>`.
pub const CHAT_KIND: &str = "chat";

/// The most members a group may have.
pub const MAX_MEMBERS: usize = 1_024;
/// The most invite links a group may have open at once.
pub const MAX_INVITES: usize = 10;
/// The claim kind that makes a direct chat unique per pair of users.
pub const DIRECT_CLAIM: &str = "direct";
/// The claim kind that maps an invite code to its group.
pub const INVITE_CLAIM: &str = "invite";

/// A group's name: 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl GroupName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(input: &str) -> Result<Self, TextError> {
        crate::text::clean_text(input, Self::MAX_CHARS, false).map(Self)
    }
}

crate::text::text_value!(GroupName, TextError);

/// A group's description: up to 500 characters, line breaks allowed; empty for none.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(input: &str) -> Result<Self, TextError> {
        crate::text::clean_lines(input, Self::MAX_CHARS).map(Self)
    }
}

crate::text::text_value!(Description, TextError);

/// The secret part of an invite link: 16 to 64 letters, digits, `-` or `_`, so that it
/// is also a subject token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InviteCode(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an invite code is 16 to 64 letters, digits, '-' or '_'")]
pub struct InviteCodeError;

impl InviteCode {
    pub fn parse(input: &str) -> Result<Self, InviteCodeError> {
        let valid = (16..=64).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(input.to_owned()))
        } else {
            Err(InviteCodeError)
        }
    }
}

crate::text::text_value!(InviteCode, InviteCodeError);

/// The key of the direct chat between two users, the same whichever opens it.
pub fn direct_key(a: Uuid, b: Uuid) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    format!("{}_{}", low.simple(), high.simple())
}

/// Changes to a group's info; fields left `None` stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupEdit {
    pub name: Option<GroupName>,
    pub description: Option<Description>,
    /// `Some(None)` removes the avatar.
    pub avatar: Option<Option<Uuid>>,
    /// Whether members who are not admins may change the name, description and avatar.
    /// Admins only may change this.
    pub members_edit_info: Option<bool>,
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
    Edit(GroupEdit),
    CreateInvite {
        code: InviteCode,
    },
    RevokeInvite {
        code: InviteCode,
    },
    JoinByInvite {
        code: InviteCode,
    },
    /// In a direct chat: the actor blocks (or unblocks) the other member. Sends are
    /// decided on this, so a block holds from the moment it is appended.
    SetBlocked {
        blocked: bool,
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
    GroupDescribed(GroupDescribed),
    GroupAvatarChanged(GroupAvatarChanged),
    GroupPermissionsChanged(GroupPermissionsChanged),
    InviteCreated(InviteCreated),
    InviteRevoked(InviteRevoked),
    MemberJoined(MemberJoined),
    DirectChatBlockChanged(DirectChatBlockChanged),
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDescribed {
    pub chat_id: Uuid,
    pub description: Description,
    pub by: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupAvatarChanged {
    pub chat_id: Uuid,
    /// The media id of the new avatar; `None` removes it.
    pub avatar: Option<Uuid>,
    pub by: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPermissionsChanged {
    pub chat_id: Uuid,
    pub members_edit_info: bool,
    pub by: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCreated {
    pub chat_id: Uuid,
    pub code: InviteCode,
    pub by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRevoked {
    pub chat_id: Uuid,
    pub code: InviteCode,
    pub by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
}

/// A user joined a group by one of its invite links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberJoined {
    pub chat_id: Uuid,
    pub user: Uuid,
    pub code: InviteCode,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

/// One member of a direct chat blocked (or unblocked) the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectChatBlockChanged {
    pub chat_id: Uuid,
    pub by: Uuid,
    pub blocked: bool,
}

/// Lists each variant's type name once, for `event_type` and `from_payload`.
macro_rules! event_types {
    ($enum:ident { $($variant:ident),* $(,)? }) => {
        impl $crate::aggregate::DomainEvent for $enum {
            fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant),)*
                }
            }

            fn from_payload<'de, D: serde::Deserializer<'de>>(
                event_type: &str,
                payload: D,
            ) -> Result<Self, D::Error> {
                match event_type {
                    $(stringify!($variant) => $variant::deserialize(payload).map(Self::$variant),)*
                    other => Err(serde::de::Error::custom(format!(
                        "{other} is not a {} event", stringify!($enum)
                    ))),
                }
            }
        }
    };
}
pub(crate) use event_types;

event_types!(ChatEvent {
    DirectChatCreated,
    GroupCreated,
    MembersAdded,
    MemberRemoved,
    MemberLeft,
    AdminChanged,
    GroupRenamed,
    GroupDescribed,
    GroupAvatarChanged,
    GroupPermissionsChanged,
    InviteCreated,
    InviteRevoked,
    MemberJoined,
    DirectChatBlockChanged,
});

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
    #[error("a group has at most {MAX_INVITES} invite links open; revoke one first")]
    TooManyInvites,
    #[error("this invite link is not valid (revoked, or never was)")]
    InviteInvalid,
    #[error("the message replied to is not in this chat")]
    ReplyNotInChat,
    #[error("a message deleted for everyone cannot be forwarded, pinned or reacted to")]
    MessageDeleted,
}

/// One member of a group, in the order they joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: Uuid,
    pub admin: bool,
}

/// A group's decision state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub chat_id: Uuid,
    pub name: GroupName,
    pub description: Description,
    pub avatar: Option<Uuid>,
    pub members_edit_info: bool,
    /// Oldest first: the first member is the one promoted when the last admin leaves.
    pub members: Vec<Member>,
    /// The invite codes that are open.
    pub invites: Vec<InviteCode>,
}

impl Group {
    fn member(&self, user: Uuid) -> Option<&Member> {
        self.members.iter().find(|m| m.user_id == user)
    }

    pub fn is_admin(&self, user: Uuid) -> bool {
        self.member(user).is_some_and(|m| m.admin)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Chat {
    #[default]
    None,
    Direct {
        chat_id: Uuid,
        members: [Uuid; 2],
        /// The members who block the other.
        blocked_by: Vec<Uuid>,
    },
    Group(Group),
}

impl Chat {
    pub fn chat_id(&self) -> Option<Uuid> {
        match self {
            Self::None => None,
            Self::Direct { chat_id, .. } => Some(*chat_id),
            Self::Group(group) => Some(group.chat_id),
        }
    }

    pub fn is_member(&self, user: Uuid) -> bool {
        match self {
            Self::None => false,
            Self::Direct { members, .. } => members.contains(&user),
            Self::Group(group) => group.member(user).is_some(),
        }
    }

    pub fn members(&self) -> Vec<Uuid> {
        match self {
            Self::None => Vec::new(),
            Self::Direct { members, .. } => members.to_vec(),
            Self::Group(group) => group.members.iter().map(|m| m.user_id).collect(),
        }
    }

    fn create(
        command: &ChatCommand,
        actor: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<ChatEvent>, ChatError> {
        match command {
            ChatCommand::CreateDirect {
                chat_id,
                other,
                blocked,
            } => {
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
            ChatCommand::CreateGroup {
                chat_id,
                name,
                members,
            } => {
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
            _ => Err(ChatError::NotFound),
        }
    }
}

impl Group {
    fn decide(
        &self,
        command: &ChatCommand,
        actor: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<ChatEvent>, ChatError> {
        let chat_id = self.chat_id;
        if let ChatCommand::SetBlocked { .. } = command {
            return Err(ChatError::NotAGroup);
        }
        // Joining by link is the one thing a non-member does.
        if let ChatCommand::JoinByInvite { code } = command {
            if !self.invites.contains(code) {
                return Err(ChatError::InviteInvalid);
            }
            if self.member(actor).is_some() {
                return Ok(Vec::new());
            }
            if self.members.len() >= MAX_MEMBERS {
                return Err(ChatError::TooManyMembers);
            }
            let mut events = vec![ChatEvent::MemberJoined(MemberJoined {
                chat_id,
                user: actor,
                code: code.clone(),
                joined_at: now,
            })];
            // Joining a group everyone has left: a group always has an admin.
            if !self.members.iter().any(|m| m.admin) {
                events.push(ChatEvent::AdminChanged(AdminChanged {
                    chat_id,
                    user: actor,
                    admin: true,
                    by: None,
                }));
            }
            return Ok(events);
        }
        let me = self.member(actor).ok_or(ChatError::NotMember)?;
        match command {
            ChatCommand::Leave => {
                let mut events = vec![ChatEvent::MemberLeft(MemberLeft {
                    chat_id,
                    user: actor,
                    left_at: now,
                })];
                let other_admins = self.members.iter().any(|m| m.admin && m.user_id != actor);
                if me.admin && !other_admins {
                    // The last admin leaves: the oldest remaining member takes over.
                    if let Some(oldest) = self.members.iter().find(|m| m.user_id != actor) {
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
            ChatCommand::Edit(edit) => self.edit(edit, me),
            _ if !me.admin => Err(ChatError::NotAdmin),
            ChatCommand::AddMembers { users } => {
                let mut new: Vec<Uuid> = Vec::new();
                for user in users {
                    if self.member(*user).is_none() && !new.contains(user) {
                        new.push(*user);
                    }
                }
                if new.is_empty() {
                    return Ok(Vec::new());
                }
                if self.members.len() + new.len() > MAX_MEMBERS {
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
                if self.member(*user).is_none() {
                    return Ok(Vec::new());
                }
                Ok(vec![ChatEvent::MemberRemoved(MemberRemoved {
                    chat_id,
                    user: *user,
                    by: actor,
                    removed_at: now,
                })])
            }
            ChatCommand::SetAdmin { user, admin } => match self.member(*user) {
                None => Err(ChatError::NotMember),
                Some(member) if member.admin == *admin => Ok(Vec::new()),
                Some(_) if !*admin && self.members.iter().filter(|m| m.admin).count() == 1 => {
                    Err(ChatError::LastAdmin)
                }
                Some(_) => Ok(vec![ChatEvent::AdminChanged(AdminChanged {
                    chat_id,
                    user: *user,
                    admin: *admin,
                    by: Some(actor),
                })]),
            },
            ChatCommand::CreateInvite { code } => {
                if self.invites.contains(code) {
                    return Ok(Vec::new());
                }
                if self.invites.len() >= MAX_INVITES {
                    return Err(ChatError::TooManyInvites);
                }
                Ok(vec![ChatEvent::InviteCreated(InviteCreated {
                    chat_id,
                    code: code.clone(),
                    by: actor,
                    created_at: now,
                })])
            }
            ChatCommand::RevokeInvite { code } => {
                if !self.invites.contains(code) {
                    return Ok(Vec::new());
                }
                Ok(vec![ChatEvent::InviteRevoked(InviteRevoked {
                    chat_id,
                    code: code.clone(),
                    by: actor,
                    revoked_at: now,
                })])
            }
            ChatCommand::SetBlocked { .. } => Err(ChatError::NotAGroup),
            ChatCommand::CreateDirect { .. }
            | ChatCommand::CreateGroup { .. }
            | ChatCommand::JoinByInvite { .. } => Err(ChatError::AlreadyExists),
        }
    }

    /// Name, description and avatar: admins, or every member if the group allows it.
    /// Who may do that: admins only.
    fn edit(&self, edit: &GroupEdit, me: &Member) -> Result<Vec<ChatEvent>, ChatError> {
        let (chat_id, by) = (self.chat_id, me.user_id);
        let touches_info =
            edit.name.is_some() || edit.description.is_some() || edit.avatar.is_some();
        if (touches_info && !me.admin && !self.members_edit_info)
            || (edit.members_edit_info.is_some() && !me.admin)
        {
            return Err(ChatError::NotAdmin);
        }
        let mut events = Vec::new();
        if let Some(name) = edit.name.as_ref().filter(|name| **name != self.name) {
            events.push(ChatEvent::GroupRenamed(GroupRenamed {
                chat_id,
                name: name.clone(),
                by,
            }));
        }
        if let Some(description) = edit
            .description
            .as_ref()
            .filter(|description| **description != self.description)
        {
            events.push(ChatEvent::GroupDescribed(GroupDescribed {
                chat_id,
                description: description.clone(),
                by,
            }));
        }
        if let Some(avatar) = edit.avatar.filter(|avatar| *avatar != self.avatar) {
            events.push(ChatEvent::GroupAvatarChanged(GroupAvatarChanged {
                chat_id,
                avatar,
                by,
            }));
        }
        if let Some(allowed) = edit
            .members_edit_info
            .filter(|allowed| *allowed != self.members_edit_info)
        {
            events.push(ChatEvent::GroupPermissionsChanged(
                GroupPermissionsChanged {
                    chat_id,
                    members_edit_info: allowed,
                    by,
                },
            ));
        }
        Ok(events)
    }

    fn evolve(&mut self, event: &ChatEvent) {
        match event {
            ChatEvent::MembersAdded(added) => {
                self.members.extend(added.users.iter().map(|user| Member {
                    user_id: *user,
                    admin: false,
                }));
            }
            ChatEvent::MemberJoined(joined) => self.members.push(Member {
                user_id: joined.user,
                admin: false,
            }),
            ChatEvent::MemberRemoved(MemberRemoved { user, .. })
            | ChatEvent::MemberLeft(MemberLeft { user, .. }) => {
                self.members.retain(|m| m.user_id != *user);
            }
            ChatEvent::AdminChanged(changed) => {
                if let Some(member) = self.members.iter_mut().find(|m| m.user_id == changed.user) {
                    member.admin = changed.admin;
                }
            }
            ChatEvent::GroupRenamed(renamed) => self.name = renamed.name.clone(),
            ChatEvent::GroupDescribed(described) => {
                self.description = described.description.clone();
            }
            ChatEvent::GroupAvatarChanged(changed) => self.avatar = changed.avatar,
            ChatEvent::GroupPermissionsChanged(changed) => {
                self.members_edit_info = changed.members_edit_info;
            }
            ChatEvent::InviteCreated(created) => self.invites.push(created.code.clone()),
            ChatEvent::InviteRevoked(revoked) => self.invites.retain(|c| *c != revoked.code),
            ChatEvent::DirectChatCreated(_)
            | ChatEvent::GroupCreated(_)
            | ChatEvent::DirectChatBlockChanged(_) => {}
        }
    }
}

impl Aggregate for Chat {
    const KIND: &'static str = CHAT_KIND;
    type Command = ChatCommand;
    type Event = ChatEvent;
    type Error = ChatError;

    fn decide(
        &self,
        command: &ChatCommand,
        context: &Context,
    ) -> Result<Vec<ChatEvent>, ChatError> {
        let actor = context.actor.ok_or(ChatError::NoActor)?;
        match (self, command) {
            (Self::None, command) => Self::create(command, actor, context.now),
            (_, ChatCommand::CreateDirect { .. } | ChatCommand::CreateGroup { .. }) => {
                Err(ChatError::AlreadyExists)
            }
            (
                Self::Direct {
                    chat_id,
                    members,
                    blocked_by,
                },
                ChatCommand::SetBlocked { blocked },
            ) => {
                if !members.contains(&actor) {
                    return Err(ChatError::NotMember);
                }
                if blocked_by.contains(&actor) == *blocked {
                    return Ok(Vec::new());
                }
                Ok(vec![ChatEvent::DirectChatBlockChanged(
                    DirectChatBlockChanged {
                        chat_id: *chat_id,
                        by: actor,
                        blocked: *blocked,
                    },
                )])
            }
            (Self::Direct { .. }, _) => Err(ChatError::NotAGroup),
            (Self::Group(group), command) => group.decide(command, actor, context.now),
        }
    }

    fn evolve(self, event: &ChatEvent) -> Self {
        match (self, event) {
            (Self::None, ChatEvent::DirectChatCreated(created)) => Self::Direct {
                chat_id: created.chat_id,
                members: created.members,
                blocked_by: Vec::new(),
            },
            (
                Self::Direct {
                    chat_id,
                    members,
                    mut blocked_by,
                },
                ChatEvent::DirectChatBlockChanged(changed),
            ) => {
                blocked_by.retain(|user| *user != changed.by);
                if changed.blocked {
                    blocked_by.push(changed.by);
                }
                Self::Direct {
                    chat_id,
                    members,
                    blocked_by,
                }
            }
            (Self::None, ChatEvent::GroupCreated(created)) => {
                let mut members = vec![Member {
                    user_id: created.creator,
                    admin: true,
                }];
                members.extend(created.members.iter().map(|user| Member {
                    user_id: *user,
                    admin: false,
                }));
                Self::Group(Group {
                    chat_id: created.chat_id,
                    name: created.name.clone(),
                    description: Description::default(),
                    avatar: None,
                    members_edit_info: false,
                    members,
                    invites: Vec::new(),
                })
            }
            (Self::Group(mut group), event) => {
                group.evolve(event);
                Self::Group(group)
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
                ChatEvent::InviteCreated(created) => Some(Claim {
                    kind: INVITE_CLAIM,
                    key: created.code.as_str().to_owned(),
                    owner: created.chat_id,
                    action: ClaimAction::Take,
                }),
                ChatEvent::InviteRevoked(revoked) => Some(Claim {
                    kind: INVITE_CLAIM,
                    key: revoked.code.as_str().to_owned(),
                    owner: revoked.chat_id,
                    action: ClaimAction::Release {
                        available_after: revoked.revoked_at,
                    },
                }),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
