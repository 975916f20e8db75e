//! The application `serve` runs, built the same way by `main` and by the tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use natter_commands::CommandMetrics;
use natter_commands::users::Users;
use natter_eventlog::EventLog;
use natter_projections::{ProjectionMetrics, Runner, UserDirectory};
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::settings::{Role, ServeArgs, Settings};

/// A built, not yet running, Natter process.
#[derive(Debug)]
pub struct Application {
    roles: Vec<Role>,
    listener: TcpListener,
    log: EventLog,
    pool: PgPool,
    registry: Registry,
    users: Users,
    projection_metrics: ProjectionMetrics,
}

impl Application {
    /// Connects to NATS (refusing a server older than 2.12) and Postgres, opens the log
    /// and binds the HTTP listener. Health, readiness and metrics are served in every
    /// role; the `api` role adds the REST endpoints.
    pub async fn build(settings: &Settings, serve: &ServeArgs) -> anyhow::Result<Self> {
        let log = connect_log(settings).await?;
        let pool = connect_postgres(settings).await?;
        let mut registry = Registry::default();
        let command_metrics = CommandMetrics::register(&mut registry);
        let projection_metrics = ProjectionMetrics::register(&mut registry);
        let listener = TcpListener::bind(serve.listen)
            .await
            .with_context(|| format!("listening on {}", serve.listen))?;
        Ok(Self {
            roles: serve.roles.clone(),
            listener,
            users: Users::new(log.clone(), command_metrics),
            log,
            pool,
            registry,
            projection_metrics,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn users(&self) -> &Users {
        &self.users
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs every role until `shutdown` completes, then lets each finish what it is
    /// doing. If one role fails, the others are stopped and the error returned.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let stop = Arc::new(stop);
        let trigger = Arc::clone(&stop);
        tokio::spawn(async move {
            shutdown.await;
            let _ = trigger.send(true);
        });
        let mut tasks = JoinSet::new();
        if self.roles.contains(&Role::Projector) {
            let runner = Runner::new(
                self.log.clone(),
                self.pool.clone(),
                UserDirectory,
                self.projection_metrics.clone(),
            );
            let projector_stopped = stopped.clone();
            tasks.spawn(async move {
                runner
                    .run(wait(projector_stopped))
                    .await
                    .context("projector")
            });
        }
        let state = natter_api::ApiState {
            pool: self.pool.clone(),
            log: self.log.clone(),
            registry: Arc::new(self.registry),
        };
        let router = natter_api::router(state);
        let http_stopped = stopped.clone();
        let listener = self.listener;
        tasks.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(wait(http_stopped))
                .await
                .context("HTTP server")
        });
        tracing::info!(roles = ?self.roles, "natter running");
        let mut result = Ok(());
        while let Some(joined) = tasks.join_next().await {
            let outcome = joined.context("task panicked").and_then(|r| r);
            if let Err(error) = outcome {
                tracing::error!(error = %format!("{error:#}"), "stopping");
                let _ = stop.send(true);
                if result.is_ok() {
                    result = Err(error);
                }
            }
        }
        result
    }
}

async fn wait(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stopped| *stopped).await;
}

/// Connects to NATS and opens the log, naming what was wrong when it fails.
pub async fn connect_log(settings: &Settings) -> anyhow::Result<EventLog> {
    let client = async_nats::ConnectOptions::new()
        .name("natter")
        .connection_timeout(Duration::from_secs(5))
        .connect(&settings.nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {}", settings.nats_url))?;
    EventLog::open(client, settings.log_config())
        .await
        .context("opening the event log")
}

pub async fn connect_postgres(settings: &Settings) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(settings.database_url.expose())
        .await
        .context("connecting to Postgres (NATTER_DATABASE_URL)")
}
