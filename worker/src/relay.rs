//! The event relay: outbox rows, in order, to the bus and to deliveries (queued as jobs), then
//! marked published, at least once. Also the sweeper that re-queues deliveries whose job was
//! lost (a crash between commit and enqueue, a flushed Redis).
use std::time::Duration;

use service::Service;
use tokio::sync::watch;

use crate::bus::{Bus, BusEvent};
use crate::queue::JobQueue;

/// What one round of a polling loop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polled {
    /// Found work: poll again at once.
    Worked,
    /// Found nothing: poll again after `idle`, or when woken.
    Idle,
    /// Failed (the database or Redis down; the step logged why): poll again after a pause that
    /// grows with each failure in a row ([`backoff`]).
    Failed,
}

/// Runs `step` until `stop` turns true: again at once while it finds work, otherwise after
/// `idle` or as soon as `wake` resolves, and after a growing pause while it fails. The relay and
/// the task scheduler both poll this way.
pub(crate) async fn poll_until_stopped<F, Fut, W, WFut>(
    idle: Duration,
    mut stop: watch::Receiver<bool>,
    mut wake: W,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Polled>,
    W: FnMut() -> WFut,
    WFut: std::future::Future<Output = ()>,
{
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        let pause = match step().await {
            Polled::Worked => {
                failures = 0;
                continue;
            }
            Polled::Idle => {
                failures = 0;
                idle
            }
            Polled::Failed => {
                failures = failures.saturating_add(1);
                backoff(idle, failures - 1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            // A failing step is not woken early: its pause is the point.
            _ = wake(), if failures == 0 => {}
            // The handle dropped without a shutdown stops the loop too (a closed channel would
            // otherwise answer at once, and the loop would spin).
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// The longest pause of a polling loop whose rounds keep failing.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How long a polling loop waits after its `failures`th failed round in a row (from 0): `idle`,
/// doubling with each failure, at most [`MAX_BACKOFF`]. A database that is down is not asked
/// (and its failure logged) every `idle` over and over.
fn backoff(idle: Duration, failures: u32) -> Duration {
    idle.saturating_mul(1 << failures.min(16))
        .min(MAX_BACKOFF)
        .max(idle)
}

/// Ids drawn by transactions that commit later than this many newer events are still found,
/// by the next full scan.
const RELAY_WINDOW: i64 = 1000;

/// How often the relay scans the whole outbox rather than its window.
const RELAY_FULL_SCAN_EVERY: Duration = Duration::from_secs(2);

/// Where the relay reads from next.
struct RelayCursor {
    /// The highest outbox id relayed so far.
    highest: i64,
    last_full_scan: std::time::Instant,
}

impl RelayCursor {
    /// The id to read after: `None` (from the start) once every `RELAY_FULL_SCAN_EVERY`.
    fn next_after(&mut self) -> Option<i64> {
        if self.last_full_scan.elapsed() >= RELAY_FULL_SCAN_EVERY {
            self.last_full_scan = std::time::Instant::now();
            None
        } else {
            Some(self.highest - RELAY_WINDOW)
        }
    }
}

/// Outbox events deleted per statement by the sweeper, up to ten statements a sweep.
const PRUNE_BATCH: u64 = 1000;

/// Runs until `stop` turns true. When the outbox is empty it waits for a commit of this process
/// (embedded mode: the API's own writes) or `idle`, whichever comes first; in a worker process of
/// its own it polls every `idle`. Each poll reads
/// events after the highest id relayed so far less `RELAY_WINDOW` (ids are drawn at insert and
/// committed in a slightly different order); every `RELAY_FULL_SCAN_EVERY` it reads from the
/// start, for an event whose transaction stayed open past the window.
pub async fn run_relay(
    service: Service,
    bus: Bus,
    queue: JobQueue,
    idle: Duration,
    stop: watch::Receiver<bool>,
) {
    let cursor = std::sync::Mutex::new(RelayCursor {
        highest: 0,
        last_full_scan: std::time::Instant::now(),
    });
    let lock = || cursor.lock().unwrap_or_else(|e| e.into_inner());
    poll_until_stopped(
        idle,
        stop,
        || service.committed(),
        || async {
            let after = lock().next_after();
            let started = std::time::Instant::now();
            let bus2 = bus.clone();
            let res = service
                .relay_batch(after, 200, |events| async move {
                    bus2.publish(events.into_iter().map(BusEvent::from).collect())
                        .await
                })
                .await;
            match res {
                Ok((events, deliveries)) => {
                    if let Some(max) = events.iter().map(|e| e.id).max() {
                        let mut c = lock();
                        c.highest = c.highest.max(max);
                    }
                    let transaction = started.elapsed();
                    if let Err(e) = queue.enqueue_many(&deliveries).await {
                        // Still pending in the database: the sweeper will queue them.
                        tracing::warn!(deliveries = deliveries.len(), error = %e, "relay: enqueue failed");
                    }
                    tracing::debug!(
                        events = events.len(),
                        transaction_us = transaction.as_micros() as u64,
                        enqueue_us = (started.elapsed() - transaction).as_micros() as u64,
                        "relay: batch"
                    );
                    if events.is_empty() {
                        Polled::Idle
                    } else {
                        Polled::Worked
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "relay: batch failed; retrying");
                    Polled::Failed
                }
            }
        },
    )
    .await
}

/// How long a finished job stays in the job store. The job is only a wake-up for its delivery or
/// task row, which keeps the history; this is long enough to look at a recent run in the store.
pub const FINISHED_JOB_RETENTION: Duration = Duration::from_secs(10 * 60);

/// How often the sweeper deletes finished jobs: each time it scans the done and dead sets on
/// Redis once, so not at every sweep.
const JOB_PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Finished jobs deleted per statement (SQLite) or script call (Redis). A Redis script blocks
/// every other client while it runs: 1,000 jobs took 12 ms of Redis time (BENCHMARKS.md), 250
/// keep each call near 3 ms.
const JOB_PRUNE_BATCH: u32 = 250;

/// Re-queues pending deliveries overdue by more than `grace` that lack a queued job (as many as
/// the queue lacks), every `every`; deletes outbox
/// events relayed more than `service::webhook::OUTBOX_RETENTION` ago and, every
/// `JOB_PRUNE_EVERY`, jobs finished more than `FINISHED_JOB_RETENTION` ago.
pub async fn run_sweeper(
    service: Service,
    queue: JobQueue,
    every: Duration,
    grace: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut pruned_jobs_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if pruned_jobs_at.elapsed() >= JOB_PRUNE_EVERY {
            pruned_jobs_at = tokio::time::Instant::now();
            match queue
                .prune_finished(FINISHED_JOB_RETENTION, JOB_PRUNE_BATCH)
                .await
            {
                Ok(n) => tracing::debug!(jobs = n, "sweeper: finished jobs deleted"),
                Err(e) => tracing::warn!(error = %e, "sweeper: deleting finished jobs failed"),
            }
        }
        for _ in 0..10 {
            match service.prune_outbox(PRUNE_BATCH).await {
                Ok(n) if n == PRUNE_BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "sweeper: pruning the outbox failed");
                    break;
                }
            }
        }
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(grace).unwrap_or_default();
        // Deliveries due for longer than the grace either wait behind a backlog (their jobs are
        // queued) or lost their job (a crash, a store wiped): only as many as the queue lacks
        // are queued again, so a backlog is not doubled every round.
        let lacking = match (
            service.count_due_deliveries(cutoff).await,
            queue.waiting_deliveries().await,
        ) {
            (Ok(due), Ok(waiting)) => due.saturating_sub(waiting),
            (Err(e), _) => {
                tracing::warn!(error = %e, "sweeper: counting due deliveries failed");
                continue;
            }
            (Ok(due), Err(e)) => {
                tracing::warn!(error = %e, "sweeper: counting queued jobs failed");
                due
            }
        };
        if lacking == 0 {
            continue;
        }
        match service.due_deliveries(cutoff, lacking.min(500)).await {
            Ok(due) => {
                let ids: Vec<String> = due.into_iter().map(|d| d.id).collect();
                if let Err(e) = queue.enqueue_many(&ids).await {
                    tracing::warn!(deliveries = ids.len(), error = %e, "sweeper: enqueue failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "sweeper: query failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_loop_whose_rounds_fail_polls_less_and_less_often() {
        let (stop, stop_rx) = watch::channel(false);
        let rounds = std::sync::atomic::AtomicU32::new(0);
        let idle = Duration::from_millis(10);
        let polling = poll_until_stopped(idle, stop_rx, std::future::pending::<()>, || async {
            rounds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Polled::Failed
        });
        let _ = tokio::time::timeout(Duration::from_millis(350), polling).await;
        drop(stop);
        // Pauses of 10, 20, 40, 80 and 160 ms fit in 350 ms: about six rounds, where polling
        // every `idle` would make some thirty.
        let n = rounds.load(std::sync::atomic::Ordering::SeqCst);
        assert!((4..=8).contains(&n), "{n} rounds");
    }

    #[test]
    fn a_failing_loop_waits_longer_each_time_up_to_its_cap() {
        let idle = Duration::from_millis(50);
        let waits: Vec<u128> = (0..8).map(|n| backoff(idle, n).as_millis()).collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(backoff(idle, u32::MAX), MAX_BACKOFF);
        // An idle interval above the cap is kept as it is.
        let slow = Duration::from_secs(5);
        assert_eq!(backoff(slow, 3), slow);
    }
}
