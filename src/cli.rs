//! The `natter` command line: its subcommands, and running them (`serve`, `migrate`,
//! `projections`, `events`, signal handling). `natter bench …` runs the `natter-bench`
//! binary found beside `natter`, with the same arguments.

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::app::{Application, connect_postgres};
use crate::settings::{ServeArgs, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "natter",
    version,
    about = "Natter: an event-sourced messaging backend"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: API, gateway and projections (each role selectable).
    Serve(Box<ServeArgs>),
    /// Apply the read models' SQL migrations.
    Migrate,
    /// Inspect projections.
    Projections {
        #[command(subcommand)]
        command: crate::projections::ProjectionsCommand,
    },
    /// Read the event log: follow it, export it, count it (read-only).
    Events {
        #[command(subcommand)]
        command: crate::events::EventsCommand,
    },
    /// Print the OpenAPI document of the REST API.
    Openapi,
    /// Web Push.
    Push {
        #[command(subcommand)]
        command: PushCommand,
    },
    /// Measure throughput and latency against a raw baseline in the same run (runs the
    /// `natter-bench` binary beside this one; `natter bench --help` lists them).
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PushCommand {
    /// Make a VAPID key pair: prints the private key (for NATTER_VAPID_PRIVATE_KEY) and
    /// the public key clients subscribe with (GET /v1/push/key also gives it).
    Keys,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(serve) => {
            let app = Application::build(&cli.global, &serve).await?;
            tracing::info!(address = %app.local_addr()?, "listening");
            app.run(shutdown_signal()).await
        }
        Command::Migrate => migrate(&cli.global).await,
        Command::Projections { command } => crate::projections::run(&cli.global, command).await,
        Command::Openapi => {
            print!("{}", natter_api::openapi_json());
            Ok(())
        }
        Command::Bench { .. } => bench(),
        Command::Push {
            command: PushCommand::Keys,
        } => {
            let private = natter_push::Vapid::generate();
            let vapid = natter_push::Vapid::new(&private, "mailto:admin@localhost")?;
            println!("NATTER_VAPID_PRIVATE_KEY={private}");
            println!("# public key: {}", vapid.public_key());
            Ok(())
        }
        Command::Events { command } => crate::events::run(&cli.global, command).await,
    }
}

/// Runs `work` on a new multi-threaded runtime and turns its outcome into the process's
/// exit status, printing the error chain: the `main` of `natter` and `natter-bench`.
pub fn run_to_exit(
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs `natter-bench` (from beside this binary) with this command line's arguments but
/// `bench`, so that global flags and the benchmark's own both reach it.
fn bench() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let bench = exe.with_file_name("natter-bench");
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(at) = args.iter().position(|arg| arg == "bench") {
        args.remove(at);
    }
    let status = std::process::Command::new(&bench)
        .args(args)
        .status()
        .with_context(|| {
            format!(
                "running {} (build it: cargo build --release -p natter-bench)",
                bench.display()
            )
        })?;
    if status.success() {
        Ok(())
    } else {
        anyhow::bail!("natter-bench {status}")
    }
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = connect_postgres(settings).await?;
    natter_schema::MIGRATOR
        .run(&pool)
        .await
        .context("applying migrations")?;
    let count = natter_schema::MIGRATOR.iter().count();
    println!("migrations applied ({count} known)");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
