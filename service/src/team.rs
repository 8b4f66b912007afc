//! Team members of a partner and their roles.
use entity::{Role, api_token, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use crate::db::SelectUnique;
use crate::error::is_unique_violation;
use crate::events::{self, EventType};
use crate::{Actor, Service, ServiceError, ServiceResult, db, domain, ids};

impl Service {
    pub async fn team_members(&self, actor: &Actor) -> ServiceResult<Vec<user::Model>> {
        actor.require(Role::Admin)?;
        Ok(user::Entity::find()
            .filter(user::Column::PartnerId.eq(&actor.partner_id))
            .order_by_asc(user::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    pub async fn team_member(&self, actor: &Actor, id: &str) -> ServiceResult<user::Model> {
        find(&self.db, &actor.partner_id, id).await
    }

    /// Adds a team member. Only a super_admin may grant super_admin.
    pub async fn invite_team_member(
        &self,
        actor: &Actor,
        email: &str,
        name: Option<&str>,
        role: Role,
    ) -> ServiceResult<user::Model> {
        actor.require(Role::Admin)?;
        may_grant(actor, role)?;
        let email = domain::email("email", email)?;
        let name = domain::opt_text("name", name, 200)?;
        let now = crate::now();
        let txn = db::begin_write(&self.db).await?;
        let u = user::ActiveModel {
            id: Set(ids::uuid()),
            partner_id: Set(actor.partner_id.clone()),
            email: Set(email.clone()),
            name: Set(name),
            role: Set(role),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|e| {
            if is_unique_violation(&e, "email") {
                ServiceError::Conflict {
                    field: Some("email".into()),
                    message: format!("{email} is already a team member"),
                    existing_id: None,
                }
            } else {
                e.into()
            }
        })?;
        events::record(
            &txn,
            &actor.partner_id,
            EventType::TeamMemberInvited,
            &u.id,
            json!({"email": u.email, "role": role.as_str(), "actor": actor.subject}),
        )
        .await?;
        self.commit(txn).await?;
        Ok(u)
    }

    /// Changes a member's role; their tokens act at most at the new role at once.
    pub async fn change_team_member_role(
        &self,
        actor: &Actor,
        id: &str,
        role: Role,
    ) -> ServiceResult<user::Model> {
        actor.require(Role::Admin)?;
        let txn = db::begin_write(&self.db).await?;
        let current = find_locked(&txn, &actor.partner_id, id).await?;
        may_grant(actor, role)?;
        may_grant(actor, current.role)?;
        if current.role == Role::SuperAdmin && role != Role::SuperAdmin {
            ensure_another_super_admin(&txn, &actor.partner_id, id).await?;
        }
        let mut am = current.into_active_model();
        am.role = Set(role);
        am.updated_at = Set(crate::now());
        let u = am.update(&txn).await?;
        // The member's tokens keep the role they were made with: each acts at that role or the
        // member's now, whichever is lower (`load_token_actor`). Rewriting them lost which were
        // made narrower on purpose: a tool's `limited_team_member` token of a member demoted to
        // that role and promoted again was raised with them.
        events::record(
            &txn,
            &actor.partner_id,
            EventType::TeamMemberUpdated,
            id,
            json!({"email": u.email, "role": role.as_str(), "actor": actor.subject}),
        )
        .await?;
        self.commit(txn).await?;
        self.tokens.forget_all();
        Ok(u)
    }

    /// Removes a member and revokes their tokens.
    pub async fn remove_team_member(&self, actor: &Actor, id: &str) -> ServiceResult<user::Model> {
        actor.require(Role::Admin)?;
        if actor.subject == id {
            return Err(ServiceError::conflict("you cannot remove yourself"));
        }
        let txn = db::begin_write(&self.db).await?;
        let current = find_locked(&txn, &actor.partner_id, id).await?;
        may_grant(actor, current.role)?;
        if current.role == Role::SuperAdmin {
            ensure_another_super_admin(&txn, &actor.partner_id, id).await?;
        }
        user::Entity::delete_by_id(id.to_string())
            .exec(&txn)
            .await?;
        api_token::Entity::update_many()
            .col_expr(api_token::Column::RevokedAt, Expr::value(crate::now()))
            .filter(api_token::Column::UserId.eq(id))
            .filter(api_token::Column::PartnerId.eq(&actor.partner_id))
            .filter(api_token::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        events::record(
            &txn,
            &actor.partner_id,
            EventType::TeamMemberRemoved,
            id,
            json!({"email": current.email, "actor": actor.subject}),
        )
        .await?;
        self.commit(txn).await?;
        self.tokens.forget_all();
        Ok(current)
    }
}

/// A team member of the partner, read on `conn` (the caller's transaction when it writes).
/// The member, its row taken first (PostgreSQL): the role a change is judged on is the role it
/// changes, not one a promotion committed meanwhile replaced (an admin would demote or remove a
/// member just made super_admin).
async fn find_locked(
    txn: &sea_orm::DatabaseTransaction,
    partner_id: &str,
    id: &str,
) -> ServiceResult<user::Model> {
    db::lock_row(txn, "users", partner_id, id).await?;
    find(txn, partner_id, id).await
}

async fn find<C: sea_orm::ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    id: &str,
) -> ServiceResult<user::Model> {
    user::Entity::find_by_id(id.to_string())
        .owned_by(conn, user::Column::PartnerId, partner_id)
        .await?
        .ok_or(ServiceError::not_found("team member"))
}

fn may_grant(actor: &Actor, role: Role) -> ServiceResult<()> {
    if role == Role::SuperAdmin && actor.role != Role::SuperAdmin {
        return Err(ServiceError::Forbidden(
            "only a super_admin can grant or change super_admin".into(),
        ));
    }
    Ok(())
}

async fn ensure_another_super_admin(
    txn: &sea_orm::DatabaseTransaction,
    partner_id: &str,
    except: &str,
) -> ServiceResult<()> {
    use sea_orm::PaginatorTrait;
    // Two super_admins demoting or removing each other at once take turns: the second sees
    // the first's change and is refused.
    crate::db::lock_row(txn, "partners", partner_id, partner_id).await?;
    let others = user::Entity::find()
        .filter(user::Column::PartnerId.eq(partner_id))
        .filter(user::Column::Role.eq(Role::SuperAdmin))
        .filter(user::Column::Id.ne(except))
        .count(txn)
        .await?;
    if others == 0 {
        return Err(ServiceError::conflict(
            "a partner must keep at least one super_admin",
        ));
    }
    Ok(())
}
