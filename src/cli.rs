//! The subcommands other than the benchmarks.

use anyhow::Context as _;

use crate::app::{Application, connect_log, connect_postgres};
use crate::settings::{Cli, Command, ProjectionsCommand, Settings};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(serve) => {
            let app = Application::build(&cli.global, &serve).await?;
            tracing::info!(address = %app.local_addr()?, "listening");
            app.run(shutdown_signal()).await
        }
        Command::Migrate => migrate(&cli.global).await,
        Command::Projections {
            command: ProjectionsCommand::Status { json },
        } => projections_status(&cli.global, json).await,
        Command::Openapi => {
            print!("{}", natter_api::openapi_json());
            Ok(())
        }
        Command::Bench { command } => crate::bench::run(&cli.global, command).await,
        Command::Events { command } => crate::events::run(&cli.global, command).await,
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

async fn projections_status(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let log = connect_log(settings).await?;
    let pool = connect_postgres(settings).await?;
    let statuses = natter_projections::status(&pool, &log).await?;
    if json {
        let rows: Vec<serde_json::Value> = statuses
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name, "version": s.version, "checkpoint": s.checkpoint,
                    "lag": s.lag, "updated_at": s.updated_at.to_string(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<24} {:>7} {:>12} {:>10}  UPDATED",
        "PROJECTION", "VERSION", "CHECKPOINT", "LAG"
    );
    for s in &statuses {
        println!(
            "{:<24} {:>7} {:>12} {:>10}  {}",
            s.name, s.version, s.checkpoint, s.lag, s.updated_at
        );
    }
    if statuses.is_empty() {
        println!("(no projection has run yet)");
    }
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
