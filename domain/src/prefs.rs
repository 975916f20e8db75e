//! A user's settings for their chats: pinned (at most three), archived, muted until, and
//! whether their pushes show the chat's messages.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Context, DomainEvent};

/// The most chats one user may pin.
pub const MAX_PINNED: usize = 3;

/// Changes to one chat's settings; fields left `None` stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeChatSettings {
    pub chat_id: Uuid,
    pub pinned: Option<bool>,
    pub archived: Option<bool>,
    /// `Some(None)` unmutes.
    pub muted_until: Option<Option<OffsetDateTime>>,
    /// Whether pushes for the chat's messages show who sent what.
    pub previews: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum PrefsEvent {
    ChatPinned(ChatPinned),
    ChatArchived(ChatArchived),
    ChatMuted(ChatMuted),
    ChatPreviewsSet(ChatPreviewsSet),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatPinned {
    pub user: Uuid,
    pub chat_id: Uuid,
    pub pinned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatArchived {
    pub user: Uuid,
    pub chat_id: Uuid,
    pub archived: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMuted {
    pub user: Uuid,
    pub chat_id: Uuid,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
}

/// Whether the user's pushes for the chat's messages show who sent what; without, a
/// push says only that something came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatPreviewsSet {
    pub user: Uuid,
    pub chat_id: Uuid,
    pub previews: bool,
}

impl DomainEvent for PrefsEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ChatPinned(_) => "ChatPinned",
            Self::ChatArchived(_) => "ChatArchived",
            Self::ChatMuted(_) => "ChatMuted",
            Self::ChatPreviewsSet(_) => "ChatPreviewsSet",
        }
    }

    fn from_payload<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Result<Self, D::Error> {
        match event_type {
            "ChatPinned" => ChatPinned::deserialize(payload).map(Self::ChatPinned),
            "ChatArchived" => ChatArchived::deserialize(payload).map(Self::ChatArchived),
            "ChatMuted" => ChatMuted::deserialize(payload).map(Self::ChatMuted),
            "ChatPreviewsSet" => ChatPreviewsSet::deserialize(payload).map(Self::ChatPreviewsSet),
            other => Err(serde::de::Error::custom(format!(
                "{other} is not a chat settings event"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrefsError {
    #[error("at most {MAX_PINNED} chats can be pinned")]
    TooManyPinned,
    #[error("the actor is unknown")]
    NoActor,
}

/// What deciding needs: the pinned chats (archive and mute have no rule across chats).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatPrefs {
    pub pinned: Vec<Uuid>,
}

impl Aggregate for ChatPrefs {
    const KIND: &'static str = "chatprefs";
    type Command = ChangeChatSettings;
    type Event = PrefsEvent;
    type Error = PrefsError;

    fn decide(
        &self,
        change: &ChangeChatSettings,
        context: &Context,
    ) -> Result<Vec<PrefsEvent>, PrefsError> {
        let user = context.actor.ok_or(PrefsError::NoActor)?;
        let chat_id = change.chat_id;
        let mut events = Vec::new();
        if let Some(pinned) = change.pinned {
            let is_pinned = self.pinned.contains(&chat_id);
            if pinned && !is_pinned && self.pinned.len() >= MAX_PINNED {
                return Err(PrefsError::TooManyPinned);
            }
            if pinned != is_pinned {
                events.push(PrefsEvent::ChatPinned(ChatPinned {
                    user,
                    chat_id,
                    pinned,
                }));
            }
        }
        // Archive, mute and previews have no state to check against: the event is the
        // setting.
        if let Some(archived) = change.archived {
            events.push(PrefsEvent::ChatArchived(ChatArchived {
                user,
                chat_id,
                archived,
            }));
        }
        if let Some(until) = change.muted_until {
            events.push(PrefsEvent::ChatMuted(ChatMuted {
                user,
                chat_id,
                until,
            }));
        }
        if let Some(previews) = change.previews {
            events.push(PrefsEvent::ChatPreviewsSet(ChatPreviewsSet {
                user,
                chat_id,
                previews,
            }));
        }
        Ok(events)
    }

    fn evolve(mut self, event: &PrefsEvent) -> Self {
        if let PrefsEvent::ChatPinned(pin) = event {
            self.pinned.retain(|chat| *chat != pin.chat_id);
            if pin.pinned {
                self.pinned.push(pin.chat_id);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use time::macros::datetime;

    use super::*;

    fn by() -> Context {
        Context {
            now: datetime!(2026-11-26 12:00 UTC),
            actor: Some(Uuid::from_u128(1)),
        }
    }

    fn pin(chat: u128, pinned: bool) -> ChangeChatSettings {
        ChangeChatSettings {
            chat_id: Uuid::from_u128(chat),
            pinned: Some(pinned),
            ..ChangeChatSettings::default()
        }
    }

    #[test]
    fn at_most_three_pinned_and_pinning_twice_changes_nothing() {
        let mut state = ChatPrefs::default();
        for chat in 1..=3 {
            for event in state.decide(&pin(chat, true), &by()).unwrap() {
                state = state.evolve(&event);
            }
        }
        assert_eq!(
            state.decide(&pin(4, true), &by()),
            Err(PrefsError::TooManyPinned)
        );
        assert_eq!(state.decide(&pin(2, true), &by()), Ok(vec![]));
        let unpinned = state.decide(&pin(2, false), &by()).unwrap();
        state = unpinned.iter().fold(state, |s, e| s.evolve(e));
        assert_eq!(state.decide(&pin(4, true), &by()).unwrap().len(), 1);
    }
}
