//! `loadgen settle`: waits until the server has done the work seeding left behind (events to
//! relay, timed steps such as invitation emails due) and its own SQL activity has died down, so a
//! load measures reads only.
use std::time::{Duration, Instant};

use clap::Args;

use crate::Target;
use crate::client::Gql;

#[derive(Args)]
pub struct SettleArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:18080")]
    url: String,
    /// Quiet enough: at most this many SQL statements per second over 2 s.
    #[arg(long, default_value_t = 100.0)]
    max_rate: f64,
    /// Give up (without failing) after this long.
    #[arg(long, default_value = "10m", value_parser = crate::parse_duration)]
    timeout: Duration,
}

pub async fn settle(args: SettleArgs) -> anyhow::Result<()> {
    // `/metrics` needs no token.
    let target = Target {
        url: args.url,
        token: String::new(),
    };
    let gql = Gql::new(&target, 1)?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let rate = gql.background_rate(Duration::from_secs(2)).await?;
        let backlog = gql.metric("clearhire_outbox_backlog").await?;
        let due = gql.metric("clearhire_tasks_due").await?;
        let waited = started.elapsed().as_secs_f64();
        let state = format!(
            "{rate:.1} SQL statements/s while idle, {backlog} events to relay, {due} timed steps due"
        );
        if rate <= args.max_rate && backlog == 0 && due == 0 {
            println!("settled after {waited:.0}s: {state}");
            return Ok(());
        }
        if started.elapsed() >= args.timeout {
            println!("NOT settled after {waited:.0}s: {state}");
            return Ok(());
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            eprintln!("  after {waited:.0}s: {state}; waiting");
            last_report = Instant::now();
        }
    }
}
