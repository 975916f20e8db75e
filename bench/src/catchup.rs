//! The chats projection catching up on a backlog of messages, against raw batched
//! inserts of the same rows into a copy of its table (same columns, generated search
//! vector and indexes) with the same commit setting.

use std::time::{Duration, Instant};

use natter_eventlog::EventLog;
use natter_projections::Chats;
use sqlx::{PgPool, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{progress, project_all, with_bench_database};
use natter::settings::Settings;

/// A projection run and its raw baseline.
pub(super) struct CatchUp {
    pub events: u64,
    pub projected: Duration,
    pub rows: usize,
    pub raw: Duration,
    pub batch: usize,
}

impl CatchUp {
    /// Compares messages written per second, like for like: the log's other events
    /// (users, chats, markers, raw publishes) cost the projection a read each besides.
    pub fn print(&self) {
        let projected_rate = self.rows as f64 / self.projected.as_secs_f64();
        let raw_rate = self.rows as f64 / self.raw.as_secs_f64();
        println!(
            "  projection catch-up: {} messages in a log of {} events   {projected_rate:>9.0} messages/s  ({:.1} s)",
            self.rows,
            self.events,
            self.projected.as_secs_f64()
        );
        println!(
            "  raw batched insert of the same rows                       {raw_rate:>9.0} rows/s      ({:.1} s, batches of {}, same commit setting)",
            self.raw.as_secs_f64(),
            self.batch
        );
        println!(
            "  ratio projection / raw insert: {:.2}",
            projected_rate / raw_rate
        );
    }
}

/// Projects the whole log into a fresh database with the chats projection alone, then
/// inserts the messages it projected, raw, beside them.
pub(super) async fn chats_catch_up(
    settings: &Settings,
    log: &EventLog,
    batch: usize,
) -> anyhow::Result<CatchUp> {
    with_bench_database(settings, |pool, projection_pool| async move {
        let events = log.last_sequence().await?;
        let projected = project_all(
            log,
            &projection_pool,
            Chats,
            events,
            batch,
            "chats projection catching up on the backlog",
        )
        .await?;
        let rows = MessageRows::load(&pool).await?;
        let raw = rows.insert_raw(&projection_pool, batch).await?;
        Ok(CatchUp {
            events,
            projected,
            rows: rows.len(),
            raw,
            batch,
        })
    })
    .await
}

/// The rows of `messages_v1` that a raw insert writes, as columns.
#[derive(Default)]
pub(super) struct MessageRows {
    chats: Vec<Uuid>,
    sequences: Vec<i64>,
    ids: Vec<Uuid>,
    senders: Vec<Uuid>,
    client_ids: Vec<String>,
    bodies: Vec<String>,
    sent: Vec<OffsetDateTime>,
}

impl MessageRows {
    pub async fn load(pool: &PgPool) -> anyhow::Result<Self> {
        progress("loading the projected messages");
        let mut rows = Self::default();
        let mut fetched = sqlx::query(
            "SELECT chat_id, sequence, message_id, sender, client_id, body, sent_at
             FROM messages_v1 ORDER BY sequence",
        )
        .fetch(pool);
        while let Some(row) = futures::TryStreamExt::try_next(&mut fetched).await? {
            rows.chats.push(row.try_get("chat_id")?);
            rows.sequences.push(row.try_get("sequence")?);
            rows.ids.push(row.try_get("message_id")?);
            rows.senders.push(row.try_get("sender")?);
            rows.client_ids.push(row.try_get("client_id")?);
            rows.bodies.push(row.try_get("body")?);
            rows.sent.push(row.try_get("sent_at")?);
        }
        Ok(rows)
    }

    pub fn len(&self) -> usize {
        self.chats.len()
    }

    /// Inserts the rows into a new copy of `messages_v1` in batches, timed, then drops it.
    pub async fn insert_raw(&self, pool: &PgPool, batch: usize) -> anyhow::Result<Duration> {
        progress(&format!("raw batched insert of {} messages", self.len()));
        sqlx::query("CREATE TABLE raw_messages (LIKE messages_v1 INCLUDING ALL)")
            .execute(pool)
            .await?;
        let started = Instant::now();
        let batch = batch.max(1);
        for start in (0..self.len()).step_by(batch) {
            let range = start..(start + batch).min(self.len());
            sqlx::query(
                "INSERT INTO raw_messages (chat_id, sequence, message_id, sender, client_id, body, sent_at)
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::uuid[], $5::text[],
                                      $6::text[], $7::timestamptz[])",
            )
            .bind(&self.chats[range.clone()])
            .bind(&self.sequences[range.clone()])
            .bind(&self.ids[range.clone()])
            .bind(&self.senders[range.clone()])
            .bind(&self.client_ids[range.clone()])
            .bind(&self.bodies[range.clone()])
            .bind(&self.sent[range])
            .execute(pool)
            .await?;
        }
        let elapsed = started.elapsed();
        sqlx::query("DROP TABLE raw_messages").execute(pool).await?;
        Ok(elapsed)
    }
}
