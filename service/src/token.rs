//! API tokens: minted and revoked by super_admins (or the CLI), checked on every request.
use chrono::Duration;
use entity::{Role, api_token, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use crate::auth::Claims;
use crate::db::SelectUnique;
use crate::events::{self, EventType};
use crate::{Actor, Service, ServiceError, ServiceResult, db, domain, ids};

/// A token just minted: the JWT is shown this once and never stored.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub token: String,
    pub record: api_token::Model,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    /// The team member the token acts for; its role may not exceed theirs.
    pub user_id: Option<String>,
    pub expires_in_days: i64,
}

/// What a token is minted with.
pub(crate) struct MintSpec<'a> {
    pub partner_id: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub member: Option<&'a user::Model>,
    pub created_by: Option<&'a str>,
    pub expires_in_days: i64,
}

impl Service {
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        input: NewToken,
    ) -> ServiceResult<MintedToken> {
        actor.require(Role::SuperAdmin)?;
        let name = domain::text("name", &input.name, 200)?;
        if !(1..=3650).contains(&input.expires_in_days) {
            return Err(ServiceError::invalid(
                "expiresInDays",
                "must be between 1 and 3650",
            ));
        }
        let member = match &input.user_id {
            Some(uid) => Some(
                self.team_member(actor, uid)
                    .await
                    .map_err(|_| ServiceError::invalid("userId", "no such team member"))?,
            ),
            None => None,
        };
        if let Some(m) = &member
            && !m.role.at_least(input.role)
        {
            return Err(ServiceError::invalid(
                "role",
                format!("exceeds the team member's role ({})", m.role.as_str()),
            ));
        }
        let txn = db::begin_write(&self.db).await?;
        let spec = MintSpec {
            partner_id: &actor.partner_id,
            name: &name,
            role: input.role,
            member: member.as_ref(),
            created_by: Some(&actor.subject),
            expires_in_days: input.expires_in_days,
        };
        let minted = self.mint(&txn, spec).await?;
        events::record(
            &txn,
            &actor.partner_id,
            EventType::ApiTokenCreated,
            &minted.record.id,
            json!({"name": minted.record.name, "role": input.role.as_str(), "actor": actor.subject}),
        )
        .await?;
        self.commit(txn).await?;
        Ok(minted)
    }

    pub(crate) async fn mint<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        spec: MintSpec<'_>,
    ) -> ServiceResult<MintedToken> {
        let MintSpec {
            partner_id,
            name,
            role,
            member,
            created_by,
            expires_in_days,
        } = spec;
        let id = ids::uuid();
        let now = crate::now();
        let exp = now + Duration::days(expires_in_days);
        let record = api_token::ActiveModel {
            id: Set(id.clone()),
            partner_id: Set(partner_id.to_string()),
            user_id: Set(member.map(|m| m.id.clone())),
            name: Set(name.to_string()),
            role: Set(role),
            created_by: Set(created_by.map(str::to_string)),
            created_at: Set(now),
            expires_at: Set(exp),
            revoked_at: Set(None),
        }
        .insert(conn)
        .await?;
        let claims = Claims {
            partner: partner_id.to_string(),
            sub: member.map(|m| m.id.clone()).unwrap_or_else(|| id.clone()),
            role,
            jti: id,
            iat: now.timestamp(),
            exp: exp.timestamp(),
        };
        let token = self.tokens.sign(&claims)?;
        Ok(MintedToken { token, record })
    }

    pub async fn api_tokens(&self, actor: &Actor) -> ServiceResult<Vec<api_token::Model>> {
        actor.require(Role::SuperAdmin)?;
        let mut tokens = api_token::Entity::find()
            .filter(api_token::Column::PartnerId.eq(&actor.partner_id))
            .order_by_desc(api_token::Column::CreatedAt)
            .all(&self.db)
            .await?;
        // Each as it acts: a member's token at most at the member's role now.
        let members: std::collections::HashMap<String, Role> = user::Entity::find()
            .filter(user::Column::PartnerId.eq(&actor.partner_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|u| (u.id, u.role))
            .collect();
        for t in &mut tokens {
            if let Some(member) = t.user_id.as_ref().and_then(|u| members.get(u)) {
                t.role = t.role.capped_at(*member);
            }
        }
        Ok(tokens)
    }

    pub async fn revoke_api_token(
        &self,
        actor: &Actor,
        id: &str,
    ) -> ServiceResult<api_token::Model> {
        actor.require(Role::SuperAdmin)?;
        let txn = db::begin_write(&self.db).await?;
        let t = api_token::Entity::find_by_id(id.to_string())
            .owned_by(&txn, api_token::Column::PartnerId, &actor.partner_id)
            .await?
            .ok_or(ServiceError::not_found("API token"))?;
        let t = if t.revoked_at.is_some() {
            t
        } else {
            let mut am = t.into_active_model();
            am.revoked_at = Set(Some(crate::now()));
            let t = am.update(&txn).await?;
            events::record(
                &txn,
                &actor.partner_id,
                EventType::ApiTokenRevoked,
                &t.id,
                json!({"name": t.name, "actor": actor.subject}),
            )
            .await?;
            t
        };
        self.commit(txn).await?;
        self.tokens.revoked(id);
        Ok(t)
    }

    /// Turns a bearer token into an actor: signature, expiry, then revocation and the effective
    /// role from the token row (cached for `token_cache_ttl`).
    pub async fn authenticate(&self, bearer: &str) -> ServiceResult<Actor> {
        let claims = self
            .tokens
            .verify(bearer)
            .map_err(ServiceError::Unauthenticated)?;
        let verdict = match self
            .tokens
            .cached(&claims.jti, self.settings.token_cache_ttl)
        {
            Some(v) => v,
            None => {
                let seen = self.tokens.changes_seen();
                let v = self.load_token_actor(&claims).await?;
                self.tokens.remember_loaded(&claims.jti, v.clone(), seen);
                v
            }
        };
        verdict.ok_or_else(|| ServiceError::Unauthenticated("the token has been revoked".into()))
    }

    async fn load_token_actor(&self, claims: &Claims) -> ServiceResult<Option<Actor>> {
        let row = api_token::Entity::find_by_id(claims.jti.clone())
            .owned_by(&self.db, api_token::Column::PartnerId, &claims.partner)
            .await?;
        let Some(row) = row.filter(|r| r.revoked_at.is_none() && r.expires_at > crate::now())
        else {
            return Ok(None);
        };
        // A member's token holds only while the member does, and never above their role now:
        // removing or demoting them revokes or lowers the tokens committed by then, and this
        // covers one minted at the same moment.
        let (email, role) = match &row.user_id {
            Some(uid) => match user::Entity::find_by_id(uid.clone())
                .unique(&self.db)
                .await?
            {
                Some(u) => (Some(u.email), row.role.capped_at(u.role)),
                None => return Ok(None),
            },
            None => (None, row.role),
        };
        Ok(Some(Actor {
            partner_id: row.partner_id,
            subject: claims.sub.clone(),
            email,
            role,
            token_id: Some(row.id),
        }))
    }

    /// Mints a token as an operator (CLI): no caller role to check.
    pub async fn operator_mint_token(
        &self,
        partner_id: &str,
        name: &str,
        role: Role,
        expires_in_days: i64,
    ) -> ServiceResult<MintedToken> {
        crate::partner::load(&self.db, partner_id).await?;
        let actor = Actor::system(partner_id);
        self.create_api_token(
            &actor,
            NewToken {
                name: name.into(),
                role,
                user_id: None,
                expires_in_days,
            },
        )
        .await
    }

    /// Revokes a token as an operator (CLI), whatever its partner.
    pub async fn operator_revoke_token(&self, id: &str) -> ServiceResult<api_token::Model> {
        let t = api_token::Entity::find_by_id(id.to_string())
            .unique(&self.db)
            .await?
            .ok_or(ServiceError::not_found("API token"))?;
        self.revoke_api_token(&Actor::system(t.partner_id), id)
            .await
    }
}
