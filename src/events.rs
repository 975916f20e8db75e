//! `natter events`: the log for analysts. `tail` follows it live, `export` writes a
//! stretch of it as newline-delimited JSON (streaming, in constant memory), `stats`
//! counts events by type and by day. All three only read: subscriptions and direct
//! gets, no stream changes (`EventLog::attach`), so a read-only NATS user suffices.
//!
//! Filters take type, aggregate, actor or chat; the subject part of a filter is applied
//! by the server, the rest is checked here. Exports stream in stream order with the
//! envelope's stable fields; the payload is upcast, and secrets are redacted: the hashes
//! of passwords and refresh tokens, and a push subscription's endpoint and keys (which
//! let whoever holds them push to the device). `import` replays a complete export
//! into an empty stream, each event at the sequence it had, one at a time.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use futures::StreamExt;
use natter_eventlog::{EventLog, Space, Start, StoredEvent, Subjects};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::progress::Progress;

mod parquet;

/// How `export` writes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Ndjson,
    /// A Parquet file, with typed columns and the payload as JSON.
    Parquet,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Follow the log live: one JSON line per event, as `export` writes them.
    Tail {
        #[command(flatten)]
        filter: Filter,
    },
    /// Write the events between two points as newline-delimited JSON or Parquet.
    Export {
        #[command(flatten)]
        filter: Filter,
        #[command(flatten)]
        range: Range,
        #[arg(long, value_enum, default_value_t = Format::Ndjson)]
        format: Format,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Replay a complete export (every event from sequence 1, as `export` writes them)
    /// into an empty stream, as a copy of the log to project and analyse apart. Needs
    /// write access; refuses a stream that holds events.
    Import {
        /// Read from this file instead of standard input.
        #[arg(long, short)]
        input: Option<std::path::PathBuf>,
    },
    /// Count events by type and by day between two points.
    Stats {
        #[command(flatten)]
        filter: Filter,
        #[command(flatten)]
        range: Range,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

/// Which events: every filter given must match.
#[derive(Debug, Clone, Default, Args)]
pub struct Filter {
    /// Only events of these types (comma-separated or repeated), such as `MessageSent`.
    #[arg(long = "type", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only one aggregate kind (`user`, `chat`, `chatmsg`, `session`), or one aggregate
    /// (`chat:<id>`).
    #[arg(long, conflicts_with = "chat")]
    pub aggregate: Option<String>,
    /// Only events whose actor is this user.
    #[arg(long)]
    pub actor: Option<Uuid>,
    /// Only one chat's events: its own and its messages'.
    #[arg(long)]
    pub chat: Option<Uuid>,
}

impl Filter {
    /// The subject filter the server applies (`<prefix>.<part>.…`); the rest is checked
    /// here.
    fn subject(&self, subjects: &Subjects, space: Space) -> String {
        if let Some(chat) = self.chat {
            return subjects.of(space, "*", &chat.to_string());
        }
        match self.aggregate.as_deref().map(|a| a.split_once(':')) {
            Some(Some((kind, id))) => subjects.of(space, kind, id),
            Some(None) => subjects.kind(space, self.aggregate.as_deref().unwrap_or_default()),
            None => subjects.all(space),
        }
    }

    fn admits(&self, event: &StoredEvent) -> bool {
        (self.types.is_empty() || self.types.contains(&event.envelope.event_type))
            && self
                .actor
                .is_none_or(|actor| event.envelope.actor == Some(actor))
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(aggregate) = &self.aggregate {
            let valid = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            };
            let ok = match aggregate.split_once(':') {
                Some((kind, id)) => valid(kind) && valid(id),
                None => valid(aggregate),
            };
            anyhow::ensure!(ok, "--aggregate takes `<kind>` or `<kind>:<id>`");
        }
        Ok(())
    }
}

/// Where a stretch of the log starts and ends (both ends included).
#[derive(Debug, Clone, Default, Args)]
pub struct Range {
    /// The first sequence (default: the beginning).
    #[arg(long, conflicts_with = "since")]
    pub from_seq: Option<u64>,
    /// The first time (RFC 3339), instead of a sequence.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<OffsetDateTime>,
    /// The last sequence (default: the newest at the start).
    #[arg(long, conflicts_with = "until")]
    pub to_seq: Option<u64>,
    /// The last time (RFC 3339), instead of a sequence.
    #[arg(long, value_parser = parse_time)]
    pub until: Option<OffsetDateTime>,
}

impl Range {
    fn start(&self) -> Start {
        match (self.from_seq, self.since) {
            (_, Some(time)) => Start::Time(time),
            (Some(sequence), None) => Start::Sequence(sequence),
            (None, None) => Start::Sequence(1),
        }
    }

    /// True once `event` is past the end: the log is in stream order, so nothing after
    /// it is in range either.
    fn ended_by(&self, event: &StoredEvent) -> bool {
        self.to_seq.is_some_and(|last| event.sequence > last)
            || self.until.is_some_and(|until| event.stored_at > until)
    }
}

pub(crate) fn parse_time(value: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|e| format!("not an RFC 3339 time: {e}"))
}

/// One exported event. The field names are stable; the payload is upcast to its
/// type's current version, with secrets' hashes redacted.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    pub sequence: u64,
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub schema_version: u32,
    pub actor: Option<Uuid>,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub stored_at: OffsetDateTime,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub payload: serde_json::Value,
}

/// Payload fields (JSON pointers) that hold secrets or their hashes: never exported. A
/// redacted field keeps its type (a string), so an imported copy still decodes.
const REDACTED: &[&str] = &[
    "/password_hash",
    "/refresh_hash",
    "/subscription/endpoint",
    "/subscription/p256dh",
    "/subscription/auth",
];

impl<'a> Record<'a> {
    pub fn of(event: &'a StoredEvent) -> Self {
        let envelope = &event.envelope;
        let mut payload = envelope.payload.clone();
        for field in REDACTED {
            if let Some(value) = payload.pointer_mut(field)
                && !value.is_null()
            {
                *value = serde_json::Value::String("[redacted]".into());
            }
        }
        Self {
            sequence: event.sequence,
            event_id: envelope.event_id,
            event_type: &envelope.event_type,
            schema_version: envelope.schema_version,
            actor: envelope.actor,
            aggregate_type: &envelope.aggregate_type,
            aggregate_id: &envelope.aggregate_id,
            occurred_at: envelope.occurred_at,
            stored_at: event.stored_at,
            correlation_id: envelope.correlation_id,
            causation_id: envelope.causation_id,
            payload,
        }
    }
}

pub async fn run(
    settings: &crate::settings::Settings,
    command: EventsCommand,
) -> anyhow::Result<()> {
    if let EventsCommand::Import { input } = command {
        let log = crate::app::connect_log(settings).await?;
        let imported = match input {
            Some(path) => {
                let file = std::fs::File::open(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                import(&log, std::io::BufReader::new(file)).await?
            }
            None => import(&log, std::io::stdin().lock()).await?,
        };
        eprintln!("{imported} events imported");
        return Ok(());
    }
    let log = crate::app::open_log_read_only(settings).await?;
    match command {
        EventsCommand::Import { .. } => unreachable!("handled above"),
        EventsCommand::Tail { filter } => {
            let mut out = std::io::stdout().lock();
            tail(&log, &filter, &mut out, std::future::pending()).await
        }
        EventsCommand::Export {
            filter,
            range,
            format,
            output,
        } => {
            let written = match output {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    export(&log, &filter, &range, format, std::io::BufWriter::new(file)).await?
                }
                None => {
                    let stdout = std::io::stdout();
                    anyhow::ensure!(
                        format == Format::Ndjson || !stdout.is_terminal(),
                        "Parquet is binary: write it to a file (--output) or a pipe"
                    );
                    export(
                        &log,
                        &filter,
                        &range,
                        format,
                        std::io::BufWriter::new(stdout),
                    )
                    .await?
                }
            };
            eprintln!("{written} events exported");
            Ok(())
        }
        EventsCommand::Stats {
            filter,
            range,
            json,
        } => {
            let stats = stats(&log, &filter, &range).await?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &stats)?;
                writeln!(out)?;
            } else {
                stats.print(&mut out)?;
            }
            Ok(())
        }
    }
}

/// An exported event read back.
#[derive(Debug, Deserialize)]
struct Exported {
    sequence: u64,
    event_id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: u32,
    actor: Option<Uuid>,
    aggregate_type: String,
    aggregate_id: String,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    correlation_id: Uuid,
    causation_id: Option<Uuid>,
    payload: serde_json::Value,
}

/// Appends the events of an export to an empty log, each at the sequence it had, so
/// that read models projected from the copy equal the original's. Returns how many.
pub async fn import(log: &EventLog, input: impl std::io::BufRead) -> anyhow::Result<u64> {
    let held = log.last_sequence().await?;
    anyhow::ensure!(
        held == 0,
        "the stream {} already holds {held} events; import into an empty one",
        log.config().stream
    );
    let mut imported = 0;
    for (number, line) in input.lines().enumerate() {
        let line = line.context("reading the export")?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Exported = serde_json::from_str(&line)
            .with_context(|| format!("line {}: not an exported event", number + 1))?;
        let expected = imported + 1;
        anyhow::ensure!(
            record.sequence == expected,
            "line {}: sequence {} where {expected} was due; only a complete export (from \
             sequence 1, unfiltered) replays into an equal log",
            number + 1,
            record.sequence
        );
        let envelope = natter_schema::Envelope {
            event_id: record.event_id,
            event_type: record.event_type,
            schema_version: record.schema_version,
            aggregate_type: record.aggregate_type,
            aggregate_id: record.aggregate_id,
            actor: record.actor,
            occurred_at: record.occurred_at,
            correlation_id: record.correlation_id,
            causation_id: record.causation_id,
            payload: record.payload,
        };
        let appended = log
            .append(&[natter_eventlog::NewEvent {
                subject: log.subject(&envelope.aggregate_type, &envelope.aggregate_id),
                expected_sequence: None,
                expected_subject: None,
                dedupe_id: None,
                envelope,
            }])
            .await
            .with_context(|| format!("line {}: appending", number + 1))?;
        anyhow::ensure!(
            appended.last_sequence() == expected,
            "line {}: stored at sequence {} instead of {expected}; is another writer using the stream?",
            number + 1,
            appended.last_sequence()
        );
        imported = expected;
    }
    Ok(imported)
}

/// Writes the matching events of `range` to `out`, one JSON line each; how many. Shows
/// progress on standard error when it is a terminal.
pub async fn export(
    log: &EventLog,
    filter: &Filter,
    range: &Range,
    format: Format,
    out: impl Write + Send,
) -> anyhow::Result<u64> {
    filter.validate()?;
    let mut sink = match format {
        Format::Ndjson => Sink::Ndjson(out),
        Format::Parquet => Sink::Parquet(Box::new(parquet::ParquetWriter::new(out)?)),
    };
    let end = log.last_sequence().await?;
    let progress = Progress::new("exported", end);
    let mut events =
        Box::pin(log.read_matching(filter.subject(&log.subjects(), Space::Evt), range.start()));
    let mut written = 0;
    while let Some(event) = events.next().await {
        let event = event?;
        if range.ended_by(&event) {
            break;
        }
        progress.tick(event.sequence, end, written);
        if !filter.admits(&event) {
            continue;
        }
        sink.write(&Record::of(&event))?;
        written += 1;
    }
    sink.finish()?;
    progress.done();
    Ok(written)
}

/// Where `export` writes records.
enum Sink<W: Write + Send> {
    Ndjson(W),
    Parquet(Box<parquet::ParquetWriter<W>>),
}

impl<W: Write + Send> Sink<W> {
    fn write(&mut self, record: &Record<'_>) -> anyhow::Result<()> {
        match self {
            Self::Ndjson(out) => {
                serde_json::to_writer(&mut *out, record)?;
                out.write_all(b"\n")?;
            }
            Self::Parquet(writer) => writer.write(record)?,
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        let mut out = match self {
            Self::Ndjson(out) => out,
            Self::Parquet(writer) => writer.finish()?,
        };
        out.flush()?;
        Ok(())
    }
}

/// Writes every matching live event to `out` as it is stored, until `stop`.
pub async fn tail(
    log: &EventLog,
    filter: &Filter,
    out: &mut impl Write,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    filter.validate()?;
    let subject = filter.subject(&log.subjects(), Space::Live);
    let mut live = log
        .client()
        .subscribe(subject)
        .await
        .context("subscribing to the live events")?;
    tokio::pin!(stop);
    loop {
        let message = tokio::select! {
            message = live.next() => message,
            () = &mut stop => return Ok(()),
        };
        let Some(message) = message else {
            anyhow::bail!("the connection to NATS closed");
        };
        let Ok(event) = StoredEvent::from_headers(&message) else {
            continue;
        };
        if filter.admits(&event) {
            serde_json::to_writer(&mut *out, &Record::of(&event))?;
            out.write_all(b"\n")?;
            out.flush()?;
        }
    }
}

/// Counts by type and by day (UTC, from the time each event was stored).
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub total: u64,
    pub by_type: BTreeMap<String, u64>,
    pub by_day: BTreeMap<String, u64>,
}

impl Stats {
    fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "{:<28} {:>12}", "type", "events")?;
        for (kind, count) in &self.by_type {
            writeln!(out, "{kind:<28} {count:>12}")?;
        }
        writeln!(out, "\n{:<28} {:>12}", "day (UTC)", "events")?;
        for (day, count) in &self.by_day {
            writeln!(out, "{day:<28} {count:>12}")?;
        }
        writeln!(out, "\n{:<28} {:>12}", "total", self.total)
    }
}

pub async fn stats(log: &EventLog, filter: &Filter, range: &Range) -> anyhow::Result<Stats> {
    filter.validate()?;
    let end = log.last_sequence().await?;
    let progress = Progress::new("counted", end);
    let mut events =
        Box::pin(log.read_matching(filter.subject(&log.subjects(), Space::Evt), range.start()));
    let mut stats = Stats::default();
    while let Some(event) = events.next().await {
        let event = event?;
        if range.ended_by(&event) {
            break;
        }
        progress.tick(event.sequence, end, stats.total);
        if !filter.admits(&event) {
            continue;
        }
        stats.total += 1;
        *stats
            .by_type
            .entry(event.envelope.event_type.clone())
            .or_default() += 1;
        *stats
            .by_day
            .entry(event.stored_at.date().to_string())
            .or_default() += 1;
    }
    progress.done();
    Ok(stats)
}
