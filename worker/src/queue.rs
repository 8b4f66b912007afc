//! The job queue: apalis on its own SQLite file (embedded) or on Redis (scale-out).
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apalis::prelude::*;
use apalis_redis::{ConnectionManager, RedisStorage};
use apalis_sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use sea_orm::sqlx;
use serde::{Deserialize, Serialize};

/// Deliver one webhook delivery (by id). The delivery row is the source of truth; the job only
/// says "look at it now".
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverWebhook {
    pub delivery_id: String,
}

/// Run one screening task (by id): a screening run, a reminder, the end of a waiting period,
/// a recheck. The task row is the source of truth, as for deliveries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunTask {
    pub task_id: String,
}

/// Set explicitly, so renaming the Rust type never orphans queued jobs.
pub const DELIVERY_QUEUE: &str = "clearhire:webhook_delivery";
pub const TASK_QUEUE: &str = "clearhire:task";

/// Where jobs are stored: one queue for deliveries, one for tasks.
#[derive(Clone)]
pub enum JobQueue {
    Sqlite {
        deliveries: SqliteStorage<DeliverWebhook>,
        tasks: SqliteStorage<RunTask>,
    },
    Redis {
        deliveries: RedisStorage<DeliverWebhook, ConnectionManager>,
        tasks: RedisStorage<RunTask, ConnectionManager>,
    },
}

impl JobQueue {
    /// A job store in its own SQLite file, used by this process alone, through ONE connection.
    ///
    /// apalis runs every poll, lock, acknowledgement and heartbeat as a deferred transaction
    /// that reads before it writes. With several connections those transactions wait on each
    /// other's write lock (seeding 20,000 invitations saw waits of the whole 10 s busy timeout,
    /// `database is locked`, and workers dying and restarting) while SQLite still writes one at
    /// a time. One connection queues them in the pool instead. The pragmas are set on the
    /// connection itself: apalis's `setup` sets them through the pool, which reaches only the
    /// connection it happens to use. The job rows are only wake-ups (the delivery and task rows
    /// are the truth, and expired leases are claimed again), so `synchronous=NORMAL` suffices.
    pub async fn sqlite(path: &std::path::Path) -> anyhow::Result<(Self, SqlitePool)> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .pragma("journal_mode", "WAL")
            .pragma("synchronous", "NORMAL")
            .busy_timeout(Duration::from_secs(10));
        // A SQLite connection cannot be dropped under us, so the ping sqlx sends on every
        // acquire by default is one round trip to the connection's thread for nothing.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(opts)
            .await?;
        SqliteStorage::setup(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("job store setup: {e}"))?;
        // apalis acknowledges finished jobs with `UPDATE Jobs … FROM json_each(?1) WHERE
        // Jobs.lock_by = ?2`, which SQLite plans as a walk of every job the worker has locked
        // with a scan of the batch for each. A finished job keeps its `lock_by` until the sweeper
        // deletes it, so each acknowledgement grew with the jobs finished in the last
        // `FINISHED_JOB_RETENTION`: a batch of 32 behind 20,000 finished jobs took about 200 ms
        // of the store's one connection, against 1 ms without them, and embedded deliveries
        // fell ever further behind during a burst. A finished job's lock means nothing, so it
        // is let go as the job finishes (and, once, in a store written before this).
        for ddl in [
            // `setup` sets `synchronous = OFF`, and through the one connection it stays: a power
            // loss could then corrupt jobs.db, and a process whose store does not open does
            // not start. NORMAL syncs at checkpoints, which WAL needs to stay whole.
            "PRAGMA synchronous = NORMAL",
            "CREATE TRIGGER IF NOT EXISTS clearhire_unlock_finished AFTER UPDATE OF status ON Jobs \
             WHEN NEW.lock_by IS NOT NULL AND (NEW.status IN ('Done', 'Killed') \
             OR (NEW.status = 'Failed' AND NEW.attempts >= NEW.max_attempts)) \
             BEGIN UPDATE Jobs SET lock_by = NULL WHERE rowid = NEW.rowid; END",
            "UPDATE Jobs SET lock_by = NULL WHERE lock_by IS NOT NULL \
             AND status IN ('Done', 'Killed')",
        ] {
            sqlx::query(ddl).execute(&pool).await?;
        }
        let deliveries = SqliteStorage::new(&pool)
            .with_config(apalis_sqlite::Config::default().queue(DELIVERY_QUEUE));
        let tasks = SqliteStorage::new(&pool)
            .with_config(apalis_sqlite::Config::default().queue(TASK_QUEUE));
        Ok((Self::Sqlite { deliveries, tasks }, pool))
    }

    /// A queue on Redis whose keys all start with `{prefix}:`.
    pub async fn redis(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let conn = apalis_redis::connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("redis: {e}"))?;
        let deliveries = RedisStorage::new(conn.clone()).with_config(
            apalis_redis::Config::default().queue(format!("{prefix}:{DELIVERY_QUEUE}")),
        );
        let tasks = RedisStorage::new(conn)
            .with_config(apalis_redis::Config::default().queue(format!("{prefix}:{TASK_QUEUE}")));
        Ok(Self::Redis { deliveries, tasks })
    }

    /// Queues a delivery now, or at `at`.
    pub async fn enqueue(&self, delivery_id: &str, at: Option<SystemTime>) -> anyhow::Result<()> {
        self.push_deliveries(vec![one_run(
            DeliverWebhook {
                delivery_id: delivery_id.to_string(),
            },
            at,
        )])
        .await
    }

    /// Queues deliveries to run now, in one write: one transaction on SQLite, one script call
    /// on Redis (rather than one of each per delivery).
    pub async fn enqueue_many(&self, delivery_ids: &[String]) -> anyhow::Result<()> {
        let jobs = delivery_ids
            .iter()
            .map(|id| {
                let job = DeliverWebhook {
                    delivery_id: id.clone(),
                };
                one_run(job, None)
            })
            .collect();
        self.push_deliveries(jobs).await
    }

    /// Queues due tasks to run now, in one write.
    pub async fn enqueue_tasks(&self, task_ids: &[String]) -> anyhow::Result<()> {
        let jobs = task_ids
            .iter()
            .map(|id| {
                let job = RunTask {
                    task_id: id.clone(),
                };
                one_run(job, None)
            })
            .collect();
        match self {
            Self::Sqlite { tasks, .. } => push_all(tasks, jobs).await,
            Self::Redis { tasks, .. } => push_all(tasks, jobs).await,
        }
    }

    /// Deletes the jobs that finished (done, killed, or failed for good) more than `older_than`
    /// ago, at most `batch` per statement or script call; returns how many went.
    ///
    /// apalis keeps every finished job: on SQLite its row, on Redis its payload, its metadata key
    /// and its id in the done or dead set, so the store grows with every delivery and task ever
    /// run. A finished job holds nothing the delivery and task rows do not. apalis's own
    /// `vacuum_before` does not serve: on SQLite it compares the integer `run_at` with a text
    /// date (always true, so it deletes every finished job) and then rewrites the whole file
    /// with `VACUUM`; on Redis it reads the whole payload hash in one script call and leaves the
    /// ids in the done and dead sets. Here SQLite reuses the freed pages, so the file stops
    /// growing, and Redis is scanned a batch per call.
    pub async fn prune_finished(&self, older_than: Duration, batch: u32) -> anyhow::Result<u64> {
        let cutoff = SystemTime::now()
            .duration_since(UNIX_EPOCH)?
            .as_secs()
            .saturating_sub(older_than.as_secs());
        match self {
            Self::Sqlite { deliveries, .. } => {
                // Both queues share the table; the partial index on finished jobs serves the scan.
                let mut pruned = 0;
                loop {
                    let n = sqlx::query(
                        "DELETE FROM Jobs WHERE rowid IN (SELECT rowid FROM Jobs \
                         WHERE status IN ('Done', 'Failed', 'Killed') AND done_at IS NOT NULL \
                         AND done_at <= ?1 AND (status <> 'Failed' OR attempts >= max_attempts) \
                         LIMIT ?2)",
                    )
                    .bind(cutoff as i64)
                    .bind(batch)
                    .execute(deliveries.pool())
                    .await?
                    .rows_affected();
                    pruned += n;
                    if n < u64::from(batch) {
                        return Ok(pruned);
                    }
                }
            }
            Self::Redis { deliveries, tasks } => {
                let (mut conn, configs) = redis_queues(deliveries, tasks);
                let mut pruned = 0;
                for config in configs {
                    for set in [config.done_jobs_set(), config.dead_jobs_set()] {
                        pruned += prune_redis_set(&mut conn, config, &set, cutoff, batch).await?;
                    }
                }
                Ok(pruned)
            }
        }
    }

    /// How many jobs the store holds, `(deliveries, tasks)`, finished ones included.
    pub async fn stored_jobs(&self) -> anyhow::Result<(u64, u64)> {
        match self {
            Self::Sqlite { deliveries, .. } => {
                let count = |queue: &'static str| {
                    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM Jobs WHERE job_type = ?1")
                        .bind(queue)
                        .fetch_one(deliveries.pool())
                };
                Ok((
                    count(DELIVERY_QUEUE).await? as u64,
                    count(TASK_QUEUE).await? as u64,
                ))
            }
            Self::Redis { deliveries, tasks } => {
                let (mut conn, configs) = redis_queues(deliveries, tasks);
                let mut counts = [0u64; 2];
                for (count, config) in counts.iter_mut().zip(configs) {
                    *count = redis::cmd("HLEN")
                        .arg(config.job_data_hash())
                        .query_async(&mut conn)
                        .await?;
                }
                Ok((counts[0], counts[1]))
            }
        }
    }

    /// Delivery jobs due now and not yet taken by a worker (embedded: also those a worker has
    /// fetched and not begun). The sweeper compares this with the deliveries due, so that it
    /// re-queues only what has no job, not every delivery that waits behind a backlog.
    pub async fn waiting_deliveries(&self) -> anyhow::Result<u64> {
        match self {
            Self::Sqlite { deliveries, .. } => Ok(sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM Jobs WHERE job_type = ?1 \
                 AND status IN ('Pending', 'Queued') AND run_at <= strftime('%s', 'now')",
            )
            .bind(DELIVERY_QUEUE)
            .fetch_one(deliveries.pool())
            .await? as u64),
            Self::Redis { deliveries, tasks } => {
                // A job is pushed to the scheduled set (apalis stamps every job with a run
                // time) and moved to the active list by the next fetch: both are waiting.
                let (mut conn, [config, _]) = redis_queues(deliveries, tasks);
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                let (active, scheduled): (u64, u64) = redis::pipe()
                    .cmd("LLEN")
                    .arg(config.active_jobs_list())
                    .cmd("ZCOUNT")
                    .arg(config.scheduled_jobs_set())
                    .arg("-inf")
                    .arg(now)
                    .query_async(&mut conn)
                    .await?;
                Ok(active + scheduled)
            }
        }
    }

    async fn push_deliveries(&self, jobs: Vec<Task<DeliverWebhook>>) -> anyhow::Result<()> {
        match self {
            Self::Sqlite { deliveries, .. } => push_all(deliveries, jobs).await,
            Self::Redis { deliveries, .. } => push_all(deliveries, jobs).await,
        }
    }
}

/// The connection both Redis queues share, and their configurations (deliveries, tasks).
fn redis_queues<'a>(
    deliveries: &'a RedisStorage<DeliverWebhook, ConnectionManager>,
    tasks: &'a RedisStorage<RunTask, ConnectionManager>,
) -> (ConnectionManager, [&'a apalis_redis::Config; 2]) {
    let conn = deliveries.clone().get_connection().clone();
    (conn, [deliveries.get_config(), tasks.get_config()])
}

/// One pass of SSCAN over `set` (the done or the dead set of a queue), `batch` ids per script
/// call, deleting the jobs finished at or before `cutoff` (Unix seconds, as apalis stamps
/// `done_at`) and ids whose metadata is gone.
async fn prune_redis_set(
    conn: &mut ConnectionManager,
    config: &apalis_redis::Config,
    set: &str,
    cutoff: u64,
    batch: u32,
) -> anyhow::Result<u64> {
    // KEYS[1]: the set; KEYS[2]: the payload hash. ARGV: the metadata key prefix, the cursor,
    // the batch, the cutoff. apalis keys a job's metadata as `<prefix>:<id>`, with its result
    // also in `<prefix>:result` (its own vacuum script deletes both).
    const SCRIPT: &str = r"
        local scan = redis.call('SSCAN', KEYS[1], ARGV[2], 'COUNT', ARGV[3])
        local cutoff = tonumber(ARGV[4])
        local pruned = 0
        for _, id in ipairs(scan[2]) do
            local meta = ARGV[1] .. ':' .. id
            local done_at = tonumber(redis.call('HGET', meta, 'done_at'))
            if (done_at and done_at <= cutoff) or (not done_at and redis.call('EXISTS', meta) == 0) then
                redis.call('SREM', KEYS[1], id)
                redis.call('HDEL', KEYS[2], id)
                redis.call('HDEL', ARGV[1] .. ':result', id)
                redis.call('DEL', meta)
                pruned = pruned + 1
            end
        end
        return {scan[1], pruned}
    ";
    static PRUNE: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(SCRIPT));
    let (data, meta) = (config.job_data_hash(), config.job_meta_hash());
    let mut cursor = "0".to_string();
    let mut pruned = 0;
    loop {
        let (next, n): (String, u64) = PRUNE
            .key(set)
            .key(&data)
            .arg(&meta)
            .arg(&cursor)
            .arg(batch)
            .arg(cutoff)
            .invoke_async(conn)
            .await?;
        pruned += n;
        if next == "0" {
            return Ok(pruned);
        }
        cursor = next;
    }
}

/// A job that runs once, now or at `at`: retries are ours (the row's schedule), not apalis's.
fn one_run<J>(job: J, at: Option<SystemTime>) -> Task<J> {
    let mut task = TaskBuilder::new(job);
    if let Some(at) = at {
        task = task.run_at_time(at);
    }
    task.max_attempts(1).build()
}

/// Writes `jobs` to `storage` in one go: apalis buffers them and flushes once. Nothing to write
/// is not a write.
async fn push_all<J, K, S>(storage: &S, jobs: Vec<Task<J>>) -> anyhow::Result<()>
where
    S: TaskSink<J, K> + Clone + Send,
    J: Send,
    TaskSinkError<S::Error>: std::fmt::Display,
{
    if jobs.is_empty() {
        return Ok(());
    }
    storage
        .clone()
        .push_all(futures_util::stream::iter(jobs))
        .await
        .map_err(|e| anyhow::anyhow!("enqueue: {e}"))
}

/// Wakes a worker every `period`, forever: it drains elapsed ticks until the interval is pending
/// again, so a timer is always armed (the built-in strategies can leave none and stall).
#[derive(Debug)]
pub struct EveryInterval {
    period: Duration,
    interval: Option<tokio::time::Interval>,
}

impl EveryInterval {
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            interval: None,
        }
    }
}

impl Clone for EveryInterval {
    fn clone(&self) -> Self {
        Self::new(self.period)
    }
}

impl PollStrategy for EveryInterval {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _snapshot: &PollSnapshot) -> Poll<Option<()>> {
        let period = self.period;
        let interval = self.interval.get_or_insert_with(|| {
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        let mut fired = false;
        while interval.poll_tick(cx).is_ready() {
            fired = true;
        }
        if fired {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}
