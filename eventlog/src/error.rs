use crate::version::ServerVersion;

/// Failures of the log that are not about one append.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(
        "NATS server {found} is too old: Natter needs {needed} or newer \
         (older servers silently ignore atomic batches and multi-filter consumers)"
    )]
    ServerTooOld {
        found: String,
        needed: ServerVersion,
    },
    #[error("JetStream stream: {0}")]
    Stream(String),
    #[error("reading the log: {0}")]
    Read(String),
    #[error("stored event at sequence {sequence} is malformed: {reason}")]
    Malformed { sequence: u64, reason: String },
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
#[error("append failed ({kind:?}): {message}")]
pub struct AppendError {
    kind: AppendErrorKind,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendErrorKind {
    /// A subject's last sequence was not the expected one: someone else wrote first.
    /// Nothing of the batch was stored.
    Conflict,
    /// The server has seen an event id of this atomic batch already: the batch was
    /// made before (by another call), or an id was reused. Nothing new was stored.
    Duplicate,
    /// The batch or event is too large for the server.
    TooLarge,
    /// The log cannot take writes now (no stream leader, not connected, overloaded), and
    /// nothing was stored. Retrying later is safe.
    Unavailable,
    /// The append was sent but not confirmed (no answer in time, connection lost) and
    /// could not be resolved: it may or may not be stored. Retrying with the same ids
    /// (client id, Idempotency-Key) is safe and settles it.
    OutcomeUnknown,
    /// The server refused the append for another reason; nothing was stored.
    Other,
}

impl AppendError {
    pub(crate) fn new(kind: AppendErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> AppendErrorKind {
        self.kind
    }
}
