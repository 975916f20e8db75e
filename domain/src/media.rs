//! A media item: bytes a user uploaded (an image, a voice note, a video, a document),
//! recorded once they are stored. The API derives its id from its owner and its bytes'
//! hash, so the same bytes uploaded twice by one user are one item, recorded once.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Context, DomainEvent};

pub const MEDIA_KIND: &str = "media";

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
    #[serde(with = "time::serde::rfc3339")]
    pub uploaded_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum MediaEvent {
    MediaUploaded(MediaUploaded),
}

impl DomainEvent for MediaEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::MediaUploaded(_) => "MediaUploaded",
        }
    }

    fn from_payload<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Result<Self, D::Error> {
        match event_type {
            "MediaUploaded" => MediaUploaded::deserialize(payload).map(Self::MediaUploaded),
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
}

/// Records an upload whose bytes are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordUpload(pub MediaUploaded);

/// The item, once recorded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Media {
    pub uploaded: Option<MediaUploaded>,
}

impl Aggregate for Media {
    const KIND: &'static str = MEDIA_KIND;
    type Command = RecordUpload;
    type Event = MediaEvent;
    type Error = MediaError;

    /// Recording the same item again changes nothing: its bytes were the same.
    fn decide(
        &self,
        command: &RecordUpload,
        context: &Context,
    ) -> Result<Vec<MediaEvent>, MediaError> {
        if context.actor != Some(command.0.owner) {
            return Err(MediaError::NotOwner);
        }
        if self.uploaded.is_some() {
            return Ok(Vec::new());
        }
        Ok(vec![MediaEvent::MediaUploaded(command.0.clone())])
    }

    fn evolve(mut self, event: &MediaEvent) -> Self {
        let MediaEvent::MediaUploaded(uploaded) = event;
        if self.uploaded.is_none() {
            self.uploaded = Some(uploaded.clone());
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
        let state = Media::default();
        let events = state.decide(&RecordUpload(upload(1)), &by(1)).unwrap();
        assert_eq!(events.len(), 1);
        let state = state.evolve(&events[0]);
        assert_eq!(state.decide(&RecordUpload(upload(1)), &by(1)), Ok(vec![]));
        assert_eq!(
            Media::default().decide(&RecordUpload(upload(1)), &by(2)),
            Err(MediaError::NotOwner)
        );
    }
}
