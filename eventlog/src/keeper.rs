//! What Natter keeps on NATS, kept there across reconnects.
//!
//! A server restarted with a fresh store has lost the stream, and any server restart
//! loses the presence bucket (memory storage); async-nats reconnects and resubscribes by
//! itself, but makes nothing on JetStream again. The keeper follows the client's
//! connection events: on a disconnect the log is no longer ready; on the reconnect that
//! follows it runs every ensure step (the stream first) until all succeed, then the log
//! is ready again and its [`Link::resumed`] moves on, which tells the log's users
//! (projection consumers, the revocation feed) to pick up from where they were. A
//! reconnect whose event async-nats dropped (its event queue is bounded) is noticed
//! within a second by the client's count of connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{ConnectOptions, Event};
use tokio::sync::mpsc;

use crate::EventLog;

/// How often the keeper, with no event, checks that the connection has not changed.
const RECHECK: Duration = Duration::from_secs(1);

/// The log's connection as its users see it. Watch it with [`EventLog::link`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Connected, and everything kept on NATS is in place.
    pub ready: bool,
    /// Moves on when, after a reconnect, everything kept is in place again: whatever
    /// was received live meanwhile may have gone by.
    pub resumed: u64,
    /// Moves on when a subscription of the client dropped messages (a slow consumer).
    pub overflows: u64,
    /// The connection (the client's count of connections) on which everything kept was
    /// last made; none if no keeper follows the log.
    made_on: Option<u64>,
}

impl Default for Link {
    fn default() -> Self {
        Self {
            ready: true,
            resumed: 0,
            overflows: 0,
            made_on: None,
        }
    }
}

impl Link {
    /// Ready on the client's current connection: a reconnect the keeper has not seen
    /// to yet is not.
    pub(crate) fn ready_on(&self, connection: u64) -> bool {
        self.ready && self.made_on.is_none_or(|made_on| made_on == connection)
    }
}

/// One thing to make (or check) on NATS: idempotent, as it runs after every reconnect.
pub type EnsureStep =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// The connection events of one client, gathered before it connects.
#[derive(Debug)]
pub struct ConnectionEvents(mpsc::UnboundedReceiver<Event>);

impl ConnectionEvents {
    /// Sets `options`' event callback to gather the client's events here. Connect with
    /// the options returned, then hand these to [`EventLog::keeper`].
    pub fn gather(options: ConnectOptions) -> (ConnectOptions, Self) {
        let (sender, events) = mpsc::unbounded_channel();
        let options = options.event_callback(move |event| {
            let _ = sender.send(event);
            async {}
        });
        (options, Self(events))
    }
}

/// Keeps the stream and the steps added with [`Keeper::ensure`] on NATS. Spawn it once
/// every step is added; events that come before are kept for it.
pub struct Keeper {
    log: EventLog,
    events: ConnectionEvents,
    steps: Vec<(&'static str, EnsureStep)>,
}

impl std::fmt::Debug for Keeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps: Vec<_> = self.steps.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Keeper").field("steps", &steps).finish()
    }
}

impl EventLog {
    /// A keeper of this log's stream, fed by the events of the log's client. The
    /// stream was made on the current connection, by [`EventLog::open`].
    pub fn keeper(&self, events: ConnectionEvents) -> Keeper {
        let connection = self.connection();
        self.link
            .send_modify(|link| link.made_on = Some(connection));
        let log = self.clone();
        let stream: EnsureStep = Arc::new(move || {
            let log = log.clone();
            Box::pin(async move { log.ensure_stream().await.map_err(|e| e.to_string()) })
        });
        Keeper {
            log: self.clone(),
            events,
            steps: vec![("stream", stream)],
        }
    }
}

impl Keeper {
    /// Adds a step, run after the stream's on every reconnect.
    #[must_use]
    pub fn ensure(mut self, what: &'static str, step: EnsureStep) -> Self {
        self.steps.push((what, step));
        self
    }

    /// Runs until the client is closed.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        let Self {
            log,
            events: ConnectionEvents(mut events),
            steps,
        } = self;
        // A reconnect whose steps have not all succeeded yet.
        let mut ensuring = false;
        let mut backoff = Duration::from_millis(50);
        loop {
            let event = if ensuring {
                // Taken first: if the client connects again meanwhile, what is made
                // here does not count for the new connection.
                let connection = log.connection();
                tokio::select! {
                    biased;
                    event = events.recv() => event,
                    done = ensure_all(&steps) => {
                        match done {
                            Ok(()) => {
                                ensuring = false;
                                backoff = Duration::from_millis(50);
                                log.link.send_modify(|link| {
                                    link.ready = true;
                                    link.resumed += 1;
                                    link.made_on = Some(connection);
                                });
                                tracing::info!("NATS reconnected; stream and buckets in place");
                            }
                            Err(error) => {
                                tracing::warn!(%error, "NATS reconnected; making the stream and buckets again failed, retrying");
                                tokio::select! {
                                    biased;
                                    event = events.recv() => {
                                        let Some(event) = event else { return };
                                        handle(&log, event, &mut ensuring);
                                    }
                                    () = tokio::time::sleep(backoff) => {}
                                }
                                backoff = (backoff * 2).min(Duration::from_secs(2));
                            }
                        }
                        continue;
                    }
                }
            } else {
                tokio::select! {
                    event = events.recv() => event,
                    () = tokio::time::sleep(RECHECK) => {
                        // async-nats drops events when its queue is full: a reconnect is
                        // also told by the client's count of connections.
                        ensuring = log.client.connection_state()
                            == async_nats::connection::State::Connected
                            && log.link.borrow().made_on != Some(log.connection());
                        continue;
                    }
                }
            };
            let Some(event) = event else { return };
            handle(&log, event, &mut ensuring);
        }
    }
}

fn handle(log: &EventLog, event: Event, ensuring: &mut bool) {
    match event {
        Event::Disconnected | Event::Closed => {
            *ensuring = false;
            log.link.send_if_modified(|link| {
                let was = link.ready;
                link.ready = false;
                was
            });
        }
        // The first connection's event, queued before the keeper ran, changes nothing.
        Event::Connected if log.link.borrow().made_on != Some(log.connection()) => {
            *ensuring = true;
        }
        Event::SlowConsumer(_) => log.link.send_modify(|link| link.overflows += 1),
        _ => {}
    }
}

async fn ensure_all(steps: &[(&'static str, EnsureStep)]) -> Result<(), String> {
    for (what, step) in steps {
        step().await.map_err(|error| format!("{what}: {error}"))?;
    }
    Ok(())
}
