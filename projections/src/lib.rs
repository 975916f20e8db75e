//! Projection workers: each reads the log from its checkpoint and writes its read model
//! and its checkpoint in one Postgres transaction, then acknowledges. Delivery is
//! at-least-once; events at or below the checkpoint are skipped, so effects are
//! exactly-once.
//!
//! Invariants:
//! - Nothing writes a read model but its projection; every read model can be dropped and
//!   rebuilt from the log.
//! - A read model's tables are `<name>_v<VERSION>` and its checkpoint is keyed by
//!   `(name, version)`, so a new version is built beside the live one (`build.rs`).
//! - The checkpoint moves only across a contiguous run of stream sequences, and a
//!   projection never skips an event of its kinds that it cannot read: it stops there
//!   (`runner.rs`).
//! - `apply` is idempotent: applying an event twice changes nothing.
//! - Only one runner per projection and database writes at a time (an advisory lock).

pub mod build;
pub mod chats;
mod lock;
pub mod media;
mod metrics;
pub mod reads;
mod runner;
pub mod sessions;
mod status;
pub mod user_directory;
pub mod verify;

use std::future::Future;

use natter_eventlog::StoredEvent;
use sqlx::PgConnection;

pub use chats::Chats;
pub use media::Media;
pub use metrics::ProjectionMetrics;
pub use runner::{
    ApplyError, Runner, RunnerError, apply_batch, checkpoint, consumer_name,
    projection_connect_options, reset, stalled,
};
pub use sessions::Sessions;
pub use status::{LastRebuild, ProjectionStatus, Stall, Status, status};
pub use user_directory::UserDirectory;

/// Every projection of this build, by name and version.
pub const CURRENT: &[(&str, i32)] = &[
    (UserDirectory::NAME, UserDirectory::VERSION),
    (Sessions::NAME, Sessions::VERSION),
    (Chats::NAME, Chats::VERSION),
    (Media::NAME, Media::VERSION),
];

/// An event a projection has decoded, with its place in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<E> {
    pub sequence: u64,
    pub event: E,
}

/// An event of a projection's kinds that it cannot read: a type or schema version of a
/// newer build, or a payload that does not match its schema. A projection stops there,
/// rather than skip it and move its checkpoint past an event it never applied.
#[derive(Debug, thiserror::Error)]
#[error("event at stream sequence {sequence} cannot be read: {error}")]
pub struct Undecodable {
    pub sequence: u64,
    pub error: natter_schema::SchemaError,
}

/// Decodes what `projection` needs of `events`, keeping their order.
pub fn decode_all<P: Projection>(
    projection: &P,
    events: &[StoredEvent],
) -> Result<Vec<Decoded<P::Event>>, Undecodable> {
    let mut decoded = Vec::with_capacity(events.len());
    // Other kinds' events are none of its business, as in the runner.
    let kinds = events
        .iter()
        .filter(|stored| P::KINDS.contains(&stored.envelope.aggregate_type.as_str()));
    for stored in kinds {
        let event = projection.decode(stored).map_err(|error| Undecodable {
            sequence: stored.sequence,
            error,
        })?;
        if let Some(event) = event {
            decoded.push(Decoded {
                sequence: stored.sequence,
                event,
            });
        }
    }
    Ok(decoded)
}

/// A read model built from the log. Its tables belong to it alone and are named with its
/// version (`<name>_v<version>`), so that a new version can be built beside the live one.
pub trait Projection: Send + Sync + 'static {
    const NAME: &'static str;
    const VERSION: i32;

    /// The aggregate kinds (subject tokens, `<prefix>.evt.<kind>.<id>`) whose events
    /// this projection reads. Its consumer delivers only those (but see
    /// [`Self::WHOLE_LOG_TO_CATCH_UP`]).
    const KINDS: &'static [&'static str];

    /// Far behind the log (a first start, a rebuild, a long stop), the consumer takes the
    /// whole log and the runner skips other kinds without parsing them; once caught up
    /// it takes only `KINDS` again. For a projection of several kinds that make up most
    /// of the log: the pinned NATS delivers a backlog through several subject filters
    /// at less than half the rate of no filter (measured: `docs/performance.md`), while
    /// live, filtered, others' events cost it nothing.
    const WHOLE_LOG_TO_CATCH_UP: bool = false;

    /// The tables of the read model, all named `<name>_v<VERSION>`. A rebuild builds copies
    /// of them beside the live ones and switches them in together.
    const TABLES: &'static [&'static str];

    /// The events this projection reads, decoded.
    type Event: Send + Sync + 'static;

    /// Picks and decodes an event this projection needs; `Ok(None)` for the others. An
    /// event it needs but cannot read is an error, never `None`: the runner stops there.
    /// The runner calls it while the previous batch is being written, so parsing costs
    /// the write path nothing.
    fn decode(
        &self,
        event: &StoredEvent,
    ) -> Result<Option<Self::Event>, natter_schema::SchemaError>;

    /// Applies a batch of events, in stream order, all newer than the checkpoint, inside
    /// the caller's transaction. Applying an event twice must change nothing.
    fn apply(
        &self,
        connection: &mut PgConnection,
        events: &[Decoded<Self::Event>],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Empties the read model, for a rebuild from the first event in place.
    fn reset(
        &self,
        connection: &mut PgConnection,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        async move {
            sqlx::query(&format!("TRUNCATE {}", Self::TABLES.join(", ")))
                .execute(connection)
                .await?;
            Ok(())
        }
    }
}
