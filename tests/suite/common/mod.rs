//! Test set-up against the real servers: each test gets a stream, subject prefix and
//! database of its own, removed when it ends.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod http;
pub mod nats;
pub mod ws;

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use natter::settings::{Role, ServeArgs, Settings};
use natter_eventlog::{EventLog, LogConfig};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use uuid::Uuid;

pub fn nats_url() -> String {
    std::env::var("NATTER_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4333".into())
}

/// The replicas of every test's stream: 1, or 3 where `NATTER_TEST_NATS_URL` is a
/// cluster (`scripts/test` runs the log and delivery tests on one too).
pub fn test_replicas() -> usize {
    std::env::var("NATTER_TEST_STREAM_REPLICAS")
        .ok()
        .and_then(|replicas| replicas.parse().ok())
        .unwrap_or(1)
}

pub fn admin_database_url() -> String {
    std::env::var("NATTER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Connects to `url` as natter does: one server or a list, credentials taken out.
pub async fn connect(url: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    let url = natter_eventlog::NatsUrl::parse(url);
    url.options().connect(url.servers()).await
}

/// A stream, prefix and database for one test.
pub struct TestEnv {
    pub nats_url: String,
    pub log: EventLog,
    pub pool: PgPool,
    pub stream: String,
    pub prefix: String,
    pub database: String,
    pub database_url: String,
    /// The stream's replicas: 3 on a cluster.
    pub replicas: usize,
}

impl TestEnv {
    /// A fresh log and a fresh, migrated database.
    pub async fn new() -> Self {
        Self::with_migrations(true).await
    }

    pub async fn with_migrations(migrate: bool) -> Self {
        Self::on(nats_url(), migrate, test_replicas()).await
    }

    /// A fresh log on the NATS server at `nats_url` (such as a test's own), and a
    /// fresh, migrated database.
    pub async fn on_nats(nats_url: &str) -> Self {
        Self::on(nats_url.to_owned(), true, 1).await
    }

    /// A fresh log of three replicas on a cluster (`nats_url` lists its servers).
    pub async fn on_cluster(nats_url: &str) -> Self {
        Self::on(nats_url.to_owned(), true, 3).await
    }

    async fn on(nats_url: String, migrate: bool, replicas: usize) -> Self {
        let tag = Uuid::now_v7().simple().to_string();
        let stream = format!("NATTER_TEST_{tag}");
        let prefix = format!("t{tag}");
        let log = open_replicated_log_on(&nats_url, &stream, &prefix, replicas).await;
        let database = format!("natter_test_{tag}");
        let admin = PgConnectOptions::from_str(&admin_database_url()).unwrap();
        let mut connection = admin
            .connect()
            .await
            .expect("Postgres is not reachable at NATTER_TEST_DATABASE_URL; run scripts/test");
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&mut connection)
            .await
            .unwrap();
        let options = admin.clone().database(&database);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await
            .unwrap();
        if migrate {
            natter_schema::MIGRATOR.run(&pool).await.unwrap();
        }
        let database_url = options.to_url_lossy().to_string();
        Self {
            nats_url,
            log,
            pool,
            stream,
            prefix,
            database,
            database_url,
            replicas,
        }
    }

    /// The settings a `natter` process uses to reach this test's log and database.
    pub fn settings(&self) -> Settings {
        Settings {
            nats_url: self.nats_url.clone(),
            database_url: natter::settings::Secret::new(self.database_url.clone()),
            stream: self.stream.clone(),
            subject_prefix: self.prefix.clone(),
            stream_replicas: u8::try_from(self.replicas).unwrap(),
            duplicate_window_secs: 120,
            nats_ack_timeout_ms: 5_000,
            database_max_connections: 8,
            log_format: natter::settings::LogFormat::Human,
        }
    }

    /// Another client on the same log, as a second process would have.
    pub async fn second_log(&self) -> EventLog {
        open_log_on(&self.nats_url, &self.stream, &self.prefix).await
    }

    /// Builds and runs the whole application on port 0.
    pub async fn spawn_app(&self, roles: &[Role]) -> TestApp {
        self.spawn_app_with(roles, natter::settings::AuthSettings::default())
            .await
    }

    pub async fn spawn_app_with(
        &self,
        roles: &[Role],
        auth: natter::settings::AuthSettings,
    ) -> TestApp {
        self.spawn_app_full(roles, auth, natter::settings::GatewaySettings::default())
            .await
    }

    pub async fn spawn_app_full(
        &self,
        roles: &[Role],
        auth: natter::settings::AuthSettings,
        gateway: natter::settings::GatewaySettings,
    ) -> TestApp {
        self.spawn_app_serving(ServeArgs {
            push: Default::default(),
            auto_rebuild: true,
            web_dir: None,
            media: Default::default(),
            listen: "127.0.0.1:0".parse().unwrap(),
            roles: roles.to_vec(),
            auth,
            gateway,
        })
        .await
    }

    /// Builds and runs the application as `serve` says.
    pub async fn spawn_app_serving(&self, serve: ServeArgs) -> TestApp {
        self.spawn_app_as(&self.settings(), serve).await
    }

    /// Builds and runs the application with `settings` (this test's, changed).
    pub async fn spawn_app_as(&self, settings: &Settings, serve: ServeArgs) -> TestApp {
        let app = natter::Application::build(settings, &serve).await.unwrap();
        let address = app.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        TestApp {
            address,
            stop: Some(stop),
            task,
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let stream = self.stream.clone();
        let database = self.database.clone();
        let nats_url = self.nats_url.clone();
        // Async clean-up from a synchronous drop: a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(client) = connect(&nats_url).await {
                    let _ = async_nats::jetstream::new(client)
                        .delete_stream(&stream)
                        .await;
                }
                if let Ok(mut admin) = PgConnectOptions::from_str(&admin_database_url())
                    .unwrap()
                    .connect()
                    .await
                {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                            .execute(&mut admin)
                            .await;
                }
            });
        })
        .join();
    }
}

pub async fn open_log(stream: &str, prefix: &str) -> EventLog {
    open_log_on(&nats_url(), stream, prefix).await
}

pub async fn open_log_on(nats_url: &str, stream: &str, prefix: &str) -> EventLog {
    open_replicated_log_on(nats_url, stream, prefix, 1).await
}

/// Opens the log with `replicas`; a cluster that is still forming is waited for.
pub async fn open_replicated_log_on(
    nats_url: &str,
    stream: &str,
    prefix: &str,
    replicas: usize,
) -> EventLog {
    let client = connect(nats_url)
        .await
        .expect("NATS is not reachable at NATTER_TEST_NATS_URL; run scripts/test");
    let config = LogConfig {
        replicas,
        ..LogConfig::new(stream, prefix)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match EventLog::open(client.clone(), config.clone()).await {
            Ok(log) => return log,
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%error, "the log cannot be opened yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("opening the log: {error}"),
        }
    }
}

pub struct TestApp {
    pub address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Stops the application gracefully and returns how its run ended.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.task).await??
    }
}

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `check` until it holds, failing the test after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The account commands on `log`, as a process would build them.
/// An event of `kind` for aggregate `id`, of any type (one this build may not know),
/// to append unconditionally.
pub fn raw_event(
    log: &EventLog,
    kind: &str,
    id: &str,
    event_type: &str,
    payload: serde_json::Value,
) -> natter_eventlog::NewEvent {
    natter_eventlog::NewEvent {
        subject: log.subject(kind, id),
        expected_sequence: None,
        expected_subject: None,
        dedupe_id: None,
        envelope: natter_schema::Envelope {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            aggregate_type: kind.into(),
            aggregate_id: id.into(),
            actor: None,
            occurred_at: time::OffsetDateTime::now_utc(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            payload,
        },
    }
}

pub fn accounts(log: &EventLog) -> natter_commands::accounts::Accounts {
    accounts_with(log, natter_commands::CommandMetrics::default())
}

pub fn accounts_with(
    log: &EventLog,
    metrics: natter_commands::CommandMetrics,
) -> natter_commands::accounts::Accounts {
    natter_commands::accounts::Accounts::new(
        log.clone(),
        metrics,
        natter_commands::passwords::PasswordHasher::new(1, 64),
        natter_commands::accounts::AccountPolicy::default(),
    )
}

/// A new account named after its handle.
pub fn new_account(handle: &str, name: &str) -> natter_commands::accounts::NewAccount {
    natter_commands::accounts::NewAccount {
        handle: natter_domain::user::Handle::parse(handle).unwrap(),
        display_name: natter_domain::user::DisplayName::parse(name).unwrap(),
        about: natter_domain::user::About::default(),
        phone: None,
        password: natter_domain::user::Password::parse("correct horse battery").unwrap(),
    }
}

/// Registers without hashing (for tests about something else than passwords).
pub async fn register(accounts: &natter_commands::accounts::Accounts, handle: &str) -> Uuid {
    register_named(accounts, handle, handle).await.user_id
}

pub async fn register_named(
    accounts: &natter_commands::accounts::Accounts,
    handle: &str,
    name: &str,
) -> natter_commands::accounts::Registered {
    accounts
        .register_hashed(
            new_account(handle, name),
            natter_domain::user::PasswordHash::new(
                "$argon2id$v=19$m=19456,t=2,p=1$dGVzdHNhbHQ$dGVzdGhhc2g",
            ),
            natter_schema::Metadata::new(None, Uuid::now_v7()),
        )
        .await
        .unwrap()
}
