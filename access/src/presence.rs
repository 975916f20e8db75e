//! Who is online, and who may see it.
//!
//! Online is ephemeral: a NATS key-value bucket (in memory) holds a key per user and
//! gateway process, `<user>.<gateway>`, which that gateway writes while the user has a
//! connection there and refreshes; a key not refreshed expires by itself, so a gateway
//! that dies leaves no one online for long. A user is online while any of their keys
//! exists. Last seen is remembered: the gateway appends `LastSeenRecorded` when a
//! user's last connection anywhere has closed.
//!
//! The bucket is `<stream>_presence`; a key is refreshed every 30 s and expires after
//! 90 s. Whether a user is online is one direct get of the newest value of each of their
//! keys. The log's keeper makes the bucket again after every reconnect, and an operation
//! that finds it gone makes it again and tries once more.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use async_nats::{HeaderMap, StatusCode};
use futures::StreamExt;
use natter_eventlog::EventLog;
use serde_json::json;
use uuid::Uuid;

/// How long a key lives without a refresh.
pub const TTL: Duration = Duration::from_secs(90);
/// How often a gateway refreshes its users' keys.
pub const REFRESH: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
#[error("presence: {message}")]
pub struct PresenceError {
    message: String,
    /// The bucket is not there: a NATS server restarted with a fresh store, or any
    /// restart (the bucket is kept in memory).
    bucket_gone: bool,
}

fn error(e: impl std::fmt::Display) -> PresenceError {
    PresenceError {
        message: e.to_string(),
        bucket_gone: false,
    }
}

/// An error of a KV operation: the bucket is gone if JetStream found no stream for the
/// key's subject.
fn kv_error(e: impl std::error::Error + 'static) -> PresenceError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut bucket_gone = false;
    while let Some(cause) = source {
        if let Some(publish) = cause.downcast_ref::<jetstream::context::PublishError>() {
            bucket_gone |= publish.kind() == jetstream::context::PublishErrorKind::StreamNotFound;
        }
        source = cause.source();
    }
    PresenceError {
        message: e.to_string(),
        bucket_gone,
    }
}

/// The presence bucket of one log. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Presence {
    client: async_nats::Client,
    js: jetstream::Context,
    store: kv::Store,
    bucket: String,
    replicas: usize,
}

impl Presence {
    /// Opens (or creates) the bucket `<stream>_presence`.
    pub async fn open(log: &EventLog) -> Result<Self, PresenceError> {
        let bucket = format!("{}_presence", log.config().stream);
        let js = log.jetstream().clone();
        let replicas = log.config().replicas;
        let store = create(&js, &bucket, replicas).await?;
        Ok(Self {
            client: log.client().clone(),
            js,
            store,
            bucket,
            replicas,
        })
    }

    /// Creates the bucket again if it is gone (or brings its settings up to date).
    pub async fn ensure(&self) -> Result<(), PresenceError> {
        create(&self.js, &self.bucket, self.replicas)
            .await
            .map(|_| ())
    }

    /// [`Self::ensure`] as a step of the log's keeper, run after every reconnect.
    pub fn ensure_step(&self) -> natter_eventlog::EnsureStep {
        let presence = self.clone();
        std::sync::Arc::new(move || {
            let presence = presence.clone();
            Box::pin(async move { presence.ensure().await.map_err(|e| e.to_string()) })
        })
    }

    /// Runs `operation`; if the bucket was gone, makes it again and runs it once more.
    async fn retried<T, F, Fut>(&self, operation: F) -> Result<T, PresenceError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, PresenceError>>,
    {
        match operation().await {
            Err(error) if error.bucket_gone => {
                tracing::warn!(bucket = %self.bucket, "the presence bucket is gone; making it again");
                self.ensure().await?;
                operation().await
            }
            done => done,
        }
    }

    /// Marks `user` online through `gateway` (and refreshes the mark).
    pub async fn mark(&self, user: Uuid, gateway: &str) -> Result<(), PresenceError> {
        self.retried(|| async {
            self.store
                .put(format!("{user}.{gateway}"), bytes::Bytes::from_static(b"1"))
                .await
                .map(|_| ())
                .map_err(kv_error)
        })
        .await
    }

    pub async fn clear(&self, user: Uuid, gateway: &str) -> Result<(), PresenceError> {
        self.retried(|| async {
            self.store
                .purge(format!("{user}.{gateway}"))
                .await
                .map_err(kv_error)
        })
        .await
    }

    /// Whether any gateway has `user` online: one direct get of the newest value of
    /// each of the user's keys.
    pub async fn is_online(&self, user: Uuid) -> Result<bool, PresenceError> {
        self.retried(|| self.lookup(user)).await
    }

    async fn lookup(&self, user: Uuid) -> Result<bool, PresenceError> {
        let inbox = self.client.new_inbox();
        let mut replies = self.client.subscribe(inbox.clone()).await.map_err(error)?;
        let request = json!({
            "multi_last": [format!("$KV.{}.{user}.*", self.bucket)],
            "batch": 64,
        });
        self.client
            .publish_with_reply(
                format!("$JS.API.DIRECT.GET.KV_{}", self.bucket),
                inbox,
                request.to_string().into(),
            )
            .await
            .map_err(error)?;
        let mut online = false;
        loop {
            let reply = tokio::time::timeout(Duration::from_secs(5), replies.next())
                .await
                .map_err(|_| error("presence lookup timed out"))?
                .ok_or_else(|| error("presence lookup ended"))?;
            match reply.status {
                Some(StatusCode::NOT_FOUND) => return Ok(online),
                Some(status) if status.as_u16() == 204 => return Ok(online),
                // No one answers direct gets for the bucket's stream: it is not there.
                Some(StatusCode::NO_RESPONDERS) => {
                    return Err(PresenceError {
                        message: "no presence bucket".into(),
                        bucket_gone: true,
                    });
                }
                Some(status) if status != StatusCode::OK => {
                    return Err(error(format!("presence lookup answered {status}")));
                }
                _ => online |= is_put(reply.headers.as_ref()),
            }
        }
    }
}

async fn create(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<kv::Store, PresenceError> {
    js.create_or_update_key_value(kv::Config {
        bucket: bucket.to_owned(),
        description: "Natter: who is online, per user and gateway".into(),
        history: 1,
        max_age: TTL,
        storage: jetstream::stream::StorageType::Memory,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(error)
}

fn is_put(headers: Option<&HeaderMap>) -> bool {
    headers
        .and_then(|h| h.get("KV-Operation"))
        .is_none_or(|op| op.as_str() == "PUT")
}
