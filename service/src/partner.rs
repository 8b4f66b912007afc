//! Partner (tenant) settings.
use entity::{Role, partner};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use serde_json::json;

use crate::db::SelectUnique;
use crate::events::{self, EventType};
use crate::{Actor, Service, ServiceError, ServiceResult, db, domain, ids};

/// Changes to partner settings; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct PartnerPatch {
    pub name: Option<String>,
    /// `Some("")` clears it.
    pub public_base_url: Option<String>,
    /// Adjudication rules as JSON (see `screening::adjudication::AdjudicationRules`); `Some("")`
    /// restores the defaults.
    pub adjudication_rules: Option<String>,
    /// Business days between the pre-adverse and the final notice (1 to 30).
    pub adverse_action_days: Option<i32>,
    /// Days after an approval when a recheck runs; `Some(0)` turns scheduled rechecks off.
    pub recheck_interval_days: Option<i32>,
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
        let rules = match patch.adjudication_rules.as_deref().map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(r) => {
                let parsed: crate::screening::adjudication::AdjudicationRules =
                    serde_json::from_str(r).map_err(|e| {
                        ServiceError::invalid("adjudicationRules", format!("not valid rules: {e}"))
                    })?;
                if let Some(problem) = parsed.problem() {
                    return Err(ServiceError::invalid(
                        "adjudicationRules",
                        format!("not valid rules: {problem}"),
                    ));
                }
                Some(Some(
                    serde_json::to_string(&parsed).map_err(anyhow::Error::from)?,
                ))
            }
        };
        if let Some(d) = patch.adverse_action_days
            && !(1..=30).contains(&d)
        {
            return Err(ServiceError::invalid(
                "adverseActionDays",
                "must be 1 to 30 business days",
            ));
        }
        if let Some(d) = patch.recheck_interval_days
            && !(0..=3650).contains(&d)
        {
            return Err(ServiceError::invalid(
                "recheckIntervalDays",
                "must be 0 (off) to 3650 days",
            ));
        }
        let txn = db::begin_write(&self.db).await?;
        let mut am = load(&txn, &actor.partner_id).await?.into_active_model();
        if let Some(r) = rules {
            am.adjudication_rules = Set(r);
        }
        if let Some(d) = patch.adverse_action_days {
            am.adverse_action_days = Set(d);
        }
        if let Some(d) = patch.recheck_interval_days {
            am.recheck_interval_days = Set((d > 0).then_some(d));
        }
        if let Some(n) = name {
            am.name = Set(n);
        }
        if let Some(b) = base {
            am.public_base_url = Set(b);
        }
        am.updated_at = Set(crate::now());
        let p = am.update(&txn).await?;
        if p.recheck_interval_days.is_none() {
            // The interval is off (the checks' scheduled tasks find it so and do nothing).
            crate::check::recheck_dates_cleared()
                .filter(entity::check::Column::PartnerId.eq(&p.id))
                .exec(&txn)
                .await?;
        }
        events::record(
            &txn,
            &p.id,
            EventType::PartnerUpdated,
            &p.id,
            json!({
                "name": p.name,
                "public_base_url": p.public_base_url,
                "adverse_action_days": p.adverse_action_days,
                "recheck_interval_days": p.recheck_interval_days,
                "adjudication_rules": p
                    .adjudication_rules
                    .as_deref()
                    .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()),
                "actor": actor.subject,
            }),
        )
        .await?;
        self.commit(txn).await?;
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
            adjudication_rules: Set(None),
            adverse_action_days: Set(7),
            recheck_interval_days: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        Ok(p)
    }

    /// The partner's adjudication rules (the defaults when it has set none). Stored rules that
    /// no longer read (a rule renamed by an upgrade) are an error, not the defaults: deciding
    /// checks by rules the partner never chose would be wrong without anyone knowing.
    pub fn adjudication_rules(
        &self,
        partner: &partner::Model,
    ) -> ServiceResult<crate::screening::adjudication::AdjudicationRules> {
        let Some(stored) = partner.adjudication_rules.as_deref() else {
            return Ok(Default::default());
        };
        serde_json::from_str(stored).map_err(|e| {
            tracing::error!(partner = %partner.id, error = %e, "stored adjudication rules do not read");
            ServiceError::Internal(anyhow::anyhow!(
                "the adjudication rules of partner {} do not read: {e}",
                partner.id
            ))
        })
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
        .unique(conn)
        .await?
        .ok_or(ServiceError::not_found("partner"))
}
