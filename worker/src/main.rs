//! The `worker` command: the event relay and the job workers without the HTTP server, for the
//! scale-out deployment (any number beside any number of api processes, all with `REDIS_URL`
//! and the same `DATABASE_URL`). Configured by the same variables as the api; `--help` lists
//! those a worker reads.
#![forbid(unsafe_code)]

use clap::{CommandFactory, FromArgMatches, Parser};
use worker::config::Config;

#[derive(Parser)]
#[command(
    name = "worker",
    version,
    about = "clearhire's event relay and job workers (webhook delivery, scheduled tasks)"
)]
struct Cli {
    #[command(flatten)]
    config: Config,
    /// Also run the outbox relay, the sweeper and the task scheduler in this process.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    relay: bool,
}

/// Settings only api processes read. A worker accepts them (one environment may serve both) but
/// does not list them.
const API_ONLY: [&str; 11] = [
    "embedded_workers",
    "trusted_proxies",
    "live_keepalive_secs",
    "max_page_size",
    "max_query_depth",
    "max_query_complexity",
    "batch_window_ms",
    "token_cache_secs",
    "live_token_check_secs",
    "live_init_timeout_secs",
    "shutdown_grace_secs",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut command = Cli::command();
    for id in API_ONLY {
        command = command.mut_arg(id, |a| a.hide(true));
    }
    let cli = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    worker::setup::init_tracing(&cli.config);
    worker::setup::run_worker(&cli.config, cli.relay).await
}
