//! Durable timed steps. A task row is written in the transaction of the change that causes it
//! (so it survives restarts and is never lost); the scheduler hands due tasks to the job queue,
//! and a job runs one task by id. Tasks are measured against the service [`crate::clock::Clock`],
//! so tests move time instead of waiting.
use chrono::{DateTime, Duration, Utc};
use entity::task;
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, UpdateStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, sqlx,
};
use serde_json::Value;

use crate::batch::{self, Batcher};
use crate::db::PlannedEachTime;
use crate::{Service, ServiceError, ServiceResult, db, ids, screen};

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Run (or poll) the searches of a `processing` check, then adjudicate.
    Screening,
    /// Remind a candidate who has not consented yet to their check.
    InviteReminder,
    /// Remind a candidate who has not consented yet to a recheck (California).
    RecheckConsentReminder,
    /// Remind a candidate who has not consented yet to a monitoring hit's county recheck.
    MonitoringConsentReminder,
    /// The adverse-action waiting period is over: send the final notice.
    AdverseFinalNotice,
    /// After the final notice: reject.
    AdverseReject,
    /// The partner's recheck interval has passed: run the check again.
    ScheduledRecheck,
    /// Continuous monitoring: the county recheck after an arrest alert.
    MonitoringRecheck,
    /// Hand a message to the mail server.
    SendEmail,
}

impl TaskKind {
    pub const ALL: [TaskKind; 9] = [
        TaskKind::Screening,
        TaskKind::InviteReminder,
        TaskKind::RecheckConsentReminder,
        TaskKind::MonitoringConsentReminder,
        TaskKind::AdverseFinalNotice,
        TaskKind::AdverseReject,
        TaskKind::ScheduledRecheck,
        TaskKind::MonitoringRecheck,
        TaskKind::SendEmail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Screening => "screening.run",
            TaskKind::InviteReminder => "invite.reminder",
            TaskKind::RecheckConsentReminder => "recheck.consent_reminder",
            TaskKind::MonitoringConsentReminder => "monitoring.consent_reminder",
            TaskKind::AdverseFinalNotice => "adverse.final_notice",
            TaskKind::AdverseReject => "adverse.reject",
            TaskKind::ScheduledRecheck => "recheck.scheduled",
            TaskKind::MonitoringRecheck => "monitoring.county_recheck",
            TaskKind::SendEmail => "mail.send",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What running a task came to.
#[derive(Debug)]
pub enum TaskOutcome {
    Done,
    /// Not yet (e.g. searches still running): run again at this time.
    RunAgainAt(DateTime<Utc>),
}

/// How long a queued or running task is held before the scheduler hands it out again. Leases
/// are on the wall clock (they measure whether a job or a run is still alive), while "due" is
/// on the service clock tests move: a test moving days ahead would otherwise run out the lease
/// of a task running at that moment, and the task would be handed out and run again.
const QUEUE_LEASE: i64 = 30;
const RUN_LEASE: i64 = 120;
/// At most this many tasks wait in the job queue at once (queued, lease not run out). Without a
/// bound, a backlog longer than the lease (20,000 invitations due at once in the embedded
/// mode) ran out the leases of tasks still waiting in the queue, and each scheduler round
/// queued them again: 86,000 jobs for 20,000 tasks. Bounded, the queue holds a few seconds of
/// work and a lease runs out only when its job was lost.
pub const MAX_QUEUED: u64 = 500;
/// A task is run at most this many times: a run that fails is tried again after
/// [`retry_delay`], and the last failure marks the task failed. Twenty runs span about ten
/// hours, so an outage of the provider, the mail server or the database (a county recheck or
/// an adverse-action notice coming due during it) delays a timed step rather than dropping it.
pub const MAX_ATTEMPTS: i32 = 20;

/// A task's subject as read, `None` when it is gone (deleted, or not the task's partner's): the
/// task then has nothing to do. Any other error (the database unreachable mid-run) is the run's
/// failure, run again after [`retry_delay`], never a reason to drop the step.
pub(crate) fn unless_gone<T>(read: ServiceResult<T>) -> ServiceResult<Option<T>> {
    match read {
        Ok(v) => Ok(Some(v)),
        Err(ServiceError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The longest wait between two runs of a failing task.
const MAX_RETRY_DELAY_SECS: i64 = 3_600;

/// How long after its `attempts`th failed run a task runs again: doubling from 2 s, at most an
/// hour; `None` once it has had its [`MAX_ATTEMPTS`] runs.
pub fn retry_delay(attempts: i32) -> Option<Duration> {
    (attempts < MAX_ATTEMPTS).then(|| {
        let doubling = 2_i64.pow(attempts.clamp(0, 12).unsigned_abs());
        Duration::seconds(Ord::min(doubling, MAX_RETRY_DELAY_SECS))
    })
}

/// The statement that writes a task, for the transaction of the change that causes it (or a
/// test setting up a backlog).
pub fn scheduling(
    partner_id: &str,
    check_id: Option<&str>,
    kind: TaskKind,
    payload: Value,
    run_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> InsertStatement {
    task::Entity::insert(task::ActiveModel {
        id: Set(ids::uuid()),
        partner_id: Set(partner_id.to_string()),
        check_id: Set(check_id.map(str::to_string)),
        kind: Set(kind.as_str().to_string()),
        payload: Set(payload.to_string()),
        run_at: Set(run_at),
        status: Set("pending".into()),
        attempts: Set(0),
        lease_until: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .into_query()
}

/// Cancels a check's tasks of these kinds that have not run yet.
pub(crate) async fn cancel<C: ConnectionTrait>(
    conn: &C,
    check_id: &str,
    kinds: &[TaskKind],
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    conn.execute(&cancelling(check_id, kinds, now)).await?;
    Ok(())
}

/// The statement [`cancel`] runs, for [`crate::db::update_all`].
pub(crate) fn cancelling(
    check_id: &str,
    kinds: &[TaskKind],
    now: DateTime<Utc>,
) -> UpdateStatement {
    task::Entity::update_many()
        .col_expr(task::Column::Status, Expr::value("cancelled"))
        .col_expr(task::Column::UpdatedAt, Expr::value(now))
        .filter(task::Column::CheckId.eq(check_id))
        .filter(task::Column::Kind.is_in(kinds.iter().map(|k| k.as_str())))
        .filter(task::Column::Status.is_in(["pending", "queued"]))
        .into_query()
}

/// PostgreSQL: [`Service::claim_due_tasks`] in one statement (`$1` the service clock's now,
/// `$5` the wall clock's, which leases are on). Each kind of due task (pending
/// and due; queued or running with its lease run out) is read by its own branch in `run_at`
/// order on `ix_tasks_due` with a limit, and the room below `MAX_QUEUED` (`$3`) is counted the
/// same way, at most `$3` rows. Every status change of a task writes a new entry in that index,
/// and the `OR` of the kinds was planned as one bitmap scan, which reads every dead entry again
/// at each poll (7,000–15,000 entries under load, until a vacuum): 6.6 ms for the select alone,
/// against 1.4 ms for this whole statement (`pg_stat_statements`, screening load). The branch
/// of pending tasks, the one with a backlog, is an index scan that stops at its limit; the
/// others may still be bitmap scans. The update checks "due" again, so of several schedulers
/// one marks a task.
const CLAIM_DUE_SQL: &str = r#"WITH due AS (
    (SELECT id, run_at FROM tasks WHERE status = 'pending' AND run_at <= $1
     ORDER BY run_at LIMIT $2)
    UNION ALL
    (SELECT id, run_at FROM tasks WHERE status = 'queued' AND lease_until < $5
     ORDER BY run_at LIMIT $2)
    UNION ALL
    (SELECT id, run_at FROM tasks WHERE status = 'running' AND lease_until < $5
     ORDER BY run_at LIMIT $2)
), room AS (
    SELECT GREATEST(0, $3 - count(*)) AS n FROM (
        SELECT 1 FROM tasks WHERE status = 'queued' AND lease_until >= $5
        ORDER BY run_at LIMIT $3) waiting
), picked AS (
    SELECT id FROM due ORDER BY run_at LIMIT (SELECT n FROM room)
)
UPDATE tasks SET status = 'queued', lease_until = $4, updated_at = $1
WHERE id = ANY(ARRAY(SELECT id FROM picked))
  AND ((status = 'pending' AND run_at <= $1)
       OR (status IN ('queued', 'running') AND lease_until < $5)) IS TRUE
RETURNING id"#;

/// PostgreSQL's group commit of a task run's two statements: taking the queued task (`take`)
/// and recording how the run ended (`finish`).
pub(crate) struct Batches {
    take: Batcher<Take, Option<task::Model>>,
    finish: Batcher<Finish, ()>,
}

/// A queued task to take for running, until `lease_until`.
#[derive(Clone, serde::Serialize)]
struct Take {
    id: String,
    lease_until: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// How a run ended: the task's new status, its error, and when to run it again.
#[derive(Clone, serde::Serialize)]
struct Finish {
    id: String,
    status: &'static str,
    last_error: Option<String>,
    run_at: Option<DateTime<Utc>>,
    /// "Not yet" is no failure: the attempts (which bound retries of errors) start again, so a
    /// task that waited many rounds still gets its retries when it runs for real.
    reset_attempts: bool,
    updated_at: DateTime<Utc>,
    /// The run's lease: a run whose lease ran out (and whose task was handed out again) no
    /// longer records its end over the newer run's.
    lease_until: DateTime<Utc>,
}

/// `$1`: a JSON array of [`Take`]s. `= ANY(ARRAY(…))` finds the rows by key whatever the planner
/// guesses of the JSON's row count, and `IS TRUE` keeps it off the status index.
const TAKE_SQL: &str = r#"WITH v AS (
    SELECT * FROM jsonb_to_recordset(($1::text)::jsonb)
        AS v(id text, lease_until timestamptz, updated_at timestamptz)
)
UPDATE tasks t SET status = 'running', lease_until = v.lease_until,
    attempts = t.attempts + 1, updated_at = v.updated_at
FROM v WHERE t.id = v.id AND t.id = ANY(ARRAY(SELECT id FROM v)) AND (t.status = 'queued') IS TRUE
RETURNING t.*"#;

/// `$1`: a JSON array of [`Finish`]es. A task cancelled while it ran stays cancelled, and a run
/// whose lease was handed on records nothing.
const FINISH_SQL: &str = r#"WITH v AS (
    SELECT * FROM jsonb_to_recordset(($1::text)::jsonb)
        AS v(id text, status text, last_error text, run_at timestamptz, reset_attempts boolean,
            updated_at timestamptz, lease_until timestamptz)
)
UPDATE tasks t SET status = v.status, lease_until = NULL, last_error = v.last_error,
    run_at = COALESCE(v.run_at, t.run_at),
    attempts = CASE WHEN v.reset_attempts THEN 0 ELSE t.attempts END, updated_at = v.updated_at
FROM v WHERE t.id = v.id AND t.id = ANY(ARRAY(SELECT id FROM v))
  AND (t.status = 'running' AND t.lease_until = v.lease_until) IS TRUE"#;

impl Batches {
    pub(crate) fn spawn(pg: PlannedEachTime) -> Self {
        Self {
            take: Batcher::with_context(pg.clone(), take_batch),
            finish: Batcher::with_context(pg, finish_batch),
        }
    }
}

/// Takes the queued tasks among `takes`, answering each its task or `None`. A task named twice
/// in one batch is taken once, for its first caller.
async fn take_batch(
    pg: PlannedEachTime,
    takes: Vec<Take>,
) -> ServiceResult<Vec<Option<task::Model>>> {
    let mut taken = std::collections::HashMap::new();
    for row in pg.run_json(TAKE_SQL, &takes).await? {
        let t = task::Model::from_query_result(&row, "")?;
        taken.insert(t.id.clone(), t);
    }
    Ok(batch::each_once(takes.iter().map(|t| &t.id), taken))
}

async fn finish_batch(pg: PlannedEachTime, finishes: Vec<Finish>) -> ServiceResult<Vec<()>> {
    pg.run_json(FINISH_SQL, &finishes).await?;
    Ok(vec![(); finishes.len()])
}

impl Service {
    /// Hands out due tasks: marks up to `limit` of them queued (with a lease, so a lost job is
    /// handed out again) and returns their ids for the job queue. Hands out none while
    /// [`MAX_QUEUED`] tasks are already waiting in the queue, and only what fits below it.
    pub async fn claim_due_tasks(&self, limit: u64) -> ServiceResult<Vec<String>> {
        let now = self.clock.now();
        let wall = crate::now();
        let lease = wall
            + Duration::seconds(QUEUE_LEASE)
            + Duration::microseconds(rand::random_range(0..1_000_000));
        if self.db.get_database_backend() == DbBackend::Postgres {
            let query = sqlx::query(CLAIM_DUE_SQL)
                .bind(now)
                .bind(limit as i64)
                .bind(MAX_QUEUED as i64)
                .bind(lease)
                .bind(wall);
            let rows = self.planned_each_time().run(query).await?;
            return rows
                .iter()
                .map(|r| Ok(r.try_get::<String>("", "id")?))
                .collect();
        }
        let due = || {
            Condition::any()
                .add(
                    Condition::all()
                        .add(task::Column::Status.eq("pending"))
                        .add(task::Column::RunAt.lte(now)),
                )
                .add(
                    Condition::all()
                        .add(task::Column::Status.is_in(["queued", "running"]))
                        .add(task::Column::LeaseUntil.lt(wall)),
                )
        };
        let mut ids: Vec<String> = task::Entity::find()
            .select_only()
            .column(task::Column::Id)
            .filter(due())
            .order_by_asc(task::Column::RunAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(ids);
        }
        // Counted only when something is due, so an idle scheduler still runs one statement.
        let waiting = task::Entity::find()
            .filter(task::Column::Status.eq("queued"))
            .filter(task::Column::LeaseUntil.gte(wall))
            .count(&self.db)
            .await?;
        ids.truncate(MAX_QUEUED.saturating_sub(waiting) as usize);
        if ids.is_empty() {
            return Ok(ids);
        }
        // One statement for the batch, re-checking "due" so of several schedulers only one marks
        // a task. The lease carries a random sub-second part that tells this batch's rows
        // apart; should two batches ever share it, the job's queued → running step still lets
        // only one run the task.
        task::Entity::update_many()
            .col_expr(task::Column::Status, Expr::value("queued"))
            .col_expr(task::Column::LeaseUntil, Expr::value(lease))
            .col_expr(task::Column::UpdatedAt, Expr::value(now))
            .filter(task::Column::Id.is_in(ids.clone()))
            .filter(due())
            .exec(&self.db)
            .await?;
        Ok(task::Entity::find()
            .select_only()
            .column(task::Column::Id)
            .filter(task::Column::Id.is_in(ids))
            .filter(task::Column::Status.eq("queued"))
            .filter(task::Column::LeaseUntil.eq(lease))
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Runs one queued task (the job handler calls this). Returns `false` when the task was not
    /// this caller's to run (already run, cancelled, or taken by another job).
    pub async fn run_task(&self, id: &str) -> ServiceResult<bool> {
        let now = self.clock.now();
        let take = Take {
            id: id.to_string(),
            lease_until: crate::now() + Duration::seconds(RUN_LEASE),
            updated_at: now,
        };
        let asked = take.lease_until;
        let Some(t) = self.take_task(take).await? else {
            return Ok(false);
        };
        // The run's end is recorded against the lease the row was given. On PostgreSQL two
        // takes of one task in one group-committed statement write the row once, with either
        // lease, and the row goes to the first of them: its own lease may not be the row's.
        let lease_until = t.lease_until.unwrap_or(asked);
        let result = if t.attempts > MAX_ATTEMPTS {
            // Taken again and again without its end being recorded: each run took the process
            // down or outlived its lease. It is not run once more; it fails as a last error does.
            Err(anyhow::anyhow!(
                "given up after {} runs that did not finish (the process stopped or the run outlived its lease)",
                t.attempts - 1
            )
            .into())
        } else {
            let payload: Value = serde_json::from_str(&t.payload).unwrap_or(Value::Null);
            match TaskKind::parse(&t.kind) {
                Some(kind) => self.execute_task(kind, &t, &payload).await,
                None => Err(anyhow::anyhow!("unknown task kind {}", t.kind).into()),
            }
        };
        let now = self.clock.now();
        let reset_attempts = matches!(result, Ok(TaskOutcome::RunAgainAt(_)));
        let (status, run_at, last_error) = match result {
            Ok(TaskOutcome::Done) => ("done", None, None),
            Ok(TaskOutcome::RunAgainAt(at)) => ("pending", Some(at), None),
            Err(e) => {
                let msg = e.detail();
                tracing::warn!(task = %t.id, kind = %t.kind, attempt = t.attempts, error = %msg, "task failed");
                // An error can quote what another system answered.
                let msg = db::without_nul(&msg);
                match retry_delay(t.attempts) {
                    Some(delay) => ("pending", Some(now + delay), Some(msg)),
                    None => ("failed", None, Some(msg)),
                }
            }
        };
        self.finish_task(Finish {
            id: t.id,
            status,
            last_error,
            run_at,
            reset_attempts,
            updated_at: now,
            lease_until,
        })
        .await?;
        Ok(true)
    }

    /// Takes a queued task for running, and reads it, in one statement; `None` if it is not
    /// queued (already run, cancelled, or taken by another job). On PostgreSQL concurrent runs
    /// take theirs in one statement (group commit).
    async fn take_task(&self, take: Take) -> ServiceResult<Option<task::Model>> {
        if let Some(batches) = self.pg_batches() {
            return batches.tasks.take.call(take).await;
        }
        Ok(task::Entity::update_many()
            .col_expr(task::Column::Status, Expr::value("running"))
            .col_expr(task::Column::LeaseUntil, Expr::value(take.lease_until))
            .col_expr(
                task::Column::Attempts,
                Expr::col(task::Column::Attempts).add(1),
            )
            .col_expr(task::Column::UpdatedAt, Expr::value(take.updated_at))
            .filter(task::Column::Id.eq(take.id))
            .filter(task::Column::Status.eq("queued"))
            .exec_with_returning(&self.db)
            .await?
            .into_iter()
            .next())
    }

    /// Records how a run ended. A task cancelled while it ran stays cancelled. On PostgreSQL
    /// concurrent runs record theirs in one statement (group commit).
    async fn finish_task(&self, f: Finish) -> ServiceResult<()> {
        if let Some(batches) = self.pg_batches() {
            return batches.tasks.finish.call(f).await;
        }
        let mut q = task::Entity::update_many()
            .col_expr(task::Column::Status, Expr::value(f.status))
            .col_expr(task::Column::LeaseUntil, Expr::value(None::<DateTime<Utc>>))
            .col_expr(task::Column::LastError, Expr::value(f.last_error))
            .col_expr(task::Column::UpdatedAt, Expr::value(f.updated_at));
        if let Some(at) = f.run_at {
            q = q.col_expr(task::Column::RunAt, Expr::value(at));
        }
        if f.reset_attempts {
            q = q.col_expr(task::Column::Attempts, Expr::value(0));
        }
        q.filter(task::Column::Id.eq(f.id))
            .filter(task::Column::Status.eq("running"))
            .filter(task::Column::LeaseUntil.eq(f.lease_until))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn execute_task(
        &self,
        kind: TaskKind,
        t: &task::Model,
        payload: &Value,
    ) -> ServiceResult<TaskOutcome> {
        let check_id = t.check_id.as_deref().unwrap_or_default();
        match kind {
            TaskKind::Screening => self.run_screening(&t.partner_id, check_id, payload).await,
            TaskKind::InviteReminder
            | TaskKind::RecheckConsentReminder
            | TaskKind::MonitoringConsentReminder => {
                // The purpose of the links the request was sent with.
                let purpose = match kind {
                    TaskKind::RecheckConsentReminder => screen::LINK_RECHECK_CONSENT,
                    TaskKind::MonitoringConsentReminder => screen::LINK_MONITORING_CONSENT,
                    _ => screen::LINK_CONSENT,
                };
                self.send_reminder(&t.partner_id, check_id, t.run_at, purpose)
                    .await
            }
            TaskKind::AdverseFinalNotice => {
                self.adverse_final_notice(&t.partner_id, check_id).await
            }
            TaskKind::AdverseReject => self.adverse_reject(&t.partner_id, check_id).await,
            TaskKind::ScheduledRecheck => self.scheduled_recheck(&t.partner_id, check_id).await,
            TaskKind::MonitoringRecheck => {
                let alert = payload["alert_id"].as_str().unwrap_or_default();
                self.monitoring_recheck(&t.partner_id, alert).await
            }
            TaskKind::SendEmail => {
                let id = payload["email_id"].as_str().unwrap_or_default();
                self.deliver_email(&t.partner_id, id).await
            }
        }
    }

    /// The body of a timed status change: moves the check `from` → `to` as the system, or does
    /// nothing when the check is gone or has moved on in the meantime.
    pub(crate) async fn timed_transition(
        &self,
        partner_id: &str,
        check_id: &str,
        from: entity::CheckStatus,
        to: entity::CheckStatus,
        reason: &str,
    ) -> ServiceResult<TaskOutcome> {
        let txn = crate::db::begin_write(&self.db).await?;
        let Some(c) = unless_gone(crate::check::find(&txn, partner_id, check_id).await)? else {
            return Ok(TaskOutcome::Done);
        };
        if c.status != from {
            return Ok(TaskOutcome::Done);
        }
        self.apply_transition(
            &txn,
            &crate::Actor::system(partner_id),
            c,
            to,
            Some(reason),
            crate::check::StatusExtras::default(),
        )
        .await?;
        self.commit(txn).await?;
        Ok(TaskOutcome::Done)
    }

    /// Tasks of a check, oldest first (for GraphQL and tests). Team members and above: the
    /// kinds name monitoring's county rechecks (an arrest, charged or not) and errors can quote
    /// a provider.
    pub async fn tasks_of_check(
        &self,
        actor: &crate::Actor,
        check_id: &str,
    ) -> ServiceResult<Vec<task::Model>> {
        actor.require(entity::Role::TeamMember)?;
        crate::check::find(&self.db, &actor.partner_id, check_id).await?;
        Ok(task::Entity::find()
            .filter(task::Column::PartnerId.eq(&actor.partner_id))
            .filter(task::Column::CheckId.eq(check_id))
            .order_by_asc(task::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    /// Timed steps that failed their last run and will not run again ([`MAX_ATTEMPTS`]), ever
    /// (their rows are kept): each a step an operator must look at (`check { tasks { lastError }
    /// }`), since nothing else says that, say, a monitoring recheck or a final notice was given
    /// up. A rise is the signal.
    pub async fn failed_task_count(&self) -> ServiceResult<u64> {
        Ok(task::Entity::find()
            .filter(task::Column::Status.eq("failed"))
            .count(&self.db)
            .await?)
    }

    /// Pending tasks due by now (how far behind the scheduler is; for tests and metrics).
    pub async fn due_task_count(&self) -> ServiceResult<u64> {
        Ok(task::Entity::find()
            .filter(task::Column::Status.is_in(["pending", "queued", "running"]))
            .filter(task::Column::RunAt.lte(self.clock.now()))
            .count(&self.db)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_task_is_retried_for_about_ten_hours() {
        assert_eq!(retry_delay(1), Some(Duration::seconds(2)));
        assert_eq!(retry_delay(8), Some(Duration::seconds(256)));
        assert_eq!(retry_delay(12), Some(Duration::hours(1)));
        assert_eq!(retry_delay(MAX_ATTEMPTS - 1), Some(Duration::hours(1)));
        assert_eq!(retry_delay(MAX_ATTEMPTS), None);
        let span: Duration = (1..MAX_ATTEMPTS).filter_map(retry_delay).sum();
        assert!(
            (Duration::hours(9)..Duration::hours(11)).contains(&span),
            "{span}"
        );
    }
}
