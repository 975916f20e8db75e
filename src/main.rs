//! The `natter` command: parse settings, build the application, run it.

use clap::Parser as _;

/// glibc's allocator contends on its arena locks under many concurrent tasks; mimalloc
/// does not, and the command path allocates on every event.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = natter::cli::Cli::parse();
    natter::telemetry::init(cli.global.log_format);
    natter::cli::run_to_exit(natter::cli::run(cli))
}
