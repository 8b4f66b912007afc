//! An arrest alert for a candidate enrolled in continuous criminal monitoring, and the county
//! rechecks it causes.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "monitoring_alerts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub partner_id: String,
    pub check_id: String,
    pub county: String,
    pub state: String,
    pub arrested_on: Date,
    /// Sandbox only: whether the courthouse will show a charge.
    pub charge_filed: bool,
    /// `waiting` (recheck scheduled), `charged` or `no_charge`.
    pub status: String,
    pub rechecks: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
