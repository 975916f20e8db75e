//! The user account: registration and profile.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Claim, Context, DomainEvent};

/// A public, unique user name: 3 to 32 characters of `a-z`, `0-9` and `_`, starting with
/// a letter. Input is trimmed and lowercased first, so handles are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Handle(String);

impl Handle {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 32;

    pub fn parse(input: &str) -> Result<Self, HandleError> {
        let normalized = input.trim().to_ascii_lowercase();
        let len = normalized.chars().count();
        if len < Self::MIN_LEN {
            return Err(HandleError::TooShort);
        }
        if len > Self::MAX_LEN {
            return Err(HandleError::TooLong);
        }
        if !normalized.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(HandleError::MustStartWithLetter);
        }
        if let Some(bad) = normalized
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
        {
            return Err(HandleError::InvalidCharacter(bad));
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Handle {
    type Error = HandleError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Handle> for String {
    fn from(handle: Handle) -> Self {
        handle.0
    }
}

impl std::fmt::Display for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    #[error("a handle has at least {} characters", Handle::MIN_LEN)]
    TooShort,
    #[error("a handle has at most {} characters", Handle::MAX_LEN)]
    TooLong,
    #[error("a handle starts with a letter")]
    MustStartWithLetter,
    #[error("a handle may not contain {0:?}; use a-z, 0-9 and _")]
    InvalidCharacter(char),
}

/// Text shown for a person: trimmed, non-empty, no control characters, bounded length.
fn clean_text(input: &str, max_chars: usize, allow_empty: bool) -> Result<String, TextError> {
    let trimmed = input.trim();
    if trimmed.is_empty() && !allow_empty {
        return Err(TextError::Blank);
    }
    if trimmed.chars().count() > max_chars {
        return Err(TextError::TooLong { max: max_chars });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    Ok(trimmed.to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("may not be blank")]
    Blank,
    #[error("may have at most {max} characters")]
    TooLong { max: usize },
    #[error("may not contain control characters")]
    ControlCharacter,
}

/// The name a user shows to others: 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(input: &str) -> Result<Self, TextError> {
        clean_text(input, Self::MAX_CHARS, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = TextError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DisplayName> for String {
    fn from(name: DisplayName) -> Self {
        name.0
    }
}

/// A short text about the user: up to 140 characters, may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct About(String);

impl About {
    pub const MAX_CHARS: usize = 140;

    pub fn parse(input: &str) -> Result<Self, TextError> {
        clean_text(input, Self::MAX_CHARS, true).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for About {
    type Error = TextError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<About> for String {
    fn from(about: About) -> Self {
        about.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    Register(Register),
    ChangeProfile(ChangeProfile),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub user_id: Uuid,
    pub handle: Handle,
    pub display_name: DisplayName,
    pub about: About,
}

/// Fields left `None` stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeProfile {
    pub display_name: Option<DisplayName>,
    pub about: Option<About>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum UserEvent {
    UserRegistered(UserRegistered),
    ProfileChanged(ProfileChanged),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub handle: Handle,
    pub display_name: DisplayName,
    pub about: About,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileChanged {
    pub user_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<DisplayName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<About>,
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::UserRegistered(_) => "UserRegistered",
            Self::ProfileChanged(_) => "ProfileChanged",
        }
    }

    fn from_payload<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Result<Self, D::Error> {
        match event_type {
            "UserRegistered" => UserRegistered::deserialize(payload).map(Self::UserRegistered),
            "ProfileChanged" => ProfileChanged::deserialize(payload).map(Self::ProfileChanged),
            other => Err(serde::de::Error::custom(format!(
                "{other} is not a user event"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("this account is already registered")]
    AlreadyRegistered,
    #[error("no such account")]
    NotFound,
}

/// What deciding on a user needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum User {
    #[default]
    Unregistered,
    Active(Profile),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub user_id: Uuid,
    pub handle: Handle,
    pub display_name: DisplayName,
    pub about: About,
    pub registered_at: OffsetDateTime,
}

impl Aggregate for User {
    const KIND: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn decide(
        &self,
        command: &UserCommand,
        context: &Context,
    ) -> Result<Vec<UserEvent>, UserError> {
        match (self, command) {
            (Self::Unregistered, UserCommand::Register(register)) => {
                Ok(vec![UserEvent::UserRegistered(UserRegistered {
                    user_id: register.user_id,
                    handle: register.handle.clone(),
                    display_name: register.display_name.clone(),
                    about: register.about.clone(),
                    registered_at: context.now,
                })])
            }
            (Self::Active(profile), UserCommand::Register(register)) => {
                // A retried registration with the same data is not an error.
                if profile.handle == register.handle
                    && profile.display_name == register.display_name
                    && profile.about == register.about
                {
                    Ok(Vec::new())
                } else {
                    Err(UserError::AlreadyRegistered)
                }
            }
            (Self::Unregistered, UserCommand::ChangeProfile(_)) => Err(UserError::NotFound),
            (Self::Active(profile), UserCommand::ChangeProfile(change)) => {
                let display_name = change
                    .display_name
                    .clone()
                    .filter(|name| *name != profile.display_name);
                let about = change.about.clone().filter(|about| *about != profile.about);
                if display_name.is_none() && about.is_none() {
                    return Ok(Vec::new());
                }
                Ok(vec![UserEvent::ProfileChanged(ProfileChanged {
                    user_id: profile.user_id,
                    display_name,
                    about,
                })])
            }
        }
    }

    fn evolve(self, event: &UserEvent) -> Self {
        match (self, event) {
            (Self::Unregistered, UserEvent::UserRegistered(registered)) => Self::Active(Profile {
                user_id: registered.user_id,
                handle: registered.handle.clone(),
                display_name: registered.display_name.clone(),
                about: registered.about.clone(),
                registered_at: registered.registered_at,
            }),
            (Self::Active(mut profile), UserEvent::ProfileChanged(changed)) => {
                if let Some(name) = &changed.display_name {
                    profile.display_name = name.clone();
                }
                if let Some(about) = &changed.about {
                    profile.about = about.clone();
                }
                Self::Active(profile)
            }
            // Events that cannot follow this state were never decided by it; ignoring
            // them keeps evolve total.
            (state, _) => state,
        }
    }

    fn claims(events: &[UserEvent]) -> Vec<Claim> {
        events
            .iter()
            .filter_map(|event| match event {
                UserEvent::UserRegistered(registered) => Some(Claim {
                    kind: HANDLE_CLAIM,
                    key: registered.handle.as_str().to_owned(),
                    owner: registered.user_id,
                }),
                UserEvent::ProfileChanged(_) => None,
            })
            .collect()
    }
}

/// The claim kind that makes handles unique.
pub const HANDLE_CLAIM: &str = "handle";

#[cfg(test)]
mod tests;
