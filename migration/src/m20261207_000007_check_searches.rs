//! A check keeps the searches it was ordered with. A package's searches may then change at any
//! time: the change applies to checks started after it, and a check being screened, or rechecked
//! later, runs what the candidate was asked to consent to and give the details for.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Checks::Table)
                    .add_column(
                        ColumnDef::new(Checks::Searches)
                            .json_binary()
                            .not_null()
                            .default("[]"),
                    )
                    .to_owned(),
            )
            .await?;
        // Checks made before this migration take their package's searches as they are now. For a
        // check between consent and its results that is what it runs with (a package's searches
        // could not change then); a check finished before a change shows the package's new ones.
        // A row written without the column (by a process older than it) keeps the empty
        // default, and the service runs its package's searches for it.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE checks SET searches = \
                 (SELECT packages.searches FROM packages WHERE packages.id = checks.package_id)",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Checks::Table)
                    .drop_column(Checks::Searches)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Checks {
    Table,
    Searches,
}
