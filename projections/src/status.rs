use natter_eventlog::EventLog;
use serde::Serialize;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

/// Where every projection stands, against the log's newest event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The newest sequence in the log when the checkpoints were read.
    pub log_end: u64,
    pub projections: Vec<ProjectionStatus>,
}

/// Where one projection stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub version: i32,
    pub checkpoint: u64,
    /// Events in the log after the checkpoint.
    pub lag: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The last rebuild that switched this version's tables in, if any.
    pub last_rebuild: Option<LastRebuild>,
    /// Where the projection stopped, failing closed, at an event it needs and cannot
    /// read; it moves on only under a build that reads it.
    pub stalled: Option<Stall>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stall {
    pub sequence: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastRebuild {
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// `manual` or `automatic`.
    pub reason: String,
    /// The checkpoint the rebuilt tables went live at.
    pub through: u64,
}

/// Every projection that has a checkpoint, with its lag behind the log's newest event
/// and its last rebuild.
pub async fn status(pool: &PgPool, log: &EventLog) -> Result<Status, crate::RunnerError> {
    let last = log.last_sequence().await?;
    let rows = sqlx::query(
        "SELECT c.name, c.version, c.sequence, c.updated_at, c.stalled_at, c.stalled_reason,
                r.finished_at, r.reason, r.through
         FROM projection_checkpoints c
         LEFT JOIN LATERAL (
             SELECT finished_at, reason, through FROM projection_rebuilds r
             WHERE r.name = c.name AND r.version = c.version
             ORDER BY finished_at DESC LIMIT 1
         ) r ON true
         ORDER BY c.name, c.version",
    )
    .fetch_all(pool)
    .await?;
    let sequence = |value: i64| u64::try_from(value).unwrap_or(0);
    let projections = rows
        .iter()
        .map(|row| {
            let checkpoint = sequence(row.try_get("sequence")?);
            let last_rebuild = match row.try_get::<Option<OffsetDateTime>, _>("finished_at")? {
                Some(finished_at) => Some(LastRebuild {
                    finished_at,
                    reason: row.try_get("reason")?,
                    through: sequence(row.try_get("through")?),
                }),
                None => None,
            };
            let stalled = row
                .try_get::<Option<i64>, _>("stalled_at")?
                .map(|at| -> Result<Stall, crate::RunnerError> {
                    Ok(Stall {
                        sequence: sequence(at),
                        reason: row
                            .try_get::<Option<String>, _>("stalled_reason")?
                            .unwrap_or_default(),
                    })
                })
                .transpose()?;
            Ok(ProjectionStatus {
                stalled,
                name: row.try_get("name")?,
                version: row.try_get("version")?,
                checkpoint,
                lag: last.saturating_sub(checkpoint),
                updated_at: row.try_get("updated_at")?,
                last_rebuild,
            })
        })
        .collect::<Result<_, crate::RunnerError>>()?;
    Ok(Status {
        log_end: last,
        projections,
    })
}
