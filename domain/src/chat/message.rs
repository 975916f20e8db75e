//! Messages in a chat: their text, client ids, events, and the decisions a chat makes
//! about them (sends, markers, edits, deletes, reactions, stars, pins).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Chat, ChatError};
use crate::aggregate::Context;
use crate::user::TextError;

/// A message's text: not blank, at most 64 KiB of UTF-8, no control characters but
/// line breaks and tabs.
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
        // Line breaks and tabs are text; other control characters (NUL above all,
        // which Postgres cannot store) are not.
        if input
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(TextError::ControlCharacter);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text beside an attachment: as a body, but it may be empty.
    pub fn caption(input: &str) -> Result<Self, TextError> {
        if input.is_empty() {
            return Ok(Self(String::new()));
        }
        Self::parse(input)
    }
}

/// Stored bodies are read back as captions: a message with an attachment may have an
/// empty one (whether a body is required was decided when it was sent).
impl TryFrom<String> for MessageBody {
    type Error = TextError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::caption(&value)
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

    /// When the client made this id, in milliseconds since the Unix epoch, if it is a
    /// UUIDv7 (RFC 9562), which begins with that time; `None` for any other id.
    pub fn made_at_ms(&self) -> Option<u64> {
        let uuid = Uuid::try_parse(&self.0).ok()?;
        if uuid.get_version_num() != 7 || uuid.get_variant() != uuid::Variant::RFC4122 {
            return None;
        }
        let bytes = uuid.as_bytes();
        let mut millis = [0_u8; 8];
        millis[2..].copy_from_slice(&bytes[..6]);
        Some(u64::from_be_bytes(millis))
    }
}

crate::text::text_value!(ClientId, ClientIdError);

/// The subject kind of a chat's messages. They live beside the chat's own subject, and
/// each send is guarded by the chat's last sequence (membership), not by other sends.
pub const MESSAGES_KIND: &str = "chatmsg";

/// The most members one message may mention.
pub const MAX_MENTIONS: usize = 64;

/// A send, as the chat decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessage {
    pub message_id: Uuid,
    pub client_id: ClientId,
    pub body: MessageBody,
    /// The message replied to, as the log has it.
    pub reply_to: Option<MessageRef>,
    /// Members named in the message; others are dropped.
    pub mentions: Vec<Uuid>,
    /// For a forward: how many times the message had been forwarded before, plus one.
    pub forwarded: u32,
    /// A media item, a place or a contact card; the body is then its caption.
    pub attachment: Option<Attachment>,
}

/// What a message carries besides its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Attachment {
    /// An uploaded item, by id; its kind and content type as recorded at upload.
    Media {
        media_id: Uuid,
        kind: String,
        content_type: String,
    },
    /// A place, in ten-millionths of a degree (about a centimetre).
    Location {
        latitude_e7: i32,
        longitude_e7: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// A contact card: a name, and a phone number or a Natter user or both.
    Contact {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phone: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<Uuid>,
    },
}

impl Attachment {
    /// The media item this attachment shares, if it is one.
    pub fn media_id(&self) -> Option<Uuid> {
        match self {
            Self::Media { media_id, .. } => Some(*media_id),
            _ => None,
        }
    }
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
    MessageStarred(MessageStarred),
    MessagePinned(MessagePinned),
    MessageHidden(MessageHidden),
}

super::event_types!(MessageEvent {
    MessageSent,
    ReadMarked,
    DeliveredMarked,
    MessageEdited,
    MessageDeleted,
    ReactionSet,
    MessageStarred,
    MessagePinned,
    MessageHidden,
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSent {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sender: Uuid,
    pub client_id: ClientId,
    pub body: MessageBody,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Uuid>,
    /// The stream sequence of the message replied to (since version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_sequence: Option<u64>,
    /// Members named in the message (since version 2).
    pub mentions: Vec<Uuid>,
    /// 0 for an original; for a forward, how many hops it has come (since version 2).
    pub forwarded: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// What the message carries besides its text (since version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
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
}

crate::text::text_value!(Reaction, ReactionError);

/// What a member may do to an existing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageAction {
    Edit(MessageBody),
    DeleteForEveryone,
    /// Hides the message from the actor's own history, search and stars.
    DeleteForMe,
    /// Sets (or with `None`, removes) the actor's one reaction.
    React(Option<Reaction>),
    /// Stars (or unstars) the message for the actor alone.
    Star(bool),
    /// Pins (or unpins) the message for the whole chat: admins in groups, either
    /// member in a direct chat.
    Pin(bool),
}

impl MessageAction {
    /// Whether the action puts something on the message (new text, a reaction, a pin,
    /// a star), as opposed to taking something away.
    pub fn adds(&self) -> bool {
        matches!(
            self,
            Self::Edit(_) | Self::React(Some(_)) | Self::Pin(true) | Self::Star(true)
        )
    }
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageStarred {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sequence: u64,
    pub user: Uuid,
    pub starred: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A message pinned to (or unpinned from) the top of its chat. A chat shows its three
/// latest pins; a fourth pushes the oldest out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePinned {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sequence: u64,
    pub by: Uuid,
    pub pinned: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A member deleted a message for themselves only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageHidden {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sequence: u64,
    pub user: Uuid,
}

/// The most messages a chat shows pinned.
pub const MAX_PINNED_MESSAGES: usize = 3;

impl Chat {
    /// The chat's id, if the actor is a member.
    fn member_chat(&self, actor: Uuid) -> Result<Uuid, ChatError> {
        let chat_id = self.chat_id().ok_or(ChatError::NotFound)?;
        if !self.is_member(actor) {
            return Err(ChatError::NotMember);
        }
        Ok(chat_id)
    }

    fn is_admin(&self, user: Uuid) -> bool {
        matches!(self, Self::Group(group) if group.is_admin(user))
    }

    /// Decides an action on an existing message of this chat.
    pub fn decide_on_message(
        &self,
        message: &MessageRef,
        action: &MessageAction,
        context: &Context,
    ) -> Result<MessageEvent, ChatError> {
        let actor = context.actor.ok_or(ChatError::NoActor)?;
        let chat_id = self.member_chat(actor)?;
        if message.chat_id != chat_id {
            return Err(ChatError::NotMember);
        }
        let (message_id, sequence, now) = (message.message_id, message.sequence, context.now);
        // While either blocks the other, a direct chat takes nothing new that the other
        // would see (a star is the starrer's own).
        let shown = action.adds() && !matches!(action, MessageAction::Star(_));
        if shown && matches!(self, Self::Direct { blocked_by, .. } if !blocked_by.is_empty()) {
            return Err(ChatError::Blocked);
        }
        Ok(match action {
            MessageAction::Edit(body) => {
                if message.sender != actor {
                    return Err(ChatError::NotAuthor);
                }
                if now - message.sent_at > EDIT_WINDOW {
                    return Err(ChatError::EditWindowClosed);
                }
                MessageEvent::MessageEdited(MessageEdited {
                    chat_id,
                    message_id,
                    sequence,
                    body: body.clone(),
                    edited_at: now,
                })
            }
            MessageAction::DeleteForEveryone => {
                if message.sender != actor && !self.is_admin(actor) {
                    return Err(ChatError::CannotDelete);
                }
                MessageEvent::MessageDeleted(MessageDeleted {
                    chat_id,
                    message_id,
                    sequence,
                    by: actor,
                    deleted_at: now,
                })
            }
            MessageAction::DeleteForMe => MessageEvent::MessageHidden(MessageHidden {
                chat_id,
                message_id,
                sequence,
                user: actor,
            }),
            MessageAction::React(reaction) => MessageEvent::ReactionSet(ReactionSet {
                chat_id,
                message_id,
                sequence,
                user: actor,
                reaction: reaction.clone(),
            }),
            MessageAction::Star(starred) => MessageEvent::MessageStarred(MessageStarred {
                chat_id,
                message_id,
                sequence,
                user: actor,
                starred: *starred,
                at: now,
            }),
            MessageAction::Pin(pinned) => {
                if matches!(self, Self::Group(_)) && !self.is_admin(actor) {
                    return Err(ChatError::NotAdmin);
                }
                MessageEvent::MessagePinned(MessagePinned {
                    chat_id,
                    message_id,
                    sequence,
                    by: actor,
                    pinned: *pinned,
                    at: now,
                })
            }
        })
    }

    /// Decides a delivered marker: members only; `None` when it would not move the
    /// member's marker (see [`Self::decide_mark_read`]).
    pub fn decide_mark_delivered(
        &self,
        up_to: u64,
        known: u64,
        context: &Context,
    ) -> Result<Option<DeliveredMarked>, ChatError> {
        let marked = self.decide_mark_read(up_to, known, context)?;
        Ok(marked.map(|read| DeliveredMarked {
            chat_id: read.chat_id,
            user: read.user,
            up_to: read.up_to,
            marked_at: read.marked_at,
        }))
    }

    /// Decides a read marker: members only. Markers never move back, so one at or below
    /// `known` (where the caller knows the member's marker to be already; 0 if it does
    /// not know) changes nothing and is `None`: nothing to append or send to members.
    pub fn decide_mark_read(
        &self,
        up_to: u64,
        known: u64,
        context: &Context,
    ) -> Result<Option<ReadMarked>, ChatError> {
        let user = context.actor.ok_or(ChatError::NoActor)?;
        let chat_id = self.member_chat(user)?;
        Ok((up_to > known).then_some(ReadMarked {
            chat_id,
            user,
            up_to,
            marked_at: context.now,
        }))
    }

    /// Decides a send: members only, not into a direct chat where either blocks the
    /// other, replying only to a message of this chat, mentioning only members.
    pub fn decide_send(
        &self,
        send: &SendMessage,
        context: &Context,
    ) -> Result<MessageSent, ChatError> {
        let sender = context.actor.ok_or(ChatError::NoActor)?;
        let chat_id = self.member_chat(sender)?;
        if matches!(self, Self::Direct { blocked_by, .. } if !blocked_by.is_empty()) {
            return Err(ChatError::Blocked);
        }
        if send.reply_to.as_ref().is_some_and(|r| r.chat_id != chat_id) {
            return Err(ChatError::ReplyNotInChat);
        }
        let mut mentions: Vec<Uuid> = Vec::new();
        for user in &send.mentions {
            if *user != sender && self.is_member(*user) && !mentions.contains(user) {
                mentions.push(*user);
            }
        }
        mentions.truncate(MAX_MENTIONS);
        Ok(MessageSent {
            chat_id,
            message_id: send.message_id,
            sender,
            client_id: send.client_id.clone(),
            body: send.body.clone(),
            reply_to: send.reply_to.as_ref().map(|r| r.message_id),
            reply_to_sequence: send.reply_to.as_ref().map(|r| r.sequence),
            mentions,
            forwarded: send.forwarded,
            sent_at: context.now,
            attachment: send.attachment.clone(),
        })
    }
}
