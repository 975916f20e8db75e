//! Event types, their current schema versions, and upcasting.
//!
//! A published event shape is never edited. To change one, add a version here and an
//! upcaster from the previous version; the domain type always has the current shape.

use natter_domain::DomainEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Every event type Natter has written, with its current schema version.
const CURRENT_VERSIONS: &[(&str, u32)] = &[
    ("ClaimMade", 1),
    ("ClaimReleased", 1),
    ("UserRegistered", 3),
    ("ProfileChanged", 1),
    ("PhotoChanged", 1),
    ("PasswordChanged", 1),
    ("SignedOutEverywhere", 1),
    ("PrivacyChanged", 1),
    ("UserBlocked", 1),
    ("UserUnblocked", 1),
    ("AccountDeleted", 1),
    ("LastSeenRecorded", 1),
    ("SessionOpened", 1),
    ("SessionRefreshed", 1),
    ("SessionRevoked", 1),
    ("PushSubscribed", 1),
    ("PushUnsubscribed", 1),
    ("DirectChatCreated", 1),
    ("GroupCreated", 1),
    ("MembersAdded", 1),
    ("MemberRemoved", 1),
    ("MemberLeft", 1),
    ("AdminChanged", 1),
    ("GroupRenamed", 1),
    ("GroupDescribed", 1),
    ("GroupAvatarChanged", 1),
    ("GroupPermissionsChanged", 1),
    ("InviteCreated", 1),
    ("InviteRevoked", 1),
    ("MemberJoined", 1),
    ("DirectChatBlockChanged", 1),
    ("MessageSent", 3),
    ("ReadMarked", 1),
    ("DeliveredMarked", 1),
    ("ChatPinned", 1),
    ("ChatArchived", 1),
    ("ChatMuted", 1),
    ("ChatPreviewsSet", 1),
    ("MessageEdited", 1),
    ("MessageDeleted", 1),
    ("ReactionSet", 1),
    ("MessageStarred", 1),
    ("MessagePinned", 1),
    ("MessageHidden", 1),
    ("MediaUploaded", 2),
    ("MediaCollected", 1),
    ("MediaPurged", 1),
    ("MediaShared", 1),
];

pub fn current_version(event_type: &str) -> Option<u32> {
    CURRENT_VERSIONS
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|(_, version)| *version)
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{event_type} has no schema version {version} (current is {current})")]
    UnknownVersion {
        event_type: String,
        version: u32,
        current: u32,
    },
    #[error("payload of {event_type} v{version} does not match its schema: {source}")]
    Payload {
        event_type: String,
        version: u32,
        source: serde_json::Error,
    },
}

/// Splits a domain event into its type, current version and payload.
pub fn encode<E: DomainEvent>(event: &E) -> Result<(&'static str, u32, Value), SchemaError> {
    let event_type = event.event_type();
    let version =
        current_version(event_type).ok_or_else(|| SchemaError::UnknownType(event_type.into()))?;
    let tagged = serde_json::to_value(event).map_err(|source| SchemaError::Payload {
        event_type: event_type.into(),
        version,
        source,
    })?;
    let payload = match tagged {
        Value::Object(mut map) => map.remove("payload").unwrap_or(Value::Null),
        other => other,
    };
    Ok((event_type, version, payload))
}

/// Builds a domain event from a stored type, version and payload, upcasting old versions.
pub fn decode<E: DomainEvent>(
    event_type: &str,
    version: u32,
    payload: &Value,
) -> Result<E, SchemaError> {
    let current =
        current_version(event_type).ok_or_else(|| SchemaError::UnknownType(event_type.into()))?;
    let payload_error = |source| SchemaError::Payload {
        event_type: event_type.into(),
        version: current,
        source,
    };
    if version == current {
        return E::from_payload(event_type, payload).map_err(payload_error);
    }
    let upcast = upcast(event_type, version, payload.clone())?;
    E::from_payload(event_type, &upcast).map_err(payload_error)
}

/// Brings a payload from `version` to the current version of its type, one step at a time.
pub fn upcast(event_type: &str, version: u32, mut payload: Value) -> Result<Value, SchemaError> {
    let current =
        current_version(event_type).ok_or_else(|| SchemaError::UnknownType(event_type.into()))?;
    if version == 0 || version > current {
        return Err(SchemaError::UnknownVersion {
            event_type: event_type.into(),
            version,
            current,
        });
    }
    for from in version..current {
        payload = upcast_step(event_type, from, payload);
    }
    Ok(payload)
}

/// One upcasting step, from `from` to `from + 1`.
fn upcast_step(event_type: &str, from: u32, mut payload: Value) -> Value {
    match (event_type, from) {
        // v1 named the display name `name` and had no `about`.
        ("UserRegistered", 1) => {
            if let Value::Object(map) = &mut payload {
                if let Some(name) = map.remove("name") {
                    map.insert("display_name".into(), name);
                }
                map.entry("about")
                    .or_insert_with(|| Value::String(String::new()));
            }
            payload
        }
        // v2 had no password (and no phone): such an account cannot log in until it
        // sets one.
        ("UserRegistered", 2) => {
            if let Value::Object(map) = &mut payload {
                map.entry("password_hash").or_insert(Value::Null);
            }
            payload
        }
        // v2 had no attachments: it reads as one without (serde's default).
        // v1 had no mentions and no forwards.
        ("MessageSent", 1) => {
            if let Value::Object(map) = &mut payload {
                map.entry("mentions")
                    .or_insert_with(|| Value::Array(Vec::new()));
                map.entry("forwarded").or_insert_with(|| Value::from(0));
            }
            payload
        }
        // MediaUploaded v1 had no file name: it reads as one without (serde's
        // default).
        _ => payload,
    }
}

/// The event appended to a claim subject: the key belongs to `owner`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimMade {
    pub owner: Uuid,
    /// For idempotency keys: a digest of the request that took the key, so that the
    /// same key sent with another request is told apart from a retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl ClaimMade {
    pub const TYPE: &'static str = "ClaimMade";
}

/// The event appended to a claim subject when its owner gives the key back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimReleased {
    pub owner: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub available_after: time::OffsetDateTime,
}

impl ClaimReleased {
    pub const TYPE: &'static str = "ClaimReleased";
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use natter_domain::user::{UserEvent, UserRegistered};

    use serde_json::json;

    use super::*;

    #[test]
    fn a_stored_version_1_message_reads_as_an_original_mentioning_nobody() {
        let stored = json!({
            "chat_id": "0190f3a1-0000-7000-8000-000000000009",
            "message_id": "0190f3a1-0000-7000-8000-000000000010",
            "sender": "0190f3a1-0000-7000-8000-000000000001",
            "client_id": "c-1",
            "body": "hello",
            "sent_at": "2026-11-26T12:00:00Z"
        });
        let event: natter_domain::chat::MessageEvent = decode("MessageSent", 1, &stored).unwrap();
        let natter_domain::chat::MessageEvent::MessageSent(sent) = event else {
            panic!("wrong variant");
        };
        assert!(sent.mentions.is_empty());
        assert_eq!((sent.forwarded, sent.reply_to_sequence), (0, None));
    }

    #[test]
    fn a_stored_version_1_registration_reads_as_the_current_shape() {
        let stored = json!({
            "user_id": "0190f3a1-0000-7000-8000-000000000001",
            "handle": "alice",
            "name": "Alice",
            "registered_at": "2026-11-26T12:00:00Z"
        });
        let event: UserEvent = decode("UserRegistered", 1, &stored).unwrap();
        let UserEvent::UserRegistered(UserRegistered {
            display_name,
            about,
            ..
        }) = event
        else {
            panic!("wrong variant");
        };
        assert_eq!(display_name.as_str(), "Alice");
        assert_eq!(about.as_str(), "");
    }

    #[test]
    fn encode_then_decode_is_identity() {
        let event: UserEvent = decode(
            "UserRegistered",
            3,
            &json!({"user_id": Uuid::nil(), "handle": "bob", "display_name": "Bob", "about": "hi",
                   "registered_at": "2026-11-26T12:00:00Z"}),
        )
        .unwrap();
        let (event_type, version, payload) = encode(&event).unwrap();
        assert_eq!((event_type, version), ("UserRegistered", 3));
        assert_eq!(
            decode::<UserEvent>(event_type, version, &payload).unwrap(),
            event
        );
    }

    #[test]
    fn unknown_types_and_versions_are_errors() {
        assert!(matches!(
            decode::<UserEvent>("Nope", 1, &json!({})),
            Err(SchemaError::UnknownType(_))
        ));
        assert!(matches!(
            decode::<UserEvent>("UserRegistered", 9, &json!({})),
            Err(SchemaError::UnknownVersion { .. })
        ));
        assert!(matches!(
            decode::<UserEvent>("ProfileChanged", 1, &json!({"user_id": 5})),
            Err(SchemaError::Payload { .. })
        ));
    }
}
