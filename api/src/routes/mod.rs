//! The REST endpoints, grouped by resource.

pub mod accounts;
pub mod chats;
pub mod search;
pub mod sessions;

use natter_schema::Metadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The answer to a command: the stream sequence of its last event. Pass it back as
/// `min_sequence` to a query to read your own write.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(example = json!({"sequence": 1042}))]
pub struct SequenceResponse {
    pub sequence: u64,
}

/// The consistency token a query may wait for.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Consistency {
    /// Wait (briefly) until the read model has applied this stream sequence: the
    /// `sequence` of an earlier command response.
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub min_sequence: Option<u64>,
}

/// Metadata for a command a request causes.
pub(crate) fn metadata(actor: Option<Uuid>) -> Metadata {
    Metadata::new(actor, Uuid::now_v7())
}
