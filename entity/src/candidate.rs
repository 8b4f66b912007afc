//! A candidate (Turn's "worker"): the person checks are run on.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "candidates")]
pub struct Model {
    /// Insertion order; the key of cursor pagination.
    #[sea_orm(primary_key)]
    pub seq: i64,
    /// The worker id, a UUID.
    #[sea_orm(unique)]
    pub id: String,
    /// `C` + 10 digits, Turn's short id.
    #[sea_orm(unique)]
    pub turn_id: String,
    pub partner_id: String,
    pub reference_id: Option<String>,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub last_name: String,
    pub email: String,
    pub phone: Option<String>,
    /// AES-256-GCM sealed `YYYY-MM-DD`.
    pub date_of_birth_enc: Option<String>,
    /// AES-256-GCM sealed nine digits.
    pub ssn_enc: Option<String>,
    pub ssn_last4: Option<String>,
    /// Keyed HMAC of the SSN, so duplicates can be found without decrypting.
    pub ssn_fingerprint: Option<String>,
    pub zip: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub address: Option<String>,
    pub experience: Option<String>,
    pub interests: Option<String>,
    pub transportation_method: Option<String>,
    /// Driver's licence, collected for packages with an MVR search.
    pub drivers_license_number: Option<String>,
    pub drivers_license_state: Option<String>,
    /// Lower-cased names and email, for text search on both backends.
    pub search_text: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
