//! `loadgen settle`: waits until the server's own SQL activity (the outbox relay publishing
//! what seeding produced, sweepers) has died down, so a load measures reads only.
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
        let waited = started.elapsed().as_secs_f64();
        if rate <= args.max_rate {
            println!("settled after {waited:.0}s: {rate:.1} SQL statements/s while idle");
            return Ok(());
        }
        if started.elapsed() >= args.timeout {
            println!("NOT settled after {waited:.0}s: still {rate:.0} SQL statements/s while idle");
            return Ok(());
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            eprintln!("  {rate:.0} SQL statements/s after {waited:.0}s, waiting");
            last_report = Instant::now();
        }
    }
}
