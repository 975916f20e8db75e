//! A whole Natter for a benchmark: API and projector on port 0, with a stream, subject
//! prefix and database of its own and no rate limits, all removed afterwards.

use std::future::Future;
use std::str::FromStr as _;

use anyhow::Context as _;
use natter_eventlog::EventLog;
use sqlx::ConnectOptions as _;
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;

use natter::settings::{AuthSettings, Role, Secret, ServeArgs, Settings};

/// The running app a benchmark talks to.
#[derive(Debug, Clone)]
pub struct BenchApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub log: EventLog,
    /// The password-hashing threads the app runs.
    pub hash_workers: usize,
    /// The app's own database.
    pub database_url: String,
    /// The keys the app's tokens are signed with, so a benchmark can issue its own.
    pub keys: natter_access::tokens::TokenKeys,
    /// The same keys as `NATTER_JWT_KEYS` takes them, for processes the benchmark starts.
    pub keys_spec: String,
    /// The app's media directory (a filesystem blob store of this run's own).
    pub media_dir: std::path::PathBuf,
}

impl BenchApp {
    /// Registers `count` accounts with handles `<prefix>_<n>` (straight to the log, with
    /// a fixed hash: no password hashing) and issues each a token of this run's keys.
    pub async fn users(&self, prefix: &str, count: usize) -> anyhow::Result<Vec<(Uuid, String)>> {
        use natter_commands::accounts::NewAccount;
        use natter_domain::user::{About, DisplayName, Handle, Password, PasswordHash};
        let accounts = super::bench_accounts(&self.log);
        let hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$bench$bench");
        let mut users = Vec::with_capacity(count);
        for n in 0..count {
            let account = NewAccount {
                handle: Handle::parse(&format!("{prefix}_{n}"))?,
                display_name: DisplayName::parse("Bench")?,
                about: About::default(),
                phone: None,
                password: Password::parse("bench password")?,
            };
            let metadata = natter_schema::Metadata::new(None, Uuid::now_v7());
            let id = accounts
                .register_hashed(account, hash.clone(), metadata)
                .await?
                .user_id;
            let (token, _) = self.keys.issue(id, Uuid::now_v7(), 0)?;
            users.push((id, token));
        }
        Ok(users)
    }
}

/// Where the app a benchmark talks to runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Server {
    /// In the benchmark's own process, beside its clients.
    #[default]
    InProcess,
    /// A `natter serve` process of its own (the `natter` binary beside this one): the
    /// clients and the server share no runtime, as with users' clients.
    Process,
}

/// Runs `body` against a fresh app, then stops it and removes its stream and database.
pub async fn with_bench_app<F, Fut>(settings: &Settings, body: F) -> anyhow::Result<()>
where
    F: FnOnce(BenchApp) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    with_bench_app_on(settings, Server::InProcess, body).await
}

/// As [`with_bench_app`], with the app running where `server` says.
pub async fn with_bench_app_on<F, Fut>(
    settings: &Settings,
    server: Server,
    body: F,
) -> anyhow::Result<()>
where
    F: FnOnce(BenchApp) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    with_seeded_bench_app_on(settings, server, |_| async { Ok(()) }, |app, ()| body(app)).await
}

/// As [`with_bench_app`], with `seed` appending to the app's log before the app starts,
/// so that its projections start from a backlog.
pub async fn with_seeded_bench_app<S, SFut, T, F, Fut>(
    settings: &Settings,
    seed: S,
    body: F,
) -> anyhow::Result<()>
where
    S: FnOnce(EventLog) -> SFut,
    SFut: Future<Output = anyhow::Result<T>>,
    F: FnOnce(BenchApp, T) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    with_seeded_bench_app_on(settings, Server::InProcess, seed, body).await
}

async fn with_seeded_bench_app_on<S, SFut, T, F, Fut>(
    settings: &Settings,
    server: Server,
    seed: S,
    body: F,
) -> anyhow::Result<()>
where
    S: FnOnce(EventLog) -> SFut,
    SFut: Future<Output = anyhow::Result<T>>,
    F: FnOnce(BenchApp, T) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let tag = Uuid::now_v7().simple().to_string();
    let database = format!("natter_bench_{tag}");
    let admin_options = PgConnectOptions::from_str(settings.database_url.expose())?;
    let mut admin = admin_options
        .connect()
        .await
        .context("connecting to Postgres")?;
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await?;
    let mut bench = settings.clone();
    bench.stream = format!("NATTER_BENCH_{tag}");
    bench.subject_prefix = format!("bench{tag}");
    bench.database_url = Secret::new(
        admin_options
            .clone()
            .database(&database)
            .to_url_lossy()
            .to_string(),
    );
    let result = async {
        let seeded = seed(natter::app::connect_log(&bench).await?).await?;
        run(&bench, server, |app| body(app, seeded)).await
    }
    .await;
    if let Ok(log) = natter::app::connect_log(&bench).await {
        let _ = log.jetstream().delete_stream(&bench.stream).await;
    }
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    result
}

async fn run<F, Fut>(settings: &Settings, server: Server, body: F) -> anyhow::Result<()>
where
    F: FnOnce(BenchApp) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let pool = natter::app::connect_postgres(settings).await?;
    natter_schema::MIGRATOR.run(&pool).await?;
    pool.close().await;
    let unlimited = u32::MAX / 2;
    // A key of this run's own, so that benchmarks can issue tokens without signing in.
    let seed: Vec<u8> = [Uuid::new_v4(), Uuid::new_v4()]
        .iter()
        .flat_map(|id| *id.as_bytes())
        .collect();
    let keys_spec = format!(
        "bench={}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, seed)
    );
    let media_root =
        std::env::temp_dir().join(format!("natter-bench-media-{}", Uuid::now_v7().simple()));
    let media = natter::settings::MediaSettings {
        media_dir: media_root.join("store"),
        media_spool: Some(media_root.join("spool")),
        ..Default::default()
    };
    let serve = ServeArgs {
        push: Default::default(),
        auto_rebuild: true,
        web_dir: None,
        media,
        listen: "127.0.0.1:0".parse()?,
        roles: vec![Role::Api, Role::Projector, Role::Gateway],
        auth: AuthSettings {
            jwt_keys: Some(Secret::new(keys_spec.clone())),
            login_per_address: unlimited,
            login_per_handle: unlimited,
            register_per_address: unlimited,
            register_per_handle: unlimited,
            ..AuthSettings::default()
        },
        gateway: natter::settings::GatewaySettings::default(),
    };
    let keys = natter_access::tokens::TokenKeys::parse(
        &keys_spec,
        &serve.auth.jwt_issuer,
        &serve.auth.jwt_audience,
        time::Duration::hours(12),
    )?;
    // The same app either way; only its address and log connection differ.
    let bench = |base: String, log: EventLog| BenchApp {
        base,
        log,
        hash_workers: natter::app::hash_workers(&serve.auth),
        database_url: settings.database_url.expose().to_owned(),
        keys,
        keys_spec: keys_spec.clone(),
        media_dir: media_root.join("store"),
    };
    let result = match server {
        Server::InProcess => {
            let app = natter::Application::build(settings, &serve).await?;
            let bench = bench(format!("http://{}", app.local_addr()?), app.log().clone());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(app.run(async move {
                let _ = stopped.await;
            }));
            let result = body(bench).await;
            let _ = stop.send(());
            server.await??;
            result
        }
        Server::Process => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let mut child = serve_process(settings, &keys_spec, &media_root, port)?;
            let base = format!("http://127.0.0.1:{port}");
            // Whatever fails once the process runs, it is stopped and the media removed.
            let result = async {
                await_ready(&base, &mut child).await?;
                let log = natter::app::connect_log(settings).await?;
                body(bench(base.clone(), log)).await
            }
            .await;
            stop_process(&mut child).await;
            result
        }
    };
    let _ = tokio::fs::remove_dir_all(&media_root).await;
    result
}

/// `natter serve` with every role, on `port`, against this run's stream and database,
/// with the same settings as the in-process app (no rate limits, this run's keys).
fn serve_process(
    settings: &Settings,
    keys_spec: &str,
    media_root: &std::path::Path,
    port: u16,
) -> anyhow::Result<tokio::process::Child> {
    let natter = std::env::current_exe()?.with_file_name("natter");
    let unlimited = (u32::MAX / 2).to_string();
    tokio::process::Command::new(&natter)
        .args([
            "serve",
            "--roles",
            "api,projector,gateway",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("NATTER_NATS_URL", &settings.nats_url)
        .env("NATTER_DATABASE_URL", settings.database_url.expose())
        .env("NATTER_STREAM", &settings.stream)
        .env("NATTER_SUBJECT_PREFIX", &settings.subject_prefix)
        .env(
            "NATTER_STREAM_REPLICAS",
            settings.stream_replicas.to_string(),
        )
        .env(
            "NATTER_DUPLICATE_WINDOW_SECS",
            settings.duplicate_window_secs.to_string(),
        )
        .env(
            "NATTER_DATABASE_MAX_CONNECTIONS",
            settings.database_max_connections.to_string(),
        )
        .env("NATTER_JWT_KEYS", keys_spec)
        .env("NATTER_MEDIA_DIR", media_root.join("store"))
        .env("NATTER_MEDIA_SPOOL", media_root.join("spool"))
        .env_remove("NATTER_WEB_DIR")
        .env("NATTER_LOGIN_PER_ADDRESS", &unlimited)
        .env("NATTER_LOGIN_PER_HANDLE", &unlimited)
        .env("NATTER_REGISTER_PER_ADDRESS", &unlimited)
        .env("NATTER_REGISTER_PER_HANDLE", &unlimited)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", natter.display()))
}

/// Waits for the server process to answer `/readyz`, for at most 30 seconds.
async fn await_ready(base: &str, child: &mut tokio::process::Child) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the server process ended at start ({status})");
        }
        let ready = http.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the server process was not ready within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Asks the server process to stop (SIGTERM, as a service manager would) and waits up
/// to 10 seconds before killing it.
async fn stop_process(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await;
    if ended.is_err() {
        let _ = child.kill().await;
    }
}
