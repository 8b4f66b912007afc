//! An endpoint's last failed attempt, so that its failing streak ends when a day passes without
//! one: "failing for 5 days straight" means failing all along, not a failure on Thursday after
//! one on Saturday and nothing between.
use sea_orm_migration::prelude::*;

use crate::cols::ts_opt;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    in_a_transaction!();

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookEndpoints::Table)
                    .add_column(ts_opt(WebhookEndpoints::LastFailureAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookEndpoints::Table)
                    .drop_column(WebhookEndpoints::LastFailureAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    LastFailureAt,
}
