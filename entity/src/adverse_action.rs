//! An adverse action in the FCRA order: pre-adverse notice, a waiting period in business days
//! (paused by a dispute), final notice, rejection; or cancelled.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "adverse_actions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub partner_id: String,
    pub check_id: String,
    /// `waiting`, `disputed`, `final_notice`, `completed` or `cancelled`.
    pub state: String,
    pub waiting_days: i32,
    pub started_at: DateTimeUtc,
    /// When the waiting period ends (`None` while disputed).
    pub due_at: Option<DateTimeUtc>,
    /// Business days left when a dispute paused the clock.
    pub remaining_days: Option<i32>,
    pub dispute_reason: Option<String>,
    pub disputed_at: Option<DateTimeUtc>,
    pub resolution: Option<String>,
    pub final_notice_at: Option<DateTimeUtc>,
    pub ended_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
