//! The command side: a generic handler that loads an aggregate (from a cache, or the
//! log), decides, and appends with the expected sequence, retrying a bounded number of
//! times on a conflict; and the application's commands built on it.

pub mod accounts;
pub mod chats;
mod handler;
pub mod idempotency;
pub mod media;
pub mod messages;
mod metrics;
pub mod passwords;
pub mod tokens;

pub use handler::{ClaimHolder, CommandError, CommandHandler, Executed, ExtraClaim, claim_state};
pub use metrics::CommandMetrics;
