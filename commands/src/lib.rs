//! The command side: a generic handler that loads an aggregate (from a cache, or the
//! log), decides, and appends with the expected sequence, retrying a bounded number of
//! times on a conflict; and the application's commands built on it.

mod handler;
mod metrics;
pub mod users;

pub use handler::{CommandError, CommandHandler, Executed};
pub use metrics::CommandMetrics;
