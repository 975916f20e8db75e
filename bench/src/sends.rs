//! `natter bench sends`: REST sends driven through real sockets by `wrk`, a load client
//! in another process, against the **floor**: a minimal axum route in this same process
//! that checks the same JWT and appends an event of the same size to the same stream,
//! awaiting the ack, and does nothing else. The floor is what this architecture cannot
//! go below; sends are reported as a ratio to it, at saturation (many connections) and
//! latency-bound (one connection). Then sends at half the saturated rate, while the
//! chats projection's lag behind the stream is sampled.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use clap::Args;
use natter_eventlog::EventLog;
use serde_json::json;
use uuid::Uuid;

use super::app::{BenchApp, with_bench_app};
use super::progress;
use natter::settings::Settings;

#[derive(Debug, Args)]
pub struct SendsArgs {
    /// Seconds per phase.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// Connections of the saturation phases.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(2..=1_024))]
    pub connections: u32,
    /// Threads of the load client.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub client_threads: u32,
    /// Users sending, in direct chats of two.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub users: u32,
    /// Alternating rounds of floor and sends; each round is printed.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub rounds: u32,
    /// The load client.
    #[arg(long, default_value = "wrk")]
    pub wrk: String,
}

/// The text of every send, as `natter bench messages` sends.
const BODY_BYTES: usize = 120;

pub async fn bench_sends(settings: &Settings, args: SendsArgs) -> anyhow::Result<()> {
    println!("natter bench sends");
    let found = tokio::process::Command::new(&args.wrk)
        .arg("--version")
        .output()
        .await;
    if found.is_err() {
        anyhow::bail!(
            "the load client `{}` is not installed (Debian: apt-get install wrk)",
            args.wrk
        );
    }
    with_bench_app(settings, |app| run(app, args)).await
}

async fn run(app: BenchApp, args: SendsArgs) -> anyhow::Result<()> {
    let work = std::env::temp_dir().join(format!("natter-bench-sends-{}", Uuid::now_v7().simple()));
    tokio::fs::create_dir_all(&work).await?;
    let result = measure(&app, &args, &work).await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

async fn measure(app: &BenchApp, args: &SendsArgs, work: &Path) -> anyhow::Result<()> {
    progress(&format!(
        "{} users in {} direct chats",
        args.users,
        args.users / 2
    ));
    let targets = direct_chats(app, args.users).await?;
    let targets_file = work.join("targets");
    let lines: String = targets
        .iter()
        .map(|(chat, token)| format!("{chat} {token}\n"))
        .collect();
    tokio::fs::write(&targets_file, lines).await?;
    let script = work.join("sends.lua");
    tokio::fs::write(&script, SCRIPT.replace("BODY", &"x".repeat(BODY_BYTES))).await?;
    let floor = Floor::start(app).await?;
    let client = Wrk {
        program: args.wrk.clone(),
        script,
        targets: targets_file,
        seconds: args.seconds,
    };

    let mut table = Vec::new();
    for round in 1..=args.rounds {
        for connections in [args.connections, 1] {
            let threads = args.client_threads.min(connections);
            progress(&format!(
                "round {round}: floor, {connections} connection(s)"
            ));
            let base = client.run(&floor.base, connections, threads, None).await?;
            progress(&format!(
                "round {round}: sends, {connections} connection(s)"
            ));
            let sends = client.run(&app.base, connections, threads, None).await?;
            table.push((round, connections, base, sends));
        }
    }
    let saturated: Vec<&Run> = table
        .iter()
        .filter(|(_, c, _, _)| *c == args.connections)
        .map(|(_, _, _, sends)| sends)
        .collect();
    let best = saturated.iter().map(|r| r.rate).fold(0.0, f64::max);
    progress(&format!(
        "sends at half the saturated rate ({:.0}/s), sampling the projector's lag",
        best / 2.0
    ));
    let lag = with_lag(
        app,
        client.run(
            &app.base,
            args.connections,
            args.client_threads,
            Some(best / 2.0),
        ),
    )
    .await?;

    println!(
        "  {} direct chats, sends of {BODY_BYTES} bytes; load client: {} ({} thread(s)), another process",
        targets.len(),
        args.wrk,
        args.client_threads
    );
    for (round, connections, base, sends) in &table {
        println!("  round {round}, {connections:>4} connection(s)");
        println!("    floor (JWT check + JetStream append)  {}", base.line());
        println!("    REST sends                           {}", sends.line());
        println!(
            "    ratio sends / floor: rate {:.2}, p50 {:.2}x, p99 {:.2}x",
            sends.rate / base.rate,
            sends.p50_us / base.p50_us.max(1.0),
            sends.p99_us / base.p99_us.max(1.0)
        );
    }
    let (half, lags) = lag;
    println!(
        "  REST sends at half the best saturated rate  {}",
        half.line()
    );
    println!(
        "  projector lag behind the stream meanwhile: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        super::ms(super::percentile(&lags, 0.5)),
        super::ms(super::percentile(&lags, 0.99)),
        super::ms(lags.iter().max().copied().unwrap_or_default()),
        lags.len()
    );
    println!(
        "  targets: sends >= 0.6 of the floor at saturation; p50 <= 0.4 ms on one connection; lag < 1 s at half rate"
    );
    floor.stop().await;
    Ok(())
}

/// Registers `users` accounts with tokens of this run's keys and pairs them in direct
/// chats: the chat ids, each with its first member's token.
async fn direct_chats(app: &BenchApp, users: u32) -> anyhow::Result<Vec<(String, String)>> {
    let http = reqwest::Client::new();
    let tag = Uuid::now_v7().simple().to_string();
    let members = app
        .users(&format!("send{}", &tag[tag.len() - 6..]), users as usize)
        .await?;
    let mut chats = Vec::new();
    for pair in members.chunks_exact(2) {
        let created: serde_json::Value = http
            .post(format!("{}/v1/chats/direct", app.base))
            .bearer_auth(&pair[0].1)
            .json(&json!({"user_id": pair[1].0}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let chat = created["chat_id"].as_str().context("chat id")?.to_owned();
        chats.push((chat, pair[0].1.clone()));
    }
    Ok(chats)
}

/// The wrk script: each request a send to the next chat with a client id of its own;
/// with `NATTER_BENCH_DELAY_MS`, each connection waits that long between sends; at the
/// end one line of figures (latencies in microseconds).
const SCRIPT: &str = r#"
local targets, n, run = {}, 0, ""
for line in io.lines(os.getenv("NATTER_BENCH_TARGETS")) do
  local chat, token = line:match("(%S+) (%S+)")
  targets[#targets + 1] = { "/v1/chats/" .. chat .. "/messages", "Bearer " .. token }
end
local pause = tonumber(os.getenv("NATTER_BENCH_DELAY_MS") or "0")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end
function init(args)
  run = os.getenv("NATTER_BENCH_RUN")
  n = thread_id * 7919
end
-- A UUIDv7 as apps make them (its time to the second is enough), unique by run, thread
-- and count.
function client_id()
  local ms = os.time() * 1000
  return string.format("%08x-%04x-7%s-8%s%02x-%012x", math.floor(ms / 65536), ms % 65536,
    run:sub(1, 3), run:sub(4, 4), thread_id % 256, n)
end
function request()
  n = n + 1
  local target = targets[(n % #targets) + 1]
  local body = '{"client_id":"' .. client_id() .. '","body":"BODY"}'
  return wrk.format("POST", target[1],
    { ["Authorization"] = target[2], ["Content-Type"] = "application/json" }, body)
end
if pause > 0 then
  function delay() return pause end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("natter-bench %d %d %d %.0f %.0f %.0f\n",
    summary.requests, summary.duration, e.status + e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"#;

struct Wrk {
    program: String,
    script: std::path::PathBuf,
    targets: std::path::PathBuf,
    seconds: u64,
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    failed: u64,
}

impl Run {
    fn line(&self) -> String {
        format!(
            "{:>8.0} /s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>7.2} ms   ({} failed)",
            self.rate,
            self.p50_us / 1e3,
            self.p99_us / 1e3,
            self.max_us / 1e3,
            self.failed
        )
    }
}

impl Wrk {
    /// `connections` sending for the phase's seconds, closed loop, or about `rate` per
    /// second in all with a pause between each connection's sends.
    async fn run(
        &self,
        base: &str,
        connections: u32,
        threads: u32,
        rate: Option<f64>,
    ) -> anyhow::Result<Run> {
        let pause_ms = rate.map_or(0.0, |rate| f64::from(connections) * 1e3 / rate.max(1.0));
        let output = tokio::process::Command::new(&self.program)
            .arg(format!("-t{threads}"))
            .arg(format!("-c{connections}"))
            .arg(format!("-d{}s", self.seconds))
            .arg("--timeout=10s")
            .arg("-s")
            .arg(&self.script)
            .arg(base)
            .env("NATTER_BENCH_TARGETS", &self.targets)
            // Four random hex digits: a run's client ids differ from another's.
            .env(
                "NATTER_BENCH_RUN",
                &Uuid::new_v4().simple().to_string()[..4],
            )
            .env("NATTER_BENCH_DELAY_MS", format!("{pause_ms:.0}"))
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("running {}", self.program))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let figures = stdout
            .lines()
            .find_map(|line| line.strip_prefix("natter-bench "))
            .with_context(|| {
                format!(
                    "{} printed no figures: {stdout} {}",
                    self.program,
                    String::from_utf8_lossy(&output.stderr)
                )
            })?;
        let numbers: Vec<f64> = figures
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .context("wrk's figures")?;
        let [requests, duration_us, failed, p50_us, p99_us, max_us] = numbers[..] else {
            anyhow::bail!("wrk printed {figures}");
        };
        Ok(Run {
            rate: (requests - failed) / (duration_us / 1e6).max(1e-3),
            p50_us,
            p99_us,
            max_us,
            failed: failed as u64,
        })
    }
}

/// The floor: the same JWT check and an append of an event of the same size to the
/// same stream, awaiting the ack, behind a minimal axum route.
struct Floor {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

struct FloorState {
    keys: natter_access::tokens::TokenKeys,
    log: EventLog,
    /// An envelope of the size a send stores, of a kind no projection reads.
    payload: Bytes,
}

impl Floor {
    async fn start(app: &BenchApp) -> anyhow::Result<Self> {
        let payload = super::messages::raw_send(&"x".repeat(BODY_BYTES))?;
        let state = Arc::new(FloorState {
            keys: app.keys.clone(),
            log: app.log.clone(),
            payload,
        });
        let router = axum::Router::new()
            .route(
                "/v1/chats/{chat_id}/messages",
                axum::routing::post(floor_send),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self { base, stop, server })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

async fn floor_send(
    State(state): State<Arc<FloorState>>,
    UrlPath(chat_id): UrlPath<Uuid>,
    headers: HeaderMap,
    _body: Bytes,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if token.is_none_or(|token| state.keys.verify(token).is_err()) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({})));
    }
    let subject = state.log.subject("rawbench", &chat_id.to_string());
    let appended = async {
        let ack = state
            .log
            .jetstream()
            .publish(subject, state.payload.clone())
            .await?;
        anyhow::Ok(ack.await?.sequence)
    }
    .await;
    match appended {
        Ok(sequence) => (
            StatusCode::CREATED,
            axum::Json(json!({"sequence": sequence})),
        ),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({}))),
    }
}

/// Runs `load` while sampling the chats projection's lag behind the stream: every 50 ms
/// the stream's last sequence and the projection's checkpoint are read, and a sample's
/// lag is the time until the checkpoint reached the stream's sequence of that moment.
/// Sampling goes on for 2 s after the load, so that the last samples can be caught up.
async fn with_lag<F>(app: &BenchApp, load: F) -> anyhow::Result<(Run, Vec<Duration>)>
where
    F: std::future::Future<Output = anyhow::Result<Run>>,
{
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&app.database_url)
        .await?;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let log = app.log.clone();
    let sampler = tokio::spawn(async move {
        let started = Instant::now();
        let mut samples = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => break,
            }
            let head = log.last_sequence().await?;
            let checkpoint: i64 = sqlx::query_scalar(
                "SELECT COALESCE(max(sequence), 0) FROM projection_checkpoints WHERE name = 'chats'",
            )
            .fetch_one(&pool)
            .await?;
            samples.push((
                started.elapsed(),
                head,
                u64::try_from(checkpoint).unwrap_or(0),
            ));
        }
        anyhow::Ok(samples)
    });
    let run = load.await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(true);
    let samples = sampler.await??;
    Ok((run?, lags(&samples)))
}

/// For each `(at, head, checkpoint)` sample, how long until a checkpoint reached its head;
/// samples never caught up are left out (they are the last few).
fn lags(samples: &[(Duration, u64, u64)]) -> Vec<Duration> {
    samples
        .iter()
        .enumerate()
        .filter_map(|(i, (at, head, _))| {
            samples[i..]
                .iter()
                .find(|(_, _, checkpoint)| checkpoint >= head)
                .map(|(caught, _, _)| caught.saturating_sub(*at))
        })
        .collect()
}
