//! Partner (tenant) settings.
use entity::{Role, partner};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Set};
use serde_json::json;

use crate::events::{self, EventType};
use crate::{Actor, Service, ServiceError, ServiceResult, db, domain, ids};

/// Changes to partner settings; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct PartnerPatch {
    pub name: Option<String>,
    /// `Some("")` clears it.
    pub public_base_url: Option<String>,
}

impl Service {
    pub async fn partner(&self, actor: &Actor) -> ServiceResult<partner::Model> {
        load(&self.db, &actor.partner_id).await
    }

    pub async fn update_partner(
        &self,
        actor: &Actor,
        patch: PartnerPatch,
    ) -> ServiceResult<partner::Model> {
        actor.require(Role::Admin)?;
        let name = patch
            .name
            .as_deref()
            .map(|n| domain::text("name", n, 200))
            .transpose()?;
        let base = match patch.public_base_url.as_deref().map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(u) => Some(Some(
                domain::http_url("publicBaseUrl", u)?
                    .trim_end_matches('/')
                    .to_string(),
            )),
        };
        let txn = db::begin_write(&self.db).await?;
        let mut am = load(&txn, &actor.partner_id).await?.into_active_model();
        if let Some(n) = name {
            am.name = Set(n);
        }
        if let Some(b) = base {
            am.public_base_url = Set(b);
        }
        am.updated_at = Set(crate::now());
        let p = am.update(&txn).await?;
        events::record(
            &txn,
            &p.id,
            EventType::PartnerUpdated,
            &p.id,
            json!({"name": p.name, "public_base_url": p.public_base_url, "actor": actor.subject}),
        )
        .await?;
        txn.commit().await?;
        Ok(p)
    }

    /// Creates a partner. Only for operators (CLI, first start, tests): there is no tenant yet
    /// whose role could allow it.
    pub async fn create_partner(&self, name: &str) -> ServiceResult<partner::Model> {
        let name = domain::text("name", name, 200)?;
        let now = crate::now();
        let p = partner::ActiveModel {
            id: Set(ids::uuid()),
            name: Set(name),
            public_base_url: Set(None),
            default_package_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        Ok(p)
    }

    /// Base URL for links into the partner dashboard.
    pub fn dashboard_base(&self, partner: &partner::Model) -> String {
        partner
            .public_base_url
            .clone()
            .unwrap_or_else(|| self.settings.public_base_url.clone())
    }

    /// Partners, oldest first (operator use).
    pub async fn all_partners(&self) -> ServiceResult<Vec<partner::Model>> {
        use sea_orm::QueryOrder;
        Ok(partner::Entity::find()
            .order_by_asc(partner::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }
}

pub(crate) async fn load<C: ConnectionTrait>(conn: &C, id: &str) -> ServiceResult<partner::Model> {
    partner::Entity::find_by_id(id.to_string())
        .one(conn)
        .await?
        .ok_or(ServiceError::not_found("partner"))
}
