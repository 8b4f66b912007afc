//! `loadgen seed`: candidates with valid US profile data, each with 1-3 checks. A candidate may
//! have only one active check, so every check but the newest is withdrawn before the next one
//! starts (`emailed` → `withdrawn` is a legal transition).
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::Target;
use crate::client::Gql;

#[derive(Args)]
pub struct SeedArgs {
    #[command(flatten)]
    target: Target,
    /// How many candidates to create.
    #[arg(long, default_value_t = 10_000)]
    candidates: usize,
    /// Candidates being created at once (each candidate's own mutations run in order).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Most checks per candidate; candidate `i` gets `1 + i % max_checks`.
    #[arg(long, default_value_t = 3)]
    max_checks: usize,
    /// Distinguishes this run's emails and reference ids from earlier runs' (default: the time).
    #[arg(long)]
    tag: Option<String>,
}

const CREATE: &str =
    "mutation($input: CreateCandidateInput!) { createCandidate(input: $input) { id } }";
const START: &str =
    "mutation($input: StartCheckInput!) { startCheck(input: $input) { id status } }";
const TRANSITION: &str =
    "mutation($input: TransitionCheckInput!) { transitionCheck(input: $input) { id status } }";

const FIRST: [&str; 12] = [
    "Ana", "Ben", "Chloe", "Diego", "Emma", "Farah", "Grace", "Hiro", "Ines", "Jamal", "Kira",
    "Liam",
];
const LAST: [&str; 10] = [
    "Nguyen", "Garcia", "Smith", "Okafor", "Kowalski", "Haddad", "Tanaka", "Silva", "Brown",
    "Moreau",
];
const CITIES: [(&str, &str); 4] = [
    ("San Francisco", "941"),
    ("Oakland", "946"),
    ("San Jose", "951"),
    ("Sacramento", "958"),
];

/// The profile of candidate `i`: unique email and reference id, valid phone, ZIP, SSN and DOB.
fn candidate_input(tag: &str, i: usize) -> Value {
    let (city, zip3) = CITIES[i % CITIES.len()];
    // SSN: area 001-899 except 666, group 01-99, serial 0001-9999.
    let mut area = 1 + i % 899;
    if area == 666 {
        area = 667;
    }
    let group = 1 + (i / 899) % 99;
    let serial = 1 + i % 9999;
    json!({
        "firstName": FIRST[i % FIRST.len()],
        "lastName": LAST[(i / FIRST.len()) % LAST.len()],
        "email": format!("bench.{tag}.{i}@example.com"),
        "phone": format!("415555{:04}", i % 10_000),
        "zip": format!("{zip3}{:02}", i % 100),
        "city": city,
        "state": "CA",
        "ssn": format!("{area:03}{group:02}{serial:04}"),
        "dateOfBirth": "1990-01-02",
        "referenceId": format!("bench-{tag}-{i}"),
    })
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> anyhow::Result<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur
            .get(p)
            .with_context(|| format!("response lacks {}", path.join(".")))?;
    }
    cur.as_str()
        .with_context(|| format!("{} is not a string", path.join(".")))
}

#[derive(Default)]
struct Counts {
    candidates: AtomicU64,
    checks: AtomicU64,
    withdrawn: AtomicU64,
    /// Candidates with all their checks done.
    finished: AtomicU64,
}

/// Creates candidate `i` and its checks, one mutation after another.
async fn seed_one(
    gql: &Gql,
    tag: &str,
    i: usize,
    max_checks: usize,
    counts: &Counts,
) -> anyhow::Result<()> {
    let data = gql
        .query(CREATE, json!({ "input": candidate_input(tag, i) }))
        .await
        .with_context(|| format!("createCandidate #{i}"))?;
    let candidate_id = str_at(&data, &["createCandidate", "id"])?.to_string();
    counts.candidates.fetch_add(1, Ordering::Relaxed);
    let n = 1 + i % max_checks.max(1);
    for k in 0..n {
        let data = gql
            .query(
                START,
                json!({ "input": { "candidateId": candidate_id, "doChecks": true } }),
            )
            .await
            .with_context(|| format!("startCheck #{k} of candidate #{i}"))?;
        let status = str_at(&data, &["startCheck", "status"])?;
        if status != "emailed" {
            bail!("startCheck of candidate #{i} returned status {status}, expected emailed");
        }
        counts.checks.fetch_add(1, Ordering::Relaxed);
        if k + 1 < n {
            let check_id = str_at(&data, &["startCheck", "id"])?.to_string();
            let data = gql
                .query(
                    TRANSITION,
                    json!({ "input": { "checkId": check_id, "status": "withdrawn" } }),
                )
                .await
                .with_context(|| format!("withdrawing check #{k} of candidate #{i}"))?;
            let status = str_at(&data, &["transitionCheck", "status"])?;
            if status != "withdrawn" {
                bail!("transitionCheck returned status {status}, expected withdrawn");
            }
            counts.withdrawn.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

pub async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    let gql = Gql::new(&args.target, args.concurrency)?;
    let tag = args.tag.clone().unwrap_or_else(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("{ms}")
    });
    let statements_before = gql.statements_total().await.context("is the server up?")?;
    println!(
        "seeding {} candidates with 1-{} checks each, {} at a time (tag {tag})",
        args.candidates, args.max_checks, args.concurrency
    );

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (gql, tag, next, failed, counts) = (
            gql.clone(),
            tag.clone(),
            next.clone(),
            failed.clone(),
            counts.clone(),
        );
        let (total, max_checks) = (args.candidates, args.max_checks);
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                if let Err(e) = seed_one(&gql, &tag, i, max_checks, &counts).await {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                let done = counts.finished.fetch_add(1, Ordering::Relaxed) + 1;
                if done % 1000 == 0 {
                    eprintln!(
                        "  {done} candidates after {:.1}s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        });
    }
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        let result = joined.context("a seeding task panicked").and_then(|r| r);
        if let Err(e) = result
            && first_error.is_none()
        {
            first_error = Some(e);
        }
    }
    if let Some(e) = first_error {
        return Err(e.context("seeding failed"));
    }

    let secs = started.elapsed().as_secs_f64();
    let statements = gql
        .statements_total()
        .await?
        .saturating_sub(statements_before);
    let (c, k, w) = (
        counts.candidates.load(Ordering::Relaxed),
        counts.checks.load(Ordering::Relaxed),
        counts.withdrawn.load(Ordering::Relaxed),
    );
    let mutations = c + k + w;
    println!(
        "seeded {c} candidates, {k} checks ({w} withdrawn) in {secs:.1}s: {:.0} mutations/s, {:.1} SQL statements/mutation",
        mutations as f64 / secs,
        statements as f64 / mutations.max(1) as f64
    );
    println!(
        "SEED {}",
        json!({
            "candidates": c, "checks": k, "withdrawn": w, "mutations": mutations,
            "seconds": (secs * 10.0).round() / 10.0,
            "mutations_per_s": (mutations as f64 / secs).round(),
            "statements": statements,
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_valid_and_unique() {
        let mut emails = std::collections::HashSet::new();
        for i in 0..20_000 {
            let v = candidate_input("t", i);
            let ssn = v["ssn"].as_str().unwrap_or_default();
            assert_eq!(ssn.len(), 9);
            assert!(!ssn.starts_with('9') && !ssn.starts_with("000") && !ssn.starts_with("666"));
            assert_ne!(&ssn[3..5], "00");
            assert_ne!(&ssn[5..], "0000");
            let phone = v["phone"].as_str().unwrap_or_default();
            assert_eq!(phone.len(), 10);
            assert_eq!(v["zip"].as_str().map(str::len), Some(5));
            assert!(emails.insert(v["email"].to_string()));
        }
    }
}
