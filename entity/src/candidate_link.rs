//! A link sent to a candidate (consent invitation, copy of the report): only a hash of its token
//! is kept; consent links are single-use; every link expires.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "candidate_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub partner_id: String,
    pub check_id: String,
    /// `consent` or `report`.
    pub purpose: String,
    /// SHA-256 (hex) of the token in the link.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// JSON object: consent sections acknowledged so far, with their timestamps.
    pub progress: String,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
