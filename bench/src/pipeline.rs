//! End-to-end pipeline benchmarks: work started through GraphQL, measured until the webhook it
//! causes reaches a local receiver on 127.0.0.1.
//!
//! - `screen`: checks started through the hosted consent form (two mutations each), run through
//!   the sandbox, timed until the results webhook reaches the check's `callback_url`.
//! - `webhooks`: status changes made through `transitionCheck`, timed until the signed status
//!   webhook reaches a subscribed endpoint.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Route, handler, post};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::Target;
use crate::client::Gql;
use crate::stats::{Latencies, micros};

#[derive(Args)]
pub struct PipelineArgs {
    #[command(flatten)]
    pub target: Target,
    /// How many checks (screen) or status changes (webhooks).
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long to wait for the last webhooks after the last request.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    pub drain: Duration,
    /// A label for the result line (e.g. `scale-out`).
    #[arg(long, default_value = "")]
    pub label: String,
}

/// Arrival times by key, as the receiver saw them.
#[derive(Clone, Default)]
struct Arrivals {
    at: Arc<Mutex<HashMap<String, Instant>>>,
    key: &'static str,
    /// Only bodies whose `state` is this count (webhooks), or all (`None`).
    state: Option<&'static str>,
    total: Arc<std::sync::atomic::AtomicU64>,
}

#[handler]
async fn receive(body: String, arrivals: Data<&Arrivals>) -> &'static str {
    let now = Instant::now();
    arrivals
        .total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Ok(v) = serde_json::from_str::<Value>(&body)
        && arrivals.state.is_none_or(|s| v["state"] == s)
        && let Some(k) = v[arrivals.key].as_str()
        && let Ok(mut at) = arrivals.at.lock()
    {
        at.entry(k.to_string()).or_insert(now);
    }
    "ok"
}

async fn start_receiver(arrivals: Arrivals) -> anyhow::Result<String> {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .context("binding the receiver")?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .context("receiver address")?;
    let app = Route::new().at("/hook", post(receive)).data(arrivals);
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    Ok(format!("http://{addr}/hook"))
}

/// A unique valid SSN for the n-th candidate of a run.
fn ssn(n: usize) -> String {
    let serial = n % 9999 + 1;
    let group = (n / 9999) % 98 + 1;
    let area = 100 + n / (9999 * 98);
    format!("{area:03}-{group:02}-{serial:04}")
}

fn run_tag() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    )
}

/// Waits for every key to arrive (or the drain time to pass) and prints the result line.
async fn report(
    kind: &str,
    args: &PipelineArgs,
    arrivals: &Arrivals,
    started: HashMap<String, Instant>,
    first: Instant,
    errors: usize,
) -> anyhow::Result<()> {
    let sent_done = Instant::now();
    let deadline = sent_done + args.drain;
    loop {
        let got = arrivals.at.lock().map(|a| a.len()).unwrap_or(0);
        if got >= started.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at = arrivals
        .at
        .lock()
        .map_err(|_| anyhow::anyhow!("receiver state poisoned"))?
        .clone();
    let mut lat = Vec::with_capacity(started.len());
    let mut last = first;
    for (k, s) in &started {
        if let Some(a) = at.get(k) {
            lat.push(micros(a.saturating_duration_since(*s)));
            last = last.max(*a);
        }
    }
    let delivered = lat.len();
    let lost = started.len() - delivered;
    let l = Latencies::new(lat);
    let secs = last.duration_since(first).as_secs_f64();
    let result = json!({
        "kind": kind,
        "label": args.label,
        "count": started.len(),
        "errors": errors,
        "delivered": delivered,
        // Not at the receiver by the end of the drain time.
        "lost": lost,
        "webhooks_received": arrivals.total.load(std::sync::atomic::Ordering::Relaxed),
        "seconds": (secs * 100.0).round() / 100.0,
        "per_second": if secs > 0.0 { (delivered as f64 / secs).round() } else { 0.0 },
        "submit_seconds": (sent_done.duration_since(first).as_secs_f64() * 100.0).round() / 100.0,
        "p50_ms": l.percentile_ms(50.0),
        "p90_ms": l.percentile_ms(90.0),
        "p99_ms": l.percentile_ms(99.0),
        "max_ms": l.max_ms(),
        "concurrency": args.concurrency,
    });
    println!("RESULT {result}");
    if lost > 0 || errors > 0 {
        bail!("{lost} lost, {errors} request errors");
    }
    Ok(())
}

/// The signature every hosted-form submission carries: Turn's example 1×1 PNG.
const SIGNATURE_PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVQYV2NgYAAAAAMAAWgmWQ0AAAAASUVORK5CYII=";
const FORM: &str = "mutation { createConsentForm(zipcode: \"94107\") { formId } }";
const SUBMIT: &str = "mutation($i: SubmitConsentFormInput!) { submitConsentForm(input: $i) { outcome check { id } } }";

/// Runs `work` once per item with at most `concurrency` in flight; returns each outcome with the
/// instant its work started.
async fn run_bounded<T, R, F, Fut>(
    items: impl IntoIterator<Item = T>,
    concurrency: usize,
    work: F,
) -> anyhow::Result<Vec<(Instant, anyhow::Result<R>)>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<R>> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::new();
    for item in items {
        let permit = limit.clone().acquire_owned().await?;
        let fut = work(item);
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            (Instant::now(), fut.await)
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await?);
    }
    Ok(out)
}

/// The start time of each item that succeeded (by the key its work returned), and how many
/// failed (the first few are printed).
fn started_and_errors(
    outcomes: Vec<(Instant, anyhow::Result<String>)>,
) -> (HashMap<String, Instant>, usize) {
    let mut started = HashMap::with_capacity(outcomes.len());
    let mut errors = 0;
    for (t0, r) in outcomes {
        match r {
            Ok(key) => {
                started.insert(key, t0);
            }
            Err(e) => {
                if errors < 5 {
                    eprintln!("request failed: {e:#}");
                }
                errors += 1;
            }
        }
    }
    (started, errors)
}

/// `loadgen screen`: checks through the hosted form to the results webhook.
pub async fn screen(args: PipelineArgs) -> anyhow::Result<()> {
    let gql = Gql::new(&args.target, args.concurrency)?;
    let arrivals = Arrivals {
        key: "callback_uuid",
        ..Default::default()
    };
    let url = start_receiver(arrivals.clone()).await?;
    let tag = run_tag();
    let first = Instant::now();
    let outcomes = run_bounded(0..args.count, args.concurrency, |n| {
        let (gql, url, tag) = (gql.clone(), url.clone(), tag.clone());
        async move {
            let now = chrono::Utc::now().to_rfc3339();
            let f = gql.query(FORM, json!({})).await?;
            let form_id = f["createConsentForm"]["formId"]
                .as_str()
                .context("formId")?
                .to_string();
            let input = json!({
                "formId": form_id, "firstName": "Bench", "lastName": format!("Candidate{n}"),
                "noMiddleName": true, "email": format!("bench.{tag}.{n}@example.com"),
                "phone": "4155550134", "dateOfBirth": "1990-04-06", "ssn": ssn(n),
                "address": "1 Market St", "city": "San Francisco", "consentDocument": SIGNATURE_PNG,
                "callbackUrl": url,
                "timestamps": {"welcome": [now], "summaryOfRights": [now], "disclosure": [now],
                    "summaryOfStateRights": [now], "authorizationOfBackgroundInvestigation": [now], "signature": [now]},
                "ipAddress": "127.0.0.1", "userAgent": "loadgen"
            });
            let r = gql.query(SUBMIT, json!({"i": input})).await?;
            Ok(r["submitConsentForm"]["check"]["id"]
                .as_str()
                .context("check id")?
                .to_string())
        }
    })
    .await?;
    let (started, errors) = started_and_errors(outcomes);
    report("screen", &args, &arrivals, started, first, errors).await
}

/// `loadgen webhooks`: status changes through GraphQL to a subscribed endpoint.
pub async fn webhooks(args: PipelineArgs) -> anyhow::Result<()> {
    let gql = Gql::new(&args.target, args.concurrency)?;
    let tag = run_tag();
    // Set-up, not measured: one candidate with an `initiated` check per status change.
    eprintln!("creating {} candidates with initiated checks", args.count);
    let pairs = run_bounded(0..args.count, args.concurrency, |n| {
        let (gql, tag) = (gql.clone(), tag.clone());
        async move {
            let c = gql
                .query(
                    "mutation($e: String!) { createCandidate(input: {firstName: \"Bench\", lastName: \"Hook\", email: $e}) { id } }",
                    json!({"e": format!("hook.{tag}.{n}@example.com")}),
                )
                .await?;
            let cand = c["createCandidate"]["id"].as_str().context("id")?.to_string();
            let k = gql
                .query(
                    "mutation($c: ID!) { startCheck(input: {candidateId: $c, doChecks: false}) { id } }",
                    json!({"c": cand}),
                )
                .await?;
            let check = k["startCheck"]["id"].as_str().context("id")?.to_string();
            Ok((cand, check))
        }
    })
    .await?
    .into_iter()
    .map(|(_, r)| r)
    .collect::<anyhow::Result<Vec<_>>>()?;
    // Let the relay publish the set-up's events before the endpoint exists, so only the
    // measured changes are delivered to it.
    let waited = Instant::now();
    loop {
        let backlog = gql.metric("clearhire_outbox_backlog").await?;
        if backlog == 0 {
            break;
        }
        if waited.elapsed() > Duration::from_secs(600) {
            bail!("the outbox still holds {backlog} events after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "outbox drained {:.1}s after set-up",
        waited.elapsed().as_secs_f64()
    );
    let arrivals = Arrivals {
        key: "worker_id",
        state: Some("withdrawn"),
        ..Default::default()
    };
    let url = start_receiver(arrivals.clone()).await?;
    gql.query(
        "mutation($u: String!) { createWebhookEndpoint(input: {url: $u, eventTypes: [\"check.status_changed\"]}) { id } }",
        json!({"u": url}),
    )
    .await?;
    eprintln!("measuring {} status changes", args.count);
    let first = Instant::now();
    let outcomes = run_bounded(pairs, args.concurrency, |(cand, check)| {
        let gql = gql.clone();
        async move {
            gql.query(
                "mutation($c: ID!) { transitionCheck(input: {checkId: $c, status: withdrawn}) { id } }",
                json!({"c": check}),
            )
            .await?;
            Ok(cand)
        }
    })
    .await?;
    let (started, errors) = started_and_errors(outcomes);
    report("webhooks", &args, &arrivals, started, first, errors).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssns_are_unique_and_valid() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..30_000 {
            let s = ssn(n);
            assert!(seen.insert(s.clone()), "{s} twice");
            assert!(!s.starts_with("000") && !s.starts_with('9') && !s.ends_with("0000"));
            assert!(!s.contains("-00-"), "{s}");
        }
    }
}
