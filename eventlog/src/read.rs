//! Reading the log with batched direct gets (ADR-31): one aggregate's events, or the
//! whole log from a sequence or a time, always in stream order. No consumer is needed.
//!
//! - `load`: one subject's events after a sequence (an aggregate, for the handler);
//! - `read`: the whole log from a sequence or a time, up to the newest event at the call;
//!   `read_matching` does the same for a subject filter, which the server applies;
//! - `last_on_subject`: the newest event of one subject (a claim's holder, say);
//! - `event_at`: the event at one sequence (a message named by its sequence).
//!
//! Every envelope read is upcast to its type's current version.
//!
//! In a replicated stream a direct get may be answered by a follower that lags the
//! leader a little: its copy of the log is a prefix of the leader's, so what it returns
//! is right, but it may stop short. (NATS 2.15 has no `min_last_seq` to refuse such an
//! answer.) A read that must see every acknowledged event up to a sequence asks the
//! leader (`STREAM.MSG.GET`, which only the leader answers) for what comes after a short
//! answer: one get that finds nothing, in the usual case. A log of one replica skips it.

use std::time::Duration;

use async_nats::{HeaderMap, Message, StatusCode};
use futures::{Stream, StreamExt};
use natter_schema::Envelope;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{EventLog, LogError};

/// How many messages one direct-get request asks for.
const PAGE: usize = 1024;
/// How long to wait for the next message of a direct-get reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// An event as the log holds it, with its place in the stream. Its envelope has been
/// upcast to the current schema version of its type.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub sequence: u64,
    pub subject: String,
    pub stored_at: OffsetDateTime,
    pub envelope: Envelope,
}

/// Where a read of the whole log starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The first stream sequence to return (1 is the beginning).
    Sequence(u64),
    /// The first event stored at or after this time.
    Time(OffsetDateTime),
}

/// What a get asked of the stream leader names.
pub(crate) enum LeaderGet<'a> {
    /// The event at a sequence.
    At(u64),
    /// The first event matching a filter at or after a sequence.
    Next(&'a str, u64),
    /// The newest event of a subject.
    Last(&'a str),
}

/// The parts of a `STREAM.MSG.GET` reply that a search by time reads.
#[derive(serde::Deserialize)]
struct LeaderReply {
    message: Option<LeaderMessage>,
    error: Option<ApiError>,
}

#[derive(serde::Deserialize)]
struct LeaderMessage {
    seq: u64,
}

#[derive(serde::Deserialize)]
struct ApiError {
    code: u16,
    #[serde(default)]
    description: String,
}

/// One page of a direct-get reply, and how many matching messages remain after it.
pub(crate) struct Page {
    pub(crate) events: Vec<StoredEvent>,
    pub(crate) pending: u64,
}

impl EventLog {
    /// Every event of one subject stored after sequence `after`, in order.
    pub async fn load(&self, subject: &str, after: u64) -> Result<Vec<StoredEvent>, LogError> {
        let mut events = Vec::new();
        let mut from = after + 1;
        loop {
            let page = self
                .direct_get(json!({"seq": from, "next_by_subj": subject, "batch": PAGE}))
                .await?;
            if let Some(last) = page.events.last() {
                from = last.sequence + 1;
            }
            let done = page.pending == 0 || page.events.is_empty();
            events.extend(page.events);
            if done {
                return Ok(events);
            }
        }
    }

    /// As [`Self::load`], with every event acknowledged before the call.
    pub async fn load_current(
        &self,
        subject: &str,
        after: u64,
    ) -> Result<Vec<StoredEvent>, LogError> {
        let mut events = self.load(subject, after).await?;
        self.read_on_at_leader(subject, &mut events, after + 1, u64::MAX, usize::MAX)
            .await?;
        Ok(events)
    }

    /// Adds to `events` (read with direct gets from `from` on) the events matching
    /// `filter` that the leader holds after them, up to `up_to` and until there are
    /// `max`: what a lagging replica left out. Nothing to add on one replica.
    async fn read_on_at_leader(
        &self,
        filter: &str,
        events: &mut Vec<StoredEvent>,
        from: u64,
        up_to: u64,
        max: usize,
    ) -> Result<(), LogError> {
        if self.config.replicas <= 1 {
            return Ok(());
        }
        while events.len() < max {
            let next = events.last().map_or(from, |last| last.sequence + 1);
            if next > up_to {
                break;
            }
            match self.leader_get(LeaderGet::Next(filter, next)).await? {
                Some(event) if event.sequence <= up_to => events.push(event),
                _ => break,
            }
        }
        Ok(())
    }

    /// One event, asked of the stream leader.
    pub(crate) async fn leader_get(
        &self,
        get: LeaderGet<'_>,
    ) -> Result<Option<StoredEvent>, LogError> {
        use async_nats::jetstream::stream::RawMessageErrorKind;
        let read_error = |e: &dyn std::fmt::Display| LogError::Read(e.to_string());
        let stream = self
            .js
            .get_stream_no_info(&self.config.stream)
            .await
            .map_err(|e| read_error(&e))?;
        let request = stream.raw_message_builder();
        let request = match get {
            LeaderGet::At(sequence) => request.sequence(sequence),
            LeaderGet::Next(filter, from) => request.sequence(from).next_by_subject(filter),
            LeaderGet::Last(subject) => request.last_by_subject(subject),
        };
        let message = match request.send().await {
            Ok(message) => message,
            Err(error) if matches!(error.kind(), RawMessageErrorKind::NoMessageFound) => {
                return Ok(None);
            }
            Err(error) => return Err(read_error(&error)),
        };
        let sequence = message.sequence;
        let envelope = decode_envelope(&message.payload)
            .map_err(|reason| LogError::Malformed { sequence, reason })?;
        Ok(Some(StoredEvent {
            sequence,
            subject: message.subject.to_string(),
            stored_at: message.time,
            envelope,
        }))
    }

    /// Up to `max` events of `subject` after `after` (one request), and how many remain.
    pub(crate) async fn read_subject_page(
        &self,
        subject: &str,
        after: u64,
        max: usize,
    ) -> Result<Page, LogError> {
        self.direct_get(json!({"seq": after + 1, "next_by_subj": subject, "batch": max.min(PAGE)}))
            .await
    }

    /// The newest event of one subject, if any, as the server that answers holds it.
    pub async fn last_on_subject(&self, subject: &str) -> Result<Option<StoredEvent>, LogError> {
        let page = self.direct_get(json!({"last_by_subj": subject})).await?;
        Ok(page.events.into_iter().next())
    }

    /// As [`Self::last_on_subject`], counting every event acknowledged before the call.
    pub async fn last_on_subject_current(
        &self,
        subject: &str,
    ) -> Result<Option<StoredEvent>, LogError> {
        if self.config.replicas > 1 {
            return self.leader_get(LeaderGet::Last(subject)).await;
        }
        self.last_on_subject(subject).await
    }

    /// The event stored at `sequence`, if any.
    pub async fn event_at(&self, sequence: u64) -> Result<Option<StoredEvent>, LogError> {
        if sequence == 0 {
            return Ok(None);
        }
        let page = self.direct_get(json!({"seq": sequence})).await?;
        let found = page.events.into_iter().find(|e| e.sequence == sequence);
        if found.is_some() || self.config.replicas <= 1 {
            return Ok(found);
        }
        // Perhaps a replica that has not got there yet.
        self.leader_get(LeaderGet::At(sequence)).await
    }

    /// Up to `max` events matching `filter`, from sequence `from` on, not past `up_to`:
    /// fewer only if no more are stored up to `up_to`.
    pub async fn read_page(
        &self,
        filter: &str,
        from: u64,
        max: usize,
        up_to: u64,
    ) -> Result<Vec<StoredEvent>, LogError> {
        if from > up_to || max == 0 {
            return Ok(Vec::new());
        }
        let request = json!({
            "seq": from.max(1),
            "next_by_subj": filter,
            "batch": max.min(PAGE),
        });
        // The server applies `up_to_seq` to multi-last requests only: cut here.
        let mut events = self.direct_get(request).await?.events;
        events.retain(|event| event.sequence <= up_to);
        self.read_on_at_leader(filter, &mut events, from, up_to, max.min(PAGE))
            .await?;
        Ok(events)
    }

    /// The sequence of the last event stored at or before `time` (0 if there is none):
    /// the log as it stood at that moment.
    pub async fn last_sequence_at(&self, time: OffsetDateTime) -> Result<u64, LogError> {
        // Read first: if no event is stored after `time`, none up to `end` is either.
        let end = self.last_sequence().await?;
        let after = time + time::Duration::nanoseconds(1);
        Ok(
            match self.first_matching_at(&self.all_events(), after).await? {
                Some(first_after) => first_after - 1,
                None => end,
            },
        )
    }

    /// The sequence of the first event matching `filter` stored at or after `time`.
    async fn first_matching_at(
        &self,
        filter: &str,
        time: OffsetDateTime,
    ) -> Result<Option<u64>, LogError> {
        let start_time = time
            .format(&Rfc3339)
            .map_err(|e| LogError::Read(e.to_string()))?;
        let request = json!({"start_time": start_time, "next_by_subj": filter, "batch": 1});
        let first = self
            .direct_get(request)
            .await?
            .events
            .first()
            .map(|e| e.sequence);
        if first.is_some() || self.config.replicas <= 1 {
            return Ok(first);
        }
        // Perhaps a replica that has not got there yet: ask the leader.
        self.leader_sequence(json!({"start_time": start_time, "next_by_subj": filter}))
            .await
    }

    /// The sequence of the first event matching `filter` at or after sequence `from`, as
    /// the stream's leader holds it: every event acknowledged before the call counts, on
    /// any number of replicas.
    pub async fn first_sequence_from(
        &self,
        filter: &str,
        from: u64,
    ) -> Result<Option<u64>, LogError> {
        self.leader_sequence(json!({"seq": from, "next_by_subj": filter}))
            .await
    }

    /// The sequence a `STREAM.MSG.GET` request finds, which only the leader answers.
    async fn leader_sequence(&self, request: serde_json::Value) -> Result<Option<u64>, LogError> {
        let api = format!("$JS.API.STREAM.MSG.GET.{}", self.config.stream);
        let reply = self
            .client
            .request(api, request.to_string().into())
            .await
            .map_err(|e| LogError::Read(e.to_string()))?;
        let reply: LeaderReply = serde_json::from_slice(&reply.payload)
            .map_err(|e| LogError::Read(format!("a stream message get answered: {e}")))?;
        match (reply.message, reply.error) {
            (Some(message), _) => Ok(Some(message.seq)),
            (None, Some(error)) if error.code == 404 => Ok(None),
            (None, error) => Err(LogError::Read(format!(
                "a stream message get failed: {}",
                error.map_or_else(String::new, |e| e.description)
            ))),
        }
    }

    /// The whole log from `start`, in stream order, up to the newest event at the time of
    /// the call; events appended meanwhile are not waited for.
    pub fn read(
        &self,
        start: Start,
    ) -> impl Stream<Item = Result<StoredEvent, LogError>> + Send + '_ {
        self.read_matching(self.all_events(), start)
    }

    /// As [`Self::read`], only the events whose subject matches `filter` (such as
    /// `<prefix>.evt.session.>`), which the server picks out.
    pub fn read_matching(
        &self,
        filter: String,
        start: Start,
    ) -> impl Stream<Item = Result<StoredEvent, LogError>> + Send + '_ {
        let first_filter = filter.clone();
        futures::stream::once(async move {
            let end = self.last_sequence().await?;
            let from = match start {
                Start::Sequence(sequence) => Some(sequence.max(1)),
                Start::Time(time) => self.first_matching_at(&first_filter, time).await?,
            };
            Ok::<_, LogError>((from.unwrap_or(end + 1), end))
        })
        .map(move |bounds| {
            let filter = filter.clone();
            let pages = match bounds {
                Ok((from, end)) => futures::stream::try_unfold(from, move |from| {
                    let filter = filter.clone();
                    async move {
                        let page = self.read_page(&filter, from, PAGE, end).await?;
                        Ok(page.last().map(|last| (page.clone(), last.sequence + 1)))
                    }
                })
                .boxed(),
                Err(error) => futures::stream::once(async move { Err(error) }).boxed(),
            };
            pages.map_ok_flatten()
        })
        .flatten()
    }

    /// Sends one direct-get request and collects its reply messages up to the end marker.
    async fn direct_get(&self, request: serde_json::Value) -> Result<Page, LogError> {
        let read_error = |e: &dyn std::fmt::Display| LogError::Read(e.to_string());
        let inbox = self.client.new_inbox();
        let mut replies = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| read_error(&e))?;
        let api = format!("$JS.API.DIRECT.GET.{}", self.config.stream);
        self.client
            .publish_with_reply(api, inbox, request.to_string().into())
            .await
            .map_err(|e| read_error(&e))?;
        let batched = request.get("batch").is_some();
        let mut events = Vec::new();
        loop {
            let message = tokio::time::timeout(REPLY_TIMEOUT, replies.next())
                .await
                .map_err(|_| LogError::Read("direct get timed out".into()))?
                .ok_or_else(|| LogError::Read("direct get subscription closed".into()))?;
            match message.status {
                Some(StatusCode::NOT_FOUND) => return Ok(Page { events, pending: 0 }),
                Some(status) if status.as_u16() == 204 => {
                    let pending =
                        header_u64(message.headers.as_ref(), "Nats-Num-Pending").unwrap_or(0);
                    return Ok(Page { events, pending });
                }
                Some(status) if status != StatusCode::OK => {
                    return Err(LogError::Read(format!(
                        "direct get answered {status}: {}",
                        message.description.as_deref().unwrap_or("")
                    )));
                }
                _ => {
                    let pending = header_u64(message.headers.as_ref(), "Nats-Num-Pending");
                    events.push(StoredEvent::from_headers(&message)?);
                    if !batched {
                        return Ok(Page {
                            events,
                            pending: pending.unwrap_or(0),
                        });
                    }
                }
            }
        }
    }
}

/// Flattens a stream of pages into a stream of events.
trait FlattenPages {
    fn map_ok_flatten(self) -> impl Stream<Item = Result<StoredEvent, LogError>> + Send;
}

impl<S> FlattenPages for S
where
    S: Stream<Item = Result<Vec<StoredEvent>, LogError>> + Send,
{
    fn map_ok_flatten(self) -> impl Stream<Item = Result<StoredEvent, LogError>> + Send {
        self.flat_map(|page| match page {
            Ok(events) => futures::stream::iter(events.into_iter().map(Ok)).left_stream(),
            Err(error) => futures::stream::once(async move { Err(error) }).right_stream(),
        })
    }
}

fn header_u64(headers: Option<&HeaderMap>, name: &str) -> Option<u64> {
    headers?.get(name)?.as_str().parse().ok()
}

/// Parses a stored envelope and upcasts its payload to the current version of its type.
/// Types this build does not know (written by a newer one) are passed on unchanged.
pub fn decode_envelope(payload: &[u8]) -> Result<Envelope, String> {
    let mut envelope: Envelope = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    if let Some(current) = natter_schema::current_version(&envelope.event_type)
        && envelope.schema_version < current
    {
        envelope.payload = natter_schema::events::upcast(
            &envelope.event_type,
            envelope.schema_version,
            std::mem::take(&mut envelope.payload),
        )
        .map_err(|e| e.to_string())?;
        envelope.schema_version = current;
    }
    Ok(envelope)
}

impl StoredEvent {
    /// An event from a message carrying the stream's headers (`Nats-Sequence`,
    /// `Nats-Subject`, `Nats-Time-Stamp`): a direct-get reply, or an event the stream
    /// republished to a live subject.
    pub fn from_headers(message: &Message) -> Result<Self, LogError> {
        let headers = message.headers.as_ref();
        let sequence = header_u64(headers, "Nats-Sequence")
            .ok_or_else(|| LogError::Read("a stored event without Nats-Sequence".into()))?;
        let malformed = |reason: String| LogError::Malformed { sequence, reason };
        let subject = headers
            .and_then(|h| h.get("Nats-Subject"))
            .map(|v| v.as_str().to_owned())
            .ok_or_else(|| malformed("no Nats-Subject".into()))?;
        let stored_at = headers
            .and_then(|h| h.get("Nats-Time-Stamp"))
            .and_then(|v| OffsetDateTime::parse(v.as_str(), &Rfc3339).ok())
            .ok_or_else(|| malformed("no valid Nats-Time-Stamp".into()))?;
        let envelope = decode_envelope(&message.payload).map_err(malformed)?;
        Ok(Self {
            sequence,
            subject,
            stored_at,
            envelope,
        })
    }

    /// The event a JetStream consumer delivered.
    pub fn from_consumed(message: &async_nats::jetstream::Message) -> Result<Self, LogError> {
        let info = message
            .info()
            .map_err(|e| LogError::Read(format!("consumed message without metadata: {e}")))?;
        let sequence = info.stream_sequence;
        let envelope = decode_envelope(&message.payload)
            .map_err(|reason| LogError::Malformed { sequence, reason })?;
        Ok(Self {
            sequence,
            subject: message.subject.to_string(),
            stored_at: info.published,
            envelope,
        })
    }
}
