//! Comparing a read model with one rebuilt from the log, and checksums of read models.
//!
//! A verification compares at one point: it builds scratch tables up to the live
//! checkpoint, holds the live checkpoint row only while the scratch tables catch up to it
//! exactly, takes a snapshot, lets the live runner go on, and compares table by table
//! (rows as JSON, `EXCEPT ALL` both ways) in that snapshot.

use natter_eventlog::EventLog;
use sqlx::{Connection, PgConnection, PgPool};

use crate::build::{BuildError, BuildLock, OnProgress, Staged, drop_schema};
use crate::{Projection, checkpoint};

/// Rows shown per side of a difference.
const EXAMPLES: i64 = 5;

/// A table whose live rows and rebuilt rows differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub table: String,
    /// Rows the live table has and the rebuilt one lacks.
    pub only_live: u64,
    /// Rows the rebuilt table has and the live one lacks.
    pub only_rebuilt: u64,
    /// A few of them, as JSON, each with its side: `("live", row)` or `("rebuilt", row)`.
    pub examples: Vec<(String, String)>,
}

/// What a verification compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The checkpoint both read models stood at.
    pub at: u64,
    pub differences: Vec<Difference>,
}

/// The scratch schema of a verification of `P`.
pub fn verify_schema<P: Projection>() -> String {
    format!("natter_verify_{}_v{}", P::NAME, P::VERSION)
}

/// Rebuilds `P` into scratch tables up to the live checkpoint and compares them with the
/// live read model, row by row; then drops the scratch tables. The live runner is held
/// still only while the scratch tables catch up to its checkpoint exactly; the comparison
/// reads a snapshot taken at that point.
pub async fn verify<P: Projection>(
    log: &EventLog,
    pool: &PgPool,
    projection: &P,
    progress: OnProgress<'_>,
) -> Result<Verified, BuildError> {
    let schema = verify_schema::<P>();
    let lock = BuildLock::try_take(pool, &schema).await?;
    // A verification starts from nothing: a leftover scratch schema may be behind.
    drop_schema(pool, &schema).await?;
    let staged = Staged::open::<P>(pool, &schema).await?;
    staged
        .catch_up(log, projection, progress, || async {
            Ok(checkpoint(pool, P::NAME, P::VERSION).await?)
        })
        .await?;
    let mut hold = pool.begin().await?;
    let live: Option<i64> = sqlx::query_scalar(
        "SELECT sequence FROM projection_checkpoints WHERE name = $1 AND version = $2 FOR SHARE",
    )
    .bind(P::NAME)
    .bind(P::VERSION)
    .fetch_optional(&mut *hold)
    .await?;
    let at = live.map_or(0, |s| u64::try_from(s).unwrap_or(0));
    staged.build_to(log, projection, at, progress).await?;
    let mut snapshot = pool.acquire().await?.detach();
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut snapshot)
        .await?;
    sqlx::query("SELECT 1").execute(&mut snapshot).await?;
    hold.rollback().await?;
    let mut differences = Vec::new();
    for table in P::TABLES {
        if let Some(difference) = compare(&mut snapshot, table, &schema).await? {
            differences.push(difference);
        }
    }
    let _ = snapshot.close().await;
    staged.discard(pool).await?;
    lock.release().await;
    Ok(Verified { at, differences })
}

/// The rows of `public.table` and `schema.table` that the other lacks.
async fn compare(
    connection: &mut PgConnection,
    table: &str,
    schema: &str,
) -> Result<Option<Difference>, sqlx::Error> {
    let columns = columns(connection, table).await?;
    let sides = format!(
        "WITH live AS (SELECT row_to_json(t)::text AS r FROM (SELECT {columns} FROM public.{table}) t),
              rebuilt AS (SELECT row_to_json(t)::text AS r FROM (SELECT {columns} FROM \"{schema}\".{table}) t),
              only_live AS MATERIALIZED (SELECT r FROM live EXCEPT ALL SELECT r FROM rebuilt),
              only_rebuilt AS MATERIALIZED (SELECT r FROM rebuilt EXCEPT ALL SELECT r FROM live)"
    );
    let (only_live, only_rebuilt): (i64, i64) = sqlx::query_as(&format!(
        "{sides} SELECT (SELECT count(*) FROM only_live), (SELECT count(*) FROM only_rebuilt)"
    ))
    .fetch_one(&mut *connection)
    .await?;
    if only_live == 0 && only_rebuilt == 0 {
        return Ok(None);
    }
    let examples: Vec<(String, String)> = sqlx::query_as(&format!(
        "{sides} (SELECT 'live', r FROM only_live ORDER BY r LIMIT $1)
         UNION ALL (SELECT 'rebuilt', r FROM only_rebuilt ORDER BY r LIMIT $1)"
    ))
    .bind(EXAMPLES)
    .fetch_all(&mut *connection)
    .await?;
    Ok(Some(Difference {
        table: table.to_owned(),
        only_live: u64::try_from(only_live).unwrap_or(0),
        only_rebuilt: u64::try_from(only_rebuilt).unwrap_or(0),
        examples,
    }))
}

/// The live table's columns, in order, ready for a select list.
async fn columns(connection: &mut PgConnection, table: &str) -> Result<String, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
         WHERE attrelid = format('public.%I', $1::text)::regclass AND attnum > 0 AND NOT attisdropped",
    )
    .bind(table)
    .fetch_one(connection)
    .await
}

/// A checksum of each of `P`'s tables in `schema` (`public` for the live ones): the md5 of
/// its rows as JSON, sorted. Equal read models have equal checksums wherever they live.
pub async fn checksums<P: Projection>(
    pool: &PgPool,
    schema: &str,
) -> Result<Vec<(String, String)>, BuildError> {
    if schema != "public" {
        crate::build::check_schema_name(schema)?;
    }
    let mut connection = pool.acquire().await?;
    let mut sums = Vec::with_capacity(P::TABLES.len());
    for table in P::TABLES {
        let columns = columns(&mut connection, table).await?;
        let sum: String = sqlx::query_scalar(&format!(
            "SELECT md5(coalesce(string_agg(r, E'\\n' ORDER BY r COLLATE \"C\"), ''))
             FROM (SELECT row_to_json(t)::text AS r FROM (SELECT {columns} FROM \"{schema}\".{table}) t) rows"
        ))
        .fetch_one(&mut *connection)
        .await?;
        sums.push(((*table).to_owned(), sum));
    }
    Ok(sums)
}
