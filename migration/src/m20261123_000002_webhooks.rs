//! Webhook endpoints, deliveries and their attempts.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn s(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().not_null().to_owned()
}
fn s_opt(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().null().to_owned()
}
fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}
fn ts_opt(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(
                        ColumnDef::new(WebhookEndpoints::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(s(WebhookEndpoints::PartnerId))
                    .col(s(WebhookEndpoints::Url))
                    .col(s_opt(WebhookEndpoints::Description))
                    .col(
                        ColumnDef::new(WebhookEndpoints::EventTypes)
                            .json_binary()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookEndpoints::Enabled)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(s(WebhookEndpoints::SecretEnc))
                    .col(s_opt(WebhookEndpoints::PreviousSecretEnc))
                    .col(ts_opt(WebhookEndpoints::PreviousSecretExpiresAt))
                    .col(s_opt(WebhookEndpoints::DisabledReason))
                    .col(ts_opt(WebhookEndpoints::FailingSince))
                    .col(ts(WebhookEndpoints::CreatedAt))
                    .col(ts(WebhookEndpoints::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_endpoints_partner")
                    .table(WebhookEndpoints::Table)
                    .col(WebhookEndpoints::PartnerId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(
                        ColumnDef::new(WebhookDeliveries::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(s(WebhookDeliveries::PartnerId))
                    .col(s_opt(WebhookDeliveries::EndpointId))
                    .col(
                        ColumnDef::new(WebhookDeliveries::DedupeKey)
                            .string_len(160)
                            .not_null()
                            .unique_key(),
                    )
                    .col(s(WebhookDeliveries::Url))
                    .col(s(WebhookDeliveries::EventId))
                    .col(s(WebhookDeliveries::EventType))
                    .col(ColumnDef::new(WebhookDeliveries::Body).text().not_null())
                    .col(
                        ColumnDef::new(WebhookDeliveries::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ts_opt(WebhookDeliveries::NextAttemptAt))
                    .col(
                        ColumnDef::new(WebhookDeliveries::LastStatusCode)
                            .integer()
                            .null(),
                    )
                    .col(ColumnDef::new(WebhookDeliveries::LastError).text().null())
                    .col(ts_opt(WebhookDeliveries::DeliveredAt))
                    .col(ts(WebhookDeliveries::CreatedAt))
                    .col(ts(WebhookDeliveries::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "ix_deliveries_partner_created",
                vec![WebhookDeliveries::PartnerId, WebhookDeliveries::CreatedAt],
            ),
            (
                "ix_deliveries_endpoint_status",
                vec![WebhookDeliveries::EndpointId, WebhookDeliveries::Status],
            ),
            (
                "ix_deliveries_status_next",
                vec![WebhookDeliveries::Status, WebhookDeliveries::NextAttemptAt],
            ),
        ] {
            let mut idx = Index::create();
            idx.name(name).table(WebhookDeliveries::Table);
            for c in cols {
                idx.col(c);
            }
            manager.create_index(idx.to_owned()).await?;
        }

        let mut attempt_id = ColumnDef::new(WebhookAttempts::Id);
        match manager.get_database_backend() {
            DatabaseBackend::Sqlite => attempt_id.integer(),
            _ => attempt_id.big_integer(),
        };
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(attempt_id.not_null().auto_increment().primary_key())
                    .col(s(WebhookAttempts::PartnerId))
                    .col(s(WebhookAttempts::DeliveryId))
                    .col(s(WebhookAttempts::Url))
                    .col(ColumnDef::new(WebhookAttempts::StatusCode).integer().null())
                    .col(ColumnDef::new(WebhookAttempts::ResponseBody).text().null())
                    .col(
                        ColumnDef::new(WebhookAttempts::DurationMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebhookAttempts::Error).text().null())
                    .col(ts(WebhookAttempts::AttemptedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_attempts_delivery")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::DeliveryId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookAttempts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookEndpoints::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    PartnerId,
    Url,
    Description,
    EventTypes,
    Enabled,
    SecretEnc,
    PreviousSecretEnc,
    PreviousSecretExpiresAt,
    DisabledReason,
    FailingSince,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookDeliveries {
    Table,
    Id,
    PartnerId,
    EndpointId,
    DedupeKey,
    Url,
    EventId,
    EventType,
    Body,
    Status,
    Attempts,
    NextAttemptAt,
    LastStatusCode,
    LastError,
    DeliveredAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    PartnerId,
    DeliveryId,
    Url,
    StatusCode,
    ResponseBody,
    DurationMs,
    Error,
    AttemptedAt,
}
