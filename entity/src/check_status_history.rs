//! One status transition of a check, with who made it.
use sea_orm::entity::prelude::*;

use crate::CheckStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "check_status_history")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub partner_id: String,
    pub check_id: String,
    /// `None` for the status a check was created in.
    pub from_status: Option<CheckStatus>,
    pub to_status: CheckStatus,
    /// The JWT subject that made the change (user id, token id or `system`).
    pub actor_id: String,
    pub actor_email: Option<String>,
    pub reason: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
