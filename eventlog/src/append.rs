//! Appending: one event as a plain publish, several as one atomic batch (ADR-50).

use async_nats::HeaderMap;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use bytes::Bytes;
use natter_schema::Envelope;
use natter_schema::envelope::{EVENT_TYPE_HEADER, SCHEMA_VERSION_HEADER};

use crate::{AppendError, AppendErrorKind, EventLog};

/// One event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub subject: String,
    /// The last stream sequence of `expected_subject` (by default this event's own
    /// subject) that this append was decided on; `Some(0)` means that subject must be
    /// empty. `None` appends unconditionally.
    pub expected_sequence: Option<u64>,
    /// Another subject whose last sequence `expected_sequence` is checked against: an
    /// append to one subject guarded by the state of another (messages of a chat by its
    /// membership).
    pub expected_subject: Option<String>,
    /// A `Nats-Msg-Id` of the caller's, stable across retries of one request (a client's
    /// id for a send, say). Without it, an append with no expectation is deduplicated
    /// by its event id.
    pub dedupe_id: Option<String>,
    pub envelope: Envelope,
}

/// The stream sequences the events were stored at, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub sequences: Vec<u64>,
    /// The server already had these event ids (inside its deduplication window) and stored
    /// nothing new; the sequences are those of the earlier append.
    pub duplicate: bool,
}

impl Appended {
    /// The sequence of the last event: a consistency token for read-your-writes.
    pub fn last_sequence(&self) -> u64 {
        self.sequences.last().copied().unwrap_or(0)
    }
}

impl EventLog {
    /// Appends the events all or nothing. Every `expected_sequence` is checked before
    /// anything is stored; the event ids deduplicate a retried append.
    pub async fn append(&self, events: &[NewEvent]) -> Result<Appended, AppendError> {
        let result = match events {
            [] => Ok(Appended {
                sequences: Vec::new(),
                duplicate: false,
            }),
            [event] => self.append_one(event).await,
            _ => self.append_batch(events).await,
        };
        match result {
            Err(error)
                if matches!(
                    error.kind(),
                    AppendErrorKind::Conflict | AppendErrorKind::Duplicate
                ) =>
            {
                // The server checks expectations before duplicates, so a retried append
                // that had in fact been stored looks like a conflict. Tell them apart.
                match self.find_stored(events).await {
                    Some(appended) => Ok(appended),
                    None => Err(error),
                }
            }
            other => other,
        }
    }

    /// If the batch's last event is already in the log (after the expectation on its
    /// subject), the whole batch is: atomic batches are stored whole and contiguous.
    async fn find_stored(&self, events: &[NewEvent]) -> Option<Appended> {
        let last = events.last()?;
        // Without an expectation on its subject, the whole subject is searched: only a
        // retried unconditional batch comes here, and rarely.
        let after = events
            .iter()
            .filter(|event| event.subject == last.subject)
            .find_map(|event| event.expected_sequence)
            .unwrap_or(0);
        let stored = self.load(&last.subject, after).await.ok()?;
        let found = stored
            .iter()
            .find(|event| event.envelope.event_id == last.envelope.event_id)?;
        let count = events.len() as u64;
        Some(Appended {
            sequences: (found.sequence + 1 - count..=found.sequence).collect(),
            duplicate: true,
        })
    }

    async fn append_one(&self, event: &NewEvent) -> Result<Appended, AppendError> {
        let (headers, payload) = encode(event, event.expected_sequence.is_none())?;
        let ack = self
            .js
            .publish_with_headers(event.subject.clone(), headers, payload)
            .await
            .map_err(publish_error)?
            .await
            .map_err(publish_error)?;
        Ok(Appended {
            sequences: vec![ack.sequence],
            duplicate: ack.duplicate,
        })
    }

    /// All but the last message go out as plain publishes; the last carries
    /// `Nats-Batch-Commit` and alone is acknowledged, for the whole batch.
    async fn append_batch(&self, events: &[NewEvent]) -> Result<Appended, AppendError> {
        let batch_id = uuid::Uuid::now_v7().simple().to_string();
        let last = events.len() - 1;
        let dedupe = events.iter().all(|event| event.expected_sequence.is_none());
        let mut commit = None;
        for (index, event) in events.iter().enumerate() {
            let (mut headers, payload) = encode(event, dedupe)?;
            headers.insert("Nats-Batch-Id", batch_id.as_str());
            headers.insert("Nats-Batch-Sequence", (index + 1).to_string().as_str());
            if index == last {
                headers.insert("Nats-Batch-Commit", "1");
                commit = Some(
                    self.js
                        .publish_with_headers(event.subject.clone(), headers, payload)
                        .await
                        .map_err(publish_error)?,
                );
            } else {
                self.client
                    .publish_with_headers(event.subject.clone(), headers, payload)
                    .await
                    .map_err(|e| AppendError::new(AppendErrorKind::Other, e.to_string()))?;
            }
        }
        let Some(commit) = commit else {
            return Err(AppendError::new(AppendErrorKind::Other, "empty batch"));
        };
        let ack = commit.await.map_err(publish_error)?;
        let count = events.len() as u64;
        if ack.batch_size.is_some_and(|size| size != count) {
            return Err(AppendError::new(
                AppendErrorKind::Other,
                format!("batch of {count} acknowledged as {:?}", ack.batch_size),
            ));
        }
        // An atomic batch is stored contiguously, ending at the acknowledged sequence.
        let first = ack.sequence + 1 - count;
        Ok(Appended {
            sequences: (first..=ack.sequence).collect(),
            duplicate: ack.duplicate,
        })
    }
}

/// The message of one event. `dedupe` adds `Nats-Msg-Id`: needed only where no event of
/// the append carries an expectation, because an expectation already makes a retry fail
/// (and [`EventLog::append`] then recognises its own stored event), beyond the server's
/// deduplication window and without the server's cost of tracking ids.
fn encode(event: &NewEvent, dedupe: bool) -> Result<(HeaderMap, Bytes), AppendError> {
    let payload = serde_json::to_vec(&event.envelope)
        .map_err(|e| AppendError::new(AppendErrorKind::Other, e.to_string()))?;
    let mut headers = HeaderMap::new();
    if let Some(id) = &event.dedupe_id {
        headers.insert("Nats-Msg-Id", id.as_str());
    } else if dedupe {
        headers.insert("Nats-Msg-Id", event.envelope.event_id.to_string().as_str());
    }
    headers.insert(EVENT_TYPE_HEADER, event.envelope.event_type.as_str());
    headers.insert(
        SCHEMA_VERSION_HEADER,
        event.envelope.schema_version.to_string().as_str(),
    );
    if let Some(expected) = event.expected_sequence {
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            expected.to_string().as_str(),
        );
        if let Some(subject) = &event.expected_subject {
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence-Subject",
                subject.as_str(),
            );
        }
    }
    Ok((headers, Bytes::from(payload)))
}

/// JetStream's error code for an atomic batch whose message id it has seen already.
const BATCH_DUPLICATE_MESSAGE_ID: u64 = 10201;

fn publish_error(error: PublishError) -> AppendError {
    let server_code = std::error::Error::source(&error)
        .and_then(|source| source.downcast_ref::<async_nats::jetstream::Error>())
        .map(|server| server.error_code().0);
    let kind = match error.kind() {
        PublishErrorKind::WrongLastSequence => AppendErrorKind::Conflict,
        PublishErrorKind::MaxPayloadExceeded => AppendErrorKind::TooLarge,
        PublishErrorKind::TimedOut => AppendErrorKind::Timeout,
        _ if server_code == Some(BATCH_DUPLICATE_MESSAGE_ID) => AppendErrorKind::Duplicate,
        _ => AppendErrorKind::Other,
    };
    AppendError::new(kind, error.to_string())
}
