//! The `natter` binary's library: settings, the application that `serve` runs (and that
//! the end-to-end tests build the same way), the other subcommands, and the benchmarks.

pub mod app;
pub mod bench;
pub mod cli;
pub mod events;
mod progress;
pub mod projections;
pub mod settings;
pub mod telemetry;

pub use app::Application;
