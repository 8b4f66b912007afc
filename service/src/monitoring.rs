//! Continuous criminal monitoring: enroll, unenroll, list enrolled; an arrest alert waits 7
//! business days for the courthouse, then a county recheck runs. A charge found → the check
//! goes to compliance review (`review__cm`) with `criminal_monitoring_triggered: true` in the
//! status webhook; no charge → the partner hears nothing of the arrest (FCRA), and one more
//! recheck runs 30 days later. A county recheck due while a recheck of the whole check is
//! running waits for it.
//!
//! California is not an evergreen state: the consent a candidate living there gave for the
//! check does not cover a new search, so an arrest alert for them first asks the candidate for
//! fresh consent (an email with a link to the consent page). The county recheck runs once they
//! have signed, and not at all if the link runs out unsigned; either way the partner hears
//! nothing about the arrest until a charge is found.
use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::{CheckStatus, Role, candidate, candidate_link, check, monitoring_alert, partner};
use sea_orm::sea_query::{Expr, UpdateStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set,
};
use serde_json::json;

use crate::check::StatusExtras;
use crate::db::SelectUnique;
use crate::events::{self, EventType};
use crate::screen::LINK_MONITORING_CONSENT;
use crate::screening::calendar;
use crate::screening::provider::ArrestAlert;
use crate::screening::report::{self, CountyCriminal, CriminalRecord, Report};
use crate::tasks::{self, TaskKind, TaskOutcome};
use crate::{Actor, Service, ServiceError, ServiceResult, db, domain, ids, mail};

/// Business days between an arrest alert and the county recheck (Turn's recommended lead time).
pub const RECHECK_AFTER_BUSINESS_DAYS: u32 = 7;
/// Days until the second recheck when the first found no charge.
pub const SECOND_RECHECK_DAYS: i64 = 30;
/// How long after the county recheck comes due a candidate asked for fresh consent may still
/// give it; the link expires then and the recheck does not run.
pub const FRESH_CONSENT_GRACE_DAYS: i64 = 7;

/// Alert statuses (the column holds 16 characters at most).
pub mod alert_status {
    /// The county recheck is scheduled.
    pub const WAITING: &str = "waiting";
    /// The candidate was asked for fresh consent; the county recheck runs once they give it.
    pub const AWAITING_CONSENT: &str = "awaiting_consent";
    /// The candidate did not give fresh consent before the link expired: no recheck ran.
    pub const NO_CONSENT: &str = "no_consent";
    /// A county recheck found a charge.
    pub const CHARGED: &str = "charged";
    /// Two county rechecks found no charge.
    pub const NO_CHARGE: &str = "no_charge";
    /// The check was unenrolled before the alert's rechecks were done.
    pub const CANCELLED: &str = "cancelled";
}

/// States whose law does not let a consent given once cover later reports (not "evergreen"):
/// a monitoring hit needs the candidate's fresh consent before the county recheck.
const NOT_EVERGREEN_STATES: [&str; 1] = ["CA"];

/// Whether a new search on `cand` (a monitoring hit's county recheck, a recheck) needs their
/// fresh consent: the state on file or the one their ZIP code is in is not evergreen (Turn: "CA
/// Recheck works based on the zip code"; the state on file counts too, so either asking is
/// enough).
pub fn needs_fresh_consent(cand: &candidate::Model) -> bool {
    let not_evergreen = |s: &str| {
        NOT_EVERGREEN_STATES
            .iter()
            .any(|e| e.eq_ignore_ascii_case(s.trim()))
    };
    cand.state.as_deref().is_some_and(not_evergreen)
        || cand
            .zip
            .as_deref()
            .and_then(crate::screening::zipstate::state_for_zip)
            .is_some_and(not_evergreen)
}

/// The statement that ends a check's open alerts (`cancelled`): it was unenrolled or withdrawn.
pub(crate) fn cancelling_alerts(check_id: &str, now: DateTime<Utc>) -> UpdateStatement {
    monitoring_alert::Entity::update_many()
        .col_expr(
            monitoring_alert::Column::Status,
            Expr::value(alert_status::CANCELLED),
        )
        .col_expr(monitoring_alert::Column::UpdatedAt, Expr::value(now))
        .filter(monitoring_alert::Column::CheckId.eq(check_id))
        .filter(
            monitoring_alert::Column::Status
                .is_in([alert_status::WAITING, alert_status::AWAITING_CONSENT]),
        )
        .into_query()
}

/// One page of enrolled checks.
#[derive(Debug, Clone)]
pub struct EnrolledPage {
    pub items: Vec<check::Model>,
    pub total: u64,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}

impl Service {
    async fn set_enrollment(
        &self,
        actor: &Actor,
        check_id: &str,
        enroll: bool,
    ) -> ServiceResult<check::Model> {
        actor.require(Role::TeamMember)?;
        let txn = db::begin_write(&self.db).await?;
        // On PostgreSQL the check is locked before it is read, so a withdrawal or another
        // enrollment waits for this decision (and then finds the row changed) instead of being
        // overwritten by it.
        db::lock_row(&txn, "checks", &actor.partner_id, check_id).await?;
        let c = crate::check::find(&txn, &actor.partner_id, check_id).await?;
        if enroll == c.cm_criminal_enroll.is_some() {
            // Already as asked (an enrolled check whose charge put it in review since is
            // still enrolled).
            self.commit(txn).await?;
            return Ok(c);
        }
        if enroll && !matches!(c.status, CheckStatus::Approved | CheckStatus::ReviewCm) {
            return Err(ServiceError::invalid(
                "checkId",
                format!(
                    "only approved checks can be enrolled; this one is {}",
                    c.status
                ),
            ));
        }
        if enroll {
            // Monitoring follows a person, as Turn enrolls a worker: one enrolled check per
            // candidate (the candidate's row is the turn two enrollments take).
            db::lock_row(&txn, "candidates", &c.partner_id, &c.candidate_id).await?;
            let other = check::Entity::find()
                .select_only()
                .column(check::Column::Id)
                .filter(check::Column::PartnerId.eq(&c.partner_id))
                .filter(check::Column::CandidateId.eq(&c.candidate_id))
                .filter(check::Column::Id.ne(&c.id))
                .filter(check::Column::CmCriminalEnroll.is_not_null())
                .into_tuple::<String>()
                .one(&txn)
                .await?;
            if let Some(other) = other {
                return Err(ServiceError::Conflict {
                    field: Some("checkId".into()),
                    message: format!(
                        "the worker is already enrolled in monitoring through check {other}; unenroll it first"
                    ),
                    existing_id: Some(other),
                });
            }
        }
        let now = self.clock.now();
        let date: Option<NaiveDate> = enroll.then(|| now.date_naive());
        check::Entity::update_many()
            .col_expr(check::Column::CmCriminalEnroll, Expr::value(date))
            .col_expr(check::Column::UpdatedAt, Expr::value(now))
            .filter(check::Column::Id.eq(&c.id))
            .exec(&txn)
            .await?;
        events::record(
            &txn,
            &actor.partner_id,
            if enroll {
                EventType::MonitoringEnrolled
            } else {
                EventType::MonitoringUnenrolled
            },
            &c.id,
            json!({
                "check_id": c.id,
                "worker_id": c.candidate_id,
                "cm_criminal_enroll": date.map(|d| d.format("%Y-%m-%d").to_string()),
                "actor": actor.subject,
            }),
        )
        .await?;
        if !enroll {
            // Open alerts end with their rechecks, and a link asking for fresh consent stops
            // working (a later enrollment starts afresh).
            tasks::cancel(&txn, &c.id, &[TaskKind::MonitoringRecheck], now).await?;
            txn.execute(&cancelling_alerts(&c.id, now)).await?;
            txn.execute(&crate::screen::revoking_links(
                &c.id,
                &[LINK_MONITORING_CONSENT],
                now,
            ))
            .await?;
        }
        let updated = crate::check::find(&txn, &actor.partner_id, check_id).await?;
        self.commit(txn).await?;
        Ok(updated)
    }

    pub async fn enroll_monitoring(
        &self,
        actor: &Actor,
        check_id: &str,
    ) -> ServiceResult<check::Model> {
        self.set_enrollment(actor, check_id, true).await
    }

    pub async fn unenroll_monitoring(
        &self,
        actor: &Actor,
        check_id: &str,
    ) -> ServiceResult<check::Model> {
        self.set_enrollment(actor, check_id, false).await
    }

    /// Enrolled checks, newest enrollment first, optionally by enrollment date range, paged
    /// forward by cursor.
    pub async fn monitoring_enrollments(
        &self,
        actor: &Actor,
        first: u64,
        after: Option<&str>,
        enrolled_from: Option<NaiveDate>,
        enrolled_to: Option<NaiveDate>,
    ) -> ServiceResult<EnrolledPage> {
        actor.require(Role::LimitedTeamMember)?;
        if first == 0 || first > self.settings.max_page_size {
            return Err(ServiceError::invalid(
                "first",
                format!("must be 1 to {}", self.settings.max_page_size),
            ));
        }
        if let (Some(from), Some(to)) = (enrolled_from, enrolled_to)
            && from > to
        {
            return Err(ServiceError::invalid(
                "enrolledTo",
                format!("{to} is before enrolledFrom ({from}); both dates are included"),
            ));
        }
        let mut q = check::Entity::find()
            .filter(check::Column::PartnerId.eq(&actor.partner_id))
            .filter(check::Column::CmCriminalEnroll.is_not_null());
        if let Some(f) = enrolled_from {
            q = q.filter(check::Column::CmCriminalEnroll.gte(f));
        }
        if let Some(t) = enrolled_to {
            q = q.filter(check::Column::CmCriminalEnroll.lte(t));
        }
        let total = q.clone().count(&self.db).await?;
        if let Some(cursor) = after {
            // The cursor is where the last item seen sat in the order, (enrollment date, id)
            // descending: the page goes on from there even if that check has been unenrolled
            // or enrolled again since.
            let (d, id) = cursor
                .split_once(':')
                .and_then(|(d, id)| Some((d.parse::<NaiveDate>().ok()?, id)))
                .ok_or_else(|| ServiceError::invalid("after", "not a cursor of this list"))?;
            q = q.filter(
                sea_orm::Condition::any()
                    .add(check::Column::CmCriminalEnroll.lt(d))
                    .add(
                        sea_orm::Condition::all()
                            .add(check::Column::CmCriminalEnroll.eq(d))
                            .add(check::Column::Id.lt(id)),
                    ),
            );
        }
        let mut items = q
            .order_by_desc(check::Column::CmCriminalEnroll)
            .order_by_desc(check::Column::Id)
            .limit(first + 1)
            .all(&self.db)
            .await?;
        let has_next_page = items.len() as u64 > first;
        items.truncate(first as usize);
        Ok(EnrolledPage {
            end_cursor: items
                .last()
                .and_then(|c| Some(format!("{}:{}", c.cm_criminal_enroll?, c.id))),
            items,
            total,
            has_next_page,
        })
    }

    /// Sandbox only: an arrest alert for an enrolled check, as a booking-facility feed would
    /// raise it. `charge_filed` says whether the courthouse will show a charge.
    pub async fn sandbox_arrest_alert(
        &self,
        actor: &Actor,
        check_id: &str,
        county: &str,
        state: &str,
        charge_filed: bool,
    ) -> ServiceResult<monitoring_alert::Model> {
        actor.require(Role::TeamMember)?;
        if self.provider.name() != "sandbox" {
            return Err(ServiceError::Forbidden(
                "arrest alerts can only be simulated with the sandbox provider".into(),
            ));
        }
        let county = report::county_name(&domain::text("county", county, 100)?);
        let state = domain::us_state("state", state)?;
        let txn = db::begin_write(&self.db).await?;
        // Locked as enrollment locks it: an unenrollment committing meanwhile is not followed
        // by an alert (and a consent request) on a check no longer monitored.
        db::lock_row(&txn, "checks", &actor.partner_id, check_id).await?;
        let (c, cand, partner) =
            crate::check::find_with_owner(&txn, &actor.partner_id, check_id).await?;
        if c.cm_criminal_enroll.is_none() {
            return Err(ServiceError::invalid(
                "checkId",
                "the check is not enrolled in continuous monitoring",
            ));
        }
        let now = self.clock.now();
        let fresh_consent = needs_fresh_consent(&cand);
        let alert = monitoring_alert::ActiveModel {
            id: Set(ids::uuid()),
            partner_id: Set(c.partner_id.clone()),
            check_id: Set(c.id.clone()),
            county: Set(county),
            state: Set(state),
            arrested_on: Set(now.date_naive()),
            charge_filed: Set(charge_filed),
            status: Set(if fresh_consent {
                alert_status::AWAITING_CONSENT
            } else {
                alert_status::WAITING
            }
            .into()),
            rechecks: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        let due = calendar::add_business_days(now, RECHECK_AFTER_BUSINESS_DAYS);
        txn.execute(&tasks::scheduling(
            &c.partner_id,
            Some(&c.id),
            TaskKind::MonitoringRecheck,
            json!({"alert_id": alert.id}),
            due,
            now,
        ))
        .await?;
        if fresh_consent {
            let writes = self.fresh_consent_request(&c, &cand, &partner, due, now);
            db::write_all(&txn, writes).await?;
        }
        self.commit(txn).await?;
        Ok(alert)
    }

    /// The email asking a candidate for fresh consent to a county recheck, with a new link to
    /// the consent page valid until [`FRESH_CONSENT_GRACE_DAYS`] after the recheck is `due`.
    /// Earlier such links of the check stop working: one signature covers every alert waiting
    /// for it. The email does not mention the arrest; the disclosure it links to describes the
    /// search.
    fn fresh_consent_request(
        &self,
        c: &check::Model,
        cand: &candidate::Model,
        partner: &partner::Model,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<sea_orm::sea_query::SubQueryStatement> {
        let expires = due + Duration::days(FRESH_CONSENT_GRACE_DAYS);
        let (url, link) = self.link(c, LINK_MONITORING_CONSENT, expires - now);
        let mut writes = vec![
            crate::screen::revoking_links(&c.id, &[LINK_MONITORING_CONSENT], now).into(),
            link.into(),
        ];
        let body = format!(
            "Hello {first},\n\n{partner} keeps your background check up to date with {agency}. \
             An update needs a new search of county court records, and the law of California, \
             where you live, asks for your consent to it. Please read the disclosures and sign \
             at\n\n  {url}\n\nThe link works once and expires on {expires}. Without your \
             consent the search does not run. If it finds nothing, the same search is repeated \
             once, 30 days later.\n",
            first = cand.first_name,
            partner = partner.name,
            agency = self.settings.agency.name,
            expires = mail::link_expiry(expires),
        );
        let subject = format!(
            "{}: your consent is needed to update your background check",
            partner.name
        );
        writes.extend(mail::sending(
            cand,
            &c.id,
            mail::kind::MONITORING_CONSENT,
            &subject,
            body,
            now,
        ));
        writes.extend(crate::screen::reminders(
            c,
            crate::tasks::TaskKind::MonitoringConsentReminder,
            now,
        ));
        writes
    }

    /// Consent given on the page to a monitoring link: every alert of the check waiting for it
    /// goes on to its county recheck (which runs when due, or within the hour when it already
    /// is). The partner is not told: a consent confirmation would reveal the arrest, which FCRA
    /// lets them learn of only with a charge.
    /// Returns how many alerts went on.
    pub(crate) async fn fresh_consent_given<C: ConnectionTrait>(
        &self,
        conn: &C,
        check_id: &str,
        now: DateTime<Utc>,
    ) -> ServiceResult<u64> {
        let moved = monitoring_alert::Entity::update_many()
            .col_expr(
                monitoring_alert::Column::Status,
                Expr::value(alert_status::WAITING),
            )
            .col_expr(monitoring_alert::Column::UpdatedAt, Expr::value(now))
            .filter(monitoring_alert::Column::CheckId.eq(check_id))
            .filter(monitoring_alert::Column::Status.eq(alert_status::AWAITING_CONSENT))
            .exec(conn)
            .await?;
        Ok(moved.rows_affected)
    }

    /// Whether a check (enrolled, not withdrawn) has an alert waiting for the candidate's fresh
    /// consent.
    pub(crate) async fn awaits_fresh_consent<C: ConnectionTrait>(
        &self,
        conn: &C,
        c: &check::Model,
    ) -> ServiceResult<bool> {
        Ok(c.cm_criminal_enroll.is_some()
            && c.status != CheckStatus::Withdrawn
            && monitoring_alert::Entity::find()
                .filter(monitoring_alert::Column::CheckId.eq(&c.id))
                .filter(monitoring_alert::Column::Status.eq(alert_status::AWAITING_CONSENT))
                .count(conn)
                .await?
                > 0)
    }

    /// Alerts of a check, oldest first.
    pub async fn monitoring_alerts(
        &self,
        actor: &Actor,
        check_id: &str,
    ) -> ServiceResult<Vec<monitoring_alert::Model>> {
        actor.require(Role::TeamMember)?;
        Ok(monitoring_alert::Entity::find()
            .filter(monitoring_alert::Column::PartnerId.eq(&actor.partner_id))
            .filter(monitoring_alert::Column::CheckId.eq(check_id))
            .order_by_asc(monitoring_alert::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    /// While a recheck is screening the candidate, the county recheck waits: the recheck's
    /// report will replace the one a charge would be added to, and from `processing` the check
    /// cannot go to `review__cm`. A recheck held for identity (`review__identity`) is still
    /// screening: resuming it runs the searches again into a new report. The county recheck
    /// runs again an hour later, on the recheck's outcome.
    fn wait_for_screening(&self, c: &check::Model) -> Option<TaskOutcome> {
        matches!(
            c.status,
            CheckStatus::Processing | CheckStatus::ReviewIdentity
        )
        .then(|| TaskOutcome::RunAgainAt(self.clock.now() + Duration::hours(1)))
    }

    /// A county recheck due before the candidate gave the fresh consent it needs waits for it,
    /// an hour at a time, while their link works; once it has expired unsigned the alert ends
    /// without a recheck.
    async fn wait_for_fresh_consent(
        &self,
        alert: &monitoring_alert::Model,
    ) -> ServiceResult<TaskOutcome> {
        let now = self.clock.now();
        let link = candidate_link::Entity::find()
            .filter(candidate_link::Column::CheckId.eq(&alert.check_id))
            .filter(candidate_link::Column::Purpose.eq(LINK_MONITORING_CONSENT))
            .filter(candidate_link::Column::RevokedAt.is_null())
            .filter(candidate_link::Column::UsedAt.is_null())
            .filter(candidate_link::Column::ExpiresAt.gt(now))
            .order_by_desc(candidate_link::Column::ExpiresAt)
            .one(&self.db)
            .await?;
        if let Some(link) = link {
            return Ok(TaskOutcome::RunAgainAt(
                (now + Duration::hours(1)).min(link.expires_at),
            ));
        }
        let ended = monitoring_alert::Entity::update_many()
            .col_expr(
                monitoring_alert::Column::Status,
                Expr::value(alert_status::NO_CONSENT),
            )
            .col_expr(monitoring_alert::Column::UpdatedAt, Expr::value(now))
            .filter(monitoring_alert::Column::Id.eq(&alert.id))
            .filter(monitoring_alert::Column::Status.eq(alert_status::AWAITING_CONSENT))
            .exec(&self.db)
            .await?;
        if ended.rows_affected == 0 {
            // The candidate signed (and used the link) since the alert was read: the recheck
            // runs now.
            return Ok(TaskOutcome::RunAgainAt(now));
        }
        Ok(TaskOutcome::Done)
    }

    /// Task: the county recheck of an arrest alert.
    pub(crate) async fn monitoring_recheck(
        &self,
        partner_id: &str,
        alert_id: &str,
    ) -> ServiceResult<TaskOutcome> {
        let Some(alert) = monitoring_alert::Entity::find_by_id(alert_id.to_string())
            .owned_by(&self.db, monitoring_alert::Column::PartnerId, partner_id)
            .await?
        else {
            return Ok(TaskOutcome::Done);
        };
        if alert.status == alert_status::AWAITING_CONSENT {
            return self.wait_for_fresh_consent(&alert).await;
        }
        if alert.status != alert_status::WAITING {
            return Ok(TaskOutcome::Done);
        }
        let c = crate::check::find(&self.db, partner_id, &alert.check_id).await?;
        if c.cm_criminal_enroll.is_none() {
            // Unenrolled as the alert was raised (its cancellation did not see it yet).
            self.db
                .execute(&cancelling_alerts(&c.id, self.clock.now()))
                .await?;
            return Ok(TaskOutcome::Done);
        }
        if let Some(later) = self.wait_for_screening(&c) {
            return Ok(later);
        }
        let cand = crate::candidate::find(&self.db, partner_id, &c.candidate_id).await?;
        let subject = self.subject_of(&cand)?;
        let now = self.clock.now();
        let records = self
            .provider
            .county_recheck(
                &subject,
                &ArrestAlert {
                    county: alert.county.clone(),
                    state: alert.state.clone(),
                    arrested_on: alert.arrested_on,
                    charge_filed: alert.charge_filed,
                },
                now,
            )
            .await?;
        let txn = db::begin_write(&self.db).await?;
        // The check first, as an enrollment change takes it (and then the alerts): taken after
        // the alert, the two could each wait for the other on PostgreSQL, and an unenrollment
        // between this read and the commit could miss the follow-up recheck written here.
        db::lock_row(&txn, "checks", partner_id, &alert.check_id).await?;
        let c = crate::check::find(&txn, partner_id, &alert.check_id).await?;
        if c.cm_criminal_enroll.is_none() || c.status == CheckStatus::Withdrawn {
            // Unenrolled or withdrawn while the provider searched.
            return Ok(TaskOutcome::Done);
        }
        if let Some(later) = self.wait_for_screening(&c) {
            return Ok(later);
        }
        // The check's latest report (a check approved by hand may have none). Records it already
        // holds are not a new charge: a conviction the screening reported, or the charge of an
        // earlier alert that the county answers with again.
        let mut report: Report = match c.report_enc.as_deref() {
            Some(s) if !records.is_empty() => {
                serde_json::from_str(&self.crypto.open(s)?).map_err(anyhow::Error::from)?
            }
            _ => Report::default(),
        };
        let charged = !records.is_empty();
        let records: Vec<CriminalRecord> = {
            let known: std::collections::HashSet<&str> = report
                .checks
                .criminal
                .iter()
                .flatten()
                .flat_map(|county| county.value.iter().map(|r| r.id.as_str()))
                .collect();
            let mut seen = std::collections::HashSet::new();
            records
                .into_iter()
                .filter(|r| !known.contains(r.id.as_str()) && seen.insert(r.id.clone()))
                .collect()
        };
        // A charge the report already holds (another alert's for the same arrest) is this
        // alert's answer too: `charged`, with nothing new to report and nothing to look at again.
        let status = match (charged, alert.rechecks) {
            (true, _) => alert_status::CHARGED,
            (false, 0) => alert_status::WAITING,
            (false, _) => alert_status::NO_CHARGE,
        };
        // This run's result counts only if the alert is still as read: waiting, with the
        // rechecks it had. Another run of the task (a lease that ran out) that recorded its
        // result first, or an unenrollment, makes this one change nothing.
        let recorded = monitoring_alert::Entity::update_many()
            .col_expr(monitoring_alert::Column::Status, Expr::value(status))
            .col_expr(
                monitoring_alert::Column::Rechecks,
                Expr::value(alert.rechecks + 1),
            )
            .col_expr(monitoring_alert::Column::UpdatedAt, Expr::value(now))
            .filter(monitoring_alert::Column::Id.eq(&alert.id))
            .filter(monitoring_alert::Column::Status.eq(alert_status::WAITING))
            .filter(monitoring_alert::Column::Rechecks.eq(alert.rechecks))
            .exec(&txn)
            .await?;
        if recorded.rows_affected == 0 {
            return Ok(TaskOutcome::Done);
        }
        if records.is_empty() {
            if !charged && alert.rechecks == 0 {
                txn.execute(&tasks::scheduling(
                    partner_id,
                    Some(&c.id),
                    TaskKind::MonitoringRecheck,
                    json!({"alert_id": alert.id}),
                    now + Duration::days(SECOND_RECHECK_DAYS),
                    now,
                ))
                .await?;
            }
            self.commit(txn).await?;
            return Ok(TaskOutcome::Done);
        }
        // The county's new records join its entry when the report has one (one entry per county).
        let counties = report.checks.criminal.get_or_insert_with(Vec::new);
        // The same county of the same state: a Washington County of Oregon is not Pennsylvania's.
        let same = |c: &CountyCriminal| {
            c.county.eq_ignore_ascii_case(&alert.county)
                && c.value.iter().all(|r| {
                    r.suspect_state
                        .as_deref()
                        .is_none_or(|s| s.eq_ignore_ascii_case(&alert.state))
                })
        };
        match counties.iter_mut().find(|c| same(c)) {
            Some(entry) => entry.value.extend(records),
            None => counties.push(CountyCriminal {
                county: alert.county.clone(),
                value: records,
                status: "ready".into(),
                clear_eta: None,
                hit_eta: None,
            }),
        }
        let reason = format!(
            "continuous monitoring: a charge was found in {}, {} after an arrest on {}",
            alert.county, alert.state, alert.arrested_on
        );
        // An approved check goes to compliance review. One that cannot (already in review,
        // Consider, rejected, an adverse action under way) keeps its status, and the partner
        // is still told: a status update with the monitoring tag, its state unchanged.
        let to = if c.status.can_transition_to(CheckStatus::ReviewCm) {
            CheckStatus::ReviewCm
        } else {
            c.status
        };
        if c.status == CheckStatus::PendingFirstNotice {
            crate::adverse::restart_waiting_period(&txn, &c.id, now).await?;
        }
        let sealed = self
            .keep_report(
                &txn,
                &c,
                "monitoring",
                &report,
                Some(to),
                std::slice::from_ref(&reason),
            )
            .await?;
        // Conditional on the check as read, like every status change: a change committed
        // meanwhile makes this a conflict, and the task runs again.
        self.apply_transition(
            &txn,
            &Actor::system(partner_id),
            c,
            to,
            Some(&reason),
            StatusExtras {
                report_enc: Some(sealed),
                monitoring_triggered: Some(true),
            },
        )
        .await?;
        self.commit(txn).await?;
        Ok(TaskOutcome::Done)
    }
}
