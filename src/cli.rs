//! The subcommands other than the benchmarks.

use anyhow::Context as _;

use crate::app::{Application, connect_postgres};
use crate::settings::{Cli, Command, Settings};

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
