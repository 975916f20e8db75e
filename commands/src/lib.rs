//! The command side: a generic handler that loads an aggregate (from a cache, or the
//! log), decides, and appends with the expected sequence, retrying a bounded number of
//! times on a conflict; and the application's commands built on it.
//!
//! Invariants:
//! - Nothing is appended that was not decided on the aggregate's state as of the sequence
//!   the append expects; a cached state is never trusted for an answer that appends
//!   nothing (`handler.rs`).
//! - Unique keys (handles, direct chats, invite codes, idempotency keys) are claims on
//!   subjects of their own, taken in the same atomic append as the events that need them.
//! - A failure of the log is `Interrupted::Unavailable` (nothing stored) or
//!   `Interrupted::OutcomeUnknown` (perhaps stored; a retry with the same `client_id` or
//!   `Idempotency-Key` is applied at most once), each with a stable `code()`.
//! - Password hashing never runs on the async runtime (`passwords.rs`).

pub mod accounts;
pub mod chats;
mod handler;
pub mod idempotency;
pub mod media;
pub mod messages;
mod metrics;
pub mod passwords;
pub mod tokens;

pub use handler::{
    Beside, ClaimHolder, CommandError, CommandHandler, Executed, ExtraClaim, claim_state,
    claim_state_current,
};
pub use metrics::CommandMetrics;

use natter_eventlog::{AppendError, AppendErrorKind, LogError};

/// The log could not settle a command now. Retrying is safe: a send with the same
/// `client_id`, or a command with the same `Idempotency-Key`, is applied at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Interrupted {
    #[error(
        "the event log is unavailable (no stream leader, or not connected) and nothing was stored; try again shortly"
    )]
    Unavailable,
    #[error(
        "the event log did not confirm the write, which may or may not be stored; retry with the same client_id or Idempotency-Key"
    )]
    OutcomeUnknown,
}

impl Interrupted {
    /// The stable code both faces answer with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::OutcomeUnknown => "outcome_unknown",
        }
    }

    pub fn of_append(error: &AppendError) -> Option<Self> {
        match error.kind() {
            AppendErrorKind::Unavailable => Some(Self::Unavailable),
            AppendErrorKind::OutcomeUnknown => Some(Self::OutcomeUnknown),
            _ => None,
        }
    }

    /// A read that failed (not connected, no answer) stored nothing.
    pub fn of_log(error: &LogError) -> Option<Self> {
        match error {
            LogError::Read(_) | LogError::Stream(_) => Some(Self::Unavailable),
            LogError::ServerTooOld { .. } | LogError::Malformed { .. } => None,
        }
    }
}

/// A failure that is not the command's fault: of the log, or of the handler.
pub trait Failure: std::fmt::Display {
    fn interrupted(&self) -> Option<Interrupted>;
}

impl Failure for LogError {
    fn interrupted(&self) -> Option<Interrupted> {
        Interrupted::of_log(self)
    }
}

impl Failure for AppendError {
    fn interrupted(&self) -> Option<Interrupted> {
        Interrupted::of_append(self)
    }
}

impl<E: std::error::Error + 'static> Failure for CommandError<E> {
    fn interrupted(&self) -> Option<Interrupted> {
        CommandError::interrupted(self)
    }
}

/// `error` as an interruption where retrying may help, else as `internal`.
pub fn failed<T: From<Interrupted>>(error: impl Failure, internal: fn(String) -> T) -> T {
    match error.interrupted() {
        Some(interrupted) => interrupted.into(),
        None => internal(error.to_string()),
    }
}
