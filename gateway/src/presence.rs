//! Online and last seen, from this gateway's connections: a user's first connection
//! here marks them online in the presence bucket; when their last one closes, and
//! stays closed for the debounce, the mark goes, and if no other gateway has them the
//! time it closed is recorded in the log (`LastSeenRecorded`). Changes are published
//! on core NATS (`<prefix>.signal.presence.<user>`) for the connections that watch.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use natter_access::presence::{Presence, REFRESH};
use natter_commands::accounts::Accounts;
use natter_schema::Metadata;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use crate::protocol::VERSION;

/// What the hub tells the presence task.
#[derive(Debug, Clone, Copy)]
pub enum Change {
    /// The user's first connection on this gateway opened.
    Came(Uuid),
    /// The user's last connection on this gateway closed, at this time.
    Left(Uuid, OffsetDateTime),
}

/// The `presence` frame, which is also the signal's payload.
#[derive(Debug, Serialize)]
pub struct PresenceFrame {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub v: u32,
    pub user_id: Uuid,
    pub online: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
}

impl PresenceFrame {
    pub fn new(user_id: Uuid, online: bool, last_seen_at: Option<OffsetDateTime>) -> Self {
        Self {
            kind: "presence",
            v: VERSION,
            user_id,
            online,
            last_seen_at,
        }
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct Tracker {
    pub presence: Presence,
    pub accounts: Accounts,
    pub client: async_nats::Client,
    pub subjects: natter_eventlog::Subjects,
    /// This gateway process's own name in the presence bucket.
    pub gateway: String,
    pub debounce: Duration,
}

impl Tracker {
    pub async fn run(self, mut changes: mpsc::UnboundedReceiver<Change>) {
        let mut here: HashSet<Uuid> = HashSet::new();
        let mut leaving: HashMap<Uuid, (Instant, OffsetDateTime)> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut refresh = tokio::time::interval(REFRESH);
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Some(Change::Came(user)) => {
                        // Back within the debounce: nothing happened, as far as anyone
                        // else can tell.
                        if leaving.remove(&user).is_none() && here.insert(user) {
                            self.came(user).await;
                        }
                    }
                    Some(Change::Left(user, at)) => {
                        leaving.insert(user, (Instant::now(), at));
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    let due: Vec<(Uuid, OffsetDateTime)> = leaving
                        .iter()
                        .filter(|(_, (since, _))| since.elapsed() >= self.debounce)
                        .map(|(user, (_, at))| (*user, *at))
                        .collect();
                    for (user, at) in due {
                        leaving.remove(&user);
                        here.remove(&user);
                        self.left(user, at).await;
                    }
                }
                _ = refresh.tick() => {
                    let users: Vec<Uuid> = here.iter().copied().collect();
                    let failed = futures::stream::iter(users)
                        .map(|user| {
                            let (presence, gateway) = (self.presence.clone(), self.gateway.clone());
                            async move { presence.mark(user, &gateway).await }
                        })
                        .buffer_unordered(64)
                        .filter(|result| std::future::ready(result.is_err()))
                        .count()
                        .await;
                    if failed > 0 {
                        tracing::warn!(failed, "refreshing presence marks failed");
                    }
                }
            }
        }
        for user in here {
            let _ = self.presence.clear(user, &self.gateway).await;
        }
    }

    async fn came(&self, user: Uuid) {
        let was_online = self.presence.is_online(user).await.unwrap_or(false);
        if let Err(error) = self.presence.mark(user, &self.gateway).await {
            tracing::warn!(%error, "marking a user online failed");
        }
        if !was_online {
            self.publish(PresenceFrame::new(user, true, None)).await;
        }
    }

    async fn left(&self, user: Uuid, at: OffsetDateTime) {
        if let Err(error) = self.presence.clear(user, &self.gateway).await {
            tracing::warn!(%error, "clearing a presence mark failed");
        }
        if self.presence.is_online(user).await.unwrap_or(false) {
            return;
        }
        let metadata = Metadata::new(Some(user), Uuid::now_v7());
        if let Err(error) = self.accounts.record_last_seen(user, at, metadata).await {
            tracing::debug!(%error, "recording last seen failed");
        }
        self.publish(PresenceFrame::new(user, false, Some(at)))
            .await;
    }

    async fn publish(&self, frame: PresenceFrame) {
        let subject = self.subjects.of(
            natter_eventlog::Space::Signal,
            natter_eventlog::subjects::PRESENCE,
            &frame.user_id.to_string(),
        );
        if let Err(error) = self.client.publish(subject, frame.to_text().into()).await {
            tracing::warn!(%error, "publishing presence failed");
        }
    }
}
