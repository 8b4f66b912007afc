//! A partner: the tenant every other row belongs to.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "partners")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    /// Base URL of the partner dashboard, used to build `dashboard_url` links.
    pub public_base_url: Option<String>,
    pub default_package_id: Option<String>,
    /// JSON of the partner's adjudication rules (`None`: the defaults).
    pub adjudication_rules: Option<String>,
    /// Business days between the pre-adverse and the final adverse action notice.
    pub adverse_action_days: i32,
    /// Days after an approval when a recheck runs (`None`: no scheduled rechecks).
    pub recheck_interval_days: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
