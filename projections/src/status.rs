use natter_eventlog::EventLog;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

/// Where one projection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: String,
    pub version: i32,
    pub checkpoint: u64,
    /// Events in the log after the checkpoint.
    pub lag: u64,
    pub updated_at: OffsetDateTime,
}

/// Every projection that has a checkpoint, with its lag behind the log's newest event.
pub async fn status(
    pool: &PgPool,
    log: &EventLog,
) -> Result<Vec<ProjectionStatus>, crate::RunnerError> {
    let last = log.last_sequence().await?;
    let rows = sqlx::query(
        "SELECT name, version, sequence, updated_at FROM projection_checkpoints ORDER BY name, version",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let checkpoint = u64::try_from(row.try_get::<i64, _>("sequence")?).unwrap_or(0);
            Ok(ProjectionStatus {
                name: row.try_get("name")?,
                version: row.try_get("version")?,
                checkpoint,
                lag: last.saturating_sub(checkpoint),
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect()
}
