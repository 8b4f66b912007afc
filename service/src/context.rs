//! Who is calling: the partner (tenant), the subject and the role, from a verified token.
use entity::Role;

use crate::{ServiceError, ServiceResult};

/// The subject of [`Actor::agency`].
const AGENCY: &str = "agency";

#[derive(Debug, Clone)]
pub struct Actor {
    pub partner_id: String,
    /// The user id the token acts for, or the token id for a machine token, or `system`.
    pub subject: String,
    pub email: Option<String>,
    pub role: Role,
    /// The token this actor authenticated with (`None` for internal callers).
    pub token_id: Option<String>,
}

impl Actor {
    /// An internal actor acting with full rights inside one partner (CLI, start-up, workers).
    pub fn system(partner_id: impl Into<String>) -> Self {
        Self {
            partner_id: partner_id.into(),
            subject: "system".into(),
            email: None,
            role: Role::SuperAdmin,
            token_id: None,
        }
    }

    /// The reporting agency (whoever operates this deployment, through the operator commands)
    /// acting on a partner's check: what is the agency's to decide and not the partner's, such
    /// as the outcome of a candidate's dispute of the report.
    pub fn agency(partner_id: &str) -> Self {
        Self {
            partner_id: partner_id.to_string(),
            subject: AGENCY.into(),
            email: None,
            role: Role::SuperAdmin,
            token_id: None,
        }
    }

    /// Whether this is the system itself ([`Actor::system`]: workers, start-up, the operator's
    /// commands) rather than a person or a machine token.
    pub fn is_system(&self) -> bool {
        self.subject == "system" && self.token_id.is_none()
    }

    /// Whether this is the reporting agency ([`Actor::agency`]); no token acts as it.
    pub fn is_agency(&self) -> bool {
        self.subject == AGENCY && self.token_id.is_none()
    }

    /// A candidate acting on their own check through a link (consent, dispute): no team role
    /// beyond what a limited team member may do, and no email shown as a team member's.
    pub fn candidate(partner_id: &str, candidate_id: &str) -> Self {
        Self {
            partner_id: partner_id.to_string(),
            subject: format!("candidate:{candidate_id}"),
            email: None,
            role: Role::LimitedTeamMember,
            token_id: None,
        }
    }

    /// Refuses the call unless the actor holds at least `role`.
    pub fn require(&self, role: Role) -> ServiceResult<()> {
        if self.role.at_least(role) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "this requires the {} role or higher",
                role.as_str()
            )))
        }
    }
}
