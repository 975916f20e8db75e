//! The envelope every event is stored in.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// One stored event, as it is written to the log (the message payload is this, as JSON).
/// The type and version are also NATS headers, so that tools can filter without parsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// UUIDv7: unique, and ordered by creation time.
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub aggregate_type: String,
    pub aggregate_id: String,
    #[serde(default)]
    pub actor: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// Shared by every event that one user action caused, across commands.
    pub correlation_id: Uuid,
    /// The event or request that directly caused this one.
    #[serde(default)]
    pub causation_id: Option<Uuid>,
    pub payload: serde_json::Value,
}

/// Who and what caused a command; copied into every event it appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    pub actor: Option<Uuid>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
}

impl Metadata {
    /// Metadata for an action that starts a new correlation.
    pub fn new(actor: Option<Uuid>, correlation_id: Uuid) -> Self {
        Self {
            actor,
            correlation_id,
            causation_id: None,
        }
    }
}

/// Header names under which the envelope's type and version are repeated.
pub const EVENT_TYPE_HEADER: &str = "Natter-Event-Type";
pub const SCHEMA_VERSION_HEADER: &str = "Natter-Schema-Version";
