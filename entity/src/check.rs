//! A background check of one candidate with one package.
use sea_orm::entity::prelude::*;

use crate::CheckStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "checks")]
pub struct Model {
    /// A UUID; also the `callback_uuid` of the results webhook.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub partner_id: String,
    pub candidate_id: String,
    pub package_id: String,
    /// JSON array of the search kinds the check runs: its package's when it was started. A
    /// recheck runs them again; a later change to the package does not reach it.
    pub searches: Json,
    pub status: CheckStatus,
    pub callback_url: Option<String>,
    pub reference_id: Option<String>,
    pub consent_date: Option<DateTimeUtc>,
    pub recheck_date: Option<Date>,
    pub cm_criminal_enroll: Option<Date>,
    pub criminal_monitoring_triggered: bool,
    /// AES-256-GCM sealed JSON report in seed 003's results shape.
    pub report_enc: Option<String>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
