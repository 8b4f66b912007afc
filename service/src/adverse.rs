//! Adverse action in the FCRA order: from `pending` (Consider) the pre-adverse notice with a
//! copy of the report and the summary of rights (`pending__first_notice`), a waiting period in
//! business days that a dispute pauses, the final notice with the agency's contact and dispute
//! rights (`pending__second_notice`), then `rejected`. The partner may cancel (→ `approved`).
use chrono::{DateTime, Duration, Utc};
use entity::{CheckStatus, Role, adverse_action, candidate, check, partner};
use sea_orm::sea_query::{Expr, InsertStatement, SubQueryStatement, UpdateStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QueryTrait, Set,
};
use serde_json::json;

use crate::check::StatusExtras;
use crate::events::{self, EventType};
use crate::screen::{LINK_REPORT, REPORT_LINK_DAYS};
use crate::screening::calendar;
use crate::tasks::{self, TaskKind, TaskOutcome};
use crate::{Actor, Service, ServiceError, ServiceResult, db, domain, ids, mail};

/// States of an adverse action that still hold the check.
const ACTIVE: [&str; 3] = ["waiting", "disputed", "final_notice"];

/// How a dispute ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeOutcome {
    /// The report stands: the waiting period resumes with the business days it had left.
    Upheld,
    /// The report was corrected in the candidate's favour: the adverse action is cancelled and
    /// the check approved.
    Corrected,
}

/// The statement that ends the check's active adverse action, if it has one, in `state`.
pub(crate) fn close_adverse_actions(
    check_id: &str,
    state: &str,
    now: DateTime<Utc>,
) -> UpdateStatement {
    adverse_action::Entity::update_many()
        .col_expr(adverse_action::Column::State, Expr::value(state))
        .col_expr(adverse_action::Column::EndedAt, Expr::value(now))
        .col_expr(adverse_action::Column::UpdatedAt, Expr::value(now))
        .filter(adverse_action::Column::CheckId.eq(check_id))
        .filter(adverse_action::Column::State.is_in(ACTIVE))
        .into_query()
}

/// The writes that end a check's active adverse action (`cancelled` or `completed`) and its
/// timers.
pub(crate) fn ending_adverse_action(
    c: &check::Model,
    state: &str,
    now: DateTime<Utc>,
) -> Vec<SubQueryStatement> {
    vec![
        close_adverse_actions(&c.id, state, now).into(),
        tasks::cancelling(
            &c.id,
            &[TaskKind::AdverseFinalNotice, TaskKind::AdverseReject],
            now,
        )
        .into(),
    ]
}

/// The timer that ends the waiting period at `due` with the final notice.
fn final_notice_timer(c: &check::Model, due: DateTime<Utc>, now: DateTime<Utc>) -> InsertStatement {
    tasks::scheduling(
        &c.partner_id,
        Some(&c.id),
        TaskKind::AdverseFinalNotice,
        json!({}),
        due,
        now,
    )
}

/// A record added to the report during the pre-adverse waiting period (a monitoring charge) gives
/// the candidate the whole period again to dispute it: a running period ends no sooner than its
/// length in business days from `now`, and one paused by a dispute resumes with all its days.
/// The final notice's timer, finding the later end, waits for it.
pub(crate) async fn restart_waiting_period<C: ConnectionTrait>(
    conn: &C,
    check_id: &str,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    let Some(aa) = active(conn, check_id).await? else {
        return Ok(());
    };
    let days = aa.waiting_days.max(1);
    let update = adverse_action::Entity::update_many()
        .col_expr(adverse_action::Column::UpdatedAt, Expr::value(now))
        .filter(adverse_action::Column::Id.eq(&aa.id))
        .filter(adverse_action::Column::State.eq(aa.state.as_str()));
    match aa.state.as_str() {
        "waiting" => {
            let due = calendar::add_business_days(now, days.unsigned_abs());
            if aa.due_at.is_none_or(|d| d < due) {
                update
                    .col_expr(adverse_action::Column::DueAt, Expr::value(due))
                    .exec(conn)
                    .await?;
            }
        }
        "disputed" => {
            update
                .col_expr(adverse_action::Column::RemainingDays, Expr::value(days))
                .exec(conn)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

/// The end of a waiting period as a candidate's notice states it: the instant, with its time and
/// zone. A date alone (the earliest US zone's) named a day before the period ended where the
/// candidate lives, a Sunday for a period ending Monday morning on the East Coast.
fn decision_not_before(due: DateTime<Utc>) -> String {
    due.format("%A, %B %-d, %Y at %H:%M UTC").to_string()
}

/// Adverse actions whose dispute has no outcome yet, whatever their state.
fn unresolved_disputes() -> sea_orm::Select<adverse_action::Entity> {
    adverse_action::Entity::find()
        .filter(adverse_action::Column::DisputedAt.is_not_null())
        .filter(adverse_action::Column::Resolution.is_null())
}

/// Whether a candidate may dispute during `a` at `now`: its waiting period is running.
fn open_to_dispute(a: &adverse_action::Model, now: DateTime<Utc>) -> bool {
    a.state == "waiting" && a.due_at.is_some_and(|d| d > now)
}

/// Where a candidate stands with disputing a check's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeWindow {
    /// A dispute of theirs is being reinvestigated.
    Open,
    /// The waiting period runs: they may dispute.
    Offered,
    /// Neither.
    Closed,
}

pub(crate) async fn active<C: ConnectionTrait>(
    conn: &C,
    check_id: &str,
) -> ServiceResult<Option<adverse_action::Model>> {
    Ok(adverse_action::Entity::find()
        .filter(adverse_action::Column::CheckId.eq(check_id))
        .filter(adverse_action::Column::State.is_in(ACTIVE))
        .order_by_desc(adverse_action::Column::StartedAt)
        .one(conn)
        .await?)
}

/// The CFPB's model "A Summary of Your Rights Under the Fair Credit Reporting Act", whole, as
/// both notices carry it (the FCRA asks for the prescribed form, not an abridgement of it).
fn summary_of_rights() -> &'static str {
    static TEXT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(crate::screening::disclosures::summary_of_rights_text);
    &TEXT
}

impl Service {
    /// Effects of `pending__first_notice`: the adverse action, the pre-adverse notice and the
    /// timer that ends the waiting period, as writes (the findings are read on `conn`).
    pub(crate) async fn adverse_start<C: ConnectionTrait>(
        &self,
        conn: &C,
        c: &check::Model,
        cand: &candidate::Model,
        partner: &partner::Model,
        now: DateTime<Utc>,
    ) -> ServiceResult<Vec<SubQueryStatement>> {
        let days = partner.adverse_action_days.clamp(1, 30);
        let due = calendar::add_business_days(now, days as u32);
        let action = adverse_action::Entity::insert(adverse_action::ActiveModel {
            id: Set(ids::uuid()),
            partner_id: Set(c.partner_id.clone()),
            check_id: Set(c.id.clone()),
            state: Set("waiting".into()),
            waiting_days: Set(days),
            started_at: Set(now),
            due_at: Set(Some(due)),
            remaining_days: Set(None),
            dispute_reason: Set(None),
            disputed_at: Set(None),
            resolution: Set(None),
            final_notice_at: Set(None),
            ended_at: Set(None),
            updated_at: Set(now),
        })
        .into_query();
        let (report_url, link) = self.link(c, LINK_REPORT, Duration::days(REPORT_LINK_DAYS));
        // What the report the check rests on found: the latest screening's (initial or recheck)
        // reasons, and those of every monitoring charge added to it since. A monitoring report
        // alone names only its own charge.
        let mut reports = self.reports_of(conn, &c.partner_id, &c.id).await?;
        let since_screening = reports
            .iter()
            .rposition(|r| r.kind != "monitoring")
            .unwrap_or(0);
        let findings: Vec<String> = reports
            .drain(since_screening..)
            .flat_map(|r| r.reasons)
            .collect();
        let findings = if findings.is_empty() {
            "  (see the report)".to_string()
        } else {
            findings
                .iter()
                .map(|f| format!("  - {f}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let body = format!(
            "Hello {first},\n\nPRE-ADVERSE ACTION NOTICE\n\n{partner} is considering a decision \
             that may affect your application, based in whole or in part on information in the \
             background check report prepared by:\n\n{agency}\n\nThe report found:\n\n{findings}\n\n\
             A complete copy of your report is here:\n\n  {report_url}\n\n\
             No final decision will be made before {due}. If anything in the report is \
             incomplete or inaccurate, you may dispute it from that page or by replying to this \
             message; a dispute pauses this process while it is reinvestigated.\n\n\
             {rights}\n",
            first = cand.first_name,
            partner = partner.name,
            due = decision_not_before(due),
            agency = self.settings.agency.contact_text(),
            rights = summary_of_rights(),
        );
        let subject = format!("{}: pre-adverse action notice", partner.name);
        // A recheck asked for before (a California candidate's consent link, its reminders)
        // ends here: once the adverse action is over the check could be rechecked again, and
        // the old link would start a recheck no one asked for then.
        let mut writes = vec![
            action.into(),
            link.into(),
            crate::screen::revoking_links(&c.id, &[crate::screen::LINK_RECHECK_CONSENT], now)
                .into(),
            tasks::cancelling(&c.id, &[TaskKind::RecheckConsentReminder], now).into(),
        ];
        writes.extend(mail::sending(
            cand,
            &c.id,
            mail::kind::PRE_ADVERSE,
            &subject,
            body,
            now,
        ));
        writes.push(final_notice_timer(c, due, now).into());
        Ok(writes)
    }

    /// Effects of `pending__second_notice`: the final notice, then rejection, as writes (the
    /// active adverse action is read on `conn`).
    pub(crate) async fn final_notice<C: ConnectionTrait>(
        &self,
        conn: &C,
        c: &check::Model,
        cand: &candidate::Model,
        partner: &partner::Model,
        now: DateTime<Utc>,
    ) -> ServiceResult<Vec<SubQueryStatement>> {
        let mut writes: Vec<SubQueryStatement> = Vec::new();
        if let Some(aa) = active(conn, &c.id).await? {
            writes.push(
                adverse_action::Entity::update_many()
                    .col_expr(adverse_action::Column::State, Expr::value("final_notice"))
                    .col_expr(adverse_action::Column::FinalNoticeAt, Expr::value(now))
                    .col_expr(adverse_action::Column::UpdatedAt, Expr::value(now))
                    .filter(adverse_action::Column::Id.eq(aa.id))
                    .into_query()
                    .into(),
            );
        }
        let body = format!(
            "Hello {first},\n\nADVERSE ACTION NOTICE\n\n{partner} has decided not to proceed \
             with your application, based in whole or in part on information in the background \
             check report furnished by:\n\n{contact}\n\n\
             {agency} did not make this decision and cannot explain why it was made. You have \
             the right to a free copy of your report from {agency} if you ask within 60 days, \
             and the right to dispute with {agency} the accuracy or completeness of any \
             information in it.\n\n{rights}\n",
            first = cand.first_name,
            partner = partner.name,
            contact = self.settings.agency.contact_text(),
            agency = self.settings.agency.name,
            rights = summary_of_rights(),
        );
        let subject = format!("{}: adverse action notice", partner.name);
        writes.extend(mail::sending(
            cand,
            &c.id,
            mail::kind::FINAL_ADVERSE,
            &subject,
            body,
            now,
        ));
        // The partner has until the next business day to cancel before the check is rejected.
        writes.push(
            tasks::scheduling(
                &c.partner_id,
                Some(&c.id),
                TaskKind::AdverseReject,
                json!({}),
                calendar::add_business_days(now, 1),
                now,
            )
            .into(),
        );
        Ok(writes)
    }

    /// The candidate's notice that an adverse action they were told of is cancelled (the check
    /// approved), unless a dispute resolved in their favour ends it: the dispute's outcome says
    /// so itself. A dispute still open stays open for the agency, and the notice says so.
    pub(crate) async fn adverse_cancelled<C: ConnectionTrait>(
        &self,
        conn: &C,
        c: &check::Model,
        cand: &candidate::Model,
        partner: &partner::Model,
        now: DateTime<Utc>,
    ) -> ServiceResult<Vec<SubQueryStatement>> {
        let disputed = active(conn, &c.id).await?.filter(|a| a.state == "disputed");
        if disputed.as_ref().is_some_and(|a| a.resolution.is_some()) {
            return Ok(Vec::new());
        }
        let body = format!(
            "Hello {first},\n\n{partner} has cancelled the adverse action on your application. \
             The notice you were sent about your background check no longer applies, and your \
             application goes ahead.{closed}\n",
            first = cand.first_name,
            partner = partner.name,
            closed = if disputed.is_some() {
                " The reinvestigation of what you disputed goes on all the same; we will write \
                 to you with its outcome."
            } else {
                ""
            },
        );
        let subject = format!("{}: adverse action cancelled", partner.name);
        Ok(mail::sending(
            cand,
            &c.id,
            mail::kind::ADVERSE_CANCELLED,
            &subject,
            body,
            now,
        ))
    }

    /// Starts adverse action on a `pending` (Consider) check.
    pub async fn start_adverse_action(
        &self,
        actor: &Actor,
        check_id: &str,
        reason: Option<&str>,
    ) -> ServiceResult<check::Model> {
        self.transition_check(actor, check_id, CheckStatus::PendingFirstNotice, reason)
            .await
    }

    /// Cancels adverse action: the check is approved after all.
    pub async fn cancel_adverse_action(
        &self,
        actor: &Actor,
        check_id: &str,
        reason: Option<&str>,
    ) -> ServiceResult<check::Model> {
        // Refused by role before anything of the check is said.
        actor.require(Role::TeamMember)?;
        let c = self.check(actor, check_id).await?;
        if !matches!(
            c.status,
            CheckStatus::PendingFirstNotice | CheckStatus::PendingSecondNotice
        ) {
            return Err(ServiceError::invalid(
                "checkId",
                format!("check {} has no adverse action in progress", c.id),
            ));
        }
        self.transition_check(
            actor,
            check_id,
            CheckStatus::Approved,
            Some(reason.unwrap_or("adverse action cancelled")),
        )
        .await
    }

    /// The candidate disputes the report during the waiting period: the clock stops.
    /// The candidate is told in writing that the dispute was received, however it came in.
    async fn pause_for_dispute(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        c: &check::Model,
        cand: &candidate::Model,
        reason: &str,
    ) -> ServiceResult<adverse_action::Model> {
        let aa = active(txn, &c.id)
            .await?
            // A dispute after the waiting period ended (its final notice not yet sent) is too
            // late to pause it.
            .filter(|a| {
                c.status == CheckStatus::PendingFirstNotice && open_to_dispute(a, self.clock.now())
            })
            .ok_or_else(|| {
                ServiceError::invalid(
                    "checkId",
                    "a dispute pauses the waiting period of a pre-adverse notice; this check has none running",
                )
            })?;
        // The check takes its turn: a final notice due at this moment, or a cancellation, that
        // read the check before this dispute conflicts, and so does this dispute after one.
        let c = &self.take_turn(txn, c.clone()).await?;
        let now = self.clock.now();
        let remaining = aa
            .due_at
            .map(|d| calendar::business_days_left(now, d))
            .unwrap_or(0)
            .max(1);
        let mut am = aa.into_active_model();
        am.state = Set("disputed".into());
        am.due_at = Set(None);
        am.remaining_days = Set(Some(remaining as i32));
        am.dispute_reason = Set(Some(reason.to_string()));
        am.disputed_at = Set(Some(now));
        // A dispute after an earlier one was upheld is open again: no outcome yet.
        am.resolution = Set(None);
        am.updated_at = Set(now);
        let aa = am.update(txn).await?;
        tasks::cancel(txn, &c.id, &[TaskKind::AdverseFinalNotice], now).await?;
        events::record(
            txn,
            &c.partner_id,
            EventType::AdverseActionDisputed,
            &c.id,
            json!({
                "check_id": c.id,
                "worker_id": c.candidate_id,
                "reason": reason,
                "remaining_business_days": remaining,
                "actor": actor.subject,
            }),
        )
        .await?;
        let notice = mail::sending(
            cand,
            &c.id,
            mail::kind::DISPUTE_RECEIVED,
            "We received your dispute",
            format!(
                "Hello {},\n\nWe received your dispute and will reinvestigate the information \
                 you disputed. No decision will be made on your application while we do.\n\n\
                 Your words: {reason}\n",
                cand.first_name
            ),
            now,
        );
        db::write_all(txn, notice).await?;
        Ok(aa)
    }

    /// A team member records a dispute the candidate raised (by phone, mail, …).
    pub async fn dispute_adverse_action(
        &self,
        actor: &Actor,
        check_id: &str,
        reason: &str,
    ) -> ServiceResult<adverse_action::Model> {
        actor.require(Role::TeamMember)?;
        let reason = domain::prose("reason", reason, 5000)?;
        let txn = db::begin_write(&self.db).await?;
        let c = crate::check::find(&txn, &actor.partner_id, check_id).await?;
        let cand = crate::candidate::find(&txn, &c.partner_id, &c.candidate_id).await?;
        let aa = self
            .pause_for_dispute(&txn, actor, &c, &cand, &reason)
            .await?;
        self.commit(txn).await?;
        Ok(aa)
    }

    /// The candidate disputes from the link in their pre-adverse notice.
    pub async fn dispute_by_token(&self, token: &str, reason: &str) -> ServiceResult<()> {
        let reason = domain::prose("reason", reason, 5000)?;
        let (c, cand, _, _) = self.report_by_token(token).await.map_err(|p| match p {
            crate::screen::LinkProblem::Unavailable => {
                ServiceError::Internal(anyhow::anyhow!("the report link could not be read"))
            }
            _ => ServiceError::not_found("link"),
        })?;
        let txn = db::begin_write(&self.db).await?;
        let c = crate::check::find(&txn, &c.partner_id, &c.id).await?;
        let actor = Actor::candidate(&c.partner_id, &cand.id);
        self.pause_for_dispute(&txn, &actor, &c, &cand, &reason)
            .await?;
        self.commit(txn).await?;
        Ok(())
    }

    /// Disputes waiting for the agency's reinvestigation, of every partner, oldest first (the
    /// operator's `api dispute list`): those pausing an adverse action, and those whose adverse
    /// action ended meanwhile (the reinvestigation is owed all the same).
    pub async fn open_disputes(&self) -> ServiceResult<Vec<adverse_action::Model>> {
        Ok(unresolved_disputes()
            .order_by_asc(adverse_action::Column::DisputedAt)
            .all(&self.db)
            .await?)
    }

    /// The agency's outcome of its reinvestigation of a dispute (the operator's
    /// `api dispute resolve`): see [`Service::resolve_dispute`].
    pub async fn agency_resolve_dispute(
        &self,
        check_id: &str,
        dispute_id: Option<&str>,
        outcome: DisputeOutcome,
        resolution: &str,
    ) -> ServiceResult<check::Model> {
        let c = check::Entity::find_by_id(check_id.to_string())
            .one(&self.db)
            .await?
            .ok_or(ServiceError::not_found("check"))?;
        self.resolve_dispute(
            &Actor::agency(&c.partner_id),
            check_id,
            dispute_id,
            outcome,
            resolution,
        )
        .await
    }

    /// Ends a dispute: the report stands (the waiting period resumes with what it had left) or
    /// was corrected (adverse action cancelled, check approved). Only the reporting agency
    /// decides: the FCRA puts the reinvestigation of its report on the agency, and the partner,
    /// who took the adverse action, is not the one to judge the candidate's dispute of it.
    ///
    /// `dispute_id` (the adverse action's id, as `api dispute list` prints it) names the
    /// dispute; it may be left out while the check has one open dispute. A check can have two
    /// (one whose adverse action was cancelled while it was reinvestigated, and a later one),
    /// and then the outcome of one reinvestigation must not land on the other.
    pub async fn resolve_dispute(
        &self,
        actor: &Actor,
        check_id: &str,
        dispute_id: Option<&str>,
        outcome: DisputeOutcome,
        resolution: &str,
    ) -> ServiceResult<check::Model> {
        if !actor.is_agency() {
            return Err(ServiceError::Forbidden(
                "a dispute is resolved by the reporting agency, which reinvestigates the report \
                 (`api dispute resolve`)"
                    .into(),
            ));
        }
        let resolution = domain::prose("resolution", resolution, 5000)?;
        let txn = db::begin_write(&self.db).await?;
        let c = crate::check::find(&txn, &actor.partner_id, check_id).await?;
        let cand = crate::candidate::find(&txn, &c.partner_id, &c.candidate_id).await?;
        let now = self.clock.now();
        let open = unresolved_disputes()
            .filter(adverse_action::Column::CheckId.eq(&c.id))
            .order_by_asc(adverse_action::Column::DisputedAt)
            .all(&txn)
            .await?;
        let target = match dispute_id {
            Some(id) => open.into_iter().find(|a| a.id == id).ok_or_else(|| {
                ServiceError::invalid(
                    "disputeId",
                    format!("{id} is not an open dispute of check {}", c.id),
                )
            })?,
            None if open.len() > 1 => {
                let ids: Vec<&str> = open.iter().map(|a| a.id.as_str()).collect();
                return Err(ServiceError::invalid(
                    "disputeId",
                    format!(
                        "check {} has {} open disputes ({}): name the one this ends",
                        c.id,
                        ids.len(),
                        ids.join(", ")
                    ),
                ));
            }
            None => open.into_iter().next().ok_or_else(|| {
                ServiceError::invalid("checkId", "this check has no open dispute")
            })?,
        };
        // Only the check's active adverse action can be `disputed`.
        if target.state != "disputed" {
            // The adverse action ended (cancelled, the check withdrawn) while the dispute was
            // reinvestigated: the reinvestigation is still owed, and its outcome is the
            // candidate's to hear; the check stays as it is.
            // Conditional on the dispute still being unresolved: two resolutions sent at once
            // (PostgreSQL does not serialise them as SQLite does) end it, and mail the
            // candidate, once.
            let resolved = adverse_action::Entity::update_many()
                .col_expr(
                    adverse_action::Column::Resolution,
                    Expr::value(resolution.clone()),
                )
                .col_expr(adverse_action::Column::UpdatedAt, Expr::value(now))
                .filter(adverse_action::Column::Id.eq(&target.id))
                .filter(adverse_action::Column::Resolution.is_null())
                .exec(&txn)
                .await?;
            if resolved.rows_affected != 1 {
                return Err(ServiceError::conflict(
                    "this dispute was resolved meanwhile; read it again",
                ));
            }
            let found = match outcome {
                DisputeOutcome::Upheld => "the report stands as it was",
                DisputeOutcome::Corrected => "found in your favour",
            };
            self.dispute_outcome_mail(
                &txn,
                &c,
                &cand,
                format!(
                    "We have finished reinvestigating the information you disputed: {found} \
                     ({resolution}). The adverse action on your application had already ended."
                ),
                now,
            )
            .await?;
            self.commit(txn).await?;
            return Ok(c);
        }
        let aa = target;
        let updated = match outcome {
            DisputeOutcome::Upheld => {
                let c = self.take_turn(&txn, c).await?;
                let remaining = aa.remaining_days.unwrap_or(1).max(1) as u32;
                let due = calendar::add_business_days(now, remaining);
                let mut am = aa.into_active_model();
                am.state = Set("waiting".into());
                am.due_at = Set(Some(due));
                am.remaining_days = Set(None);
                am.resolution = Set(Some(resolution.clone()));
                am.updated_at = Set(now);
                am.update(&txn).await?;
                txn.execute(&final_notice_timer(&c, due, now)).await?;
                events::record(
                    &txn,
                    &c.partner_id,
                    EventType::AdverseActionResumed,
                    &c.id,
                    json!({
                        "check_id": c.id,
                        "worker_id": c.candidate_id,
                        "resolution": resolution,
                        "due_at": due.to_rfc3339(),
                        "actor": actor.subject,
                    }),
                )
                .await?;
                self.dispute_outcome_mail(
                    &txn,
                    &c,
                    &cand,
                    format!(
                        "We have finished reinvestigating the information you disputed, and the \
                         report stands as it was. No final decision will be made on your \
                         application before {}.",
                        decision_not_before(due)
                    ),
                    now,
                )
                .await?;
                c
            }
            DisputeOutcome::Corrected => {
                // The check's row first, as every change of the check takes it (a monitoring
                // charge takes it, then the adverse action's): the other order could deadlock.
                let c = self.take_turn(&txn, c).await?;
                let mut am = aa.into_active_model();
                am.resolution = Set(Some(resolution.clone()));
                am.update(&txn).await?;
                self.dispute_outcome_mail(
                    &txn,
                    &c,
                    &cand,
                    format!(
                        "We have finished reinvestigating the information you disputed and found \
                         in your favour: {resolution}. The adverse action on your application is \
                         cancelled."
                    ),
                    now,
                )
                .await?;
                self.apply_transition(
                    &txn,
                    actor,
                    c,
                    CheckStatus::Approved,
                    // The resolution's words stay with the adverse action, which only team
                    // members read; a status's reason reaches every role.
                    Some("dispute resolved in the candidate's favour"),
                    StatusExtras::default(),
                )
                .await?
            }
        };
        self.commit(txn).await?;
        Ok(updated)
    }

    /// Tells the candidate how their dispute ended.
    async fn dispute_outcome_mail(
        &self,
        txn: &DatabaseTransaction,
        c: &check::Model,
        cand: &candidate::Model,
        outcome: String,
        now: DateTime<Utc>,
    ) -> ServiceResult<()> {
        let notice = mail::sending(
            cand,
            &c.id,
            mail::kind::DISPUTE_RESOLVED,
            "Your dispute has been reinvestigated",
            format!("Hello {},\n\n{outcome}\n", cand.first_name),
            now,
        );
        db::write_all(txn, notice).await?;
        Ok(())
    }

    /// Where the candidate stands with disputing the check's report: a dispute of theirs waits
    /// on the reinvestigation (no second one is offered), or the waiting period runs (a dispute
    /// after it ended is refused, though the final notice may not be out yet), or neither.
    pub async fn dispute_window(&self, c: &check::Model) -> ServiceResult<DisputeWindow> {
        if c.status != CheckStatus::PendingFirstNotice {
            return Ok(DisputeWindow::Closed);
        }
        let now = self.clock.now();
        Ok(match active(&self.db, &c.id).await? {
            Some(a) if a.state == "disputed" => DisputeWindow::Open,
            Some(a) if open_to_dispute(&a, now) => DisputeWindow::Offered,
            _ => DisputeWindow::Closed,
        })
    }

    /// The adverse action of a check (the latest), for GraphQL.
    pub async fn adverse_action_of(
        &self,
        actor: &Actor,
        check_id: &str,
    ) -> ServiceResult<Option<adverse_action::Model>> {
        // Its dispute's reason and resolution speak of the report's records.
        actor.require(Role::TeamMember)?;
        crate::check::find(&self.db, &actor.partner_id, check_id).await?;
        Ok(adverse_action::Entity::find()
            .filter(adverse_action::Column::PartnerId.eq(&actor.partner_id))
            .filter(adverse_action::Column::CheckId.eq(check_id))
            .order_by_desc(adverse_action::Column::StartedAt)
            .one(&self.db)
            .await?)
    }

    /// Task: the waiting period is over → final notice.
    pub(crate) async fn adverse_final_notice(
        &self,
        partner_id: &str,
        check_id: &str,
    ) -> ServiceResult<TaskOutcome> {
        let txn = db::begin_write(&self.db).await?;
        let Some(c) =
            crate::tasks::unless_gone(crate::check::find(&txn, partner_id, check_id).await)?
        else {
            return Ok(TaskOutcome::Done);
        };
        let Some(aa) = active(&txn, &c.id).await? else {
            return Ok(TaskOutcome::Done);
        };
        if aa.state != "waiting" || c.status != CheckStatus::PendingFirstNotice {
            return Ok(TaskOutcome::Done);
        }
        if let Some(due) = aa.due_at
            && due > self.clock.now()
        {
            return Ok(TaskOutcome::RunAgainAt(due));
        }
        self.apply_transition(
            &txn,
            &Actor::system(partner_id),
            c,
            CheckStatus::PendingSecondNotice,
            Some(&if aa.disputed_at.is_some() {
                format!(
                    "waiting period of {} business days ended, resumed after a dispute that upheld the report",
                    aa.waiting_days
                )
            } else {
                format!(
                    "waiting period of {} business days ended without a dispute",
                    aa.waiting_days
                )
            }),
            StatusExtras::default(),
        )
        .await?;
        self.commit(txn).await?;
        Ok(TaskOutcome::Done)
    }

    /// Task: after the final notice → rejected.
    pub(crate) async fn adverse_reject(
        &self,
        partner_id: &str,
        check_id: &str,
    ) -> ServiceResult<TaskOutcome> {
        self.timed_transition(
            partner_id,
            check_id,
            CheckStatus::PendingSecondNotice,
            CheckStatus::Rejected,
            "adverse action completed: final notice sent",
        )
        .await
    }
}
