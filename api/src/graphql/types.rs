//! GraphQL enums. Their values are the wire values of the seeds (`review__identity`,
//! `super_admin`, `sex_offender`), so what a partner reads in Turn's docs is what they send here.
use async_graphql::Enum;

/// A background check's status: Turn's API status values, 1:1.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "entity::CheckStatus")]
pub enum CheckStatus {
    /// Stored without inviting the candidate (`doChecks: false`). Dashboard: Initiated.
    #[graphql(name = "initiated")]
    Initiated,
    /// The candidate was invited to consent. Dashboard: Emailed.
    #[graphql(name = "emailed")]
    Emailed,
    /// The candidate consented. Dashboard: Consent.
    #[graphql(name = "consent")]
    Consent,
    /// Searches are running. Dashboard: Processing.
    #[graphql(name = "processing")]
    Processing,
    /// Results are being reviewed. Dashboard: Reviewing.
    #[graphql(name = "review")]
    Review,
    /// The candidate's identity is being verified. Dashboard: Verifying.
    #[graphql(name = "review__identity")]
    ReviewIdentity,
    /// Compliance review of a sex-offender hit. Dashboard: Compliance Review.
    #[graphql(name = "review__so")]
    ReviewSo,
    /// Quality-assurance compliance review. Dashboard: Compliance Review.
    #[graphql(name = "review__qa")]
    ReviewQa,
    /// Compliance review of a motor vehicle record. Dashboard: Compliance Review.
    #[graphql(name = "review__mvr")]
    ReviewMvr,
    /// Compliance review of a continuous-monitoring alert. Dashboard: Compliance Review.
    #[graphql(name = "review__cm")]
    ReviewCm,
    /// Results need the partner's consideration. Dashboard: Consider.
    #[graphql(name = "pending")]
    Pending,
    /// Pre-adverse action notice sent. Dashboard: First Notice.
    #[graphql(name = "pending__first_notice")]
    PendingFirstNotice,
    /// Final adverse action notice sent. Dashboard: Second Notice.
    #[graphql(name = "pending__second_notice")]
    PendingSecondNotice,
    /// Cleared. Dashboard: Approved.
    #[graphql(name = "approved")]
    Approved,
    /// Rejected after adverse action. Dashboard: Rejected.
    #[graphql(name = "rejected")]
    Rejected,
    /// Withdrawn by the partner. Dashboard: Withdrawn.
    #[graphql(name = "withdrawn")]
    Withdrawn,
}

/// A team member's role (seed 001).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "entity::Role", rename_items = "snake_case")]
pub enum Role {
    /// Integrations, webhooks and API tokens, plus everything an admin may do.
    SuperAdmin,
    /// Packages, team and partner settings, plus everything a team member may do.
    Admin,
    /// Candidates, checks and reports, including SSN and date of birth.
    TeamMember,
    /// Candidates and statuses; no report contents, SSN or date of birth.
    LimitedTeamMember,
}

/// A search a package runs.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "entity::SearchKind", rename_items = "snake_case")]
pub enum SearchKind {
    /// County and national criminal records.
    Criminal,
    /// Motor vehicle record.
    Mvr,
    /// Sex-offender registries.
    SexOffender,
    /// Global watchlists.
    Watchlist,
    /// SSN trace and identity verification.
    SsnTrace,
}
