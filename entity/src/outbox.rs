//! The transactional outbox: one row per domain event, written in the same transaction as the
//! state change it describes. The event relay delivers rows in `id` order.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Stable event id (UUID), the idempotency key receivers see.
    #[sea_orm(unique)]
    pub event_id: String,
    pub partner_id: String,
    /// e.g. `check.status_changed`.
    pub event_type: String,
    pub aggregate_id: String,
    pub payload: Json,
    pub created_at: DateTimeUtc,
    pub published_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
