//! The notifier: a durable consumer of new messages, in the projector role, that pushes
//! them to members who are away.
//!
//! - It reads `MessageSent` only, from where it last acknowledged (new messages only, the
//!   first time), and passes by messages older than `max_age`: a notifier back after an
//!   outage does not wake devices for yesterday.
//! - Recipients are decided on the read models as of the message: it waits (bounded) for
//!   the chats projection to reach the message, then takes the members of that moment
//!   but the sender, with a live session that subscribed. A member is passed by while
//!   online (any gateway connection: the app is open), when they blocked the sender, and
//!   when they muted the chat unless the message mentions them.
//! - Pushes are gathered per device and chat for `batch` and go as one ("3 new
//!   messages", with the newest), carrying a `Topic` per chat so that a push service
//!   replaces an undelivered one rather than queue both.
//! - A push is encrypted to the device (RFC 8291, aes128gcm) and signed (VAPID). A push
//!   service that answers 404 or 410 ended the subscription: the notifier ends it in the
//!   log (`PushUnsubscribed`, reason `gone`). 429 and 5xx are tried again once, after
//!   `Retry-After` (at most 10 seconds).
//! - Pushes are notifications, not delivery: a crash between acknowledging a message and
//!   sending its push loses that push, and the message still reaches the device when the
//!   app opens. The log and the gateway carry delivery.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt as _;
use natter_access::presence::Presence;
use natter_commands::accounts::Accounts;
use natter_domain::chat::{Attachment, MESSAGES_KIND, MessageEvent, MessageSent};
use natter_domain::session::PushEndReason;
use natter_eventlog::subjects::Space;
use natter_eventlog::{EventLog, StoredEvent};
use natter_projections::reads::push::{PushRecipient, names, recipients};
use natter_projections::{Chats, Projection as _};
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::Vapid;
use crate::endpoint::check_endpoint;

/// The longest text a push carries, in characters: what a notification shows.
const PREVIEW_CHARS: usize = 240;
/// Pushes sent at once.
const CONCURRENT_PUSHES: usize = 16;

/// How the notifier behaves.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// How long pushes for one device and chat are gathered into one.
    pub batch: Duration,
    /// Messages older than this when read are not pushed.
    pub max_age: Duration,
    /// Endpoints on private addresses and plain http are taken (development, tests).
    pub allow_private: bool,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            batch: Duration::from_millis(1_000),
            max_age: Duration::from_secs(120),
            allow_private: false,
        }
    }
}

/// What the notifier needs.
#[derive(Debug, Clone)]
pub struct Notifier {
    pub log: EventLog,
    pub pool: PgPool,
    pub presence: Presence,
    pub accounts: Accounts,
    pub vapid: Arc<Vapid>,
    pub config: NotifierConfig,
}

/// What a push carries, as the web app's service worker reads it (JSON).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PushPayload {
    /// Always `messages`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub chat_id: Uuid,
    /// New messages gathered into this push.
    pub count: u32,
    /// The stream sequence of the newest: where the app opens the chat.
    pub sequence: u64,
    /// The newest message's id.
    pub message_id: Uuid,
    /// Whether the newest, or one before it in this push, names the member.
    pub mentioned: bool,
    /// `direct` or `group`; with previews only, as the names and text below.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    /// The newest message's text, cut to 240 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// What the newest message carries, if anything (`image`, `voice`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<String>,
}

/// Pushes waiting for their batch to close, per (session, chat).
struct Pending {
    recipient: PushRecipient,
    payload: PushPayload,
    due: tokio::time::Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("the notifier's consumer: {0}")]
    Consumer(String),
}

impl Notifier {
    /// Reads new messages and pushes them until `stop` turns true. A lost consumer (a
    /// NATS restart) is made again after a pause.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), NotifierError> {
        let http = crate::endpoint::client(self.config.allow_private);
        let mut pending: HashMap<(Uuid, Uuid), Pending> = HashMap::new();
        loop {
            let mut messages = match self.consumer().await {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(%error, "the notifier cannot read messages; trying again");
                    tokio::select! {
                        _ = stop.changed() => return Ok(()),
                        () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    }
                }
            };
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = stop.changed() => {
                        self.flush(&http, &mut pending, true).await;
                        return Ok(());
                    }
                    _ = tick.tick() => self.flush(&http, &mut pending, false).await,
                    next = messages.next() => match next {
                        Some(Ok(message)) => {
                            if let Ok(stored) = StoredEvent::from_consumed(&message) {
                                self.gather(&stored, &mut pending).await;
                            }
                            let _ = message.ack().await;
                        }
                        Some(Err(error)) => {
                            tracing::warn!(%error, "the notifier's consumer failed");
                            break;
                        }
                        None => break,
                    },
                }
            }
        }
    }

    async fn consumer(&self) -> Result<pull::Stream, NotifierError> {
        let failed = |e: &dyn std::fmt::Display| NotifierError::Consumer(e.to_string());
        let stream = self
            .log
            .jetstream()
            .get_stream_no_info(&self.log.config().stream)
            .await
            .map_err(|e| failed(&e))?;
        let consumer = stream
            .get_or_create_consumer(
                "natter-notifier",
                pull::Config {
                    durable_name: Some("natter-notifier".into()),
                    description: Some("pushes new messages to members who are away".into()),
                    filter_subject: self.log.subjects().kind(Space::Evt, MESSAGES_KIND),
                    deliver_policy: DeliverPolicy::New,
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    max_deliver: 3,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| failed(&e))?;
        consumer.messages().await.map_err(|e| failed(&e))
    }

    /// Adds a stored message's pushes to those pending.
    async fn gather(&self, stored: &StoredEvent, pending: &mut HashMap<(Uuid, Uuid), Pending>) {
        let envelope = &stored.envelope;
        if envelope.event_type != "MessageSent" {
            return;
        }
        let age = time::OffsetDateTime::now_utc() - stored.stored_at;
        if age > self.config.max_age {
            return;
        }
        let sent = match natter_schema::decode::<MessageEvent>(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        ) {
            Ok(MessageEvent::MessageSent(sent)) => sent,
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(sequence = stored.sequence, %error, "a message the notifier cannot read");
                return;
            }
        };
        if let Err(error) = self.gather_message(stored.sequence, &sent, pending).await {
            tracing::warn!(sequence = stored.sequence, %error, "deciding a message's pushes failed");
        }
    }

    async fn gather_message(
        &self,
        sequence: u64,
        sent: &MessageSent,
        pending: &mut HashMap<(Uuid, Uuid), Pending>,
    ) -> Result<(), sqlx::Error> {
        self.wait_for_chats(sequence).await;
        let recipients = recipients(&self.pool, sent.chat_id, sent.sender, sequence).await?;
        if recipients.is_empty() {
            return Ok(());
        }
        let names = names(&self.pool, sent.chat_id, sent.sender).await?;
        let due = tokio::time::Instant::now() + self.config.batch;
        let mut online: HashMap<Uuid, bool> = HashMap::new();
        for recipient in recipients {
            let mentioned = sent.mentions.contains(&recipient.user_id);
            if recipient.blocked_sender || (recipient.muted && !mentioned) {
                continue;
            }
            let is_online = match online.get(&recipient.user_id) {
                Some(known) => *known,
                None => {
                    let known = self
                        .presence
                        .is_online(recipient.user_id)
                        .await
                        .unwrap_or(false);
                    online.insert(recipient.user_id, known);
                    known
                }
            };
            if is_online {
                continue;
            }
            let payload = payload(sent, sequence, &names, recipient.previews, mentioned);
            let key = (recipient.session_id, sent.chat_id);
            match pending.get_mut(&key) {
                Some(waiting) => {
                    let count = waiting.payload.count + 1;
                    let mentioned = waiting.payload.mentioned || mentioned;
                    waiting.payload = PushPayload {
                        count,
                        mentioned,
                        ..payload
                    };
                }
                None => {
                    pending.insert(
                        key,
                        Pending {
                            recipient,
                            payload,
                            due,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Waits, for at most five seconds, until the chats read model has reached
    /// `sequence`, so that members, mutes and blocks are those of the message.
    async fn wait_for_chats(&self, sequence: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            match natter_projections::checkpoint(&self.pool, Chats::NAME, Chats::VERSION).await {
                Ok(reached) if reached >= sequence => return,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(_) => return,
            }
        }
    }

    /// Sends the pushes whose batch has closed (all of them if `all`).
    async fn flush(
        &self,
        http: &reqwest::Client,
        pending: &mut HashMap<(Uuid, Uuid), Pending>,
        all: bool,
    ) {
        let now = tokio::time::Instant::now();
        let due: Vec<(Uuid, Uuid)> = pending
            .iter()
            .filter(|(_, waiting)| all || waiting.due <= now)
            .map(|(key, _)| *key)
            .collect();
        if due.is_empty() {
            return;
        }
        let ready: Vec<Pending> = due.iter().filter_map(|key| pending.remove(key)).collect();
        futures::stream::iter(ready)
            .for_each_concurrent(CONCURRENT_PUSHES, |waiting| async move {
                self.send(http, &waiting.recipient, &waiting.payload).await;
            })
            .await;
    }

    /// Sends one push, and ends a subscription its push service says is gone.
    async fn send(&self, http: &reqwest::Client, recipient: &PushRecipient, payload: &PushPayload) {
        match push(
            http,
            &self.vapid,
            recipient,
            payload,
            self.config.allow_private,
        )
        .await
        {
            Ok(Sent::Delivered) => {}
            Ok(Sent::Gone) => {
                let ended = self
                    .accounts
                    .unsubscribe_push(
                        recipient.user_id,
                        recipient.session_id,
                        PushEndReason::Gone,
                        Some(recipient.endpoint.clone()),
                        natter_schema::Metadata::new(None, Uuid::now_v7()),
                    )
                    .await;
                if let Err(error) = ended {
                    tracing::warn!(%error, "ending a gone push subscription failed");
                }
            }
            Err(error) => {
                tracing::info!(session_id = %recipient.session_id, %error, "a push was not sent");
            }
        }
    }
}

fn payload(
    sent: &MessageSent,
    sequence: u64,
    names: &natter_projections::reads::push::PushNames,
    previews: bool,
    mentioned: bool,
) -> PushPayload {
    let text = sent.body.as_str();
    PushPayload {
        kind: "messages",
        chat_id: sent.chat_id,
        count: 1,
        sequence,
        message_id: sent.message_id,
        mentioned,
        chat_kind: previews.then(|| names.kind.clone()),
        chat_name: names.chat_name.clone().filter(|_| previews),
        sender_name: names.sender_name.clone().filter(|_| previews),
        text: (previews && !text.is_empty()).then(|| text.chars().take(PREVIEW_CHARS).collect()),
        attachment: sent
            .attachment
            .as_ref()
            .filter(|_| previews)
            .map(attachment_kind),
    }
}

/// What a push names an attachment: the media kind, `location` or `contact`.
fn attachment_kind(attachment: &Attachment) -> String {
    match attachment {
        Attachment::Media { kind, .. } => kind.clone(),
        Attachment::Location { .. } => "location".to_owned(),
        Attachment::Contact { .. } => "contact".to_owned(),
    }
}

/// How a push service answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// 404 or 410: the subscription no longer exists.
    Gone,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("the subscription cannot be sent to: {0}")]
    Subscription(String),
    #[error("the push service answered {0}")]
    Refused(reqwest::StatusCode),
    #[error("the push service could not be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
}

/// Encrypts `payload` to the recipient's device and posts it to their push service,
/// once more after a 429 or 5xx.
pub async fn push(
    http: &reqwest::Client,
    vapid: &Vapid,
    recipient: &PushRecipient,
    payload: &PushPayload,
    allow_private: bool,
) -> Result<Sent, PushError> {
    let bad = |what: &str| PushError::Subscription(what.to_owned());
    let url =
        check_endpoint(&recipient.endpoint, allow_private).map_err(|e| bad(&e.to_string()))?;
    let key = URL_SAFE_NO_PAD
        .decode(&recipient.p256dh)
        .map_err(|_| bad("p256dh"))?;
    let key = p256::PublicKey::from_sec1_bytes(&key).map_err(|_| bad("p256dh"))?;
    let auth = URL_SAFE_NO_PAD
        .decode(&recipient.auth)
        .map_err(|_| bad("auth"))?;
    if auth.len() != 16 {
        return Err(bad("auth"));
    }
    let auth = web_push_native::Auth::clone_from_slice(&auth);
    let body = serde_json::to_vec(payload).map_err(|e| bad(&e.to_string()))?;
    let urgency = if payload.mentioned || payload.chat_kind.as_deref() == Some("direct") {
        "high"
    } else {
        "normal"
    };
    for attempt in 0..2 {
        // Each attempt is encrypted afresh: a record's salt is never used twice.
        let encrypted =
            web_push_native::encrypt(body.clone(), &key, &auth).map_err(|e| bad(&e.to_string()))?;
        let response = http
            .post(url.clone())
            .header("TTL", "86400")
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Urgency", urgency)
            .header("Topic", payload.chat_id.simple().to_string())
            .header(
                "Authorization",
                vapid.authorization(&url, time::OffsetDateTime::now_utc()),
            )
            .body(encrypted)
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(Sent::Delivered);
        }
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Ok(Sent::Gone);
        }
        let again = status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
        if !again || attempt == 1 {
            return Err(PushError::Refused(status));
        }
        let wait = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(1)
            .min(10);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    Err(bad("unreachable"))
}
