//! `loadgen fanout`: many graphql-transport-ws subscribers on one api process, then one status
//! change; reports how many received it and how fast, and the server's memory per idle
//! subscriber.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::Target;
use crate::client::Gql;
use crate::procfs::status_kb;
use crate::stats::{Latencies, micros};

#[derive(Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub target: Target,
    /// Subscribers to open.
    #[arg(long, default_value_t = 20_000)]
    pub subscribers: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// The api process, for its memory.
    #[arg(long)]
    pub server_pid: u32,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SUBSCRIPTION: &str = "subscription { checkStatusChanged { checkId state } }";

/// Opens one subscriber; returns once it is subscribed, then waits for its first event and
/// returns the time it arrived with the still open connection (closed only once every subscriber
/// has reported, so no connection's teardown overlaps the fan-out being measured).
async fn subscriber(
    ws_url: String,
    token: String,
    ready: tokio::sync::mpsc::UnboundedSender<anyhow::Result<()>>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Option<(Instant, Ws)> {
    let res: anyhow::Result<_> = async {
        let mut req = ws_url.as_str().into_client_request()?;
        req.headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        // A small read buffer, as the server has: tungstenite zero-fills its whole read buffer
        // (128 KiB by default) on every read, which would be the load generator's own cost.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(4 * 1024);
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(req, Some(config), false).await?;
        ws.send(Message::text(
            json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})
                .to_string(),
        ))
        .await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t)?;
                    if v["type"] == "connection_ack" {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                other => bail!("no connection_ack: {other:?}"),
            }
        }
        ws.send(Message::text(
            json!({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
                .to_string(),
        ))
        .await?;
        Ok(ws)
    }
    .await;
    let mut ws = match res {
        Ok(ws) => {
            let _ = ready.send(Ok(()));
            ws
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            drop(permit);
            return None;
        }
    };
    drop((ready, permit));
    // Already waiting on the socket when the change is made: nothing in the load generator wakes
    // up for it but the arrival itself. The caller gives up on a subscriber after 30 s.
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"next\"") => {
                return Some((Instant::now(), ws));
            }
            Some(Ok(Message::Ping(p))) => {
                let _ = ws.send(Message::Pong(p)).await;
            }
            Some(Ok(_)) => {}
            _ => return None,
        }
    }
}

pub async fn fanout(args: FanoutArgs) -> anyhow::Result<()> {
    let gql = Gql::new(&args.target, 4)?;
    let pid = args.server_pid.to_string();
    let rss_before = status_kb(&pid, "VmRSS").context("server RSS")?;
    let base = args.target.url.trim_end_matches('/');
    let ws_url = format!(
        "{}/graphql",
        base.replacen("http://", "ws://", 1)
            .trim_end_matches("/graphql")
    );
    // The change to fan out: a check to withdraw, made before anyone subscribes.
    let c = gql
        .query(
            "mutation { createCandidate(input: {firstName: \"Fan\", lastName: \"Out\", email: \"fan.out@example.com\"}) { id } }",
            json!({}),
        )
        .await?;
    let cand = c["createCandidate"]["id"]
        .as_str()
        .context("id")?
        .to_string();
    let k = gql
        .query(
            "mutation($c: ID!) { startCheck(input: {candidateId: $c, doChecks: false}) { id } }",
            json!({"c": cand}),
        )
        .await?;
    let check = k["startCheck"]["id"].as_str().context("id")?.to_string();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let limit = Arc::new(Semaphore::new(args.connect_concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.subscribers);
    for _ in 0..args.subscribers {
        let permit = limit.clone().acquire_owned().await?;
        let (url, token, ready) = (ws_url.clone(), args.target.token.clone(), ready_tx.clone());
        tasks.push(tokio::spawn(subscriber(url, token, ready, permit)));
    }
    drop(ready_tx);
    let (mut ok, mut failed) = (0usize, 0usize);
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ok(()) => ok += 1,
            Err(e) => {
                if failed < 5 {
                    eprintln!("subscriber failed: {e:#}");
                }
                failed += 1;
            }
        }
        if ok + failed == args.subscribers {
            break;
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    eprintln!("{ok} subscribed, {failed} failed, in {connect_secs:.1}s");
    // Idle memory once everyone is in.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle = status_kb(&pid, "VmRSS").context("server RSS")?;

    let t0 = Instant::now();
    // For lining a profile up with the fan-out (`perf record -k CLOCK_REALTIME`, `--time`).
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!("change made at unix time {:.6}", unix.as_secs_f64());
    let give_up = tokio::time::Instant::from_std(t0 + Duration::from_secs(30));
    gql.query(
        "mutation($c: ID!) { transitionCheck(input: {checkId: $c, status: withdrawn}) { id } }",
        json!({"c": check}),
    )
    .await?;
    let mut lat = Vec::with_capacity(ok);
    let mut open = Vec::with_capacity(ok);
    for t in tasks {
        let abort = t.abort_handle();
        let Ok(done) = tokio::time::timeout_at(give_up, t).await else {
            abort.abort();
            continue;
        };
        if let Ok(Some((at, ws))) = done {
            lat.push(micros(at.saturating_duration_since(t0)));
            open.push(ws);
        }
    }
    drop(open);
    let received = lat.len();
    let l = Latencies::new(lat);
    let per_sub_kb = if ok > 0 {
        (rss_idle.saturating_sub(rss_before)) as f64 / ok as f64
    } else {
        0.0
    };
    let result = json!({
        "kind": "fanout",
        "subscribers": ok,
        "failed_to_subscribe": failed,
        "connect_seconds": (connect_secs * 10.0).round() / 10.0,
        "received": received,
        "p50_ms": l.percentile_ms(50.0),
        "p99_ms": l.percentile_ms(99.0),
        "max_ms": l.max_ms(),
        "server_rss_before_mb": rss_before as f64 / 1024.0,
        "server_rss_idle_mb": rss_idle as f64 / 1024.0,
        "rss_per_idle_subscriber_kb": (per_sub_kb * 10.0).round() / 10.0,
    });
    println!("RESULT {result}");
    if received < ok || failed > 0 {
        bail!(
            "{} subscribers missed the change, {failed} failed to subscribe",
            ok - received
        );
    }
    Ok(())
}
