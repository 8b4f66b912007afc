//! Consent evidence: the disclosure and authorization a candidate signed, with per-section
//! timestamps, signature, IP address and user agent.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub partner_id: String,
    pub check_id: String,
    /// `consent_page` (our page) or `hosted_form` (the partner's own form).
    pub method: String,
    /// JSON object: section key → list of RFC 3339 timestamps.
    pub section_timestamps: String,
    /// The typed name, or the signature image as a data URL.
    pub signature: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub signed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
