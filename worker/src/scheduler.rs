//! The scheduler hands due screening tasks (timed steps of a check) to the job queue; the task
//! job runs one by id through the service layer.
use std::time::Duration;

use apalis::prelude::*;
use service::Service;
use tokio::sync::watch;

use crate::queue::{JobQueue, RunTask};
use crate::relay::Polled;

/// Runs until `stop` turns true. Polls every `idle` when nothing is due.
pub async fn run_scheduler(
    service: Service,
    queue: JobQueue,
    idle: Duration,
    stop: watch::Receiver<bool>,
) {
    crate::relay::poll_until_stopped(idle, stop, std::future::pending::<()>, || async {
        match service.claim_due_tasks(200).await {
            Ok(ids) => {
                if let Err(e) = queue.enqueue_tasks(&ids).await {
                    // Their leases run out and the next round hands them out again.
                    tracing::warn!(tasks = ids.len(), error = %e, "scheduler: enqueue failed");
                }
                if ids.is_empty() {
                    Polled::Idle
                } else {
                    Polled::Worked
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "scheduler: claiming due tasks failed");
                Polled::Failed
            }
        }
    })
    .await
}

/// The apalis job handler for tasks.
pub async fn run_task_job(job: RunTask, service: Data<Service>) -> Result<(), BoxDynError> {
    match service.run_task(&job.task_id).await {
        Ok(_) => Ok(()),
        Err(e) => {
            // The task keeps its lease; when it runs out the scheduler hands it out again.
            tracing::error!(task = %job.task_id, error = ?e, "task run failed");
            Err(AbortError::new(std::io::Error::other(e.to_string())).into())
        }
    }
}
