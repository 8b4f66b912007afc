//! The screening engine's tables: durable timed tasks, reports kept per run, candidate links
//! (consent, report copy), consent evidence, sent mail, adverse actions, monitoring alerts and
//! hosted consent-form sessions; plus the candidate's driver's licence and partner screening
//! settings.
use crate::cols::{auto_pk, id, index, opt, req, ts, ts_opt};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().not_null().to_owned()
}
fn text_opt(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().null().to_owned()
}
fn int(col: impl IntoIden, default: i32) -> ColumnDef {
    ColumnDef::new(col)
        .integer()
        .not_null()
        .default(default)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    in_a_transaction!();

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            Candidates::DriversLicenseNumber,
            Candidates::DriversLicenseState,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Candidates::Table)
                        .add_column(opt(col))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Partners::Table)
                    .add_column(text_opt(Partners::AdjudicationRules))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Partners::Table)
                    .add_column(int(Partners::AdverseActionDays, 7))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Partners::Table)
                    .add_column(
                        ColumnDef::new(Partners::RecheckIntervalDays)
                            .integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .col(id(Tasks::Id))
                    .col(req(Tasks::PartnerId))
                    .col(opt(Tasks::CheckId))
                    .col(req(Tasks::Kind))
                    .col(text(Tasks::Payload))
                    .col(ts(Tasks::RunAt))
                    .col(ColumnDef::new(Tasks::Status).string_len(16).not_null())
                    .col(int(Tasks::Attempts, 0))
                    .col(ts_opt(Tasks::LeaseUntil))
                    .col(text_opt(Tasks::LastError))
                    .col(ts(Tasks::CreatedAt))
                    .col(ts(Tasks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_tasks_due",
            Tasks::Table,
            &["status", "run_at"],
            false,
        )
        .await?;
        index(
            manager,
            "ix_tasks_check",
            Tasks::Table,
            &["check_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(CheckReports::Table)
                    .col(auto_pk(manager, CheckReports::Id))
                    .col(req(CheckReports::PartnerId))
                    .col(req(CheckReports::CheckId))
                    .col(req(CheckReports::Kind))
                    .col(text(CheckReports::ReportEnc))
                    .col(opt(CheckReports::Decision))
                    .col(text(CheckReports::Reasons))
                    .col(ts(CheckReports::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_check_reports_check",
            CheckReports::Table,
            &["partner_id", "check_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(CandidateLinks::Table)
                    .col(id(CandidateLinks::Id))
                    .col(req(CandidateLinks::PartnerId))
                    .col(req(CandidateLinks::CheckId))
                    .col(req(CandidateLinks::Purpose))
                    .col(
                        ColumnDef::new(CandidateLinks::TokenHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(text(CandidateLinks::Progress))
                    .col(ts(CandidateLinks::ExpiresAt))
                    .col(ts_opt(CandidateLinks::UsedAt))
                    .col(ts_opt(CandidateLinks::RevokedAt))
                    .col(ts(CandidateLinks::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_candidate_links_check",
            CandidateLinks::Table,
            &["check_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Consents::Table)
                    .col(id(Consents::Id))
                    .col(req(Consents::PartnerId))
                    .col(req(Consents::CheckId))
                    .col(req(Consents::Method))
                    .col(text(Consents::SectionTimestamps))
                    .col(text(Consents::Signature))
                    .col(opt(Consents::IpAddress))
                    .col(opt(Consents::UserAgent))
                    .col(ts(Consents::SignedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_consents_check",
            Consents::Table,
            &["check_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Emails::Table)
                    .col(id(Emails::Id))
                    .col(req(Emails::PartnerId))
                    .col(opt(Emails::CandidateId))
                    .col(opt(Emails::CheckId))
                    .col(req(Emails::ToAddress))
                    .col(req(Emails::Kind))
                    .col(req(Emails::Subject))
                    .col(text(Emails::Body))
                    .col(ts(Emails::CreatedAt))
                    .col(ts_opt(Emails::SentAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_emails_check",
            Emails::Table,
            &["partner_id", "check_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AdverseActions::Table)
                    .col(id(AdverseActions::Id))
                    .col(req(AdverseActions::PartnerId))
                    .col(req(AdverseActions::CheckId))
                    .col(
                        ColumnDef::new(AdverseActions::State)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(int(AdverseActions::WaitingDays, 7))
                    .col(ts(AdverseActions::StartedAt))
                    .col(ts_opt(AdverseActions::DueAt))
                    .col(
                        ColumnDef::new(AdverseActions::RemainingDays)
                            .integer()
                            .null(),
                    )
                    .col(text_opt(AdverseActions::DisputeReason))
                    .col(ts_opt(AdverseActions::DisputedAt))
                    .col(text_opt(AdverseActions::Resolution))
                    .col(ts_opt(AdverseActions::FinalNoticeAt))
                    .col(ts_opt(AdverseActions::EndedAt))
                    .col(ts(AdverseActions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_adverse_actions_check",
            AdverseActions::Table,
            &["check_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(MonitoringAlerts::Table)
                    .col(id(MonitoringAlerts::Id))
                    .col(req(MonitoringAlerts::PartnerId))
                    .col(req(MonitoringAlerts::CheckId))
                    .col(req(MonitoringAlerts::County))
                    .col(req(MonitoringAlerts::State))
                    .col(
                        ColumnDef::new(MonitoringAlerts::ArrestedOn)
                            .date()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MonitoringAlerts::ChargeFiled)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(MonitoringAlerts::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(int(MonitoringAlerts::Rechecks, 0))
                    .col(ts(MonitoringAlerts::CreatedAt))
                    .col(ts(MonitoringAlerts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_monitoring_alerts_check",
            MonitoringAlerts::Table,
            &["partner_id", "check_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(FormSessions::Table)
                    .col(id(FormSessions::Id))
                    .col(req(FormSessions::PartnerId))
                    .col(req(FormSessions::PackageId))
                    .col(req(FormSessions::Zipcode))
                    .col(opt(FormSessions::State))
                    .col(ts(FormSessions::ExpiresAt))
                    .col(ts_opt(FormSessions::UsedAt))
                    .col(ts(FormSessions::CreatedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Tasks::Table.into_iden(),
            CheckReports::Table.into_iden(),
            CandidateLinks::Table.into_iden(),
            Consents::Table.into_iden(),
            Emails::Table.into_iden(),
            AdverseActions::Table.into_iden(),
            MonitoringAlerts::Table.into_iden(),
            FormSessions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        for col in [
            Candidates::DriversLicenseNumber.into_iden(),
            Candidates::DriversLicenseState.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Candidates::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        for col in [
            Partners::AdjudicationRules.into_iden(),
            Partners::AdverseActionDays.into_iden(),
            Partners::RecheckIntervalDays.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Partners::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Candidates {
    Table,
    DriversLicenseNumber,
    DriversLicenseState,
}

#[derive(DeriveIden)]
enum Partners {
    Table,
    AdjudicationRules,
    AdverseActionDays,
    RecheckIntervalDays,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    PartnerId,
    CheckId,
    Kind,
    Payload,
    RunAt,
    Status,
    Attempts,
    LeaseUntil,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CheckReports {
    Table,
    Id,
    PartnerId,
    CheckId,
    Kind,
    ReportEnc,
    Decision,
    Reasons,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CandidateLinks {
    Table,
    Id,
    PartnerId,
    CheckId,
    Purpose,
    TokenHash,
    Progress,
    ExpiresAt,
    UsedAt,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Consents {
    Table,
    Id,
    PartnerId,
    CheckId,
    Method,
    SectionTimestamps,
    Signature,
    IpAddress,
    UserAgent,
    SignedAt,
}

#[derive(DeriveIden)]
enum Emails {
    Table,
    Id,
    PartnerId,
    CandidateId,
    CheckId,
    ToAddress,
    Kind,
    Subject,
    Body,
    CreatedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum AdverseActions {
    Table,
    Id,
    PartnerId,
    CheckId,
    State,
    WaitingDays,
    StartedAt,
    DueAt,
    RemainingDays,
    DisputeReason,
    DisputedAt,
    Resolution,
    FinalNoticeAt,
    EndedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MonitoringAlerts {
    Table,
    Id,
    PartnerId,
    CheckId,
    County,
    State,
    ArrestedOn,
    ChargeFiled,
    Status,
    Rechecks,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FormSessions {
    Table,
    Id,
    PartnerId,
    PackageId,
    Zipcode,
    State,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}
