//! `natter bench rebuild`: the chats read model rebuilt beside the live one, from the
//! first event of a log of a million messages, and switched in. Against, in the same run,
//! a raw read of the whole stream (an ordered consumer, messages counted, not parsed)
//! and a raw batched insert of the rows the rebuild writes into a copy of the table
//! (same columns, generated search vector and indexes, same commit setting).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use clap::Args;
use futures::StreamExt as _;
use natter_eventlog::EventLog;
use natter_projections::Chats;
use natter_projections::build::{self, RebuildOptions};

use super::catchup::MessageRows;
use super::queries::{QueriesArgs, seed};
use super::{progress, project_all, spawn_progress, with_bench_database, with_bench_log};
use natter::settings::Settings;

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Messages in the log.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(10_000..=20_000_000))]
    pub messages: u64,
    /// Chats they are spread over, 80% direct and 20% groups of 10 to 256.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(10..=10_000))]
    pub chats: u32,
    /// Rows per raw insert transaction (as many as a rebuild writes at most in one).
    #[arg(long, default_value_t = 8_192, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
}

pub async fn bench_rebuild(settings: &Settings, args: RebuildArgs) -> anyhow::Result<()> {
    println!("natter bench rebuild");
    with_bench_log(settings, |log| async move {
        with_bench_database(settings, |pool, projection_pool| async move {
            let seeded = seed(
                &log,
                &QueriesArgs {
                    messages: args.messages,
                    chats: args.chats,
                    samples: 10,
                    batch: args.batch,
                    explain: false,
                },
            )
            .await?;
            let events = seeded.last_sequence;
            // A deployment's live read model: set-up, not measured.
            project_all(
                &log,
                &projection_pool,
                Chats,
                events,
                2_000,
                "building the live read model",
            )
            .await?;

            let read = raw_read(&log, events).await?;
            let applied = Arc::new(AtomicU64::new(0));
            let reporter = spawn_progress("rebuilding chats", events, Arc::clone(&applied));
            let started = Instant::now();
            let rebuilt = build::rebuild(
                &log,
                &projection_pool,
                &Chats,
                RebuildOptions::manual(),
                &|p| applied.store(p.through, Ordering::Relaxed),
            )
            .await?;
            let rebuilding = started.elapsed();
            reporter.abort();
            eprintln!();
            anyhow::ensure!(rebuilt.through >= events, "the rebuild stopped short");
            let rows = MessageRows::load(&pool).await?;
            anyhow::ensure!(rows.len() == seeded.messages, "the rebuilt model lacks messages");
            let insert = rows
                .insert_raw(&projection_pool, args.batch as usize)
                .await?;

            let per_second = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
            let events_n = usize::try_from(events)?;
            let rebuild_events = per_second(events_n, rebuilding);
            let rebuild_rows = per_second(rows.len(), rebuilding);
            let read_rate = per_second(events_n, read);
            let insert_rate = per_second(rows.len(), insert);
            println!(
                "  log: {events} events, {} messages in {} chats",
                rows.len(),
                args.chats
            );
            println!(
                "  raw stream read (ordered consumer, not parsed)   {read_rate:>9.0} events/s  ({:.1} s)",
                read.as_secs_f64()
            );
            println!(
                "  raw batched insert of the messages rows         {insert_rate:>9.0} rows/s    ({:.1} s, batches of {})",
                insert.as_secs_f64(),
                args.batch
            );
            println!(
                "  rebuild of chats v1, switched in                {rebuild_events:>9.0} events/s  ({:.1} s; {rebuild_rows:.0} messages/s)",
                rebuilding.as_secs_f64()
            );
            let against_read = rebuild_events / read_rate;
            let against_insert = rebuild_rows / insert_rate;
            println!("  ratio rebuild / raw read:   {against_read:.2}");
            println!("  ratio rebuild / raw insert: {against_insert:.2}");
            println!(
                "  against the slower raw rate: {:.2} (target: at least 0.6)",
                if read_rate < insert_rate {
                    against_read
                } else {
                    against_insert
                }
            );
            Ok(())
        })
        .await
    })
    .await
}

/// Reads the whole stream with an ordered consumer, counting messages; how long it took.
async fn raw_read(log: &EventLog, events: u64) -> anyhow::Result<Duration> {
    progress(&format!("raw read of {events} events"));
    let stream = log
        .jetstream()
        .get_stream_no_info(&log.config().stream)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: log.all_events(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut read = 0u64;
    while read < events {
        match messages.next().await {
            Some(message) => {
                let message = message.map_err(|e| anyhow::anyhow!("{e}"))?;
                std::hint::black_box(message.payload.len());
                read += 1;
            }
            None => anyhow::bail!("the stream ended after {read} of {events} events"),
        }
    }
    Ok(started.elapsed())
}
