//! Runs one projection: a durable consumer from the checkpoint, batches under backlog,
//! one transaction per batch, ack after commit.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use futures::StreamExt;
use natter_eventlog::{EventLog, LogError, StoredEvent};
use sqlx::{Connection, PgConnection, PgPool};
use tracing::Instrument;

use crate::{Projection, ProjectionMetrics};

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("consumer: {0}")]
    Consumer(String),
}

/// Runs one projection until shut down. Only one runner per projection and database is
/// active at a time (a Postgres advisory lock); others wait for it to go away.
#[derive(Debug)]
pub struct Runner<P: Projection> {
    log: EventLog,
    pool: PgPool,
    projection: P,
    metrics: ProjectionMetrics,
    max_batch: usize,
}

impl<P: Projection> Runner<P> {
    pub fn new(log: EventLog, pool: PgPool, projection: P, metrics: ProjectionMetrics) -> Self {
        Self {
            log,
            pool,
            projection,
            metrics,
            max_batch: 2_000,
        }
    }

    /// The most events applied in one transaction.
    #[must_use]
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
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
        let mut lock = self.pool.acquire().await?.detach();
        let key = format!("natter.projection.{}.v{}", P::NAME, P::VERSION);
        loop {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
                .bind(&key)
                .fetch_one(&mut lock)
                .await?;
            if locked {
                break;
            }
            tokio::select! {
                () = &mut *shutdown => return Ok(()),
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        tracing::info!(
            projection = P::NAME,
            version = P::VERSION,
            "projection running"
        );
        let result = self.consume(shutdown).await;
        // Closing the connection ends its session and so releases the lock.
        let _ = lock.close().await;
        result
    }

    /// One life of the consumer: recreated at the checkpoint, so that the Postgres
    /// checkpoint, not the consumer's memory, says where to resume.
    async fn consume(
        &self,
        shutdown: &mut (impl Future<Output = ()> + Unpin + Send),
    ) -> Result<(), RunnerError> {
        let from = checkpoint(&self.pool, P::NAME, P::VERSION).await?;
        let consumer = self.recreate_consumer(from).await?;
        let mut chunks = consumer
            .stream()
            .max_messages_per_batch(self.max_batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| RunnerError::Consumer(e.to_string()))?
            .ready_chunks(self.max_batch);
        let labels = ProjectionMetrics::labels(P::NAME, P::VERSION);
        loop {
            let chunk = tokio::select! {
                biased;
                () = &mut *shutdown => return Ok(()),
                chunk = chunks.next() => chunk,
            };
            let Some(chunk) = chunk else {
                return Err(RunnerError::Consumer("message stream ended".into()));
            };
            let mut events = Vec::with_capacity(chunk.len());
            let mut last = None;
            for message in chunk {
                let message = message.map_err(|e| RunnerError::Consumer(e.to_string()))?;
                match StoredEvent::from_consumed(&message) {
                    Ok(event) => events.push(event),
                    Err(error) => {
                        tracing::error!(projection = P::NAME, %error, "skipping unreadable event");
                        self.metrics.events_skipped.get_or_create(&labels).inc();
                    }
                }
                last = Some(message);
            }
            let Some(last) = last else { continue };
            let info = last
                .info()
                .map_err(|e| RunnerError::Consumer(e.to_string()))?;
            let (through, pending) = (info.stream_sequence, info.pending);
            let applied = apply_batch(&self.pool, &self.projection, &events, through).await?;
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
        }
    }

    async fn recreate_consumer(&self, checkpoint: u64) -> Result<PullConsumer, RunnerError> {
        let name = format!("projection_{}_v{}", P::NAME, P::VERSION);
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
                filter_subject: self.log.all_events(),
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

/// Applies the events newer than the checkpoint and moves the checkpoint to `through`
/// (at least the last event's sequence), in one transaction. Returns how many events
/// were applied; events at or below the checkpoint are skipped.
pub async fn apply_batch<P: Projection>(
    pool: &PgPool,
    projection: &P,
    events: &[StoredEvent],
    through: u64,
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let current = lock_checkpoint(&mut tx, P::NAME, P::VERSION).await?;
    let fresh: Vec<StoredEvent> = events
        .iter()
        .filter(|event| event.sequence > current)
        .cloned()
        .collect();
    let through = fresh
        .last()
        .map_or(through, |last| last.sequence.max(through));
    if through <= current {
        return Ok(0);
    }
    if !fresh.is_empty() {
        projection.apply(&mut tx, &fresh).await?;
    }
    sqlx::query("UPDATE projection_checkpoints SET sequence = $3, updated_at = now() WHERE name = $1 AND version = $2")
        .bind(P::NAME)
        .bind(P::VERSION)
        .bind(i64::try_from(through).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(fresh.len() as u64)
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

async fn lock_checkpoint(
    connection: &mut PgConnection,
    name: &str,
    version: i32,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .bind(version)
    .execute(&mut *connection)
    .await?;
    let sequence: i64 = sqlx::query_scalar(
        "SELECT sequence FROM projection_checkpoints WHERE name = $1 AND version = $2 FOR UPDATE",
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
    sqlx::query("UPDATE projection_checkpoints SET sequence = 0, updated_at = now() WHERE name = $1 AND version = $2")
        .bind(P::NAME)
        .bind(P::VERSION)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
