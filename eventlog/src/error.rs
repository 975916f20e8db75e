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
    /// The server has seen an event id of this batch, but the batch is not in the log
    /// as a whole (an id was reused for different events).
    Duplicate,
    /// The batch or event is too large for the server.
    TooLarge,
    /// The server did not answer in time; the append may or may not have happened, and
    /// retrying with the same event ids is safe (deduplication).
    Timeout,
    /// Anything else: connection lost, stream missing, server refused.
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
