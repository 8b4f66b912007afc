//! Database migrations of clearhire; applied at start-up and by `api migrate`.
#![forbid(unsafe_code)]
pub use sea_orm_migration::prelude::*;

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
