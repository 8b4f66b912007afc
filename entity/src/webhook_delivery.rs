//! One event to be delivered to one destination (an endpoint, or a check's `callback_url`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub partner_id: String,
    /// `None` for a delivery to a check's `callback_url`.
    pub endpoint_id: Option<String>,
    /// `{event_id}:{endpoint id or "callback"}`: one delivery per event and destination, however
    /// often the relay sees the event.
    #[sea_orm(unique)]
    pub dedupe_key: String,
    pub url: String,
    /// The `webhook-id` header: stable across retries and resends.
    pub event_id: String,
    pub event_type: String,
    /// The exact JSON body sent.
    pub body: String,
    /// `pending`, `delivered`, `failed` (gave up) or `cancelled` (endpoint disabled).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTimeUtc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
