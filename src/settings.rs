//! Every setting, from flags or `NATTER_*` environment variables, with defaults that work
//! on a developer machine set up by `scripts/up`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};
use natter_eventlog::LogConfig;

/// Settings every subcommand shares.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// NATS server (2.12 or newer, with JetStream), or a comma-separated list of a
    /// cluster's servers (`nats://a:4222,nats://b:4222`): the client connects to any one
    /// that answers, and reconnects to any. Credentials in a URL
    /// (`nats://user:password@host:4222`, `nats://token@host:4222`) are presented, never
    /// logged.
    #[arg(
        long,
        env = "NATTER_NATS_URL",
        default_value = "nats://127.0.0.1:4333",
        hide_env_values = true,
        global = true
    )]
    pub nats_url: String,
    /// Postgres database of the read models.
    #[arg(
        long,
        env = "NATTER_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/natter",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Secret,
    /// JetStream stream holding the event log.
    #[arg(long, env = "NATTER_STREAM", default_value = "NATTER", global = true, value_parser = parse_name)]
    pub stream: String,
    /// First token of every subject.
    #[arg(long, env = "NATTER_SUBJECT_PREFIX", default_value = "natter", global = true, value_parser = parse_name)]
    pub subject_prefix: String,
    /// Replicas of the stream: 1 on one server, 3 in a cluster.
    #[arg(long, env = "NATTER_STREAM_REPLICAS", default_value_t = 1, global = true, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub stream_replicas: u8,
    /// How long (seconds) the stream remembers event ids to drop duplicates.
    #[arg(long, env = "NATTER_DUPLICATE_WINDOW_SECS", default_value_t = 120, global = true, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duplicate_window_secs: u64,
    /// How long (milliseconds) an append waits for JetStream's acknowledgement before
    /// it counts as unconfirmed: retried with the same ids, then looked up in the log.
    #[arg(long, env = "NATTER_NATS_ACK_TIMEOUT_MS", default_value_t = 5_000, global = true, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub nats_ack_timeout_ms: u64,
    /// Most connections to Postgres from this process.
    #[arg(long, env = "NATTER_DATABASE_MAX_CONNECTIONS", default_value_t = 16, global = true, value_parser = clap::value_parser!(u32).range(2..=1_000))]
    pub database_max_connections: u32,
    #[arg(long, env = "NATTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
}

impl Settings {
    pub fn log_config(&self) -> LogConfig {
        LogConfig {
            stream: self.stream.clone(),
            prefix: self.subject_prefix.clone(),
            replicas: usize::from(self.stream_replicas),
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            ack_timeout: Duration::from_millis(self.nats_ack_timeout_ms),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the HTTP API listens on.
    #[arg(long, env = "NATTER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Which roles this process runs.
    #[arg(
        long,
        env = "NATTER_ROLES",
        value_enum,
        value_delimiter = ',',
        default_value = "api,gateway,projector"
    )]
    pub roles: Vec<Role>,
    /// At start, build a projection whose version is newer than the live tables' beside
    /// them and switch it in before serving it (`false`: build it in place, with its
    /// readers seeing it fill up).
    #[arg(long, env = "NATTER_AUTO_REBUILD", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_rebuild: bool,
    /// The web app's static export (Next.js's `out/`), served at `/` behind the API's
    /// routes by a process with the `api` role; read once at start. A missing directory
    /// serves no app.
    #[arg(long, env = "NATTER_WEB_DIR", default_value = "web/out")]
    pub web_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub gateway: GatewaySettings,
    #[command(flatten)]
    pub media: MediaSettings,
    #[command(flatten)]
    pub push: PushSettings,
}

/// Web Push: pushes of new messages to members who are away, sent by the projector role.
#[derive(Debug, Clone, Args, Default)]
pub struct PushSettings {
    /// The VAPID private key: 32 bytes in base64url (`natter push keys` makes one).
    /// Unset: no pushes are sent, and subscribing answers 404 `push_disabled`.
    #[arg(long, env = "NATTER_VAPID_PRIVATE_KEY", hide_env_values = true)]
    pub vapid_private_key: Option<Secret>,
    /// Who runs this server, for push services: a `mailto:` or `https:` URL.
    #[arg(
        long,
        env = "NATTER_VAPID_SUBJECT",
        default_value = "mailto:admin@localhost"
    )]
    pub vapid_subject: String,
    /// Take push endpoints on private and loopback addresses, and plain http: for
    /// development and tests only (otherwise a client could make the server post into
    /// its own network).
    #[arg(long, env = "NATTER_PUSH_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub push_allow_private: bool,
    /// How long pushes for one device and chat are gathered into one, in milliseconds.
    #[arg(long, env = "NATTER_PUSH_BATCH_MS", default_value_t = 1_000)]
    pub push_batch_ms: u64,
}

/// Where media bytes are kept.
#[derive(Debug, Clone, Args)]
pub struct MediaSettings {
    /// `fs` (a directory, NATTER_MEDIA_DIR) or `s3` (any S3-compatible service).
    #[arg(long, env = "NATTER_BLOB_STORE", value_enum, default_value_t = BlobBackend::Fs)]
    pub blob_store: BlobBackend,
    /// The directory of the `fs` store.
    #[arg(long, env = "NATTER_MEDIA_DIR", default_value = ".natter/media")]
    pub media_dir: std::path::PathBuf,
    /// Where uploads are spooled while they arrive (default: a folder of the system's
    /// temporary directory).
    #[arg(long, env = "NATTER_MEDIA_SPOOL")]
    pub media_spool: Option<std::path::PathBuf>,
    /// The S3 endpoint, such as http://127.0.0.1:9000 (unset: AWS).
    #[arg(long, env = "NATTER_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "NATTER_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    #[arg(long, env = "NATTER_S3_BUCKET", default_value = "natter-media")]
    pub s3_bucket: String,
    #[arg(long, env = "NATTER_S3_ACCESS_KEY", hide_env_values = true)]
    pub s3_access_key: Option<Secret>,
    #[arg(long, env = "NATTER_S3_SECRET_KEY", hide_env_values = true)]
    pub s3_secret_key: Option<Secret>,
    /// Seconds an upload may stay unreferenced (by a message or a group avatar) before
    /// it is collected.
    #[arg(
        long,
        env = "NATTER_MEDIA_KEEP_UNREFERENCED_SECS",
        default_value_t = 86_400
    )]
    pub media_keep_unreferenced_secs: u64,
    /// Seconds between the collector's sweeps.
    #[arg(long, env = "NATTER_MEDIA_SWEEP_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub media_sweep_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BlobBackend {
    Fs,
    S3,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            blob_store: BlobBackend::Fs,
            media_dir: ".natter/media".into(),
            media_spool: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_bucket: "natter-media".into(),
            s3_access_key: None,
            s3_secret_key: None,
            media_keep_unreferenced_secs: 86_400,
            media_sweep_secs: 600,
        }
    }
}

/// The realtime gateway.
#[derive(Debug, Clone, Args)]
pub struct GatewaySettings {
    /// Origins browsers may open WebSockets from, comma-separated (`*` for any).
    /// Clients that send no Origin (apps, servers) are always let in.
    #[arg(long, env = "NATTER_GATEWAY_ORIGINS", value_delimiter = ',')]
    pub gateway_origins: Vec<String>,
    /// Live events held per connection before it counts as too slow and is closed.
    #[arg(long, env = "NATTER_GATEWAY_INBOX", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(8..=1_000_000))]
    pub gateway_inbox: u32,
    /// The most events one resume replays; a cursor further back is refused.
    #[arg(long, env = "NATTER_GATEWAY_MAX_REPLAY", default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub gateway_max_replay: u32,
    /// Milliseconds a user's last connection must stay closed before they count as
    /// offline and their last seen is recorded.
    #[arg(long, env = "NATTER_GATEWAY_PRESENCE_DEBOUNCE_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub gateway_presence_debounce_ms: u64,
    /// Live events one NATS subscription of the gateway holds before it loses some (and
    /// the chats concerned resync their watchers).
    #[arg(long, env = "NATTER_GATEWAY_SUBSCRIPTION_CAPACITY", default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(1..=16_777_216))]
    pub gateway_subscription_capacity: u32,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            gateway_origins: Vec::new(),
            gateway_inbox: 1024,
            gateway_max_replay: 20_000,
            gateway_presence_debounce_ms: 5_000,
            gateway_subscription_capacity: 65_536,
        }
    }
}

impl GatewaySettings {
    pub fn config(&self) -> natter_gateway::GatewayConfig {
        natter_gateway::GatewayConfig {
            allowed_origins: self.gateway_origins.clone(),
            inbox_capacity: self.gateway_inbox as usize,
            max_replay: self.gateway_max_replay as usize,
            presence_debounce: std::time::Duration::from_millis(self.gateway_presence_debounce_ms),
            subscription_capacity: self.gateway_subscription_capacity as usize,
            ..natter_gateway::GatewayConfig::default()
        }
    }
}

/// Accounts, tokens and their limits.
#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// Access-token signing keys: `kid=<base64 32-byte Ed25519 seed>`, comma-separated;
    /// the first signs, all verify (list the old key after the new one to rotate).
    /// Unset: a random key per process, fit for development only.
    #[arg(long, env = "NATTER_JWT_KEYS", hide_env_values = true)]
    pub jwt_keys: Option<Secret>,
    /// The `iss` of access tokens.
    #[arg(long, env = "NATTER_JWT_ISSUER", default_value = "natter")]
    pub jwt_issuer: String,
    /// The `aud` of access tokens.
    #[arg(long, env = "NATTER_JWT_AUDIENCE", default_value = "natter-api")]
    pub jwt_audience: String,
    /// Access-token lifetime in seconds.
    #[arg(long, env = "NATTER_ACCESS_TOKEN_SECS", default_value_t = 900, value_parser = clap::value_parser!(u32).range(10..=86_400))]
    pub access_token_secs: u32,
    /// Absolute session lifetime in days.
    #[arg(long, env = "NATTER_SESSION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub session_days: u32,
    /// Seconds within which a just-spent refresh token is a race, not a theft.
    #[arg(long, env = "NATTER_REFRESH_GRACE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=120))]
    pub refresh_grace_secs: u32,
    /// Seconds before a deleted account's handle may be taken again.
    #[arg(long, env = "NATTER_HANDLE_COOL_DOWN_SECS", default_value_t = 30 * 86_400)]
    pub handle_cool_down_secs: u32,
    /// Password hashing threads (default: all cores but one).
    #[arg(long, env = "NATTER_HASH_WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub hash_workers: Option<u16>,
    /// Password hashing jobs that may wait; more are refused with 503.
    #[arg(long, env = "NATTER_HASH_QUEUE", default_value_t = 64)]
    pub hash_queue: usize,
    /// Login attempts per client address per minute.
    #[arg(long, env = "NATTER_LOGIN_PER_ADDRESS", default_value_t = 60)]
    pub login_per_address: u32,
    /// Login attempts per handle per minute.
    #[arg(long, env = "NATTER_LOGIN_PER_HANDLE", default_value_t = 10)]
    pub login_per_handle: u32,
    /// Registrations per client address per minute.
    #[arg(long, env = "NATTER_REGISTER_PER_ADDRESS", default_value_t = 10)]
    pub register_per_address: u32,
    /// Registration attempts per handle per minute.
    #[arg(long, env = "NATTER_REGISTER_PER_HANDLE", default_value_t = 5)]
    pub register_per_handle: u32,
    /// Read and delivered markers per user per minute over REST, in bursts of up to as
    /// many (each goes to every member of its chat).
    #[arg(long, env = "NATTER_MARKERS_PER_USER", default_value_t = 120)]
    pub markers_per_user: u32,
    /// Proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For names
    /// the client: the rightmost hop that is not one of them. Unset: the peer address.
    #[arg(long, env = "NATTER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<natter_api::extract::TrustedProxy>,
    /// The bearer token of the operators' endpoints under /v1/admin (at least 32
    /// characters). Unset: those endpoints are off.
    #[arg(long, env = "NATTER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_keys: None,
            jwt_issuer: "natter".into(),
            jwt_audience: "natter-api".into(),
            access_token_secs: 900,
            session_days: 30,
            refresh_grace_secs: 10,
            handle_cool_down_secs: 30 * 86_400,
            hash_workers: None,
            hash_queue: 64,
            login_per_address: 60,
            login_per_handle: 10,
            register_per_address: 10,
            register_per_handle: 5,
            markers_per_user: 120,
            trusted_proxies: Vec::new(),
            admin_token: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// The REST API (and health, readiness and metrics).
    Api,
    /// Realtime delivery to clients.
    Gateway,
    /// The projection workers that build the read models.
    Projector,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// A value that never prints (a database URL may hold a password).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Stream names and subject prefixes: one subject token of `A-Z a-z 0-9 _ -`.
fn parse_name(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(value.to_owned())
    } else {
        Err("use 1 to 64 characters of A-Z, a-z, 0-9, _ and -".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("postgres://u:hunter2@db/natter");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn names_are_single_subject_tokens() {
        assert!(parse_name("natter_test-1").is_ok());
        assert!(parse_name("a.b").is_err());
        assert!(parse_name("").is_err());
        assert!(parse_name("a*").is_err());
    }
}
