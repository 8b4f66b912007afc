//! Partner roles of seed 001, from most to least privileged.
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Integrations, webhooks and API tokens, plus everything below.
    #[sea_orm(string_value = "super_admin")]
    SuperAdmin,
    /// Packages, flows, team and partner settings, plus everything below.
    #[sea_orm(string_value = "admin")]
    Admin,
    /// Candidates, checks and reports, including SSN and date of birth.
    #[sea_orm(string_value = "team_member")]
    TeamMember,
    /// Candidates and statuses only: no report contents, no SSN, no date of birth.
    #[sea_orm(string_value = "limited_team_member")]
    LimitedTeamMember,
}

impl Role {
    fn rank(self) -> u8 {
        match self {
            Role::SuperAdmin => 3,
            Role::Admin => 2,
            Role::TeamMember => 1,
            Role::LimitedTeamMember => 0,
        }
    }

    /// Whether this role holds at least the privileges of `other`.
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }

    /// This role, or `cap` if that is lower: what a token made at this role may do for a member
    /// whose role is `cap` now.
    pub fn capped_at(self, cap: Role) -> Role {
        if cap.at_least(self) { self } else { cap }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super_admin",
            Role::Admin => "admin",
            Role::TeamMember => "team_member",
            Role::LimitedTeamMember => "limited_team_member",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::SuperAdmin,
            Role::Admin,
            Role::TeamMember,
            Role::LimitedTeamMember,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// May see SSN, date of birth and report contents.
    pub fn may_see_sensitive(self) -> bool {
        self.at_least(Role::TeamMember)
    }
}

#[cfg(test)]
mod tests {
    use super::Role::*;

    #[test]
    fn a_role_capped_is_the_lower_of_the_two() {
        assert_eq!(Admin.capped_at(LimitedTeamMember), LimitedTeamMember);
        assert_eq!(LimitedTeamMember.capped_at(Admin), LimitedTeamMember);
        assert_eq!(TeamMember.capped_at(TeamMember), TeamMember);
        assert_eq!(SuperAdmin.capped_at(Admin), Admin);
    }
}
