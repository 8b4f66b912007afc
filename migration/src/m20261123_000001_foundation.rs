//! Partners, team, tokens, packages, candidates, checks, their status history and the outbox.
use crate::cols::{auto_pk, id, opt, req, ts, ts_opt};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    in_a_transaction!();

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Partners::Table)
                    .col(id(Partners::Id))
                    .col(req(Partners::Name))
                    .col(opt(Partners::PublicBaseUrl))
                    .col(opt(Partners::DefaultPackageId))
                    .col(ts(Partners::CreatedAt))
                    .col(ts(Partners::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(id(Users::Id))
                    .col(req(Users::PartnerId))
                    .col(req(Users::Email))
                    .col(opt(Users::Name))
                    .col(req(Users::Role))
                    .col(ts(Users::CreatedAt))
                    .col(ts(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_users_partner_email")
                    .table(Users::Table)
                    .col(Users::PartnerId)
                    .col(Users::Email)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(id(ApiTokens::Id))
                    .col(req(ApiTokens::PartnerId))
                    .col(opt(ApiTokens::UserId))
                    .col(req(ApiTokens::Name))
                    .col(req(ApiTokens::Role))
                    .col(opt(ApiTokens::CreatedBy))
                    .col(ts(ApiTokens::CreatedAt))
                    .col(ts(ApiTokens::ExpiresAt))
                    .col(ts_opt(ApiTokens::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_api_tokens_partner")
                    .table(ApiTokens::Table)
                    .col(ApiTokens::PartnerId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Packages::Table)
                    .col(id(Packages::Id))
                    .col(req(Packages::PartnerId))
                    .col(req(Packages::Name))
                    .col(ColumnDef::new(Packages::Searches).json_binary().not_null())
                    .col(
                        ColumnDef::new(Packages::IsDefault)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ts_opt(Packages::ArchivedAt))
                    .col(ts(Packages::CreatedAt))
                    .col(ts(Packages::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_packages_partner")
                    .table(Packages::Table)
                    .col(Packages::PartnerId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Candidates::Table)
                    .col(auto_pk(manager, Candidates::Seq))
                    .col(
                        ColumnDef::new(Candidates::Id)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Candidates::TurnId)
                            .string_len(16)
                            .not_null()
                            .unique_key(),
                    )
                    .col(req(Candidates::PartnerId))
                    .col(opt(Candidates::ReferenceId))
                    .col(req(Candidates::FirstName))
                    .col(opt(Candidates::MiddleName))
                    .col(req(Candidates::LastName))
                    .col(req(Candidates::Email))
                    .col(opt(Candidates::Phone))
                    .col(opt(Candidates::DateOfBirthEnc))
                    .col(opt(Candidates::SsnEnc))
                    .col(opt(Candidates::SsnLast4))
                    .col(opt(Candidates::SsnFingerprint))
                    .col(opt(Candidates::Zip))
                    .col(opt(Candidates::City))
                    .col(opt(Candidates::State))
                    .col(opt(Candidates::Address))
                    .col(ColumnDef::new(Candidates::Experience).text().null())
                    .col(ColumnDef::new(Candidates::Interests).text().null())
                    .col(opt(Candidates::TransportationMethod))
                    .col(ColumnDef::new(Candidates::SearchText).text().not_null())
                    .col(ts(Candidates::CreatedAt))
                    .col(ts(Candidates::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "ux_candidates_partner_email",
                vec![Candidates::PartnerId, Candidates::Email],
                true,
            ),
            (
                "ux_candidates_partner_reference",
                vec![Candidates::PartnerId, Candidates::ReferenceId],
                true,
            ),
            (
                "ix_candidates_partner_seq",
                vec![Candidates::PartnerId, Candidates::Seq],
                false,
            ),
            (
                "ix_candidates_partner_ssn",
                vec![Candidates::PartnerId, Candidates::SsnFingerprint],
                false,
            ),
        ] {
            let mut idx = Index::create();
            idx.name(name).table(Candidates::Table);
            for c in cols {
                idx.col(c);
            }
            if unique {
                idx.unique();
            }
            manager.create_index(idx.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Checks::Table)
                    .col(id(Checks::Id))
                    .col(req(Checks::PartnerId))
                    .col(req(Checks::CandidateId))
                    .col(req(Checks::PackageId))
                    .col(ColumnDef::new(Checks::Status).string_len(32).not_null())
                    .col(opt(Checks::CallbackUrl))
                    .col(opt(Checks::ReferenceId))
                    .col(ts_opt(Checks::ConsentDate))
                    .col(ColumnDef::new(Checks::RecheckDate).date().null())
                    .col(ColumnDef::new(Checks::CmCriminalEnroll).date().null())
                    .col(
                        ColumnDef::new(Checks::CriminalMonitoringTriggered)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(Checks::ReportEnc).text().null())
                    .col(req(Checks::CreatedBy))
                    .col(ts(Checks::CreatedAt))
                    .col(ts(Checks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
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
            .create_index(
                Index::create()
                    .name("ix_checks_partner_status")
                    .table(Checks::Table)
                    .col(Checks::PartnerId)
                    .col(Checks::Status)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CheckStatusHistory::Table)
                    .col(auto_pk(manager, CheckStatusHistory::Id))
                    .col(req(CheckStatusHistory::PartnerId))
                    .col(req(CheckStatusHistory::CheckId))
                    .col(
                        ColumnDef::new(CheckStatusHistory::FromStatus)
                            .string_len(32)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(CheckStatusHistory::ToStatus)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(req(CheckStatusHistory::ActorId))
                    .col(opt(CheckStatusHistory::ActorEmail))
                    .col(ColumnDef::new(CheckStatusHistory::Reason).text().null())
                    .col(ts(CheckStatusHistory::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_history_check")
                    .table(CheckStatusHistory::Table)
                    .col(CheckStatusHistory::CheckId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(auto_pk(manager, Outbox::Id))
                    .col(
                        ColumnDef::new(Outbox::EventId)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(req(Outbox::PartnerId))
                    .col(req(Outbox::EventType))
                    .col(req(Outbox::AggregateId))
                    .col(ColumnDef::new(Outbox::Payload).json_binary().not_null())
                    .col(ts(Outbox::CreatedAt))
                    .col(ts_opt(Outbox::PublishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_outbox_unpublished")
                    .table(Outbox::Table)
                    .col(Outbox::PublishedAt)
                    .col(Outbox::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Outbox::Table.into_iden(),
            CheckStatusHistory::Table.into_iden(),
            Checks::Table.into_iden(),
            Candidates::Table.into_iden(),
            Packages::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Users::Table.into_iden(),
            Partners::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Partners {
    Table,
    Id,
    Name,
    PublicBaseUrl,
    DefaultPackageId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    PartnerId,
    Email,
    Name,
    Role,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    PartnerId,
    UserId,
    Name,
    Role,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Packages {
    Table,
    Id,
    PartnerId,
    Name,
    Searches,
    IsDefault,
    ArchivedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Candidates {
    Table,
    Seq,
    Id,
    TurnId,
    PartnerId,
    ReferenceId,
    FirstName,
    MiddleName,
    LastName,
    Email,
    Phone,
    DateOfBirthEnc,
    SsnEnc,
    SsnLast4,
    SsnFingerprint,
    Zip,
    City,
    State,
    Address,
    Experience,
    Interests,
    TransportationMethod,
    SearchText,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Checks {
    Table,
    Id,
    PartnerId,
    CandidateId,
    PackageId,
    Status,
    CallbackUrl,
    ReferenceId,
    ConsentDate,
    RecheckDate,
    CmCriminalEnroll,
    CriminalMonitoringTriggered,
    ReportEnc,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CheckStatusHistory {
    Table,
    Id,
    PartnerId,
    CheckId,
    FromStatus,
    ToStatus,
    ActorId,
    ActorEmail,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    EventId,
    PartnerId,
    EventType,
    AggregateId,
    Payload,
    CreatedAt,
    PublishedAt,
}
