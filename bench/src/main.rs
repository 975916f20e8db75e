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
    natter::cli::run_to_exit(natter_bench::run(&cli.global, cli.command))
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
