//! A check keeps the searches it was ordered with, and a hosted form the searches whose required
//! fields it handed out. A package's searches may then change at any time: the change applies to
//! checks started (and forms made) after it, and a check being screened, or rechecked later, runs
//! what its candidate was asked to consent to and give the details for.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables that take a `searches` column, each with its package id.
const TABLES: [&str; 2] = ["checks", "form_sessions"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    in_a_transaction!();

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            // On SQLite a migration is not one transaction: a run stopped part way has left the
            // columns it added, and the next run goes on from there.
            if !manager.has_column(table, "searches").await? {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(table))
                            .add_column(
                                ColumnDef::new(Alias::new("searches"))
                                    .json_binary()
                                    .not_null()
                                    .default("[]"),
                            )
                            .to_owned(),
                    )
                    .await?;
            }
            // Rows made before this migration take their package's searches as they are now.
            // For a check between consent and its results that is what it runs with (a
            // package's searches could not change then); a check finished before a change
            // shows the package's new ones. A row whose package is gone keeps the empty default,
            // as does one written later by a process older than the column (the service uses
            // its package's searches for that one).
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "UPDATE {table} SET searches = COALESCE(\
                     (SELECT packages.searches FROM packages WHERE packages.id = {table}.package_id), \
                     searches)"
                ))
                .await?;
        }
        Ok(())
    }

    /// Drops the columns: what each check was started with is lost, and running `up` again
    /// gives every check its package's searches as they are then.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Alias::new("searches"))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
