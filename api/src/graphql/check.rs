//! Checks: start, transition, history, status descriptors, report.
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, InputObject, Json, Object, SelectionField, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{Role, check, check_status_history};
use service::Columns;
use service::check::NewCheck;

use super::candidate::Candidate;
use super::error::{GqlResult, actor, gql, svc};
use super::loaders::{CandidateById, HistoryByCheck, PackageById};
use super::package::Package;
use super::types::{CheckStatus, SearchKind};
use service::package::{recorded_searches, searches_of};

/// A background check of one candidate with one package.
#[derive(Clone)]
pub struct Check(pub check::Model);

/// The check columns the `fields` selected on a `Check` read, besides the keys every read of
/// checks has. A field not listed here reads every column (see
/// [`super::candidate::columns_read`]).
pub(crate) fn columns_read<'a>(
    fields: impl IntoIterator<Item = SelectionField<'a>>,
) -> Columns<check::Entity> {
    use check::Column as C;
    let mut cols = Columns::none();
    for f in fields {
        let read: &[C] = match f.name() {
            "__typename" | "id" | "reports" | "adverseAction" | "tasks" | "monitoringAlerts"
            | "history" => &[C::Id],
            "status" | "statusLabel" | "nextStatuses" => &[C::Status],
            "candidate" => &[C::CandidateId],
            "package" => &[C::PackageId],
            "searches" => &[C::Searches, C::PackageId],
            "callbackUrl" => &[C::CallbackUrl],
            "referenceId" => &[C::ReferenceId],
            "consentDate" => &[C::ConsentDate],
            "recheckDate" => &[C::RecheckDate],
            "cmCriminalEnroll" => &[C::CmCriminalEnroll],
            "criminalMonitoringTriggered" => &[C::CriminalMonitoringTriggered],
            "report" => &[C::ReportEnc],
            "createdAt" => &[C::CreatedAt],
            "updatedAt" => &[C::UpdatedAt],
            _ => return Columns::all(),
        };
        cols = cols.with_all(read);
    }
    cols
}

/// A background check of one candidate with one package.
#[Object]
impl Check {
    /// The check id (a UUID); also the results webhook's `callback_uuid`.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Current status (Turn's API value).
    async fn status(&self) -> CheckStatus {
        self.0.status.into()
    }
    /// The dashboard label of the status, e.g. "Consider" for `pending`.
    async fn status_label(&self) -> &'static str {
        self.0.status.dashboard_label()
    }
    /// The statuses a team member may move this check to with `transitionCheck`: decisions on
    /// review and Consider, adverse action, a withdrawal. What the system does (consent, the
    /// searches' outcome, the final notice) is not among them; `checkStatuses` has the whole
    /// table.
    async fn next_statuses(&self) -> Vec<CheckStatus> {
        self.0
            .status
            .person_choices()
            .into_iter()
            .map(CheckStatus::from)
            .collect()
    }
    /// The candidate checked.
    async fn candidate(&self, ctx: &Context<'_>) -> GqlResult<Option<Candidate>> {
        let loader = ctx.data_unchecked::<DataLoader<CandidateById>>();
        Ok(loader
            .load_one(self.0.candidate_id.clone())
            .await?
            .map(Candidate::from))
    }
    /// The package the check runs.
    async fn package(&self, ctx: &Context<'_>) -> GqlResult<Option<Package>> {
        let loader = ctx.data_unchecked::<DataLoader<PackageById>>();
        Ok(loader
            .load_one(self.0.package_id.clone())
            .await?
            .map(Package))
    }
    /// The searches the check runs: its package's when it was started. A later change to the
    /// package applies to checks started after it; a recheck runs these again.
    async fn searches(&self, ctx: &Context<'_>) -> GqlResult<Vec<SearchKind>> {
        let searches = match recorded_searches(&self.0.searches) {
            Some(searches) => searches,
            // None recorded: the check runs its package's.
            None => ctx
                .data_unchecked::<DataLoader<PackageById>>()
                .load_one(self.0.package_id.clone())
                .await?
                .map(|p| searches_of(&p.searches))
                .unwrap_or_default(),
        };
        Ok(searches.into_iter().map(Into::into).collect())
    }
    /// Where the results webhook goes.
    async fn callback_url(&self) -> Option<&str> {
        self.0.callback_url.as_deref()
    }
    /// Your own id for this check.
    async fn reference_id(&self) -> Option<&str> {
        self.0.reference_id.as_deref()
    }
    /// When the candidate consented (disclosure and authorization).
    async fn consent_date(&self) -> Option<DateTime<Utc>> {
        self.0.consent_date
    }
    /// When the check is due to be rerun.
    async fn recheck_date(&self) -> Option<NaiveDate> {
        self.0.recheck_date
    }
    /// When the candidate was enrolled in continuous criminal monitoring.
    async fn cm_criminal_enroll(&self) -> Option<NaiveDate> {
        self.0.cm_criminal_enroll
    }
    /// Whether continuous monitoring found a new charge.
    async fn criminal_monitoring_triggered(&self) -> bool {
        self.0.criminal_monitoring_triggered
    }
    /// The results report, in the shape of Turn's background check results webhook; null until
    /// the searches finish. Team members and above; FORBIDDEN for limited team members.
    async fn report(&self, ctx: &Context<'_>) -> GqlResult<Option<Json<serde_json::Value>>> {
        Ok(svc(ctx)
            .reveal_report(actor(ctx)?, &self.0)
            .map_err(gql)?
            .map(Json))
    }
    /// Every report the check produced (first run, rechecks, monitoring), oldest first. Team
    /// members and above.
    async fn reports(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<Vec<super::screening::ScreeningReport>> {
        super::screening::check_fields::reports(ctx, &self.0.id).await
    }
    /// The check's adverse action (the latest), if one was started. FORBIDDEN for limited team
    /// members (a dispute's reason and outcome speak of the report).
    async fn adverse_action(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<Option<super::screening::AdverseAction>> {
        super::screening::check_fields::adverse_action(ctx, &self.0.id).await
    }
    /// The consents the candidate signed for this check, oldest first (the first, then any
    /// for a recheck or a monitoring recheck), with their evidence: section times, signature,
    /// IP address, user agent. FORBIDDEN for limited team members.
    async fn consents(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<Vec<super::screening::ConsentEvidence>> {
        super::screening::check_fields::consents(ctx, &self.0.id).await
    }
    /// The check's timed steps (screening runs, reminders, waiting periods, rechecks). Team
    /// members and above.
    async fn tasks(&self, ctx: &Context<'_>) -> GqlResult<Vec<super::screening::ScheduledTask>> {
        super::screening::check_fields::tasks(ctx, &self.0.id).await
    }
    /// Arrest alerts of continuous monitoring. Team members and above.
    async fn monitoring_alerts(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<Vec<super::screening::MonitoringAlert>> {
        super::screening::check_fields::monitoring_alerts(ctx, &self.0.id).await
    }
    /// Every status change, oldest first.
    async fn history(&self, ctx: &Context<'_>) -> GqlResult<Vec<StatusChange>> {
        let reasons = sees_reasons(actor(ctx)?.role);
        let loader = ctx.data_unchecked::<DataLoader<HistoryByCheck>>();
        Ok(loader
            .load_one(self.0.id.clone())
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|h| {
                let mut change = StatusChange::from(h);
                if !reasons {
                    change.reason = None;
                }
                change
            })
            .collect())
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One status change of a check.
#[derive(SimpleObject)]
pub struct StatusChange {
    /// Null for the status the check was created in.
    pub from_status: Option<CheckStatus>,
    /// Status after the change.
    pub to_status: CheckStatus,
    /// Who made it: a team member id, token id, or `system`.
    pub actor_id: String,
    /// Email of the team member who made the change, if a team member did.
    pub actor_email: Option<String>,
    /// Why, as given with the change. Null for limited team members: a reason can quote the
    /// report.
    pub reason: Option<String>,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// Whether `role` sees the reasons of status changes: they can quote the report (an
/// adjudication's findings, a monitoring charge), which limited team members may not see.
pub(crate) fn sees_reasons(role: Role) -> bool {
    role.at_least(Role::TeamMember)
}

impl From<check_status_history::Model> for StatusChange {
    fn from(h: check_status_history::Model) -> Self {
        Self {
            from_status: h.from_status.map(Into::into),
            to_status: h.to_status.into(),
            actor_id: h.actor_id,
            actor_email: h.actor_email,
            reason: h.reason,
            at: h.created_at,
        }
    }
}

/// A status with its dashboard label and where it may go: the transition table.
#[derive(SimpleObject)]
pub struct CheckStatusInfo {
    /// The status (API value).
    pub status: CheckStatus,
    /// Dashboard label (seed 003).
    pub label: &'static str,
    /// Legal next statuses.
    pub next: Vec<CheckStatus>,
    /// The next statuses a team member may choose with `transitionCheck` (the rest are the
    /// system's, or have their own mutation: `recheckCheck`, `resumeChecks`).
    pub by_hand: Vec<CheckStatus>,
    /// Whether a check in this status is still being worked on.
    pub active: bool,
}

/// A check to start.
#[derive(InputObject)]
pub struct StartCheckInput {
    /// Worker id of the candidate.
    pub candidate_id: ID,
    /// Defaults to the partner's default package.
    pub package_id: Option<ID>,
    /// Where the results webhook is sent. FORBIDDEN for limited team members (the results hold
    /// the report and the date of birth).
    pub callback_url: Option<String>,
    /// Your own id for the check.
    pub reference_id: Option<String>,
    /// `false` stores the check as `initiated` without inviting the candidate.
    #[graphql(default = true)]
    pub do_checks: bool,
    /// `false`: you bring the candidate to the consent page yourself (Turn's
    /// `email_candidate`). The check stays `initiated`, nothing is mailed, and
    /// `issueConsentLink` gives you the link to send or embed.
    #[graphql(default = true)]
    pub email_candidate: bool,
}

/// A status change to make.
#[derive(InputObject)]
pub struct TransitionCheckInput {
    /// The check to move.
    pub check_id: ID,
    /// The status to move to: one of the check's `nextStatuses` (what a team member may choose).
    pub status: CheckStatus,
    /// Why, kept in the history; required for a decision (`approved` or `pending`).
    pub reason: Option<String>,
}

#[derive(Default)]
pub struct CheckQuery;

#[Object]
impl CheckQuery {
    /// One check.
    async fn check(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Check> {
        Ok(Check(svc(ctx).check(actor(ctx)?, &id).await.map_err(gql)?))
    }
    /// All sixteen statuses with labels and legal next statuses.
    async fn check_statuses(&self, ctx: &Context<'_>) -> GqlResult<Vec<CheckStatusInfo>> {
        actor(ctx)?;
        Ok(entity::status::ALL_STATUSES
            .iter()
            .map(|s| CheckStatusInfo {
                status: (*s).into(),
                label: s.dashboard_label(),
                next: s.next_statuses().iter().map(|n| (*n).into()).collect(),
                by_hand: s
                    .person_choices()
                    .into_iter()
                    .map(CheckStatus::from)
                    .collect(),
                active: s.is_active(),
            })
            .collect())
    }
}

#[derive(Default)]
pub struct CheckMutation;

#[Object]
impl CheckMutation {
    /// Starts a check: `emailed` (candidate invited) or, with `doChecks: false` or
    /// `emailCandidate: false`, `initiated`. A candidate with a check still in progress gets a
    /// CONFLICT naming it.
    async fn start_check(&self, ctx: &Context<'_>, input: StartCheckInput) -> GqlResult<Check> {
        let c = svc(ctx)
            .start_check(
                actor(ctx)?,
                &input.candidate_id,
                NewCheck {
                    package_id: input.package_id.map(|p| p.0),
                    callback_url: input.callback_url,
                    reference_id: input.reference_id,
                    do_checks: input.do_checks,
                    email_candidate: input.email_candidate,
                },
            )
            .await
            .map_err(gql)?;
        Ok(Check(c))
    }
    /// A team member's decision on a check: one of its `nextStatuses` (approve or mark Consider
    /// from review, approve from Consider, start or cancel adverse action, reject after the final
    /// notice, withdraw). Anything else is the system's and answers `BAD_USER_INPUT` naming what
    /// moves the check instead. Team members and above.
    async fn transition_check(
        &self,
        ctx: &Context<'_>,
        input: TransitionCheckInput,
    ) -> GqlResult<Check> {
        let c = svc(ctx)
            .transition_check(
                actor(ctx)?,
                &input.check_id,
                input.status.into(),
                input.reason.as_deref(),
            )
            .await
            .map_err(gql)?;
        Ok(Check(c))
    }
}
