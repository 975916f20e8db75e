//! Runs one projection: a durable consumer from the checkpoint, batches under backlog,
//! one transaction per batch, ack after commit.
//!
//! A reader task fills batches from a durable pull consumer (as many events as are
//! pending, up to the batch size) and decodes them while the writer applies the previous
//! batch and its checkpoint in one transaction, then acks (`AckPolicy::All`, once per
//! batch). Exactly-once in effect:
//! - The checkpoint row is locked for the transaction (`lock_checkpoint`), and events at
//!   or below it are skipped; rows carry `last_sequence`, and updates apply only to older
//!   rows.
//! - The consumer delivers only the projection's kinds (`Projection::KINDS`, as subject
//!   filters): a projection of users never takes a message off the wire. A projection
//!   whose kinds are most of the log (`Projection::WHOLE_LOG_TO_CATCH_UP`: chats) takes
//!   all of it while far behind (a backlog of `Runner::with_whole_log_from` events or
//!   more) and skips the others unparsed, as the server delivers a backlog through
//!   several subject filters at less than half the rate. Caught up (nothing pending),
//!   the consumer's life ends and the next one is filtered; a filtered one that falls
//!   that far behind ends for one of the whole log.
//! - The checkpoint only moves across an unbroken run of deliveries: every new delivery
//!   carries the consumer's next delivery number, so a redelivery (a stream sequence
//!   already taken) is passed over, and a number past the next one (a delivery lost on
//!   its way, as when a cluster node dies with a pull request's messages in flight) ends
//!   the consumer's life: the runner starts a new one at its checkpoint. Applying on
//!   across the hole would have acknowledged the lost message unapplied and skipped it
//!   for good.
//! - Others' events still count for the checkpoint, so that a consistency token waits
//!   no longer on one read model than another: after 100 ms without a delivery, the
//!   runner reads the log's end and asks the stream's leader for its kinds' first event
//!   past what it applied; with none up to the end, the checkpoint moves to the end.
//! - A Postgres advisory lock, held on a dedicated connection, lets only one runner per
//!   projection and database work at a time. Before each batch the runner checks that
//!   connection: one that dropped took the lock with it, and the runner writes nothing
//!   more until it has taken the lock again.
//! - On every start, and after every reconnect once the keeper has made the stream again
//!   (a server with a fresh store has lost the consumer too), the runner deletes and
//!   recreates its durable consumer at checkpoint + 1: Postgres, not the consumer's
//!   memory, says where to resume. The consumer is named
//!   `projection_<name>_v<version>_<md5(database)[..12]>`, so two read models of one
//!   stream (a rebuild, a benchmark) never take each other's.
//! - An event of the projection's kinds that it cannot read (a type or version of a newer
//!   build) stops it there: it applies nothing past it, retries with backoff, records
//!   the stall (`/readyz` answers `projection_stalled`) and reports the sequence in
//!   `natter_projection_stalled_at`.
//! - A read model built from another log (the stream made anew, by its creation time)
//!   does not run on: `LogReplaced` until it is rebuilt.
//!
//! Batching: with nothing pending, a batch lingers 5 ms for more events (one transaction
//! where there were dozens). A batch holding no event the projection uses (of its kinds,
//! but not its concern) is acknowledged at once; its checkpoint is written with the next
//! batch that changes the read model, or after 100 ms, whichever comes first. The
//! workers' pool commits with `synchronous_commit = off`: the log is durable
//! and the checkpoint commits with the rows it covers, so a commit lost in a Postgres
//! crash is applied again from the log. That needs the writer to notice: a runner that
//! survives the crash still holds its consumer, which has read on past the lost batch.
//! So every batch checks that the checkpoint is where this writer last committed it
//! (`apply_batch`), and one behind it sends the runner back to the database's checkpoint
//! (`ApplyError::CheckpointBehind`). Figures: `docs/performance.md`.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, consumer::pull::MessagesError};
use futures::StreamExt;
use natter_eventlog::{EventLog, LogError, StoredEvent};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use crate::lock::AdvisoryLock;
use crate::{Decoded, Projection, ProjectionMetrics};

/// How long a checkpoint may trail events the projection has no use for.
const CHECKPOINT_LINGER: Duration = Duration::from_millis(100);

/// How far behind (events pending) a `WHOLE_LOG_TO_CATCH_UP` projection takes the whole
/// log: about a second of the log at its busiest.
const WHOLE_LOG_FROM: u64 = 10_000;

/// How long a batch under backlog waits for the next message before it goes as it is.
const BACKLOG_WAIT: Duration = Duration::from_millis(50);
/// With nothing pending, how long a batch waits for more: at a live rate of thousands of
/// events a second this writes one transaction where there would be dozens, for a few
/// milliseconds more of read-model lag.
const LIVE_LINGER: Duration = Duration::from_millis(5);

/// Why a batch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    /// The read model's checkpoint is behind what this writer committed: the database
    /// lost commits (a crash, with asynchronous commit). Read again from its checkpoint.
    #[error(
        "the read model's checkpoint is {found}, behind the {expected} written before: the \
         database lost a commit; reading again from its checkpoint"
    )]
    CheckpointBehind { found: u64, expected: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("consumer: {0}")]
    Consumer(String),
    /// A delivery went missing: the consumer handed over its delivery `found` while
    /// `expected` never came. Applying on would skip it for good.
    #[error("delivery gap: expected the consumer's delivery {expected}, got {found}")]
    Gap { expected: u64, found: u64 },
    /// The connection holding the projection's advisory lock dropped, and with it the
    /// lock: another runner may be writing.
    #[error("the projection's lock was lost with its connection")]
    LockLost,
    /// An event the projection needs but cannot read: it stops there (and says so in
    /// `natter_projection_stalled_at`) until a build that reads it is deployed.
    #[error(transparent)]
    Undecodable(#[from] crate::Undecodable),
    #[error("event at stream sequence {sequence} is not a readable envelope: {error}")]
    Unreadable { sequence: u64, error: String },
    /// The log was made anew (a wiped store) since the read model was built from the old
    /// one: its checkpoint means nothing in the new log, so it does not run on.
    #[error(
        "the log was made anew (created {now}; this read model was built from one created \
         {then}): its checkpoint {checkpoint} means nothing there; rebuild it \
         (natter projections rebuild)"
    )]
    LogReplaced {
        checkpoint: u64,
        then: time::OffsetDateTime,
        now: time::OffsetDateTime,
    },
}

/// The connection options projection workers should use: read models are derived, the
/// log is durable, and a checkpoint commits with the rows it covers, so a commit lost to
/// a Postgres crash is applied again from the log (`apply_batch` notices it). Not waiting
/// for the WAL flush (`synchronous_commit = off`) spares every batch an fsync.
pub fn projection_connect_options(
    options: sqlx::postgres::PgConnectOptions,
) -> sqlx::postgres::PgConnectOptions {
    options.options([("synchronous_commit", "off")])
}

/// Runs one projection until shut down. Only one runner per projection and database is
/// active at a time (a Postgres advisory lock); others wait for it to go away.
#[derive(Debug)]
pub struct Runner<P: Projection> {
    log: EventLog,
    pool: PgPool,
    projection: Arc<P>,
    metrics: ProjectionMetrics,
    max_batch: usize,
    whole_log_from: u64,
}

impl<P: Projection> Runner<P> {
    pub fn new(log: EventLog, pool: PgPool, projection: P, metrics: ProjectionMetrics) -> Self {
        Self {
            log,
            pool,
            projection: Arc::new(projection),
            metrics,
            max_batch: 2_000,
            whole_log_from: WHOLE_LOG_FROM,
        }
    }

    pub fn projection(&self) -> &Arc<P> {
        &self.projection
    }

    /// The most events applied in one transaction.
    #[must_use]
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// How many events behind a `WHOLE_LOG_TO_CATCH_UP` projection takes the whole log.
    #[must_use]
    pub fn with_whole_log_from(mut self, events: u64) -> Self {
        self.whole_log_from = events.max(1);
        self
    }

    /// Consumes until `shutdown` completes; a batch in progress is finished first.
    /// Failures are logged and retried with a backoff: the checkpoint says where to resume.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), RunnerError> {
        let span = tracing::info_span!("projection", name = P::NAME, version = P::VERSION);
        self.run_inner(shutdown).instrument(span).await
    }

    async fn run_inner(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), RunnerError> {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.session(&mut shutdown).await {
                Ok(()) => return Ok(()),
                Err(error) => {
                    tracing::error!(projection = P::NAME, %error, "projection failed; resuming from its checkpoint");
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Takes the projection's lock, then consumes until shutdown or a failure. The lock is
    /// held by a connection of its own, closed (and so released) when the session ends.
    async fn session(
        &self,
        shutdown: &mut (impl Future<Output = ()> + Unpin + Send),
    ) -> Result<(), RunnerError> {
        ensure_checkpoint(&self.pool, P::NAME, P::VERSION).await?;
        let key = format!("natter.projection.{}.v{}", P::NAME, P::VERSION);
        let mut lock = loop {
            if let Some(lock) = AdvisoryLock::try_take(&self.pool, &key).await? {
                break lock;
            }
            tokio::select! {
                () = &mut *shutdown => return Ok(()),
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
        tracing::info!(
            projection = P::NAME,
            version = P::VERSION,
            "projection running"
        );
        let mut link = self.log.link();
        let result = loop {
            match self.consume(shutdown, &mut link, &mut lock).await {
                Ok(Ended::Resumed) => {
                    tracing::info!(
                        projection = P::NAME,
                        "NATS reconnected; recreating the consumer at the checkpoint"
                    );
                }
                Ok(Ended::Switch { whole_log }) => {
                    tracing::info!(
                        projection = P::NAME,
                        whole_log,
                        "recreating the consumer at the checkpoint, {}",
                        if whole_log {
                            "of the whole log to catch up"
                        } else {
                            "caught up: of the projection's kinds only"
                        }
                    );
                }
                Ok(Ended::Shutdown) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        lock.release().await;
        result
    }

    /// One life of the consumer: recreated at the checkpoint, so that the Postgres
    /// checkpoint, not the consumer's memory, says where to resume. It ends at shutdown,
    /// and when the log's keeper has made the stream again after a reconnect: a server
    /// with a fresh store has lost the consumer too.
    async fn consume(
        &self,
        shutdown: &mut (impl Future<Output = ()> + Unpin + Send),
        link: &mut tokio::sync::watch::Receiver<natter_eventlog::Link>,
        lock: &mut AdvisoryLock,
    ) -> Result<Ended, RunnerError> {
        // A reconnect from here on calls for a new consumer.
        let life = link.borrow_and_update().resumed;
        let from = checkpoint(&self.pool, P::NAME, P::VERSION).await?;
        if let Err(error) = same_log(&self.pool, &self.log, P::NAME, P::VERSION, from).await {
            if let RunnerError::LogReplaced { checkpoint, .. } = &error {
                record_stall(&self.pool, P::NAME, P::VERSION, *checkpoint, &error).await?;
            }
            return Err(error);
        }
        let behind = self.log.last_sequence().await?.saturating_sub(from);
        let whole_log = P::WHOLE_LOG_TO_CATCH_UP && behind >= self.whole_log_from;
        let consumer = self.recreate_consumer(from, whole_log).await?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.max_batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| RunnerError::Consumer(e.to_string()))?;
        let labels = ProjectionMetrics::labels(P::NAME, P::VERSION);
        // Reading and decoding the next batch overlaps with writing this one.
        let (batches, mut ready) = mpsc::channel(2);
        let reader = tokio::spawn(read_batches(
            Arc::clone(&self.projection),
            self.log.clone(),
            messages,
            Cursor::after(from),
            self.max_batch,
            batches,
        ));
        let _stop_reader = AbortOnDrop(reader);
        // How far the projection has read past its written checkpoint through events it
        // has no use for. Written at most every CHECKPOINT_LINGER, or with the next
        // batch that changes the read model: a stream of other projections' events
        // costs this one a write now and then, not one per event.
        let mut unwritten: Option<u64> = None;
        // Where this life last committed the checkpoint (asynchronous commits: the
        // database may lose some, and apply_batch checks).
        let mut written = from;
        let mut written_at = tokio::time::Instant::now();
        // When the last batch came, or the log was last looked at for others' events.
        let mut quiet_since = written_at;
        loop {
            let linger = tokio::time::sleep_until(written_at + CHECKPOINT_LINGER);
            let quiet = tokio::time::sleep_until(quiet_since + CHECKPOINT_LINGER);
            let batch = tokio::select! {
                biased;
                () = &mut *shutdown => {
                    if let Some(through) = unwritten {
                        advance_checkpoint(&self.pool, P::NAME, P::VERSION, through).await?;
                    }
                    return Ok(Ended::Shutdown);
                }
                Ok(()) = async { link.wait_for(|now| now.resumed != life).await.map(drop) } => {
                    if let Some(through) = unwritten {
                        advance_checkpoint(&self.pool, P::NAME, P::VERSION, through).await?;
                    }
                    return Ok(Ended::Resumed);
                }
                () = linger, if unwritten.is_some() => {
                    if let Some(through) = unwritten.take() {
                        advance_checkpoint(&self.pool, P::NAME, P::VERSION, through).await?;
                        written = written.max(through);
                    }
                    written_at = tokio::time::Instant::now();
                    continue;
                }
                batch = ready.recv() => batch,
                // No event of this projection's kinds for a while: the checkpoint follows
                // the log over the others' events, which its consumer does not deliver.
                () = quiet => {
                    let applied = written.max(unwritten.unwrap_or(0));
                    match self.others_through(applied).await {
                        Ok(Some(end)) => {
                            advance_checkpoint(&self.pool, P::NAME, P::VERSION, end).await?;
                            written = end;
                            unwritten = None;
                            written_at = tokio::time::Instant::now();
                        }
                        Ok(None) => {}
                        // The next look may do; the consumer says if the log is gone.
                        Err(error) => tracing::debug!(projection = P::NAME, %error, "log end"),
                    }
                    quiet_since = tokio::time::Instant::now();
                    continue;
                }
            };
            quiet_since = tokio::time::Instant::now();
            let Batch { events, last } = match batch {
                Some(Ok(batch)) => batch,
                Some(Err(error)) => {
                    if let RunnerError::Undecodable(crate::Undecodable { sequence, .. })
                    | RunnerError::Unreadable { sequence, .. } = &error
                    {
                        self.metrics
                            .stalled_at
                            .get_or_create(&labels)
                            .set(i64::try_from(*sequence).unwrap_or(i64::MAX));
                        record_stall(&self.pool, P::NAME, P::VERSION, *sequence, &error).await?;
                    }
                    return Err(error);
                }
                None => return Err(RunnerError::Consumer("message stream ended".into())),
            };
            // Another runner may have taken the lock if this one's connection dropped:
            // write nothing more until it is taken again.
            if !lock.held().await {
                return Err(RunnerError::LockLost);
            }
            self.metrics.stalled_at.get_or_create(&labels).set(0);
            let info = last
                .info()
                .map_err(|e| RunnerError::Consumer(e.to_string()))?;
            let (through, pending) = (info.stream_sequence, info.pending);
            let applied = if events.is_empty() {
                // Nothing to apply: acknowledging first is safe, since a restart reads on
                // from the written checkpoint and finds nothing to apply again.
                unwritten = Some(through);
                if written_at.elapsed() >= CHECKPOINT_LINGER {
                    advance_checkpoint(&self.pool, P::NAME, P::VERSION, through).await?;
                    written = written.max(through);
                    unwritten = None;
                    written_at = tokio::time::Instant::now();
                }
                0
            } else {
                let applied =
                    apply_batch(&self.pool, &*self.projection, &events, written, through).await?;
                written = written.max(through);
                unwritten = None;
                written_at = tokio::time::Instant::now();
                applied
            };
            // Acknowledges everything up to `last` (AckPolicy::All). If we crash before
            // this, the redelivered events are at or below the checkpoint and skipped.
            last.ack()
                .await
                .map_err(|e| RunnerError::Consumer(e.to_string()))?;
            self.metrics
                .events_applied
                .get_or_create(&labels)
                .inc_by(applied);
            self.metrics
                .lag
                .get_or_create(&labels)
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
            tracing::debug!(
                projection = P::NAME,
                through,
                applied,
                pending,
                "batch applied"
            );
            if P::WHOLE_LOG_TO_CATCH_UP
                && let Some(whole_log) = switch_to(whole_log, pending, self.whole_log_from)
            {
                if let Some(through) = unwritten {
                    advance_checkpoint(&self.pool, P::NAME, P::VERSION, through).await?;
                }
                return Ok(Ended::Switch { whole_log });
            }
        }
    }

    /// The end of the log, if the events after `applied` up to it are all of other kinds
    /// than this projection's: its checkpoint may move there. Read at the stream's
    /// leader, so an event of its kinds acknowledged before the call is never passed
    /// over; one appended after it lies past the end read first.
    async fn others_through(&self, applied: u64) -> Result<Option<u64>, LogError> {
        let end = self.log.last_sequence().await?;
        if end <= applied {
            return Ok(None);
        }
        for kind in P::KINDS {
            let filter = self.log.events_of(kind);
            if let Some(next) = self.log.first_sequence_from(&filter, applied + 1).await?
                && next <= end
            {
                return Ok(None);
            }
        }
        Ok(Some(end))
    }

    /// The projection's durable consumer, recreated at the checkpoint: of the whole log,
    /// or of the projection's kinds.
    async fn recreate_consumer(
        &self,
        checkpoint: u64,
        whole_log: bool,
    ) -> Result<PullConsumer, RunnerError> {
        let name = consumer_name::<P>(&self.pool).await?;
        let stream = self
            .log
            .jetstream()
            .get_stream_no_info(&self.log.config().stream)
            .await
            .map_err(|e| RunnerError::Consumer(e.to_string()))?;
        // Absent the first time; any other failure shows up in the create below.
        let _ = stream.delete_consumer(&name).await;
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(name),
                description: Some(format!("projection {} v{}", P::NAME, P::VERSION)),
                filter_subjects: if whole_log {
                    vec![self.log.all_events()]
                } else {
                    P::KINDS
                        .iter()
                        .map(|kind| self.log.events_of(kind))
                        .collect()
                },
                deliver_policy: if checkpoint == 0 {
                    DeliverPolicy::All
                } else {
                    DeliverPolicy::ByStartSequence {
                        start_sequence: checkpoint + 1,
                    }
                },
                ack_policy: AckPolicy::All,
                ack_wait: Duration::from_secs(60),
                max_ack_pending: 10 * i64::try_from(self.max_batch).unwrap_or(1_000),
                ..Default::default()
            })
            .await
            .map_err(|e| RunnerError::Consumer(e.to_string()))?;
        Ok(consumer)
    }
}

/// Why one life of a consumer ended.
enum Ended {
    Shutdown,
    Resumed,
    /// Caught up on the whole log, or far behind on the projection's kinds: the next
    /// life takes the whole log or not.
    Switch {
        whole_log: bool,
    },
}

/// Whether a consumer with `pending` events still to deliver should give way to one of
/// the whole log (`Some(true)`) or of the projection's kinds (`Some(false)`): the whole
/// log only to catch up, until nothing is pending; the kinds until `whole_log_from`
/// events are pending.
fn switch_to(whole_log: bool, pending: u64, whole_log_from: u64) -> Option<bool> {
    match whole_log {
        true if pending == 0 => Some(false),
        false if pending >= whole_log_from => Some(true),
        _ => None,
    }
}

/// Applies the events newer than the checkpoint and moves the checkpoint to `through`
/// (at least the last event's sequence), in one transaction. Returns how many events
/// were applied; events at or below the checkpoint are skipped. `events` must be in
/// ascending sequence order.
pub async fn apply_batch<P: Projection>(
    pool: &PgPool,
    projection: &P,
    events: &[Decoded<P::Event>],
    written: u64,
    through: u64,
) -> Result<u64, ApplyError> {
    let mut tx = pool.begin().await?;
    let current = lock_checkpoint(&mut tx, P::NAME, P::VERSION).await?;
    // Commits are asynchronous (`projection_connect_options`): a Postgres crash can take
    // the last ones back, while the consumer reads on past them. Applying on would leave
    // a hole below the new checkpoint for good; so the checkpoint must be where this
    // writer last put it, or the caller reads again from the database's.
    if current < written {
        return Err(ApplyError::CheckpointBehind {
            found: current,
            expected: written,
        });
    }
    // Events arrive in stream order; those at or below the checkpoint were applied.
    let fresh = &events[events.partition_point(|event| event.sequence <= current)..];
    let through = fresh
        .last()
        .map_or(through, |last| last.sequence.max(through));
    if through <= current {
        return Ok(0);
    }
    if !fresh.is_empty() {
        projection.apply(&mut tx, fresh).await?;
    }
    set_checkpoint(&mut tx, P::NAME, P::VERSION, through).await?;
    tx.commit().await?;
    Ok(fresh.len() as u64)
}

/// Sets the checkpoint inside the caller's transaction.
pub(crate) async fn set_checkpoint(
    connection: &mut PgConnection,
    name: &str,
    version: i32,
    sequence: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projection_checkpoints
         SET sequence = $3, updated_at = now(), stalled_at = NULL, stalled_reason = NULL
         WHERE name = $1 AND version = $2",
    )
    .bind(name)
    .bind(version)
    .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
    .execute(connection)
    .await?;
    Ok(())
}

/// Moves the checkpoint forward over events that change nothing in the read model.
async fn advance_checkpoint(
    pool: &PgPool,
    name: &str,
    version: i32,
    through: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projection_checkpoints
         SET sequence = $3, updated_at = now(), stalled_at = NULL, stalled_reason = NULL
         WHERE name = $1 AND version = $2 AND sequence < $3",
    )
    .bind(name)
    .bind(version)
    .bind(i64::try_from(through).unwrap_or(i64::MAX))
    .execute(pool)
    .await?;
    Ok(())
}

/// Checks that the log is the one the read model was built from (by the stream's
/// creation time), adopting the log's identity where none is recorded yet (a first run,
/// or a rebuild just switched in).
async fn same_log(
    pool: &PgPool,
    log: &EventLog,
    name: &str,
    version: i32,
    checkpoint: u64,
) -> Result<(), RunnerError> {
    let now = log.created().await?;
    // Postgres keeps microseconds.
    let now = now
        .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now);
    let then: Option<time::OffsetDateTime> = sqlx::query_scalar(
        "UPDATE projection_checkpoints SET log_created = COALESCE(log_created, $3)
         WHERE name = $1 AND version = $2 RETURNING log_created",
    )
    .bind(name)
    .bind(version)
    .bind(now)
    .fetch_optional(pool)
    .await?
    .flatten();
    match then {
        Some(then) if then != now => Err(RunnerError::LogReplaced {
            checkpoint,
            then,
            now,
        }),
        _ => Ok(()),
    }
}

/// Records that the projection stopped at `sequence` (it stays there until a build that
/// reads the event is deployed): `/readyz` and `natter projections status` show it.
async fn record_stall(
    pool: &PgPool,
    name: &str,
    version: i32,
    sequence: u64,
    reason: &RunnerError,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projection_checkpoints SET stalled_at = $3, stalled_reason = $4
         WHERE name = $1 AND version = $2",
    )
    .bind(name)
    .bind(version)
    .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
    .bind(reason.to_string())
    .execute(pool)
    .await?;
    Ok(())
}

/// Projections that stopped at an event they cannot read: name, version, sequence and
/// reason.
pub async fn stalled(pool: &PgPool) -> Result<Vec<(String, i32, u64, String)>, sqlx::Error> {
    let rows: Vec<(String, i32, i64, Option<String>)> = sqlx::query_as(
        "SELECT name, version, stalled_at, stalled_reason FROM projection_checkpoints
         WHERE stalled_at IS NOT NULL ORDER BY name, version",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, version, at, reason)| {
            let at = u64::try_from(at).unwrap_or(0);
            (name, version, at, reason.unwrap_or_default())
        })
        .collect())
}

/// The last sequence the projection has applied.
pub async fn checkpoint(pool: &PgPool, name: &str, version: i32) -> Result<u64, sqlx::Error> {
    let sequence: Option<i64> = sqlx::query_scalar(
        "SELECT sequence FROM projection_checkpoints WHERE name = $1 AND version = $2",
    )
    .bind(name)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    Ok(sequence.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
}

async fn ensure_checkpoint(pool: &PgPool, name: &str, version: i32) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .bind(version)
    .execute(pool)
    .await?;
    Ok(())
}

/// Reads the checkpoint and locks its row until the transaction ends, creating the row if
/// it is missing: one round trip.
pub(crate) async fn lock_checkpoint(
    connection: &mut PgConnection,
    name: &str,
    version: i32,
) -> Result<u64, sqlx::Error> {
    let sequence: i64 = sqlx::query_scalar(
        "INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2)
         ON CONFLICT (name, version) DO UPDATE SET name = EXCLUDED.name
         RETURNING sequence",
    )
    .bind(name)
    .bind(version)
    .fetch_one(&mut *connection)
    .await?;
    Ok(u64::try_from(sequence).unwrap_or(0))
}

/// Empties the projection's read model and moves its checkpoint back to 0 in one
/// transaction, so that its next run rebuilds it from the first event. The runner of
/// this projection must not be running.
pub async fn reset<P: Projection>(pool: &PgPool, projection: &P) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    lock_checkpoint(&mut tx, P::NAME, P::VERSION).await?;
    projection.reset(&mut tx).await?;
    set_checkpoint(&mut tx, P::NAME, P::VERSION, 0).await?;
    forget_log_identity(&mut tx, P::NAME, P::VERSION).await?;
    tx.commit().await
}

/// A read model (re)built from the log as it is now: its runner records the log's
/// identity on its next start.
pub(crate) async fn forget_log_identity(
    connection: &mut PgConnection,
    name: &str,
    version: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projection_checkpoints SET log_created = NULL WHERE name = $1 AND version = $2",
    )
    .bind(name)
    .bind(version)
    .execute(connection)
    .await?;
    Ok(())
}

/// A decoded batch, and its last message, whose ack covers the whole batch.
struct Batch<E> {
    events: Vec<Decoded<E>>,
    last: jetstream::Message,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads batches off the consumer and decodes them, until the receiver goes away.
///
/// Each batch holds only an unbroken run of new deliveries ([`Cursor`]): a redelivery of
/// a stream sequence already taken is passed over, and a delivery number past the next
/// (a delivery lost on its way, as when a cluster node dies with a pull request's
/// messages in flight) ends this consumer's life with [`RunnerError::Gap`]. The runner
/// then starts a new consumer at its checkpoint. Acknowledging the later message instead
/// (`AckPolicy::All`) would have acknowledged the lost one unapplied.
async fn read_batches<P: Projection>(
    projection: Arc<P>,
    log: EventLog,
    mut messages: pull::Stream,
    mut cursor: Cursor,
    max_batch: usize,
    batches: mpsc::Sender<Result<Batch<P::Event>, RunnerError>>,
) {
    loop {
        let batch = match messages.next().await {
            Some(first) => {
                next_batch(
                    &*projection,
                    &log,
                    first,
                    &mut messages,
                    &mut cursor,
                    max_batch,
                )
                .await
            }
            None => return,
        };
        // Only redeliveries of what was taken: nothing to apply or acknowledge.
        let batch = match batch {
            Ok(None) => continue,
            Ok(Some(batch)) => Ok(batch),
            Err(error) => Err(error),
        };
        let failed = batch.is_err();
        if batches.send(batch).await.is_err() || failed {
            return;
        }
    }
}

/// Under backlog (the server says messages are pending), keeps taking messages up to
/// the batch size; with none pending, takes what arrives within `LIVE_LINGER` of the
/// batch's first message.
async fn next_batch<P: Projection>(
    projection: &P,
    log: &EventLog,
    first: Result<jetstream::Message, MessagesError>,
    messages: &mut pull::Stream,
    cursor: &mut Cursor,
    max_batch: usize,
) -> Result<Option<Batch<P::Event>>, RunnerError> {
    let consumer_error = |e: &dyn std::fmt::Display| RunnerError::Consumer(e.to_string());
    let mut received = Some(first.map_err(|e| consumer_error(&e))?);
    let mut last = None;
    let mut events = Vec::with_capacity(max_batch.min(4_096));
    let mut taken = 0;
    let lingering_until = Instant::now() + LIVE_LINGER;
    while let Some(message) = received.take() {
        let info = message.info().map_err(|e| consumer_error(&e))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        match cursor.take(sequence, info.consumer_sequence) {
            Delivery::Again => {}
            Delivery::Gap { expected } => {
                return Err(RunnerError::Gap {
                    expected,
                    found: info.consumer_sequence,
                });
            }
            Delivery::Next => {
                taken += 1;
                // Another kind's event (from a whole-log consumer) counts for the
                // checkpoint, and is not even parsed.
                let wanted = log
                    .kind_of(&message.subject)
                    .is_none_or(|kind| P::KINDS.contains(&kind));
                if wanted {
                    let stored = StoredEvent::from_consumed(&message).map_err(|error| {
                        RunnerError::Unreadable {
                            sequence,
                            error: error.to_string(),
                        }
                    })?;
                    let event = projection
                        .decode(&stored)
                        .map_err(|error| crate::Undecodable { sequence, error })?;
                    if let Some(event) = event {
                        events.push(Decoded { sequence, event });
                    }
                }
                last = Some(message);
            }
        }
        if taken >= max_batch {
            break;
        }
        let wait = if pending == 0 {
            match lingering_until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => break,
            }
        } else {
            BACKLOG_WAIT
        };
        match tokio::time::timeout(wait, messages.next()).await {
            Ok(Some(message)) => received = Some(message.map_err(|e| consumer_error(&e))?),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(last.map(|last| Batch { events, last }))
}

/// Where a delivery stands against what the reader has taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// The next one: take it.
    Next,
    /// Taken before (a redelivery): pass it over.
    Again,
    /// A new delivery past the one expected, which went missing: never apply on across
    /// it.
    Gap { expected: u64 },
}

/// What a consumer's reader has taken: the stream sequences it has read through, and the
/// consumer's count of deliveries. The consumer delivers only the projection's kinds, so
/// stream sequences skip; its delivery count does not: every new delivery is the one
/// after the last (which ordered consumers rely on too). A redelivery brings a stream
/// sequence already taken, and may have used up a delivery number of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    /// The highest stream sequence taken.
    through: u64,
    /// The consumer's delivery number the next new delivery must carry.
    next_delivery: u64,
}

impl Cursor {
    /// A fresh consumer's, started after stream sequence `checkpoint`.
    fn after(checkpoint: u64) -> Self {
        Self {
            through: checkpoint,
            next_delivery: 1,
        }
    }

    /// Takes delivery `delivery` of stream sequence `sequence`, or says why not.
    fn take(&mut self, sequence: u64, delivery: u64) -> Delivery {
        if sequence <= self.through {
            self.next_delivery = self.next_delivery.max(delivery + 1);
            return Delivery::Again;
        }
        if delivery != self.next_delivery {
            return Delivery::Gap {
                expected: self.next_delivery,
            };
        }
        self.through = sequence;
        self.next_delivery += 1;
        Delivery::Next
    }
}

/// The name of a projection's durable consumer for the read models in `pool`'s
/// database. It carries the database's, so that read models in two databases (a rebuild
/// beside the live one, a benchmark) each have their own.
pub async fn consumer_name<P: Projection>(pool: &PgPool) -> Result<String, sqlx::Error> {
    let database: String = sqlx::query_scalar("SELECT left(md5(current_database()), 12)")
        .fetch_one(pool)
        .await?;
    Ok(format!("projection_{}_v{}_{database}", P::NAME, P::VERSION))
}

#[cfg(test)]
mod tests {
    use super::{Cursor, Delivery, switch_to};

    #[test]
    fn the_whole_log_is_taken_only_to_catch_up() {
        // Of the whole log: on while anything is pending, back to the kinds at none.
        assert_eq!(switch_to(true, 50_000, 10_000), None);
        assert_eq!(switch_to(true, 1, 10_000), None);
        assert_eq!(switch_to(true, 0, 10_000), Some(false));
        // Of the kinds: on until it falls that far behind.
        assert_eq!(switch_to(false, 0, 10_000), None);
        assert_eq!(switch_to(false, 9_999, 10_000), None);
        assert_eq!(switch_to(false, 10_000, 10_000), Some(true));
    }

    #[test]
    fn new_deliveries_are_taken_in_turn_and_a_missing_one_is_a_gap() {
        let mut cursor = Cursor::after(10);
        // Stream sequences skip other kinds' events; deliveries count on by one.
        assert_eq!(cursor.take(12, 1), Delivery::Next);
        assert_eq!(cursor.take(20, 2), Delivery::Next);
        // A redelivery of what was taken, whatever number it carries.
        assert_eq!(cursor.take(12, 1), Delivery::Again);
        assert_eq!(cursor.take(20, 3), Delivery::Again);
        // Delivery 3 went to that redelivery: the next new one is 4.
        assert_eq!(cursor.take(25, 4), Delivery::Next);
        // Delivery 5 never came.
        assert_eq!(cursor.take(31, 6), Delivery::Gap { expected: 5 });
        assert_eq!(
            cursor,
            Cursor {
                through: 25,
                next_delivery: 5
            }
        );
    }
}
