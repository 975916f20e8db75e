//! `natter-bench`, run as `natter bench …`: the benchmarks live in a binary of their
//! own, so that the server's carries none of their clients (HTTP, WebSocket, images).

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "natter bench",
    bin_name = "natter bench",
    version,
    about = "Measure throughput and latency against a raw baseline in the same run"
)]
struct Cli {
    #[command(flatten)]
    global: natter::settings::Settings,
    #[command(subcommand)]
    command: natter_bench::BenchCommand,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    natter::telemetry::init(cli.global.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(natter_bench::run(&cli.global, cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
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
