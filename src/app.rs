//! The application `serve` runs, built the same way by `main` and by the tests.

use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use natter_access::Auth;
use natter_access::tokens::{Revocations, TokenKeys};
use natter_api::ApiConfig;
use natter_api::admin::AdminToken;
use natter_api::limits::{Limit, RateLimiter};
use natter_api::media::{MediaLimits, MediaService};
use natter_commands::CommandMetrics;
use natter_commands::accounts::{AccountPolicy, Accounts};
use natter_commands::passwords::PasswordHasher;
use natter_eventlog::{ConnectionEvents, EventLog, Keeper, NatsUrl};
use natter_media::{BlobStore, S3Config};
use natter_projections::build::bring_up_to_date;
use natter_projections::{Projection, ProjectionMetrics, Runner, Sessions, UserDirectory};
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::settings::{
    AuthSettings, BlobBackend, MediaSettings, PushSettings, Role, ServeArgs, Settings,
};

/// A built, not yet running, Natter process.
#[derive(Debug)]
pub struct Application {
    roles: Vec<Role>,
    auto_rebuild: bool,
    listener: TcpListener,
    log: EventLog,
    pool: PgPool,
    projection_pool: PgPool,
    registry: Registry,
    accounts: Accounts,
    chats: natter_commands::chats::Chats,
    messages: natter_commands::messages::Messages,
    auth: Auth,
    api_config: ApiConfig,
    projection_metrics: ProjectionMetrics,
    revocation_feed: tokio::task::JoinHandle<()>,
    keeper: tokio::task::JoinHandle<()>,
    gateway: Option<(natter_gateway::Gateway, tokio::task::JoinHandle<()>)>,
    presence: natter_access::presence::Presence,
    media: std::sync::Arc<MediaService>,
    web: Option<Arc<natter_api::web::WebApp>>,
    push: Option<(Arc<natter_push::Vapid>, natter_push::NotifierConfig)>,
}

impl Application {
    /// Connects to NATS (refusing a server older than 2.12) and Postgres, opens the log
    /// and binds the HTTP listener. Health, readiness and metrics are served in every
    /// role; the `api` role adds the REST endpoints.
    pub async fn build(settings: &Settings, serve: &ServeArgs) -> anyhow::Result<Self> {
        let (log, keeper) = connect_kept_log(settings).await?;
        let settings_nats_url = settings.nats_url.clone();
        let pool = connect_postgres(settings).await?;
        let projection_pool = connect_projection_postgres(settings).await?;
        let mut registry = Registry::default();
        let command_metrics = CommandMetrics::register(&mut registry);
        let projection_metrics = ProjectionMetrics::register(&mut registry);
        let listener = TcpListener::bind(serve.listen)
            .await
            .with_context(|| format!("listening on {}", serve.listen))?;
        let settings = &serve.auth;
        let hasher = PasswordHasher::new(hash_workers(settings), settings.hash_queue);
        let accounts = Accounts::new(
            log.clone(),
            command_metrics.clone(),
            hasher,
            account_policy(settings),
        );
        let chats = natter_commands::chats::Chats::new(log.clone(), command_metrics.clone());
        let messages =
            natter_commands::messages::Messages::new(log.clone(), command_metrics.clone());
        let keys = token_keys(settings)?;
        let revocations = Revocations::new(keys.ttl());
        let revocation_feed = revocations
            .clone()
            .follow(log.clone())
            .await
            .context("reading recent session events")?;
        let auth = Auth { keys, revocations };
        let presence = natter_access::presence::Presence::open(&log)
            .await
            .context("opening the presence bucket")?;
        // From here on, every reconnect makes the stream and the bucket again before the
        // process counts as ready.
        let keeper = keeper
            .ensure("presence bucket", presence.ensure_step())
            .spawn();
        let media = std::sync::Arc::new(media_service(&serve.media, &log, &command_metrics).await?);
        let web = match &serve.web_dir {
            Some(dir) if serve.roles.contains(&Role::Api) => natter_api::web::WebApp::open(dir)
                .await
                .with_context(|| format!("reading the web app in {}", dir.display()))?
                .map(Arc::new),
            _ => None,
        };
        let gateway = if serve.roles.contains(&Role::Gateway) {
            let services = natter_gateway::Services {
                log: log.clone(),
                pool: pool.clone(),
                auth: auth.clone(),
                messages: messages.clone(),
                accounts: accounts.clone(),
                presence: presence.clone(),
                metrics: natter_gateway::metrics::GatewayMetrics::register(&mut registry),
            };
            let started = natter_gateway::Gateway::start(
                &settings_nats_url,
                services,
                serve.gateway.config(),
            )
            .await
            .context("starting the gateway")?;
            Some(started)
        } else {
            None
        };
        let push = push_keys(&serve.push)?;
        let mut api_config = api_config(settings)?;
        api_config.push = natter_api::PushConfig {
            public_key: push
                .as_ref()
                .map(|(vapid, _)| vapid.public_key().to_owned()),
            allow_private: serve.push.push_allow_private,
        };
        Ok(Self {
            gateway,
            presence,
            push,
            media,
            web,
            roles: serve.roles.clone(),
            auto_rebuild: serve.auto_rebuild,
            listener,
            accounts,
            chats,
            messages,
            auth,
            api_config,
            log,
            pool,
            projection_pool,
            registry,
            projection_metrics,
            revocation_feed,
            keeper,
        })
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn log(&self) -> &EventLog {
        &self.log
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
            self.spawn_projection(&mut tasks, UserDirectory, &stopped);
            self.spawn_projection(&mut tasks, Sessions, &stopped);
            self.spawn_projection(&mut tasks, natter_projections::Chats, &stopped);
            self.spawn_projection(&mut tasks, natter_projections::Media, &stopped);
            let (media, pool, log, stopped) = (
                std::sync::Arc::clone(&self.media),
                self.pool.clone(),
                self.log.clone(),
                stopped.clone(),
            );
            if let Some((vapid, config)) = &self.push {
                let notifier = natter_push::Notifier {
                    log: self.log.clone(),
                    pool: self.pool.clone(),
                    presence: self.presence.clone(),
                    accounts: self.accounts.clone(),
                    vapid: Arc::clone(vapid),
                    config: config.clone(),
                };
                let stopped = stopped.clone();
                tasks.spawn(async move { Ok(notifier.run(stopped).await?) });
            }
            tasks.spawn(async move {
                natter_api::collector::collect_unreferenced_forever(
                    &media,
                    &pool,
                    &log,
                    wait(stopped),
                )
                .await;
                Ok(())
            });
        }
        let rest = self.roles.contains(&Role::Api);
        let roles = self.roles.clone();
        let revocation_feed = self.revocation_feed;
        let keeper = self.keeper;
        let state = natter_api::ApiState::new(natter_api::Services {
            pool: self.pool.clone(),
            sent_lookup: natter_projections::reads::messages::SentLookup::spawn(self.pool.clone()),
            log: self.log.clone(),
            registry: Arc::new(self.registry),
            accounts: self.accounts,
            chats: self.chats,
            messages: self.messages,
            auth: self.auth,
            limiter: RateLimiter::default(),
            config: Arc::new(self.api_config),
            presence: self.presence,
            media: self.media,
            web: self.web,
        });
        let mut router = natter_api::router(state, rest);
        let gateway_task = self.gateway.map(|(gateway, task)| {
            router = router.clone().merge(gateway.router());
            task
        });
        let http_stopped = stopped.clone();
        let listener = self.listener;
        tasks.spawn(async move {
            // Without TCP_NODELAY, a WebSocket frame written right after another waits
            // for the client's delayed acknowledgement (up to 40 ms).
            // Closes linger, so that a client still sending a body it was refused reads
            // the answer instead of a reset.
            let listener = natter_api::connection::LingeringListener(listener);
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(wait(http_stopped))
            .await
            .context("HTTP server")
        });
        tracing::info!(roles = ?roles, "natter running");
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
        revocation_feed.abort();
        keeper.abort();
        // Dropping the hub closes every connection's inbox: clients are told the
        // server is going away, and resume elsewhere.
        if let Some(task) = gateway_task {
            task.abort();
        }
        result
    }

    fn spawn_projection<P: Projection>(
        &self,
        tasks: &mut JoinSet<anyhow::Result<()>>,
        projection: P,
        stopped: &watch::Receiver<bool>,
    ) {
        let runner = Runner::new(
            self.log.clone(),
            self.projection_pool.clone(),
            projection,
            self.projection_metrics.clone(),
        );
        let (log, pool, auto_rebuild) = (
            self.log.clone(),
            self.projection_pool.clone(),
            self.auto_rebuild,
        );
        let stopped = stopped.clone();
        tasks.spawn(async move {
            // A version newer than the live tables' is built beside them first; an
            // interrupted build resumes at the next start.
            let projection = Arc::clone(runner.projection());
            tokio::select! {
                built = bring_up_to_date(&log, &pool, &*projection, auto_rebuild) => {
                    built.with_context(|| format!("rebuilding {}", P::NAME))?;
                }
                () = wait(stopped.clone()) => return Ok(()),
            }
            runner.run(wait(stopped)).await.context(P::NAME)
        });
    }
}

/// The blob store and the rest of what media needs, as the settings say.
pub async fn media_service(
    settings: &MediaSettings,
    log: &EventLog,
    metrics: &CommandMetrics,
) -> anyhow::Result<MediaService> {
    let store = match settings.blob_store {
        BlobBackend::Fs => BlobStore::filesystem(&settings.media_dir)
            .await
            .with_context(|| {
                format!(
                    "opening the media directory {}",
                    settings.media_dir.display()
                )
            })?,
        BlobBackend::S3 => {
            let key = |secret: &Option<crate::settings::Secret>, name: &str| {
                secret
                    .as_ref()
                    .map(|s| s.expose().to_owned())
                    .with_context(|| format!("{name} is needed with NATTER_BLOB_STORE=s3"))
            };
            BlobStore::s3(S3Config {
                endpoint: settings.s3_endpoint.clone(),
                region: settings.s3_region.clone(),
                bucket: settings.s3_bucket.clone(),
                access_key: key(&settings.s3_access_key, "NATTER_S3_ACCESS_KEY")?,
                secret_key: key(&settings.s3_secret_key, "NATTER_S3_SECRET_KEY")?,
            })
            .await
            .with_context(|| format!("opening the S3 bucket {}", settings.s3_bucket))?
        }
    };
    Ok(MediaService {
        store,
        records: natter_commands::media::MediaRecords::new(log.clone(), metrics.clone()),
        spool: settings
            .media_spool
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("natter-uploads")),
        limits: MediaLimits::default(),
        keep_unreferenced: Duration::from_secs(settings.media_keep_unreferenced_secs),
        sweep_every: Duration::from_secs(settings.media_sweep_secs),
        receiving: Default::default(),
    })
}

/// The password-hashing threads `serve` runs: as set, or all cores but one.
pub fn hash_workers(settings: &AuthSettings) -> usize {
    settings.hash_workers.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(1, |cores| cores.get().saturating_sub(1))
            .max(1)
    })
}

fn account_policy(settings: &AuthSettings) -> AccountPolicy {
    AccountPolicy {
        session_lifetime: time::Duration::days(i64::from(settings.session_days)),
        refresh_grace: time::Duration::seconds(i64::from(settings.refresh_grace_secs)),
        handle_cool_down: time::Duration::seconds(i64::from(settings.handle_cool_down_secs)),
    }
}

fn token_keys(settings: &AuthSettings) -> anyhow::Result<TokenKeys> {
    let ttl = time::Duration::seconds(i64::from(settings.access_token_secs));
    match &settings.jwt_keys {
        Some(spec) => TokenKeys::parse(
            spec.expose(),
            &settings.jwt_issuer,
            &settings.jwt_audience,
            ttl,
        )
        .context("NATTER_JWT_KEYS"),
        None => {
            tracing::warn!(
                "NATTER_JWT_KEYS is not set: signing with a random key; tokens will not survive a restart \
                 nor verify on other instances"
            );
            Ok(TokenKeys::ephemeral(
                &settings.jwt_issuer,
                &settings.jwt_audience,
                ttl,
            ))
        }
    }
}

/// The VAPID keys and the notifier's settings, if pushes are configured.
fn push_keys(
    settings: &PushSettings,
) -> anyhow::Result<Option<(Arc<natter_push::Vapid>, natter_push::NotifierConfig)>> {
    let Some(key) = &settings.vapid_private_key else {
        return Ok(None);
    };
    let vapid = natter_push::Vapid::new(key.expose(), &settings.vapid_subject)
        .map_err(|e| anyhow::anyhow!("NATTER_VAPID_PRIVATE_KEY / NATTER_VAPID_SUBJECT: {e}"))?;
    let config = natter_push::NotifierConfig {
        batch: Duration::from_millis(settings.push_batch_ms),
        allow_private: settings.push_allow_private,
        ..natter_push::NotifierConfig::default()
    };
    Ok(Some((Arc::new(vapid), config)))
}

fn api_config(settings: &AuthSettings) -> anyhow::Result<ApiConfig> {
    let admin_token = match &settings.admin_token {
        Some(token) => Some(
            AdminToken::new(token.expose())
                .map_err(|e| anyhow::anyhow!("NATTER_ADMIN_TOKEN: {e}"))?,
        ),
        None => None,
    };
    Ok(ApiConfig {
        trusted_proxies: settings.trusted_proxies.clone(),
        admin_token,
        login_per_address: Limit::per_minute(settings.login_per_address),
        login_per_handle: Limit::per_minute(settings.login_per_handle),
        register_per_address: Limit::per_minute(settings.register_per_address),
        register_per_handle: Limit::per_minute(settings.register_per_handle),
        markers_per_user: Limit::per_minute(settings.markers_per_user),
        ..ApiConfig::default()
    })
}

async fn wait(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stopped| *stopped).await;
}

/// Connects to NATS and opens the log, naming what was wrong when it fails.
pub async fn connect_log(settings: &Settings) -> anyhow::Result<EventLog> {
    Ok(connect_kept_log(settings).await?.0)
}

/// As [`connect_log`], with the log's keeper, which makes the stream (and the steps
/// added to it) again after every reconnect once spawned. `NATTER_NATS_URL` may list
/// several servers; the client connects to any one that answers.
pub async fn connect_kept_log(settings: &Settings) -> anyhow::Result<(EventLog, Keeper)> {
    let url = NatsUrl::parse(&settings.nats_url);
    let (options, events) = ConnectionEvents::gather(
        url.options()
            .name("natter")
            .connection_timeout(Duration::from_secs(5)),
    );
    let client = options
        .connect(url.servers())
        .await
        .with_context(|| format!("connecting to NATS at {url}"))?;
    let log = EventLog::open(client, settings.log_config())
        .await
        .context("opening the event log")?;
    let keeper = log.keeper(events);
    Ok((log, keeper))
}

/// Connects to NATS and opens the log for reading only (the analysts' commands).
pub async fn open_log_read_only(settings: &Settings) -> anyhow::Result<EventLog> {
    let url = NatsUrl::parse(&settings.nats_url);
    let client = url
        .options()
        .name("natter-events")
        .connection_timeout(Duration::from_secs(5))
        .connect(url.servers())
        .await
        .with_context(|| format!("connecting to NATS at {url}"))?;
    EventLog::attach(client, settings.log_config()).context("opening the event log")
}

/// The pool of the projection workers: their own connections, without waiting for the
/// WAL flush (see `natter_projections::projection_connect_options`).
pub async fn connect_projection_postgres(settings: &Settings) -> anyhow::Result<PgPool> {
    let options = sqlx::postgres::PgConnectOptions::from_str(settings.database_url.expose())
        .context("NATTER_DATABASE_URL")?;
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(natter_projections::projection_connect_options(
            short_queries(options),
        ))
        .await
        .context("connecting to Postgres (NATTER_DATABASE_URL)")
}

pub async fn connect_postgres(settings: &Settings) -> anyhow::Result<PgPool> {
    let options = sqlx::postgres::PgConnectOptions::from_str(settings.database_url.expose())
        .context("NATTER_DATABASE_URL is not a Postgres URL")?;
    PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(short_queries(options))
        .await
        .context("connecting to Postgres (NATTER_DATABASE_URL)")
}

/// Natter's queries are short and indexed: compiling them (JIT) costs more than it
/// saves; Postgres turns it on for any plan its estimates call costly.
pub fn short_queries(
    options: sqlx::postgres::PgConnectOptions,
) -> sqlx::postgres::PgConnectOptions {
    options.options([("jit", "off")])
}
