//! The shape every aggregate takes: synchronous `decide` and `evolve`.

use serde::{Deserializer, Serialize, de::DeserializeOwned};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a decision may know besides the state and the command: who asks, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub now: OffsetDateTime,
    /// The user on whose behalf the command runs; `None` for the system itself.
    pub actor: Option<Uuid>,
}

/// An event of an aggregate. The serde form (adjacently tagged as `type` and `payload`)
/// is the current schema version of each event type; older versions are upcast by the
/// `schema` crate before they reach this type.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The event's type name, as stored in the envelope and the `Natter-Event-Type` header.
    fn event_type(&self) -> &'static str;

    /// Builds the event of type `event_type` from its payload in the current version;
    /// an error for a type this aggregate does not have.
    fn from_payload<'de, D: Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Result<Self, D::Error>;
}

/// A unique key that one aggregate takes for itself (such as a handle), or gives back.
/// It lives on its own subject (`<prefix>.evt.<kind>.<key>`) and is appended with the
/// expected sequence of that subject, in the same atomic batch as the events that need
/// it: the log is the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The claim's aggregate kind, a subject token such as `handle`.
    pub kind: &'static str,
    /// The claimed key, already normalized and valid as a subject token.
    pub key: String,
    /// The aggregate id that owns (or owned) the key.
    pub owner: Uuid,
    pub action: ClaimAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimAction {
    /// Take the key: it must be free, or released and past its cool-down.
    Take,
    /// Give the key back; others may take it from `available_after` on.
    Release { available_after: OffsetDateTime },
}

/// A consistency boundary: its state is rebuilt by folding its events with `evolve`, and
/// every change is decided from that state alone.
pub trait Aggregate: Default + Clone + Send + Sync + 'static {
    /// The subject token naming this kind of aggregate, such as `user`.
    const KIND: &'static str;
    type Command: Send + Sync;
    type Event: DomainEvent;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides what happens: the events to append, or why not. An empty list means the
    /// command changes nothing (it is idempotent at this state).
    fn decide(
        &self,
        command: &Self::Command,
        context: &Context,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one event that has happened.
    #[must_use]
    fn evolve(self, event: &Self::Event) -> Self;

    /// The unique keys that these new events take; none by default.
    fn claims(_events: &[Self::Event]) -> Vec<Claim> {
        Vec::new()
    }

    /// Folds a history into a state.
    fn replay<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self {
        events
            .into_iter()
            .fold(Self::default(), |state, event| state.evolve(event))
    }
}
