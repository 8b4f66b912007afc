//! Connecting to SQLite or PostgreSQL, applying migrations, and counting SQL statements (the
//! `/metrics` figure tests and benchmarks use to prove queries don't grow with page size).
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::SubQueryStatement;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// Counts the SQL statements run on one connection pool.
#[derive(Clone, Default)]
pub struct StatementCounter(Arc<AtomicU64>);

impl StatementCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A PostgreSQL statement for [`PlannedEachTime`].
pub(crate) type PgQuery<'q> =
    sea_orm::sqlx::query::Query<'q, sea_orm::sqlx::Postgres, sea_orm::sqlx::postgres::PgArguments>;

/// PostgreSQL: runs statements as unnamed ones, planned at each execution with the tables as
/// they are, and counts them. The group-commit statements (a JSON array of keys or rows joined
/// to a table) run this way: prepared once, such a statement keeps the generic plan PostgreSQL
/// makes at its sixth execution, and made while the table was a few pages that plan scans the
/// whole table in every batch once it has grown (4–5 ms a batch at 10,000 tasks, measured with
/// `auto_explain`).
#[derive(Clone)]
pub(crate) struct PlannedEachTime {
    db: DatabaseConnection,
    counter: StatementCounter,
}

impl PlannedEachTime {
    pub(crate) fn new(db: DatabaseConnection, counter: StatementCounter) -> Self {
        Self { db, counter }
    }

    pub(crate) async fn run(
        &self,
        query: PgQuery<'_>,
    ) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr> {
        self.counter.0.fetch_add(1, Ordering::Relaxed);
        let rows = query
            .persistent(false)
            .fetch_all(self.db.get_postgres_connection_pool())
            .await
            .map_err(|e| sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(Arc::new(e))))?;
        Ok(rows.into_iter().map(sea_orm::QueryResult::from).collect())
    }

    /// `sql` with `$1` the items as a JSON array (read with `jsonb_to_recordset`).
    pub(crate) async fn run_json<T: serde::Serialize>(
        &self,
        sql: &'static str,
        items: &[T],
    ) -> crate::ServiceResult<Vec<sea_orm::QueryResult>> {
        let json = serde_json::to_string(items).map_err(anyhow::Error::from)?;
        Ok(self.run(sea_orm::sqlx::query(sql).bind(json)).await?)
    }
}

/// PostgreSQL text holds no NUL: text another system sent (a receiver's response, a mail
/// server's error) must not fail the record it goes into, nor, in a batch, the others'.
pub(crate) fn without_nul(s: &str) -> String {
    s.replace('\0', "")
}

pub struct DbOptions {
    pub url: String,
    pub max_connections: u32,
    /// Log every SQL statement (off by default: sea-orm logs them at INFO).
    pub log_statements: bool,
}

/// Rows a SQLite connection's thread may hand over before the reading task takes them. sqlx's
/// default, 50, is less than a page of candidates with their checks, so the thread stopped and
/// waited to be woken up again one or more times in each such read.
const SQLITE_ROW_BUFFER: usize = 512;

/// How long a PostgreSQL session may sit in an open transaction doing nothing before the server
/// ends it. No transaction here waits on anything but the database and Redis (searches, mail and
/// webhooks run outside them), so one idle this long belongs to a process that froze or lost its
/// network mid-transaction: ended, its locks (a relay's turn, a check's row) go to the others
/// instead of being held until TCP gives up on the peer, hours later.
pub const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";

pub async fn connect(opts: &DbOptions) -> anyhow::Result<(DatabaseConnection, StatementCounter)> {
    if let Some(path) = sqlite_file(&opts.url)
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let mut co = ConnectOptions::new(opts.url.clone());
    co.max_connections(opts.max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out by default: one more round trip (to the
        // server, or to a SQLite connection's thread) before every statement and every BEGIN.
        // Only a connection idle long enough for a server or proxy to have dropped it is pinged.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(opts.log_statements)
        .map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .row_buffer_size(SQLITE_ROW_BUFFER)
        })
        // Set on each new connection rather than as a startup parameter, which connection
        // poolers such as PgBouncer refuse unless told to ignore it.
        .map_sqlx_postgres_pool_opts(|pool| {
            pool.after_connect(|conn, _| {
                Box::pin(async move {
                    sea_orm::sqlx::Executor::execute(
                        conn,
                        sea_orm::sqlx::AssertSqlSafe(format!(
                            "SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT}'"
                        )),
                    )
                    .await
                    .map(|_| ())
                })
            })
        });
    let mut db = Database::connect(co).await?;
    let counter = StatementCounter::default();
    let inner = counter.0.clone();
    db.set_metric_callback(move |_| {
        inner.fetch_add(1, Ordering::Relaxed);
    });
    Ok((db, counter))
}

/// The PostgreSQL advisory lock key processes take turns on to migrate ("clearhir" in ASCII).
const MIGRATION_LOCK: i64 = 0x636c_6561_7268_6972;

/// Applies pending migrations. On PostgreSQL, processes starting together (api and worker
/// replicas rolled out at once) take turns on an advisory lock, held by a session of its own
/// outside the pool: without it the second to start ran the same migration beside the first
/// and failed on "already exists".
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        Migrator::up(db, None).await?;
        return Ok(());
    }
    use sea_orm::sqlx::Connection;
    let options = db.get_postgres_connection_pool().connect_options();
    let mut session = sea_orm::sqlx::PgConnection::connect_with(&options).await?;
    sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut session)
        .await?;
    let migrated = Migrator::up(db, None).await;
    // Ending the session releases the lock, whatever became of the migrations.
    let _ = session.close().await;
    migrated?;
    Ok(())
}

/// The file of a `sqlite:` URL, if it names one.
pub fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Starts a write transaction. On SQLite it takes the write lock at BEGIN, so concurrent
/// writers wait on the busy timeout instead of failing when a read lock can't be upgraded.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, sea_orm::DbErr> {
    if db.get_database_backend() == DbBackend::Sqlite {
        db.begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
    } else {
        db.begin().await
    }
}

/// Inserts `am`, whose `column` holds a random id in one of Turn's short formats (ten digits can
/// collide: by the birthday bound about 0.5% per 10,000 ids); when that id is taken, `redraw`
/// gives `am` a fresh one and the insert is tried again, up to four times in all. The taken id
/// is skipped with `ON CONFLICT DO NOTHING` rather than caught as an error, which on PostgreSQL
/// would abort the caller's transaction.
pub async fn insert_with_fresh_id<C, A>(
    conn: &C,
    mut am: A,
    column: <A::Entity as sea_orm::EntityTrait>::Column,
    mut redraw: impl FnMut(&mut A),
) -> crate::ServiceResult<<A::Entity as sea_orm::EntityTrait>::Model>
where
    C: sea_orm::ConnectionTrait,
    A: sea_orm::ActiveModelTrait + Clone,
    <A::Entity as sea_orm::EntityTrait>::Model: sea_orm::IntoActiveModel<A>,
{
    use sea_orm::EntityTrait;
    for _ in 0..4 {
        let attempt = A::Entity::insert(am.clone())
            .on_conflict_do_nothing_on([column])
            .exec_with_returning(conn)
            .await;
        match attempt {
            Ok(sea_orm::TryInsertResult::Inserted(m)) => return Ok(m),
            // With RETURNING, sea-orm reports the skipped row as "not found" rather than
            // "not inserted".
            Ok(_) | Err(sea_orm::DbErr::RecordNotFound(_)) => redraw(&mut am),
            Err(e) => return Err(e.into()),
        }
    }
    Err(anyhow::anyhow!("no free id after four tries").into())
}

/// Selects every column of `E` into `q`, each named `prefix` + its column name, so that several
/// entities' rows come back from one join and `FromQueryResult::from_query_result(row, prefix)`
/// reads each.
pub(crate) fn select_prefixed<E: sea_orm::EntityTrait>(
    q: &mut sea_orm::sea_query::SelectStatement,
    prefix: &str,
) {
    select_prefixed_only::<E>(q, prefix, crate::rows::Columns::all());
}

/// [`select_prefixed`] of the columns `only`.
pub(crate) fn select_prefixed_only<E: sea_orm::EntityTrait>(
    q: &mut sea_orm::sea_query::SelectStatement,
    prefix: &str,
    only: crate::rows::Columns<E>,
) {
    use sea_orm::{ColumnTrait, IdenStatic};
    for col in only.selected() {
        q.expr_as(
            col.select_as(sea_orm::sea_query::Expr::col((E::default(), col))),
            sea_orm::sea_query::Alias::new(format!("{prefix}{}", col.as_str())),
        );
    }
}

/// The row of `A` whose `key` column is the given value, with the row of `B` and the row of `C`
/// its columns name (`a_b`: `A`'s column and `B`'s key it holds; `a_c` likewise), in one
/// statement.
pub(crate) async fn find_with_two<A, B, C, Conn>(
    conn: &Conn,
    (key, value): (A::Column, &str),
    a_b: (A::Column, B::Column),
    a_c: (A::Column, C::Column),
) -> Result<Option<(A::Model, B::Model, C::Model)>, sea_orm::DbErr>
where
    A: sea_orm::EntityTrait,
    B: sea_orm::EntityTrait,
    C: sea_orm::EntityTrait,
    Conn: sea_orm::ConnectionTrait,
{
    use sea_orm::FromQueryResult;
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let mut q = Query::select();
    select_prefixed::<A>(&mut q, "a_");
    select_prefixed::<B>(&mut q, "b_");
    select_prefixed::<C>(&mut q, "c_");
    q.from(A::default())
        .inner_join(
            B::default(),
            Expr::col((B::default(), a_b.1)).equals((A::default(), a_b.0)),
        )
        .inner_join(
            C::default(),
            Expr::col((C::default(), a_c.1)).equals((A::default(), a_c.0)),
        )
        .and_where(Expr::col((A::default(), key)).eq(value));
    let Some(row) = conn.query_one(&q).await? else {
        return Ok(None);
    };
    Ok(Some((
        A::Model::from_query_result(&row, "a_")?,
        B::Model::from_query_result(&row, "b_")?,
        C::Model::from_query_result(&row, "c_")?,
    )))
}

/// A named `WITH` clause; on PostgreSQL it may insert, update or delete (`RETURNING` nothing),
/// which puts several writes in one statement.
pub(crate) fn cte(
    name: &str,
    query: impl Into<sea_orm::sea_query::SubQueryStatement>,
) -> sea_orm::sea_query::CommonTableExpression {
    sea_orm::sea_query::CommonTableExpression::new()
        .table_name(sea_orm::sea_query::Alias::new(name))
        .query(query)
        .to_owned()
}

/// Runs `writes` (inserts, updates, deletes) on `conn`, the caller's transaction: one statement
/// on PostgreSQL, all but the last in data-modifying `WITH` clauses (they see one snapshot, so
/// they must not touch the same rows); one statement each on SQLite, which has no `INSERT` or
/// `UPDATE` in a `WITH`.
pub(crate) async fn write_all<C: sea_orm::ConnectionTrait>(
    conn: &C,
    mut writes: Vec<SubQueryStatement>,
) -> Result<(), sea_orm::DbErr> {
    if conn.get_database_backend() == DbBackend::Postgres && writes.len() > 1 {
        let last = writes.remove(writes.len() - 1);
        let mut with = sea_orm::sea_query::WithClause::new();
        add_writes(&mut with, writes);
        conn.execute(&with.query(last)).await?;
        return Ok(());
    }
    for w in writes {
        match w {
            SubQueryStatement::InsertStatement(s) => conn.execute(&s).await?,
            SubQueryStatement::UpdateStatement(s) => conn.execute(&s).await?,
            SubQueryStatement::DeleteStatement(s) => conn.execute(&s).await?,
            SubQueryStatement::SelectStatement(s) => conn.execute(&s).await?,
            SubQueryStatement::WithStatement(s) => conn.execute(&s).await?,
        };
    }
    Ok(())
}

/// Adds `writes` to `with` as data-modifying clauses `w0`, `w1`, … (PostgreSQL), which run
/// whatever the statement that follows reads of them.
pub(crate) fn add_writes(
    with: &mut sea_orm::sea_query::WithClause,
    writes: Vec<SubQueryStatement>,
) {
    for (i, w) in writes.into_iter().enumerate() {
        with.cte(cte(&format!("w{i}"), w));
    }
}

/// The insert of `am` as `INSERT INTO … SELECT <its values> FROM <from>`: on PostgreSQL, with
/// `from` a data-modifying `WITH` clause's `RETURNING`, it writes the row only if that clause
/// changed one (a status change's history and event, written only if the status changed).
pub(crate) fn insert_selecting<A: sea_orm::ActiveModelTrait>(
    mut am: A,
    from: &str,
) -> sea_orm::sea_query::InsertStatement {
    use sea_orm::sea_query::{Alias, Expr, Query};
    use sea_orm::{ActiveValue, ColumnTrait, EntityName, Iterable};
    let mut columns = Vec::new();
    let mut values = Query::select();
    // As sea-orm's own insert: the columns set, each value as its column saves it.
    for col in <A::Entity as sea_orm::EntityTrait>::Column::iter() {
        if let ActiveValue::Set(v) | ActiveValue::Unchanged(v) = am.take(col) {
            columns.push(col);
            values.expr(col.save_as(Expr::val(v)));
        }
    }
    values.from(Alias::new(from));
    let mut insert = Query::insert();
    insert
        .into_table(A::Entity::default().table_ref())
        .columns(columns);
    insert.select_from(values).expect("one value per column");
    insert
}

/// Makes every one of `writes` conditional on the `WITH` clause `from` having returned a row
/// (PostgreSQL), if every one is an update or a delete; returns whether it did. An insert can't
/// be made conditional here (its values are not to be had from the statement), so with one
/// among them none is changed.
pub(crate) fn only_if_returned(writes: &mut [SubQueryStatement], from: &str) -> bool {
    use sea_orm::sea_query::{Alias, Expr, Query};
    if !writes.iter().all(|w| {
        matches!(
            w,
            SubQueryStatement::UpdateStatement(_) | SubQueryStatement::DeleteStatement(_)
        )
    }) {
        return false;
    }
    let returned = || {
        Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(Alias::new(from))
                .to_owned(),
        )
    };
    for w in writes {
        match w {
            SubQueryStatement::UpdateStatement(u) => {
                u.and_where(returned());
            }
            SubQueryStatement::DeleteStatement(d) => {
                d.and_where(returned());
            }
            _ => {}
        }
    }
    true
}

/// The row a unique key selects. sea-orm's `.one()` binds `LIMIT ?` as a parameter, and SQLite
/// reads a bound LIMIT when it plans a statement, so every execution re-prepares it (16% of the
/// CPU of a `candidate(id)` read). A unique key needs no limit.
pub(crate) trait SelectUnique<E: sea_orm::EntityTrait> {
    async fn unique<C: sea_orm::ConnectionTrait>(
        self,
        conn: &C,
    ) -> Result<Option<E::Model>, sea_orm::DbErr>;

    /// The row a unique key selects, if it belongs to `partner_id` (another partner's row
    /// answers as a missing one). The partner is checked on the row, not in SQL: with
    /// `partner_id = $1 AND id = $2`, PostgreSQL may cache a generic plan, made while the table
    /// was small, that walks a partner index and filters on the id, which reads every row of the
    /// partner on each lookup (3 ms per lookup at 8,000 candidates, measured). The key alone has
    /// one plan.
    async fn owned_by<C: sea_orm::ConnectionTrait>(
        self,
        conn: &C,
        partner_column: E::Column,
        partner_id: &str,
    ) -> Result<Option<E::Model>, sea_orm::DbErr>;

    /// The rows a key selects that belong to `partner_id`, for keys unique per partner (the
    /// same e-mail at two partners is two rows) and for a candidate's checks. The key alone is
    /// in SQL, for the reason [`SelectUnique::owned_by`] gives, and an index leads with it
    /// (migration `m20261201_000005_lookups_by_key`); the partner is checked on the rows.
    async fn all_owned_by<C: sea_orm::ConnectionTrait>(
        self,
        conn: &C,
        partner_column: E::Column,
        partner_id: &str,
    ) -> Result<Vec<E::Model>, sea_orm::DbErr>;
}

impl<E: sea_orm::EntityTrait> SelectUnique<E> for sea_orm::Select<E> {
    async fn unique<C: sea_orm::ConnectionTrait>(
        self,
        conn: &C,
    ) -> Result<Option<E::Model>, sea_orm::DbErr> {
        Ok(self.all(conn).await?.into_iter().next())
    }

    async fn owned_by<C: sea_orm::ConnectionTrait>(
        self,
        conn: &C,
        partner_column: E::Column,
        partner_id: &str,
    ) -> Result<Option<E::Model>, sea_orm::DbErr> {
        // A unique key selects one row at most: the partner's, or none.
        Ok(self
            .all_owned_by(conn, partner_column, partner_id)
            .await?
            .into_iter()
            .next())
    }

    async fn all_owned_by<C: sea_orm::ConnectionTrait>(
        self,
        conn: &C,
        partner_column: E::Column,
        partner_id: &str,
    ) -> Result<Vec<E::Model>, sea_orm::DbErr> {
        use sea_orm::ModelTrait;
        let owner = sea_orm::Value::from(partner_id.to_string());
        let mut rows = self.all(conn).await?;
        rows.retain(|m| m.get(partner_column) == owner);
        Ok(rows)
    }
}

/// Locks row `id` of `table` until the transaction ends, on PostgreSQL (SQLite's writes take
/// turns anyway): callers that read, decide and write (a second check for a candidate, the last
/// super_admin, the default package) take turns on it instead of deciding side by side. Only a
/// row of `partner_id` is locked (`partners` is keyed by it), so a caller naming another
/// partner's id holds nothing of theirs while it is refused.
pub(crate) async fn lock_row<C: sea_orm::ConnectionTrait>(
    conn: &C,
    table: &'static str,
    partner_id: &str,
    id: &str,
) -> Result<(), sea_orm::DbErr> {
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        let owner = if table == "partners" {
            "id"
        } else {
            "partner_id"
        };
        conn.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            format!("SELECT 1 FROM {table} WHERE id = $1 AND {owner} = $2 FOR UPDATE"),
            [id.into(), partner_id.into()],
        ))
        .await?;
    }
    Ok(())
}
