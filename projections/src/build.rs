//! Building a projection's tables beside the live ones, from the log: for a rebuild that
//! switches readers over in one transaction, for a verification against the live read
//! model, and for the read model as it stood at a past point.
//!
//! A build lives in a Postgres schema of its own (`natter_rebuild_<name>_v<N>` for a
//! rebuild). Its tables are empty copies of the live ones in `public` (columns, defaults,
//! generated columns, checks, keys and indexes, under the same names, so later migrations
//! that name an index still apply), and it keeps its own `projection_checkpoints`, so that
//! the projection's code, which names its tables without a schema, writes there through
//! the build's `search_path`: the same `apply` builds live and staged models. An
//! interrupted build resumes from that checkpoint; an advisory lock per build schema stops
//! a second one.
//!
//! The build reads the log with direct gets, a page ahead of the batch being written, and
//! applies up to 8,192 events per transaction. B-tree indexes are there from the start
//! (writes may look rows up through them); others (the full-text GIN) are made once the
//! bulk is in, as a restore does.
//!
//! The switch (`rebuild`) locks the live checkpoint row (the live runner cannot commit
//! meanwhile), catches the staged tables up to it, moves the live tables to a
//! `natter_retired_…` schema and the staged ones into `public`, sets the checkpoint, and
//! records the rebuild in `projection_rebuilds`, all in one transaction. Readers wait at
//! most a moment for the table locks and then read the new tables: Postgres resolves names
//! again after a lock wait and re-plans prepared statements whose tables moved. The switch
//! waits at most 500 ms for a lock, shorter than `deadlock_timeout`, so if a reader and
//! the switch ever wait on each other the switch gives way and tries again; no request
//! fails.
//!
//! At start (`bring_up_to_date`, `NATTER_AUTO_REBUILD`), a process whose projection
//! version has no checkpoint row while an older version has one builds the new version
//! beside the old tables and switches it in before its runner starts; meanwhile `/readyz`
//! answers 503 `rebuilding`, so a rolling deploy keeps sending traffic to the old
//! processes, which read their own, older tables. Processes starting together build once:
//! the others wait on the build's lock. The old version's tables stay until a migration
//! drops them.
//!
//! A past point (`build_at`: `natter projections build --at-seq N`, or `--at-time`, the
//! last event stored by then) is a bounded build into a schema the analyst names, stopped
//! at N; the schema's `projection_checkpoints` says which point it holds.

use std::time::Duration;

use natter_eventlog::{EventLog, LogError};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::lock::AdvisoryLock;
use crate::runner::{forget_log_identity, lock_checkpoint, set_checkpoint};
use crate::{Decoded, Projection, apply_batch, checkpoint};

/// Events read from the log per request.
const PAGE: usize = 1024;
/// The most events applied in one transaction.
const MAX_BATCH: usize = 8_192;
/// A catch-up round this close to its target leaves the rest to the switch.
pub(crate) const CLOSE_ENOUGH: u64 = 2_000;
/// How long the switch waits for a table lock before it lets readers go and tries again.
/// Shorter than Postgres's `deadlock_timeout` (1 s): if a reader and the switch ever wait
/// on each other, the switch gives way, not the reader.
const SWITCH_LOCK_TIMEOUT: &str = "500ms";
const SWITCH_ATTEMPTS: u32 = 40;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error(transparent)]
    Apply(#[from] crate::runner::ApplyError),
    /// A build stops at an event it cannot read, as the runner does.
    #[error(transparent)]
    Undecodable(#[from] crate::Undecodable),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("a rebuild or build into schema {0} is already running")]
    AlreadyRunning(String),
    #[error(
        "{0:?} is not a usable schema name: lower-case letters, digits and _, not public or pg_*"
    )]
    BadSchema(String),
    #[error(
        "schema {schema} already holds the read model at sequence {at}, past {wanted}; drop it or choose another"
    )]
    SchemaAhead {
        schema: String,
        at: u64,
        wanted: u64,
    },
    #[error("schema {0} holds tables that are not a build of this projection; choose another")]
    NotABuild(String),
    #[error("the switch could not lock the read model's tables after {0} attempts")]
    SwitchTimedOut(u32),
}

/// How far a build has got, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The last sequence applied.
    pub through: u64,
    /// The sequence this round of the build runs to.
    pub target: u64,
    /// Events applied to the read model so far in this call.
    pub applied: u64,
}

/// Called after every batch a build writes.
pub type OnProgress<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// A projection's tables in a schema beside the live ones.
#[derive(Debug)]
pub struct Staged {
    schema: String,
    /// Connections whose `search_path` is the staged schema.
    pool: PgPool,
}

impl Staged {
    /// Opens `schema` for projection `P`, creating it with empty copies of the live
    /// tables and a checkpoint at 0 if it is missing, or resuming the build it holds. A
    /// build left with some tables gone (its switch committed, the clean-up did not)
    /// starts again; a schema holding `P`'s tables that is not a build of `P` is refused.
    /// `pool` reaches the live read models.
    pub async fn open<P: Projection>(pool: &PgPool, schema: &str) -> Result<Self, BuildError> {
        check_schema_name(schema)?;
        let mut tx = pool.begin().await?;
        let tables: Vec<&str> = P::TABLES
            .iter()
            .copied()
            .chain(["projection_checkpoints"])
            .collect();
        let present: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = ANY($2)",
        )
        .bind(schema)
        .bind(&tables)
        .fetch_one(&mut *tx)
        .await?;
        let ours = present > 0 && build_checkpoint::<P>(&mut tx, schema).await?.is_some();
        if present > 0 && !ours {
            return Err(BuildError::NotABuild(schema.to_owned()));
        }
        if ours && usize::try_from(present).ok() != Some(tables.len()) {
            tracing::warn!(schema, "an incomplete build: starting it again");
            drop_schema_in(&mut tx, schema).await?;
        }
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&mut *tx)
            .await?;
        for table in &tables {
            copy_table(&mut tx, table, schema).await?;
        }
        sqlx::query(&format!(
            "INSERT INTO \"{schema}\".projection_checkpoints (name, version) VALUES ($1, $2)
             ON CONFLICT DO NOTHING"
        ))
        .bind(P::NAME)
        .bind(P::VERSION)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let options = (*pool.connect_options())
            .clone()
            .options([("search_path", schema)]);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Self {
            schema: schema.to_owned(),
            pool,
        })
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The last sequence applied to the staged tables.
    pub async fn checkpoint<P: Projection>(&self) -> Result<u64, BuildError> {
        Ok(checkpoint(&self.pool, P::NAME, P::VERSION).await?)
    }

    /// Applies the log from the staged checkpoint up to `target`, reading the next page
    /// while the last is written. Returns the new checkpoint (at least `target`, unless it
    /// already was past it).
    pub async fn build_to<P: Projection>(
        &self,
        log: &EventLog,
        projection: &P,
        target: u64,
        progress: OnProgress<'_>,
    ) -> Result<u64, BuildError> {
        let from = self.checkpoint::<P>().await?;
        if from >= target {
            return Ok(from);
        }
        let (pages, mut ready) = mpsc::channel::<Result<Page<P::Event>, BuildError>>(4);
        let read = read_pages(log, projection, from + 1, target, pages);
        // Owns the receiver: if a write fails, dropping it stops the reader.
        let write = async move {
            let mut applied = 0;
            let mut through = from;
            while let Some(page) = ready.recv().await {
                let mut page = page?;
                let mut events = std::mem::take(&mut page.events);
                // Take what else has been read, up to a batch.
                while events.len() < MAX_BATCH {
                    match ready.try_recv() {
                        Ok(next) => {
                            let next = next?;
                            events.extend(next.events);
                            page.through = next.through;
                        }
                        Err(_) => break,
                    }
                }
                applied +=
                    apply_batch(&self.pool, projection, &events, through, page.through).await?;
                through = through.max(page.through);
                progress(Progress {
                    through,
                    target,
                    applied,
                });
            }
            Ok::<_, BuildError>(through)
        };
        let ((), through) = tokio::join!(read, write);
        through
    }

    /// Builds to `target()` round after round, until a round ends within
    /// `CLOSE_ENOUGH` of where `target()` has got to meanwhile. Returns the checkpoint.
    pub(crate) async fn catch_up<P, F, Fut>(
        &self,
        log: &EventLog,
        projection: &P,
        progress: OnProgress<'_>,
        mut target: F,
    ) -> Result<u64, BuildError>
    where
        P: Projection,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<u64, BuildError>>,
    {
        loop {
            let goal = target().await?;
            let through = self.build_to(log, projection, goal, progress).await?;
            if target().await?.saturating_sub(through) <= CLOSE_ENOUGH {
                return Ok(through);
            }
        }
    }

    /// Makes the indexes a build defers (see `IndexKind`); idempotent.
    pub async fn complete_indexes<P: Projection>(&self, pool: &PgPool) -> Result<(), BuildError> {
        let mut connection = pool.acquire().await?;
        for table in P::TABLES {
            for definition in
                index_definitions(&mut connection, table, &self.schema, IndexKind::Deferred).await?
            {
                sqlx::query(&definition).execute(&mut *connection).await?;
            }
        }
        Ok(())
    }

    /// Drops the schema and everything in it.
    pub async fn discard(self, pool: &PgPool) -> Result<(), BuildError> {
        self.pool.close().await;
        drop_schema(pool, &self.schema).await
    }
}

/// The checkpoint a build of `P` in `schema` holds, if `schema` holds one.
async fn build_checkpoint<P: Projection>(
    connection: &mut PgConnection,
    schema: &str,
) -> Result<Option<u64>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar(
        "SELECT to_regclass(format('%I.projection_checkpoints', $1::text)) IS NOT NULL",
    )
    .bind(schema)
    .fetch_one(&mut *connection)
    .await?;
    if !exists {
        return Ok(None);
    }
    let sequence: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT sequence FROM \"{schema}\".projection_checkpoints WHERE name = $1 AND version = $2"
    ))
    .bind(P::NAME)
    .bind(P::VERSION)
    .fetch_optional(&mut *connection)
    .await?;
    Ok(sequence.map(|s| u64::try_from(s).unwrap_or(0)))
}

/// Decoded events up to and including `through`.
struct Page<E> {
    events: Vec<Decoded<E>>,
    through: u64,
}

/// Reads the log from `from` to `target` in pages, decoding what the projection needs,
/// until the receiver goes away.
async fn read_pages<P: Projection>(
    log: &EventLog,
    projection: &P,
    mut from: u64,
    target: u64,
    pages: mpsc::Sender<Result<Page<P::Event>, BuildError>>,
) {
    let filter = log.all_events();
    while from <= target {
        let page = match log.read_page(&filter, from, PAGE, target).await {
            Ok(events) => {
                // An empty page: nothing left up to the target.
                let through = events.last().map_or(target, |last| last.sequence);
                from = through + 1;
                crate::decode_all(projection, &events)
                    .map(|events| Page { events, through })
                    .map_err(BuildError::from)
            }
            Err(error) => Err(BuildError::from(error)),
        };
        let failed = page.is_err();
        if pages.send(page).await.is_err() || failed {
            return;
        }
    }
}

/// Creates `schema.table` as an empty copy of `public.table` unless it exists: columns,
/// defaults, generated columns, checks, and the indexes and key constraints under their
/// own names, so that later migrations naming them still apply after a switch.
async fn copy_table(
    connection: &mut PgConnection,
    table: &str,
    schema: &str,
) -> Result<(), sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL")
            .bind(schema)
            .bind(table)
            .fetch_one(&mut *connection)
            .await?;
    if exists {
        return Ok(());
    }
    sqlx::query(&format!(
        "CREATE TABLE \"{schema}\".{table} (LIKE public.{table} INCLUDING DEFAULTS INCLUDING GENERATED \
         INCLUDING IDENTITY INCLUDING STORAGE INCLUDING CONSTRAINTS INCLUDING COMMENTS)"
    ))
    .execute(&mut *connection)
    .await?;
    let constraints: Vec<(String, String)> = sqlx::query_as(
        "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = format('public.%I', $1::text)::regclass AND contype IN ('p', 'u', 'x')
         ORDER BY conname",
    )
    .bind(table)
    .fetch_all(&mut *connection)
    .await?;
    for (name, definition) in constraints {
        sqlx::query(&format!(
            "ALTER TABLE \"{schema}\".{table} ADD CONSTRAINT {name} {definition}"
        ))
        .execute(&mut *connection)
        .await?;
    }
    for definition in index_definitions(connection, table, schema, IndexKind::Kept).await? {
        sqlx::query(&definition).execute(&mut *connection).await?;
    }
    Ok(())
}

/// Which of a table's indexes (those not backing a constraint) a build makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexKind {
    /// B-tree indexes: a projection's writes may look rows up through them.
    Kept,
    /// The others (full-text GIN and the like): costly to keep up row by row and read
    /// only by queries, so a build makes them once its bulk is in, as a restore would.
    Deferred,
}

/// The definitions of `public.table`'s indexes of one kind, made for `schema.table`
/// under the same names.
async fn index_definitions(
    connection: &mut PgConnection,
    table: &str,
    schema: &str,
    kind: IndexKind,
) -> Result<Vec<String>, sqlx::Error> {
    let definitions: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
         JOIN pg_class ix ON ix.oid = i.indexrelid JOIN pg_am am ON am.oid = ix.relam
         WHERE i.indrelid = format('public.%I', $1::text)::regclass
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
           AND (am.amname = 'btree') = $2
         ORDER BY i.indexrelid",
    )
    .bind(table)
    .bind(kind == IndexKind::Kept)
    .fetch_all(&mut *connection)
    .await?;
    let live = format!(" ON public.{table} ");
    let staged = format!(" ON \"{schema}\".{table} ");
    definitions
        .into_iter()
        .map(|definition| {
            if !definition.contains(&live) {
                return Err(sqlx::Error::Protocol(format!(
                    "an index definition of {table} that cannot be copied: {definition}"
                )));
            }
            Ok(definition.replacen(&live, &staged, 1).replacen(
                " INDEX ",
                " INDEX IF NOT EXISTS ",
                1,
            ))
        })
        .collect()
}

pub(crate) async fn drop_schema(pool: &PgPool, schema: &str) -> Result<(), BuildError> {
    check_schema_name(schema)?;
    let mut tx = pool.begin().await?;
    drop_schema_in(&mut tx, schema).await?;
    tx.commit().await?;
    Ok(())
}

/// Drops `schema` and everything in it inside the caller's transaction.
async fn drop_schema_in(connection: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    // Not a notice per table dropped with it.
    sqlx::query("SET LOCAL client_min_messages = warning")
        .execute(&mut *connection)
        .await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Schema names go into SQL text: only plain lower-case identifiers, and never one of
/// Postgres's own or the live one.
pub fn check_schema_name(schema: &str) -> Result<(), BuildError> {
    let plain = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain || schema == "public" || schema.starts_with("pg_") || schema == "information_schema" {
        return Err(BuildError::BadSchema(schema.to_owned()));
    }
    Ok(())
}

/// One build per schema at a time, across processes.
#[derive(Debug)]
pub struct BuildLock(AdvisoryLock);

impl BuildLock {
    /// Takes the lock of the build in `schema`, or says that another holds it.
    pub async fn try_take(pool: &PgPool, schema: &str) -> Result<Self, BuildError> {
        AdvisoryLock::try_take(pool, &format!("natter.build.{schema}"))
            .await?
            .map(Self)
            .ok_or_else(|| BuildError::AlreadyRunning(schema.to_owned()))
    }

    pub async fn release(self) {
        self.0.release().await;
    }
}

/// Why a rebuild ran, as recorded in `projection_rebuilds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `natter projections rebuild`.
    Manual,
    /// At start, for a version newer than the live tables'.
    Automatic,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Automatic => "automatic",
        }
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// The checkpoint the new tables went live at.
    pub through: u64,
    /// Where the replaced tables were kept, if they were.
    pub kept: Option<String>,
}

/// The schema a rebuild of `P` stages its tables in; an interrupted rebuild resumes there.
pub fn staging_schema<P: Projection>() -> String {
    format!("natter_rebuild_{}_v{}", P::NAME, P::VERSION)
}

/// How a rebuild runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildOptions {
    pub reason: Reason,
    /// Keep the replaced tables in a `natter_retired_…` schema instead of dropping them.
    pub keep_old: bool,
    /// Start from the first event even if an interrupted rebuild could be resumed (after
    /// a fix to the projection's code, say).
    pub fresh: bool,
}

impl RebuildOptions {
    pub fn manual() -> Self {
        Self {
            reason: Reason::Manual,
            keep_old: false,
            fresh: false,
        }
    }
}

/// Rebuilds `P`'s current version from the first event into new tables beside the live
/// ones, while the live ones keep serving and their runner keeps writing; then switches
/// readers over in one transaction and drops the replaced tables (or keeps them).
/// Refuses to run twice at once; resumes an interrupted rebuild unless told `fresh`.
/// `pool` reaches the live read models.
pub async fn rebuild<P: Projection>(
    log: &EventLog,
    pool: &PgPool,
    projection: &P,
    options: RebuildOptions,
    progress: OnProgress<'_>,
) -> Result<Rebuilt, BuildError> {
    let lock = BuildLock::try_take(pool, &staging_schema::<P>()).await?;
    let rebuilt = rebuild_locked(log, pool, projection, options, progress).await;
    lock.release().await;
    rebuilt
}

/// [`rebuild`], its lock already held.
async fn rebuild_locked<P: Projection>(
    log: &EventLog,
    pool: &PgPool,
    projection: &P,
    options: RebuildOptions,
    progress: OnProgress<'_>,
) -> Result<Rebuilt, BuildError> {
    let schema = staging_schema::<P>();
    if options.fresh {
        drop_schema(pool, &schema).await?;
    }
    let started_at = OffsetDateTime::now_utc();
    let staged = Staged::open::<P>(pool, &schema).await?;
    let resumed_from = staged.checkpoint::<P>().await?;
    // The bulk, then the deferred indexes, then what came meanwhile; all while the live
    // tables serve. The switch does the rest.
    let end = log.last_sequence().await?;
    staged.build_to(log, projection, end, progress).await?;
    staged.complete_indexes::<P>(pool).await?;
    staged
        .catch_up(log, projection, progress, || async {
            Ok(log.last_sequence().await?)
        })
        .await?;
    let retired = format!(
        "natter_retired_{}_v{}_{}",
        P::NAME,
        P::VERSION,
        started_at.unix_timestamp_nanos() / 1_000
    );
    let record = Record {
        reason: options.reason,
        started_at,
        resumed_from,
    };
    let through = switch(log, pool, projection, &staged, &retired, &record, progress).await?;
    staged.discard(pool).await?;
    let kept = if options.keep_old {
        Some(retired)
    } else {
        drop_schema(pool, &retired).await?;
        None
    };
    Ok(Rebuilt { through, kept })
}

struct Record {
    reason: Reason,
    started_at: OffsetDateTime,
    resumed_from: u64,
}

/// Moves the live tables out to `retired` and the staged ones in, and sets the live
/// checkpoint to the staged one, in one transaction. The live checkpoint's row is locked
/// first, so the live runner cannot commit meanwhile; if the staged tables are behind it,
/// they catch up while it is held.
async fn switch<P: Projection>(
    log: &EventLog,
    pool: &PgPool,
    projection: &P,
    staged: &Staged,
    retired: &str,
    record: &Record,
    progress: OnProgress<'_>,
) -> Result<u64, BuildError> {
    check_schema_name(retired)?;
    let schema = staged.schema();
    for attempt in 1..=SWITCH_ATTEMPTS {
        let mut tx = pool.begin().await?;
        sqlx::query(&format!("SET LOCAL lock_timeout = '{SWITCH_LOCK_TIMEOUT}'"))
            .execute(&mut *tx)
            .await?;
        let live = match lock_checkpoint(&mut tx, P::NAME, P::VERSION).await {
            Ok(live) => live,
            Err(error) if is_lock_timeout(&error) => {
                drop(tx);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let through = staged.build_to(log, projection, live, progress).await?;
        let tables: Vec<String> = P::TABLES
            .iter()
            .flat_map(|table| [format!("public.{table}"), format!("\"{schema}\".{table}")])
            .collect();
        let moved = async {
            sqlx::query(&format!(
                "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
                tables.join(", ")
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!("CREATE SCHEMA \"{retired}\""))
                .execute(&mut *tx)
                .await?;
            for table in P::TABLES {
                sqlx::query(&format!(
                    "ALTER TABLE public.{table} SET SCHEMA \"{retired}\""
                ))
                .execute(&mut *tx)
                .await?;
                sqlx::query(&format!(
                    "ALTER TABLE \"{schema}\".{table} SET SCHEMA public"
                ))
                .execute(&mut *tx)
                .await?;
            }
            // What is left of the build (its checkpoint) goes with it: a rebuild started
            // after this commits starts from the first event.
            drop_schema_in(&mut tx, schema).await?;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        match moved {
            Ok(()) => {}
            Err(error) if is_lock_timeout(&error) => {
                drop(tx);
                tracing::info!(
                    projection = P::NAME,
                    attempt,
                    "readers held the tables; trying the switch again"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(error) => return Err(error.into()),
        }
        set_checkpoint(&mut tx, P::NAME, P::VERSION, through).await?;
        forget_log_identity(&mut tx, P::NAME, P::VERSION).await?;
        sqlx::query(
            "INSERT INTO projection_rebuilds (name, version, reason, started_at, resumed_from, through)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(P::NAME)
        .bind(P::VERSION)
        .bind(record.reason.as_str())
        .bind(record.started_at)
        .bind(i64::try_from(record.resumed_from).unwrap_or(i64::MAX))
        .bind(i64::try_from(through).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(through);
    }
    Err(BuildError::SwitchTimedOut(SWITCH_ATTEMPTS))
}

fn is_lock_timeout(error: &sqlx::Error) -> bool {
    // lock_not_available
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "55P03")
}

/// Builds `P`'s read model as it stood at sequence `at` into `schema`, for analysts to
/// query; resumes a build of the same schema that stopped short of `at`. The schema's
/// `projection_checkpoints` says which point it holds. Returns that point.
pub async fn build_at<P: Projection>(
    log: &EventLog,
    pool: &PgPool,
    projection: &P,
    schema: &str,
    at: u64,
    progress: OnProgress<'_>,
) -> Result<u64, BuildError> {
    check_schema_name(schema)?;
    let lock = BuildLock::try_take(pool, schema).await?;
    let staged = Staged::open::<P>(pool, schema).await?;
    let holds = staged.checkpoint::<P>().await?;
    if holds > at {
        return Err(BuildError::SchemaAhead {
            schema: schema.to_owned(),
            at: holds,
            wanted: at,
        });
    }
    let at = at.min(log.last_sequence().await?);
    let through = staged.build_to(log, projection, at, progress).await?;
    staged.complete_indexes::<P>(pool).await?;
    staged.pool.close().await;
    lock.release().await;
    Ok(through)
}

/// What start-up finds of a projection's tables in the live database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// This version has been built (or is being built in place from the first event).
    Current,
    /// Nothing has been built: the runner builds in place from the first event, with no
    /// reader to keep serving.
    Fresh,
    /// Only an older version has been built: this version must be built beside it.
    Outdated { live_version: i32 },
}

/// What the live database holds of `name` at code version `version`.
pub async fn found(pool: &PgPool, name: &str, version: i32) -> Result<Found, sqlx::Error> {
    let versions: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT version, sequence FROM projection_checkpoints WHERE name = $1 ORDER BY version DESC",
    )
    .bind(name)
    .fetch_all(pool)
    .await?;
    if versions.iter().any(|(v, _)| *v == version) {
        return Ok(Found::Current);
    }
    Ok(versions
        .iter()
        .find(|(v, sequence)| *v < version && *sequence > 0)
        .map_or(Found::Fresh, |(v, _)| Found::Outdated { live_version: *v }))
}

/// At start: if only an older version of `P` has been built, builds this one beside it
/// and switches it in before the runner starts (when `automatic`; otherwise the runner
/// builds it in place and says so). Several processes starting at once build it once:
/// the others wait for the first. Readers of this version are not ready meanwhile (see
/// `outdated`).
pub async fn bring_up_to_date<P: Projection>(
    log: &EventLog,
    pool: &PgPool,
    projection: &P,
    automatic: bool,
) -> Result<(), BuildError> {
    let mut waiting = false;
    loop {
        let Found::Outdated { live_version } = found(pool, P::NAME, P::VERSION).await? else {
            return Ok(());
        };
        if !automatic {
            tracing::warn!(
                projection = P::NAME,
                live_version,
                version = P::VERSION,
                "automatic rebuilds are off: building the new version in place from the first event"
            );
            return Ok(());
        }
        if !waiting {
            tracing::info!(
                projection = P::NAME,
                live_version,
                version = P::VERSION,
                "rebuilding the read model for the new version beside the live one"
            );
        }
        let logged = |p: Progress| {
            if p.through == p.target || p.through % 100_000 < MAX_BATCH as u64 {
                tracing::info!(
                    projection = P::NAME,
                    through = p.through,
                    target = p.target,
                    "rebuilding"
                );
            }
        };
        let lock = match BuildLock::try_take(pool, &staging_schema::<P>()).await {
            Ok(lock) => lock,
            Err(BuildError::AlreadyRunning(_)) => {
                if !waiting {
                    tracing::info!(
                        projection = P::NAME,
                        "another process is rebuilding; waiting for it"
                    );
                }
                waiting = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        // Another process may have finished the build while this one waited for the lock.
        let built = match found(pool, P::NAME, P::VERSION).await {
            Ok(Found::Outdated { .. }) => {
                let options = RebuildOptions {
                    reason: Reason::Automatic,
                    ..RebuildOptions::manual()
                };
                rebuild_locked(log, pool, projection, options, &logged)
                    .await
                    .map(Some)
            }
            Ok(_) => Ok(None),
            Err(error) => Err(error.into()),
        };
        lock.release().await;
        if let Some(rebuilt) = built? {
            tracing::info!(
                projection = P::NAME,
                through = rebuilt.through,
                "rebuilt and switched in"
            );
        }
        return Ok(());
    }
}

/// The projections of this build whose version has not been built yet while an older
/// one has: their readers would find empty tables.
pub async fn outdated(pool: &PgPool) -> Result<Vec<&'static str>, sqlx::Error> {
    let mut outdated = Vec::new();
    for (name, version) in crate::CURRENT {
        if let Found::Outdated { .. } = found(pool, name, *version).await? {
            outdated.push(*name);
        }
    }
    Ok(outdated)
}
