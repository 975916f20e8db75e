//! `natter bench fanout`: the time from a REST send to the recipients' WebSocket
//! frames, in groups of 1, 10 and 256 members: first one send at a time at a low rate
//! (20 a second, against raw NATS publish/subscribe at that rate), then at 25%, 50% and
//! 90% of the maximum send rate (open loop), and the frames delivered per second at
//! saturation against raw NATS core publish/subscribe to as many subscribers in the
//! same run. The server runs as a `natter serve` process of its own by default, so that
//! the clients (this process) and the server share no runtime, as users' clients don't.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use super::app::{BenchApp, Server, with_bench_app_on};
use super::{ms, progress};
use natter::settings::Settings;

#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Group sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,256")]
    pub sizes: Vec<u32>,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// Sends in flight in the saturation phase.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_024))]
    pub in_flight: u32,
    /// Sends per second of the latency phase, which runs for at least 10 seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub trickle: u32,
    /// Where the server runs: in this process, or in a `natter serve` of its own.
    #[arg(long, value_enum, default_value_t = Server::Process)]
    pub server: Server,
}

/// The load levels of the open-loop phases, as fractions of the maximum rate.
const LOADS: [f64; 3] = [0.25, 0.5, 0.9];
/// The latency phase's number, after the open-loop phases'.
const TRICKLE_PHASE: u8 = LOADS.len() as u8 + 1;
/// How long after a phase its last frames may still arrive.
const DRAIN: Duration = Duration::from_secs(3);

pub async fn bench_fanout(settings: &Settings, args: FanoutArgs) -> anyhow::Result<()> {
    println!("natter bench fanout");
    with_bench_app_on(settings, args.server, |app| run(app, args)).await
}

/// One frame a recipient got: its phase, and microseconds from when its send was due
/// and from the start of the run to its arrival.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    phase: u8,
    latency_us: u64,
    at_us: u64,
}

async fn run(app: BenchApp, args: FanoutArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1_024)
        .build()?;
    let window = Duration::from_secs(args.seconds);
    let ws_url = format!("{}/v1/ws", app.base.replacen("http://", "ws://", 1));
    progress(&format!(
        "raw NATS publish/subscribe at {} msgs/s",
        args.trickle
    ));
    let raw_trickle = raw_trickle(&app, f64::from(args.trickle), Duration::from_secs(10)).await?;
    for &size in &args.sizes {
        let size = size.max(1) as usize;
        progress(&format!("group of {size}: members, chat and sockets"));
        let members = app.users(&format!("fan{size}"), size).await?;
        let others: Vec<Uuid> = members[1..].iter().map(|(id, _)| *id).collect();
        let created: serde_json::Value = http
            .post(format!("{}/v1/chats/groups", app.base))
            .bearer_auth(&members[0].1)
            .json(&json!({"name": format!("fanout {size}"), "members": others}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let chat = created["chat_id"].as_str().context("chat id")?.to_owned();
        let epoch = Instant::now();
        let saturation_seen = Arc::new(Seen::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (ready, mut readies) = tokio::sync::mpsc::channel(size);
        let mut receivers = Vec::new();
        for (_, token) in &members {
            receivers.push(tokio::spawn(receive(
                ws_url.clone(),
                token.clone(),
                epoch,
                Arc::clone(&saturation_seen),
                ready.clone(),
                stopped.clone(),
            )));
        }
        for _ in 0..size {
            readies.recv().await.context("a socket failed to start")?;
        }
        let tokens: Arc<Vec<String>> = Arc::new(members.iter().map(|(_, t)| t.clone()).collect());
        let target = Target {
            http: http.clone(),
            url: format!("{}/v1/chats/{chat}/messages", app.base),
            tokens,
            epoch,
        };

        // First, while nothing else is in flight: the latency of a lone send.
        let trickle = f64::from(args.trickle);
        progress(&format!("group of {size}: latency at {trickle:.0} sends/s"));
        let mut answered = target
            .phase(
                TRICKLE_PHASE,
                1,
                window.max(Duration::from_secs(10)),
                Some(trickle),
            )
            .await;
        answered.sort_unstable();
        tokio::time::sleep(DRAIN).await;
        progress(&format!("group of {size}: saturation"));
        let saturation_start = epoch.elapsed();
        let sent = target.phase(0, args.in_flight, window, None).await.len() as u64;
        tokio::time::sleep(DRAIN).await;
        // The maximum rate: messages sent at saturation over the time until the last of
        // their frames arrived, so that a group the gateway cannot keep up with counts
        // what it delivered, not what the API took in.
        let span = Duration::from_micros(saturation_seen.last_us.load(Ordering::Relaxed))
            .saturating_sub(saturation_start)
            .max(Duration::from_millis(1));
        let max_rate = sent as f64 / span.as_secs_f64().max(window.as_secs_f64());
        let mut rates = Vec::new();
        for (phase, load) in (1u8..).zip(LOADS) {
            let rate = (max_rate * load).max(1.0);
            progress(&format!(
                "group of {size}: open loop at {:.0}% ({rate:.0} sends/s)",
                load * 100.0
            ));
            target
                .phase(phase, args.in_flight, window, Some(rate))
                .await;
            tokio::time::sleep(DRAIN).await;
            rates.push(rate);
        }
        let _ = stop.send(true);
        let mut arrivals = Vec::new();
        for receiver in receivers {
            arrivals.extend(receiver.await??);
        }
        let saturation: Vec<&Arrival> = arrivals.iter().filter(|a| a.phase == 0).collect();
        let frames_rate = saturation.len() as f64 / span.as_secs_f64();
        let expected = sent as usize * size;

        progress(&format!("group of {size}: raw NATS publish/subscribe"));
        let frame_size = 420;
        let raw_rate = raw_fanout(&app, size, frame_size, window).await?;

        println!("  group of {size} member(s)");
        println!(
            "    saturation ({} in flight)     {:>9.0} sends/s   {:>10.0} frames/s   ({} of {expected} frames arrived)",
            args.in_flight,
            sent as f64 / span.as_secs_f64(),
            frames_rate,
            saturation.len()
        );
        let latencies = |phase: u8| {
            let mut latencies: Vec<Duration> = arrivals
                .iter()
                .filter(|a| a.phase == phase)
                .map(|a| Duration::from_micros(a.latency_us))
                .collect();
            latencies.sort_unstable();
            latencies
        };
        let print = |label: String, latencies: Vec<Duration>| {
            println!(
                "    {label:<36}   p50 {:>7.2} ms   p99 {:>7.2} ms   p99.9 {:>7.2} ms   ({} frames)",
                ms(super::percentile(&latencies, 0.5)),
                ms(super::percentile(&latencies, 0.99)),
                ms(super::percentile(&latencies, 0.999)),
                latencies.len()
            );
        };
        for (index, load) in LOADS.iter().enumerate() {
            let label = format!(
                "open loop at {:>3.0}% ({:>6.0} sends/s)",
                load * 100.0,
                rates[index]
            );
            print(label, latencies(index as u8 + 1));
        }
        print(
            format!("latency at {trickle:.0} sends/s"),
            latencies(TRICKLE_PHASE),
        );
        println!(
            "    {:<36}   p50 {:>7.2} ms   p99 {:>7.2} ms   (the REST answer, for comparison)",
            "",
            ms(super::percentile(&answered, 0.5)),
            ms(super::percentile(&answered, 0.99)),
        );
        println!(
            "    raw NATS core pub/sub to {size} subscriber(s) ({frame_size} B)   {raw_rate:>10.0} msgs/s   ratio frames / raw: {:.2}",
            frames_rate / raw_rate
        );
    }
    println!(
        "  raw NATS core pub/sub at {} msgs/s (1 subscriber): p50 {:.2} ms   p99 {:.2} ms   ({} messages)",
        args.trickle,
        ms(super::percentile(&raw_trickle, 0.5)),
        ms(super::percentile(&raw_trickle, 0.99)),
        raw_trickle.len()
    );
    println!(
        "  targets: p99 <= 10 / 10 / 20 ms (1 / 10 / 256 members) at 50% of the maximum rate; \
         p50 <= 1 ms and p99 <= 3 ms at 20 sends/s; frames / raw >= 0.5 at 256"
    );
    Ok(())
}

/// When the last frame of the saturation phase arrived, in µs from the start.
#[derive(Debug, Default)]
struct Seen {
    last_us: AtomicU64,
}

/// Where and as whom the senders send.
struct Target {
    http: reqwest::Client,
    url: String,
    tokens: Arc<Vec<String>>,
    epoch: Instant,
}

impl Target {
    /// Sends for `window`: closed loop with `workers` if `rate` is `None`, else open
    /// loop at `rate`. Each body carries its phase and when it was due. For each send
    /// accepted, the time from when it was due until its answer.
    async fn phase(
        &self,
        phase: u8,
        workers: u32,
        window: Duration,
        rate: Option<f64>,
    ) -> Vec<Duration> {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..workers {
            let (http, url, tokens, epoch) = (
                self.http.clone(),
                self.url.clone(),
                Arc::clone(&self.tokens),
                self.epoch,
            );
            let interval = rate.map(|r| Duration::from_secs_f64(f64::from(workers) / r));
            tasks.spawn(async move {
                let mut next = started
                    + interval.map_or(Duration::ZERO, |i| {
                        i.mul_f64(f64::from(w) / f64::from(workers))
                    });
                let mut n = u64::from(w);
                let mut answered = Vec::new();
                while started.elapsed() < window {
                    let due = match interval {
                        Some(interval) => {
                            tokio::time::sleep_until(next.into()).await;
                            let due = on_time(next, Instant::now());
                            next += interval;
                            due
                        }
                        None => Instant::now(),
                    };
                    let due_us = due.duration_since(epoch).as_micros();
                    let token = &tokens[(n as usize) % tokens.len()];
                    n += u64::from(workers);
                    let response = http
                        .post(&url)
                        .bearer_auth(token)
                        .json(&json!({
                            "client_id": Uuid::now_v7().simple().to_string(),
                            "body": format!("p{phase}t{due_us}"),
                        }))
                        .send()
                        .await;
                    if response.is_ok_and(|r| r.status().is_success()) {
                        answered.push(due.elapsed());
                    }
                }
                answered
            });
        }
        let mut answered = Vec::new();
        while let Some(worker) = tasks.join_next().await {
            answered.extend(worker.unwrap_or_default());
        }
        answered
    }
}

/// When a send due at `due` counts from, woken at `woke`. Tokio's timers tick by the
/// millisecond and wake up to a tick late; that lateness is the benchmark's, not the
/// server's, yet counted from `due` it was in every latency measured. A wake
/// later than two ticks is the client falling behind, and counts from `due` as it
/// should (no coordinated omission).
fn on_time(due: Instant, woke: Instant) -> Instant {
    if woke.saturating_duration_since(due) <= Duration::from_millis(2) {
        woke
    } else {
        due
    }
}

/// One recipient: connects, resumes from now, then notes every message frame's phase
/// and latency until told to stop.
async fn receive(
    url: String,
    token: String,
    epoch: Instant,
    saturation_seen: Arc<Seen>,
    ready: tokio::sync::mpsc::Sender<()>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<Arrival>> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(client_config()), true).await?;
    socket
        .send(Message::Text(r#"{"type":"resume","cursor":null}"#.into()))
        .await?;
    let mut arrivals = Arrivals::default();
    let mut announced = false;
    loop {
        let message = tokio::select! {
            message = socket.next() => message,
            _ = stop.changed() => return Ok(arrivals.into_vec()),
        };
        let Some(message) = message else {
            anyhow::bail!("a socket closed during the benchmark");
        };
        let Message::Text(text) = message? else {
            continue;
        };
        if !announced && text.contains(r#""type":"ready""#) {
            announced = true;
            ready.send(()).await?;
            continue;
        }
        if let Some(arrival) = arrival(&text, epoch) {
            if arrival.phase == 0 {
                saturation_seen
                    .last_us
                    .fetch_max(arrival.at_us, Ordering::Relaxed);
            }
            arrivals.push(arrival);
        } else if text.contains(r#""type":"error""#) {
            anyhow::bail!("the gateway closed a socket: {text}");
        }
    }
}

/// A recipient's arrivals, kept in chunks of a fixed size. In one `Vec`, all 256
/// recipients of a group doubled theirs at the same frame: hundreds of megabytes copied
/// and faulted in at once stalled this client for 0.3 s, which showed as a p99 of
/// about 240 ms in the 256 group's 50% phase (issue 18).
#[derive(Default)]
struct Arrivals {
    full: Vec<Vec<Arrival>>,
    current: Vec<Arrival>,
}

impl Arrivals {
    const CHUNK: usize = 4_096;

    fn push(&mut self, arrival: Arrival) {
        if self.current.len() == Self::CHUNK {
            self.full.push(std::mem::take(&mut self.current));
        }
        if self.current.capacity() == 0 {
            self.current.reserve_exact(Self::CHUNK);
        }
        self.current.push(arrival);
    }

    fn into_vec(mut self) -> Vec<Arrival> {
        self.full.push(self.current);
        self.full.concat()
    }
}

/// Reads `p<phase>t<due µs>` out of a message frame's body without parsing the frame.
fn arrival(frame: &str, epoch: Instant) -> Option<Arrival> {
    let at_us = epoch.elapsed().as_micros() as u64;
    let start = frame.find(r#""body":"p"#)? + r#""body":"p"#.len();
    let rest = &frame[start..];
    let (phase, rest) = rest.split_once('t')?;
    let due: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let due: u64 = due.parse().ok()?;
    Some(Arrival {
        phase: phase.parse().ok()?,
        latency_us: at_us.saturating_sub(due),
        at_us,
    })
}

/// The time from publishing to receiving a core NATS message, one at a time at `rate`
/// per second for `window`: the broker hop that a send's delivery takes, on this
/// machine and at this rate, as the latency phase's baseline.
async fn raw_trickle(app: &BenchApp, rate: f64, window: Duration) -> anyhow::Result<Vec<Duration>> {
    let subject = format!("{}.rawtrickle", app.log.config().prefix);
    let address = format!(
        "nats://{}:{}",
        app.log.client().server_info().host,
        app.log.client().server_info().port
    );
    let subscriber = async_nats::connect(&address).await?;
    let mut subscription = subscriber.subscribe(subject.clone()).await?;
    subscriber.flush().await?;
    let publisher = async_nats::connect(&address).await?;
    let epoch = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut next = Instant::now();
    let mut latencies = Vec::new();
    while epoch.elapsed() < window {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let sent = Instant::now();
        let stamp = sent.duration_since(epoch).as_micros().to_string();
        publisher.publish(subject.clone(), stamp.into()).await?;
        publisher.flush().await?;
        let received = tokio::time::timeout(Duration::from_secs(1), subscription.next())
            .await
            .context("a raw NATS message did not arrive within 1 s")?
            .context("the raw subscription ended")?;
        anyhow::ensure!(
            received.payload
                == sent
                    .duration_since(epoch)
                    .as_micros()
                    .to_string()
                    .as_bytes(),
            "the raw subscription got another message"
        );
        latencies.push(sent.elapsed());
    }
    Ok(latencies)
}

/// Messages per second that `subscribers` NATS connections receive from one publisher
/// publishing as fast as it can on one subject.
async fn raw_fanout(
    app: &BenchApp,
    subscribers: usize,
    size: usize,
    window: Duration,
) -> anyhow::Result<f64> {
    let subject = format!("{}.rawfanout", app.log.config().prefix);
    let received = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let address = format!(
        "nats://{}:{}",
        app.log.client().server_info().host,
        app.log.client().server_info().port
    );
    for _ in 0..subscribers {
        let client = async_nats::connect(&address).await?;
        let mut subscription = client.subscribe(subject.clone()).await?;
        client.flush().await?;
        let (received, mut stopped) = (Arc::clone(&received), stopped.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = subscription.next() => match message {
                        Some(_) => { received.fetch_add(1, Ordering::Relaxed); }
                        None => break,
                    },
                    _ = stopped.changed() => break,
                }
            }
            drop(client);
        }));
    }
    let publisher = async_nats::connect(&address).await?;
    let payload = bytes::Bytes::from(vec![b'x'; size]);
    let started = Instant::now();
    let mut published = 0u64;
    while started.elapsed() < window {
        for _ in 0..64 {
            publisher.publish(subject.clone(), payload.clone()).await?;
        }
        publisher.flush().await?;
        published += 64;
        // Keep the subscribers' backlog bounded: the server cuts off slow consumers.
        while published * subscribers as u64 > received.load(Ordering::Relaxed) + 200_000 {
            tokio::task::yield_now().await;
            if started.elapsed() >= window {
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let count = received.load(Ordering::Relaxed);
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    Ok(count as f64 / elapsed.as_secs_f64())
}

/// A client's socket settings: tungstenite zero-fills its whole read buffer (128 KiB
/// by default) before every read, which was a fifth of this benchmark's CPU.
pub(crate) fn client_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024)
}
