//! Appending: one event as a plain publish, several as one atomic batch (ADR-50).
//!
//! In a batch every message carries `Nats-Batch-Id` and `Nats-Batch-Sequence`, and the
//! last one also carries `Nats-Batch-Commit: 1`; only that last message is acknowledged.
//! A batch is stored contiguously: its sequences are `ack.seq - count + 1 ..= ack.seq`.
//! An event carries `Nats-Expected-Last-Subject-Sequence` where it has an expectation
//! (with `Nats-Expected-Last-Subject-Sequence-Subject` when guarded by another subject).
//!
//! Guarded appends carry no `Nats-Msg-Id`: the expectation already makes a repeat fail,
//! beyond any deduplication window, and spares the server the work of tracking ids. An
//! append with no expectation at all carries `Nats-Msg-Id` (its event id) on every
//! event, and the server drops duplicates within its window
//! (`NATTER_DUPLICATE_WINDOW_SECS`); a caller may give its own id instead (a send's, from
//! its client id). This departs from the design notes, which put `Nats-Msg-Id` on every
//! append.
//!
//! An append settles its own outcome, and never guesses it. `publish_error` sorts every
//! failure by what may be stored:
//! - refused, nothing stored: a wrong last sequence (10071) is a `Conflict`, decided
//!   again by the caller; too large; a batch's duplicate id (10201); any other answer of
//!   the server;
//! - not now, nothing stored yet: no responders (no stream leader), a full ack window,
//!   503 answers (10008, 10118, 10163, 10167, "not leader"), and a clustered stream's
//!   10164 (a guarded write to the subject is in flight). Retried with jittered backoff
//!   for up to 3 s, then `Unavailable` (10164: `Conflict`);
//! - unconfirmed, perhaps stored: no acknowledgement in time
//!   (`NATTER_NATS_ACK_TIMEOUT_MS`), a broken connection, 10158 (this id is being
//!   stored), 10077. Retried with the same ids at least once.
//!
//! Only after an unconfirmed attempt does an append look for itself, and the read is
//! bounded: an event guarded by its own subject was, if stored, the first of that
//! subject after its expected sequence (one get, asked of the stream leader, since a
//! replica may lag). A send guarded by its chat carries its own `Nats-Msg-Id`, so deciding
//! it again stores it once within the window. An unguarded batch reads at most 1,024
//! events of its subject. What cannot be told is `OutcomeUnknown`: the API answers 503
//! `outcome_unknown`, and the client's retry with the same `client_id` or
//! `Idempotency-Key` settles it.

use async_nats::HeaderMap;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use std::time::{Duration, Instant};

use bytes::Bytes;
use natter_schema::Envelope;
use natter_schema::envelope::{EVENT_TYPE_HEADER, SCHEMA_VERSION_HEADER};

use crate::read::LeaderGet;
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

/// How long an append keeps retrying what the server asks to retry (no leader yet,
/// another guarded write to the subject in flight) before answering.
const SETTLE_WITHIN: Duration = Duration::from_secs(3);
/// The first pause between such retries; each pause doubles, up to [`MAX_PAUSE`], with
/// full jitter so that racing writers spread out.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const MAX_PAUSE: Duration = Duration::from_millis(250);
/// How many events of a subject an append reads at most when it looks for itself.
const MAX_LOOKUP: usize = 1024;

/// What one attempt's failure means for the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing was stored, and trying again cannot change that.
    Refused,
    /// Nothing was stored; the server asks to try again shortly. Answered with the
    /// error's kind if it keeps asking.
    NotNow,
    /// The append went out but was not confirmed: it may be stored, or still land.
    Unconfirmed,
}

impl EventLog {
    /// Appends the events all or nothing. Every `expected_sequence` is checked before
    /// anything is stored; the event ids deduplicate a retried append.
    ///
    /// What the server asks to retry is retried here, briefly. An append that went out
    /// unconfirmed is retried with the same ids, and then, if it conflicts, looked up in
    /// the log (a bounded read on the leader): the answer is what was stored, a refusal,
    /// or [`AppendErrorKind::OutcomeUnknown`], never a guess.
    pub async fn append(&self, events: &[NewEvent]) -> Result<Appended, AppendError> {
        if events.is_empty() {
            return Ok(Appended {
                sequences: Vec::new(),
                duplicate: false,
            });
        }
        let deadline = Instant::now() + SETTLE_WITHIN;
        let mut pause = FIRST_PAUSE;
        let mut unconfirmed = 0_u32;
        loop {
            let attempt = match events {
                [event] => self.append_one(event).await,
                _ => self.append_batch(events).await,
            };
            let (fault, error) = match attempt {
                Ok(appended) => return Ok(appended),
                Err(failed) => failed,
            };
            match fault {
                Fault::Refused if unconfirmed == 0 => return Err(error),
                // The server checks expectations before duplicates, so an earlier attempt
                // that was stored makes this one conflict: look for it.
                Fault::Refused => return self.settle(events, error).await,
                Fault::Unconfirmed => unconfirmed += 1,
                Fault::NotNow => {}
            }
            // An unconfirmed append is retried at least once, whatever the time.
            let retry = Instant::now() + pause < deadline || unconfirmed == 1;
            if !retry {
                return if unconfirmed == 0 {
                    Err(error)
                } else {
                    self.settle(events, error).await
                };
            }
            tracing::debug!(%error, ?fault, "append not settled; retrying");
            tokio::time::sleep(pause.mul_f64(rand::random::<f64>())).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// After an unconfirmed attempt: the stored batch if the log holds it, `error` if it
    /// certainly does not, and an unknown outcome otherwise.
    async fn settle(
        &self,
        events: &[NewEvent],
        error: AppendError,
    ) -> Result<Appended, AppendError> {
        match self.find_stored(events).await {
            Ok(Some(appended)) => Ok(appended),
            Ok(None) if error.kind() != AppendErrorKind::Unavailable => Err(error),
            Ok(None) | Err(()) => Err(AppendError::new(
                AppendErrorKind::OutcomeUnknown,
                format!("the append was not confirmed and could not be settled: {error}"),
            )),
        }
    }

    /// Looks for the batch in the log: `Ok(None)` when it is certainly not stored,
    /// `Err(())` when that cannot be told. Atomic batches are stored whole and
    /// contiguous, so finding one event is finding the batch.
    async fn find_stored(&self, events: &[NewEvent]) -> Result<Option<Appended>, ()> {
        let stored = |index: usize, sequence: u64| {
            let first = sequence - index as u64;
            Appended {
                sequences: (first..first + events.len() as u64).collect(),
                duplicate: true,
            }
        };
        // An event guarded by its own subject was, if stored, the first of that subject
        // after its expected sequence. Asked of the stream leader: a replica may lag.
        let own_guard = events.iter().enumerate().find(|(_, event)| {
            event.expected_subject.is_none() && event.expected_sequence.is_some()
        });
        if let Some((index, event)) = own_guard {
            let after = event.expected_sequence.unwrap_or(0);
            let next = self
                .leader_get(LeaderGet::Next(&event.subject, after + 1))
                .await
                .map_err(|_| ())?;
            return match next {
                Some(next) if next.envelope.event_id == event.envelope.event_id => {
                    Ok(Some(stored(index, next.sequence)))
                }
                Some(_) => Ok(None),
                None => Err(()),
            };
        }
        // A send guarded by its chat carries its own deduplication id: decided again on
        // the chat's newer state and appended with that id, it is stored once.
        if events.iter().all(|event| event.dedupe_id.is_some()) {
            return Ok(None);
        }
        // Unguarded: the last event is somewhere on its subject. Read a bounded part.
        let (index, last) = (events.len() - 1, &events[events.len() - 1]);
        let page = self
            .read_subject_page(&last.subject, 0, MAX_LOOKUP)
            .await
            .map_err(|_| ())?;
        match page
            .events
            .iter()
            .find(|stored| stored.envelope.event_id == last.envelope.event_id)
        {
            Some(found) => Ok(Some(stored(index, found.sequence))),
            None if page.pending == 0 => Ok(None),
            None => Err(()),
        }
    }

    async fn append_one(&self, event: &NewEvent) -> Result<Appended, (Fault, AppendError)> {
        let (headers, payload) =
            encode(event, event.expected_sequence.is_none()).map_err(refused)?;
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
    async fn append_batch(&self, events: &[NewEvent]) -> Result<Appended, (Fault, AppendError)> {
        let batch_id = uuid::Uuid::now_v7().simple().to_string();
        let last = events.len() - 1;
        let dedupe = events.iter().all(|event| event.expected_sequence.is_none());
        let mut commit = None;
        for (index, event) in events.iter().enumerate() {
            let (mut headers, payload) = encode(event, dedupe).map_err(refused)?;
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
                    // Without its commit, a batch is dropped by the server: nothing stored.
                    .map_err(|e| {
                        let error = AppendError::new(AppendErrorKind::Unavailable, e.to_string());
                        (Fault::NotNow, error)
                    })?;
            }
        }
        let Some(commit) = commit else {
            return Err(refused(AppendError::new(
                AppendErrorKind::Other,
                "empty batch",
            )));
        };
        let ack = commit.await.map_err(publish_error)?;
        let count = events.len() as u64;
        if ack.batch_size.is_some_and(|size| size != count) {
            return Err(refused(AppendError::new(
                AppendErrorKind::Other,
                format!("batch of {count} acknowledged as {:?}", ack.batch_size),
            )));
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

fn refused(error: AppendError) -> (Fault, AppendError) {
    (Fault::Refused, error)
}

/// JetStream's error codes that decide how an append goes on (nats-server's
/// `jetstream_errors_generated.go`).
mod code {
    /// JetStream is not (yet) available in the cluster.
    pub const CLUSTER_NOT_AVAILABLE: u64 = 10008;
    /// The server could not store the message: it may have been, on some replicas.
    pub const STORE_FAILED: u64 = 10077;
    /// The stream is offline (its replicas are recovering).
    pub const STREAM_OFFLINE: u64 = 10118;
    /// A message with this id is being stored right now (this append's earlier attempt).
    pub const DUPLICATE_IN_PROCESS: u64 = 10158;
    /// The last sequence per subject cannot be checked yet (a leader just took over).
    pub const EXPECTED_LAST_NOT_READY: u64 = 10163;
    /// A clustered stream's "wrong last sequence": a guarded write to the subject is in
    /// flight or stored.
    pub const WRONG_LAST_SEQUENCE_IN_FLIGHT: u64 = 10164;
    /// Too many requests in flight on the stream.
    pub const TOO_MANY_REQUESTS: u64 = 10167;
    /// An atomic batch with a message id the server has seen already.
    pub const BATCH_DUPLICATE_MESSAGE_ID: u64 = 10201;
}

/// What a failed publish means: whether anything may be stored, and what to answer.
fn publish_error(error: PublishError) -> (Fault, AppendError) {
    let server = std::error::Error::source(&error)
        .and_then(|source| source.downcast_ref::<async_nats::jetstream::Error>());
    let server_code = server.map(|server| server.error_code().0);
    let (fault, kind) = match (error.kind(), server_code) {
        (PublishErrorKind::WrongLastSequence, _) => (Fault::Refused, AppendErrorKind::Conflict),
        // A guarded write in flight becomes visible shortly: wait for it, then conflict.
        (_, Some(code::WRONG_LAST_SEQUENCE_IN_FLIGHT)) => {
            (Fault::NotNow, AppendErrorKind::Conflict)
        }
        (PublishErrorKind::MaxPayloadExceeded, _) => (Fault::Refused, AppendErrorKind::TooLarge),
        (_, Some(code::BATCH_DUPLICATE_MESSAGE_ID)) => (Fault::Refused, AppendErrorKind::Duplicate),
        // No responders (no stream leader) and a full ack window: the message did not
        // reach the stream.
        (PublishErrorKind::StreamNotFound | PublishErrorKind::MaxAckPending, _)
        | (
            _,
            Some(
                code::CLUSTER_NOT_AVAILABLE
                | code::STREAM_OFFLINE
                | code::EXPECTED_LAST_NOT_READY
                | code::TOO_MANY_REQUESTS,
            ),
        ) => (Fault::NotNow, AppendErrorKind::Unavailable),
        (_, Some(code::DUPLICATE_IN_PROCESS | code::STORE_FAILED)) => {
            (Fault::Unconfirmed, AppendErrorKind::OutcomeUnknown)
        }
        // "raft: not leader" and other answers of a server in transition.
        _ if server.is_some_and(|server| server.code() == 503) => {
            (Fault::NotNow, AppendErrorKind::Unavailable)
        }
        // Any other answer of the server is a refusal.
        _ if server.is_some() => (Fault::Refused, AppendErrorKind::Other),
        // No answer: a timeout, a broken connection, a request that could not be sent.
        _ => (Fault::Unconfirmed, AppendErrorKind::OutcomeUnknown),
    };
    (fault, AppendError::new(kind, error.to_string()))
}
