//! Group commit: concurrent callers of one statement shape share a statement. A caller hands
//! its item to the batcher's task and waits; the task runs what has queued as one batch as soon
//! as one of its `in_flight` slots is free. Alone, a caller's item runs at once, by itself; under
//! load, items queue while the slots are busy and the next batch takes them all (up to
//! `max_batch`). Nothing waits for a batch to fill.
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::{ServiceError, ServiceResult};

type Reply<O> = oneshot::Sender<Result<O, Arc<str>>>;

/// The service's batchers: items per statement at most, and statements of one batcher running
/// at once.
const MAX_BATCH: usize = 64;
const IN_FLIGHT: usize = 3;

pub(crate) struct Batcher<I, O> {
    tx: mpsc::UnboundedSender<(I, Reply<O>)>,
}

impl<I: Clone + Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the batcher's task on the current tokio runtime. `run` gets a batch's items and
    /// answers one output per item, in their order. When the database refuses a batch of
    /// several items, each runs again alone, so an item it refuses fails only its own caller;
    /// any other error (a lost connection, a full pool) is every item's error.
    pub(crate) fn spawn<F, Fut>(max_batch: usize, in_flight: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ServiceResult<Vec<O>>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<(I, Reply<O>)>();
        let slots = Arc::new(Semaphore::new(in_flight.max(1)));
        let run = Arc::new(run);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                // Everything that queued while the slots were busy goes into this batch.
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                let (items, replies): (Vec<I>, Vec<Reply<O>>) = batch.into_iter().unzip();
                let run = run.clone();
                tokio::spawn(async move {
                    let answers = answer(&*run, items).await;
                    drop(slot);
                    for (reply, a) in replies.into_iter().zip(answers) {
                        let _ = reply.send(a);
                    }
                });
            }
        });
        Self { tx }
    }

    /// A batcher of the service's size whose `run` gets `ctx` (its connection) with each batch.
    pub(crate) fn with_context<C, F, Fut>(ctx: C, run: F) -> Self
    where
        C: Clone + Send + Sync + 'static,
        F: Fn(C, Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ServiceResult<Vec<O>>> + Send + 'static,
    {
        Self::spawn(MAX_BATCH, IN_FLIGHT, move |items| run(ctx.clone(), items))
    }

    /// Runs `item` in the next batch and answers its output.
    pub(crate) async fn call(&self, item: I) -> ServiceResult<O> {
        let (reply, answer) = oneshot::channel();
        let stopped = || ServiceError::Internal(anyhow::anyhow!("the batcher has stopped"));
        self.tx.send((item, reply)).map_err(|_| stopped())?;
        match answer.await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(msg)) => Err(ServiceError::Internal(anyhow::anyhow!(
                "batch failed: {msg}"
            ))),
            Err(_) => Err(stopped()),
        }
    }
}

/// Runs `items` as one batch and answers each item; when the database refuses a batch of
/// several, runs each item again alone (in turn, in the batch's slot).
async fn answer<I: Clone, O, F, Fut>(run: &F, items: Vec<I>) -> Vec<Result<O, Arc<str>>>
where
    F: Fn(Vec<I>) -> Fut,
    Fut: Future<Output = ServiceResult<Vec<O>>>,
{
    let n = items.len();
    let alone = (n > 1).then(|| items.clone());
    let failed = |msg: String| {
        let msg: Arc<str> = msg.into();
        (0..n).map(|_| Err(msg.clone())).collect()
    };
    match run(items).await {
        Ok(outs) if outs.len() == n => outs.into_iter().map(Ok).collect(),
        Ok(outs) => failed(format!("a batch of {n} answered {} results", outs.len())),
        Err(e) => match alone {
            Some(items) if e.is_refused_by_database() => {
                tracing::warn!(error = %e.detail(), items = n, "a batch was refused; its items run alone");
                let mut answers = Vec::with_capacity(n);
                for item in items {
                    answers.push(match run(vec![item]).await {
                        Ok(mut outs) if outs.len() == 1 => Ok(outs.remove(0)),
                        Ok(outs) => Err(format!("an item answered {} results", outs.len()).into()),
                        Err(e) => Err(e.detail().into()),
                    });
                }
                answers
            }
            _ => failed(e.detail()),
        },
    }
}

/// Each key's row of `found` (rows by key), in the keys' order. A key named twice in a batch
/// gets its row once, for its first caller; its later callers get `None`, as does a key
/// without a row.
pub(crate) fn each_once<'a, T>(
    keys: impl IntoIterator<Item = &'a String>,
    mut found: HashMap<String, T>,
) -> Vec<Option<T>> {
    keys.into_iter().map(|k| found.remove(k)).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// Records the batch sizes it sees; each batch takes 20 ms and doubles its items.
    fn doubler(
        sizes: Arc<Mutex<Vec<usize>>>,
        in_flight: usize,
        fail_on: Option<u32>,
    ) -> Arc<Batcher<u32, u32>> {
        Arc::new(Batcher::spawn(8, in_flight, move |items: Vec<u32>| {
            sizes.lock().expect("sizes").push(items.len());
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if fail_on.is_some_and(|f| items.contains(&f)) {
                    return Err(ServiceError::conflict("refused"));
                }
                Ok(items.into_iter().map(|i| i * 2).collect())
            }
        }))
    }

    #[tokio::test]
    async fn a_lone_item_runs_at_once_by_itself() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let b = doubler(sizes.clone(), 2, None);
        let started = std::time::Instant::now();
        assert_eq!(b.call(21).await.expect("answer"), 42);
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(b.call(5).await.expect("answer"), 10);
        assert_eq!(*sizes.lock().expect("sizes"), vec![1, 1]);
    }

    #[tokio::test]
    async fn items_queued_behind_a_busy_slot_share_the_next_batch_and_get_their_own_answers() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let b = doubler(sizes.clone(), 1, None);
        let calls: Vec<_> = (0..20u32)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { (i, b.call(i).await.expect("answer")) })
            })
            .collect();
        for c in calls {
            let (i, out) = c.await.expect("call task");
            assert_eq!(out, i * 2);
        }
        let sizes = sizes.lock().expect("sizes").clone();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(sizes.iter().all(|&n| n <= 8), "{sizes:?}");
        // One slot, 20 items at once: far fewer batches than items.
        assert!(sizes.len() <= 5, "{sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_of_its_items_and_the_batcher_goes_on() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let b = doubler(sizes.clone(), 1, Some(7));
        let err = b.call(7).await.expect_err("a failed batch");
        assert!(err.to_string().contains("internal"), "{err}");
        assert!(matches!(&err, ServiceError::Internal(e) if e.to_string().contains("refused")));
        assert_eq!(b.call(3).await.expect("answer"), 6);
    }

    #[tokio::test]
    async fn an_item_the_database_refuses_fails_alone_and_its_batch_mates_get_their_answers() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let b = doubler(sizes.clone(), 1, Some(7));
        // Eleven items at once into batches of at most eight: 7 shares a batch with others.
        let calls: Vec<_> = (0..11u32)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { (i, b.call(i).await) })
            })
            .collect();
        for c in calls {
            match c.await.expect("call task") {
                (7, out) => {
                    let err = out.expect_err("7 is refused");
                    assert!(err.to_string().contains("internal"), "{err}");
                }
                (i, out) => assert_eq!(out.expect("answer"), i * 2),
            }
        }
        let sizes = sizes.lock().expect("sizes").clone();
        assert!(sizes.iter().any(|&n| n > 1), "a shared batch: {sizes:?}");
        // Each of the refused batch's items ran again by itself, in the batch's slot, before
        // the next batch.
        let refused = sizes.iter().position(|&n| n > 1).expect("the shared batch");
        let alone = &sizes[refused + 1..=refused + sizes[refused]];
        assert!(alone.iter().all(|&n| n == 1), "{sizes:?}");
        assert_eq!(
            sizes.iter().sum::<usize>(),
            11 + sizes[refused],
            "{sizes:?}"
        );
    }

    #[tokio::test]
    async fn a_batch_lost_for_another_reason_is_not_run_again() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let b = Arc::new(Batcher::spawn(8, 1, move |items: Vec<u32>| {
            seen.lock().expect("sizes").push(items.len());
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err::<Vec<u32>, _>(ServiceError::Internal(anyhow::anyhow!(
                    "connection reset ({} items)",
                    items.len()
                )))
            }
        }));
        let calls: Vec<_> = (0..5u32)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { b.call(i).await })
            })
            .collect();
        for c in calls {
            let err = c.await.expect("call task").expect_err("lost");
            assert!(
                matches!(&err, ServiceError::Internal(e) if e.to_string().contains("connection reset")),
                "{err:?}"
            );
        }
        // Each item ran once, in a shared batch, and not again by itself.
        let sizes = sizes.lock().expect("sizes").clone();
        assert!(sizes.iter().any(|&n| n > 1), "a shared batch: {sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 5, "{sizes:?}");
    }
}
