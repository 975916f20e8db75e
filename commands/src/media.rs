//! Recording uploads whose bytes are stored.

use natter_domain::media::{Media, MediaCommand, MediaEvent, MediaUploaded};
use natter_eventlog::EventLog;
use natter_schema::Metadata;

use crate::{CommandError, CommandHandler, CommandMetrics};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Rejected(#[from] natter_domain::media::MediaError),
    #[error(transparent)]
    Interrupted(#[from] crate::Interrupted),
    #[error("{0}")]
    Internal(String),
}

#[derive(Debug, Clone)]
pub struct MediaRecords {
    media: CommandHandler<Media>,
}

/// A recorded item: the one recorded now, or the one recorded earlier with the same id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub item: MediaUploaded,
    /// Whether this call recorded it (false: the same bytes were recorded before).
    pub new: bool,
    /// The consistency token for reading it back.
    pub sequence: u64,
}

impl MediaRecords {
    pub fn new(log: EventLog, metrics: CommandMetrics) -> Self {
        Self {
            media: CommandHandler::new(log, metrics),
        }
    }

    /// Records `upload`, as its owner; the same item again is found, not recorded.
    pub async fn record(
        &self,
        upload: MediaUploaded,
        metadata: Metadata,
    ) -> Result<Recorded, MediaError> {
        let id = upload.media_id.to_string();
        let metadata = Metadata {
            actor: Some(upload.owner),
            ..metadata
        };
        let executed = self
            .media
            .execute(&id, &MediaCommand::Record(upload.clone()), metadata)
            .await
            .map_err(|error| match error {
                CommandError::Rejected(rejected) => MediaError::Rejected(rejected),
                other => crate::failed(other, MediaError::Internal),
            })?;
        if !executed.events.is_empty() {
            return Ok(Recorded {
                item: upload,
                new: true,
                sequence: executed.last_sequence,
            });
        }
        // A command that changes nothing was decided on the log's newest events, which
        // the handler's cache now holds.
        let (state, sequence) = self
            .media
            .cached(&id)
            .await
            .map_err(|e| crate::failed(e, MediaError::Internal))?;
        let item = state
            .live()
            .cloned()
            .ok_or_else(|| MediaError::Internal("a recorded item without its event".into()))?;
        Ok(Recorded {
            item,
            new: false,
            sequence,
        })
    }

    /// The item as the log holds it, if it was recorded and not collected.
    pub async fn item(&self, id: uuid::Uuid) -> Result<Option<MediaUploaded>, MediaError> {
        Ok(self.state(id).await?.live().cloned())
    }

    /// The item as the handler's cache holds it, right after a command on it.
    async fn cached_item(&self, id: uuid::Uuid) -> Result<Option<MediaUploaded>, MediaError> {
        let (state, _) = self
            .media
            .cached(&id.to_string())
            .await
            .map_err(|e| crate::failed(e, MediaError::Internal))?;
        Ok(state.live().cloned())
    }

    /// The item's whole state: live, collected, purged, or never recorded. An item that
    /// is not live is looked at again at the stream leader: a replica a moment behind
    /// may not have its upload yet.
    pub async fn state(&self, id: uuid::Uuid) -> Result<Media, MediaError> {
        let (state, _) = self
            .media
            .load_found(&id.to_string(), |media| media.live().is_some())
            .await
            .map_err(|e| crate::failed(e, MediaError::Internal))?;
        Ok(state)
    }

    /// Collects the item, as the system rather than a user: whether it did (not if it
    /// was collected before, or shared lately).
    pub async fn collect(&self, id: uuid::Uuid, metadata: Metadata) -> Result<bool, MediaError> {
        self.system(id, MediaCommand::Collect, metadata)
            .await
            .map(|events| !events.is_empty())
    }

    /// Records that `by` attaches their item to something that will refer to it (in
    /// `chat_id`, or their profile): the item, if it is live and theirs.
    pub async fn share(
        &self,
        id: uuid::Uuid,
        by: uuid::Uuid,
        chat_id: Option<uuid::Uuid>,
        metadata: Metadata,
    ) -> Result<Option<MediaUploaded>, MediaError> {
        let command = MediaCommand::Share { by, chat_id };
        let metadata = Metadata {
            actor: Some(by),
            ..metadata
        };
        match self
            .media
            .execute(&id.to_string(), &command, metadata)
            .await
        {
            // The handler's cache holds the state the share was appended on.
            Ok(_) => self.cached_item(id).await,
            Err(CommandError::Rejected(_)) => Ok(None),
            Err(other) => Err(crate::failed(other, MediaError::Internal)),
        }
    }

    /// Undoes the item's collection while its bytes are stored: the item as it was
    /// recorded, if this call restored it. An item live, or purged, stays as it is.
    pub async fn restore(
        &self,
        id: uuid::Uuid,
        metadata: Metadata,
    ) -> Result<Option<MediaUploaded>, MediaError> {
        let events = self.system(id, MediaCommand::Restore, metadata).await?;
        Ok(events.into_iter().find_map(|event| match event {
            MediaEvent::MediaUploaded(item) => Some(item),
            _ => None,
        }))
    }

    /// Records that a collected item's bytes are deleted: the keys to delete, if this
    /// call recorded it. An item restored or uploaded again since stays as it is.
    pub async fn purge(
        &self,
        id: uuid::Uuid,
        metadata: Metadata,
    ) -> Result<Option<Vec<String>>, MediaError> {
        let events = self.system(id, MediaCommand::Purge, metadata).await?;
        Ok(events.into_iter().find_map(|event| match event {
            MediaEvent::MediaPurged(purged) => Some(purged.keys),
            _ => None,
        }))
    }

    /// Executes a command of the system's (the collector's), not a user's.
    async fn system(
        &self,
        id: uuid::Uuid,
        command: MediaCommand,
        metadata: Metadata,
    ) -> Result<Vec<MediaEvent>, MediaError> {
        self.media
            .execute(&id.to_string(), &command, metadata)
            .await
            .map(|executed| {
                executed
                    .events
                    .into_iter()
                    .map(|(_, event)| event)
                    .collect()
            })
            .map_err(|error| match error {
                CommandError::Rejected(rejected) => MediaError::Rejected(rejected),
                other => crate::failed(other, MediaError::Internal),
            })
    }
}
