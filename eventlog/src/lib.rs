//! The event log: one append-only JetStream stream, the only source of truth.
//!
//! Subjects name aggregates (`<prefix>.evt.<kind>.<id>`, spelled by `subjects`). Appends
//! carry the expected last sequence of their subject (optimistic concurrency); several
//! events go in one atomic batch. Reads use batched direct gets, so they need no consumer.
//! Both `commands` (append, load) and `projections` (consume, status) need the log, and
//! neither may depend on the other: hence this crate of its own.
//!
//! Invariants:
//! - `EventLog::open` refuses a server older than 2.12 and keeps the stream as Natter needs
//!   it: file storage, delete and purge denied, direct gets and atomic batches allowed,
//!   and every stored event republished from `<prefix>.evt.>` to `<prefix>.live.>`, so
//!   live subscribers see only what is durably in the log. `EventLog::attach` changes
//!   nothing on the server: a read-only NATS user suffices.
//! - An append stores all its events or none, contiguously, and settles its own outcome:
//!   stored, refused, or `OutcomeUnknown`, never a guess (`append.rs`).
//! - Every event read is upcast to its type's current version (`read.rs`).
//! - After a reconnect the `Keeper` makes again what Natter keeps on NATS before the log
//!   counts as ready (`keeper.rs`).

mod append;
mod error;
mod keeper;
mod read;
pub mod subjects;
mod url;
mod version;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use tokio::sync::watch;

pub use append::{Appended, NewEvent};
pub use error::{AppendError, AppendErrorKind, LogError};
pub use keeper::{ConnectionEvents, EnsureStep, Keeper, Link};
pub use read::{Start, StoredEvent, decode_envelope};
pub use subjects::{Space, Subject, Subjects};
pub use url::NatsUrl;
pub use version::{MIN_SERVER_VERSION, ServerVersion, check_server_version};

/// Where the log lives and how it is kept.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// JetStream stream name, such as `NATTER`.
    pub stream: String,
    /// First subject token, such as `natter`; tests use a unique one each.
    pub prefix: String,
    /// Stream replicas: 1 on a single server, 3 in a cluster.
    pub replicas: usize,
    /// How long `Nats-Msg-Id` deduplication remembers an id.
    pub duplicate_window: Duration,
    /// How long an append waits for the server's acknowledgement before it counts as
    /// unconfirmed (and is retried, then looked up).
    pub ack_timeout: Duration,
}

impl LogConfig {
    pub fn new(stream: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            prefix: prefix.into(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            ack_timeout: Duration::from_secs(5),
        }
    }
}

/// A handle on the log; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventLog {
    client: async_nats::Client,
    js: jetstream::Context,
    config: LogConfig,
    /// Shared by every clone; moved by the [`Keeper`], if the log has one.
    link: Arc<watch::Sender<Link>>,
}

impl EventLog {
    /// Opens the log on a connected client: refuses a server older than
    /// [`MIN_SERVER_VERSION`], then creates the stream or brings its settings up to date.
    pub async fn open(client: async_nats::Client, config: LogConfig) -> Result<Self, LogError> {
        let log = Self::attach(client, config)?;
        log.ensure_stream().await?;
        Ok(log)
    }

    /// Opens the log for reading only: no change to the stream, so a NATS user with
    /// read permissions (subscriptions, direct gets, stream info) is enough.
    pub fn attach(client: async_nats::Client, config: LogConfig) -> Result<Self, LogError> {
        check_server_version(&client.server_info().version)?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.ack_timeout)
            .build(client.clone());
        Ok(Self {
            client,
            js,
            config,
            link: Arc::new(watch::Sender::new(Link::default())),
        })
    }

    /// Creates the stream, or brings its settings up to date.
    pub async fn ensure_stream(&self) -> Result<(), LogError> {
        self.js
            .create_or_update_stream(self.stream_config())
            .await
            .map_err(|e| LogError::Stream(e.to_string()))?;
        Ok(())
    }

    /// Follows the connection: readiness, and a count that moves on after each
    /// reconnect once the stream and buckets are in place again (see [`Keeper`]). A log
    /// without a keeper stays as it was opened.
    pub fn link(&self) -> watch::Receiver<Link> {
        self.link.subscribe()
    }

    /// Connected, and (once a keeper runs) with the stream and buckets in place on this
    /// very connection.
    pub fn is_ready(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
            && self.link.borrow().ready_on(self.connection())
    }

    /// How many times the client has connected: async-nats counts a connection before
    /// it delivers anything received on it.
    pub fn connection(&self) -> u64 {
        self.client
            .statistics()
            .connects
            .load(std::sync::atomic::Ordering::Acquire)
    }

    fn stream_config(&self) -> stream::Config {
        let subjects = self.subjects();
        stream::Config {
            name: self.config.stream.clone(),
            description: Some("Natter event log: the only source of truth".into()),
            subjects: vec![subjects.all(Space::Evt)],
            storage: stream::StorageType::File,
            num_replicas: self.config.replicas,
            retention: stream::RetentionPolicy::Limits,
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            allow_atomic_publish: true,
            duplicate_window: self.config.duplicate_window,
            // Stored events are republished for live delivery, so a gateway only ever
            // pushes what is durably in the log.
            republish: Some(stream::Republish {
                source: subjects.all(Space::Evt),
                destination: subjects.all(Space::Live),
                headers_only: false,
            }),
            ..Default::default()
        }
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// The subject grammar of this log's deployment.
    pub fn subjects(&self) -> Subjects {
        Subjects::new(self.config.prefix.as_str())
    }

    /// The subject of one aggregate: `<prefix>.evt.<kind>.<id>`.
    pub fn subject(&self, kind: &str, id: &str) -> String {
        self.subjects().of(Space::Evt, kind, id)
    }

    /// The aggregate kind of an event's subject: `<kind>` of `<prefix>.evt.<kind>.<id>`.
    pub fn kind_of<'a>(&self, subject: &'a str) -> Option<&'a str> {
        self.subjects()
            .parse(subject)
            .filter(|subject| subject.space == Space::Evt)
            .map(|subject| subject.kind)
    }

    /// The subject filter that matches every event of one aggregate kind.
    pub fn events_of(&self, kind: &str) -> String {
        self.subjects().kind(Space::Evt, kind)
    }

    /// The subject filter that matches every event in the log.
    pub fn all_events(&self) -> String {
        self.subjects().all(Space::Evt)
    }

    /// When the stream was created: what tells one log from another made anew under the
    /// same name (a wiped store starts its sequences again).
    pub async fn created(&self) -> Result<time::OffsetDateTime, LogError> {
        Ok(self.stream_info().await?.created)
    }

    /// The stream sequence of the newest event, 0 when the log is empty.
    pub async fn last_sequence(&self) -> Result<u64, LogError> {
        Ok(self.stream_info().await?.state.last_sequence)
    }

    async fn stream_info(&self) -> Result<stream::Info, LogError> {
        let stream = self
            .js
            .get_stream_no_info(&self.config.stream)
            .await
            .map_err(|e| LogError::Stream(e.to_string()))?;
        stream
            .get_info()
            .await
            .map_err(|e| LogError::Stream(e.to_string()))
    }
}
