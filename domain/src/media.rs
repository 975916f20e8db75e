//! A media item: bytes a user uploaded (an image, a voice note, a video, a document),
//! recorded once they are stored. The API derives its id from its owner and its bytes'
//! hash, so the same bytes uploaded twice by one user are one item, recorded once.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Context, DomainEvent};

pub const MEDIA_KIND: &str = "media";

/// How long a share keeps an item from collection, whatever the read models show: far
/// longer than a send takes from its share to its message.
pub const SHARE_RESERVES: time::Duration = time::Duration::minutes(10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaUploaded {
    pub media_id: Uuid,
    pub owner: Uuid,
    /// `image`, `voice`, `video` or `document`.
    pub kind: String,
    /// Taken from the bytes, not from the client.
    pub content_type: String,
    pub size: u64,
    /// SHA-256 of the bytes as uploaded, in hex.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// A document's page count, where it was cheap to learn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    /// The blob store key of the bytes served (for an image, re-encoded without
    /// metadata).
    pub key: String,
    /// Their size, which differs from `size` where they were re-encoded.
    pub stored_size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_key: Option<String>,
    /// A tiny blurred image as a `data:` URL, to show while the real one loads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// The file's name as the uploader gave it (v2), shown and used for downloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub uploaded_at: OffsetDateTime,
}

/// An item nothing referred to a day after its upload was collected: it is served no
/// more, and its bytes are deleted unless something turns out to refer to it after all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaCollected {
    pub media_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub collected_at: OffsetDateTime,
}

/// The owner attached the item to something that will refer to it: a message to a
/// chat, a group's avatar (with the group's id), their profile photo (no chat). Recorded
/// before that reference, so that a collection decided on read models that do not show
/// it yet fails its concurrency check, or sees the share and waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaShared {
    pub media_id: Uuid,
    pub by: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub shared_at: OffsetDateTime,
}

/// The bytes of a collected item were deleted: it cannot be restored any more, only
/// uploaded again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaPurged {
    pub media_id: Uuid,
    /// The blob store keys deleted: the bytes and the thumbnail of the recording that
    /// was collected.
    pub keys: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub purged_at: OffsetDateTime,
}

// One upload per item: the size of the rare variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum MediaEvent {
    MediaUploaded(MediaUploaded),
    MediaCollected(MediaCollected),
    MediaPurged(MediaPurged),
    MediaShared(MediaShared),
}

impl DomainEvent for MediaEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::MediaUploaded(_) => "MediaUploaded",
            Self::MediaCollected(_) => "MediaCollected",
            Self::MediaPurged(_) => "MediaPurged",
            Self::MediaShared(_) => "MediaShared",
        }
    }

    fn from_payload<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Result<Self, D::Error> {
        match event_type {
            "MediaUploaded" => MediaUploaded::deserialize(payload).map(Self::MediaUploaded),
            "MediaCollected" => MediaCollected::deserialize(payload).map(Self::MediaCollected),
            "MediaPurged" => MediaPurged::deserialize(payload).map(Self::MediaPurged),
            "MediaShared" => MediaShared::deserialize(payload).map(Self::MediaShared),
            other => Err(serde::de::Error::custom(format!(
                "{other} is not a media event"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("only the owner records an upload")]
    NotOwner,
    #[error("no such media item")]
    NotFound,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCommand {
    /// Records an upload whose bytes are stored (again, after a collection).
    Record(MediaUploaded),
    /// Collects an unreferenced item; one shared in the last [`SHARE_RESERVES`] is kept.
    Collect,
    /// The owner attaches the live item to a message, a group or their profile.
    Share { by: Uuid, chat_id: Option<Uuid> },
    /// Undoes a collection that something turned out to refer to, while the item's bytes
    /// are still stored: the item as uploaded is recorded again. Anything else (never
    /// recorded, live, purged) stays as it is.
    Restore,
    /// Records that a collected item's bytes are to be deleted; an item restored or
    /// uploaded again since its collection is left as it is.
    Purge,
}

/// The item, once recorded, and whether it has been collected since.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Media {
    pub uploaded: Option<MediaUploaded>,
    pub collected: bool,
    /// Collected, and its bytes deleted.
    pub purged: bool,
    /// When its owner last attached it to something.
    pub last_shared_at: Option<OffsetDateTime>,
}

impl Media {
    /// The item, if it is recorded and not collected.
    pub fn live(&self) -> Option<&MediaUploaded> {
        self.uploaded.as_ref().filter(|_| !self.collected)
    }
}

impl Aggregate for Media {
    const KIND: &'static str = MEDIA_KIND;
    type Command = MediaCommand;
    type Event = MediaEvent;
    type Error = MediaError;

    /// Recording the same live item again changes nothing: its bytes were the same.
    /// Collecting twice changes nothing either.
    fn decide(
        &self,
        command: &MediaCommand,
        context: &Context,
    ) -> Result<Vec<MediaEvent>, MediaError> {
        match command {
            MediaCommand::Record(upload) => {
                if context.actor != Some(upload.owner) {
                    return Err(MediaError::NotOwner);
                }
                if self.live().is_some() {
                    return Ok(Vec::new());
                }
                Ok(vec![MediaEvent::MediaUploaded(upload.clone())])
            }
            MediaCommand::Collect => {
                let Some(uploaded) = &self.uploaded else {
                    return Err(MediaError::NotFound);
                };
                let reserved = self
                    .last_shared_at
                    .is_some_and(|at| at > context.now - SHARE_RESERVES);
                if self.collected || reserved {
                    return Ok(Vec::new());
                }
                Ok(vec![MediaEvent::MediaCollected(MediaCollected {
                    media_id: uploaded.media_id,
                    collected_at: context.now,
                })])
            }
            MediaCommand::Share { by, chat_id } => {
                let item = self.live().ok_or(MediaError::NotFound)?;
                if item.owner != *by {
                    return Err(MediaError::NotOwner);
                }
                Ok(vec![MediaEvent::MediaShared(MediaShared {
                    media_id: item.media_id,
                    by: *by,
                    chat_id: *chat_id,
                    shared_at: context.now,
                })])
            }
            MediaCommand::Restore => match &self.uploaded {
                Some(uploaded) if self.collected && !self.purged => {
                    Ok(vec![MediaEvent::MediaUploaded(uploaded.clone())])
                }
                _ => Ok(Vec::new()),
            },
            MediaCommand::Purge => match &self.uploaded {
                None => Err(MediaError::NotFound),
                Some(_) if !self.collected || self.purged => Ok(Vec::new()),
                Some(uploaded) => Ok(vec![MediaEvent::MediaPurged(MediaPurged {
                    media_id: uploaded.media_id,
                    keys: std::iter::once(uploaded.key.clone())
                        .chain(uploaded.thumbnail_key.clone())
                        .collect(),
                    purged_at: context.now,
                })]),
            },
        }
    }

    fn evolve(mut self, event: &MediaEvent) -> Self {
        match event {
            MediaEvent::MediaUploaded(uploaded) => {
                if self.live().is_none() {
                    self.uploaded = Some(uploaded.clone());
                    self.collected = false;
                    self.purged = false;
                }
            }
            MediaEvent::MediaCollected(_) => self.collected = true,
            MediaEvent::MediaPurged(_) => self.purged = true,
            MediaEvent::MediaShared(shared) => self.last_shared_at = Some(shared.shared_at),
        }
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use time::macros::datetime;

    use super::*;

    fn upload(owner: u128) -> MediaUploaded {
        MediaUploaded {
            media_id: Uuid::from_u128(9),
            owner: Uuid::from_u128(owner),
            kind: "image".into(),
            content_type: "image/png".into(),
            size: 10,
            sha256: "00".repeat(32),
            width: Some(1),
            height: Some(1),
            duration_ms: None,
            pages: None,
            key: "media/x".into(),
            stored_size: 9,
            thumbnail_key: None,
            placeholder: None,
            file_name: None,
            uploaded_at: datetime!(2026-11-26 12:00 UTC),
        }
    }

    fn by(actor: u128) -> Context {
        Context {
            now: datetime!(2026-11-26 12:00 UTC),
            actor: Some(Uuid::from_u128(actor)),
        }
    }

    #[test]
    fn an_upload_is_recorded_once_and_only_by_its_owner() {
        let record = MediaCommand::Record(upload(1));
        let state = Media::default();
        let events = state.decide(&record, &by(1)).unwrap();
        assert_eq!(events.len(), 1);
        let state = state.evolve(&events[0]);
        assert_eq!(state.decide(&record, &by(1)), Ok(vec![]));
        assert_eq!(
            Media::default().decide(&record, &by(2)),
            Err(MediaError::NotOwner)
        );
    }

    #[test]
    fn a_collected_item_is_gone_until_the_same_bytes_come_again() {
        let record = MediaCommand::Record(upload(1));
        assert_eq!(
            Media::default().decide(&MediaCommand::Collect, &by(1)),
            Err(MediaError::NotFound)
        );
        let state = Media::replay(&Media::default().decide(&record, &by(1)).unwrap());
        let collected = state.decide(&MediaCommand::Collect, &by(1)).unwrap();
        let state = collected.iter().fold(state, |s, e| s.evolve(e));
        assert_eq!(state.live(), None);
        assert_eq!(state.decide(&MediaCommand::Collect, &by(1)), Ok(vec![]));
        let again = state.decide(&record, &by(1)).unwrap();
        assert_eq!(again.len(), 1);
        assert!(
            again
                .iter()
                .fold(state, |s, e| s.evolve(e))
                .live()
                .is_some()
        );
    }

    #[test]
    fn a_collection_is_undone_as_the_item_was_uploaded() {
        let record = MediaCommand::Record(upload(1));
        assert_eq!(
            Media::default().decide(&MediaCommand::Restore, &by(1)),
            Ok(vec![]),
            "nothing to restore"
        );
        let state = Media::replay(&Media::default().decide(&record, &by(1)).unwrap());
        assert_eq!(state.decide(&MediaCommand::Restore, &by(1)), Ok(vec![]));
        let collected = state.decide(&MediaCommand::Collect, &by(1)).unwrap();
        let state = collected.iter().fold(state, |s, e| s.evolve(e));
        // The system restores, not the owner.
        let system = Context {
            actor: None,
            ..by(1)
        };
        let restored = state.decide(&MediaCommand::Restore, &system).unwrap();
        assert_eq!(restored, vec![MediaEvent::MediaUploaded(upload(1))]);
        let state = restored.iter().fold(state, |s, e| s.evolve(e));
        assert_eq!(state.live(), Some(&upload(1)));
    }

    #[test]
    fn a_purged_item_cannot_be_restored_and_a_restored_one_is_not_purged() {
        let record = MediaCommand::Record(upload(1));
        let system = Context {
            actor: None,
            ..by(1)
        };
        let state = Media::replay(&Media::default().decide(&record, &by(1)).unwrap());
        assert_eq!(
            state.decide(&MediaCommand::Purge, &system),
            Ok(vec![]),
            "live"
        );
        let state = Media::replay(
            &[
                Media::default().decide(&record, &by(1)).unwrap(),
                state.decide(&MediaCommand::Collect, &system).unwrap(),
            ]
            .concat(),
        );
        let purged = state.decide(&MediaCommand::Purge, &system).unwrap();
        assert_eq!(purged.len(), 1);
        let gone = purged.iter().fold(state.clone(), |s, e| s.evolve(e));
        assert_eq!(gone.decide(&MediaCommand::Restore, &system), Ok(vec![]));
        assert_eq!(gone.decide(&MediaCommand::Purge, &system), Ok(vec![]));
        assert_eq!(
            gone.decide(&record, &by(1)).unwrap().len(),
            1,
            "uploaded again"
        );
        let restored = state.decide(&MediaCommand::Restore, &system).unwrap();
        let back = restored.iter().fold(state, |s, e| s.evolve(e));
        assert_eq!(back.decide(&MediaCommand::Purge, &system), Ok(vec![]));
    }

    #[test]
    fn a_share_keeps_an_item_from_collection_for_a_while() {
        let record = MediaCommand::Record(upload(1));
        let share = MediaCommand::Share {
            by: Uuid::from_u128(1),
            chat_id: Some(Uuid::from_u128(9)),
        };
        let state = Media::replay(&Media::default().decide(&record, &by(1)).unwrap());
        let not_owner = MediaCommand::Share {
            by: Uuid::from_u128(2),
            chat_id: None,
        };
        assert_eq!(state.decide(&not_owner, &by(2)), Err(MediaError::NotOwner));
        let shared = state.decide(&share, &by(1)).unwrap();
        let state = shared.iter().fold(state, |s, e| s.evolve(e));
        let system = Context {
            actor: None,
            ..by(1)
        };
        assert_eq!(state.decide(&MediaCommand::Collect, &system), Ok(vec![]));
        let later = Context {
            now: system.now + SHARE_RESERVES + time::Duration::SECOND,
            ..system
        };
        let collected = state.decide(&MediaCommand::Collect, &later).unwrap();
        assert_eq!(collected.len(), 1);
        let gone = collected.iter().fold(state, |s, e| s.evolve(e));
        assert_eq!(gone.decide(&share, &by(1)), Err(MediaError::NotFound));
    }
}
