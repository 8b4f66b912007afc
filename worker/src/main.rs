//! The `worker` command: the event relay and the job workers without the HTTP server, for the
//! scale-out deployment (any number beside any number of api processes, all with `REDIS_URL`
//! and the same `DATABASE_URL`). Configured by the same variables as the api; `--help` lists
//! them.
#![forbid(unsafe_code)]

use clap::Parser;
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
    /// Also run the outbox relay and the sweeper in this process.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    relay: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    worker::setup::init_tracing(&cli.config);
    worker::setup::run_worker(&cli.config, cli.relay).await
}
