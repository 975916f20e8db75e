//! Sending messages. A chat's messages live on a subject of their own beside the chat;
//! each send is appended with the chat's last sequence as its expectation, so sends do
//! not conflict with each other, only with membership changes. A client id is a claim
//! in the same atomic batch, so a retried send is stored once for as long as the log
//! keeps it.

use natter_domain::Context;
use natter_domain::chat::{
    Chat, ChatError, ClientId, MESSAGES_KIND, MessageBody, MessageEvent, SendMessage,
};
use natter_domain::chat::{MessageAction, MessageRef};
use natter_domain::user::User;
use natter_eventlog::{AppendErrorKind, EventLog, NewEvent};
use natter_schema::{ClaimMade, Envelope, Metadata};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::tokens::hex_digest;
use crate::{ClaimHolder, CommandHandler, CommandMetrics, claim_state};

/// The claim kind of message client ids.
pub const CLIENT_ID_CLAIM: &str = "cmsg";
const MAX_ATTEMPTS: u32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum MessagesError {
    #[error(transparent)]
    Chat(ChatError),
    #[error("this client id was used for a different message")]
    ClientIdReused,
    #[error("the chat kept changing; try again")]
    Conflict,
    #[error("{0}")]
    Internal(String),
}

fn internal(error: impl std::fmt::Display) -> MessagesError {
    MessagesError::Internal(error.to_string())
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
    users: CommandHandler<User>,
}

impl Messages {
    pub fn new(log: EventLog, metrics: CommandMetrics) -> Self {
        Self {
            chats: CommandHandler::new(log.clone(), metrics.clone()),
            users: CommandHandler::new(log.clone(), metrics),
            log,
        }
    }

    pub async fn send(
        &self,
        chat_id: Uuid,
        sender: Uuid,
        client_id: ClientId,
        body: MessageBody,
        reply_to: Option<Uuid>,
        metadata: Metadata,
    ) -> Result<Sent, MessagesError> {
        let key = hex_digest(format!("{chat_id}\n{sender}\n{}", client_id.as_str()).as_bytes());
        let fingerprint = hex_digest(
            format!(
                "{}\n{}",
                reply_to.map(|r| r.to_string()).unwrap_or_default(),
                body.as_str()
            )
            .as_bytes(),
        );
        if let Some(sent) = self.replay(&key, &fingerprint).await? {
            return Ok(sent);
        }
        let id = chat_id.to_string();
        let (mut chat, mut sequence) = self.chats.cached(&id).await.map_err(internal)?;
        let mut fresh = false;
        let mut blocked = None;
        for _ in 0..MAX_ATTEMPTS {
            if blocked.is_none() {
                blocked = Some(self.blocked(&chat, sender).await?);
            }
            let message_id = Uuid::now_v7();
            let context = Context {
                now: OffsetDateTime::now_utc(),
                actor: Some(sender),
            };
            let send = SendMessage {
                message_id,
                client_id: client_id.clone(),
                body: body.clone(),
                reply_to,
                blocked: blocked.unwrap_or(false),
            };
            let sent = match chat.decide_send(&send, &context) {
                Ok(sent) => sent,
                // A refusal on a cached state proves nothing: decide again on fresh state.
                Err(_) if !fresh => {
                    (chat, sequence) = self.chats.load(&id).await.map_err(internal)?;
                    fresh = true;
                    blocked = None;
                    continue;
                }
                Err(error) => return Err(MessagesError::Chat(error)),
            };
            let batch = self.batch(
                chat_id,
                sequence,
                &key,
                &fingerprint,
                sent,
                metadata,
                context.now,
            )?;
            match self.log.append(&batch).await {
                Ok(appended) => {
                    return Ok(Sent {
                        message_id,
                        sequence: appended.last_sequence(),
                        replayed: appended.duplicate,
                    });
                }
                Err(error) if error.kind() == AppendErrorKind::Conflict => {
                    // Either the client id was taken meanwhile (a concurrent retry), or
                    // the chat's membership moved on.
                    if let Some(sent) = self.replay(&key, &fingerprint).await? {
                        return Ok(sent);
                    }
                    (chat, sequence) = self.chats.load(&id).await.map_err(internal)?;
                    fresh = true;
                    blocked = None;
                }
                Err(error) => return Err(internal(error)),
            }
        }
        Err(MessagesError::Conflict)
    }

    /// Marks the chat read by `user` up to `up_to` (a message's sequence).
    pub async fn mark_read(
        &self,
        chat_id: Uuid,
        user: Uuid,
        up_to: u64,
        metadata: Metadata,
    ) -> Result<u64, MessagesError> {
        self.append_decided(chat_id, user, metadata, |chat, context| {
            chat.decide_mark_read(up_to, context)
                .map(MessageEvent::ReadMarked)
        })
        .await
    }

    /// Marks the chat delivered to `user`'s devices up to `up_to`.
    pub async fn mark_delivered(
        &self,
        chat_id: Uuid,
        user: Uuid,
        up_to: u64,
        metadata: Metadata,
    ) -> Result<u64, MessagesError> {
        self.append_decided(chat_id, user, metadata, |chat, context| {
            chat.decide_mark_delivered(up_to, context)
                .map(MessageEvent::DeliveredMarked)
        })
        .await
    }

    /// Edits, deletes for everyone, or reacts to the message at stream `sequence`.
    pub async fn act(
        &self,
        chat_id: Uuid,
        actor: Uuid,
        sequence: u64,
        action: MessageAction,
        metadata: Metadata,
    ) -> Result<u64, MessagesError> {
        let message = self.message_at(chat_id, sequence).await?;
        self.append_decided(chat_id, actor, metadata, |chat, context| {
            chat.decide_on_message(&message, &action, context)
        })
        .await
    }

    /// The message sent at `sequence` in this chat, looked up in the log directly.
    async fn message_at(&self, chat_id: Uuid, sequence: u64) -> Result<MessageRef, MessagesError> {
        let not_found = || MessagesError::Chat(ChatError::NotFound);
        let stored = self
            .log
            .event_at(sequence)
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        if stored.subject != self.log.subject(MESSAGES_KIND, &chat_id.to_string()) {
            return Err(not_found());
        }
        let envelope = &stored.envelope;
        match natter_schema::decode::<MessageEvent>(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        ) {
            Ok(MessageEvent::MessageSent(sent)) => Ok(MessageRef {
                chat_id,
                sequence,
                message_id: sent.message_id,
                sender: sent.sender,
                sent_at: sent.sent_at,
            }),
            _ => Err(not_found()),
        }
    }

    /// Decides on the chat's (cached, then fresh) state and appends the event to the
    /// chat's messages, guarded by the chat's own last sequence.
    async fn append_decided(
        &self,
        chat_id: Uuid,
        actor: Uuid,
        metadata: Metadata,
        decide: impl Fn(&Chat, &Context) -> Result<MessageEvent, ChatError>,
    ) -> Result<u64, MessagesError> {
        let id = chat_id.to_string();
        let (mut chat, mut sequence) = self.chats.cached(&id).await.map_err(internal)?;
        let mut fresh = false;
        for _ in 0..MAX_ATTEMPTS {
            let context = Context {
                now: OffsetDateTime::now_utc(),
                actor: Some(actor),
            };
            let event = match decide(&chat, &context) {
                Ok(event) => event,
                // A refusal on a cached state proves nothing: decide again on fresh state.
                Err(_) if !fresh => {
                    (chat, sequence) = self.chats.load(&id).await.map_err(internal)?;
                    fresh = true;
                    continue;
                }
                Err(error) => return Err(MessagesError::Chat(error)),
            };
            let (event_type, version, payload) = natter_schema::encode(&event).map_err(internal)?;
            let event = NewEvent {
                subject: self.log.subject(MESSAGES_KIND, &id),
                expected_sequence: Some(sequence),
                expected_subject: Some(
                    self.log
                        .subject(<Chat as natter_domain::Aggregate>::KIND, &id),
                ),
                envelope: Envelope {
                    event_id: Uuid::now_v7(),
                    event_type: event_type.to_owned(),
                    schema_version: version,
                    aggregate_type: MESSAGES_KIND.to_owned(),
                    aggregate_id: id.clone(),
                    actor: Some(actor),
                    occurred_at: context.now,
                    correlation_id: metadata.correlation_id,
                    causation_id: metadata.causation_id,
                    payload,
                },
            };
            match self.log.append(std::slice::from_ref(&event)).await {
                Ok(appended) => return Ok(appended.last_sequence()),
                Err(error) if error.kind() == AppendErrorKind::Conflict => {
                    (chat, sequence) = self.chats.load(&id).await.map_err(internal)?;
                    fresh = true;
                }
                Err(error) => return Err(internal(error)),
            }
        }
        Err(MessagesError::Conflict)
    }

    /// Whether, in a direct chat, either of the two has blocked the other.
    async fn blocked(&self, chat: &Chat, sender: Uuid) -> Result<bool, MessagesError> {
        let Chat::Direct { members, .. } = chat else {
            return Ok(false);
        };
        let Some(other) = members.iter().copied().find(|m| *m != sender) else {
            return Ok(false);
        };
        let mut blocked = false;
        for (who, whom) in [(sender, other), (other, sender)] {
            let (user, _) = self.users.load(&who.to_string()).await.map_err(internal)?;
            blocked |= user.profile().is_some_and(|p| p.blocked.contains(&whom));
        }
        Ok(blocked)
    }

    async fn replay(&self, key: &str, fingerprint: &str) -> Result<Option<Sent>, MessagesError> {
        let (holder, sequence) = claim_state(&self.log, CLIENT_ID_CLAIM, key)
            .await
            .map_err(internal)?;
        match holder {
            ClaimHolder::Held {
                owner,
                fingerprint: Some(seen),
            } => {
                if seen != fingerprint {
                    return Err(MessagesError::ClientIdReused);
                }
                // The claim and its message are one atomic batch: the message follows.
                Ok(Some(Sent {
                    message_id: owner,
                    sequence: sequence + 1,
                    replayed: true,
                }))
            }
            _ => Ok(None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn batch(
        &self,
        chat_id: Uuid,
        chat_sequence: u64,
        key: &str,
        fingerprint: &str,
        sent: natter_domain::chat::MessageSent,
        metadata: Metadata,
        now: OffsetDateTime,
    ) -> Result<Vec<NewEvent>, MessagesError> {
        let sender = sent.sender;
        let envelope =
            |aggregate_type: &str, aggregate_id: &str, event_type: &str, version: u32, payload| {
                Envelope {
                    event_id: Uuid::now_v7(),
                    event_type: event_type.to_owned(),
                    schema_version: version,
                    aggregate_type: aggregate_type.to_owned(),
                    aggregate_id: aggregate_id.to_owned(),
                    actor: Some(sender),
                    occurred_at: now,
                    correlation_id: metadata.correlation_id,
                    causation_id: metadata.causation_id,
                    payload,
                }
            };
        let message_id = sent.message_id;
        let claim = serde_json::to_value(ClaimMade {
            owner: message_id,
            fingerprint: Some(fingerprint.to_owned()),
        })
        .map_err(internal)?;
        let chat = chat_id.to_string();
        let (event_type, version, payload) =
            natter_schema::encode(&MessageEvent::MessageSent(sent)).map_err(internal)?;
        Ok(vec![
            NewEvent {
                subject: self.log.subject(CLIENT_ID_CLAIM, key),
                expected_sequence: Some(0),
                expected_subject: None,
                envelope: envelope(CLIENT_ID_CLAIM, key, ClaimMade::TYPE, 1, claim),
            },
            NewEvent {
                subject: self.log.subject(MESSAGES_KIND, &chat),
                expected_sequence: Some(chat_sequence),
                expected_subject: Some(
                    self.log
                        .subject(<Chat as natter_domain::Aggregate>::KIND, &chat),
                ),
                envelope: envelope(MESSAGES_KIND, &chat, event_type, version, payload),
            },
        ])
    }
}
