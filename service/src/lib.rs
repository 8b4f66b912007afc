//! clearhire's service layer: the only code that changes state. Every operation takes the
//! caller's [`Actor`], checks tenant and role, validates its input, and writes the state, its
//! history and one outbox row per domain event in a single transaction.
#![forbid(unsafe_code)]

pub mod adverse;
pub mod auth;
mod batch;
pub mod bootstrap;
pub mod candidate;
pub mod check;
pub mod clock;
pub mod context;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod ids;
pub mod mail;
pub mod monitoring;
pub mod package;
pub mod page;
pub mod partner;
mod rows;
pub mod screen;
pub mod screening;
pub mod tasks;
pub mod team;
pub mod token;
pub mod webhook;

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseTransaction};

pub use context::Actor;
pub use error::{ServiceError, ServiceResult};
pub use rows::Columns;

/// Limits and settings the service layer enforces.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Largest `first`/`last` a list accepts.
    pub max_page_size: u64,
    /// Where partner dashboards live, for `dashboard_url` links when a partner has set none.
    pub public_base_url: String,
    /// How long a token's validity is cached before the token row is read again.
    pub token_cache_ttl: std::time::Duration,
    /// The consumer reporting agency the consent forms and the candidates' notices name.
    pub agency: screening::disclosures::Agency,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            max_page_size: 100,
            public_base_url: "http://127.0.0.1:8080".into(),
            token_cache_ttl: std::time::Duration::from_secs(5),
            agency: Default::default(),
        }
    }
}

/// PostgreSQL's group commits (see [`batch`]).
pub(crate) struct PgBatches {
    pub(crate) webhook: webhook::Batches,
    pub(crate) tasks: tasks::Batches,
}

/// The handle every caller (GraphQL, CLI, workers) uses. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    pub(crate) db: DatabaseConnection,
    pub(crate) crypto: Arc<crypto::Crypto>,
    pub(crate) tokens: Arc<auth::TokenAuthority>,
    pub(crate) settings: Arc<ServiceSettings>,
    statements: db::StatementCounter,
    pub(crate) clock: clock::Clock,
    pub(crate) provider: Arc<dyn screening::provider::Provider>,
    pub(crate) mailer: Option<Arc<dyn mail::Mailer>>,
    /// Signalled after each write transaction commits, so this process's outbox relay sends
    /// the new events at once instead of at its next poll.
    committed: Arc<tokio::sync::Notify>,
    /// PostgreSQL: the group commits of the webhook sender and of task runs, started at their
    /// first use.
    pg_batches: Arc<std::sync::OnceLock<PgBatches>>,
}

impl Service {
    pub fn new(
        (db, statements): (DatabaseConnection, db::StatementCounter),
        crypto: crypto::Crypto,
        tokens: auth::TokenAuthority,
        settings: ServiceSettings,
    ) -> Self {
        Self {
            db,
            crypto: Arc::new(crypto),
            tokens: Arc::new(tokens),
            settings: Arc::new(settings),
            statements,
            clock: clock::Clock::default(),
            provider: Arc::new(screening::sandbox::SandboxProvider::new(
                std::time::Duration::ZERO,
            )),
            mailer: None,
            committed: Arc::new(tokio::sync::Notify::new()),
            pg_batches: Arc::default(),
        }
    }

    /// Commits a write transaction, then wakes the outbox relay of this process. The relay's
    /// own bookkeeping and delivery attempts commit with `txn.commit()`: they record no event
    /// that needs relaying at once.
    pub(crate) async fn commit(&self, txn: DatabaseTransaction) -> Result<(), sea_orm::DbErr> {
        txn.commit().await?;
        self.committed.notify_one();
        Ok(())
    }

    /// Resolves after a write transaction of this process commits, or at once if one has
    /// committed since the last call returned. Another process's commits do not wake it.
    pub async fn committed(&self) {
        self.committed.notified().await;
    }

    /// On PostgreSQL, the batchers of the webhook sender and of task runs (their tasks start
    /// on the calling runtime at the first call); on SQLite, whose one writer gains nothing
    /// from them, `None`.
    pub(crate) fn pg_batches(&self) -> Option<&PgBatches> {
        (self.db.get_database_backend() == sea_orm::DbBackend::Postgres).then(|| {
            self.pg_batches.get_or_init(|| PgBatches {
                webhook: webhook::Batches::spawn(self.planned_each_time()),
                tasks: tasks::Batches::spawn(self.planned_each_time()),
            })
        })
    }

    /// PostgreSQL statements of this service planned at each execution.
    pub(crate) fn planned_each_time(&self) -> db::PlannedEachTime {
        db::PlannedEachTime::new(self.db.clone(), self.statements.clone())
    }

    /// The same service with another screening provider.
    pub fn with_provider(mut self, provider: Arc<dyn screening::provider::Provider>) -> Self {
        self.provider = provider;
        self
    }

    /// The same service sending mail through `mailer`.
    pub fn with_mailer(mut self, mailer: Arc<dyn mail::Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// The clock timed steps are measured against (tests move it forward).
    pub fn clock(&self) -> &clock::Clock {
        &self.clock
    }

    /// SQL statements this service's connection pool has executed.
    pub fn statements_executed(&self) -> u64 {
        self.statements.get()
    }

    /// The database handle, for readiness checks.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }
}

/// The current time at microsecond precision: what PostgreSQL stores, so a timestamp read back
/// equals the one written on either backend.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
