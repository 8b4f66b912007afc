//! Mail sent to candidates (invitations, reminders, adverse-action notices), kept so the
//! embedded default needs no mail server and every notice can be shown later.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "emails")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub partner_id: String,
    pub candidate_id: Option<String>,
    pub check_id: Option<String>,
    pub to_address: String,
    /// e.g. `invitation`, `reminder`, `pre_adverse_notice`, `final_adverse_notice`.
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub created_at: DateTimeUtc,
    /// When the mail server accepted it; `None` while queued, or when no server is configured.
    pub sent_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
