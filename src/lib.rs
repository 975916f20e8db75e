//! The `natter` binary's library: settings, the application that `serve` runs (and that
//! the end-to-end tests and the benchmarks build the same way), and the subcommands. The
//! benchmarks are a binary of their own (`bench/`), which `natter bench` runs.

pub mod app;
pub mod cli;
pub mod events;
mod progress;
pub mod projections;
pub mod settings;
pub mod telemetry;

pub use app::Application;
