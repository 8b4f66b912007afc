//! Background checks: start, transition through the status table, history, report access.
use std::collections::HashMap;

use entity::{CheckStatus, Role, candidate, check, check_status_history as history, partner};
use sea_orm::sea_query::{Expr, SubQueryStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QueryTrait, Set,
};
use serde_json::json;

use crate::db::SelectUnique;
use crate::events::{self, EventType};
use crate::rows::Columns;
use crate::{Actor, Service, ServiceError, ServiceResult, db, domain, ids};

/// Columns changed together with a status.
#[derive(Debug, Default)]
pub(crate) struct StatusExtras {
    /// A new sealed report (the screening result).
    pub report_enc: Option<String>,
    pub monitoring_triggered: Option<bool>,
}

/// One status change of a check, as its history row and its event record it.
struct Transition<'a> {
    actor: &'a Actor,
    partner: &'a partner::Model,
    cand: &'a candidate::Model,
    /// The check as the change leaves it.
    check: &'a check::Model,
    from: Option<CheckStatus>,
    to: CheckStatus,
    reason: Option<&'a str>,
    at: chrono::DateTime<chrono::Utc>,
    /// The candidate's consent is first dated by this change (their signature on the consent
    /// page, a hosted form, also one held at `initiated`): the consent confirmation webhook.
    consented_now: bool,
}

/// A status change worked out and not yet written.
struct PlannedTransition {
    /// The update, conditional on the row as read.
    update: sea_orm::UpdateMany<check::Entity>,
    /// The check as the change leaves it.
    next: check::Model,
    history: history::ActiveModel,
    /// The `check.status_changed` event's data.
    event: serde_json::Value,
    /// What the new status causes.
    effects: Vec<SubQueryStatement>,
}

/// The `WITH` clause of a status change made outside a transaction: the updated row, if any.
const UPDATED: &str = "updated";

const CONCURRENT_CHANGE: &str = "the check changed concurrently; reload and retry";

/// `col = value`, or `col IS NULL` for `None`.
fn same<V: Into<sea_orm::Value>>(col: check::Column, value: Option<V>) -> Expr {
    match value {
        Some(v) => col.eq(v),
        None => col.is_null(),
    }
}

#[derive(Debug, Clone)]
pub struct NewCheck {
    /// `None`: the partner's default package.
    pub package_id: Option<String>,
    pub callback_url: Option<String>,
    pub reference_id: Option<String>,
    /// `false` stores the check as `initiated` without inviting the candidate (Turn's `do_checks`).
    pub do_checks: bool,
    /// `false`: the partner brings the candidate to the consent page itself (Turn's
    /// `email_candidate`); the check stays `initiated` and no mail is sent, and
    /// [`Service::issue_consent_link`] gives the link to send.
    pub email_candidate: bool,
}

/// The candidate's check in progress (not finished) other than `except`, if any.
async fn open_check_of<C: ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    candidate_id: &str,
    except: Option<&str>,
) -> ServiceResult<Option<check::Model>> {
    let mut q = check::Entity::find()
        .filter(check::Column::CandidateId.eq(candidate_id))
        .filter(check::Column::Status.is_not_in(entity::status::FINISHED));
    if let Some(id) = except {
        q = q.filter(check::Column::Id.ne(id));
    }
    Ok(q.all_owned_by(conn, check::Column::PartnerId, partner_id)
        .await?
        .into_iter()
        .next())
}

/// The answer to a second check in progress for one candidate.
fn in_progress(a: check::Model) -> ServiceError {
    ServiceError::Conflict {
        field: Some("candidateId".into()),
        message: format!(
            "candidate already has check {} in status {}",
            a.id, a.status
        ),
        existing_id: Some(a.id),
    }
}

/// Takes the candidate's row, the turn two new checks of one candidate take, and refuses when a
/// check of theirs is in progress: a new check may start (on `txn`) once this answers `Ok`.
pub(crate) async fn may_start_a_check(
    txn: &DatabaseTransaction,
    partner_id: &str,
    candidate_id: &str,
) -> ServiceResult<()> {
    db::lock_row(txn, "candidates", partner_id, candidate_id).await?;
    match open_check_of(txn, partner_id, candidate_id, None).await? {
        Some(a) => Err(in_progress(a)),
        None => Ok(()),
    }
}

/// A check's `callbackUrl`, validated. The results sent there hold the report and the
/// candidate's date of birth, which a limited team member may not see: they may not name one.
pub(crate) fn callback_url(actor: &Actor, url: Option<&str>) -> ServiceResult<Option<String>> {
    let url = domain::opt_text("callbackUrl", url, 2048)?
        .map(|u| domain::http_url("callbackUrl", &u))
        .transpose()?;
    if url.is_some() && !actor.role.may_see_sensitive() {
        return Err(ServiceError::Forbidden(
            "callbackUrl receives the check's results (the report, the date of birth), which \
             the limited_team_member role may not see"
                .into(),
        ));
    }
    Ok(url)
}

impl Service {
    pub async fn start_check(
        &self,
        actor: &Actor,
        candidate_id: &str,
        input: NewCheck,
    ) -> ServiceResult<check::Model> {
        actor.require(Role::LimitedTeamMember)?;
        let callback_url = callback_url(actor, input.callback_url.as_deref())?;
        let reference_id = domain::opt_text("referenceId", input.reference_id.as_deref(), 200)?;
        let status = if input.do_checks && input.email_candidate {
            CheckStatus::Emailed
        } else {
            CheckStatus::Initiated
        };

        let txn = db::begin_write(&self.db).await?;
        let cand = crate::candidate::find(&txn, &actor.partner_id, candidate_id)
            .await
            .map_err(|e| e.missing_as_invalid("candidateId", "no such candidate"))?;
        // Two starts for one candidate take turns, so the second sees the first's check.
        may_start_a_check(&txn, &actor.partner_id, &cand.id).await?;
        let partner = crate::partner::load(&txn, &actor.partner_id).await?;
        let package = crate::package::usable(&txn, &partner, input.package_id.as_deref()).await?;
        let c = self
            .insert_check(
                &txn,
                actor,
                &cand,
                &partner,
                &package.id,
                &crate::package::searches_of(&package.searches),
                callback_url,
                reference_id,
                status,
                false,
            )
            .await?;
        self.commit(txn).await?;
        Ok(c)
    }

    /// Inserts a check in its first status with its event, history and effects, on `txn`. It
    /// runs `searches` of the package `package_id`.
    /// `consented`: the candidate has signed (a hosted form), which dates its consent now even
    /// if the check waits at `initiated`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_check(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        cand: &candidate::Model,
        partner: &partner::Model,
        package_id: &str,
        searches: &[entity::SearchKind],
        callback_url: Option<String>,
        reference_id: Option<String>,
        status: CheckStatus,
        consented: bool,
    ) -> ServiceResult<check::Model> {
        let now = self.clock.now();
        let new = check::Model {
            id: ids::uuid(),
            partner_id: actor.partner_id.clone(),
            candidate_id: cand.id.clone(),
            package_id: package_id.to_string(),
            searches: crate::package::searches_json(searches),
            status,
            callback_url,
            reference_id,
            consent_date: (consented || status == CheckStatus::Consent).then_some(now),
            recheck_date: None,
            cm_criminal_enroll: None,
            criminal_monitoring_triggered: false,
            report_enc: None,
            created_by: actor.subject.clone(),
            created_at: now,
            updated_at: now,
        };
        let created = json!({
            "check_id": new.id,
            "worker_id": cand.id,
            "turn_id": cand.turn_id,
            "package_id": new.package_id,
            "searches": new.searches,
            "state": status,
            "callback_url": new.callback_url,
            "reference_id": new.reference_id,
            "actor": actor.subject,
        });
        let first = Transition {
            actor,
            partner,
            cand,
            check: &new,
            from: None,
            to: status,
            reason: None,
            at: now,
            consented_now: new.consent_date.is_some(),
        };
        let insert =
            check::Entity::insert(check::ActiveModel::from(new.clone()).reset_all()).into_query();
        let effects = self
            .transition_effects(txn, &new, cand, partner, None, status)
            .await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            // One statement: the first history row, both events and the effects in `WITH`
            // clauses.
            let mut with = events::with_events(
                history::Entity::insert(self.transition_history(&first)).into_query(),
                &actor.partner_id,
                vec![
                    (EventType::CheckCreated, &new.id, created),
                    (
                        EventType::CheckStatusChanged,
                        &new.id,
                        self.transition_event(&first),
                    ),
                ],
            );
            db::add_writes(&mut with, effects);
            txn.execute(&with.query(insert)).await?;
        } else {
            txn.execute(&insert).await?;
            events::record(
                txn,
                &actor.partner_id,
                EventType::CheckCreated,
                &new.id,
                created,
            )
            .await?;
            self.record_transition(txn, &first).await?;
            db::write_all(txn, effects).await?;
        }
        Ok(new)
    }

    /// Moves a check to `to` if the transition table allows it from its current status (a team
    /// member's action: review decisions, resume after an identity fix, adverse action, …).
    pub async fn transition_check(
        &self,
        actor: &Actor,
        check_id: &str,
        to: CheckStatus,
        reason: Option<&str>,
    ) -> ServiceResult<check::Model> {
        actor.require(Role::TeamMember)?;
        let reason = domain::opt_prose("reason", reason, 2000)?;
        let postgres = self.db.get_database_backend() == DbBackend::Postgres;
        // On PostgreSQL the check is read outside a transaction: the update is conditional on
        // what was read, so a change in between makes it match nothing.
        let txn = if postgres {
            None
        } else {
            Some(db::begin_write(&self.db).await?)
        };
        let (current, cand, partner) = match &txn {
            Some(txn) => find_with_owner(txn, &actor.partner_id, check_id).await?,
            None => find_with_owner(&self.db, &actor.partner_id, check_id).await?,
        };
        if !actor.is_system() {
            if let Some(refusal) = person_refusal(current.status, to) {
                return Err(ServiceError::invalid("status", refusal));
            }
            if matches!(to, CheckStatus::Approved | CheckStatus::Pending)
                && reason.is_none()
                && current.status.can_transition_to(to)
            {
                // An adjudicator's decision is kept with its reason.
                return Err(ServiceError::invalid(
                    "reason",
                    format!("a decision to move a check to {to} needs a reason"),
                ));
            }
        }
        let extras = StatusExtras::default();
        let reason = reason.as_deref();
        let updated = if let Some(txn) = txn {
            let updated = self
                .apply_transition_of(&txn, actor, current, (&cand, &partner), to, reason, extras)
                .await?;
            self.commit(txn).await?;
            updated
        } else {
            let mut plan = self
                .plan_transition(
                    &self.db,
                    actor,
                    current,
                    (&cand, &partner),
                    to,
                    reason,
                    extras,
                )
                .await?;
            if db::only_if_returned(&mut plan.effects, UPDATED) {
                self.write_transition_alone(actor, plan).await?
            } else {
                // An effect inserts rows (mail, tasks, links), which a transaction writes
                // only if the update matched.
                let txn = db::begin_write(&self.db).await?;
                let updated = self.write_transition(&txn, actor, plan).await?;
                self.commit(txn).await?;
                updated
            }
        };
        Ok(updated)
    }

    /// The one way a check changes status: checks the transition table, updates the row
    /// conditionally on the row as read (of two concurrent transitions, one wins), writes
    /// history and the event, and causes what the new status asks for (tasks, mail), all on
    /// `txn`.
    pub(crate) async fn apply_transition(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        current: check::Model,
        to: CheckStatus,
        reason: Option<&str>,
        extras: StatusExtras,
    ) -> ServiceResult<check::Model> {
        let (cand, partner) =
            crate::candidate::find_with_partner(txn, &current.partner_id, &current.candidate_id)
                .await?;
        self.apply_transition_of(txn, actor, current, (&cand, &partner), to, reason, extras)
            .await
    }

    /// [`Self::apply_transition`] for a caller that has the check's candidate and partner.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_transition_of(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        current: check::Model,
        (cand, partner): (&candidate::Model, &partner::Model),
        to: CheckStatus,
        reason: Option<&str>,
        extras: StatusExtras,
    ) -> ServiceResult<check::Model> {
        let plan = self
            .plan_transition(txn, actor, current, (cand, partner), to, reason, extras)
            .await?;
        self.write_transition(txn, actor, plan).await
    }

    /// Checks the transition table and works out every write of a status change: the update
    /// (conditional on the row as read), its history row, its event and what the new status
    /// causes. What the effects need to read, they read on `conn`.
    #[allow(clippy::too_many_arguments)]
    async fn plan_transition<C: ConnectionTrait>(
        &self,
        conn: &C,
        actor: &Actor,
        current: check::Model,
        (cand, partner): (&candidate::Model, &partner::Model),
        to: CheckStatus,
        reason: Option<&str>,
        extras: StatusExtras,
    ) -> ServiceResult<PlannedTransition> {
        let from = current.status;
        // A monitoring charge on a check that cannot go to review (`review__cm` already,
        // Consider, rejected, an adverse action) is a change "in place": the same status, with
        // the new report and the tag, reported like any other change and causing nothing new.
        let in_place = to == from && extras.monitoring_triggered == Some(true);
        if !in_place && !from.can_transition_to(to) {
            let allowed: Vec<&str> = from
                .next_statuses()
                .iter()
                .map(|s| s.as_api_str())
                .collect();
            return Err(ServiceError::invalid(
                "status",
                format!(
                    "cannot move a check from {from} to {to}; allowed: {}",
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                ),
            ));
        }
        // A check that was over and runs again (a recheck, a reopened decision) must not make a
        // second check in progress beside one started since. A monitoring charge is the
        // exception: it is reported whatever the candidate's other checks.
        if !from.is_active() && to.is_active() && to != CheckStatus::ReviewCm {
            // The candidate's row, as a check started for them takes it (after this check's,
            // the order monitoring enrollment takes them in): of a recheck and a new check at
            // once, the second to take it sees the first's check.
            db::lock_row(conn, "checks", &current.partner_id, &current.id).await?;
            db::lock_row(
                conn,
                "candidates",
                &current.partner_id,
                &current.candidate_id,
            )
            .await?;
            let other = open_check_of(
                conn,
                &current.partner_id,
                &current.candidate_id,
                Some(&current.id),
            )
            .await?;
            if let Some(a) = other {
                return Err(in_progress(a));
            }
        }
        let now = self.clock.now();
        // Each change is made to the row and to `next`, the row as the update leaves it.
        let mut next = current.clone();
        next.status = to;
        next.updated_at = now;
        let mut update = check::Entity::update_many()
            .col_expr(check::Column::Status, Expr::value(to.as_api_str()))
            .col_expr(check::Column::UpdatedAt, Expr::value(now));
        if to == CheckStatus::Consent && current.consent_date.is_none() {
            // Disclosure and authorization signed: the seed's consent_date (a hosted form held
            // at `initiated` was dated when the candidate signed it).
            update = update.col_expr(check::Column::ConsentDate, Expr::value(now));
            next.consent_date = Some(now);
        }
        if to == CheckStatus::Approved {
            // The next interval recheck, or none once the partner has turned the interval off
            // (an earlier date, left behind, would be rechecked at once and again forever). The
            // date is the business calendar's (UTC−11); the recheck runs when that day begins
            // there, and not before the whole interval has passed (`recheck_scheduling`).
            let date = partner.recheck_interval_days.map(|days| {
                (now + chrono::Duration::days(i64::from(days)))
                    .with_timezone(&crate::screening::calendar::zone())
                    .date_naive()
            });
            update = update.col_expr(check::Column::RecheckDate, Expr::value(date));
            next.recheck_date = date;
        } else if from == CheckStatus::Approved && current.recheck_date.is_some() {
            // Leaving approved (a recheck, a monitoring charge): no interval recheck is due
            // until the check is approved again, which sets a new date.
            update = update.col_expr(
                check::Column::RecheckDate,
                Expr::value(Option::<chrono::NaiveDate>::None),
            );
            next.recheck_date = None;
        }
        if to == CheckStatus::Withdrawn && current.cm_criminal_enroll.is_some() {
            // A withdrawn check is no longer monitored (its open alerts are cancelled with it).
            update = update.col_expr(
                check::Column::CmCriminalEnroll,
                Expr::value(Option::<chrono::NaiveDate>::None),
            );
            next.cm_criminal_enroll = None;
        }
        if let Some(report) = extras.report_enc {
            update = update.col_expr(check::Column::ReportEnc, Expr::value(report.clone()));
            next.report_enc = Some(report);
        }
        // Back to `processing` is a new screening (a recheck, a resumed check): its status and
        // results webhooks go out without the monitoring tag an earlier alert set, as Turn sends
        // recheck results.
        let triggered = extras
            .monitoring_triggered
            .or(
                (to == CheckStatus::Processing && current.criminal_monitoring_triggered)
                    .then_some(false),
            );
        if let Some(t) = triggered {
            update = update.col_expr(check::Column::CriminalMonitoringTriggered, Expr::value(t));
            next.criminal_monitoring_triggered = t;
        }
        // Conditional on the row read: of two concurrent transitions, one updates a row, and a
        // change to the columns the event reports (monitoring, dates) since the read is a
        // conflict too. Every write to a check sets `updated_at`.
        let update = update
            .filter(check::Column::Id.eq(&current.id))
            .filter(check::Column::Status.eq(from))
            .filter(check::Column::UpdatedAt.eq(current.updated_at))
            .filter(same(check::Column::ConsentDate, current.consent_date))
            .filter(same(check::Column::RecheckDate, current.recheck_date))
            .filter(same(
                check::Column::CmCriminalEnroll,
                current.cm_criminal_enroll,
            ))
            .filter(
                check::Column::CriminalMonitoringTriggered
                    .eq(current.criminal_monitoring_triggered),
            );
        let change = Transition {
            actor,
            partner,
            cand,
            check: &next,
            from: Some(from),
            to,
            reason,
            at: now,
            consented_now: current.consent_date.is_none() && next.consent_date.is_some(),
        };
        let history = self.transition_history(&change);
        let event = self.transition_event(&change);
        // What the new status causes, for the check as the change leaves it.
        let effects = if in_place {
            // Nothing new is caused, but a candidate a decision may go against is sent the
            // report with the new record.
            if matches!(
                to,
                CheckStatus::Pending
                    | CheckStatus::PendingFirstNotice
                    | CheckStatus::PendingSecondNotice
                    | CheckStatus::Rejected
            ) {
                self.report_copy(
                    &next,
                    cand,
                    partner,
                    crate::screen::ReportCopy::MonitoringRecord,
                    now,
                )
            } else {
                Vec::new()
            }
        } else {
            self.transition_effects(conn, &next, cand, partner, Some(from), to)
                .await?
        };
        Ok(PlannedTransition {
            update,
            next,
            history,
            event,
            effects,
        })
    }

    /// Makes the planned change on `txn`. Should the update match nothing, nothing is written
    /// and the change is a conflict.
    async fn write_transition(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        p: PlannedTransition,
    ) -> ServiceResult<check::Model> {
        let history = history::Entity::insert(p.history).into_query();
        let updated = if txn.get_database_backend() == DbBackend::Postgres {
            // One statement: history, event and effects in `WITH` clauses, the update returning
            // the row. Should the update match nothing, the caller's transaction rolls all back.
            let mut with = events::with_event(
                history,
                &actor.partner_id,
                EventType::CheckStatusChanged,
                &p.next.id,
                p.event,
            );
            db::add_writes(&mut with, p.effects);
            let stmt = with.query(p.update.into_query().returning_all().to_owned());
            txn.query_one(&stmt)
                .await?
                .map(|row| check::Model::from_query_result(&row, ""))
                .transpose()?
        } else {
            let updated = p.update.exec_with_returning(txn).await?.into_iter().next();
            if updated.is_some() {
                events::record_with(
                    txn,
                    history,
                    &actor.partner_id,
                    EventType::CheckStatusChanged,
                    &p.next.id,
                    p.event,
                )
                .await?;
                db::write_all(txn, p.effects).await?;
            }
            updated
        };
        // The event describes `next`: should the row differ from it (a concurrent change the
        // update's conditions don't cover), that is a conflict too, and rolls the event back.
        let Some(updated) = updated.filter(|u| *u == p.next) else {
            return Err(ServiceError::conflict(CONCURRENT_CHANGE));
        };
        Ok(updated)
    }

    /// Makes the planned change in one statement outside a transaction (PostgreSQL): the
    /// update in a `WITH` clause returning the row, and the history, the event and the effects
    /// (already made conditional with [`db::only_if_returned`]) written only if it returned
    /// one. Two round trips in all with the read, where a transaction takes four.
    async fn write_transition_alone(
        &self,
        actor: &Actor,
        p: PlannedTransition,
    ) -> ServiceResult<check::Model> {
        use sea_orm::sea_query::{Alias, Asterisk, Query, WithClause};
        let mut with = WithClause::new();
        with.cte(db::cte(
            UPDATED,
            p.update.into_query().returning_all().to_owned(),
        ))
        .cte(db::cte("history", db::insert_selecting(p.history, UPDATED)))
        .cte(db::cte(
            "event",
            events::insert_if_returned(
                UPDATED,
                &actor.partner_id,
                EventType::CheckStatusChanged,
                &p.next.id,
                p.event,
            ),
        ));
        db::add_writes(&mut with, p.effects);
        let stmt = with.query(
            Query::select()
                .column(Asterisk)
                .from(Alias::new(UPDATED))
                .to_owned(),
        );
        let updated = self
            .db
            .query_one(&stmt)
            .await?
            .map(|row| check::Model::from_query_result(&row, ""))
            .transpose()?
            .ok_or_else(|| ServiceError::conflict(CONCURRENT_CHANGE))?;
        self.committed.notify_one();
        Ok(updated)
    }

    /// Takes the check's turn for a change that is not a status change but depends on the
    /// status (a dispute, its resolution): `updated_at` moves to `now` if the check is still as
    /// read (same status, same `updated_at`), otherwise it is a conflict. A concurrent
    /// transition, conditional on `updated_at` too, then conflicts in its turn, so of the two
    /// one goes through (on PostgreSQL the second waits for the first's row lock and finds the
    /// row changed). Returns the check as it now is.
    pub(crate) async fn take_turn<C: ConnectionTrait>(
        &self,
        conn: &C,
        c: check::Model,
    ) -> ServiceResult<check::Model> {
        let now = self.clock.now();
        let r = check::Entity::update_many()
            .col_expr(check::Column::UpdatedAt, Expr::value(now))
            .filter(check::Column::Id.eq(&c.id))
            .filter(check::Column::Status.eq(c.status))
            .filter(check::Column::UpdatedAt.eq(c.updated_at))
            .exec(conn)
            .await?;
        if r.rows_affected != 1 {
            return Err(ServiceError::conflict(CONCURRENT_CHANGE));
        }
        Ok(check::Model {
            updated_at: now,
            ..c
        })
    }

    /// The history row and the `check.status_changed` event of `t`, on `conn`.
    async fn record_transition<C: ConnectionTrait>(
        &self,
        conn: &C,
        t: &Transition<'_>,
    ) -> ServiceResult<()> {
        events::record_with(
            conn,
            history::Entity::insert(self.transition_history(t)).into_query(),
            &t.actor.partner_id,
            EventType::CheckStatusChanged,
            &t.check.id,
            self.transition_event(t),
        )
        .await?;
        Ok(())
    }

    /// The history row of `t`.
    fn transition_history(&self, t: &Transition<'_>) -> history::ActiveModel {
        history::ActiveModel {
            partner_id: Set(t.actor.partner_id.clone()),
            check_id: Set(t.check.id.clone()),
            from_status: Set(t.from),
            to_status: Set(t.to),
            actor_id: Set(t.actor.subject.clone()),
            actor_email: Set(t.actor.email.clone()),
            reason: Set(t.reason.map(str::to_string)),
            created_at: Set(t.at),
            ..Default::default()
        }
    }

    /// The `check.status_changed` event's data, with everything the status webhook needs.
    fn transition_event(&self, t: &Transition<'_>) -> serde_json::Value {
        let (c, cand) = (t.check, t.cand);
        let fmt_date = |d: Option<chrono::NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
        json!({
            "check_id": c.id,
            "worker_id": cand.id,
            "turn_id": cand.turn_id,
            // The check's own reference id when it was started with one, else the candidate's.
            "reference_id": c.reference_id.as_ref().or(cand.reference_id.as_ref()),
            "worker_email": cand.email,
            "original_state": t.from,
            "state": t.to,
            "team_member_email": t.actor.email,
            "actor": t.actor.subject,
            "reason": t.reason,
            "dashboard_url": format!("{}/workers/{}", self.dashboard_base(t.partner), cand.id),
            "timestamp": t.at.timestamp(),
            "consent_date": c.consent_date.map(|d| d.format("%Y-%m-%d").to_string()),
            "consent_timestamp": c.consent_date.map(|d| d.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
            "recheck_date": fmt_date(c.recheck_date),
            "cm_criminal_enroll": fmt_date(c.cm_criminal_enroll),
            "criminal_monitoring_triggered": c.criminal_monitoring_triggered,
            "consent_confirmed": t.consented_now,
        })
    }

    pub async fn check(&self, actor: &Actor, id: &str) -> ServiceResult<check::Model> {
        find(&self.db, &actor.partner_id, id).await
    }

    /// Checks of several candidates at once (newest first per candidate), for batch loading.
    pub async fn checks_for_candidates(
        &self,
        actor: &Actor,
        candidate_ids: &[String],
    ) -> ServiceResult<HashMap<String, Vec<check::Model>>> {
        // Unordered in SQL: an `ORDER BY` here sorts in a temporary B-tree (the index on
        // candidate id and creation time orders each candidate's checks, not the whole list),
        // whose buffers cost more than sorting a few checks per candidate here.
        let rows = crate::rows::all(
            &self.db,
            check::Entity::find()
                .filter(check::Column::CandidateId.is_in(candidate_ids.iter().cloned())),
            |row, at| crate::rows::check::decode(row, at, Columns::all()),
        )
        .await?;
        let mut map: HashMap<String, Vec<check::Model>> = HashMap::new();
        // The partner checked on the rows (see `SelectUnique::owned_by`).
        for r in rows
            .into_iter()
            .filter(|r| r.partner_id == actor.partner_id)
        {
            map.entry(r.candidate_id.clone()).or_default().push(r);
        }
        for checks in map.values_mut() {
            newest_first(checks);
        }
        Ok(map)
    }

    /// Status history of several checks at once, oldest first.
    pub async fn histories(
        &self,
        actor: &Actor,
        check_ids: &[String],
    ) -> ServiceResult<HashMap<String, Vec<history::Model>>> {
        let rows = history::Entity::find()
            .filter(history::Column::CheckId.is_in(check_ids.iter().cloned()))
            .order_by_asc(history::Column::Id)
            .all_owned_by(&self.db, history::Column::PartnerId, &actor.partner_id)
            .await?;
        let mut map: HashMap<String, Vec<history::Model>> = HashMap::new();
        for r in rows {
            map.entry(r.check_id.clone()).or_default().push(r);
        }
        Ok(map)
    }

    /// The result report in seed 003's shape, for roles that may see it.
    pub fn reveal_report(
        &self,
        actor: &Actor,
        c: &check::Model,
    ) -> ServiceResult<Option<serde_json::Value>> {
        if !actor.role.may_see_sensitive() {
            return Err(ServiceError::Forbidden(
                "your role may not see report contents".into(),
            ));
        }
        c.report_enc
            .as_deref()
            .map(|s| Ok(serde_json::from_str(&self.crypto.open(s)?)?))
            .transpose()
            .map_err(ServiceError::Internal)
    }
}

pub(crate) async fn find<C: ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    id: &str,
) -> ServiceResult<check::Model> {
    check::Entity::find()
        .filter(check::Column::Id.eq(id))
        .owned_by(conn, check::Column::PartnerId, partner_id)
        .await?
        .ok_or(ServiceError::not_found("check"))
}

/// `only` and the columns every read of checks needs: the keys, the partner (checked on the
/// rows) and the creation time (the order).
pub(crate) fn with_keys(only: Columns<check::Entity>) -> Columns<check::Entity> {
    use check::Column as C;
    only.with_all(&[C::Id, C::CandidateId, C::PartnerId, C::CreatedAt])
}

/// Orders one candidate's checks newest first (creation time, then id), as every list of a
/// candidate's checks is.
pub(crate) fn newest_first(checks: &mut [check::Model]) {
    checks.sort_unstable_by(|a, b| (&b.created_at, &b.id).cmp(&(&a.created_at, &a.id)));
}

/// A check of `partner_id` with its candidate and partner, in one statement (a status change
/// needs all three).
pub(crate) async fn find_with_owner<C: ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    id: &str,
) -> ServiceResult<(check::Model, candidate::Model, partner::Model)> {
    db::find_with_two::<check::Entity, candidate::Entity, partner::Entity, _>(
        conn,
        (check::Column::Id, id),
        (check::Column::CandidateId, candidate::Column::Id),
        (check::Column::PartnerId, partner::Column::Id),
    )
    .await?
    // Another partner's check answers as a missing one.
    .filter(|(c, _, _)| c.partner_id == partner_id)
    .ok_or(ServiceError::not_found("check"))
}

/// Clears the `recheck_date` of approved checks (callers narrow it to a check or a partner):
/// without the partner's interval the date no longer promises a recheck, and the status
/// webhooks stop carrying it.
pub(crate) fn recheck_dates_cleared() -> sea_orm::UpdateMany<check::Entity> {
    check::Entity::update_many()
        .col_expr(
            check::Column::RecheckDate,
            Expr::value(Option::<chrono::NaiveDate>::None),
        )
        .filter(check::Column::Status.eq(CheckStatus::Approved.as_api_str()))
        .filter(check::Column::RecheckDate.is_not_null())
}

/// Why a person may not move a check from `from` to `to` ([`CheckStatus::person_may`]), naming
/// what moves it instead; `None` when they may, or when the table refuses the move anyway (its
/// message lists the legal next statuses).
fn person_refusal(from: CheckStatus, to: CheckStatus) -> Option<String> {
    use CheckStatus::*;
    if from.person_may(to) || !from.can_transition_to(to) {
        return None;
    }
    let why = match (from, to) {
        (_, Emailed) => "the candidate is invited with sendInvitation".to_string(),
        (_, Consent) => {
            "consent is the candidate's: they sign on the consent page, or you submit their signed form with submitConsentForm".to_string()
        }
        (ReviewIdentity, Processing) => "resumeChecks continues the searches once the identity is fixed".to_string(),
        (_, Processing) => "recheckCheck runs a finished check again".to_string(),
        (ReviewIdentity, t) if t.is_review() => {
            "an identity hold ends when resumeChecks continues the searches once the details are fixed, or when you mark it Consider (pending)".to_string()
        }
        (ReviewIdentity, Approved) => {
            "the searches stopped at the identity, so nothing else was searched: fix the candidate's details and resumeChecks, or mark it Consider (pending)".to_string()
        }
        (_, PendingSecondNotice) => {
            "the final notice is sent when the waiting period ends; dispute or cancel the adverse action instead".to_string()
        }
        (Processing, _) => "the searches decide a check in processing; it can only be withdrawn".to_string(),
        _ => format!("{to} is reached by the system, not by hand"),
    };
    let choices: Vec<&str> = from
        .person_choices()
        .iter()
        .map(|s| s.as_api_str())
        .collect();
    Some(format!(
        "cannot move a check from {from} to {to} by hand: {why}; you may choose: {}",
        if choices.is_empty() {
            "none".to_string()
        } else {
            choices.join(", ")
        }
    ))
}
