//! `natter projections`: the operators' commands. `status` shows where each read model
//! stands; `rebuild` builds one anew beside the live tables and switches it in with no
//! downtime; `verify` compares one with a fresh build; `build` makes one as of a past
//! point in a schema of its own.

use std::time::Instant;

use anyhow::Context as _;
use clap::{ArgGroup, Subcommand, ValueEnum};
use natter_projections::build::{self, RebuildOptions};
use natter_projections::{Chats, Media, Projection, Sessions, UserDirectory, verify};
use time::OffsetDateTime;

use crate::app::{connect_projection_postgres, open_log_read_only};
use crate::progress::Progress;
use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each read model's version, checkpoint, lag behind the log and last rebuild.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a read model from the first event beside the live one, while the service
    /// keeps serving, then switch readers over in one transaction. Resumes an
    /// interrupted rebuild; refuses to run twice at once.
    Rebuild {
        name: ProjectionName,
        /// Keep the replaced tables (in a schema named natter_retired_…) instead of
        /// dropping them.
        #[arg(long)]
        keep_old: bool,
        /// Start from the first event even where an interrupted rebuild could resume
        /// (after a change to the projection's code or tables).
        #[arg(long)]
        fresh: bool,
    },
    /// Rebuild a read model into scratch tables up to the live checkpoint and compare
    /// it with the live one, row by row; fails if they differ.
    Verify { name: ProjectionName },
    /// Build a read model as it stood at a past point into a schema of its own, for
    /// querying.
    #[command(group(ArgGroup::new("point").required(true).args(["at_seq", "at_time"])))]
    Build {
        name: ProjectionName,
        /// The last sequence the read model takes in.
        #[arg(long)]
        at_seq: Option<u64>,
        /// The read model as of this time (RFC 3339): every event stored up to it.
        #[arg(long, value_parser = crate::events::parse_time)]
        at_time: Option<OffsetDateTime>,
        /// The schema to build into (created if missing; lower-case letters, digits, _).
        #[arg(long)]
        into: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ProjectionName {
    UserDirectory,
    Sessions,
    Chats,
    Media,
}

/// Calls a function generic over the projection with the one `name` picks.
macro_rules! with_projection {
    ($name:expr, $function:ident ( $($argument:expr),* )) => {
        match $name {
            ProjectionName::UserDirectory => $function(UserDirectory, $($argument),*).await,
            ProjectionName::Sessions => $function(Sessions, $($argument),*).await,
            ProjectionName::Chats => $function(Chats, $($argument),*).await,
            ProjectionName::Media => $function(Media, $($argument),*).await,
        }
    };
}

pub async fn run(settings: &Settings, command: ProjectionsCommand) -> anyhow::Result<()> {
    match command {
        ProjectionsCommand::Status { json } => status(settings, json).await,
        ProjectionsCommand::Rebuild {
            name,
            keep_old,
            fresh,
        } => {
            let options = RebuildOptions {
                keep_old,
                fresh,
                ..RebuildOptions::manual()
            };
            with_projection!(name, rebuild(settings, options))
        }
        ProjectionsCommand::Verify { name } => with_projection!(name, verify(settings)),
        ProjectionsCommand::Build {
            name,
            at_seq,
            at_time,
            into,
        } => {
            build::check_schema_name(&into)?;
            let log = open_log_read_only(settings).await?;
            let at = match (at_seq, at_time) {
                (Some(sequence), _) => sequence,
                (None, Some(time)) => log.last_sequence_at(time).await?,
                (None, None) => unreachable!("clap requires one of them"),
            };
            with_projection!(name, build_at(settings, at, &into))
        }
    }
}

async fn rebuild<P: Projection>(
    projection: P,
    settings: &Settings,
    options: RebuildOptions,
) -> anyhow::Result<()> {
    let log = open_log_read_only(settings).await?;
    let pool = connect_projection_postgres(settings).await?;
    let started = Instant::now();
    let progress = Progress::new("events applied", log.last_sequence().await?);
    let rebuilt = build::rebuild(&log, &pool, &projection, options, &|p| progress.build(p))
        .await
        .with_context(|| format!("rebuilding {}", P::NAME))?;
    progress.done();
    println!(
        "rebuilt {} v{} through sequence {} in {:.1} s and switched it in",
        P::NAME,
        P::VERSION,
        rebuilt.through,
        started.elapsed().as_secs_f64()
    );
    match rebuilt.kept {
        Some(schema) => println!("the replaced tables are kept in schema {schema}"),
        None => println!("the replaced tables are dropped"),
    }
    Ok(())
}

async fn verify<P: Projection>(projection: P, settings: &Settings) -> anyhow::Result<()> {
    let log = open_log_read_only(settings).await?;
    let pool = connect_projection_postgres(settings).await?;
    let progress = Progress::new("events applied", log.last_sequence().await?);
    let verified = verify::verify(&log, &pool, &projection, &|p| progress.build(p))
        .await
        .with_context(|| format!("verifying {}", P::NAME))?;
    progress.done();
    if verified.differences.is_empty() {
        println!(
            "{} v{} at sequence {}: the live read model equals a rebuild from the log",
            P::NAME,
            P::VERSION,
            verified.at
        );
        return Ok(());
    }
    for difference in &verified.differences {
        println!(
            "{}: {} rows only in the live table, {} only in the rebuilt one",
            difference.table, difference.only_live, difference.only_rebuilt
        );
        for (side, row) in &difference.examples {
            println!("  {side:<8} {row}");
        }
    }
    anyhow::bail!(
        "{} v{} at sequence {}: {} of {} tables differ from a rebuild",
        P::NAME,
        P::VERSION,
        verified.at,
        verified.differences.len(),
        P::TABLES.len()
    )
}

async fn build_at<P: Projection>(
    projection: P,
    settings: &Settings,
    at: u64,
    schema: &str,
) -> anyhow::Result<()> {
    let log = open_log_read_only(settings).await?;
    let pool = connect_projection_postgres(settings).await?;
    let progress = Progress::new("events applied", at);
    let through = build::build_at(&log, &pool, &projection, schema, at, &|p| progress.build(p))
        .await
        .with_context(|| format!("building {} into {schema}", P::NAME))?;
    progress.done();
    println!(
        "{} v{} as of sequence {through} is in schema {schema}: {}",
        P::NAME,
        P::VERSION,
        P::TABLES
            .iter()
            .map(|table| format!("{schema}.{table}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

async fn status(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let log = open_log_read_only(settings).await?;
    let pool = connect_projection_postgres(settings).await?;
    let status = natter_projections::status(&pool, &log).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    println!("log end: sequence {}", status.log_end);
    println!(
        "{:<16} {:>7} {:>12} {:>10}  {:<36}  LAST REBUILD",
        "PROJECTION", "VERSION", "CHECKPOINT", "LAG", "UPDATED"
    );
    for s in &status.projections {
        let rebuilt = s.last_rebuild.as_ref().map_or_else(
            || "never".to_owned(),
            |r| format!("{} ({}, through {})", r.finished_at, r.reason, r.through),
        );
        println!(
            "{:<16} {:>7} {:>12} {:>10}  {:<36}  {rebuilt}",
            s.name,
            s.version,
            s.checkpoint,
            s.lag,
            s.updated_at.to_string()
        );
    }
    if status.projections.is_empty() {
        println!("(no projection has run yet)");
    }
    for s in &status.projections {
        if let Some(stall) = &s.stalled {
            println!(
                "STALLED: {} v{} stopped at sequence {}: {}",
                s.name, s.version, stall.sequence, stall.reason
            );
        }
    }
    Ok(())
}
