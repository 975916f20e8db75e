//! `natter bench messages`: sends through the REST API across a Zipf-distributed set of
//! chats (80% direct, the rest groups of 10 to 256), against raw JetStream publishes of
//! the same payload and concurrency in the same run; then the chats projection
//! catching up on the whole backlog, against raw batched inserts of its rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Args;
use serde_json::{Value, json};
use uuid::Uuid;

use super::app::{BenchApp, with_bench_app};
use super::{ms, progress};
use natter::settings::Settings;

#[derive(Debug, Args)]
pub struct MessagesArgs {
    /// Users taking part.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(20..=10_000))]
    pub users: u32,
    /// Chats, 80% direct and 20% groups of 10 to 256.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(5..=10_000))]
    pub chats: u32,
    /// Sends in flight during the saturation phase. 64 left this machine's two cores
    /// idle part of the time; 128 and 256 give the same rate.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=1_024))]
    pub in_flight: u32,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
}

const PASSWORD: &str = "bench password 123";

struct Chat {
    id: String,
    members: Vec<usize>,
}

pub async fn bench_messages(settings: &Settings, args: MessagesArgs) -> anyhow::Result<()> {
    println!("natter bench messages");
    with_bench_app(settings, |app| run(settings, app, args)).await
}

async fn run(settings: &Settings, app: BenchApp, args: MessagesArgs) -> anyhow::Result<()> {
    let (base, log) = (app.base, app.log);
    let args = &args;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1_024)
        .build()?;

    progress(&format!("registering and signing in {} users", args.users));
    let mut users: Vec<(String, String)> = Vec::new();
    for n in 0..args.users {
        let handle = format!("bench_{n}");
        let registered: Value = post(
            &http,
            &format!("{base}/v1/users"),
            None,
            json!({"handle": handle, "display_name": "Bench", "password": PASSWORD}),
        )
        .await?;
        let session: Value = post(
            &http,
            &format!("{base}/v1/sessions"),
            None,
            json!({"handle": handle, "password": PASSWORD}),
        )
        .await?;
        users.push((
            registered["user_id"]
                .as_str()
                .context("user id")?
                .to_owned(),
            session["access_token"]
                .as_str()
                .context("token")?
                .to_owned(),
        ));
    }

    progress(&format!("opening {} chats", args.chats));
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut chats = Vec::new();
    for n in 0..args.chats as usize {
        let creator = rng.below(users.len());
        let members = if n % 5 == 4 {
            let size = 10 + rng.below(247);
            let mut members = vec![creator];
            while members.len() < size.min(users.len()) {
                let candidate = rng.below(users.len());
                if !members.contains(&candidate) {
                    members.push(candidate);
                }
            }
            members
        } else {
            let mut other = rng.below(users.len());
            while other == creator {
                other = rng.below(users.len());
            }
            vec![creator, other]
        };
        let body = if members.len() == 2 {
            (
                format!("{base}/v1/chats/direct"),
                json!({"user_id": users[members[1]].0}),
            )
        } else {
            let ids: Vec<&str> = members[1..].iter().map(|m| users[*m].0.as_str()).collect();
            (
                format!("{base}/v1/chats/groups"),
                json!({"name": format!("group {n}"), "members": ids}),
            )
        };
        let created: Value = post(&http, &body.0, Some(&users[creator].1), body.1).await?;
        chats.push(Chat {
            id: created["chat_id"].as_str().context("chat id")?.to_owned(),
            members,
        });
    }
    let chats = Arc::new(chats);
    let users = Arc::new(users);
    let zipf = Arc::new(Zipf::new(chats.len()));
    let body = "x".repeat(120);

    progress(&format!(
        "{} s of sends at saturation ({} in flight)",
        args.seconds, args.in_flight
    ));
    let window = Duration::from_secs(args.seconds);
    let saturated = send_phase(
        &http,
        &base,
        &chats,
        &users,
        &zipf,
        &body,
        args.in_flight,
        window,
        None,
    )
    .await?;
    let max_rate = saturated.count as f64 / saturated.elapsed.as_secs_f64();

    progress(&format!("{} s of sends at half that rate", args.seconds));
    let half = send_phase(
        &http,
        &base,
        &chats,
        &users,
        &zipf,
        &body,
        args.in_flight * 4,
        window,
        Some(max_rate / 2.0),
    )
    .await?;

    // Before the raw publishes, so that the backlog is the sends' alone.
    let catch_up = super::catchup::chats_catch_up(settings, &log, 2_000).await?;

    progress(&format!(
        "{} s of raw JetStream publishes ({} in flight)",
        args.seconds, args.in_flight
    ));
    let payload = raw_send(&body)?;
    let raw = raw_phase(&log, &payload, args.in_flight, window).await?;
    let raw_rate = raw.count as f64 / raw.elapsed.as_secs_f64();

    let direct = chats.iter().filter(|c| c.members.len() == 2).count();
    println!(
        "  {} users, {} chats ({direct} direct, {} groups of 10 to 256), Zipf-distributed sends of 120 bytes",
        users.len(),
        chats.len(),
        chats.len() - direct
    );
    println!(
        "  REST sends at saturation ({} in flight)   {max_rate:>9.0} /s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} failed)",
        args.in_flight,
        ms(saturated.percentile(0.5)),
        ms(saturated.percentile(0.99)),
        saturated.failed
    );
    println!(
        "  REST sends at half that rate, open loop   {:>9.0} /s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} failed)",
        half.count as f64 / half.elapsed.as_secs_f64(),
        ms(half.percentile(0.5)),
        ms(half.percentile(0.99)),
        half.failed
    );
    println!(
        "  raw JetStream publish ({} in flight)       {raw_rate:>9.0} /s   p50 {:>6.2} ms   p99 {:>6.2} ms",
        args.in_flight,
        ms(raw.percentile(0.5)),
        ms(raw.percentile(0.99))
    );
    println!(
        "  ratio REST sends / raw publishes: {:.2}   (targets: >= 5,000 sends/s; p99 < 20 ms at half rate)",
        max_rate / raw_rate
    );
    catch_up.print();
    Ok(())
}

/// An envelope the size of a send of `body`, of a kind no projection reads: what the
/// raw baselines append.
pub(super) fn raw_send(body: &str) -> anyhow::Result<Bytes> {
    Ok(Bytes::from(serde_json::to_vec(&natter_schema::Envelope {
        event_id: Uuid::now_v7(),
        event_type: "RawBench".into(),
        schema_version: 1,
        aggregate_type: "rawbench".into(),
        aggregate_id: Uuid::now_v7().to_string(),
        actor: Some(Uuid::now_v7()),
        occurred_at: time::OffsetDateTime::now_utc(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        payload: json!({"chat_id": Uuid::now_v7(), "message_id": Uuid::now_v7(), "sender": Uuid::now_v7(),
                        "client_id": Uuid::now_v7().simple().to_string(), "body": body, "mentions": [],
                        "forwarded": 0, "sent_at": "2026-11-26T12:00:00Z"}),
    })?))
}

struct Outcome {
    count: u64,
    failed: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Outcome {
    fn percentile(&self, p: f64) -> Duration {
        super::percentile(&self.latencies, p)
    }
}

/// Sends for `window`: closed loop with `workers` when `rate` is `None`, else open loop
/// at `rate` per second (each worker keeps its share of the schedule).
#[allow(clippy::too_many_arguments)]
async fn send_phase(
    http: &reqwest::Client,
    base: &str,
    chats: &Arc<Vec<Chat>>,
    users: &Arc<Vec<(String, String)>>,
    zipf: &Arc<Zipf>,
    body: &str,
    workers: u32,
    window: Duration,
    rate: Option<f64>,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (http, base, chats, users, zipf, body) = (
            http.clone(),
            base.to_owned(),
            Arc::clone(chats),
            Arc::clone(users),
            Arc::clone(zipf),
            body.to_owned(),
        );
        let failed = Arc::clone(&failed);
        let interval = rate.map(|r| Duration::from_secs_f64(f64::from(workers) / r.max(1.0)));
        tasks.spawn(async move {
            let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (u64::from(w) << 17 | 1));
            let mut latencies = Vec::new();
            let mut next = started
                + interval.map_or(Duration::ZERO, |i| {
                    i.mul_f64(f64::from(w) / f64::from(workers))
                });
            while started.elapsed() < window {
                if let Some(interval) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += interval;
                }
                let chat = &chats[zipf.sample(&mut rng)];
                let sender = chat.members[rng.below(chat.members.len())];
                // Open loop: latency counts from when the send was due.
                let due = if interval.is_some() {
                    next - interval.unwrap_or_default()
                } else {
                    Instant::now()
                };
                let response = http
                    .post(format!("{base}/v1/chats/{}/messages", chat.id))
                    .bearer_auth(&users[sender].1)
                    .json(&json!({"client_id": Uuid::now_v7().simple().to_string(), "body": body}))
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status().is_success() => latencies.push(due.elapsed()),
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        latencies.extend(joined?);
    }
    Ok(Outcome {
        count: latencies.len() as u64,
        failed: failed.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        latencies,
    })
}

async fn raw_phase(
    log: &natter_eventlog::EventLog,
    payload: &Bytes,
    workers: u32,
    window: Duration,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let js = log.jetstream().clone();
        let subject = log.subject("rawbench", &w.to_string());
        let payload = payload.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < window {
                let t = Instant::now();
                let ack = js
                    .publish(subject.clone(), payload.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                ack.await.map_err(|e| anyhow::anyhow!("{e}"))?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        latencies.extend(joined??);
    }
    Ok(Outcome {
        count: latencies.len() as u64,
        failed: 0,
        elapsed: started.elapsed(),
        latencies,
    })
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Ok(request.send().await?.error_for_status()?.json().await?)
}

/// A small, seeded generator: the same chats and load every run.
pub(super) struct XorShift(pub(super) u64);

impl XorShift {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Zipf (s = 1) over `n` ranks: rank k is chosen with probability proportional to 1/k.
pub(super) struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub(super) fn new(n: usize) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|k| {
                total += 1.0 / k as f64;
                total
            })
            .collect::<Vec<_>>();
        Self {
            cumulative: cumulative.into_iter().map(|c| c / total).collect(),
        }
    }

    pub(super) fn sample(&self, rng: &mut XorShift) -> usize {
        let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        self.cumulative
            .partition_point(|c| *c < u)
            .min(self.cumulative.len() - 1)
    }
}
