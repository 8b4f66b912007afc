//! Starting the back half: bus, relay, sweeper and the apalis dispatch workers, embedded in the
//! api process or in `worker` processes; stopped gracefully (in-flight jobs finish).
use std::time::Duration;

use apalis::prelude::*;
use service::Service;
use tokio::sync::watch;

use crate::bus::Bus;
use crate::dispatch::{Dispatcher, deliver_job};
use crate::queue::{EveryInterval, JobQueue};
use crate::scheduler::run_task_job;
use crate::ssrf::Allowlist;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Concurrent deliveries per process.
    pub concurrency: usize,
    /// How often workers look for jobs and the relay for events when idle.
    pub poll_interval: Duration,
    /// Non-public addresses webhooks may still go to.
    pub allowlist: Allowlist,
    /// Run the relay and sweeper in this process.
    pub relay: bool,
    /// Name prefix of this process's workers (pid and a random suffix are added).
    pub name: String,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            poll_interval: Duration::from_millis(50),
            allowlist: Allowlist::default(),
            relay: true,
            name: "clearhire".into(),
        }
    }
}

pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    monitor: tokio::task::JoinHandle<()>,
    monitor_stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl WorkerHandle {
    /// Stops relay and sweeper, lets in-flight jobs finish, and waits.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(s) = self.monitor_stop.take() {
            let _ = s.send(());
        }
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = self.monitor.await;
    }
}

/// How long a loop that panicked waits before it starts again.
const RESTART_AFTER_PANIC: Duration = Duration::from_secs(1);

/// Runs the loop `start` makes until `stop` turns true, starting it again (after
/// [`RESTART_AFTER_PANIC`], logged as an error) whenever it panics: a relay, sweeper or scheduler
/// that died would otherwise leave the process serving and looking healthy while events, lost
/// jobs or timed steps wait for good.
fn supervised<F, Fut>(
    what: &'static str,
    mut stop: watch::Receiver<bool>,
    start: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let run = tokio::spawn(start());
            let abort = run.abort_handle();
            // Aborted with the supervisor (a runtime shutting down).
            let _guard = AbortOnDrop(abort);
            match run.await {
                Ok(()) => return,
                Err(e) if e.is_panic() => {
                    let panic = e.into_panic();
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(task = what, panic = %message, "background task panicked; starting it again");
                }
                Err(_) => return,
            }
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(RESTART_AFTER_PANIC) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub async fn start(
    service: Service,
    bus: Bus,
    queue: JobQueue,
    config: WorkerConfig,
) -> anyhow::Result<WorkerHandle> {
    let dispatcher = Dispatcher::new(service.clone(), queue.clone(), config.allowlist.clone())?;
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    if config.relay {
        let (svc, b, q, idle, st) = (
            service.clone(),
            bus.clone(),
            queue.clone(),
            config.poll_interval,
            stop_rx.clone(),
        );
        tasks.push(supervised("relay", stop_rx.clone(), move || {
            crate::relay::run_relay(svc.clone(), b.clone(), q.clone(), idle, st.clone())
        }));
        let (svc, q, st) = (service.clone(), queue.clone(), stop_rx.clone());
        tasks.push(supervised("sweeper", stop_rx.clone(), move || {
            crate::relay::run_sweeper(
                svc.clone(),
                q.clone(),
                // Deliveries are leased while sent, so re-queueing one that is merely late is
                // harmless.
                Duration::from_secs(5),
                Duration::from_secs(5),
                st.clone(),
            )
        }));
        let (svc, q, st) = (service.clone(), queue.clone(), stop_rx.clone());
        tasks.push(supervised("scheduler", stop_rx.clone(), move || {
            crate::scheduler::run_scheduler(svc.clone(), q.clone(), idle, st.clone())
        }));
    }
    // Unique per live process: pid plus a random suffix plus the restart count.
    let suffix: u32 = rand_suffix();
    let base = format!("{}-{}-{suffix:08x}", config.name, std::process::id());
    let concurrency = config.concurrency;
    let poll = config.poll_interval;
    let (d_base, t_base) = (format!("{base}-d"), format!("{base}-t"));
    // The two storages differ in type per backend, so the same registration is spelled once
    // here and expanded for each.
    macro_rules! workers {
        ($deliveries:expr, $tasks:expr) => {{
            let (deliveries, task_store) = ($deliveries, $tasks);
            Monitor::new()
                .register(move |restarts| {
                    WorkerBuilder::new(format!("{d_base}-{restarts}"))
                        .backend(
                            deliveries
                                .clone()
                                .poll_with_strategy(EveryInterval::new(poll)),
                        )
                        .data(dispatcher.clone())
                        .concurrency(concurrency)
                        .parallelize(tokio::spawn)
                        .build(deliver_job)
                })
                .register(move |restarts| {
                    WorkerBuilder::new(format!("{t_base}-{restarts}"))
                        .backend(
                            task_store
                                .clone()
                                .poll_with_strategy(EveryInterval::new(poll)),
                        )
                        .data(service.clone())
                        .concurrency(concurrency)
                        .parallelize(tokio::spawn)
                        .build(run_task_job)
                })
        }};
    }
    let monitor = match queue {
        JobQueue::Sqlite { deliveries, tasks } => workers!(deliveries, tasks),
        JobQueue::Redis { deliveries, tasks } => workers!(deliveries, tasks),
    }
    .should_restart(|worker, err| {
        // A backend error (e.g. "database is locked") would otherwise end the worker for good.
        tracing::warn!(worker = %worker.name(), error = %err, "job worker failed; restarting");
        true
    })
    .shutdown_timeout(Duration::from_secs(20));
    let (monitor_stop, monitor_rx) = tokio::sync::oneshot::channel::<()>();
    let monitor = tokio::spawn(async move {
        if let Err(e) = monitor
            .run_with_signal(async move {
                let _ = monitor_rx.await;
                Ok(())
            })
            .await
        {
            tracing::error!(error = %e, "job workers stopped with an error");
        }
    });
    Ok(WorkerHandle {
        stop,
        tasks,
        monitor,
        monitor_stop: Some(monitor_stop),
    })
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_background_loop_that_panics_is_started_again_until_stopped() {
        let (stop, stop_rx) = watch::channel(false);
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        let rx = stop_rx.clone();
        let handle = supervised("test", stop_rx, move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let mut rx = rx.clone();
            async move {
                if n < 2 {
                    panic!("run {n} fails");
                }
                // The third run lasts until the stop.
                let _ = rx.wait_for(|s| *s).await;
            }
        });
        // Two panics, each followed by a pause of a second.
        for _ in 0..100 {
            if starts.load(Ordering::SeqCst) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(starts.load(Ordering::SeqCst), 3);
        assert!(!handle.is_finished());
        stop.send(true).expect("stop");
        tokio::time::timeout(Duration::from_secs(1), handle)
            .await
            .expect("stops")
            .expect("no panic escapes");
        assert_eq!(starts.load(Ordering::SeqCst), 3);
    }
}
