//! The hub: one per gateway process. It holds the NATS subscriptions its connections
//! need (one per chat with a connected member, plus every chat's membership events),
//! puts live events in stream order, and routes each to the inboxes of the
//! connections watching its chat.
//!
//! It subscribes to every chat's own events (`<prefix>.live.chat.>`: membership and
//! names, which are few), so that a user who joins a chat nobody here watches is seen,
//! and to the messages and typing signals of each chat with a connected member
//! (`<prefix>.live.chatmsg.<chat>`, `<prefix>.signal.typing.<chat>`). Live events come
//! out of `ordered` in stream order; each connection then skips anything at or below its
//! cursor. A chat's subscription outlives its last watcher by a minute, so reconnecting
//! clients do not make it churn.
//!
//! A join while connected cannot open a gap. When a connected user joins a chat no one
//! here watched, the hub subscribes, flushes, and looks at the chat's last message: if
//! one was stored after the join, it may have gone by before the subscription, and the
//! joiner's connections are closed with `resync` (they resume from their cursors).
//! Otherwise every later message comes live.
//!
//! Live events that may have been missed close connections, never go missing. The check
//! is by construction, per subject: each watched chat keeps the last sequence seen of its
//! two subjects (its own and its messages'), from a baseline (the log's last sequence,
//! read once its subscriptions are in place). A republished event carries its subject's
//! previous sequence (`Nats-Last-Sequence`); one that is newer than what was seen means an
//! event of that chat was lost on its way (a full subscription, a reconnect), and the
//! chat's watchers are closed with `resync`. Notices of loss (async-nats's slow-consumer
//! and disconnect events) can themselves be dropped or come late, so they only hasten
//! this: on one, every connection is closed with `resync` and the chats' subscriptions
//! start afresh.
//!
//! A connection's inbox holds at most its capacity (`NATTER_GATEWAY_INBOX`) of events,
//! shared frames serialised once per event; a full inbox closes it with `slow_consumer`.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_nats::{Client, Message, Subscriber};
use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use futures::stream::{AbortHandle, Abortable, SelectAll};
use natter_domain::chat::{CHAT_KIND, MESSAGES_KIND};
use natter_eventlog::subjects::{PRESENCE, TYPING};
use natter_eventlog::{EventLog, Space, Subject, Subjects};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::membership::MembershipChange;
use crate::ordered;
use crate::protocol::{self, CloseReason};

pub type ConnId = u64;

/// How long a chat's subscription outlives its last watcher, so that clients that
/// reconnect do not make it churn.
const LINGER: Duration = Duration::from_secs(60);

/// What the hub puts in a connection's inbox.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A stored event of a chat, with the membership change it makes, if any.
    Event {
        sequence: u64,
        chat_id: Uuid,
        frame: Utf8Bytes,
        change: Option<Arc<MembershipChange>>,
    },
    /// Someone in the chat is typing (or stopped); never stored.
    Typing {
        chat_id: Uuid,
        from: Uuid,
        frame: Utf8Bytes,
    },
    /// A watched user came online or went offline.
    Presence { frame: Utf8Bytes },
}

/// A connection's end of its inbox. When the hub lets go of a connection (it fell
/// behind, or live events may have been missed), `dropped` says why and the channel
/// closes after what is already in it.
#[derive(Debug)]
pub struct Inbox {
    pub deliveries: mpsc::Receiver<Delivery>,
    pub dropped: Arc<OnceLock<CloseReason>>,
}

#[derive(Debug)]
enum Command {
    Register {
        conn: ConnId,
        user: Uuid,
        chats: Vec<Uuid>,
        inbox: mpsc::Sender<Delivery>,
        dropped: Arc<OnceLock<CloseReason>>,
        done: oneshot::Sender<()>,
    },
    Watch {
        conn: ConnId,
        chats: Vec<Uuid>,
        done: oneshot::Sender<()>,
    },
    Unwatch {
        conn: ConnId,
        chats: Vec<Uuid>,
    },
    Unregister {
        conn: ConnId,
    },
    WatchPresence {
        conn: ConnId,
        users: Vec<Uuid>,
        done: oneshot::Sender<()>,
    },
}

/// The hub has stopped (the process is shutting down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the gateway hub has stopped")]
pub struct HubGone;

/// Talks to the hub; cheap to clone.
#[derive(Debug, Clone)]
pub struct HubHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl HubHandle {
    /// Adds a connection watching `chats`. Once this returns, the subscriptions are in
    /// place on the server: every event of those chats stored from now on reaches the
    /// inbox, in stream order.
    pub async fn register(
        &self,
        conn: ConnId,
        user: Uuid,
        chats: Vec<Uuid>,
        capacity: usize,
    ) -> Result<Inbox, HubGone> {
        let (inbox, deliveries) = mpsc::channel(capacity);
        let dropped = Arc::new(OnceLock::new());
        let (done, registered) = oneshot::channel();
        self.send(Command::Register {
            conn,
            user,
            chats,
            inbox,
            dropped: Arc::clone(&dropped),
            done,
        })?;
        registered.await.map_err(|_| HubGone)?;
        Ok(Inbox {
            deliveries,
            dropped,
        })
    }

    /// Adds chats to a registered connection, with the same promise as `register`.
    pub async fn watch(&self, conn: ConnId, chats: Vec<Uuid>) -> Result<(), HubGone> {
        let (done, watched) = oneshot::channel();
        self.send(Command::Watch { conn, chats, done })?;
        watched.await.map_err(|_| HubGone)
    }

    /// Routes the presence changes of `users` to the connection from now on.
    pub async fn watch_presence(&self, conn: ConnId, users: Vec<Uuid>) -> Result<(), HubGone> {
        let (done, watched) = oneshot::channel();
        self.send(Command::WatchPresence { conn, users, done })?;
        watched.await.map_err(|_| HubGone)
    }

    pub fn unwatch(&self, conn: ConnId, chats: Vec<Uuid>) {
        let _ = self.send(Command::Unwatch { conn, chats });
    }

    pub fn unregister(&self, conn: ConnId) {
        let _ = self.send(Command::Unregister { conn });
    }

    fn send(&self, command: Command) -> Result<(), HubGone> {
        self.commands.send(command).map_err(|_| HubGone)
    }
}

type Live = SelectAll<Abortable<Subscriber>>;

/// The subscriptions, kept apart from the routing tables so both can be borrowed.
struct Subscriptions {
    /// Stored events: every chat's own events, and the messages of watched chats.
    live: Live,
    /// Typing signals of watched chats, and presence signals of watched users.
    signals: Live,
}

#[derive(Debug)]
struct Watched {
    watchers: HashSet<ConnId>,
    unsubscribe: [AbortHandle; 2],
    idle_since: Option<Instant>,
    /// The log's last sequence once the subscriptions were in place: events up to it
    /// reach watchers by their resume, not live.
    baseline: u64,
    /// The last live sequence seen of the chat's own subject and of its messages.
    seen: [Option<u64>; 2],
    /// Who a member's marker concerns.
    receipts: Receipts,
}

impl Watched {
    /// Notes a live event of the chat (`kind` "chat" or "chatmsg") stored at `sequence`,
    /// whose subject's previous event was `previous` (the stream's
    /// `Nats-Last-Sequence`). False when that previous event was stored after the
    /// subscription and never came: a live event was lost on its way (a full
    /// subscription, a reconnect), whatever notice of it did or did not arrive.
    fn note(&mut self, kind: usize, sequence: u64, previous: u64) -> bool {
        let seen = self.seen[kind].unwrap_or(self.baseline);
        self.seen[kind] = Some(seen.max(sequence));
        previous <= seen
    }
}

/// A member's read and delivered markers go to the members they may concern: the
/// member's own devices, and the senders of the messages the marker passes, whose ticks
/// it moves. Sent to every member, each member's delivered marker in a busy group of n
/// made n² frames a second, and each a reload of receipts in the web app (issue 18).
///
/// The hub knows, from what it saw live since the chat's baseline, each sender's latest
/// message and each member's previous marker. A marker from `previous` on concerns a
/// sender whose latest message is after `previous`; a sender with none after it had every
/// message passed by the previous marker, which reached them. Without that knowledge (a
/// member's first marker seen here, or a previous one below the baseline, before which
/// the hub saw nothing), a marker goes to everyone. A resume replays every marker.
///
/// A live event lost on its way may be a message the hub did not note: what it knew is
/// forgotten then, and only what comes after the loss counts (`since`).
#[derive(Debug, Default)]
struct Receipts {
    /// Every message event from this sequence on was seen here (with the baseline).
    since: u64,
    latest_sent: HashMap<Uuid, u64>,
    markers: HashMap<(Uuid, MarkerKind), u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum MarkerKind {
    Delivered,
    Read,
}

/// Who gets an event.
#[derive(Debug)]
enum Audience {
    Everyone,
    /// A marker's own user, and the given senders.
    MarkerOf {
        user: Uuid,
        senders: HashSet<Uuid>,
    },
}

impl Audience {
    fn admits(&self, user: Uuid) -> bool {
        match self {
            Self::Everyone => true,
            Self::MarkerOf { user: own, senders } => *own == user || senders.contains(&user),
        }
    }
}

/// What the hub reads of a message event: who sent it, or whose marker moved where.
#[derive(Debug, Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    event_type: std::borrow::Cow<'a, str>,
    payload: PeekPayload,
}

#[derive(Debug, Deserialize)]
struct PeekPayload {
    sender: Option<Uuid>,
    user: Option<Uuid>,
    up_to: Option<u64>,
}

impl Receipts {
    /// Notes the message event stored at `sequence` and says who gets it.
    fn audience(&mut self, baseline: u64, sequence: u64, envelope: &[u8]) -> Audience {
        let Ok(peek) = serde_json::from_slice::<Peek>(envelope) else {
            return Audience::Everyone;
        };
        let kind = match peek.event_type.as_ref() {
            "MessageSent" => {
                if let Some(sender) = peek.payload.sender {
                    self.latest_sent.insert(sender, sequence);
                }
                return Audience::Everyone;
            }
            "DeliveredMarked" => MarkerKind::Delivered,
            "ReadMarked" => MarkerKind::Read,
            _ => return Audience::Everyone,
        };
        let (Some(user), Some(up_to)) = (peek.payload.user, peek.payload.up_to) else {
            return Audience::Everyone;
        };
        let marker = self.markers.entry((user, kind)).or_insert(0);
        let previous = *marker;
        *marker = previous.max(up_to);
        // A baseline of 0 is not set yet: what came before the subscription is unknown.
        if previous == 0 || baseline == 0 || previous < baseline.max(self.since) {
            return Audience::Everyone;
        }
        let senders = self
            .latest_sent
            .iter()
            .filter(|&(_, &latest)| latest > previous)
            .map(|(&sender, _)| sender)
            .collect();
        Audience::MarkerOf { user, senders }
    }
}

#[derive(Debug)]
struct Conn {
    user: Uuid,
    inbox: mpsc::Sender<Delivery>,
    dropped: Arc<OnceLock<CloseReason>>,
    chats: HashSet<Uuid>,
    /// Users whose presence this connection watches.
    presence: HashSet<Uuid>,
}

#[derive(Debug)]
struct PresenceWatch {
    watchers: HashSet<ConnId>,
    unsubscribe: AbortHandle,
}

/// Starts the hub on its own NATS connection (`client`, whose connection events arrive
/// on `connection_events`) and returns its handle.
pub fn start(
    client: Client,
    connection_events: mpsc::Receiver<async_nats::Event>,
    log: EventLog,
    presence_changes: mpsc::UnboundedSender<crate::presence::Change>,
) -> (HubHandle, tokio::task::JoinHandle<()>) {
    let (commands, receiver) = mpsc::unbounded_channel();
    let hub = Hub {
        subjects: log.subjects(),
        client,
        log,
        chats: HashMap::new(),
        conns: HashMap::new(),
        users: HashMap::new(),
        presence: HashMap::new(),
        presence_changes,
    };
    let task = tokio::spawn(tokio::task::unconstrained(
        hub.run(receiver, connection_events),
    ));
    (HubHandle { commands }, task)
}

struct Hub {
    subjects: Subjects,
    client: Client,
    log: EventLog,
    chats: HashMap<Uuid, Watched>,
    conns: HashMap<ConnId, Conn>,
    users: HashMap<Uuid, HashSet<ConnId>>,
    presence: HashMap<Uuid, PresenceWatch>,
    presence_changes: mpsc::UnboundedSender<crate::presence::Change>,
}

impl Hub {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut connection_events: mpsc::Receiver<async_nats::Event>,
    ) {
        let mut subscriptions = Subscriptions {
            live: SelectAll::new(),
            signals: SelectAll::new(),
        };
        match self
            .client
            .subscribe(self.subjects.kind(Space::Live, CHAT_KIND))
            .await
        {
            Ok(chat_events) => {
                let (_, registration) = AbortHandle::new_pair();
                subscriptions
                    .live
                    .push(Abortable::new(chat_events, registration));
            }
            Err(error) => {
                tracing::error!(%error, "the gateway cannot subscribe to chat events");
                return;
            }
        }
        let mut sweep = tokio::time::interval(LINGER / 4);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command, &mut subscriptions).await,
                    None => break,
                },
                batch = std::future::poll_fn(|cx| {
                    ordered::poll_batch(&mut subscriptions.live, cx, sequence_of)
                }) => {
                    self.route(batch, &mut subscriptions).await;
                    tokio::task::yield_now().await;
                }
                Some(signal) = subscriptions.signals.next() => self.route_signal(&signal),
                Some(event) = connection_events.recv() => self.on_connection_event(&event),
                _ = sweep.tick() => self.sweep(),
            }
        }
        for conn in self.conns.keys().copied().collect::<Vec<_>>() {
            self.drop_conn(conn, CloseReason::GoingAway);
        }
    }

    async fn handle(&mut self, command: Command, subscriptions: &mut Subscriptions) {
        match command {
            Command::Register {
                conn,
                user,
                chats,
                inbox,
                dropped,
                done,
            } => {
                self.conns.insert(
                    conn,
                    Conn {
                        user,
                        inbox,
                        dropped,
                        chats: HashSet::new(),
                        presence: HashSet::new(),
                    },
                );
                let conns = self.users.entry(user).or_default();
                if conns.is_empty() {
                    let _ = self
                        .presence_changes
                        .send(crate::presence::Change::Came(user));
                }
                conns.insert(conn);
                self.watch_all(conn, &chats, subscriptions).await;
                let _ = done.send(());
            }
            Command::Watch { conn, chats, done } => {
                self.watch_all(conn, &chats, subscriptions).await;
                let _ = done.send(());
            }
            Command::Unwatch { conn, chats } => {
                for chat in chats {
                    self.unwatch(conn, chat);
                }
            }
            Command::Unregister { conn } => self.forget(conn),
            Command::WatchPresence { conn, users, done } => {
                self.watch_presence(conn, &users, subscriptions).await;
                let _ = done.send(());
            }
        }
    }

    /// Watches every chat for `conn`, then makes sure the server has the new
    /// subscriptions before the caller goes on.
    async fn watch_all(&mut self, conn: ConnId, chats: &[Uuid], subscriptions: &mut Subscriptions) {
        let mut subscribed = Vec::new();
        for &chat in chats {
            match self.watch(conn, chat, subscriptions).await {
                Ok(true) => subscribed.push(chat),
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(%error, %chat, "subscribing failed");
                    self.drop_conn(conn, CloseReason::ServerError);
                    return;
                }
            }
        }
        if let Err(error) = self.settle_subscriptions(&subscribed).await {
            tracing::error!(%error, "placing subscriptions failed");
            self.drop_conn(conn, CloseReason::ServerError);
        }
    }

    /// Makes sure the server has the new subscriptions of `chats`, then sets their
    /// baseline: the log's last sequence, after which every event must come live.
    async fn settle_subscriptions(&mut self, chats: &[Uuid]) -> Result<(), String> {
        if chats.is_empty() {
            return Ok(());
        }
        self.client.flush().await.map_err(|e| e.to_string())?;
        let baseline = self.log.last_sequence().await.map_err(|e| e.to_string())?;
        for chat in chats {
            if let Some(watched) = self.chats.get_mut(chat) {
                watched.baseline = baseline;
            }
        }
        Ok(())
    }

    /// Adds `conn` to the chat's watchers; true if the chat needed a new subscription.
    async fn watch(
        &mut self,
        conn: ConnId,
        chat: Uuid,
        subscriptions: &mut Subscriptions,
    ) -> Result<bool, async_nats::SubscribeError> {
        let Some(entry) = self.conns.get_mut(&conn) else {
            return Ok(false);
        };
        entry.chats.insert(chat);
        match self.chats.entry(chat) {
            Entry::Occupied(mut watched) => {
                let watched = watched.get_mut();
                watched.watchers.insert(conn);
                watched.idle_since = None;
                Ok(false)
            }
            Entry::Vacant(vacant) => {
                let events = self
                    .client
                    .subscribe(
                        self.subjects
                            .of(Space::Live, MESSAGES_KIND, &chat.to_string()),
                    )
                    .await?;
                let typing = self
                    .client
                    .subscribe(self.subjects.of(Space::Signal, TYPING, &chat.to_string()))
                    .await?;
                let (events_handle, events_registration) = AbortHandle::new_pair();
                let (typing_handle, typing_registration) = AbortHandle::new_pair();
                subscriptions
                    .live
                    .push(Abortable::new(events, events_registration));
                subscriptions
                    .signals
                    .push(Abortable::new(typing, typing_registration));
                vacant.insert(Watched {
                    watchers: HashSet::from([conn]),
                    unsubscribe: [events_handle, typing_handle],
                    idle_since: None,
                    // Set once the server has the subscription; until then, any
                    // previous event counts as missed.
                    baseline: 0,
                    seen: [None, None],
                    receipts: Receipts::default(),
                });
                Ok(true)
            }
        }
    }

    fn unwatch(&mut self, conn: ConnId, chat: Uuid) {
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.chats.remove(&chat);
        }
        if let Some(watched) = self.chats.get_mut(&chat) {
            watched.watchers.remove(&conn);
            if watched.watchers.is_empty() {
                watched.idle_since = Some(Instant::now());
            }
        }
    }

    fn forget(&mut self, conn: ConnId) {
        let Some(entry) = self.conns.remove(&conn) else {
            return;
        };
        for chat in entry.chats {
            if let Some(watched) = self.chats.get_mut(&chat) {
                watched.watchers.remove(&conn);
                if watched.watchers.is_empty() {
                    watched.idle_since = Some(Instant::now());
                }
            }
        }
        for user in entry.presence {
            if let Some(watch) = self.presence.get_mut(&user) {
                watch.watchers.remove(&conn);
                if watch.watchers.is_empty() {
                    watch.unsubscribe.abort();
                    self.presence.remove(&user);
                }
            }
        }
        if let Some(conns) = self.users.get_mut(&entry.user) {
            conns.remove(&conn);
            if conns.is_empty() {
                self.users.remove(&entry.user);
                let _ = self
                    .presence_changes
                    .send(crate::presence::Change::Left(entry.user, now_micros()));
            }
        }
    }

    async fn watch_presence(
        &mut self,
        conn: ConnId,
        users: &[Uuid],
        subscriptions: &mut Subscriptions,
    ) {
        let mut subscribed = false;
        for &user in users {
            let Some(entry) = self.conns.get_mut(&conn) else {
                return;
            };
            entry.presence.insert(user);
            if let Some(watch) = self.presence.get_mut(&user) {
                watch.watchers.insert(conn);
                continue;
            }
            let subject = self.subjects.of(Space::Signal, PRESENCE, &user.to_string());
            match self.client.subscribe(subject).await {
                Ok(subscription) => {
                    let (handle, registration) = AbortHandle::new_pair();
                    subscriptions
                        .signals
                        .push(Abortable::new(subscription, registration));
                    self.presence.insert(
                        user,
                        PresenceWatch {
                            watchers: HashSet::from([conn]),
                            unsubscribe: handle,
                        },
                    );
                    subscribed = true;
                }
                Err(error) => tracing::warn!(%error, "subscribing to presence failed"),
            }
        }
        if subscribed {
            let _ = self.client.flush().await;
        }
    }

    /// Lets go of a connection: its inbox closes after what it holds, and `reason`
    /// tells it why.
    fn drop_conn(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(entry) = self.conns.get(&conn) {
            let _ = entry.dropped.set(reason);
        }
        self.forget(conn);
    }

    async fn route(&mut self, batch: Vec<Message>, subscriptions: &mut Subscriptions) {
        for message in batch {
            let sequence = sequence_of(&message);
            let Some((kind, chat_id)) = self.chat_of(&message.subject) else {
                continue;
            };
            if sequence == 0 {
                tracing::warn!(subject = %message.subject, "live event without a sequence");
                continue;
            }
            let previous = header_u64(&message, "Nats-Last-Sequence");
            let index = usize::from(kind == MESSAGES_KIND);
            let mut audience = Audience::Everyone;
            if let Some(watched) = self.chats.get_mut(&chat_id) {
                if !watched.note(index, sequence, previous) {
                    tracing::warn!(subject = %message.subject, sequence, previous, "a live event was lost; the chat's watchers resume");
                    watched.receipts = Receipts {
                        since: sequence + 1,
                        ..Receipts::default()
                    };
                    self.resync(chat_id);
                    continue;
                }
                if kind == MESSAGES_KIND {
                    audience =
                        watched
                            .receipts
                            .audience(watched.baseline, sequence, &message.payload);
                }
            }
            match kind {
                MESSAGES_KIND => {
                    self.deliver(chat_id, sequence, &message.payload, None, &audience);
                }
                CHAT_KIND => {
                    let change = natter_eventlog::decode_envelope(&message.payload)
                        .ok()
                        .and_then(|envelope| MembershipChange::of_envelope(&envelope));
                    if let Some(change) = &change {
                        self.admit_joiners(chat_id, sequence, change, subscriptions)
                            .await;
                    }
                    let change = change.map(Arc::new);
                    self.deliver(
                        chat_id,
                        sequence,
                        &message.payload,
                        change.clone(),
                        &Audience::Everyone,
                    );
                    if let Some(change) = change {
                        for user in &change.left {
                            let conns: Vec<_> = self
                                .users
                                .get(user)
                                .map(|conns| conns.iter().copied().collect())
                                .unwrap_or_default();
                            for conn in conns {
                                self.unwatch(conn, chat_id);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Connected users who just joined a chat start watching it. If nobody here watched
    /// it, its subscription is new, and messages stored between the join and the
    /// subscription may have gone by: the joiners' connections then resume from their
    /// cursors instead.
    async fn admit_joiners(
        &mut self,
        chat_id: Uuid,
        sequence: u64,
        change: &MembershipChange,
        subscriptions: &mut Subscriptions,
    ) {
        let joiners: Vec<ConnId> = change
            .joined
            .iter()
            .filter_map(|user| self.users.get(user))
            .flatten()
            .copied()
            .collect();
        if joiners.is_empty() {
            return;
        }
        let mut subscribed = false;
        for &conn in &joiners {
            match self.watch(conn, chat_id, subscriptions).await {
                Ok(new) => subscribed |= new,
                Err(error) => {
                    tracing::error!(%error, chat = %chat_id, "subscribing failed");
                    self.drop_conn(conn, CloseReason::ServerError);
                }
            }
        }
        if !subscribed {
            return;
        }
        let subject = self.log.subject(MESSAGES_KIND, &chat_id.to_string());
        let missed = match self.settle_subscriptions(&[chat_id]).await {
            Ok(()) => match self.log.last_on_subject_current(&subject).await {
                Ok(last) => last.is_some_and(|last| last.sequence > sequence),
                Err(_) => true,
            },
            Err(_) => true,
        };
        if missed {
            for conn in joiners {
                self.drop_conn(conn, CloseReason::Resync);
            }
        }
    }

    /// Lets go of every connection watching `chat_id`: they resume from their cursors,
    /// which replays from the log what the live subscription lost.
    fn resync(&mut self, chat_id: Uuid) {
        let watchers: Vec<ConnId> = self
            .chats
            .get(&chat_id)
            .map(|watched| watched.watchers.iter().copied().collect())
            .unwrap_or_default();
        for conn in watchers {
            self.drop_conn(conn, CloseReason::Resync);
        }
    }

    fn deliver(
        &mut self,
        chat_id: Uuid,
        sequence: u64,
        envelope: &[u8],
        change: Option<Arc<MembershipChange>>,
        audience: &Audience,
    ) {
        let Some(watched) = self.chats.get(&chat_id) else {
            return;
        };
        if watched.watchers.is_empty() {
            return;
        }
        let frame = Utf8Bytes::from(protocol::event_frame(sequence, chat_id, envelope));
        let mut behind = Vec::new();
        for conn in &watched.watchers {
            let Some(entry) = self.conns.get(conn) else {
                continue;
            };
            if !audience.admits(entry.user) {
                continue;
            }
            let delivery = Delivery::Event {
                sequence,
                chat_id,
                frame: frame.clone(),
                change: change.clone(),
            };
            if entry.inbox.try_send(delivery).is_err() {
                behind.push(*conn);
            }
        }
        for conn in behind {
            self.drop_conn(conn, CloseReason::SlowConsumer);
        }
    }

    fn route_signal(&mut self, signal: &Message) {
        match self.subjects.parse(&signal.subject) {
            Some(Subject {
                space: Space::Signal,
                kind: TYPING,
                ..
            }) => self.route_typing(signal),
            Some(Subject {
                space: Space::Signal,
                kind: PRESENCE,
                id,
            }) => self.route_presence(id, signal),
            _ => {}
        }
    }

    fn route_presence(&mut self, user: &str, signal: &Message) {
        let Ok(user) = Uuid::parse_str(user) else {
            return;
        };
        let Some(watch) = self.presence.get(&user) else {
            return;
        };
        let Ok(frame) = std::str::from_utf8(&signal.payload) else {
            return;
        };
        let frame = Utf8Bytes::from(frame);
        for conn in &watch.watchers {
            if let Some(entry) = self.conns.get(conn) {
                let _ = entry.inbox.try_send(Delivery::Presence {
                    frame: frame.clone(),
                });
            }
        }
    }

    fn route_typing(&mut self, signal: &Message) {
        #[derive(Deserialize)]
        struct Typing {
            chat_id: Uuid,
            user_id: Uuid,
        }
        let Ok(typing) = serde_json::from_slice::<Typing>(&signal.payload) else {
            return;
        };
        let Some(watched) = self.chats.get(&typing.chat_id) else {
            return;
        };
        let Ok(frame) = std::str::from_utf8(&signal.payload) else {
            return;
        };
        let frame = Utf8Bytes::from(frame);
        for conn in &watched.watchers {
            if let Some(entry) = self.conns.get(conn)
                && entry.user != typing.user_id
            {
                // A typing signal is worth nothing late: a full inbox just skips it.
                let _ = entry.inbox.try_send(Delivery::Typing {
                    chat_id: typing.chat_id,
                    from: typing.user_id,
                    frame: frame.clone(),
                });
            }
        }
    }

    /// A lost connection to NATS or a subscription that overflowed means live events
    /// may have been missed: every connection resumes from its cursor. These notices
    /// can themselves be lost or come late, so they only hasten what the per-subject
    /// check in [`Self::route`] does by construction.
    fn on_connection_event(&mut self, event: &async_nats::Event) {
        match event {
            async_nats::Event::Disconnected | async_nats::Event::SlowConsumer(_) => {
                tracing::warn!(%event, "live events may have been missed; connections resume");
                for conn in self.conns.keys().copied().collect::<Vec<_>>() {
                    self.drop_conn(conn, CloseReason::Resync);
                }
                // With no watcher left, the chats' subscriptions start afresh (with a
                // new baseline) when connections come back.
                for (_, watched) in self.chats.drain() {
                    for handle in &watched.unsubscribe {
                        handle.abort();
                    }
                }
            }
            _ => {}
        }
    }

    /// Ends the subscriptions of chats nobody has watched for a while.
    fn sweep(&mut self) {
        let now = Instant::now();
        self.chats.retain(|_, watched| {
            let idle = watched
                .idle_since
                .is_some_and(|since| now.duration_since(since) >= LINGER);
            if idle {
                for handle in &watched.unsubscribe {
                    handle.abort();
                }
            }
            !idle
        });
    }

    /// The kind and chat of a live subject, `<prefix>.live.<kind>.<chat id>`.
    fn chat_of<'a>(&self, subject: &'a str) -> Option<(&'a str, Uuid)> {
        match self.subjects.parse(subject)? {
            Subject {
                space: Space::Live,
                kind,
                id,
            } => Some((kind, Uuid::parse_str(id).ok()?)),
            _ => None,
        }
    }
}

/// The stream sequence a republished message carries (0 if it has none).
fn sequence_of(message: &Message) -> u64 {
    header_u64(message, "Nats-Sequence")
}

/// A number header of a republished message, 0 if absent.
fn header_u64(message: &Message, name: &str) -> u64 {
    message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(name))
        .and_then(|value| value.as_str().parse().ok())
        .unwrap_or(0)
}

/// Now, to the microsecond: the precision Postgres keeps, so that the time in a frame,
/// in the log and in the read model is the same.
fn now_micros() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sent(sender: u128) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "event_type": "MessageSent",
            "payload": {"sender": Uuid::from_u128(sender), "body": "hi"}
        }))
        .unwrap()
    }

    fn delivered(user: u128, up_to: u64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "event_type": "DeliveredMarked",
            "payload": {"user": Uuid::from_u128(user), "up_to": up_to}
        }))
        .unwrap()
    }

    fn admitted(audience: &Audience) -> Vec<u128> {
        (1..=3)
            .filter(|&user| audience.admits(Uuid::from_u128(user)))
            .collect()
    }

    #[test]
    fn a_marker_goes_to_its_user_and_the_senders_it_may_pass() {
        let mut receipts = Receipts::default();
        let baseline = 10;
        assert!(matches!(
            receipts.audience(baseline, 11, &sent(1)),
            Audience::Everyone
        ));
        // User 3's first marker: its previous is unknown.
        assert_eq!(
            admitted(&receipts.audience(baseline, 12, &delivered(3, 11))),
            [1, 2, 3]
        );
        receipts.audience(baseline, 13, &sent(2));
        assert_eq!(
            admitted(&receipts.audience(baseline, 14, &delivered(3, 13))),
            [2, 3]
        );
        // Nothing new passed: only the user's own devices.
        assert_eq!(
            admitted(&receipts.audience(baseline, 15, &delivered(3, 13))),
            [3]
        );
    }

    #[test]
    fn what_came_before_the_baseline_or_a_loss_sends_a_marker_to_everyone() {
        let mut receipts = Receipts::default();
        // A previous marker below the baseline: messages before it were not seen here.
        receipts.audience(0, 5, &delivered(3, 4));
        assert_eq!(
            admitted(&receipts.audience(10, 11, &delivered(3, 9))),
            [1, 2, 3]
        );
        // After a loss at 20, only markers whose previous is past it are filtered.
        let mut receipts = Receipts {
            since: 21,
            ..Receipts::default()
        };
        receipts.audience(10, 22, &delivered(3, 19));
        assert_eq!(
            admitted(&receipts.audience(10, 23, &delivered(3, 22))),
            [1, 2, 3]
        );
        assert_eq!(admitted(&receipts.audience(10, 24, &delivered(3, 23))), [3]);
    }
}
