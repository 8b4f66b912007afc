//! First start: on an empty database, a demo partner with a super_admin, a default package and
//! a ready token, so a newcomer can open GraphiQL at once.
use entity::{Role, SearchKind, user};
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};

use crate::{Actor, Service, ServiceResult, ids};

/// What a fresh partner comes with.
pub struct NewPartner {
    pub partner_id: String,
    pub admin_email: String,
    pub token: String,
}

impl Service {
    /// Creates a partner with a super_admin team member, a default package and a token for that
    /// member valid for `token_days`.
    pub async fn provision_partner(
        &self,
        name: &str,
        admin_email: &str,
        token_days: i64,
    ) -> ServiceResult<NewPartner> {
        let partner = self.create_partner(name).await?;
        let email = crate::domain::email("email", admin_email)?;
        let now = crate::now();
        let admin = user::ActiveModel {
            id: Set(ids::uuid()),
            partner_id: Set(partner.id.clone()),
            email: Set(email.clone()),
            name: Set(Some("Administrator".into())),
            role: Set(Role::SuperAdmin),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        let system = Actor::system(&partner.id);
        self.create_package(
            &system,
            "Standard",
            &[
                SearchKind::Criminal,
                SearchKind::SexOffender,
                SearchKind::Watchlist,
                SearchKind::SsnTrace,
            ],
            true,
        )
        .await?;
        let spec = crate::token::MintSpec {
            partner_id: &partner.id,
            name: "bootstrap",
            role: Role::SuperAdmin,
            member: Some(&admin),
            created_by: None,
            expires_in_days: token_days,
        };
        let minted = self.mint(&self.db, spec).await?;
        Ok(NewPartner {
            partner_id: partner.id,
            admin_email: email,
            token: minted.token,
        })
    }

    /// On an empty database, provisions the demo partner and returns it; otherwise `None`.
    pub async fn bootstrap_if_empty(&self) -> ServiceResult<Option<NewPartner>> {
        if entity::partner::Entity::find().count(&self.db).await? > 0 {
            return Ok(None);
        }
        self.provision_partner("Demo Partner", "admin@demo.clearhire.dev", 30)
            .await
            .map(Some)
    }
}
