//! Checks are read by partner and candidate (every candidate page loads them): give that an
//! index of its own so the planner doesn't scan the partner's checks through (partner, status).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    in_a_transaction!();

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_checks_partner_candidate")
                    .table(Checks::Table)
                    .col(Checks::PartnerId)
                    .col(Checks::CandidateId)
                    .col(Checks::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_checks_candidate")
                    .table(Checks::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_checks_candidate")
                    .table(Checks::Table)
                    .col(Checks::CandidateId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_checks_partner_candidate")
                    .table(Checks::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Checks {
    Table,
    PartnerId,
    CandidateId,
    CreatedAt,
}
