//! The first step of a partner-hosted consent form (Turn's `/fcra_check/form`): the package and
//! zip code whose disclosures and required fields were handed out.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "form_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub partner_id: String,
    pub package_id: String,
    /// JSON array of the package's search kinds when the form was made: the ones whose required
    /// fields it handed out, which the check it starts runs.
    pub searches: Json,
    pub zipcode: String,
    pub state: Option<String>,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
