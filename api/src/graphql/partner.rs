//! `me`, partner settings, team members and API tokens.
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{api_token, partner, user};
use service::partner::PartnerPatch;
use service::token::NewToken;

use super::error::{GqlResult, actor, gql, svc};
use super::package::Package;
use super::types::Role;

/// A partner: the organisation whose data this is.
pub struct Partner(pub partner::Model);

/// A partner: the organisation whose data this is.
#[Object]
impl Partner {
    /// Partner id (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Base URL of the partner dashboard for `dashboard_url` links; null means this deployment's.
    async fn public_base_url(&self) -> Option<&str> {
        self.0.public_base_url.as_deref()
    }
    /// The package a check runs when none is named.
    async fn default_package(&self, ctx: &Context<'_>) -> GqlResult<Option<Package>> {
        let Some(id) = &self.0.default_package_id else {
            return Ok(None);
        };
        Ok(Some(Package(
            svc(ctx).package(actor(ctx)?, id).await.map_err(gql)?,
        )))
    }
    /// The adjudication rules checks are decided by (the defaults unless changed).
    async fn adjudication_rules(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<async_graphql::Json<serde_json::Value>> {
        let rules = svc(ctx).adjudication_rules(&self.0).map_err(gql)?;
        Ok(async_graphql::Json(
            serde_json::to_value(rules).unwrap_or_default(),
        ))
    }
    /// Business days between the pre-adverse and the final adverse action notice.
    async fn adverse_action_days(&self) -> i32 {
        self.0.adverse_action_days
    }
    /// Days after an approval when a recheck runs; null: no scheduled rechecks.
    async fn recheck_interval_days(&self) -> Option<i32> {
        self.0.recheck_interval_days
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Who the caller is.
pub struct Me {
    actor: service::Actor,
}

/// Who the caller is: subject, role and partner.
#[Object]
impl Me {
    /// The token's subject: a team member id, or the token id for a machine token.
    async fn subject(&self) -> &str {
        &self.actor.subject
    }
    /// The team member's email, if the token acts for one.
    async fn email(&self) -> Option<&str> {
        self.actor.email.as_deref()
    }
    /// The effective role.
    async fn role(&self) -> Role {
        self.actor.role.into()
    }
    /// The token the request was made with.
    async fn token_id(&self) -> Option<&str> {
        self.actor.token_id.as_deref()
    }
    /// The caller's partner.
    async fn partner(&self, ctx: &Context<'_>) -> GqlResult<Partner> {
        Ok(Partner(svc(ctx).partner(&self.actor).await.map_err(gql)?))
    }
}

/// A member of the partner's team.
#[derive(SimpleObject)]
pub struct TeamMember {
    /// Team member id (a UUID).
    pub id: ID,
    /// Login email, unique within the partner.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// What they may do.
    pub role: Role,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<user::Model> for TeamMember {
    fn from(u: user::Model) -> Self {
        Self {
            id: ID(u.id),
            email: u.email,
            name: u.name,
            role: u.role.into(),
            created_at: u.created_at,
        }
    }
}

/// An API token's record (the token itself is only shown when created).
#[derive(SimpleObject)]
pub struct ApiToken {
    /// Token id (the JWT `jti`).
    pub id: ID,
    /// What the token is for.
    pub name: String,
    /// Role the token acts with.
    pub role: Role,
    /// The team member it acts for, if any.
    pub user_id: Option<ID>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When the token stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// When the token was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_token::Model> for ApiToken {
    fn from(t: api_token::Model) -> Self {
        Self {
            id: ID(t.id),
            name: t.name,
            role: t.role.into(),
            user_id: t.user_id.map(ID),
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A freshly minted token. `token` is shown only here: store it now.
#[derive(SimpleObject)]
pub struct CreatedApiToken {
    /// The bearer token (a JWT) to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// The stored record of the new token.
    pub api_token: ApiToken,
}

/// Partner settings to change; omitted fields stay as they are.
#[derive(InputObject)]
pub struct PartnerSettingsInput {
    /// New display name.
    pub name: Option<String>,
    /// Base URL of your dashboard for `dashboard_url` links; empty string clears it.
    pub public_base_url: Option<String>,
    /// Adjudication rules (see the README); null leaves them, `{}` restores the defaults.
    pub adjudication_rules: Option<async_graphql::Json<serde_json::Value>>,
    /// Business days between the pre-adverse and the final adverse action notice (1–30).
    pub adverse_action_days: Option<i32>,
    /// Days after an approval when a recheck runs; 0 turns scheduled rechecks off.
    pub recheck_interval_days: Option<i32>,
}

/// A team member to add.
#[derive(InputObject)]
pub struct InviteTeamMemberInput {
    /// Their email; unique within the partner.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// What they may do; only super admins grant super_admin.
    pub role: Role,
}

/// A token to mint.
#[derive(InputObject)]
pub struct CreateApiTokenInput {
    /// What the token is for, e.g. "ATS sync".
    pub name: String,
    /// Role the token acts with.
    pub role: Role,
    /// Make the token act for this team member (its role may not exceed theirs).
    pub user_id: Option<ID>,
    /// Days until the token expires (1 to 3650).
    #[graphql(default = 90)]
    pub expires_in_days: i64,
}

#[derive(Default)]
pub struct PartnerQuery;

#[Object]
impl PartnerQuery {
    /// The caller: subject, role and partner.
    async fn me(&self, ctx: &Context<'_>) -> GqlResult<Me> {
        Ok(Me {
            actor: actor(ctx)?.clone(),
        })
    }
    /// The team. Admins and above.
    async fn team_members(&self, ctx: &Context<'_>) -> GqlResult<Vec<TeamMember>> {
        Ok(svc(ctx)
            .team_members(actor(ctx)?)
            .await
            .map_err(gql)?
            .into_iter()
            .map(Into::into)
            .collect())
    }
    /// Issued API tokens, newest first. Super admins only.
    async fn api_tokens(&self, ctx: &Context<'_>) -> GqlResult<Vec<ApiToken>> {
        Ok(svc(ctx)
            .api_tokens(actor(ctx)?)
            .await
            .map_err(gql)?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(Default)]
pub struct PartnerMutation;

#[Object]
impl PartnerMutation {
    /// Changes partner settings. Admins and above.
    async fn update_partner_settings(
        &self,
        ctx: &Context<'_>,
        input: PartnerSettingsInput,
    ) -> GqlResult<Partner> {
        let patch = PartnerPatch {
            name: input.name,
            public_base_url: input.public_base_url,
            adjudication_rules: input.adjudication_rules.map(|j| j.0.to_string()),
            adverse_action_days: input.adverse_action_days,
            recheck_interval_days: input.recheck_interval_days,
        };
        Ok(Partner(
            svc(ctx)
                .update_partner(actor(ctx)?, patch)
                .await
                .map_err(gql)?,
        ))
    }
    /// Adds a team member. Admins and above; only super admins grant super_admin.
    async fn invite_team_member(
        &self,
        ctx: &Context<'_>,
        input: InviteTeamMemberInput,
    ) -> GqlResult<TeamMember> {
        let u = svc(ctx)
            .invite_team_member(
                actor(ctx)?,
                &input.email,
                input.name.as_deref(),
                input.role.into(),
            )
            .await
            .map_err(gql)?;
        Ok(u.into())
    }
    /// Changes a team member's role; their tokens act at most at the new role at once (each
    /// keeps the role it was made with, and acts at the lower of the two).
    async fn change_team_member_role(
        &self,
        ctx: &Context<'_>,
        id: ID,
        role: Role,
    ) -> GqlResult<TeamMember> {
        Ok(svc(ctx)
            .change_team_member_role(actor(ctx)?, &id, role.into())
            .await
            .map_err(gql)?
            .into())
    }
    /// Removes a team member and revokes their tokens.
    async fn remove_team_member(&self, ctx: &Context<'_>, id: ID) -> GqlResult<TeamMember> {
        Ok(svc(ctx)
            .remove_team_member(actor(ctx)?, &id)
            .await
            .map_err(gql)?
            .into())
    }
    /// Mints an API token. Super admins only.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        input: CreateApiTokenInput,
    ) -> GqlResult<CreatedApiToken> {
        let minted = svc(ctx)
            .create_api_token(
                actor(ctx)?,
                NewToken {
                    name: input.name,
                    role: input.role.into(),
                    user_id: input.user_id.map(|i| i.0),
                    expires_in_days: input.expires_in_days,
                },
            )
            .await
            .map_err(gql)?;
        Ok(CreatedApiToken {
            token: minted.token,
            api_token: minted.record.into(),
        })
    }
    /// Revokes an API token; it is refused from then on. Super admins only.
    async fn revoke_api_token(&self, ctx: &Context<'_>, id: ID) -> GqlResult<ApiToken> {
        Ok(svc(ctx)
            .revoke_api_token(actor(ctx)?, &id)
            .await
            .map_err(gql)?
            .into())
    }
}
