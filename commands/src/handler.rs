//! The generic command handler: the load–decide–append loop of one aggregate type, with
//! a moka cache of `(state, last sequence)` per aggregate. It also resolves the claims of
//! a decision (taking a key, releasing it, and any extra claims the caller adds, such as
//! an idempotency key) and records the command metrics. Each command runs in a
//! debug-level span with aggregate, id and correlation id
//! (`RUST_LOG=natter_commands=debug`).
//!
//! Optimistic concurrency: claims go first in the batch, each at the expected sequence of
//! its own subject, then the events, the first of them carrying the expected last
//! sequence of the aggregate's subject. On a conflict the handler:
//! 1. reports `ClaimTaken` if a claim is now owned by someone else;
//! 2. otherwise reads only the events newer than its cached sequence and decides again;
//! 3. after a bounded number of attempts, reports `Conflict`.
//!
//! Cached state is only a guess. The append's expectation proves a decision that yields
//! events; a refusal, or a decision that changes nothing, is decided again after reading
//! the log's newer events before it is answered, and the refreshed state is cached for
//! the next command. State read with direct gets is a guess as well: in a replicated
//! stream a replica that lags the leader may answer them. So the newer events are read
//! on to what the stream leader holds (`EventLog::load_current`: a direct get that only
//! a server holding the leader's last sequence answers). `execute_beside` appends one
//! event on a sibling subject (a chat's messages) guarded by the aggregate's subject,
//! with the same loop.

use std::time::Instant;

use moka::sync::Cache;
use natter_domain::{Aggregate, Claim, ClaimAction, Context};
use natter_eventlog::{AppendError, AppendErrorKind, EventLog, LogError, NewEvent, StoredEvent};
use natter_schema::{ClaimMade, ClaimReleased, Envelope, Metadata, SchemaError};
use time::OffsetDateTime;
use tracing::Instrument;
use uuid::Uuid;

use crate::CommandMetrics;

/// How many times a command is decided again after a conflict before giving up.
const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The events a command appended, each with its stream sequence.
#[derive(Debug, Clone)]
pub struct Executed<E> {
    pub events: Vec<(u64, E)>,
    /// The aggregate's last sequence after the command: the consistency token to wait
    /// for when reading one's own write. For a command that changed nothing, the
    /// aggregate's current last sequence.
    pub last_sequence: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The domain refused the command.
    #[error(transparent)]
    Rejected(E),
    /// A unique key (such as a handle) belongs to someone else.
    #[error("{kind} {key:?} is already taken")]
    ClaimTaken { kind: &'static str, key: String },
    /// Others kept changing the aggregate; every attempt conflicted.
    #[error("the aggregate changed concurrently {attempts} times; try again")]
    Conflict { attempts: u32 },
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("stored event could not be read: {0}")]
    Schema(#[from] SchemaError),
}

impl<E: std::error::Error + 'static> CommandError<E> {
    /// Whether the log, not the command, failed, in a way worth retrying.
    pub fn interrupted(&self) -> Option<crate::Interrupted> {
        match self {
            Self::Append(error) => crate::Interrupted::of_append(error),
            Self::Log(error) => crate::Interrupted::of_log(error),
            _ => None,
        }
    }
}

/// Runs commands of one aggregate type. Cheap to clone; clones share the cache.
#[derive(Debug, Clone)]
pub struct CommandHandler<A: Aggregate> {
    log: EventLog,
    /// (state, last sequence of the aggregate's subject) by aggregate id.
    cache: Cache<String, (A, u64)>,
    max_attempts: u32,
    metrics: CommandMetrics,
}

impl<A: Aggregate + std::fmt::Debug> CommandHandler<A> {
    pub fn new(log: EventLog, metrics: CommandMetrics) -> Self {
        Self {
            log,
            // Bounded by count only: a stale entry costs one conflict and a catch-up read,
            // so there is nothing to gain from expiring entries by time.
            cache: Cache::new(100_000),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            metrics,
        }
    }

    /// How many attempts a conflicted command gets, at least 1.
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// The aggregate's current state and last sequence, bringing the cache up to date.
    pub async fn load(&self, id: &str) -> Result<(A, u64), CommandError<A::Error>> {
        let cached = self.cache.get(id).unwrap_or_default();
        let fresh = self.catch_up(id, cached).await?;
        self.cache.insert(id.to_owned(), fresh.clone());
        Ok(fresh)
    }

    /// The cached state and last sequence, loading it when absent. A guess, as in
    /// [`Self::execute`]: whatever is decided on it must be appended with its sequence.
    pub async fn cached(&self, id: &str) -> Result<(A, u64), CommandError<A::Error>> {
        match self.cache.get(id) {
            Some(cached) => Ok(cached),
            None => self.load(id).await,
        }
    }

    /// As [`Self::load`], and then on to what the stream leader holds: a direct read may
    /// be answered by a replica that lags it, and a refusal decided on that (a member
    /// added a moment ago is no member) would be wrong.
    pub async fn load_current(&self, id: &str) -> Result<(A, u64), CommandError<A::Error>> {
        let loaded = self.load(id).await?;
        let current = self.catch_up_on_leader(id, loaded).await?;
        self.cache.insert(id.to_owned(), current.clone());
        Ok(current)
    }

    /// As [`Self::load`], going on to what the stream leader holds only when `found`
    /// says the state lacks what was looked for: an answer "there is none" (an account,
    /// a media item) counts every event acknowledged before the call.
    pub async fn load_found(
        &self,
        id: &str,
        found: impl Fn(&A) -> bool,
    ) -> Result<(A, u64), CommandError<A::Error>> {
        let loaded = self.load(id).await?;
        if found(&loaded.0) {
            return Ok(loaded);
        }
        let current = self.catch_up_on_leader(id, loaded).await?;
        self.cache.insert(id.to_owned(), current.clone());
        Ok(current)
    }

    /// Applies the events the stream leader holds after `sequence` to `state`.
    async fn catch_up_on_leader(
        &self,
        id: &str,
        state: (A, u64),
    ) -> Result<(A, u64), CommandError<A::Error>> {
        let subject = self.log.subject(A::KIND, id);
        let newer = self.log.load_current(&subject, state.1).await?;
        Ok(apply(state, &newer)?)
    }

    /// Applies the events stored after `sequence` to `state`.
    async fn catch_up(
        &self,
        id: &str,
        state: (A, u64),
    ) -> Result<(A, u64), CommandError<A::Error>> {
        let subject = self.log.subject(A::KIND, id);
        let newer = self.log.load(&subject, state.1).await?;
        Ok(apply(state, &newer)?)
    }

    /// Decides `command` on aggregate `id` and appends the outcome. The cached state is
    /// trusted first; a conflict reads only the newer events and decides again.
    pub async fn execute(
        &self,
        id: &str,
        command: &A::Command,
        metadata: Metadata,
    ) -> Result<Executed<A::Event>, CommandError<A::Error>> {
        self.execute_with(id, command, metadata, &[]).await
    }

    /// As [`Self::execute`], taking `extra` claims in the same atomic append when the
    /// command changes anything (an idempotency key, say).
    pub async fn execute_with(
        &self,
        id: &str,
        command: &A::Command,
        metadata: Metadata,
        extra: &[ExtraClaim],
    ) -> Result<Executed<A::Event>, CommandError<A::Error>> {
        let span = tracing::debug_span!("command", aggregate = A::KIND, id = %id, correlation_id = %metadata.correlation_id);
        self.execute_inner(id, command, metadata, extra)
            .instrument(span)
            .await
    }

    async fn execute_inner(
        &self,
        id: &str,
        command: &A::Command,
        metadata: Metadata,
        extra: &[ExtraClaim],
    ) -> Result<Executed<A::Event>, CommandError<A::Error>> {
        self.metrics.commands.inc();
        let mut decision = self.start(id).await?;
        loop {
            let context = Context {
                now: OffsetDateTime::now_utc(),
                actor: metadata.actor,
            };
            let decided = decision.state.decide(command, &context);
            if self
                .proven(
                    id,
                    &mut decision,
                    matches!(&decided, Ok(events) if !events.is_empty()),
                )
                .await?
            {
                continue;
            }
            let events = decided.map_err(CommandError::Rejected)?;
            if events.is_empty() {
                self.cache
                    .insert(id.to_owned(), (decision.state, decision.sequence));
                return Ok(Executed {
                    events: Vec::new(),
                    last_sequence: decision.sequence,
                });
            }
            let mut claims: Vec<ExtraClaim> = A::claims(&events)
                .into_iter()
                .map(|claim| ExtraClaim {
                    claim,
                    fingerprint: None,
                })
                .collect();
            claims.extend_from_slice(extra);
            let claims = self.resolve_claims(&claims, context.now).await?;
            let batch = self.batch(
                id,
                decision.sequence,
                &events,
                &claims,
                &metadata,
                context.now,
            )?;
            match self.append(&batch).await {
                Ok(appended) => {
                    let sequences = &appended.sequences[claims.len()..];
                    let last_sequence = appended.last_sequence();
                    let state = events
                        .iter()
                        .fold(decision.state, |state, event| state.evolve(event));
                    self.cache.insert(id.to_owned(), (state, last_sequence));
                    return Ok(Executed {
                        events: sequences.iter().copied().zip(events).collect(),
                        last_sequence,
                    });
                }
                Err(error) => self.after_failed_append(id, &mut decision, error).await?,
            }
        }
    }

    /// Decides on the aggregate's state and appends the one event decided (`None`:
    /// nothing to do) to the sibling subject of kind `beside` (a chat's messages, say),
    /// guarded by the aggregate's own last sequence: writers beside it never conflict
    /// with each other, only with changes of the aggregate. `dedupe_id` makes a retried
    /// request's event stored once. What is appended beside does not change the
    /// aggregate's state.
    pub async fn execute_beside<E: natter_domain::DomainEvent>(
        &self,
        id: &str,
        beside: &str,
        dedupe_id: Option<String>,
        metadata: Metadata,
        decide: impl Fn(&A, &Context) -> Result<Option<E>, A::Error>,
    ) -> Result<Beside<E>, CommandError<A::Error>> {
        self.metrics.commands.inc();
        let mut decision = self.start(id).await?;
        loop {
            let context = Context {
                now: OffsetDateTime::now_utc(),
                actor: metadata.actor,
            };
            let decided = decide(&decision.state, &context);
            if self
                .proven(id, &mut decision, matches!(&decided, Ok(Some(_))))
                .await?
            {
                continue;
            }
            let Some(event) = decided.map_err(CommandError::Rejected)? else {
                return Ok(Beside {
                    sequence: decision.sequence,
                    duplicate: false,
                    event: None,
                });
            };
            let (event_type, version, payload) = natter_schema::encode(&event)?;
            let new = NewEvent {
                subject: self.log.subject(beside, id),
                expected_sequence: Some(decision.sequence),
                expected_subject: Some(self.log.subject(A::KIND, id)),
                dedupe_id: dedupe_id.clone(),
                envelope: Envelope {
                    event_id: Uuid::now_v7(),
                    event_type: event_type.to_owned(),
                    schema_version: version,
                    aggregate_type: beside.to_owned(),
                    aggregate_id: id.to_owned(),
                    actor: metadata.actor,
                    occurred_at: context.now,
                    correlation_id: metadata.correlation_id,
                    causation_id: metadata.causation_id,
                    payload,
                },
            };
            match self.append(std::slice::from_ref(&new)).await {
                Ok(appended) => {
                    return Ok(Beside {
                        sequence: appended.last_sequence(),
                        duplicate: appended.duplicate,
                        event: Some(event),
                    });
                }
                Err(error) => self.after_failed_append(id, &mut decision, error).await?,
            }
        }
    }

    /// The state to decide on first: the cache's, a guess, or the log's if none.
    async fn start(&self, id: &str) -> Result<Decision<A>, CommandError<A::Error>> {
        Ok(match self.cache.get(id) {
            Some((state, sequence)) => Decision {
                state,
                sequence,
                fresh: false,
                conflicts: 0,
            },
            None => {
                let (state, sequence) = self.catch_up(id, Default::default()).await?;
                Decision {
                    state,
                    sequence,
                    // Read from a replica, which may lag the leader: a guess too.
                    fresh: false,
                    conflicts: 0,
                }
            }
        })
    }

    /// A cached state is only a guess: an append proves it (the expected sequence), but
    /// a refusal or a no-op proves nothing. So a decision that `appends` nothing, made
    /// on a guess, is made again on the log's newest events: true when the caller must
    /// decide again.
    async fn proven(
        &self,
        id: &str,
        decision: &mut Decision<A>,
        appends: bool,
    ) -> Result<bool, CommandError<A::Error>> {
        if decision.fresh || appends {
            return Ok(false);
        }
        self.refresh(id, decision).await?;
        Ok(true)
    }

    async fn refresh(
        &self,
        id: &str,
        decision: &mut Decision<A>,
    ) -> Result<(), CommandError<A::Error>> {
        let state = std::mem::take(&mut decision.state);
        let caught_up = self.catch_up(id, (state, decision.sequence)).await?;
        // A refusal is proven on what the leader holds, not on a replica that lags it.
        (decision.state, decision.sequence) = self.catch_up_on_leader(id, caught_up).await?;
        decision.fresh = true;
        // What the log says now is the best guess for the next command too.
        self.cache
            .insert(id.to_owned(), (decision.state.clone(), decision.sequence));
        Ok(())
    }

    /// After an append failed: a conflict reads the newer events for another attempt,
    /// while attempts last; anything else is the answer (and the cached state, which may
    /// be behind what the failed append did, is dropped).
    async fn after_failed_append(
        &self,
        id: &str,
        decision: &mut Decision<A>,
        error: AppendError,
    ) -> Result<(), CommandError<A::Error>> {
        if error.kind() != AppendErrorKind::Conflict {
            self.cache.invalidate(id);
            return Err(error.into());
        }
        self.metrics.conflicts.inc();
        decision.conflicts += 1;
        if decision.conflicts >= self.max_attempts {
            self.cache.invalidate(id);
            return Err(CommandError::Conflict {
                attempts: self.max_attempts,
            });
        }
        tracing::debug!(
            attempt = decision.conflicts,
            "conflict; reading newer events"
        );
        self.refresh(id, decision).await
    }

    /// Appends (the log settles unconfirmed and transient failures itself), timed.
    async fn append(&self, batch: &[NewEvent]) -> Result<natter_eventlog::Appended, AppendError> {
        let started = Instant::now();
        let result = self.log.append(batch).await;
        self.metrics
            .append_latency
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// The claims (each at the expected sequence of its subject) and then the events,
    /// with the expected sequence on the aggregate's first event.
    fn batch(
        &self,
        id: &str,
        sequence: u64,
        events: &[A::Event],
        claims: &[ResolvedClaim],
        metadata: &Metadata,
        now: OffsetDateTime,
    ) -> Result<Vec<NewEvent>, CommandError<A::Error>> {
        let envelope =
            |aggregate_type: &str, aggregate_id: &str, event_type: &str, version: u32, payload| {
                Envelope {
                    event_id: Uuid::now_v7(),
                    event_type: event_type.to_owned(),
                    schema_version: version,
                    aggregate_type: aggregate_type.to_owned(),
                    aggregate_id: aggregate_id.to_owned(),
                    actor: metadata.actor,
                    occurred_at: now,
                    correlation_id: metadata.correlation_id,
                    causation_id: metadata.causation_id,
                    payload,
                }
            };
        let mut batch = Vec::with_capacity(claims.len() + events.len());
        for resolved in claims {
            let claim = &resolved.claim;
            let (event_type, payload) = match claim.action {
                ClaimAction::Take => (
                    ClaimMade::TYPE,
                    serde_json::to_value(ClaimMade {
                        owner: claim.owner,
                        fingerprint: resolved.fingerprint.clone(),
                    }),
                ),
                ClaimAction::Release { available_after } => (
                    ClaimReleased::TYPE,
                    serde_json::to_value(ClaimReleased {
                        owner: claim.owner,
                        available_after,
                    }),
                ),
            };
            let payload = payload.map_err(|e| LogError::Read(e.to_string()))?;
            batch.push(NewEvent {
                subject: self.log.subject(claim.kind, &claim.key),
                expected_sequence: Some(resolved.expected),
                expected_subject: None,
                dedupe_id: None,
                envelope: envelope(claim.kind, &claim.key, event_type, 1, payload),
            });
        }
        let subject = self.log.subject(A::KIND, id);
        for (index, event) in events.iter().enumerate() {
            let (event_type, version, payload) = natter_schema::encode(event)?;
            batch.push(NewEvent {
                subject: subject.clone(),
                expected_sequence: (index == 0).then_some(sequence),
                expected_subject: None,
                dedupe_id: None,
                envelope: envelope(A::KIND, id, event_type, version, payload),
            });
        }
        Ok(batch)
    }

    /// Reads where each claim's subject stands: the expected sequence to append at, or
    /// a refusal when someone else holds the key. Claims already in the wanted state
    /// are left out.
    async fn resolve_claims(
        &self,
        claims: &[ExtraClaim],
        now: OffsetDateTime,
    ) -> Result<Vec<ResolvedClaim>, CommandError<A::Error>> {
        let mut resolved = Vec::with_capacity(claims.len());
        for extra in claims {
            let claim = &extra.claim;
            let (holder, sequence) = claim_state(&self.log, claim.kind, &claim.key).await?;
            let expected = match (claim.action, holder) {
                (ClaimAction::Take, ClaimHolder::Free) => Some(sequence),
                (
                    ClaimAction::Take,
                    ClaimHolder::Released {
                        available_after, ..
                    },
                ) if available_after <= now => Some(sequence),
                (ClaimAction::Take, ClaimHolder::Held { owner, .. }) if owner == claim.owner => {
                    None
                }
                (ClaimAction::Take, _) => {
                    return Err(CommandError::ClaimTaken {
                        kind: claim.kind,
                        key: claim.key.clone(),
                    });
                }
                (ClaimAction::Release { .. }, ClaimHolder::Held { owner, .. })
                    if owner == claim.owner =>
                {
                    Some(sequence)
                }
                (ClaimAction::Release { .. }, _) => None,
            };
            if let Some(expected) = expected {
                resolved.push(ResolvedClaim {
                    claim: claim.clone(),
                    fingerprint: extra.fingerprint.clone(),
                    expected,
                });
            }
        }
        Ok(resolved)
    }
}

/// The state a command is being decided on, and how far it got.
struct Decision<A> {
    state: A,
    /// The aggregate subject's last sequence the state stands at.
    sequence: u64,
    /// Read from the log for this command, not a cached guess.
    fresh: bool,
    conflicts: u32,
}

/// An event appended beside an aggregate ([`CommandHandler::execute_beside`]), with its
/// sequence; `duplicate` when its deduplication id had been appended before (the
/// sequence is then the earlier one's). No event: the decision changed nothing, and the
/// sequence is the aggregate's.
#[derive(Debug, Clone)]
pub struct Beside<E> {
    pub sequence: u64,
    pub duplicate: bool,
    pub event: Option<E>,
}

/// A claim a caller adds to a command, with what to remember about the request.
#[derive(Debug, Clone)]
pub struct ExtraClaim {
    pub claim: Claim,
    pub fingerprint: Option<String>,
}

/// A claim with the sequence its subject is expected to be at.
#[derive(Debug, Clone)]
struct ResolvedClaim {
    claim: Claim,
    fingerprint: Option<String>,
    expected: u64,
}

/// Who holds a claimed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimHolder {
    Free,
    Held {
        owner: Uuid,
        fingerprint: Option<String>,
    },
    Released {
        owner: Uuid,
        available_after: OffsetDateTime,
    },
}

/// Who holds `<kind>.<key>`, and the last sequence of its subject (0 when never claimed),
/// as the server that answers holds it: in a replicated log, a replica a moment behind
/// the leader may not have the newest claim yet. Right for a guess that an append with
/// the sequence checks (taking a claim), not for a refusal.
pub async fn claim_state(
    log: &EventLog,
    kind: &str,
    key: &str,
) -> Result<(ClaimHolder, u64), LogError> {
    holder(log.last_on_subject(&log.subject(kind, key)).await?)
}

/// As [`claim_state`], counting every claim acknowledged before the call: for a read
/// that answers "no such key" (a sign-in, an invite code) or names the holder.
pub async fn claim_state_current(
    log: &EventLog,
    kind: &str,
    key: &str,
) -> Result<(ClaimHolder, u64), LogError> {
    holder(log.last_on_subject_current(&log.subject(kind, key)).await?)
}

fn holder(newest: Option<StoredEvent>) -> Result<(ClaimHolder, u64), LogError> {
    let Some(stored) = newest else {
        return Ok((ClaimHolder::Free, 0));
    };
    let malformed = |e: serde_json::Error| LogError::Malformed {
        sequence: stored.sequence,
        reason: e.to_string(),
    };
    let holder = match stored.envelope.event_type.as_str() {
        ClaimReleased::TYPE => {
            let released: ClaimReleased =
                serde_json::from_value(stored.envelope.payload.clone()).map_err(malformed)?;
            ClaimHolder::Released {
                owner: released.owner,
                available_after: released.available_after,
            }
        }
        _ => {
            let made: ClaimMade =
                serde_json::from_value(stored.envelope.payload.clone()).map_err(malformed)?;
            ClaimHolder::Held {
                owner: made.owner,
                fingerprint: made.fingerprint,
            }
        }
    };
    Ok((holder, stored.sequence))
}

/// `state` with `newer` (its subject's events after its sequence) applied.
fn apply<A: Aggregate>(
    (mut state, mut sequence): (A, u64),
    newer: &[StoredEvent],
) -> Result<(A, u64), SchemaError> {
    for stored in newer {
        state = state.evolve(&decode::<A>(stored)?);
        sequence = stored.sequence;
    }
    Ok((state, sequence))
}

fn decode<A: Aggregate>(stored: &StoredEvent) -> Result<A::Event, SchemaError> {
    let envelope = &stored.envelope;
    natter_schema::decode(
        &envelope.event_type,
        envelope.schema_version,
        &envelope.payload,
    )
}
