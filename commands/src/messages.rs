//! Sending messages. A chat's messages live on a subject of their own beside the chat;
//! each send is appended with the chat's last sequence as its expectation, so sends do
//! not conflict with each other, only with membership changes. A send carries a
//! `Nats-Msg-Id` derived from its client id, so a retry within the deduplication window
//! is stored once; later retries are caught against the read model by the caller.
//!
//! A message's client id thus deduplicates it twice over: the send carries
//! `Nats-Msg-Id: cmsg-<sha256(chat, sender, client id)>`, so a retry within the stream's
//! deduplication window is answered from the log with the first send; a later retry is
//! found in `messages_v1`, under a unique `(chat, sender, client id)`. The same id with
//! other content is `ClientIdReused` (422). Atomic batches (a claim plus the message) were
//! tried first, but NATS serialises them, so the hot path uses none
//! (`docs/performance.md`).
//!
//! The read model is asked only when the log's deduplication may not reach the first
//! send: a client id that is a UUIDv7 says when the client made it, and a send stored
//! with it was stored no earlier than [`CLIENT_CLOCK_LEAD`] before that (a UUIDv7 dated
//! further ahead of the server's clock is refused, `ClientIdAhead`). A retry within the
//! window less that lead, and a margin, is thus answered by the log alone
//! ([`earlier_send_in`]); any other client id, or an older one, is looked up. The lookup
//! cost a Postgres round trip on every send (issue 18).
//!
//! Read and delivered markers go the same way; a marker at or below where the caller
//! knows it to be already appends nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use natter_domain::Context;
use natter_domain::chat::{
    Chat, ChatError, ClientId, MESSAGES_KIND, MessageAction, MessageBody, MessageEvent, MessageRef,
    MessageSent, SendMessage,
};
use natter_eventlog::EventLog;
use natter_schema::Metadata;
use uuid::Uuid;

use crate::tokens::hex_digest;
use crate::{Beside, CommandError, CommandHandler, CommandMetrics};

const MAX_ATTEMPTS: u32 = 20;

/// How far ahead of the server's clock a UUIDv7 client id may be dated. Clients whose
/// clocks run further ahead send other ids (a UUIDv4, say), which are looked up.
pub const CLIENT_CLOCK_LEAD: Duration = Duration::from_secs(30);

/// Kept besides the lead: the server's clocks may disagree this much, and the log's
/// window is not kept to the millisecond.
const WINDOW_MARGIN: Duration = Duration::from_secs(5);

/// Where an earlier send with the same client id is to be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlierSend {
    /// Within the log's deduplication window, which answers a send with the first:
    /// the client id is a UUIDv7 made recently enough.
    InLogWindow,
    /// Perhaps past the window: ask the read model.
    LookUp,
}

/// Where a send with `client_id`, made `now`, finds any earlier send with it, given the
/// log's deduplication `window`. A UUIDv7 made after `now` plus [`CLIENT_CLOCK_LEAD`] is
/// refused: its sends must not be stored, or a retry could not be judged by its age.
pub fn earlier_send_in(
    client_id: &ClientId,
    window: Duration,
    now: SystemTime,
) -> Result<EarlierSend, MessagesError> {
    let Some(made) = client_id.made_at_ms() else {
        return Ok(EarlierSend::LookUp);
    };
    let made = UNIX_EPOCH + Duration::from_millis(made);
    let age = match now.duration_since(made) {
        Ok(age) => age,
        Err(ahead) if ahead.duration() <= CLIENT_CLOCK_LEAD => Duration::ZERO,
        Err(_) => return Err(MessagesError::ClientIdAhead),
    };
    // Stored no earlier than `made - LEAD`: a retry within `window - LEAD - margin` of
    // `made` is within the window of the first send.
    if age + CLIENT_CLOCK_LEAD + WINDOW_MARGIN < window {
        Ok(EarlierSend::InLogWindow)
    } else {
        Ok(EarlierSend::LookUp)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MessagesError {
    #[error(transparent)]
    Chat(ChatError),
    #[error("this client id was used for a different message")]
    ClientIdReused,
    #[error(
        "this client id is a UUIDv7 dated more than 30 seconds after the server's clock; send another id (a UUIDv4, say) or correct the clock"
    )]
    ClientIdAhead,
    #[error("the chat kept changing; try again")]
    Conflict,
    #[error(transparent)]
    Interrupted(#[from] crate::Interrupted),
    #[error("{0}")]
    Internal(String),
}

impl MessagesError {
    /// The stable code both faces answer with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Chat(chat) => crate::chats::chat_error_code(chat),
            Self::ClientIdReused => "client_id_reused",
            Self::ClientIdAhead => "client_id_ahead",
            Self::Conflict => "conflict",
            Self::Interrupted(interrupted) => interrupted.code(),
            Self::Internal(_) => "internal",
        }
    }

    /// The server's fault (or the log's), not the request's.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Self::Interrupted(_) | Self::Internal(_) | Self::Chat(ChatError::NoActor)
        )
    }
}

fn internal(error: impl std::fmt::Display) -> MessagesError {
    MessagesError::Internal(error.to_string())
}

fn failed(error: impl crate::Failure) -> MessagesError {
    crate::failed(error, MessagesError::Internal)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub message_id: Uuid,
    /// The message's stream sequence: its place in the chat, and a consistency token.
    pub sequence: u64,
    /// The same client id and message came before; this is the first send's result.
    pub replayed: bool,
}

/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Messages {
    log: EventLog,
    chats: CommandHandler<Chat>,
}

impl Messages {
    pub fn new(log: EventLog, metrics: CommandMetrics) -> Self {
        Self {
            // Sends never conflict with each other, only with changes of the chat; a
            // busy group's admins may still change it often.
            chats: CommandHandler::new(log.clone(), metrics).with_max_attempts(MAX_ATTEMPTS),
            log,
        }
    }

    pub async fn send(
        &self,
        chat_id: Uuid,
        sender: Uuid,
        message: NewMessage,
        metadata: Metadata,
    ) -> Result<Sent, MessagesError> {
        let dedupe_id = format!(
            "cmsg-{}",
            hex_digest(format!("{chat_id}\n{sender}\n{}", message.client_id.as_str()).as_bytes())
        );
        let fingerprint = message.fingerprint();
        let id = chat_id.to_string();
        let (mut chat, _) = self.chats.cached(&id).await.map_err(failed)?;
        if !chat.is_member(sender) {
            // The cache may not know of the sender's joining yet, nor a replica of the
            // log that lags its leader.
            chat = self.chats.load_current(&id).await.map_err(failed)?.0;
        }
        // Only members learn whether a message replied to is in the chat.
        if !chat.is_member(sender) {
            return Err(MessagesError::Chat(ChatError::NotFound));
        }
        let reply_to =
            match message.reply_to {
                Some(sequence) => Some(self.message_at(chat_id, sequence).await.map_err(
                    |error| match error {
                        MessagesError::Chat(ChatError::NotFound) => {
                            MessagesError::Chat(ChatError::ReplyNotInChat)
                        }
                        other => other,
                    },
                )?),
                None => None,
            };
        let send = SendMessage {
            message_id: Uuid::now_v7(),
            client_id: message.client_id,
            body: message.body,
            reply_to,
            mentions: message.mentions,
            forwarded: message.forwarded,
            attachment: message.attachment,
        };
        let decided = self
            .append_decided(
                chat_id,
                sender,
                metadata,
                Some(dedupe_id),
                |chat, context| {
                    chat.decide_send(&send, context)
                        .map(|sent| Some(MessageEvent::MessageSent(sent)))
                },
            )
            .await?;
        match decided.event {
            // The same client id came within the deduplication window: the first send
            // stands.
            _ if decided.duplicate => self.replay(chat_id, decided.sequence, &fingerprint).await,
            Some(MessageEvent::MessageSent(sent)) => Ok(Sent {
                message_id: sent.message_id,
                sequence: decided.sequence,
                replayed: false,
            }),
            _ => Err(internal("a send decided something else")),
        }
    }

    /// The earlier send at `sequence`, if it carried the same message.
    async fn replay(
        &self,
        chat_id: Uuid,
        sequence: u64,
        fingerprint: &str,
    ) -> Result<Sent, MessagesError> {
        let sent = self.sent_at(chat_id, sequence).await?;
        match sent {
            Some(sent)
                if self::fingerprint(sent.body.as_str(), sent.reply_to_sequence) == fingerprint =>
            {
                Ok(Sent {
                    message_id: sent.message_id,
                    sequence,
                    replayed: true,
                })
            }
            Some(_) => Err(MessagesError::ClientIdReused),
            None => Err(internal("a duplicate send without its original")),
        }
    }

    /// Moves `user`'s read marker in the chat up to `up_to` (a message's sequence).
    /// `known` is where the caller knows the marker to be already (the read model's,
    /// which only grows; 0 if it does not know): a marker at or below it appends
    /// nothing, and the answer is then the chat's current sequence.
    pub async fn advance_read(
        &self,
        chat_id: Uuid,
        user: Uuid,
        up_to: u64,
        known: u64,
        metadata: Metadata,
    ) -> Result<u64, MessagesError> {
        self.append_decided(chat_id, user, metadata, None, |chat, context| {
            chat.decide_mark_read(up_to, known, context)
                .map(|marked| marked.map(MessageEvent::ReadMarked))
        })
        .await
        .map(|decided| decided.sequence)
    }

    /// Moves `user`'s delivered marker, as [`Self::advance_read`] does the read one.
    pub async fn advance_delivered(
        &self,
        chat_id: Uuid,
        user: Uuid,
        up_to: u64,
        known: u64,
        metadata: Metadata,
    ) -> Result<u64, MessagesError> {
        self.append_decided(chat_id, user, metadata, None, |chat, context| {
            chat.decide_mark_delivered(up_to, known, context)
                .map(|marked| marked.map(MessageEvent::DeliveredMarked))
        })
        .await
        .map(|decided| decided.sequence)
    }

    /// Edits, deletes, reacts to, stars or pins the message at stream `sequence`.
    pub async fn act(
        &self,
        chat_id: Uuid,
        actor: Uuid,
        sequence: u64,
        action: MessageAction,
        metadata: Metadata,
    ) -> Result<u64, MessagesError> {
        let message = self.message_at(chat_id, sequence).await?;
        self.append_decided(chat_id, actor, metadata, None, |chat, context| {
            chat.decide_on_message(&message, &action, context).map(Some)
        })
        .await
        .map(|decided| decided.sequence)
    }

    /// The message sent at `sequence` in this chat, looked up in the log directly.
    async fn message_at(&self, chat_id: Uuid, sequence: u64) -> Result<MessageRef, MessagesError> {
        let sent = self
            .sent_at(chat_id, sequence)
            .await?
            .ok_or(MessagesError::Chat(ChatError::NotFound))?;
        Ok(MessageRef {
            chat_id,
            sequence,
            message_id: sent.message_id,
            sender: sent.sender,
            sent_at: sent.sent_at,
        })
    }

    /// The send stored at `sequence`, if that event is a message sent to this chat.
    async fn sent_at(
        &self,
        chat_id: Uuid,
        sequence: u64,
    ) -> Result<Option<MessageSent>, MessagesError> {
        let Some(stored) = self.log.event_at(sequence).await.map_err(failed)? else {
            return Ok(None);
        };
        if stored.subject != self.log.subject(MESSAGES_KIND, &chat_id.to_string()) {
            return Ok(None);
        }
        let envelope = &stored.envelope;
        match natter_schema::decode::<MessageEvent>(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        ) {
            Ok(MessageEvent::MessageSent(sent)) => Ok(Some(sent)),
            _ => Ok(None),
        }
    }

    /// Decides on the chat's state and appends the event to the chat's messages,
    /// guarded by the chat's own last sequence (not by other sends): the handler's
    /// [`CommandHandler::execute_beside`]. A decision of nothing appends nothing and
    /// answers the chat's last sequence.
    async fn append_decided(
        &self,
        chat_id: Uuid,
        actor: Uuid,
        metadata: Metadata,
        dedupe_id: Option<String>,
        decide: impl Fn(&Chat, &Context) -> Result<Option<MessageEvent>, ChatError>,
    ) -> Result<Beside<MessageEvent>, MessagesError> {
        let metadata = Metadata {
            actor: Some(actor),
            ..metadata
        };
        self.chats
            .execute_beside(
                &chat_id.to_string(),
                MESSAGES_KIND,
                dedupe_id,
                metadata,
                decide,
            )
            .await
            .map_err(|error| match error {
                CommandError::Rejected(error) => MessagesError::Chat(error),
                CommandError::Conflict { .. } => MessagesError::Conflict,
                other => failed(other),
            })
    }
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub client_id: ClientId,
    pub body: MessageBody,
    /// The stream sequence of the message replied to, in the same chat.
    pub reply_to: Option<u64>,
    /// Members to mention; anyone else is dropped.
    pub mentions: Vec<Uuid>,
    /// For a forward: the hops the original had come, plus one; 0 for an original.
    pub forwarded: u32,
    /// A media item, a place or a contact card; the body is then its caption.
    pub attachment: Option<natter_domain::chat::Attachment>,
}

impl NewMessage {
    pub fn fingerprint(&self) -> String {
        fingerprint(self.body.as_str(), self.reply_to)
    }

    /// Whether a message stored with this client id, `body` replying to `reply_to`, is
    /// this same send (retried) rather than the id reused for another message.
    pub fn same_send(&self, body: &str, reply_to: Option<u64>) -> bool {
        fingerprint(body, reply_to) == self.fingerprint()
    }
}

/// What a client id stands for: the message's content (its text and what it replies
/// to). The same id with other content is a client's mistake, not a retry.
fn fingerprint(body: &str, reply_to: Option<u64>) -> String {
    hex_digest(
        format!(
            "{}\n{}",
            reply_to.map(|r| r.to_string()).unwrap_or_default(),
            body
        )
        .as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const WINDOW: Duration = Duration::from_secs(120);

    /// A UUIDv7 client id made at `millis` since the epoch.
    fn v7(millis: u64) -> ClientId {
        let id = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            millis / 1000,
            u32::try_from(millis % 1000).unwrap() * 1_000_000,
        ));
        ClientId::parse(&id.to_string()).unwrap()
    }

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn a_recent_uuid_v7_is_left_to_the_logs_deduplication() {
        let made = 1_800_000_000_000;
        let place = |now: u64, window| earlier_send_in(&v7(made), window, at(now)).unwrap();
        assert_eq!(place(made, WINDOW), EarlierSend::InLogWindow);
        assert_eq!(place(made + 84_999, WINDOW), EarlierSend::InLogWindow);
        // A retry later than the window less the clock's lead and the margin: the first
        // send may have been stored 30 s before the id's time.
        assert_eq!(place(made + 85_000, WINDOW), EarlierSend::LookUp);
        assert_eq!(place(made + 3_600_000, WINDOW), EarlierSend::LookUp);
        // Made a little after the server's now: the client's clock runs ahead.
        assert_eq!(place(made - 30_000, WINDOW), EarlierSend::InLogWindow);
        // A window too short for the lead leaves every send to the lookup.
        assert_eq!(place(made, Duration::from_secs(35)), EarlierSend::LookUp);
    }

    #[test]
    fn a_uuid_v7_from_further_ahead_is_refused() {
        let made = 1_800_000_000_000;
        assert!(matches!(
            earlier_send_in(&v7(made), WINDOW, at(made - 30_001)),
            Err(MessagesError::ClientIdAhead)
        ));
    }

    #[test]
    fn other_client_ids_are_looked_up() {
        let now = SystemTime::now();
        for id in [Uuid::new_v4().to_string(), "c-1".to_owned()] {
            let id = ClientId::parse(&id).unwrap();
            assert_eq!(
                earlier_send_in(&id, WINDOW, now).unwrap(),
                EarlierSend::LookUp
            );
        }
    }
}
