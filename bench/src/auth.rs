//! `natter bench auth`: logins at saturation, and what they do to everyone else.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use clap::Args;
use natter_commands::passwords::{OWASP_ITERATIONS, OWASP_LANES, OWASP_MEMORY_KIB};
use serde_json::{Value, json};

use super::app::{BenchApp, with_bench_app};
use super::{ms, percentile, progress};
use natter::settings::Settings;

#[derive(Debug, Args)]
pub struct AuthArgs {
    /// Seconds of login saturation.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// Login requests in flight during saturation.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub logins_in_flight: u32,
}

const PASSWORD: &str = "bench password 123";
const USERS: usize = 8;

pub async fn bench_auth(settings: &Settings, args: AuthArgs) -> anyhow::Result<()> {
    println!("natter bench auth");
    with_bench_app(settings, |app| run(app, args)).await
}

async fn run(app: BenchApp, args: AuthArgs) -> anyhow::Result<()> {
    let (base, workers) = (app.base, app.hash_workers);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;

    progress(&format!("registering {USERS} users"));
    let mut last_sequence = 0;
    for i in 0..USERS {
        let body: Value = http
            .post(format!("{base}/v1/users"))
            .json(&json!({"handle": format!("bench_{i}"), "display_name": "Bench", "password": PASSWORD}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        last_sequence = body["sequence"].as_u64().unwrap_or(0);
    }
    let session: Value = http
        .post(format!("{base}/v1/sessions"))
        .json(&json!({"handle": "bench_0", "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = session["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned();
    // Warm up, and wait until the directory has the users.
    http.get(format!("{base}/v1/users/me?min_sequence={last_sequence}"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?;

    progress("raw argon2 verifications (the baseline)");
    let raw_per_second = raw_verifications(Duration::from_secs(3)).await?;

    // The idle phase lasts as long as the loaded one, so that both see the same
    // background (heartbeats, housekeeping) and give samples of the same size.
    progress(&format!("{} s of idle authenticated GETs", args.seconds));
    let idle_until = Instant::now() + Duration::from_secs(args.seconds);
    let idle = get_latencies(&http, &base, &token, GetBound::Until(idle_until)).await?;

    progress(&format!("{} s of login saturation", args.seconds));
    let window = Duration::from_secs(args.seconds);
    let succeeded = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut logins = tokio::task::JoinSet::new();
    for n in 0..args.logins_in_flight {
        let (http, base) = (http.clone(), base.clone());
        let (succeeded, busy, failed) = (
            Arc::clone(&succeeded),
            Arc::clone(&busy),
            Arc::clone(&failed),
        );
        logins.spawn(async move {
            let mut i = n as usize;
            while started.elapsed() < window {
                let response = http
                    .post(format!("{base}/v1/sessions"))
                    .json(&json!({"handle": format!("bench_{}", i % USERS), "password": PASSWORD}))
                    .send()
                    .await;
                match response.map(|r| r.status().as_u16()) {
                    Ok(201) => succeeded.fetch_add(1, Ordering::Relaxed),
                    Ok(503) => {
                        // Shed by the bounded queue: back off as a client would.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        busy.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
                i += 1;
            }
        });
    }
    // Let the pool fill before measuring the GETs under load.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loaded = get_latencies(&http, &base, &token, GetBound::Until(started + window)).await?;
    while logins.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();

    let logins_per_second = succeeded.load(Ordering::Relaxed) as f64 / elapsed;
    let ceiling = raw_per_second * workers as f64;
    println!(
        "  argon2id m={OWASP_MEMORY_KIB} KiB t={OWASP_ITERATIONS} p={OWASP_LANES}; {workers} hashing thread(s) on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "  raw argon2 verify, one thread          {raw_per_second:>8.1} /s  (x{workers} threads = {ceiling:.1} /s)"
    );
    println!(
        "  logins at saturation ({} in flight)      {logins_per_second:>8.1} /s  ({} shed with 503, {} other failures)",
        args.logins_in_flight,
        busy.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    println!(
        "  ratio logins / raw ceiling: {:.2}",
        logins_per_second / ceiling
    );
    let (idle_p50, idle_p99) = (percentile(&idle, 0.50), percentile(&idle, 0.99));
    let (loaded_p50, loaded_p99) = (percentile(&loaded, 0.50), percentile(&loaded, 0.99));
    println!(
        "  GET /v1/users/me idle           p50 {:>6.2} ms  p99 {:>6.2} ms  ({} requests)",
        ms(idle_p50),
        ms(idle_p99),
        idle.len()
    );
    println!(
        "  GET /v1/users/me under logins   p50 {:>6.2} ms  p99 {:>6.2} ms  ({} requests)",
        ms(loaded_p50),
        ms(loaded_p99),
        loaded.len()
    );
    println!(
        "  p99 under load / idle: {:.2}   (target <= 2.00)",
        loaded_p99.as_secs_f64() / idle_p99.as_secs_f64()
    );
    Ok(())
}

enum GetBound {
    Until(Instant),
}

/// Sequential authenticated GETs of the caller's own profile, each timed.
async fn get_latencies(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    bound: GetBound,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    loop {
        let GetBound::Until(deadline) = bound;
        if Instant::now() >= deadline {
            break;
        }
        let started = Instant::now();
        http.get(format!("{base}/v1/users/me"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

/// Verifications per second of one thread doing nothing else, with the same parameters.
async fn raw_verifications(for_at_least: Duration) -> anyhow::Result<f64> {
    tokio::task::spawn_blocking(move || {
        let params = argon2::Params::new(OWASP_MEMORY_KIB, OWASP_ITERATIONS, OWASP_LANES, None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let argon2 =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let phc = argon2
            .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .to_string();
        let parsed = argon2::PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("{e}"))?;
        let started = Instant::now();
        let mut count = 0u32;
        while started.elapsed() < for_at_least {
            argon2
                .verify_password(PASSWORD.as_bytes(), &parsed)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            count += 1;
        }
        Ok(f64::from(count) / started.elapsed().as_secs_f64())
    })
    .await?
}
