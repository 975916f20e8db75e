//! One WebSocket connection: hello, resume, the missed events, then live delivery and
//! the client's frames, until either side ends it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::SinkExt;
use natter_access::tokens::AccessClaims;
use natter_schema::Metadata;
use tokio::time::Instant;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::Shared;
use crate::hub::{ConnId, Delivery, Inbox};
use crate::membership::Membership;
use crate::protocol::{self, ClientFrame, CloseReason, ServerFrame, TypingState, VERSION};
use crate::sync::{self, Synced};

/// The socket's read buffer: small, since an idle connection keeps it.
pub const READ_BUFFER: usize = 1024;
/// Frames gather up to this many bytes before they are written out (a flush writes
/// them sooner): a burst goes out in few writes, and an idle connection keeps little.
pub const WRITE_BUFFER: usize = 8 * 1024;
/// The most a client's writes may queue in the socket writer.
pub const MAX_WRITE_BUFFER: usize = 4 * 1024 * 1024;
/// The largest frame a client may send.
pub const MAX_CLIENT_FRAME: usize = 16 * 1024;
/// Frames written to the socket before one flush, at most.
const MAX_FRAMES_PER_FLUSH: usize = 64;
/// Frames that could not be understood before the connection is closed.
const MAX_BAD_FRAMES: u32 = 16;
/// Typing frames a connection may send per window.
const TYPING_BURST: u32 = 10;
/// Read markers that move a connection may send per window (each goes to every member).
const READ_BURST: u32 = 30;
const FRAME_WINDOW: Duration = Duration::from_secs(10);

/// At most `max` frames of a kind per [`FRAME_WINDOW`].
#[derive(Debug)]
struct Burst {
    started: Instant,
    count: u32,
    max: u32,
}

impl Burst {
    fn new(max: u32) -> Self {
        Self {
            started: Instant::now(),
            count: 0,
            max,
        }
    }

    /// Counts one frame; false when the window's allowance is spent.
    fn allow(&mut self) -> bool {
        if self.started.elapsed() >= FRAME_WINDOW {
            self.started = Instant::now();
            self.count = 0;
        }
        self.count += 1;
        self.count <= self.max
    }
}

/// Where this connection has moved a chat's markers: one at or below them changes
/// nothing, and is neither stored nor sent to the members.
#[derive(Debug, Default, Clone, Copy)]
struct Marked {
    read: u64,
    delivered: u64,
}

/// How a connection ends.
#[derive(Debug)]
enum End {
    /// The client closed it or went away.
    Gone,
    /// The server closes it, saying why.
    Close(CloseReason),
}

type Step<T = ()> = Result<T, End>;

pub async fn serve(socket: WebSocket, shared: Arc<Shared>, claims: AccessClaims) {
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    shared.metrics.connections.inc();
    let span = tracing::info_span!("connection", id, user = %claims.sub);
    let mut connection = Connection {
        id,
        user: claims.sub,
        expires: expiry(&claims),
        claims,
        shared: Arc::clone(&shared),
        socket,
        membership: Membership::default(),
        seen: 0,
        delivered: HashMap::new(),
        marked: HashMap::new(),
        bad_frames: 0,
        presence: std::collections::HashSet::new(),
        typing: Burst::new(TYPING_BURST),
        reads: Burst::new(READ_BURST),
        last_heard: Instant::now(),
    };
    async {
        let end = connection.run().await;
        Box::pin(connection.finish(end)).await;
    }
    .instrument(span)
    .await;
    shared.hub.unregister(id);
    shared.metrics.connections.dec();
}

struct Connection {
    id: ConnId,
    user: Uuid,
    claims: AccessClaims,
    expires: Instant,
    shared: Arc<Shared>,
    socket: WebSocket,
    membership: Membership,
    /// The newest sequence handled (sent or passed over): the cursor.
    seen: u64,
    /// Delivered acknowledgements not yet written, per chat.
    delivered: HashMap<Uuid, u64>,
    marked: HashMap<Uuid, Marked>,
    bad_frames: u32,
    /// Users whose presence this connection watches.
    presence: std::collections::HashSet<Uuid>,
    typing: Burst,
    reads: Burst,
    last_heard: Instant,
}

impl Connection {
    async fn run(&mut self) -> Step {
        self.send_frame(&ServerFrame::Hello {
            v: VERSION,
            connection_id: self.id,
            user_id: self.user,
            heartbeat_secs: self.shared.config.heartbeat.as_secs(),
        })
        .await?;
        let cursor = self.await_resume().await?;
        // Boxed: the resume's state is large and short-lived; an idle connection's task
        // should not keep room for it.
        let synced = Box::pin(sync::sync(&self.shared, self.id, self.user, cursor))
            .await
            .map_err(|error| {
                if matches!(error.close_reason(), CloseReason::ServerError) {
                    tracing::error!(%error, "resuming failed");
                }
                End::Close(error.close_reason())
            })?;
        let Synced {
            membership,
            up_to,
            missed,
            inbox,
        } = synced;
        self.membership = membership;
        for event in missed {
            let Some(chat_id) = sync::chat_of(&event) else {
                continue;
            };
            let envelope = serde_json::to_vec(&event.envelope).unwrap_or_default();
            let frame = protocol::event_frame(event.sequence, chat_id, &envelope);
            self.send(Message::Text(frame.into())).await?;
            self.shared.metrics.replayed.inc();
        }
        self.seen = up_to;
        self.send_frame(&ServerFrame::Ready {
            v: VERSION,
            cursor: up_to,
        })
        .await?;
        self.live(inbox).await
    }

    /// Waits for the client's `resume`, answering pings meanwhile.
    async fn await_resume(&mut self) -> Step<Option<u64>> {
        let deadline = Instant::now() + self.shared.config.resume_timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.recv())
                .await
                .map_err(|_| End::Close(CloseReason::ResumeTimeout))?;
            let Some(frame) = self.client_frame(message).await? else {
                continue;
            };
            match frame {
                ClientFrame::Resume { cursor } => return Ok(cursor),
                ClientFrame::Ping { id } => self.pong(id).await?,
                ClientFrame::Auth { token } => self.reauthenticate(&token).await?,
                _ => {
                    self.refuse("resume_first", "send a resume frame first")
                        .await?;
                }
            }
        }
    }

    async fn live(&mut self, mut inbox: Inbox) -> Step {
        let config = &self.shared.config;
        let mut flush = tokio::time::interval(config.delivered_flush);
        let mut heartbeat = tokio::time::interval(config.heartbeat);
        heartbeat.tick().await;
        let mut revocations = self.shared.auth.revocations.watch();
        loop {
            tokio::select! {
                delivery = inbox.deliveries.recv() => match delivery {
                    Some(delivery) => self.deliver_all(delivery, &mut inbox).await?,
                    None => {
                        let reason = inbox.dropped.get().copied().unwrap_or(CloseReason::GoingAway);
                        return Err(End::Close(reason));
                    }
                },
                // Boxed, as the resume is: the commands a frame or a flush may run have
                // large states, and an idle connection's task should not keep room for
                // them (its future was 8.5 KiB with them inline).
                message = self.socket.recv() => {
                    if let Some(frame) = Box::pin(self.client_frame(message)).await? {
                        Box::pin(self.on_frame(frame)).await?;
                    }
                }
                _ = flush.tick() => {
                    if !self.delivered.is_empty() {
                        Box::pin(self.flush_delivered()).await;
                    }
                }
                _ = heartbeat.tick() => {
                    let heartbeat = self.shared.config.heartbeat;
                    if self.last_heard.elapsed() > heartbeat * 3 {
                        return Err(End::Close(CloseReason::Unresponsive));
                    }
                    self.send(Message::Ping(bytes::Bytes::new())).await?;
                }
                Ok(()) = revocations.changed() => {
                    if !self.shared.auth.revocations.admits(&self.claims) {
                        return Err(End::Close(CloseReason::SessionEnded));
                    }
                }
                () = tokio::time::sleep_until(self.expires) => {
                    return Err(End::Close(CloseReason::TokenExpired));
                }
            }
        }
    }

    /// Writes this delivery and any others already waiting, then flushes once: under
    /// load, one write to the socket carries many frames.
    async fn deliver_all(&mut self, first: Delivery, inbox: &mut Inbox) -> Step {
        let mut written = u64::from(self.deliver(first).await?);
        for _ in 1..MAX_FRAMES_PER_FLUSH {
            let Ok(next) = inbox.deliveries.try_recv() else {
                break;
            };
            written += u64::from(self.deliver(next).await?);
        }
        if written > 0 {
            self.shared.metrics.frames.inc_by(written);
            self.flush().await?;
        }
        Ok(())
    }

    /// Queues the delivery's frame if the user may see it; true if it did.
    async fn deliver(&mut self, delivery: Delivery) -> Step<bool> {
        match delivery {
            Delivery::Event {
                sequence,
                chat_id,
                frame,
                change,
            } => {
                // At or below the cursor: already sent from the log, or a repeat.
                if sequence <= self.seen {
                    return Ok(false);
                }
                self.seen = sequence;
                if let Some(change) = change {
                    self.membership.apply(chat_id, sequence, &change);
                }
                if !self.membership.admits(chat_id, sequence) {
                    return Ok(false);
                }
                self.feed(Message::Text(frame)).await?;
            }
            Delivery::Typing {
                chat_id,
                from,
                frame,
            } => {
                if from == self.user || !self.membership.is_member(chat_id) {
                    return Ok(false);
                }
                self.feed(Message::Text(frame)).await?;
            }
            Delivery::Presence { frame } => self.feed(Message::Text(frame)).await?,
        }
        Ok(true)
    }

    /// The frame in a message from the client; `None` for control frames and for
    /// frames that were refused.
    async fn client_frame(
        &mut self,
        message: Option<Result<Message, axum::Error>>,
    ) -> Step<Option<ClientFrame>> {
        let Some(Ok(message)) = message else {
            return Err(End::Gone);
        };
        self.last_heard = Instant::now();
        match message {
            Message::Text(text) => match serde_json::from_str::<ClientFrame>(text.as_str()) {
                Ok(frame) => Ok(Some(frame)),
                Err(error) => {
                    self.refuse("bad_frame", &format!("unreadable frame: {error}"))
                        .await?;
                    Ok(None)
                }
            },
            Message::Binary(_) => {
                self.refuse("text_frames_only", "frames are JSON text")
                    .await?;
                Ok(None)
            }
            Message::Close(_) => Err(End::Gone),
            Message::Ping(_) | Message::Pong(_) => Ok(None),
        }
    }

    async fn on_frame(&mut self, frame: ClientFrame) -> Step {
        match frame {
            ClientFrame::Resume { .. } => {
                self.refuse("already_resumed", "this connection has resumed already")
                    .await
            }
            ClientFrame::Ping { id } => self.pong(id).await,
            ClientFrame::Auth { token } => self.reauthenticate(&token).await,
            ClientFrame::Typing { chat_id, state } => self.typing(chat_id, state).await,
            ClientFrame::PresenceSubscribe { user_ids } => self.watch_presence(user_ids).await,
            ClientFrame::Delivered { up_to, .. } | ClientFrame::Read { up_to, .. }
                if i64::try_from(up_to).is_err() =>
            {
                self.refuse("bad_frame", "up_to is a stream sequence, at most 2^63 - 1")
                    .await
            }
            ClientFrame::Delivered { chat_id, up_to } => {
                if !self.membership.is_member(chat_id) {
                    return self
                        .refuse("not_a_member", "not a member of this chat")
                        .await;
                }
                let pending = self.delivered.entry(chat_id).or_default();
                *pending = (*pending).max(up_to);
                Ok(())
            }
            ClientFrame::Read { chat_id, up_to } => {
                if !self.membership.is_member(chat_id) {
                    return self
                        .refuse("not_a_member", "not a member of this chat")
                        .await;
                }
                let known = self.marked.get(&chat_id).copied().unwrap_or_default().read;
                if up_to <= known {
                    return Ok(());
                }
                if !self.reads.allow() {
                    return self
                        .refuse("rate_limited", "too many read markers; slow down")
                        .await;
                }
                let metadata = Metadata::new(Some(self.user), Uuid::now_v7());
                match self
                    .shared
                    .messages
                    .advance_read(chat_id, self.user, up_to, known, metadata)
                    .await
                {
                    Ok(_) => {
                        self.marked.entry(chat_id).or_default().read = up_to;
                        Ok(())
                    }
                    Err(error) => self.refuse_command(error).await,
                }
            }
        }
    }

    async fn typing(&mut self, chat_id: Uuid, state: TypingState) -> Step {
        if !self.membership.is_member(chat_id) {
            return self
                .refuse("not_a_member", "not a member of this chat")
                .await;
        }
        if !self.typing.allow() {
            return self
                .refuse("rate_limited", "too many typing frames; slow down")
                .await;
        }
        let frame = ServerFrame::Typing {
            v: VERSION,
            chat_id,
            user_id: self.user,
            state,
            expires_in_ms: protocol::TYPING_EXPIRES_MS,
        }
        .to_text();
        let subject = self.shared.log.subjects().of(
            natter_eventlog::Space::Signal,
            natter_eventlog::subjects::TYPING,
            &chat_id.to_string(),
        );
        if let Err(error) = self.shared.client.publish(subject, frame.into()).await {
            tracing::warn!(%error, "publishing a typing signal failed");
        }
        Ok(())
    }

    /// Starts watching the presence of the users the caller may see it of, and sends
    /// each one's presence now.
    async fn watch_presence(&mut self, users: Vec<Uuid>) -> Step {
        if users.len() > protocol::MAX_PRESENCE_PER_FRAME
            || self.presence.len() + users.len() > protocol::MAX_PRESENCE_PER_CONNECTION
        {
            return self
                .refuse(
                    "too_many_users",
                    "at most 64 users per frame and 256 per connection",
                )
                .await;
        }
        let mut visible = Vec::new();
        for user in users {
            if self.presence.contains(&user) {
                continue;
            }
            match natter_projections::reads::users::visible_last_seen(
                &self.shared.pool,
                self.user,
                user,
            )
            .await
            {
                Ok(Some(last_seen)) => visible.push((user, last_seen)),
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(%error, "reading presence visibility failed");
                    return self.refuse("server_error", "the server failed").await;
                }
            }
        }
        let ids: Vec<Uuid> = visible.iter().map(|(user, _)| *user).collect();
        self.presence.extend(&ids);
        self.shared
            .hub
            .watch_presence(self.id, ids)
            .await
            .map_err(|_| End::Close(CloseReason::GoingAway))?;
        for (user, last_seen) in visible {
            let online = self.shared.presence.is_online(user).await.unwrap_or(false);
            let frame = crate::presence::PresenceFrame::new(user, online, last_seen);
            self.send(Message::Text(frame.to_text().into())).await?;
        }
        Ok(())
    }

    async fn pong(&mut self, id: Option<String>) -> Step {
        if id
            .as_ref()
            .is_some_and(|id| id.len() > protocol::MAX_PING_ID)
        {
            return self
                .refuse("bad_frame", "a ping id is at most 64 bytes")
                .await;
        }
        self.send_frame(&ServerFrame::Pong {
            v: VERSION,
            id: id.as_deref(),
        })
        .await
    }

    /// Takes a fresh access token of the same user, so that the connection lives on.
    async fn reauthenticate(&mut self, token: &str) -> Step {
        let auth = &self.shared.auth;
        match auth.keys.verify(token) {
            Ok(claims) if claims.sub == self.user && auth.revocations.admits(&claims) => {
                self.expires = expiry(&claims);
                self.claims = claims;
                Ok(())
            }
            Ok(_) => {
                self.refuse(
                    "invalid_token",
                    "the token is not a valid token of this user",
                )
                .await
            }
            Err(error) => self.refuse(error.code(), "the token was refused").await,
        }
    }

    /// Writes the delivered acknowledgements gathered since the last flush: one event
    /// per chat at most.
    async fn flush_delivered(&mut self) {
        for (chat_id, up_to) in std::mem::take(&mut self.delivered) {
            let known = self
                .marked
                .get(&chat_id)
                .copied()
                .unwrap_or_default()
                .delivered;
            if up_to <= known {
                continue;
            }
            let metadata = Metadata::new(Some(self.user), Uuid::now_v7());
            match self
                .shared
                .messages
                .advance_delivered(chat_id, self.user, up_to, known, metadata)
                .await
            {
                Ok(_) => self.marked.entry(chat_id).or_default().delivered = up_to,
                Err(error) => {
                    tracing::debug!(%error, %chat_id, "a delivered acknowledgement was refused");
                }
            }
        }
    }

    async fn refuse_command(&mut self, error: natter_commands::messages::MessagesError) -> Step {
        let detail = error.to_string();
        if error.is_failure() {
            tracing::error!(%detail, "a command from the socket failed");
            return self.refuse(error.code(), "the server failed").await;
        }
        self.refuse(error.code(), &detail).await
    }

    /// Answers a frame with a non-fatal error; too many close the connection.
    async fn refuse(&mut self, code: &str, detail: &str) -> Step {
        self.bad_frames += 1;
        self.send_frame(&ServerFrame::Error {
            v: VERSION,
            code,
            detail,
            fatal: false,
        })
        .await?;
        if self.bad_frames > MAX_BAD_FRAMES {
            return Err(End::Close(CloseReason::ProtocolViolation));
        }
        Ok(())
    }

    async fn send_frame(&mut self, frame: &ServerFrame<'_>) -> Step {
        self.send(Message::Text(frame.to_text().into())).await
    }

    /// Queues a frame without flushing (it goes out with the next flush, or once the
    /// write buffer is full).
    async fn feed(&mut self, message: Message) -> Step {
        let timeout = self.shared.config.send_timeout;
        in_time(timeout, SinkExt::feed(&mut self.socket, message)).await
    }

    async fn flush(&mut self) -> Step {
        let timeout = self.shared.config.send_timeout;
        in_time(timeout, SinkExt::flush(&mut self.socket)).await
    }

    /// Sends one frame and flushes.
    async fn send(&mut self, message: Message) -> Step {
        let timeout = self.shared.config.send_timeout;
        in_time(timeout, self.socket.send(message)).await
    }

    /// Writes pending acknowledgements, then closes with the reason, if the server ends
    /// the connection.
    async fn finish(&mut self, end: Step) {
        self.flush_delivered().await;
        let Err(End::Close(reason)) = end else {
            return;
        };
        tracing::debug!(reason = reason.code(), "closing");
        self.shared
            .metrics
            .closed
            .get_or_create(&crate::metrics::Reason {
                reason: reason.code(),
            })
            .inc();
        let frame = ServerFrame::Error {
            v: VERSION,
            code: reason.code(),
            detail: reason.detail(),
            fatal: true,
        };
        if self.send_frame(&frame).await.is_ok() {
            let close = Message::Close(Some(CloseFrame {
                code: reason.close_code(),
                reason: Utf8Bytes::from_static(reason.code()),
            }));
            let _ = self.send(close).await;
        }
    }
}

/// A write to the socket: a client that does not take it within `timeout` is gone.
async fn in_time(
    timeout: Duration,
    write: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Step {
    match tokio::time::timeout(timeout, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Close(CloseReason::Unresponsive)),
    }
}

/// When the token's claims run out, as an instant of the runtime's clock.
fn expiry(claims: &AccessClaims) -> Instant {
    let left = claims.exp - time::OffsetDateTime::now_utc().unix_timestamp();
    Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0))
}
