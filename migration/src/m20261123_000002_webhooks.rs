//! Webhook endpoints, deliveries and their attempts.
use crate::cols::{auto_pk, opt, req, ts, ts_opt};
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
                    .table(WebhookEndpoints::Table)
                    .col(
                        ColumnDef::new(WebhookEndpoints::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(req(WebhookEndpoints::PartnerId))
                    .col(req(WebhookEndpoints::Url))
                    .col(opt(WebhookEndpoints::Description))
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
                    .col(req(WebhookEndpoints::SecretEnc))
                    .col(opt(WebhookEndpoints::PreviousSecretEnc))
                    .col(ts_opt(WebhookEndpoints::PreviousSecretExpiresAt))
                    .col(opt(WebhookEndpoints::DisabledReason))
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
                    .col(req(WebhookDeliveries::PartnerId))
                    .col(opt(WebhookDeliveries::EndpointId))
                    .col(
                        ColumnDef::new(WebhookDeliveries::DedupeKey)
                            .string_len(160)
                            .not_null()
                            .unique_key(),
                    )
                    .col(req(WebhookDeliveries::Url))
                    .col(req(WebhookDeliveries::EventId))
                    .col(req(WebhookDeliveries::EventType))
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

        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(auto_pk(manager, WebhookAttempts::Id))
                    .col(req(WebhookAttempts::PartnerId))
                    .col(req(WebhookAttempts::DeliveryId))
                    .col(req(WebhookAttempts::Url))
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
