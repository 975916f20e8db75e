//! The user account: registration, profile, password, privacy, blocks and deletion.

use serde::{Deserialize, Serialize};

pub use crate::text::TextError;
use crate::text::clean_text;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Claim, ClaimAction, Context, DomainEvent};

/// The aggregate kind of users.
pub const USER_KIND: &str = "user";

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
}

crate::text::text_value!(Handle, HandleError);

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

/// The name a user shows to others: 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(input: &str) -> Result<Self, TextError> {
        clean_text(input, Self::MAX_CHARS, false).map(Self)
    }
}

crate::text::text_value!(DisplayName, TextError);

/// A short text about the user: up to 140 characters, may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct About(String);

impl About {
    pub const MAX_CHARS: usize = 140;

    pub fn parse(input: &str) -> Result<Self, TextError> {
        clean_text(input, Self::MAX_CHARS, true).map(Self)
    }
}

crate::text::text_value!(About, TextError);

/// An E.164 phone number: `+` and 8 to 15 digits. Spaces, dashes, dots and brackets in
/// the input are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let compact: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let Some(digits) = compact.strip_prefix('+') else {
            return Err(PhoneError);
        };
        let valid = (8..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0');
        if valid {
            Ok(Self(compact))
        } else {
            Err(PhoneError)
        }
    }
}

crate::text::text_value!(PhoneNumber, PhoneError);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a phone number is + and 8 to 15 digits, in international (E.164) form")]
pub struct PhoneError;

/// A password as typed: 8 to 128 characters. Never printed, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(input: &str) -> Result<Self, PasswordError> {
        let chars = input.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a password has at least {} characters", Password::MIN_CHARS)]
    TooShort,
    #[error("a password has at most {} characters", Password::MAX_CHARS)]
    TooLong,
}

/// A password hash in PHC string form (argon2id). Hashing happens outside the domain;
/// the domain only keeps and compares what it is given.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

/// Who may see one piece of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Everyone,
    Contacts,
    Nobody,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Everyone => "everyone",
            Self::Contacts => "contacts",
            Self::Nobody => "nobody",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privacy {
    pub last_seen: Visibility,
    pub profile_photo: Visibility,
    pub about: Visibility,
    pub read_receipts: bool,
}

impl Default for Privacy {
    fn default() -> Self {
        Self {
            last_seen: Visibility::Everyone,
            profile_photo: Visibility::Everyone,
            about: Visibility::Everyone,
            read_receipts: true,
        }
    }
}

/// How many users one account may block.
pub const MAX_BLOCKED: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    Register(Register),
    ChangeProfile(ChangeProfile),
    /// A media item of the user's own as their photo, or none. The caller has checked
    /// that the item is an image the user uploaded.
    ChangePhoto {
        media_id: Option<Uuid>,
    },
    ChangePassword(ChangePassword),
    /// Every session of the account ends, the current one included: the account's
    /// session epoch moves on, exempting none.
    SignOutEverywhere,
    ChangePrivacy(ChangePrivacy),
    Block {
        user_id: Uuid,
    },
    Unblock {
        user_id: Uuid,
    },
    Delete(DeleteAccount),
    /// The user's last connection closed at `at`; an older time than the one recorded
    /// changes nothing.
    RecordLastSeen {
        at: OffsetDateTime,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub user_id: Uuid,
    pub handle: Handle,
    pub display_name: DisplayName,
    pub about: About,
    pub phone: Option<PhoneNumber>,
    pub password_hash: PasswordHash,
}

/// Fields left `None` stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeProfile {
    pub display_name: Option<DisplayName>,
    pub about: Option<About>,
}

/// The old password has been checked by the caller. Every session but `kept_session`
/// ends: the account's session epoch moves on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePassword {
    pub password_hash: PasswordHash,
    pub kept_session: Option<Uuid>,
}

/// Fields left `None` stay as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangePrivacy {
    pub last_seen: Option<Visibility>,
    pub profile_photo: Option<Visibility>,
    pub about: Option<Visibility>,
    pub read_receipts: Option<bool>,
}

/// The caller has checked the password. The handle becomes free after the cool-down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteAccount {
    pub handle_cool_down: time::Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum UserEvent {
    UserRegistered(UserRegistered),
    ProfileChanged(ProfileChanged),
    PhotoChanged(PhotoChanged),
    PasswordChanged(PasswordChanged),
    SignedOutEverywhere(SignedOutEverywhere),
    PrivacyChanged(PrivacyChanged),
    UserBlocked(UserBlocked),
    UserUnblocked(UserUnblocked),
    AccountDeleted(AccountDeleted),
    LastSeenRecorded(LastSeenRecorded),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSeenRecorded {
    pub user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub handle: Handle,
    pub display_name: DisplayName,
    pub about: About,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneNumber>,
    /// `None` only for accounts registered before passwords existed (version 2).
    #[serde(default)]
    pub password_hash: Option<PasswordHash>,
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

/// The user's profile photo became this media item, or none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoChanged {
    pub user_id: Uuid,
    pub media_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChanged {
    pub user_id: Uuid,
    pub password_hash: PasswordHash,
    /// Sessions opened under an older epoch are over, except `kept_session`.
    pub session_epoch: u32,
    #[serde(default)]
    pub kept_session: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
}

/// Every session opened under an older epoch is over, with no exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOutEverywhere {
    pub user_id: Uuid,
    pub session_epoch: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub signed_out_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyChanged {
    pub user_id: Uuid,
    pub privacy: Privacy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBlocked {
    pub user_id: Uuid,
    pub blocked_user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub blocked_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUnblocked {
    pub user_id: Uuid,
    pub blocked_user_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDeleted {
    pub user_id: Uuid,
    pub handle: Handle,
    #[serde(with = "time::serde::rfc3339")]
    pub deleted_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub handle_available_after: OffsetDateTime,
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::UserRegistered(_) => "UserRegistered",
            Self::ProfileChanged(_) => "ProfileChanged",
            Self::PhotoChanged(_) => "PhotoChanged",
            Self::PasswordChanged(_) => "PasswordChanged",
            Self::SignedOutEverywhere(_) => "SignedOutEverywhere",
            Self::PrivacyChanged(_) => "PrivacyChanged",
            Self::UserBlocked(_) => "UserBlocked",
            Self::UserUnblocked(_) => "UserUnblocked",
            Self::AccountDeleted(_) => "AccountDeleted",
            Self::LastSeenRecorded(_) => "LastSeenRecorded",
        }
    }

    fn from_payload<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Result<Self, D::Error> {
        match event_type {
            "UserRegistered" => UserRegistered::deserialize(payload).map(Self::UserRegistered),
            "ProfileChanged" => ProfileChanged::deserialize(payload).map(Self::ProfileChanged),
            "PhotoChanged" => PhotoChanged::deserialize(payload).map(Self::PhotoChanged),
            "PasswordChanged" => PasswordChanged::deserialize(payload).map(Self::PasswordChanged),
            "SignedOutEverywhere" => {
                SignedOutEverywhere::deserialize(payload).map(Self::SignedOutEverywhere)
            }
            "PrivacyChanged" => PrivacyChanged::deserialize(payload).map(Self::PrivacyChanged),
            "UserBlocked" => UserBlocked::deserialize(payload).map(Self::UserBlocked),
            "UserUnblocked" => UserUnblocked::deserialize(payload).map(Self::UserUnblocked),
            "AccountDeleted" => AccountDeleted::deserialize(payload).map(Self::AccountDeleted),
            "LastSeenRecorded" => {
                LastSeenRecorded::deserialize(payload).map(Self::LastSeenRecorded)
            }
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
    #[error("a user cannot block themselves")]
    CannotBlockSelf,
    #[error("at most {MAX_BLOCKED} users can be blocked")]
    TooManyBlocked,
}

/// What deciding on a user needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum User {
    #[default]
    Unregistered,
    Active(Box<Profile>),
    /// Deleted accounts stay deleted; their id is never reused.
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub user_id: Uuid,
    pub handle: Handle,
    pub display_name: DisplayName,
    pub about: About,
    pub phone: Option<PhoneNumber>,
    pub password_hash: Option<PasswordHash>,
    pub registered_at: OffsetDateTime,
    pub privacy: Privacy,
    pub blocked: std::collections::BTreeSet<Uuid>,
    /// Sessions opened under an older epoch have ended (a password change, or a
    /// sign-out everywhere).
    pub session_epoch: u32,
    /// The session that changed the password, which lives on under its older epoch.
    pub epoch_exempt: Option<Uuid>,
    /// When the user's last connection closed, as last recorded.
    pub last_seen: Option<OffsetDateTime>,
    /// The media item shown as the user's photo.
    pub photo: Option<Uuid>,
}

impl Profile {
    /// Whether a session opened under `epoch` is still allowed by the account.
    pub fn admits_session(&self, session_id: Uuid, epoch: u32) -> bool {
        epoch >= self.session_epoch || self.epoch_exempt == Some(session_id)
    }
}

impl User {
    pub fn profile(&self) -> Option<&Profile> {
        match self {
            Self::Active(profile) => Some(profile),
            Self::Unregistered | Self::Deleted => None,
        }
    }
}

impl Aggregate for User {
    const KIND: &'static str = USER_KIND;
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn decide(
        &self,
        command: &UserCommand,
        context: &Context,
    ) -> Result<Vec<UserEvent>, UserError> {
        let profile = match (self, command) {
            (Self::Unregistered, UserCommand::Register(register)) => {
                return Ok(vec![UserEvent::UserRegistered(UserRegistered {
                    user_id: register.user_id,
                    handle: register.handle.clone(),
                    display_name: register.display_name.clone(),
                    about: register.about.clone(),
                    phone: register.phone.clone(),
                    password_hash: Some(register.password_hash.clone()),
                    registered_at: context.now,
                })]);
            }
            (Self::Active(_) | Self::Deleted, UserCommand::Register(_)) => {
                return Err(UserError::AlreadyRegistered);
            }
            (Self::Unregistered | Self::Deleted, _) => return Err(UserError::NotFound),
            (Self::Active(profile), _) => profile,
        };
        let user_id = profile.user_id;
        let event = match command {
            UserCommand::Register(_) => return Err(UserError::AlreadyRegistered),
            UserCommand::ChangeProfile(change) => {
                let display_name = change
                    .display_name
                    .clone()
                    .filter(|name| *name != profile.display_name);
                let about = change.about.clone().filter(|about| *about != profile.about);
                if display_name.is_none() && about.is_none() {
                    return Ok(Vec::new());
                }
                UserEvent::ProfileChanged(ProfileChanged {
                    user_id,
                    display_name,
                    about,
                })
            }
            UserCommand::ChangePhoto { media_id } => {
                if profile.photo == *media_id {
                    return Ok(Vec::new());
                }
                UserEvent::PhotoChanged(PhotoChanged {
                    user_id,
                    media_id: *media_id,
                })
            }
            UserCommand::ChangePassword(change) => UserEvent::PasswordChanged(PasswordChanged {
                user_id,
                password_hash: change.password_hash.clone(),
                session_epoch: profile.session_epoch + 1,
                kept_session: change.kept_session,
                changed_at: context.now,
            }),
            UserCommand::SignOutEverywhere => UserEvent::SignedOutEverywhere(SignedOutEverywhere {
                user_id,
                session_epoch: profile.session_epoch + 1,
                signed_out_at: context.now,
            }),
            UserCommand::ChangePrivacy(change) => {
                let current = profile.privacy;
                let privacy = Privacy {
                    last_seen: change.last_seen.unwrap_or(current.last_seen),
                    profile_photo: change.profile_photo.unwrap_or(current.profile_photo),
                    about: change.about.unwrap_or(current.about),
                    read_receipts: change.read_receipts.unwrap_or(current.read_receipts),
                };
                if privacy == current {
                    return Ok(Vec::new());
                }
                UserEvent::PrivacyChanged(PrivacyChanged { user_id, privacy })
            }
            UserCommand::Block { user_id: other } => {
                if *other == user_id {
                    return Err(UserError::CannotBlockSelf);
                }
                if profile.blocked.contains(other) {
                    return Ok(Vec::new());
                }
                if profile.blocked.len() >= MAX_BLOCKED {
                    return Err(UserError::TooManyBlocked);
                }
                UserEvent::UserBlocked(UserBlocked {
                    user_id,
                    blocked_user_id: *other,
                    blocked_at: context.now,
                })
            }
            UserCommand::Unblock { user_id: other } => {
                if !profile.blocked.contains(other) {
                    return Ok(Vec::new());
                }
                UserEvent::UserUnblocked(UserUnblocked {
                    user_id,
                    blocked_user_id: *other,
                })
            }
            UserCommand::RecordLastSeen { at } => {
                if profile.last_seen.is_some_and(|seen| seen >= *at) {
                    return Ok(Vec::new());
                }
                UserEvent::LastSeenRecorded(LastSeenRecorded { user_id, at: *at })
            }
            UserCommand::Delete(delete) => UserEvent::AccountDeleted(AccountDeleted {
                user_id,
                handle: profile.handle.clone(),
                deleted_at: context.now,
                handle_available_after: context.now + delete.handle_cool_down,
            }),
        };
        Ok(vec![event])
    }

    fn evolve(self, event: &UserEvent) -> Self {
        match (self, event) {
            (Self::Unregistered, UserEvent::UserRegistered(registered)) => {
                Self::Active(Box::new(Profile {
                    user_id: registered.user_id,
                    handle: registered.handle.clone(),
                    display_name: registered.display_name.clone(),
                    about: registered.about.clone(),
                    phone: registered.phone.clone(),
                    password_hash: registered.password_hash.clone(),
                    registered_at: registered.registered_at,
                    privacy: Privacy::default(),
                    blocked: std::collections::BTreeSet::new(),
                    session_epoch: 0,
                    epoch_exempt: None,
                    last_seen: None,
                    photo: None,
                }))
            }
            (Self::Active(_), UserEvent::AccountDeleted(_)) => Self::Deleted,
            (Self::Active(mut profile), event) => {
                match event {
                    UserEvent::ProfileChanged(changed) => {
                        if let Some(name) = &changed.display_name {
                            profile.display_name = name.clone();
                        }
                        if let Some(about) = &changed.about {
                            profile.about = about.clone();
                        }
                    }
                    UserEvent::PhotoChanged(changed) => profile.photo = changed.media_id,
                    UserEvent::PasswordChanged(changed) => {
                        profile.password_hash = Some(changed.password_hash.clone());
                        profile.session_epoch = changed.session_epoch;
                        profile.epoch_exempt = changed.kept_session;
                    }
                    UserEvent::SignedOutEverywhere(signed_out) => {
                        profile.session_epoch = signed_out.session_epoch;
                        profile.epoch_exempt = None;
                    }
                    UserEvent::PrivacyChanged(changed) => profile.privacy = changed.privacy,
                    UserEvent::UserBlocked(blocked) => {
                        profile.blocked.insert(blocked.blocked_user_id);
                    }
                    UserEvent::UserUnblocked(unblocked) => {
                        profile.blocked.remove(&unblocked.blocked_user_id);
                    }
                    UserEvent::LastSeenRecorded(seen) => profile.last_seen = Some(seen.at),
                    UserEvent::UserRegistered(_) | UserEvent::AccountDeleted(_) => {}
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
                    action: ClaimAction::Take,
                }),
                UserEvent::AccountDeleted(deleted) => Some(Claim {
                    kind: HANDLE_CLAIM,
                    key: deleted.handle.as_str().to_owned(),
                    owner: deleted.user_id,
                    action: ClaimAction::Release {
                        available_after: deleted.handle_available_after,
                    },
                }),
                _ => None,
            })
            .collect()
    }
}

/// The claim kind that makes handles unique.
pub const HANDLE_CLAIM: &str = "handle";

#[cfg(test)]
mod tests;
