//! The `natter` binary's library: settings, the application that `serve` runs (and that
//! the end-to-end tests and the benchmarks build the same way), and the subcommands. The
//! benchmarks are a binary of their own (`bench/`), which `natter bench` runs.
//!
//! Invariants: `main` only parses, initialises tracing and runs; every `serve` process is
//! built by `Application`, whatever roles it runs (api, gateway, projector), and the tests
//! build the same, so they run the code that serves. `anyhow` is used here and in the
//! benchmarks, never in the library crates. Settings are one clap tree whose every flag
//! also reads a `NATTER_*` variable, and secrets (the database URL) sit in a `Secret` that
//! never prints.

pub mod app;
pub mod cli;
pub mod events;
mod progress;
pub mod projections;
pub mod settings;
pub mod telemetry;

pub use app::Application;
