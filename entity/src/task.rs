//! A durable timed step (run screening, send a reminder, end an adverse-action waiting
//! period, …): the row is the source of truth; the scheduler queues it as a job when due.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub partner_id: String,
    pub check_id: Option<String>,
    /// e.g. `screening.run`, `adverse.final_notice`.
    pub kind: String,
    /// JSON arguments of the step.
    pub payload: String,
    pub run_at: DateTimeUtc,
    /// `pending`, `queued` (handed to the job queue), `running`, `done`, `failed` or `cancelled`.
    pub status: String,
    pub attempts: i32,
    /// While queued or running: until when the job holds the task.
    pub lease_until: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
