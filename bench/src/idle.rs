//! `natter bench idle`: resident memory per open, idle WebSocket. Gateway processes
//! (`natter serve --roles gateway`) hold the connections; client processes open them
//! from several 127.0.0.x addresses, so that neither side's memory counts for the other
//! and no address runs out of ports.
//!
//! One process may hold at most as many connections as its open-file limit allows
//! (20,000 in this sandbox, a hard limit it cannot raise), so the connections are
//! spread over `--gateways` processes; the figure is their growth in resident memory
//! over the number of connections.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use super::app::{BenchApp, with_bench_app};
use super::progress;
use natter::settings::Settings;

#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Connections to open in all.
    #[arg(long, default_value_t = 51_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub connections: u32,
    /// Gateway processes holding them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub gateways: u32,
    /// Connections opened at once by each client process.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4_096))]
    pub opening: u32,
}

/// The hidden half of `bench idle`: one client process.
#[derive(Debug, Args)]
pub struct IdleClientsArgs {
    /// The gateway's WebSocket URL.
    #[arg(long)]
    pub url: String,
    /// Local address to connect from.
    #[arg(long)]
    pub from: std::net::IpAddr,
    #[arg(long)]
    pub count: u32,
    #[arg(long)]
    pub opening: u32,
}

/// Most connections one client process opens (its open-file limit is 20,000 here).
const PER_CLIENT: u32 = 17_000;

pub async fn bench_idle(settings: &Settings, args: IdleArgs) -> anyhow::Result<()> {
    println!("natter bench idle");
    let settings = settings.clone();
    with_bench_app(&settings.clone(), |app| run(settings, app, args)).await
}

async fn run(settings: Settings, app: BenchApp, args: IdleArgs) -> anyhow::Result<()> {
    // This binary runs the clients; the `natter` beside it runs the gateways.
    let exe = std::env::current_exe()?;
    let natter = exe.with_file_name("natter");
    let config = app.log.config().clone();
    let mut gateways = Vec::new();
    for _ in 0..args.gateways {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(&natter)
            .args([
                "serve",
                "--roles",
                "gateway",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env("NATTER_NATS_URL", &settings.nats_url)
            .env("NATTER_DATABASE_URL", &app.database_url)
            .env("NATTER_STREAM", &config.stream)
            .env("NATTER_SUBJECT_PREFIX", &config.prefix)
            .env("NATTER_JWT_KEYS", &app.keys_spec)
            .env("NATTER_DATABASE_MAX_CONNECTIONS", "8")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting a gateway process")?;
        gateways.push((child, port));
    }
    let http = reqwest::Client::new();
    for (_, port) in &gateways {
        let started = Instant::now();
        while http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .map_or(true, |r| !r.status().is_success())
        {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "a gateway did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = total_rss(&gateways)?;

    // Client processes: at most PER_CLIENT connections each, each from its own address,
    // taking the gateways in turn.
    let mut clients: Vec<Child> = Vec::new();
    let mut left = args.connections;
    let mut index = 0u32;
    while left > 0 {
        let count = left.min(PER_CLIENT);
        let (_, port) = &gateways[(index % args.gateways) as usize];
        let from = format!("127.0.0.{}", 2 + index);
        let child = Command::new(&exe)
            .args([
                "idle-clients",
                "--url",
                &format!("ws://127.0.0.1:{port}/v1/ws"),
                "--from",
                &from,
                "--count",
                &count.to_string(),
                "--opening",
                &args.opening.to_string(),
            ])
            .env("NATTER_JWT_KEYS", &app.keys_spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting a client process")?;
        clients.push(child);
        left -= count;
        index += 1;
    }
    let started = Instant::now();
    let mut open = 0u64;
    for client in &mut clients {
        let stdout = client.stdout.take().context("client stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next_line()
                .await?
                .context("a client process ended early")?;
            if let Some(count) = line.strip_prefix("ready ") {
                open += count.parse::<u64>()?;
                break;
            }
            if let Some(error) = line.strip_prefix("error ") {
                anyhow::bail!("a client process failed: {error}");
            }
        }
        progress(&format!("{open} connections open and resumed"));
    }
    let opening = started.elapsed();
    // Let allocations settle; the connections stay idle meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = total_rss(&gateways)?;
    let per_connection = (after.saturating_sub(before)) as f64 / open as f64;
    println!(
        "  {open} idle WebSockets on {} gateway process(es), opened and resumed in {:.1} s ({:.0}/s)",
        args.gateways,
        opening.as_secs_f64(),
        open as f64 / opening.as_secs_f64()
    );
    println!(
        "  gateway resident memory: {:.1} MiB before, {:.1} MiB with the connections",
        before as f64 / 1_048_576.0,
        after as f64 / 1_048_576.0
    );
    println!(
        "  per idle connection: {:.1} KiB   (target < 16 KiB)",
        per_connection / 1024.0
    );
    for mut client in clients {
        drop(client.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(10), client.wait()).await;
    }
    for (mut gateway, _) in gateways {
        let _ = gateway.kill().await;
    }
    Ok(())
}

/// The resident memory of the gateway processes together, in bytes.
fn total_rss(gateways: &[(Child, u16)]) -> anyhow::Result<u64> {
    let mut total = 0;
    for (child, _) in gateways {
        let pid = child.id().context("a gateway process ended")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .context("VmRSS")?;
        total += kib * 1024;
    }
    Ok(total)
}

/// Opens `count` connections, each resumed from now, reports `ready <count>`, and
/// keeps them open until stdin closes.
pub async fn idle_clients(args: IdleClientsArgs) -> anyhow::Result<()> {
    let spec = std::env::var("NATTER_JWT_KEYS").context("NATTER_JWT_KEYS")?;
    let keys = natter_access::tokens::TokenKeys::parse(
        &spec,
        "natter",
        "natter-api",
        time::Duration::hours(12),
    )?;
    let server: std::net::SocketAddr = args
        .url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .context("gateway address")?
        .parse()?;
    let opened = futures::stream::iter(0..args.count)
        .map(|_| {
            let (keys, url) = (keys.clone(), args.url.clone());
            async move {
                // Users without chats: what an idle connection costs by itself.
                let (token, _) = keys.issue(Uuid::now_v7(), Uuid::now_v7(), 0)?;
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.bind(std::net::SocketAddr::new(args.from, 0))?;
                let tcp = socket.connect(server).await?;
                let mut request = url.into_client_request()?;
                request
                    .headers_mut()
                    .insert("authorization", format!("Bearer {token}").parse()?);
                let (mut ws, _) = tokio_tungstenite::client_async_with_config(
                    request,
                    tcp,
                    Some(super::fanout::client_config()),
                )
                .await?;
                ws.send(Message::Text(r#"{"type":"resume","cursor":null}"#.into()))
                    .await?;
                while let Some(message) = ws.next().await {
                    if let Message::Text(text) = message?
                        && text.contains(r#""type":"ready""#)
                    {
                        return anyhow::Ok(ws);
                    }
                }
                anyhow::bail!("closed before ready")
            }
        })
        .buffer_unordered(args.opening as usize)
        .collect::<Vec<_>>()
        .await;
    let mut sockets = Vec::with_capacity(opened.len());
    for socket in opened {
        match socket {
            Ok(socket) => sockets.push(socket),
            Err(error) => {
                println!("error {error:#}");
                return Ok(());
            }
        }
    }
    println!("ready {}", sockets.len());
    // Idle until the parent closes stdin; answering the server's pings keeps the
    // connections alive meanwhile.
    let reader = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
    });
    let keepalive = async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for socket in &mut sockets {
                while let Some(Some(_)) = futures::FutureExt::now_or_never(socket.next()) {}
            }
        }
    };
    tokio::select! {
        _ = reader => {}
        () = keepalive => {}
    }
    Ok(())
}
