//! `natter bench`: each benchmark runs its raw baseline in the same run and prints the
//! ratio, since on a shared machine only ratios are stable. Each run uses a stream,
//! subject prefix and (where needed) database of its own, removed afterwards.

use std::future::Future;
use std::io::Write as _;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Args, Subcommand};
use natter_commands::CommandMetrics;
use natter_commands::accounts::{AccountPolicy, Accounts, NewAccount};
use natter_commands::passwords::PasswordHasher;
use natter_domain::user::{About, ChangeProfile, DisplayName, Handle, Password, PasswordHash};
use natter_eventlog::EventLog;
use natter_projections::{ProjectionMetrics, Runner, UserDirectory};
use natter_schema::{Envelope, Metadata};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, PgPool};
use time::OffsetDateTime;
use tokio::task::JoinSet;
use uuid::Uuid;

use natter::settings::Settings;

mod app;
mod auth;
mod catchup;
mod fanout;
mod idle;
mod media;
mod messages;
mod queries;
mod rebuild;
mod sends;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Commands through the command handler to stored events, against raw JetStream
    /// publishes of the same payload and concurrency.
    Append(AppendArgs),
    /// Projection throughput over a backlog, against a raw batched insert of the same rows.
    Project(ProjectArgs),
    /// Logins per second at saturation against raw argon2 verifications, and the p99 of
    /// a cheap authenticated GET while logins saturate the hashing pool against idle.
    Auth(auth::AuthArgs),
    /// REST sends across Zipf-distributed chats against raw JetStream publishes, at
    /// saturation and at half that rate.
    Messages(messages::MessagesArgs),
    /// REST sends driven by `wrk` from another process against the floor: a minimal
    /// route checking the same JWT and appending the same bytes to the same stream; at
    /// saturation, on one connection, and at half rate with the projector's lag.
    Sends(sends::SendsArgs),
    /// Chat list, history page and search latency over a data set of a million
    /// messages, after timing the projection's catch-up on it against raw batched
    /// inserts of the same rows.
    Queries(queries::QueriesArgs),
    /// Rebuilding the chats read model beside the live one over a log of a million
    /// messages, against a raw read of the stream and a raw batched insert of the same
    /// rows.
    Rebuild(rebuild::RebuildArgs),
    /// Image uploads per second through the API, with decoding, re-encoding and
    /// thumbnailing, against writing the same bytes to the blob store raw.
    Media(media::MediaArgs),
    /// End-to-end latency from a REST send to the recipients' WebSocket frames in
    /// groups of 1, 10 and 256, at 25%, 50% and 90% of the maximum rate, and frames per
    /// second against raw NATS publish/subscribe.
    Fanout(fanout::FanoutArgs),
    /// Resident memory per open idle WebSocket, over at least 50,000 connections held by
    /// gateway processes and opened by client processes from several 127.0.0.x addresses.
    Idle(idle::IdleArgs),
    /// One client process of `bench idle`.
    #[command(hide = true)]
    IdleClients(idle::IdleClientsArgs),
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    /// Commands in the sequential phase.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub sequential: u64,
    /// Commands in the concurrent phase.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Commands in flight in the concurrent phase (one aggregate each).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub in_flight: u64,
    /// Alternating rounds of every phase; the median of each is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=21))]
    pub rounds: u32,
    /// NATS monitoring endpoint, to report the server's fsync setting.
    #[arg(
        long,
        env = "NATTER_NATS_MONITOR_URL",
        default_value = "http://127.0.0.1:8333"
    )]
    pub nats_monitor_url: String,
}

#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// Events in the backlog (half registrations, half profile changes).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(2..=10_000_000))]
    pub events: u64,
    /// Most events per projection transaction.
    #[arg(long, default_value_t = 2_000, value_parser = parse_batch)]
    pub batch: usize,
    /// Alternating rounds of both sides; the median of each is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=21))]
    pub rounds: u32,
}

fn parse_batch(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(batch) if (1..=100_000).contains(&batch) => Ok(batch),
        _ => Err("a batch is 1 to 100000 events".into()),
    }
}

pub async fn run(settings: &Settings, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Append(args) => with_bench_log(settings, |log| bench_append(log, args)).await,
        BenchCommand::Auth(args) => auth::bench_auth(settings, args).await,
        BenchCommand::Messages(args) => messages::bench_messages(settings, args).await,
        BenchCommand::Sends(args) => sends::bench_sends(settings, args).await,
        BenchCommand::Queries(args) => queries::bench_queries(settings, args).await,
        BenchCommand::Rebuild(args) => rebuild::bench_rebuild(settings, args).await,
        BenchCommand::Media(args) => media::bench_media(settings, args).await,
        BenchCommand::Fanout(args) => fanout::bench_fanout(settings, args).await,
        BenchCommand::Idle(args) => idle::bench_idle(settings, args).await,
        BenchCommand::IdleClients(args) => idle::idle_clients(args).await,
        BenchCommand::Project(args) => {
            with_bench_log(settings, |log| async move {
                with_bench_database(settings, |pool, projection_pool| {
                    bench_project(log, pool, projection_pool, args)
                })
                .await
            })
            .await
        }
    }
}

/// Runs `body` on a fresh stream and prefix, deleting the stream afterwards.
pub(crate) async fn with_bench_log<F, Fut>(settings: &Settings, body: F) -> anyhow::Result<()>
where
    F: FnOnce(EventLog) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let tag = Uuid::now_v7().simple().to_string();
    let mut bench_settings = settings.clone();
    bench_settings.stream = format!("NATTER_BENCH_{tag}");
    bench_settings.subject_prefix = format!("bench{tag}");
    let log = natter::app::connect_log(&bench_settings).await?;
    let result = body(log.clone()).await;
    log.jetstream()
        .delete_stream(&bench_settings.stream)
        .await
        .map_err(|e| anyhow::anyhow!("deleting the bench stream: {e}"))?;
    result
}

/// Runs `body` on a fresh, migrated database beside the configured one, dropped afterwards.
pub(crate) async fn with_bench_database<F, Fut, T>(
    settings: &Settings,
    body: F,
) -> anyhow::Result<T>
where
    F: FnOnce(PgPool, PgPool) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let name = format!("natter_bench_{}", Uuid::now_v7().simple());
    let options = PgConnectOptions::from_str(settings.database_url.expose())?;
    let mut admin = options.connect().await.context("connecting to Postgres")?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options.clone().database(&name))
        .await?;
    natter_schema::MIGRATOR.run(&pool).await?;
    // The projection's own pool, as `serve` makes it.
    let projection_pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(natter_projections::projection_connect_options(
            options.clone().database(&name),
        ))
        .await?;
    let result = body(pool.clone(), projection_pool.clone()).await;
    pool.close().await;
    projection_pool.close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    result
}

/// Rate and latency of one measured phase.
pub(crate) struct Phase {
    ops: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    pub(crate) fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }

    pub(crate) fn line(&self, label: &str) -> String {
        format!(
            "  {label:<34} {:>10.0} /s   p50 {:>7.2} ms   p99 {:>7.2} ms",
            self.rate(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
        )
    }
}

async fn bench_append(log: EventLog, args: AppendArgs) -> anyhow::Result<()> {
    println!("natter bench append");
    println!(
        "  NATS fsync: {}",
        fsync_setting(&args.nats_monitor_url).await
    );
    let users = bench_accounts(&log);
    let workers = args.in_flight;
    progress(&format!("registering {workers} users"));
    let mut ids = Vec::new();
    for i in 0..workers.max(1) {
        let account = NewAccount {
            handle: Handle::parse(&format!("bench_{i}"))?,
            display_name: DisplayName::parse("Bench")?,
            about: About::default(),
            phone: None,
            password: Password::parse("bench password")?,
        };
        // The append path is measured here, not argon2: a fixed hash will do.
        let hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$bench$bench");
        let registered = users
            .register_hashed(account, hash, Metadata::new(None, Uuid::now_v7()))
            .await?;
        ids.push(registered.user_id);
    }
    // The same envelope size the handler appends, for the raw baseline.
    let sample = sample_envelope(ids[0]);
    let payload = Bytes::from(serde_json::to_vec(&sample)?);

    // Alternating rounds, reporting the median of each: the machine's noise moves both
    // sides of a round together, and the median drops an unlucky round.
    let mut phases: [Vec<Phase>; 5] = Default::default();
    for round in 1..=args.rounds {
        progress(&format!("round {round} of {}", args.rounds));
        let tag = |what: &str| format!("round {round}: {what}");
        phases[0].push(
            run_commands(
                &users,
                &ids[..1],
                args.sequential,
                &tag("sequential commands"),
            )
            .await?,
        );
        phases[1].push(
            run_raw(
                &log,
                1,
                args.sequential,
                &payload,
                false,
                &tag("sequential raw"),
            )
            .await?,
        );
        phases[2].push(run_commands(&users, &ids, args.count, &tag("concurrent commands")).await?);
        phases[3].push(
            run_raw(
                &log,
                workers,
                args.count,
                &payload,
                false,
                &tag("concurrent raw"),
            )
            .await?,
        );
        phases[4].push(
            run_raw(
                &log,
                workers,
                args.count,
                &payload,
                true,
                &tag("concurrent raw + expectation"),
            )
            .await?,
        );
    }
    let [seq_cmd, seq_raw, par_cmd, par_raw, par_guarded] = phases.map(median);

    println!(
        "  payload {} bytes, median of {} rounds",
        payload.len(),
        args.rounds
    );
    println!("{}", seq_cmd.line("commands, sequential"));
    println!("{}", seq_raw.line("raw JetStream publish, sequential"));
    println!("  ratio sequential: {:.2}", seq_cmd.rate() / seq_raw.rate());
    println!(
        "{}",
        par_cmd.line(&format!("commands, {workers} in flight"))
    );
    println!(
        "{}",
        par_raw.line(&format!("raw JetStream publish, {workers} in flight"))
    );
    println!(
        "{}",
        par_guarded.line(&format!("raw + expectation, {workers} in flight"))
    );
    println!(
        "  ratio {workers} in flight: {:.2}   (target >= 0.60)",
        par_cmd.rate() / par_raw.rate()
    );
    println!(
        "  (the server's cost of checking the expectation alone: raw ratio {:.2})",
        par_guarded.rate() / par_raw.rate()
    );
    Ok(())
}

/// The phase with the median rate.
fn median(mut phases: Vec<Phase>) -> Phase {
    phases.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let middle = phases.len() / 2;
    phases.swap_remove(middle)
}

fn sample_envelope(user_id: Uuid) -> Envelope {
    Envelope {
        event_id: Uuid::now_v7(),
        event_type: "ProfileChanged".into(),
        schema_version: 1,
        aggregate_type: "user".into(),
        aggregate_id: user_id.to_string(),
        actor: None,
        occurred_at: OffsetDateTime::now_utc(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        payload: serde_json::json!({"user_id": user_id, "display_name": "Bench 000000"}),
    }
}

/// `total` profile changes spread over one worker per id, each worker sequential.
/// The account commands on a log, with a small hashing pool.
pub(crate) fn bench_accounts(log: &EventLog) -> Accounts {
    Accounts::new(
        log.clone(),
        CommandMetrics::default(),
        PasswordHasher::new(1, 64),
        AccountPolicy::default(),
    )
}

async fn run_commands(
    users: &Accounts,
    ids: &[Uuid],
    total: u64,
    label: &str,
) -> anyhow::Result<Phase> {
    let ids = ids.to_vec();
    let users = users.clone();
    measure(label, total, ids.len() as u64, move |w, share, done| {
        let (users, id) = (users.clone(), ids[w as usize]);
        async move {
            let mut latencies = Vec::with_capacity(share as usize);
            for i in 0..share {
                let change = ChangeProfile {
                    display_name: Some(DisplayName::parse(&format!("Bench {i:06}"))?),
                    about: None,
                };
                let t = Instant::now();
                users
                    .change_profile(id, change, Metadata::new(None, Uuid::now_v7()))
                    .await?;
                latencies.push(t.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(latencies)
        }
    })
    .await
}

/// `total` plain JetStream publishes, one subject per worker, each worker awaiting its ack.
/// With `guarded`, each also carries the expected last subject sequence, as the command
/// path does: that shows the server's share of the difference.
async fn run_raw(
    log: &EventLog,
    workers: u64,
    total: u64,
    payload: &Bytes,
    guarded: bool,
    label: &str,
) -> anyhow::Result<Phase> {
    // Fresh subjects per call, so each guarded worker starts from an empty subject.
    let kind = format!("raw{}", Uuid::now_v7().simple());
    let (log, payload) = (log.clone(), payload.clone());
    measure(label, total, workers, move |w, share, done| {
        let js = log.jetstream().clone();
        let subject = log.subject(&kind, &w.to_string());
        let payload = payload.clone();
        async move {
            let mut latencies = Vec::with_capacity(share as usize);
            let mut last = 0;
            for _ in 0..share {
                let t = Instant::now();
                let ack = if guarded {
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert(
                        "Nats-Expected-Last-Subject-Sequence",
                        last.to_string().as_str(),
                    );
                    js.publish_with_headers(subject.clone(), headers, payload.clone())
                        .await
                } else {
                    js.publish(subject.clone(), payload.clone()).await
                };
                let ack = ack
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                last = ack.sequence;
                latencies.push(t.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(latencies)
        }
    })
    .await
}

/// Runs `total` operations split over `workers` tasks, made by `worker(index, share,
/// done)`, each returning its latencies; reports progress while they run.
pub(crate) async fn measure<F, Fut>(
    label: &str,
    total: u64,
    workers: u64,
    worker: F,
) -> anyhow::Result<Phase>
where
    F: Fn(u64, u64, Arc<AtomicU64>) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<Duration>>> + Send + 'static,
{
    let workers = workers.max(1);
    let done = Arc::new(AtomicU64::new(0));
    let reporter = spawn_progress(label, total, Arc::clone(&done));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for w in 0..workers {
        let share = total / workers + u64::from(w < total % workers);
        tasks.spawn(worker(w, share, Arc::clone(&done)));
    }
    let latencies = collect(tasks).await?;
    let elapsed = started.elapsed();
    reporter.abort();
    Ok(Phase {
        ops: total,
        elapsed,
        latencies,
    })
}

async fn collect(
    mut tasks: JoinSet<anyhow::Result<Vec<Duration>>>,
) -> anyhow::Result<Vec<Duration>> {
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined??);
    }
    Ok(all)
}

async fn bench_project(
    log: EventLog,
    pool: PgPool,
    projection_pool: PgPool,
    args: ProjectArgs,
) -> anyhow::Result<()> {
    println!("natter bench project");
    let users = args.events / 2;
    let events = build_backlog(users);
    progress(&format!("appending a backlog of {} events", events.len()));
    append_backlog(&log, &events).await?;
    let last = log.last_sequence().await?;
    sqlx::query("CREATE TABLE raw_users (LIKE user_directory_v1 INCLUDING ALL)")
        .execute(&pool)
        .await?;

    // Alternating rounds from empty tables; the median of each side is reported.
    let mut projected = Vec::new();
    let mut raw = Vec::new();
    let mut raw_async = Vec::new();
    for round in 1..=args.rounds {
        progress(&format!(
            "round {round} of {}: raw batched insert",
            args.rounds
        ));
        raw.push(raw_insert(&pool, &events, args.batch).await?);
        raw_async.push(raw_insert(&projection_pool, &events, args.batch).await?);
        natter_projections::reset(&pool, &UserDirectory).await?;
        let label = format!("round {round}: projecting");
        projected.push(
            project_all(
                &log,
                &projection_pool,
                UserDirectory,
                last,
                args.batch,
                &label,
            )
            .await?,
        );
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM user_directory_v1")
            .fetch_one(&pool)
            .await?;
        anyhow::ensure!(
            rows as u64 == users,
            "projected {rows} rows, expected {users}"
        );
    }
    let projected = median_duration(projected);
    let raw = median_duration(raw);
    let raw_async = median_duration(raw_async);

    let projection_rate = last as f64 / projected.as_secs_f64();
    let raw_rate = events.len() as f64 / raw.as_secs_f64();
    let raw_async_rate = events.len() as f64 / raw_async.as_secs_f64();
    println!(
        "  backlog {} events ({users} registrations, {users} profile changes), batches of {}, median of {} rounds",
        events.len(),
        args.batch,
        args.rounds
    );
    println!(
        "  projection (NATS consumer -> Postgres)   {projection_rate:>10.0} events/s  ({:.2} s)",
        projected.as_secs_f64()
    );
    println!(
        "  raw batched insert, same rows, same commit setting (synchronous_commit off)  {raw_async_rate:>10.0} rows/s  ({:.2} s)",
        raw_async.as_secs_f64()
    );
    println!(
        "  raw batched insert, same rows, default commit (synchronous_commit on)       {raw_rate:>10.0} rows/s  ({:.2} s)",
        raw.as_secs_f64()
    );
    println!(
        "  ratio against the same commit setting: {:.2}   (target >= 0.60)",
        projection_rate / raw_async_rate
    );
    println!(
        "  ratio against a default-commit insert:  {:.2}",
        projection_rate / raw_rate
    );
    Ok(())
}

/// Runs `projection` from an empty read model to `last`, with progress.
pub(crate) async fn project_all<P: natter_projections::Projection>(
    log: &EventLog,
    pool: &PgPool,
    projection: P,
    last: u64,
    batch: usize,
    label: &str,
) -> anyhow::Result<Duration> {
    let done = Arc::new(AtomicU64::new(0));
    let reporter = spawn_progress(label, last, Arc::clone(&done));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = Runner::new(
        log.clone(),
        pool.clone(),
        projection,
        ProjectionMetrics::default(),
    )
    .with_max_batch(batch);
    let started = Instant::now();
    let mut task = tokio::spawn(runner.run(async move {
        let _ = stopped.await;
    }));
    loop {
        let at = natter_projections::checkpoint(pool, P::NAME, P::VERSION).await?;
        done.store(at, Ordering::Relaxed);
        if at >= last {
            break;
        }
        tokio::select! {
            // The runner stops only when told to: anything else is its error.
            ended = &mut task => {
                reporter.abort();
                ended??;
                anyhow::bail!("the {} projection stopped at {at} of {last}", P::NAME);
            }
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    let elapsed = started.elapsed();
    reporter.abort();
    eprintln!();
    let _ = stop.send(());
    task.await??;
    Ok(elapsed)
}

fn median_duration(mut durations: Vec<Duration>) -> Duration {
    durations.sort_unstable();
    durations[durations.len() / 2]
}

/// One backlog event: a registration (`name` is None) or a display-name change.
struct BacklogEvent {
    user_id: Uuid,
    handle: String,
    name: String,
    registration: bool,
}

fn build_backlog(users: u64) -> Vec<BacklogEvent> {
    let ids: Vec<Uuid> = (0..users).map(|_| Uuid::now_v7()).collect();
    let registrations = ids.iter().enumerate().map(|(i, &user_id)| BacklogEvent {
        user_id,
        handle: format!("user_{i}"),
        name: format!("User {i}"),
        registration: true,
    });
    let changes = ids.iter().enumerate().map(|(i, &user_id)| BacklogEvent {
        user_id,
        handle: format!("user_{i}"),
        name: format!("Renamed {i}"),
        registration: false,
    });
    registrations.chain(changes).collect()
}

/// Appends the backlog with pipelined publishes; this is set-up, not measured.
async fn append_backlog(log: &EventLog, events: &[BacklogEvent]) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let mut envelopes = Vec::with_capacity(events.len());
    for event in events {
        let payload = if event.registration {
            serde_json::json!({"user_id": event.user_id, "handle": event.handle, "display_name": event.name,
                               "about": "", "registered_at": now.format(&time::format_description::well_known::Rfc3339)?})
        } else {
            serde_json::json!({"user_id": event.user_id, "display_name": event.name})
        };
        let event_type = if event.registration {
            "UserRegistered"
        } else {
            "ProfileChanged"
        };
        let envelope = Envelope {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: natter_schema::current_version(event_type).unwrap_or(1),
            aggregate_type: "user".into(),
            aggregate_id: event.user_id.to_string(),
            actor: None,
            occurred_at: now,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            payload,
        };
        envelopes.push((log.subject("user", &event.user_id.to_string()), envelope));
    }
    publish_pipelined(log, envelopes, "appending").await?;
    Ok(())
}

/// Publishes events straight to the stream, up to 4,096 unacknowledged at a time, with
/// progress; the stream sequence of each, in order. For seeding backlogs, not measured.
pub(crate) async fn publish_pipelined(
    log: &EventLog,
    events: Vec<(String, Envelope)>,
    label: &str,
) -> anyhow::Result<Vec<u64>> {
    let done = Arc::new(AtomicU64::new(0));
    let reporter = spawn_progress(label, events.len() as u64, Arc::clone(&done));
    let total = events.len();
    let mut sequences = Vec::with_capacity(total);
    let mut pending = Vec::with_capacity(4_096);
    for (n, (subject, envelope)) in events.into_iter().enumerate() {
        let ack = log
            .jetstream()
            .publish(subject, Bytes::from(serde_json::to_vec(&envelope)?))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        pending.push(ack);
        if pending.len() == 4_096 || n + 1 == total {
            for ack in pending.drain(..) {
                sequences.push(ack.await.map_err(|e| anyhow::anyhow!("{e}"))?.sequence);
            }
            done.store(sequences.len() as u64, Ordering::Relaxed);
        }
    }
    reporter.abort();
    eprintln!();
    Ok(sequences)
}

async fn raw_insert(
    pool: &PgPool,
    events: &[BacklogEvent],
    batch: usize,
) -> anyhow::Result<Duration> {
    sqlx::query("TRUNCATE raw_users").execute(pool).await?;
    let now = OffsetDateTime::now_utc();
    let started = Instant::now();
    for chunk in events.chunks(batch.max(1)) {
        let mut tx = pool.begin().await?;
        let (regs, changes): (Vec<&BacklogEvent>, Vec<&BacklogEvent>) =
            chunk.iter().partition(|e| e.registration);
        if !regs.is_empty() {
            sqlx::query(
                "INSERT INTO raw_users (user_id, handle, display_name, about, created_at, last_sequence)
                 SELECT u.id, u.handle, u.name, '', $4, 1 FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS u(id, handle, name)",
            )
            .bind(regs.iter().map(|e| e.user_id).collect::<Vec<_>>())
            .bind(regs.iter().map(|e| e.handle.clone()).collect::<Vec<_>>())
            .bind(regs.iter().map(|e| e.name.clone()).collect::<Vec<_>>())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if !changes.is_empty() {
            sqlx::query(
                "UPDATE raw_users AS d SET display_name = c.name, last_sequence = 2
                 FROM UNNEST($1::uuid[], $2::text[]) AS c(id, name) WHERE d.user_id = c.id",
            )
            .bind(changes.iter().map(|e| e.user_id).collect::<Vec<_>>())
            .bind(changes.iter().map(|e| e.name.clone()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    }
    Ok(started.elapsed())
}

/// The server's fsync policy, read from its monitoring endpoint.
async fn fsync_setting(monitor_url: &str) -> String {
    match varz(monitor_url).await {
        Ok(varz) => {
            let config = &varz["jetstream"]["config"];
            if config["sync_always"].as_bool() == Some(true) {
                "always (every write synced)".into()
            } else {
                let nanos = config["sync_interval"].as_u64().unwrap_or(120_000_000_000);
                format!("every {} s (NATS default is 120 s)", nanos / 1_000_000_000)
            }
        }
        Err(error) => format!("unknown ({error})"),
    }
}

/// A minimal HTTP/1.0 GET of `/varz`: enough for a loopback monitoring port.
async fn varz(monitor_url: &str) -> anyhow::Result<serde_json::Value> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let authority = monitor_url
        .strip_prefix("http://")
        .context("monitor URL must start with http://")?
        .trim_end_matches('/');
    let mut stream = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(authority),
    )
    .await??;
    stream
        .write_all(format!("GET /varz HTTP/1.0\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut response)).await??;
    let text = String::from_utf8_lossy(&response);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .context("no HTTP body")?;
    Ok(serde_json::from_str(body)?)
}

/// The latency at quantile `p` (0.5, 0.99, …) of a sample.
pub(crate) fn percentile(latencies: &[Duration], p: f64) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(index).copied().unwrap_or_default()
}

/// A duration in milliseconds, for printing.
pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

pub(crate) fn progress(message: &str) {
    eprintln!("  .. {message}");
}

/// Prints `label: done/total` to stderr every second until aborted.
pub(crate) fn spawn_progress(
    label: &str,
    total: u64,
    done: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    let label = label.to_owned();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tick.tick().await;
            eprint!(
                "\r  .. {label}: {}/{total}   ",
                done.load(Ordering::Relaxed)
            );
            let _ = std::io::stderr().flush();
        }
    })
}
