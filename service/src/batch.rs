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

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the batcher's task on the current tokio runtime. `run` gets a batch's items and
    /// answers one output per item, in their order; its error is every item's error.
    pub(crate) fn spawn<F, Fut>(max_batch: usize, in_flight: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ServiceResult<Vec<O>>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<(I, Reply<O>)>();
        let slots = Arc::new(Semaphore::new(in_flight.max(1)));
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
                let fut = run(items);
                tokio::spawn(async move {
                    let n = replies.len();
                    let answered: Result<Vec<O>, Arc<str>> = match fut.await {
                        Ok(outs) if outs.len() == n => Ok(outs),
                        Ok(outs) => {
                            Err(format!("a batch of {n} answered {} results", outs.len()).into())
                        }
                        Err(e) => Err(format!("{e:#}").into()),
                    };
                    drop(slot);
                    match answered {
                        Ok(outs) => {
                            for (reply, out) in replies.into_iter().zip(outs) {
                                let _ = reply.send(Ok(out));
                            }
                        }
                        Err(msg) => {
                            for reply in replies {
                                let _ = reply.send(Err(msg.clone()));
                            }
                        }
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
}
