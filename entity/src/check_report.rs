//! Every report a check produced (first run, rechecks, monitoring rechecks), kept side by side.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "check_reports")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub partner_id: String,
    pub check_id: String,
    /// `initial`, `recheck` or `monitoring`.
    pub kind: String,
    /// AES-256-GCM sealed JSON in seed 003's results shape.
    pub report_enc: String,
    /// The status adjudication decided, if it decided one.
    pub decision: Option<String>,
    /// JSON list of the reasons for the decision.
    pub reasons: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
