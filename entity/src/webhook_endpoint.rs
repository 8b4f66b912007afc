//! A partner's webhook endpoint: where events of the types it subscribes to are delivered.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub partner_id: String,
    pub url: String,
    pub description: Option<String>,
    /// JSON array of subscribed event types; empty means every type.
    pub event_types: Json,
    pub enabled: bool,
    /// AES-256-GCM sealed `whsec_…` signing secret.
    pub secret_enc: String,
    /// The secret before the last rotation, still signing until `previous_secret_expires_at`.
    pub previous_secret_enc: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    /// Why the endpoint was disabled automatically (410 Gone, failing for days), if it was.
    pub disabled_reason: Option<String>,
    /// Start of the current run of failed deliveries.
    pub failing_since: Option<DateTimeUtc>,
    /// The last failed attempt; a run of failures ends when a day passes without one.
    pub last_failure_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
