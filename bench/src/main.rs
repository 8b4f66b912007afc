//! `loadgen`: seeds a clearhire server with candidates and checks over GraphQL, then drives
//! read load at it from a separate process and reports throughput, latency percentiles, SQL
//! statements per request (from the server's `/metrics`) and the server's memory.
//!
//! ```text
//! loadgen seed --url http://127.0.0.1:18080 --token $T --candidates 10000
//! loadgen settle --url http://127.0.0.1:18080
//! loadgen run  --url http://127.0.0.1:18080 --token $T --query candidate --concurrency 32 \
//!              --duration 20s --warmup 3s --server-pid $PID
//! ```
//!
//! The token may also come from the `LOADGEN_TOKEN` environment variable, which keeps it out
//! of `ps` output.

mod client;
mod fanout;
mod pipeline;
mod procfs;
mod run;
mod seed;
mod settle;
mod stats;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Seeds a clearhire server and measures it under GraphQL read load"
)]
struct Cli {
    /// Tokio worker threads of the load generator; 0 runs everything on the main thread.
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

/// Where the server is and how to authenticate.
#[derive(Args, Clone)]
pub struct Target {
    /// Base URL of the server (`/graphql` and `/metrics` are appended).
    #[arg(long, default_value = "http://127.0.0.1:18080")]
    pub url: String,
    /// API token (Bearer).
    #[arg(long, env = "LOADGEN_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Subcommand)]
enum Command {
    /// Create candidates, each with 1-3 checks (all but the newest withdrawn).
    Seed(seed::SeedArgs),
    /// Run a read load and report the figures.
    Run(run::RunArgs),
    /// Start checks through the hosted consent form and time them to the results webhook.
    Screen(pipeline::PipelineArgs),
    /// Make status changes through GraphQL and time them to the signed status webhook.
    Webhooks(pipeline::PipelineArgs),
    /// Open many subscriptions, make one status change, and time its arrival at each.
    Fanout(fanout::FanoutArgs),
    /// Wait until the server's own SQL activity (e.g. the outbox relay after seeding) is low.
    Settle(settle::SettleArgs),
}

/// Parses `20s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 20s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{s}`: unit must be ms, s or m")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = if cli.threads == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(cli.threads);
        b
    }
    .enable_all()
    .build()
    .context("building the tokio runtime")?;
    rt.block_on(async {
        match cli.command {
            Command::Seed(args) => seed::seed(args).await,
            Command::Run(args) => run::run(args).await,
            Command::Settle(args) => settle::settle(args).await,
            Command::Screen(args) => pipeline::screen(args).await,
            Command::Fanout(args) => fanout::fanout(args).await,
            Command::Webhooks(args) => pipeline::webhooks(args).await,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("abc").is_err());
    }
}
