//! Database migrations of clearhire; applied at start-up and by `api migrate`.
#![forbid(unsafe_code)]
pub use sea_orm_migration::prelude::*;

/// Every migration runs in a transaction, on SQLite too (its DDL is transactional): a run cut
/// short leaves the database as it was, not half migrated. Each migration says so with this.
macro_rules! in_a_transaction {
    () => {
        fn use_transaction(&self) -> Option<bool> {
            Some(true)
        }
    };
}

mod cols;
mod m20261123_000001_foundation;
mod m20261123_000002_webhooks;
mod m20261123_000003_checks_by_candidate;
mod m20261123_000004_screening;
mod m20261201_000005_lookups_by_key;
mod m20261207_000006_endpoint_last_failure;
mod m20261207_000007_check_searches;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_foundation::Migration),
            Box::new(m20261123_000002_webhooks::Migration),
            Box::new(m20261123_000003_checks_by_candidate::Migration),
            Box::new(m20261123_000004_screening::Migration),
            Box::new(m20261201_000005_lookups_by_key::Migration),
            Box::new(m20261207_000006_endpoint_last_failure::Migration),
            Box::new(m20261207_000007_check_searches::Migration),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_runs_in_a_transaction() {
        for m in Migrator::migrations() {
            assert_eq!(m.use_transaction(), Some(true), "{}", m.name());
        }
    }
}
