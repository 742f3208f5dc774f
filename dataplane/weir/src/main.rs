//! `weir`: the command that runs a node and manages stream keys.
//!
//! ```text
//! weir serve                    all-in-one node (embedded storage)
//! weir dataplane                a data-plane node (reporting to --control-plane)
//! weir controlplane             the GraphQL control plane on etcd
//! weir chat                     the chat gateway alone (etcd + Redis), for scale-out
//! weir key issue <channel>      print the RTMP server URL and a new stream key
//! weir key revoke <key|id>      revoke a key (running nodes refuse it at once)
//! ```
//! Configuration: defaults < TOML file (`--config`) < `WEIR_*` environment < flags.

mod cli;
mod config;
mod control;
mod keys;
mod serve;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.log.as_deref());
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let config = config::load(cli.config.as_deref(), &cli.node)?;
    match cli.command {
        cli::Command::Serve => serve::all_in_one(config),
        cli::Command::Dataplane => serve::dataplane(config),
        cli::Command::Controlplane => serve::controlplane(config),
        cli::Command::Chat => serve::chat(config),
        cli::Command::Key(k) => keys::run(&config, k),
    }
}

fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = filter
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_env("WEIR_LOG").ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
