//! `loadgen run`: N workers on one keep-alive connection pool POST the same kind of query until
//! the deadline. Only responses completed inside the measured window (after the warm-up) count.
//! Before the load, a short sequential probe measures SQL statements per request exactly (and,
//! for `list`, at several page sizes).
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use tokio::time::sleep_until;

use crate::Target;
use crate::client::Gql;
use crate::procfs::{CpuSnapshot, RssSampler, status_kb};
use crate::stats::{Latencies, micros};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryKind {
    /// `candidate(id)` with its checks, for random ids from a sample.
    Candidate,
    /// The first page of `candidates` with each candidate's checks.
    List,
}

impl QueryKind {
    fn name(self) -> &'static str {
        match self {
            QueryKind::Candidate => "candidate",
            QueryKind::List => "list",
        }
    }
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long, value_enum)]
    query: QueryKind,
    /// Requests in flight at once (one worker task each).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured window.
    #[arg(long, default_value = "20s", value_parser = crate::parse_duration)]
    duration: Duration,
    /// Load before the measured window, not counted.
    #[arg(long, default_value = "3s", value_parser = crate::parse_duration)]
    warmup: Duration,
    /// Server process to sample `VmRSS` (every 250 ms), `VmHWM` and CPU time of.
    #[arg(long)]
    server_pid: Option<u32>,
    /// How many candidate ids to draw random ids from (`candidate`).
    #[arg(long, default_value_t = 1000)]
    sample: usize,
    /// Page size of the `list` query.
    #[arg(long, default_value_t = 50)]
    page_size: u32,
    /// Free-form label copied into the summary line (e.g. `sqlite`).
    #[arg(long, default_value = "")]
    label: String,
}

const CANDIDATE_QUERY: &str = "query($id: ID!) { candidate(id: $id) { id turnId firstName lastName email \
                               checks { id status statusLabel createdAt } } }";
const ID_PAGE_QUERY: &str = "query($after: String) { candidates(first: 100, after: $after) { \
                             edges { node { id } } pageInfo { hasNextPage endCursor } } }";

fn list_query(page_size: u32) -> String {
    format!(
        "{{ candidates(first: {page_size}) {{ edges {{ node {{ id firstName lastName email checks {{ id status }} }} }} \
         pageInfo {{ hasNextPage endCursor }} }} }}"
    )
}

fn body(query: &str, variables: Value) -> String {
    json!({ "query": query, "variables": variables }).to_string()
}

/// Up to `want` candidate ids, paging through `candidates(first: 100)`.
async fn sample_ids(gql: &Gql, want: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(want);
    let mut after = Value::Null;
    while ids.len() < want {
        let data = gql
            .query(ID_PAGE_QUERY, json!({ "after": after }))
            .await
            .context("sampling candidate ids")?;
        let conn = &data["candidates"];
        let edges = conn["edges"]
            .as_array()
            .context("candidates.edges is not a list")?;
        ids.extend(
            edges
                .iter()
                .filter_map(|e| e["node"]["id"].as_str().map(str::to_string)),
        );
        if conn["pageInfo"]["hasNextPage"] != Value::Bool(true) {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    ids.truncate(want);
    if ids.is_empty() {
        bail!("the server has no candidates: run `loadgen seed` first");
    }
    Ok(ids)
}

/// xorshift64*: enough randomness to pick ids, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

/// SQL statements per request of `n` sequential requests with `bodies` (round robin): as
/// counted, and net of the server's own `background` statements per second.
async fn probe_statements(
    gql: &Gql,
    bodies: &[String],
    n: usize,
    background: f64,
) -> anyhow::Result<(f64, f64)> {
    // One request first so a token-cache refill is not charged to the probe.
    gql.probe(bodies[0].clone())
        .await
        .context("probe request")?;
    let before = gql.statements_total().await?;
    let started = Instant::now();
    for i in 0..n {
        gql.probe(bodies[i % bodies.len()].clone())
            .await
            .context("probe request")?;
    }
    let after = gql.statements_total().await?;
    let counted = after.saturating_sub(before) as f64;
    let net = (counted - background * started.elapsed().as_secs_f64()).max(0.0);
    Ok((counted / n as f64, net / n as f64))
}

#[derive(Default)]
struct WorkerOut {
    latencies_us: Vec<u32>,
    errors: u64,
    warmup_ok: u64,
    warmup_errors: u64,
    late: u64,
    bytes: u64,
    first_error: Option<String>,
}

struct Plan {
    gql: Gql,
    bodies: Vec<String>,
    window_start: Instant,
    end: Instant,
}

async fn worker(plan: Arc<Plan>, seed: u64) -> WorkerOut {
    let mut rng = Rng(seed | 1);
    let mut out = WorkerOut {
        latencies_us: Vec::with_capacity(1 << 14),
        ..Default::default()
    };
    loop {
        let started = Instant::now();
        if started >= plan.end {
            return out;
        }
        let body = plan.bodies[rng.below(plan.bodies.len())].clone();
        let result = plan.gql.probe(body).await;
        let done = Instant::now();
        if done > plan.end {
            out.late += 1;
        } else if done < plan.window_start {
            match result {
                Ok(_) => out.warmup_ok += 1,
                Err(_) => out.warmup_errors += 1,
            }
        } else {
            match result {
                Ok(bytes) => {
                    out.latencies_us.push(micros(done - started));
                    out.bytes += bytes as u64;
                }
                Err(e) => {
                    out.errors += 1;
                    if out.first_error.is_none() {
                        out.first_error = Some(format!("{e:#}"));
                    }
                }
            }
        }
    }
}

fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let gql = Gql::new(&args.target, args.concurrency)?;
    let pid = args.server_pid.map(|p| p.to_string());
    if let Some(p) = &pid
        && status_kb(p, "VmRSS").is_none()
    {
        bail!("cannot read /proc/{p}/status: is --server-pid right?");
    }

    // Request bodies, prepared once; workers only clone them. One checked request (or a few)
    // first shows what the load asks for.
    let bodies: Vec<String> = match args.query {
        QueryKind::Candidate => {
            let ids = sample_ids(&gql, args.sample).await?;
            let mut checks = Vec::new();
            for id in ids.iter().take(12) {
                let data = gql.query(CANDIDATE_QUERY, json!({ "id": id })).await?;
                checks.push(data["candidate"]["checks"].as_array().map_or(0, Vec::len));
            }
            println!(
                "{} candidate ids sampled; checks of the first {}: {checks:?}",
                ids.len(),
                checks.len()
            );
            ids.iter()
                .map(|id| body(CANDIDATE_QUERY, json!({ "id": id })))
                .collect()
        }
        QueryKind::List => {
            let query = list_query(args.page_size);
            let data = gql.query(&query, json!({})).await?;
            let edges = data["candidates"]["edges"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let checks: usize = edges
                .iter()
                .map(|e| e["node"]["checks"].as_array().map_or(0, Vec::len))
                .sum();
            println!("list page: {} candidates, {checks} checks", edges.len());
            vec![body(&query, json!({}))]
        }
    };

    // The server runs statements of its own (outbox relay, sweepers): measure their rate while
    // idle, so per-request figures can be given net of them.
    let background = gql.background_rate(Duration::from_secs(2)).await?;
    println!("background: {background:.1} SQL statements/s while idle (outbox relay, sweepers)");

    // Statements per request, sequentially, before the load.
    let mut probe = serde_json::Map::new();
    match args.query {
        QueryKind::Candidate => {
            let (spr, net) = probe_statements(&gql, &bodies, 50, background).await?;
            println!(
                "probe: {spr:.2} SQL statements/request, {net:.2} net of background (50 sequential requests)"
            );
            probe.insert("candidate".into(), json!(round(net, 2)));
        }
        QueryKind::List => {
            for size in [1u32, 10, 50, 100] {
                let b = vec![body(&list_query(size), json!({}))];
                let (spr, net) = probe_statements(&gql, &b, 20, background).await?;
                println!(
                    "probe: candidates(first: {size:>3}) {spr:.2} SQL statements/request, {net:.2} net of \
                     background (20 sequential requests)"
                );
                probe.insert(format!("first_{size}"), json!(round(net, 2)));
            }
        }
    }

    println!(
        "load: {} x {}, warm-up {:?}, measured {:?}",
        args.query.name(),
        args.concurrency,
        args.warmup,
        args.duration
    );
    let t0 = Instant::now();
    let plan = Arc::new(Plan {
        gql: gql.clone(),
        bodies,
        window_start: t0 + args.warmup,
        end: t0 + args.warmup + args.duration,
    });
    let rss = pid.clone().map(RssSampler::start);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..args.concurrency.max(1) {
        let seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(w as u64 + 1);
        workers.spawn(worker(plan.clone(), seed));
    }

    sleep_until(plan.window_start.into()).await;
    let statements_before = gql.statements_total().await;
    let cpu_before = CpuSnapshot::take(pid.as_deref());
    sleep_until(plan.end.into()).await;
    let statements_after = gql.statements_total().await;
    let cpu = CpuSnapshot::take(pid.as_deref()).since(&cpu_before, args.duration.as_secs_f64());

    let mut all = WorkerOut::default();
    while let Some(joined) = workers.join_next().await {
        let out = joined.context("a load worker panicked")?;
        all.latencies_us.extend_from_slice(&out.latencies_us);
        all.errors += out.errors;
        all.warmup_ok += out.warmup_ok;
        all.warmup_errors += out.warmup_errors;
        all.late += out.late;
        all.bytes += out.bytes;
        if all.first_error.is_none() {
            all.first_error = out.first_error;
        }
    }
    let max_rss_kb = match rss {
        Some(s) => Some(s.finish().await),
        None => None,
    };
    let hwm_kb = pid.as_deref().and_then(|p| status_kb(p, "VmHWM"));

    let lat = Latencies::new(std::mem::take(&mut all.latencies_us));
    let ok = lat.len() as u64;
    let requests = ok + all.errors;
    let secs = args.duration.as_secs_f64();
    let rps = ok as f64 / secs;
    let statements = match (statements_before, statements_after) {
        (Ok(b), Ok(a)) => Some(a.saturating_sub(b)),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("warning: could not read /metrics around the window: {e:#}");
            None
        }
    };
    let spr = statements.map(|s| s as f64 / requests.max(1) as f64);
    let spr_net =
        statements.map(|s| (s as f64 - background * secs).max(0.0) / requests.max(1) as f64);
    let mb = |kb: u64| kb as f64 / 1024.0;

    println!(
        "requests {requests} ({ok} ok, {} errors) in {secs:.1}s = {rps:.0} req/s; warm-up {} ok / {} errors; {} \
         finished after the window (not counted)",
        all.errors, all.warmup_ok, all.warmup_errors, all.late
    );
    println!(
        "latency ms: mean {:.2}  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        lat.mean_ms(),
        lat.percentile_ms(50.0),
        lat.percentile_ms(90.0),
        lat.percentile_ms(99.0),
        lat.max_ms()
    );
    println!(
        "responses: {:.0} bytes on average; SQL statements/request under load: {}, {} net of background",
        all.bytes as f64 / ok.max(1) as f64,
        spr.map_or("n/a".to_string(), |s| format!("{s:.2}")),
        spr_net.map_or("n/a".to_string(), |s| format!("{s:.2}"))
    );
    if let Some(kb) = max_rss_kb {
        println!(
            "server memory: max VmRSS {:.1} MiB during the run, VmHWM {} MiB",
            mb(kb),
            hwm_kb.map_or("n/a".into(), |k| format!("{:.1}", mb(k)))
        );
    }
    let pct = |c: Option<f64>| c.map_or("n/a".to_string(), |c| format!("{:.0}%", c * 100.0));
    println!(
        "CPU over the window (100% = one core): server {}, loadgen {}, everything else {}; machine {} busy \
         of {} cores",
        pct(cpu.server_cores),
        pct(cpu.loadgen_cores),
        pct(cpu.other_cores),
        cpu.machine_busy_pct
            .map_or("n/a".into(), |p| format!("{p:.0}%")),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if all.errors > 0 || all.warmup_errors > 0 {
        println!(
            "ERRORS: {} in the window, {} in warm-up; first: {}",
            all.errors,
            all.warmup_errors,
            all.first_error.as_deref().unwrap_or("(during warm-up)")
        );
    }
    let summary = json!({
        "label": args.label,
        "query": args.query.name(),
        "concurrency": args.concurrency,
        "duration_s": secs,
        "requests": requests,
        "errors": all.errors,
        "rps": round(rps, 0),
        "mean_ms": round(lat.mean_ms(), 2),
        "p50_ms": round(lat.percentile_ms(50.0), 2),
        "p90_ms": round(lat.percentile_ms(90.0), 2),
        "p99_ms": round(lat.percentile_ms(99.0), 2),
        "max_ms": round(lat.max_ms(), 2),
        "statements_per_request": spr.map(|s| round(s, 2)),
        "statements_per_request_net": spr_net.map(|s| round(s, 2)),
        "background_statements_per_s": round(background, 1),
        "probe_statements_per_request_net": probe,
        "max_rss_mb": max_rss_kb.map(|k| round(mb(k), 1)),
        "hwm_mb": hwm_kb.map(|k| round(mb(k), 1)),
        "server_cpu_pct": cpu.server_cores.map(|c| round(c * 100.0, 0)),
        "loadgen_cpu_pct": cpu.loadgen_cores.map(|c| round(c * 100.0, 0)),
        "other_cpu_pct": cpu.other_cores.map(|c| round(c * 100.0, 0)),
        "machine_busy_pct": cpu.machine_busy_pct.map(|p| round(p, 0)),
    });
    println!("RESULT {summary}");
    if all.errors > 0 || all.warmup_errors > 0 {
        // Visible to scripts: figures were printed, but the run is not clean.
        std::process::exit(2);
    }
    Ok(())
}
