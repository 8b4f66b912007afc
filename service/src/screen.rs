//! Running a check end to end: what each new status causes (invitations, screening runs,
//! adverse action, rechecks), candidate links, consent through our page or the partner's hosted
//! form, the screening run through the provider with adjudication, and reports.
use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::{
    CheckStatus, Role, SearchKind, candidate, candidate_link, check, check_report, consent,
    form_session, partner,
};
use sea_orm::sea_query::{Expr, InsertStatement, SubQueryStatement, UpdateStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QueryTrait, Set,
};
use serde_json::{Value, json};
use sha2::Digest;

use crate::candidate::{CandidateInput, NewCandidate};
use crate::check::StatusExtras;
use crate::db::SelectUnique;
use crate::screening::disclosures::{self, RequiredField, Section};
use crate::screening::provider::{SearchOutcome, SearchRequest, Subject};
use crate::screening::zipstate::home_state;
use crate::screening::{adjudication, report::Report};
use crate::tasks::{self, TaskKind, TaskOutcome};
use crate::{Actor, Service, ServiceError, ServiceResult, db, domain, ids, mail};

/// How long a consent invitation link stays valid.
pub const CONSENT_LINK_DAYS: i64 = 7;
/// How long a candidate's link to their report stays valid.
pub const REPORT_LINK_DAYS: i64 = 90;
/// How long a hosted-form session (step one) stays valid.
const FORM_SESSION_HOURS: i64 = 24;
/// Reminders after the invitation, as the issue asks: about 12 h and 48 h.
const REMINDER_HOURS: [i64; 2] = [12, 48];

/// Link purposes.
pub const LINK_CONSENT: &str = "consent";
pub const LINK_REPORT: &str = "report";
/// Fresh consent to a county recheck after a monitoring hit (states that are not evergreen).
/// Opens the same consent page as [`LINK_CONSENT`].
pub const LINK_MONITORING_CONSENT: &str = "monitoring_consent";
/// Consent to a recheck where each background check needs its own (California); opens the
/// consent page too.
pub const LINK_RECHECK_CONSENT: &str = "recheck_consent";
/// The purposes the consent page takes.
const CONSENT_PAGE_LINKS: [&str; 3] = [LINK_CONSENT, LINK_MONITORING_CONSENT, LINK_RECHECK_CONSENT];
/// The statuses a recheck starts from.
const RECHECKABLE: [CheckStatus; 3] = [
    CheckStatus::Approved,
    CheckStatus::Pending,
    CheckStatus::Rejected,
];

/// The key, among a consent's section times, of the candidate ticking "I want to receive a copy
/// of my Background Report" (when they ticked it).
const COPY_OF_REPORT_REQUESTED: &str = "copy_of_report_requested";

/// The consent `method` of a partner-hosted form.
const HOSTED_FORM: &str = "hosted_form";

fn hash_token(token: &str) -> String {
    let digest = sha2::Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a candidate link cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkProblem {
    /// No such link (or a token that never existed).
    Unknown,
    Expired,
    /// Consent links work once.
    Used,
    /// The check moved on (withdrawn, or consent no longer needed).
    NotNeeded,
    /// The link could not be read or used just now (the database did not answer): the
    /// candidate should try again, not be told the link is bad. Logged where it happens.
    Unavailable,
}

/// A failed read or write answers `Unavailable`; a row that is not there, `Unknown`.
impl From<ServiceError> for LinkProblem {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound { .. } => LinkProblem::Unknown,
            e => {
                tracing::error!(error = %e.detail(), "a candidate link could not be served");
                LinkProblem::Unavailable
            }
        }
    }
}

impl From<sea_orm::DbErr> for LinkProblem {
    fn from(e: sea_orm::DbErr) -> Self {
        ServiceError::from(e).into()
    }
}

/// A consent signed for a check, as its evidence reads.
#[derive(Debug, Clone)]
pub struct ConsentRecord {
    /// `consent_page`, `hosted_form`, `recheck_consent_page` or `monitoring_consent_page`.
    pub method: String,
    pub signed_at: DateTime<Utc>,
    /// Each section's key and acknowledgement times (earliest first), in reading order, the
    /// signature last.
    pub sections: Vec<(String, Vec<DateTime<Utc>>)>,
    /// The answer to the optional "copy of my report" box on our page; `None` for a hosted
    /// form, whose answer is not passed to us.
    pub copy_of_report_requested: Option<bool>,
    /// The typed name, or the drawn signature as a data URL.
    pub signature: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

impl From<consent::Model> for ConsentRecord {
    fn from(c: consent::Model) -> Self {
        // Both writers store RFC 3339 times by section key; anything else is said in the log
        // rather than dropped without a word.
        let mut times: BTreeMap<String, Vec<String>> =
            serde_json::from_str(&c.section_timestamps).unwrap_or_else(|e| {
                tracing::error!(consent = %c.id, error = %e, "consent evidence's section times do not read");
                BTreeMap::new()
            });
        let asked = times.remove(COPY_OF_REPORT_REQUESTED).is_some();
        let mut sections: Vec<(String, Vec<DateTime<Utc>>)> = times
            .into_iter()
            .map(|(section, at)| {
                let mut parsed: Vec<DateTime<Utc>> = at
                    .iter()
                    .filter_map(|t| match DateTime::parse_from_rfc3339(t) {
                        Ok(t) => Some(t.with_timezone(&Utc)),
                        Err(e) => {
                            tracing::error!(consent = %c.id, time = %t, error = %e, "a consent section time does not read");
                            None
                        }
                    })
                    .collect();
                parsed.sort();
                (section, parsed)
            })
            .collect();
        // Reading order, then the signature (the times of a hosted form may all be one).
        let rank = |key: &str| {
            disclosures::READING_ORDER
                .iter()
                .position(|k| *k == key)
                .unwrap_or(disclosures::READING_ORDER.len())
        };
        sections.sort_by_key(|(key, at)| (key == "signature", rank(key), at.first().copied()));
        Self {
            copy_of_report_requested: (c.method != HOSTED_FORM).then_some(asked),
            method: c.method,
            signed_at: c.signed_at,
            sections,
            signature: c.signature,
            ip_address: c.ip_address,
            user_agent: c.user_agent,
        }
    }
}

/// What a consent page link asks the candidate to consent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentPurpose {
    /// The check itself (the invitation's link): signing starts it.
    Screening,
    /// A county recheck after a continuous-monitoring hit, where the candidate's state needs
    /// consent to each new search: signing lets the recheck run.
    MonitoringRecheck,
    /// A recheck of a decided check, where the candidate's state needs consent to each
    /// background check: signing starts it (→ `processing`).
    Recheck,
}

/// What the consent page shows.
#[derive(Debug, Clone)]
pub struct ConsentView {
    pub purpose: ConsentPurpose,
    pub partner_name: String,
    pub first_name: String,
    pub full_name: String,
    pub sections: Vec<Section>,
    /// Section keys acknowledged so far, with their times.
    pub acknowledged: BTreeMap<String, Vec<String>>,
    /// Profile fields the candidate still has to give (form field names).
    pub missing: Vec<&'static str>,
    pub expires_at: DateTime<Utc>,
}

impl ConsentView {
    /// The first section not acknowledged yet, if any.
    pub fn next_section(&self) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| !self.acknowledged.contains_key(s.key))
    }
}

/// What the candidate types on the consent page, by form field name.
#[derive(Debug, Clone, Default)]
pub struct ConsentDetails {
    pub fields: BTreeMap<String, String>,
    /// The typed name.
    pub signature: String,
    /// The drawn signature, a PNG data URL; empty when the candidate typed their name only.
    pub signature_image: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

/// Field errors of a consent submission: (form field, message), in form order.
pub type FieldErrors = Vec<(String, String)>;

/// What became of a signature submitted on the consent page.
#[derive(Debug)]
pub enum ConsentSubmission {
    /// Signed: the check is processing, or (a monitoring link) the county recheck may run.
    Signed(ConsentPurpose),
    /// Refused, each field with its message; nothing was written.
    Invalid(FieldErrors),
    /// The details given put the candidate in a state with its own summary of rights, which
    /// the page could not show before it knew where they live: the details are kept, and the
    /// page shows that summary before they sign.
    StateSummaryDue,
}

/// The form fields the consent page may ask for, with their validators.
const PAGE_FIELDS: [&str; 8] = [
    "date_of_birth",
    "ssn",
    "address",
    "city",
    "state",
    "zip",
    "drivers_license_number",
    "drivers_license_state",
];

/// Step one of a partner-hosted consent form.
#[derive(Debug, Clone)]
pub struct FormSpec {
    pub form_id: String,
    pub package_id: String,
    pub state: Option<String>,
    pub data: Vec<RequiredField>,
    pub disclosures: Vec<Section>,
}

/// Step two: the candidate's data and consent evidence, as the partner's form gathered them.
#[derive(Debug, Clone, Default)]
pub struct HostedConsent {
    pub candidate: CandidateInput,
    pub no_middle_name: bool,
    /// The signature image, a `data:image/png;base64,` URL.
    pub consent_document: String,
    pub callback_url: Option<String>,
    /// `false` keeps the check at `consent` without running it.
    pub do_checks: bool,
    /// Turn's `bypass_dupe`: a candidate with this SSN on file is screened again (their
    /// profile takes the form's details, and a new check starts for them) instead of the
    /// answer being [`HostedConsentResult::CandidateExists`].
    pub bypass_dupe: bool,
    /// Section key (Turn's `timestamps` keys, plus `signature`) → RFC 3339 times.
    pub timestamps: BTreeMap<String, Vec<String>>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

/// Minutes a hosted form's evidence times may lie before the form was made or after it was
/// submitted (the candidate's device keeps its own clock).
const EVIDENCE_CLOCK_SKEW_MINUTES: i64 = 5;

/// The answer to step two.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // returned once per request, never stored
pub enum HostedConsentResult {
    Started {
        candidate: candidate::Model,
        check: check::Model,
    },
    /// Turn's 9400: a candidate with this SSN already exists; nothing was started.
    CandidateExists { candidate: candidate::Model },
}

/// Why the candidate is sent a copy of their report.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ReportCopy {
    /// The results are in.
    Complete,
    /// Continuous monitoring added a record while a decision may go against them (Consider,
    /// adverse action, rejected): the partner may act on it, so they see it and may dispute it.
    MonitoringRecord,
}

/// A report of a check, opened.
#[derive(Debug, Clone)]
pub struct ReportEntry {
    pub id: i64,
    pub kind: String,
    pub decision: Option<String>,
    pub reasons: Vec<String>,
    pub report: Value,
    pub created_at: DateTime<Utc>,
}

impl Service {
    /// The writes a new status causes (tasks, links, mail), in the order SQLite runs them; on
    /// PostgreSQL they go into the status change's own statement. What they need to read, they
    /// read on `conn` (the caller's transaction, or the pool when the change is one statement).
    /// `c` is the check as the change leaves it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn transition_effects<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        c: &check::Model,
        cand: &candidate::Model,
        partner: &partner::Model,
        from: Option<CheckStatus>,
        to: CheckStatus,
    ) -> ServiceResult<Vec<SubQueryStatement>> {
        let now = self.clock.now();
        Ok(match to {
            CheckStatus::Emailed => self.invitation(c, cand, partner, now),
            CheckStatus::Processing => {
                let recheck = from.is_some_and(|f| RECHECKABLE.contains(&f));
                // Reminders stop, the searches start.
                let mut writes: Vec<SubQueryStatement> = vec![
                    tasks::cancelling(
                        &c.id,
                        &[TaskKind::InviteReminder, TaskKind::RecheckConsentReminder],
                        now,
                    )
                    .into(),
                    tasks::scheduling(
                        &c.partner_id,
                        Some(&c.id),
                        TaskKind::Screening,
                        json!({
                            "kind": if recheck { "recheck" } else { "initial" },
                            "identity_override": from == Some(CheckStatus::ReviewIdentity),
                            "requested_at": now.to_rfc3339(),
                        }),
                        now,
                        now,
                    )
                    .into(),
                ];
                if recheck {
                    // A recheck's consent link not used (the recheck started another way: the
                    // candidate's address moved out of a state that asks for fresh consent)
                    // stops working: signed later, it would start a recheck no one asked for.
                    let mut unused = revoking_links(&c.id, &[LINK_RECHECK_CONSENT], now);
                    unused.and_where(candidate_link::Column::UsedAt.is_null());
                    writes.push(unused.into());
                }
                writes
            }
            CheckStatus::Approved | CheckStatus::Pending
                if from.is_some_and(|f| f == CheckStatus::Processing || f.is_review()) =>
            {
                // Results are in: the candidate gets their copy, as the FCRA entitles them.
                let mut writes = self.report_copy(c, cand, partner, ReportCopy::Complete, now);
                if to == CheckStatus::Approved {
                    writes.extend(recheck_scheduling(c, partner.recheck_interval_days, now));
                }
                writes
            }
            CheckStatus::Approved => {
                let mut writes = crate::adverse::ending_adverse_action(c, "cancelled", now);
                if from.is_some_and(|f| {
                    matches!(
                        f,
                        CheckStatus::PendingFirstNotice | CheckStatus::PendingSecondNotice
                    )
                }) {
                    writes.extend(self.adverse_cancelled(conn, c, cand, partner, now).await?);
                }
                writes.extend(recheck_scheduling(c, partner.recheck_interval_days, now));
                writes
            }
            CheckStatus::PendingFirstNotice => {
                self.adverse_start(conn, c, cand, partner, now).await?
            }
            CheckStatus::PendingSecondNotice => {
                self.final_notice(conn, c, cand, partner, now).await?
            }
            CheckStatus::Rejected => crate::adverse::ending_adverse_action(c, "completed", now),
            CheckStatus::Withdrawn => {
                // Mail already written still goes out; every other step stops.
                let steps: Vec<TaskKind> = TaskKind::ALL
                    .into_iter()
                    .filter(|k| *k != TaskKind::SendEmail)
                    .collect();
                vec![
                    crate::adverse::close_adverse_actions(&c.id, "cancelled", now).into(),
                    // Monitoring ends with the check (the change itself unenrolls it).
                    crate::monitoring::cancelling_alerts(&c.id, now).into(),
                    tasks::cancelling(&c.id, &steps, now).into(),
                    revoking_links(&c.id, &CONSENT_PAGE_LINKS, now).into(),
                ]
            }
            _ => Vec::new(),
        })
    }

    /// The candidate's copy of the report: a link to it, mailed, saying why it is sent.
    pub(crate) fn report_copy(
        &self,
        c: &check::Model,
        cand: &candidate::Model,
        partner: &partner::Model,
        why: ReportCopy,
        now: DateTime<Utc>,
    ) -> Vec<SubQueryStatement> {
        let agency = &self.settings.agency.name;
        let what = match why {
            ReportCopy::Complete => format!(
                "The background check {} asked {agency} to run is complete.",
                partner.name
            ),
            ReportCopy::MonitoringRecord => format!(
                "Continuous monitoring found a new record, and {agency} has added it to the \
                 background check report it gave {}.{}",
                partner.name,
                if c.status == CheckStatus::PendingFirstNotice {
                    // `restart_waiting_period`.
                    " The waiting period before any final decision on your application starts \
                     again (once a dispute you have open is resolved, if you have one), so you \
                     have all of it to dispute the new record."
                } else {
                    ""
                }
            ),
        };
        let (url, link) = self.link(c, LINK_REPORT, Duration::days(REPORT_LINK_DAYS));
        let body = format!(
            "Hello {},\n\n{what} You can read your copy of the report at\n\n  {url}\n\nIf \
             anything in it is incomplete or inaccurate, you have the right to dispute it.\n",
            cand.first_name
        );
        let subject = format!("{}: your background check report", partner.name);
        let mut writes = vec![link.into()];
        writes.extend(mail::sending(
            cand,
            &c.id,
            mail::kind::REPORT_COPY,
            &subject,
            body,
            now,
        ));
        writes
    }

    /// A new consent link for `c` (its URL) and the writes that keep it (the token is not kept,
    /// so a reminder or a resend can only carry a fresh link). With `revoke_earlier` (an
    /// invitation, sent again perhaps to a corrected address) every earlier link stops working;
    /// without (a reminder) they keep working until they expire, so the invitation's link, and
    /// the sections acknowledged through it, survive the reminder. Whichever link is signed
    /// first ends them all: the page only opens while the check awaits consent.
    fn fresh_consent_link(
        &self,
        c: &check::Model,
        now: DateTime<Utc>,
        revoke_earlier: bool,
    ) -> (String, Vec<SubQueryStatement>) {
        let (url, link) = self.link(c, LINK_CONSENT, Duration::days(CONSENT_LINK_DAYS));
        let mut writes: Vec<SubQueryStatement> = Vec::with_capacity(2);
        if revoke_earlier {
            writes.push(revoking_consent_links(&c.id, now).into());
        }
        writes.push(link.into());
        (url, writes)
    }

    /// The URL of a new link for the candidate of `c` and the statement that keeps it. Only the
    /// token's hash is kept.
    pub(crate) fn link(
        &self,
        c: &check::Model,
        purpose: &str,
        valid_for: Duration,
    ) -> (String, InsertStatement) {
        let token = new_token();
        let now = self.clock.now();
        let insert = candidate_link::Entity::insert(candidate_link::ActiveModel {
            id: Set(ids::uuid()),
            partner_id: Set(c.partner_id.clone()),
            check_id: Set(c.id.clone()),
            purpose: Set(purpose.to_string()),
            token_hash: Set(hash_token(&token)),
            progress: Set("{}".into()),
            expires_at: Set(now + valid_for),
            used_at: Set(None),
            revoked_at: Set(None),
            created_at: Set(now),
        })
        .into_query();
        let page = if CONSENT_PAGE_LINKS.contains(&purpose) {
            LINK_CONSENT
        } else {
            purpose
        };
        let url = format!(
            "{}/{page}/{token}",
            self.settings.public_base_url.trim_end_matches('/')
        );
        (url, insert)
    }

    /// The consent invitation (a fresh single-use link; earlier links stop working) and its
    /// reminders.
    fn invitation(
        &self,
        c: &check::Model,
        cand: &candidate::Model,
        partner: &partner::Model,
        now: DateTime<Utc>,
    ) -> Vec<SubQueryStatement> {
        let (url, mut writes) = self.fresh_consent_link(c, now, true);
        let expires = mail::link_expiry(now + Duration::days(CONSENT_LINK_DAYS));
        let body = format!(
            "Hello {first},\n\n{partner} has asked {agency} to run a background check on you. \
             Before anything is searched we need your consent: please read the disclosures and \
             sign at\n\n  {url}\n\nThe link works once and expires on {expires}.\n\n\
             If you did not apply to {partner}, you can ignore this message.\n",
            first = cand.first_name,
            partner = partner.name,
            agency = self.settings.agency.name,
        );
        let subject = format!("{}: your background check needs your consent", partner.name);
        // Earlier links revoked and the new one kept, the message and its task, the reminders
        // replaced.
        writes.extend(mail::sending(
            cand,
            &c.id,
            mail::kind::INVITATION,
            &subject,
            body,
            now,
        ));
        writes.extend(reminders(c, TaskKind::InviteReminder, now));
        writes
    }

    /// Invites the candidate of an `initiated` check (→ `emailed`), or sends an `emailed`
    /// check's invitation again with a new link.
    pub async fn send_invitation(
        &self,
        actor: &Actor,
        check_id: &str,
    ) -> ServiceResult<check::Model> {
        actor.require(Role::LimitedTeamMember)?;
        let txn = db::begin_write(&self.db).await?;
        let (c, cand, partner) =
            crate::check::find_with_owner(&txn, &actor.partner_id, check_id).await?;
        if signed_and_held(&c) {
            return Err(already_signed());
        }
        let updated = match c.status {
            CheckStatus::Initiated => {
                self.apply_transition_of(
                    &txn,
                    actor,
                    c,
                    (&cand, &partner),
                    CheckStatus::Emailed,
                    Some("invitation sent"),
                    StatusExtras::default(),
                )
                .await?
            }
            CheckStatus::Emailed => {
                // Conditional on the check as read: a candidate signing at this moment moves it
                // on, and then no "please consent" mail goes out after their consent.
                let c = self.take_turn(&txn, c).await?;
                let writes = self.invitation(&c, &cand, &partner, self.clock.now());
                db::write_all(&txn, writes).await?;
                c
            }
            other => {
                return Err(ServiceError::invalid(
                    "checkId",
                    format!("a check in status {other} needs no invitation"),
                ));
            }
        };
        self.commit(txn).await?;
        Ok(updated)
    }

    /// Starts a check submitted through a hosted form with `doChecks: false` (Turn's
    /// `POST /fcra_check/form/{check_id}/run`), with the consent the form gave: `initiated` →
    /// `consent` → `processing`. A check that has already run, or one without a signed form, is
    /// refused.
    pub async fn run_check(&self, actor: &Actor, check_id: &str) -> ServiceResult<check::Model> {
        actor.require(Role::LimitedTeamMember)?;
        let txn = db::begin_write(&self.db).await?;
        let (c, cand, partner) =
            crate::check::find_with_owner(&txn, &actor.partner_id, check_id).await?;
        if !signed_and_held(&c) {
            return Err(ServiceError::conflict(format!(
                "only a check whose consent was given through a hosted form with doChecks false \
                 waits to be run; this one is {}",
                c.status
            )));
        }
        let consented = self
            .apply_transition_of(
                &txn,
                &Actor::system(&actor.partner_id),
                c,
                (&cand, &partner),
                CheckStatus::Consent,
                Some("consent given on the partner's form; check run"),
                StatusExtras::default(),
            )
            .await?;
        let started = self
            .start_searches(&txn, consented, (&cand, &partner))
            .await?;
        self.commit(txn).await?;
        Ok(started)
    }

    /// A consented check's searches start (`consent` → `processing`, the system's move).
    async fn start_searches(
        &self,
        txn: &DatabaseTransaction,
        c: check::Model,
        owner: (&candidate::Model, &partner::Model),
    ) -> ServiceResult<check::Model> {
        let system = Actor::system(&c.partner_id);
        self.apply_transition_of(
            txn,
            &system,
            c,
            owner,
            CheckStatus::Processing,
            Some("searches started"),
            StatusExtras::default(),
        )
        .await
    }

    /// A consent link for the partner to bring the candidate to the consent page itself (by
    /// its own email, text message or app; Turn's `candidate_consent_url` with
    /// `email_candidate: false`), for a check waiting for consent (`initiated` or `emailed`).
    /// Nothing is mailed and the status does not change; earlier links stop working. The URL is
    /// shown this once: only its token's hash is kept.
    pub async fn issue_consent_link(
        &self,
        actor: &Actor,
        check_id: &str,
    ) -> ServiceResult<(String, DateTime<Utc>)> {
        actor.require(Role::LimitedTeamMember)?;
        let txn = db::begin_write(&self.db).await?;
        let c = crate::check::find(&txn, &actor.partner_id, check_id).await?;
        if signed_and_held(&c) {
            return Err(already_signed());
        }
        if !matches!(c.status, CheckStatus::Initiated | CheckStatus::Emailed) {
            return Err(ServiceError::invalid(
                "checkId",
                format!(
                    "only checks waiting for consent (initiated or emailed) take a consent link; this one is {}",
                    c.status
                ),
            ));
        }
        // Conditional on the check as read, as `send_invitation`: no fresh link for a candidate
        // consenting at this moment.
        let c = self.take_turn(&txn, c).await?;
        let now = self.clock.now();
        let (url, mut writes) = self.fresh_consent_link(&c, now, true);
        // The partner reaches the candidate now: our reminders (of an invitation) stop.
        writes.push(tasks::cancelling(&c.id, &[TaskKind::InviteReminder], now).into());
        db::write_all(&txn, writes).await?;
        self.commit(txn).await?;
        Ok((url, now + Duration::days(CONSENT_LINK_DAYS)))
    }

    /// Task: remind a candidate who has not consented yet (nothing if they have): to an
    /// invitation's check (`purpose` [`LINK_CONSENT`]), to a recheck
    /// ([`LINK_RECHECK_CONSENT`]) or to a monitoring hit's county recheck
    /// ([`LINK_MONITORING_CONSENT`]). A reminder is sent once for the time it was `due`: a run of
    /// the task again (its end not recorded before its lease ran out), or a reminder or request
    /// of the same purpose sent since then (each sends a link of its own), finds the candidate
    /// reminded and sends nothing.
    pub(crate) async fn send_reminder(
        &self,
        partner_id: &str,
        check_id: &str,
        due: DateTime<Utc>,
        purpose: &str,
    ) -> ServiceResult<TaskOutcome> {
        let txn = db::begin_write(&self.db).await?;
        let Some((c, cand, partner)) = crate::tasks::unless_gone(
            crate::check::find_with_owner(&txn, partner_id, check_id).await,
        )?
        else {
            return Ok(TaskOutcome::Done);
        };
        let (what, waiting) = match purpose {
            LINK_RECHECK_CONSENT => (
                "a new background check, an update of your earlier one",
                RECHECKABLE.contains(&c.status),
            ),
            LINK_MONITORING_CONSENT => (
                "a new search of county court records to update your background check",
                self.awaits_fresh_consent(&txn, &c).await?,
            ),
            _ => ("your background check", c.status == CheckStatus::Emailed),
        };
        if !waiting {
            return Ok(TaskOutcome::Done);
        }
        let now = self.clock.now();
        let link = candidate_link::Entity::find()
            .filter(candidate_link::Column::CheckId.eq(&c.id))
            .filter(candidate_link::Column::Purpose.eq(purpose))
            .filter(candidate_link::Column::RevokedAt.is_null())
            .filter(candidate_link::Column::UsedAt.is_null())
            .filter(candidate_link::Column::ExpiresAt.gt(now))
            .one(&txn)
            .await?;
        let Some(link) = link else {
            return Ok(TaskOutcome::Done);
        };
        // Each reminder (and each new request) sends a link of its own: one of this purpose
        // made since `due` means the candidate has heard from us since.
        let reminded = candidate_link::Entity::find()
            .filter(candidate_link::Column::CheckId.eq(&c.id))
            .filter(candidate_link::Column::Purpose.eq(purpose))
            .filter(candidate_link::Column::CreatedAt.gte(due))
            .one(&txn)
            .await?;
        if reminded.is_some() {
            return Ok(TaskOutcome::Done);
        }
        let (url, mut writes) = if purpose == LINK_CONSENT {
            self.fresh_consent_link(&c, now, false)
        } else {
            // These reminders do not move the request's deadline.
            let (url, fresh) = self.link(&c, purpose, link.expires_at - now);
            (url, vec![fresh.into()])
        };
        let body = format!(
            "Hello {},\n\nA reminder: {} is waiting for your consent to run {what}. Please \
             read the disclosures and sign at\n\n  {url}\n",
            cand.first_name, partner.name,
        );
        let subject = format!("Reminder: {} needs your consent", partner.name);
        writes.extend(mail::sending(
            &cand,
            &c.id,
            mail::kind::REMINDER,
            &subject,
            body,
            now,
        ));
        db::write_all(&txn, writes).await?;
        self.commit(txn).await?;
        Ok(TaskOutcome::Done)
    }

    /// Looks a candidate link up by its token.
    async fn link_by_token<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        token: &str,
        purposes: &[&str],
    ) -> Result<(candidate_link::Model, check::Model), LinkProblem> {
        self.find_link(conn, token, purposes, false).await
    }

    /// [`Self::link_by_token`], the link's row locked on PostgreSQL when `lock`.
    async fn find_link<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        token: &str,
        purposes: &[&str],
        lock: bool,
    ) -> Result<(candidate_link::Model, check::Model), LinkProblem> {
        if token.len() > 100 {
            return Err(LinkProblem::Unknown);
        }
        let mut q = candidate_link::Entity::find()
            .filter(candidate_link::Column::TokenHash.eq(hash_token(token)))
            .filter(candidate_link::Column::Purpose.is_in(purposes.iter().copied()));
        if lock && conn.get_database_backend() == sea_orm::DbBackend::Postgres {
            q = sea_orm::QuerySelect::lock_exclusive(q);
        }
        let link = q.unique(conn).await?.ok_or(LinkProblem::Unknown)?;
        if link.used_at.is_some() {
            return Err(LinkProblem::Used);
        }
        if link.revoked_at.is_some() || link.expires_at <= self.clock.now() {
            return Err(LinkProblem::Expired);
        }
        let c = crate::check::find(conn, &link.partner_id, &link.check_id).await?;
        Ok((link, c))
    }

    fn missing_fields(
        &self,
        cand: &candidate::Model,
        searches: &[SearchKind],
    ) -> Vec<&'static str> {
        let mut missing = Vec::new();
        let pairs: [(&'static str, bool); 6] = [
            ("date_of_birth", cand.date_of_birth_enc.is_none()),
            ("ssn", cand.ssn_enc.is_none()),
            ("address", cand.address.is_none()),
            ("city", cand.city.is_none()),
            ("state", cand.state.is_none()),
            ("zip", cand.zip.is_none()),
        ];
        for (f, m) in pairs {
            if m {
                missing.push(f);
            }
        }
        if searches.contains(&SearchKind::Mvr) {
            if cand.drivers_license_number.is_none() {
                missing.push("drivers_license_number");
            }
            if cand.drivers_license_state.is_none() {
                missing.push("drivers_license_state");
            }
        }
        missing
    }

    /// The consent page for a token.
    pub async fn consent_view(&self, token: &str) -> Result<ConsentView, LinkProblem> {
        let (link, c) = self
            .link_by_token(&self.db, token, &CONSENT_PAGE_LINKS)
            .await?;
        let purpose = self.consent_needed(&self.db, &link, &c).await?;
        let cand = crate::candidate::find(&self.db, &c.partner_id, &c.candidate_id).await?;
        let partner = crate::partner::load(&self.db, &c.partner_id).await?;
        let searches = crate::package::searches_of_check(&self.db, &c).await?;
        let acknowledged = progress_of(&link);
        Ok(ConsentView {
            purpose,
            partner_name: partner.name.clone(),
            first_name: cand.first_name.clone(),
            full_name: crate::candidate::full_name(&cand),
            // The profile already holds the candidate's names, so our page does not ask about a
            // middle name; that box is for forms partners host.
            // The state's own summary of rights is due where the candidate lives: the state on
            // file, else the one its ZIP code is in.
            sections: disclosures::sections(
                &partner.name,
                &self.settings.agency,
                home_state(cand.state.as_deref(), cand.zip.as_deref()),
            )
            .into_iter()
            .map(|mut s| {
                s.checkboxes
                    .retain(|c| c != disclosures::NO_MIDDLE_NAME_CHECKBOX);
                s
            })
            .collect(),
            acknowledged,
            // A monitoring recheck searches with what the check was run on.
            missing: match purpose {
                ConsentPurpose::Screening => self.missing_fields(&cand, &searches),
                ConsentPurpose::MonitoringRecheck | ConsentPurpose::Recheck => Vec::new(),
            },
            expires_at: link.expires_at,
        })
    }

    /// Whether a message asking for consent (an invitation, a reminder, a request for fresh
    /// consent) still has something to ask: the consent-page link in `body` still opens the
    /// page. `None` when the body holds no such link; an error when the database does not answer
    /// (the message is then tried again, not dropped).
    pub(crate) async fn consent_request_open(&self, body: &str) -> ServiceResult<Option<bool>> {
        // Every "/consent/<token>" of the body, in order: the names before the link are the
        // candidate's and the partner's own text, and one may hold the path too ("a/consent/x").
        // The first token that names a link decides.
        let path = format!("/{LINK_CONSENT}/");
        let tokens = body.split(&path).skip(1).filter_map(|rest| {
            rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .next()
                .filter(|t| !t.is_empty())
        });
        let mut needed = None;
        for token in tokens {
            let found = match self
                .link_by_token(&self.db, token, &CONSENT_PAGE_LINKS)
                .await
            {
                Ok((link, c)) => self.consent_needed(&self.db, &link, &c).await.map(|_| ()),
                Err(problem) => Err(problem),
            };
            needed = Some(found);
            if needed != Some(Err(LinkProblem::Unknown)) {
                break;
            }
        }
        let Some(needed) = needed else {
            return Ok(None);
        };
        match needed {
            Ok(()) => Ok(Some(true)),
            Err(LinkProblem::Unavailable) => Err(ServiceError::Internal(anyhow::anyhow!(
                "the consent link of a message could not be read"
            ))),
            Err(_) => Ok(Some(false)),
        }
    }

    /// What a consent page link is for, if its check still needs that consent: an invitation's
    /// while the check is `emailed` (or `initiated`, for a link the partner sends), a monitoring
    /// link's while an alert of the enrolled check waits for it.
    async fn consent_needed<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        link: &candidate_link::Model,
        c: &check::Model,
    ) -> Result<ConsentPurpose, LinkProblem> {
        if link.purpose == LINK_RECHECK_CONSENT {
            return if RECHECKABLE.contains(&c.status) {
                Ok(ConsentPurpose::Recheck)
            } else {
                Err(LinkProblem::NotNeeded)
            };
        }
        if link.purpose == LINK_MONITORING_CONSENT {
            return match self.awaits_fresh_consent(conn, c).await {
                Ok(true) => Ok(ConsentPurpose::MonitoringRecheck),
                Ok(false) => Err(LinkProblem::NotNeeded),
                Err(e) => Err(e.into()),
            };
        }
        // `initiated`: a link the partner asked for to send itself.
        if !matches!(c.status, CheckStatus::Emailed | CheckStatus::Initiated) {
            return Err(LinkProblem::NotNeeded);
        }
        Ok(ConsentPurpose::Screening)
    }

    /// Records that the candidate acknowledged one section (with its time). Sections must be
    /// acknowledged in order, each with all its required checkboxes ticked.
    pub async fn acknowledge_section(
        &self,
        token: &str,
        section: &str,
        ticked: &[String],
    ) -> Result<Result<(), String>, LinkProblem> {
        let view = self.consent_view(token).await?;
        let Some(next) = view.next_section() else {
            return Ok(Ok(()));
        };
        if next.key != section {
            // A stale page (back button): show the section that is due.
            return Ok(Ok(()));
        }
        if let Some(missing) = next
            .required_checkboxes
            .iter()
            .find(|b| !ticked.iter().any(|t| t == *b))
        {
            return Ok(Err(format!(
                "Please tick “{}” to continue.",
                strip_tags(missing)
            )));
        }
        let txn = db::begin_write(&self.db).await?;
        // Two acknowledgments at once (a double click, two tabs) would each add theirs to the
        // progress as the other left it: the link's row is read locked on PostgreSQL (SQLite's
        // write transaction is the whole database's already).
        let (link, _) = self
            .find_link(&txn, token, &CONSENT_PAGE_LINKS, true)
            .await?;
        let mut progress = progress_of(&link);
        let now = self.clock.now().to_rfc3339();
        progress
            .entry(section.to_string())
            .or_default()
            .push(now.clone());
        // The optional box of a state's summary: the candidate's answer is evidence too.
        if ticked
            .iter()
            .any(|t| t == disclosures::COPY_OF_REPORT_CHECKBOX)
        {
            progress
                .entry(COPY_OF_REPORT_REQUESTED.to_string())
                .or_default()
                .push(now);
        }
        with_progress(link, &progress).update(&txn).await?;
        self.commit(txn).await?;
        Ok(Ok(()))
    }

    /// The candidate's signed consent from our page: validates every field (all errors at once,
    /// nothing written on any), completes the profile, keeps the evidence, and moves the check
    /// `emailed` (or `initiated`, on a link the partner sent) → `consent` → `processing`.
    pub async fn submit_consent_page(
        &self,
        token: &str,
        details: ConsentDetails,
    ) -> Result<ConsentSubmission, LinkProblem> {
        let view = self.consent_view(token).await?;
        let mut errors: FieldErrors = Vec::new();
        if view.next_section().is_some() {
            errors.push((
                "sections".into(),
                "Please read and acknowledge every section first.".into(),
            ));
        }
        let mut input = CandidateInput::default();
        for field in PAGE_FIELDS {
            if !view.missing.contains(&field) {
                continue;
            }
            let value = details
                .fields
                .get(field)
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            if value.is_empty() {
                errors.push((field.into(), "This field is required.".into()));
                continue;
            }
            let checked = match field {
                "date_of_birth" => domain::date_of_birth(field, &value).map(|_| ()),
                "ssn" => domain::ssn(field, &value).map(|_| ()),
                "address" => domain::text(field, &value, 300).map(|_| ()),
                "city" => domain::text(field, &value, 100).map(|_| ()),
                "state" | "drivers_license_state" => domain::us_state(field, &value).map(|_| ()),
                "zip" => domain::zip(field, &value).map(|_| ()),
                "drivers_license_number" => domain::drivers_license(field, &value).map(|_| ()),
                _ => Ok(()),
            };
            if let Err(ServiceError::Invalid { message, .. }) = checked {
                errors.push((field.into(), capitalise(&message)));
                continue;
            }
            let slot = match field {
                "date_of_birth" => &mut input.date_of_birth,
                "ssn" => &mut input.ssn,
                "address" => &mut input.address,
                "city" => &mut input.city,
                "state" => &mut input.state,
                "zip" => &mut input.zip,
                "drivers_license_number" => &mut input.drivers_license_number,
                _ => &mut input.drivers_license_state,
            };
            *slot = Some(value);
        }
        // A drawing, when there is one, is the signature; otherwise the typed name is.
        let drawn = details.signature_image.trim();
        let typed = details.signature.trim();
        let signature = if !drawn.is_empty() {
            if domain::png_data_url("signature", drawn).is_err() {
                errors.push((
                    "signature".into(),
                    "Your drawn signature could not be read. Clear it and draw it again, or type your full name.".into(),
                ));
            }
            drawn
        } else {
            if typed.is_empty() {
                errors.push(("signature".into(), "Type your full name to sign.".into()));
            } else if let Err(ServiceError::Invalid { message, .. }) =
                domain::text("signature", typed, 200)
            {
                // One line of visible text: no line breaks, and no invisible or
                // direction-changing characters that would make the evidence read otherwise.
                errors.push(("signature".into(), capitalise(&message)));
            }
            typed
        };
        if !errors.is_empty() {
            return Ok(ConsentSubmission::Invalid(errors));
        }
        let txn = db::begin_write(&self.db).await?;
        let (link, c) = self.link_by_token(&txn, token, &CONSENT_PAGE_LINKS).await?;
        let purpose = self.consent_needed(&txn, &link, &c).await?;
        let now = self.clock.now();
        if purpose != ConsentPurpose::Screening {
            // Nothing to complete on the profile: the consent, then what it lets run. Should a
            // concurrent submission have used the link, or the alerts have ended, first, nothing
            // is kept (the transaction is dropped).
            let method = if purpose == ConsentPurpose::Recheck {
                "recheck_consent_page"
            } else {
                "monitoring_consent_page"
            };
            let result: ServiceResult<bool> = async {
                let used = using_link(&link.id, now).exec(&txn).await?;
                if used.rows_affected != 1 {
                    return Ok(false);
                }
                // One signature: the request's other links (reminders') stop working.
                sea_orm::ConnectionTrait::execute(
                    &txn,
                    &revoking_links(&c.id, &[link.purpose.as_str()], now),
                )
                .await?;
                consent_evidence(&c, &link, method, signature, &details, now)?
                    .insert(&txn)
                    .await?;
                if purpose == ConsentPurpose::Recheck {
                    let partner_id = c.partner_id.clone();
                    self.apply_transition(
                        &txn,
                        &Actor::system(&partner_id),
                        c,
                        CheckStatus::Processing,
                        Some("recheck: the candidate consented on the consent page"),
                        StatusExtras::default(),
                    )
                    .await?;
                } else if self.fresh_consent_given(&txn, &c.id, now).await? == 0 {
                    return Ok(false);
                }
                self.commit(txn).await?;
                Ok(true)
            }
            .await;
            return match result {
                Ok(true) => Ok(ConsentSubmission::Signed(purpose)),
                Ok(false) => Err(LinkProblem::Used),
                // The check cannot take the recheck now (a newer check of the candidate's is
                // running, or the check moved on): trying again would not help. Any other
                // failure (a concurrent write, the database) may pass: "try again".
                Err(e) if refused_for_good(&e) => {
                    tracing::info!(check = %link.check_id, reason = %e, "a signed recheck consent came too late");
                    Err(LinkProblem::NotNeeded)
                }
                Err(e) => Err(e.into()),
            };
        }
        let cand = crate::candidate::find(&txn, &c.partner_id, &c.candidate_id).await?;
        let candidate_actor = Actor::candidate(&c.partner_id, &cand.id);
        // Where the candidate lives once these details are kept, as the page will read it,
        // and where the page just shown took them to live (its state summary was that state's).
        let lives_in = home_state(
            cand.state.as_deref().or(input.state.as_deref()),
            cand.zip.as_deref().or(input.zip.as_deref()),
        )
        .map(str::to_string);
        let shown_for = home_state(cand.state.as_deref(), cand.zip.as_deref());
        let summary_shown = view
            .sections
            .iter()
            .any(|s| s.key == disclosures::STATE_SUMMARY);
        let summary_unread = lives_in
            .as_deref()
            .is_some_and(disclosures::state_requires_summary)
            && (!summary_shown || !same_state(shown_for, lives_in.as_deref()));
        if summary_unread {
            // The state's summary comes before the authorization: the authorization already
            // given is asked for again after it, so the evidence shows them in order. A summary
            // acknowledged for another state (the ZIP code's, before the candidate gave theirs)
            // is asked for again too, as the new state's.
            let mut progress = progress_of(&link);
            let reread = progress.remove(disclosures::STATE_SUMMARY).is_some();
            // The answer given on that summary goes with it: the new state's summary asks
            // again, if it offers the box at all.
            progress.remove(COPY_OF_REPORT_REQUESTED);
            let reauthorize = progress.remove(disclosures::AUTHORIZATION).is_some() || reread;
            let kept = async {
                if reauthorize {
                    with_progress(link.clone(), &progress).update(&txn).await?;
                }
                self.complete_candidate_in(&txn, &candidate_actor, cand, &input)
                    .await
            }
            .await;
            return match kept {
                Ok(_) => {
                    self.commit(txn).await?;
                    Ok(ConsentSubmission::StateSummaryDue)
                }
                Err(ServiceError::Invalid { field, message }) => Ok(ConsentSubmission::Invalid(
                    vec![(field, capitalise(&message))],
                )),
                Err(e) => Err(e.into()),
            };
        }
        let result: ServiceResult<bool> = async {
            // First, so that of two submissions at once (a double click) the second waits for
            // the first and finds the link used.
            if using_link(&link.id, now).exec(&txn).await?.rows_affected != 1 {
                return Ok(false);
            }
            self.complete_candidate_in(&txn, &candidate_actor, cand, &input)
                .await?;
            consent_evidence(&c, &link, "consent_page", signature, &details, now)?
                .insert(&txn)
                .await?;
            let consented = self
                .apply_transition(
                    &txn,
                    &candidate_actor,
                    c,
                    CheckStatus::Consent,
                    Some("disclosure and authorization signed on the consent page"),
                    StatusExtras::default(),
                )
                .await?;
            self.apply_transition(
                &txn,
                &Actor::system(&consented.partner_id),
                consented,
                CheckStatus::Processing,
                Some("searches started"),
                StatusExtras::default(),
            )
            .await?;
            Ok(true)
        }
        .await;
        match result {
            Ok(true) => {
                self.commit(txn).await?;
                Ok(ConsentSubmission::Signed(purpose))
            }
            Ok(false) => Err(LinkProblem::Used),
            // Signed at the same moment through another of the candidate's links (the
            // invitation's and a reminder's, in two tabs): the other signature won.
            Err(ServiceError::Conflict { .. }) => Err(LinkProblem::Used),
            Err(ServiceError::Invalid { field, message }) => {
                Ok(ConsentSubmission::Invalid(vec![(
                    field,
                    capitalise(&message),
                )]))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Step one of a partner-hosted form (Turn's `POST /fcra_check/form`): the fields to collect
    /// and the disclosures to show for a package and zip code.
    pub async fn consent_form(
        &self,
        actor: &Actor,
        package_id: Option<&str>,
        zipcode: &str,
        state: Option<&str>,
    ) -> ServiceResult<FormSpec> {
        actor.require(Role::LimitedTeamMember)?;
        let zipcode = domain::zip("zipcode", zipcode)?;
        let zip_state = crate::screening::zipstate::state_for_zip(&zipcode);
        let state = match state.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => Some(domain::us_state("state", s)?),
            None => zip_state.map(str::to_string),
        };
        // A `state` must not hide the summary of rights the zip code's state asks for.
        if let Some(zs) = zip_state
            && state.as_deref() != Some(zs)
            && disclosures::state_requires_summary(zs)
        {
            return Err(ServiceError::invalid(
                "state",
                format!(
                    "zip code {zipcode} is in {zs}, whose law asks for its own summary of rights; \
                     leave out state or give {zs}"
                ),
            ));
        }
        let partner = crate::partner::load(&self.db, &actor.partner_id).await?;
        let package = crate::package::usable(&self.db, &partner, package_id).await?;
        let searches = crate::package::searches_of(&package.searches);
        let now = self.clock.now();
        let form = form_session::ActiveModel {
            id: Set(ids::uuid()),
            partner_id: Set(actor.partner_id.clone()),
            package_id: Set(package.id.clone()),
            searches: Set(package.searches.clone()),
            zipcode: Set(zipcode),
            state: Set(state.clone()),
            expires_at: Set(now + Duration::hours(FORM_SESSION_HOURS)),
            used_at: Set(None),
            created_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        Ok(FormSpec {
            form_id: form.id,
            package_id: package.id,
            state: state.clone(),
            data: disclosures::required_fields(&searches, true),
            disclosures: disclosures::sections(
                &partner.name,
                &self.settings.agency,
                state.as_deref(),
            ),
        })
    }

    /// Step two (Turn's `POST /fcra_check/form/:check_id`): the candidate's data and consent
    /// evidence; the check starts processing at once. A candidate whose SSN the partner already
    /// has is answered with that candidate, as Turn does, and nothing is started.
    pub async fn submit_consent_form(
        &self,
        actor: &Actor,
        form_id: &str,
        input: HostedConsent,
    ) -> ServiceResult<HostedConsentResult> {
        actor.require(Role::LimitedTeamMember)?;
        let now = self.clock.now();
        // The form with its package and partner, in one statement.
        let (form, package, partner) =
            db::find_with_two::<form_session::Entity, entity::package::Entity, partner::Entity, _>(
                &self.db,
                (form_session::Column::Id, form_id),
                (form_session::Column::PackageId, entity::package::Column::Id),
                (form_session::Column::PartnerId, partner::Column::Id),
            )
            .await?
            .filter(|(f, p, _)| {
                f.partner_id == actor.partner_id && p.partner_id == actor.partner_id
            })
            .ok_or_else(|| ServiceError::invalid("formId", format!("{form_id} does not exist")))?;
        if form.used_at.is_some() {
            return Err(ServiceError::invalid(
                "formId",
                "this form was already submitted",
            ));
        }
        if form.expires_at <= now {
            return Err(ServiceError::invalid(
                "formId",
                "this form has expired; start again",
            ));
        }
        // Archived since step one: no new check runs on it, as step one would refuse now.
        if package.archived_at.is_some() {
            return Err(ServiceError::invalid(
                "formId",
                format!(
                    "package {} was archived after this form was made; start again with another",
                    package.id
                ),
            ));
        }
        // The searches whose required fields step one handed out, which the check runs.
        let searches = crate::package::recorded_searches(&form.searches)
            .unwrap_or_else(|| crate::package::searches_of(&package.searches));
        let cand_in = &input.candidate;
        // The disclosures were chosen for the form's zip code (Turn: "Zipcodes do not match").
        if let Some(zip) = cand_in.zip.as_deref().filter(|z| !z.trim().is_empty())
            && domain::zip("zipcode", zip)? != form.zipcode
        {
            return Err(ServiceError::invalid(
                "zipcode",
                format!(
                    "Zipcodes do not match: this form was made for {}",
                    form.zipcode
                ),
            ));
        }
        // Address and city are not required (Turn: "While not mandatory, we encourage you to
        // provide this data"); they are validated when given.
        let required: [(&str, &Option<String>); 3] = [
            ("dateOfBirth", &cand_in.date_of_birth),
            ("ssn", &cand_in.ssn),
            ("phone", &cand_in.phone),
        ];
        for (field, v) in required {
            if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
                return Err(ServiceError::invalid(
                    field,
                    "Missing data for required field.",
                ));
            }
        }
        if !input.no_middle_name
            && cand_in
                .middle_name
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
        {
            return Err(ServiceError::invalid(
                "middleName",
                "required unless noMiddleName is true",
            ));
        }
        if searches.contains(&SearchKind::Mvr) {
            for (field, v) in [
                ("driversLicenseNumber", &cand_in.drivers_license_number),
                ("driversLicenseState", &cand_in.drivers_license_state),
            ] {
                if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    return Err(ServiceError::invalid(
                        field,
                        "Missing data for required field (the package includes an MVR search).",
                    ));
                }
            }
        }
        let consent_document = input.consent_document.trim();
        if consent_document.is_empty() {
            return Err(ServiceError::invalid(
                "consentDocument",
                "Missing data for required field.",
            ));
        }
        let consent_document = domain::png_data_url("consentDocument", consent_document)?;
        let sections =
            disclosures::sections(&partner.name, &self.settings.agency, form.state.as_deref());
        // The disclosures were chosen in step one for the form's state; a candidate who gives
        // another state whose law asks for its own summary of rights was never shown it. Nor
        // may a given state put aside the ZIP code's, when that one asks for its summary (step
        // one refuses the same): the candidate would be kept as living elsewhere, and later
        // consents (a recheck's, a monitoring alert's) would be asked for without it.
        if let Some(given) = cand_in.state.as_deref().filter(|s| !s.trim().is_empty()) {
            let given = domain::us_state("state", given)?;
            let zip_asks = crate::screening::zipstate::state_for_zip(&form.zipcode)
                .is_some_and(disclosures::state_requires_summary);
            if form.state.as_deref() != Some(given.as_str())
                && (zip_asks || disclosures::state_requires_summary(&given))
            {
                return Err(ServiceError::invalid(
                    "state",
                    format!(
                        "the disclosures of this form were chosen for {}; a candidate in {given} \
                         must be shown that state's disclosures: ask for a form with state {given}",
                        form.state.as_deref().unwrap_or("no state")
                    ),
                ));
            }
        }
        let mut timestamps = BTreeMap::new();
        // The sections are read in order and signed last: each one's first acknowledgment comes
        // no earlier than the one before it's, or the evidence would show an authorization
        // given before its disclosure.
        let mut previous: Option<(&str, DateTime<chrono::FixedOffset>)> = None;
        // The latest acknowledgment of any section: the signature comes after it.
        let mut latest: Option<(&str, DateTime<chrono::FixedOffset>)> = None;
        for key in sections.iter().map(|s| s.key).chain(["signature"]) {
            let times = input.timestamps.get(key).cloned().unwrap_or_default();
            if times.is_empty() {
                return Err(ServiceError::invalid(
                    format!("timestamps.{key}"),
                    "every section needs the time the candidate acknowledged it",
                ));
            }
            let mut parsed = Vec::with_capacity(times.len());
            for t in &times {
                let Ok(at) = DateTime::parse_from_rfc3339(t) else {
                    return Err(ServiceError::invalid(
                        format!("timestamps.{key}"),
                        format!("{t} is not an RFC 3339 time"),
                    ));
                };
                // Acknowledged while the form was open: after step one made it and not later
                // than now (a few minutes either way for the clocks of the candidate's device).
                let skew = Duration::minutes(EVIDENCE_CLOCK_SKEW_MINUTES);
                if at < form.created_at - skew || at > now + skew {
                    return Err(ServiceError::invalid(
                        format!("timestamps.{key}"),
                        format!(
                            "{t} is outside the time the form was open (created {})",
                            form.created_at.to_rfc3339()
                        ),
                    ));
                }
                parsed.push(at);
            }
            let first = parsed.iter().min().copied();
            if let (Some((before, at_before)), Some(at)) = (previous, first)
                && at < at_before
            {
                return Err(ServiceError::invalid(
                    format!("timestamps.{key}"),
                    format!(
                        "{key} was acknowledged at {} before {before} ({}): the sections are read in order and signed last",
                        at.to_rfc3339(),
                        at_before.to_rfc3339()
                    ),
                ));
            }
            previous = first.map(|at| (key, at)).or(previous);
            let last = parsed.iter().max().copied();
            if key == "signature" {
                // And signed last: no section's acknowledgment comes after the last signature.
                if let (Some((section, at)), Some(signed)) = (latest, last)
                    && at > signed
                {
                    return Err(ServiceError::invalid(
                        format!("timestamps.{section}"),
                        format!(
                            "{section} was acknowledged at {} after the signature ({}): the \
                             sections are read in order and signed last",
                            at.to_rfc3339(),
                            signed.to_rfc3339()
                        ),
                    ));
                }
            } else if let Some(at) = last
                && latest.is_none_or(|(_, l)| at > l)
            {
                latest = Some((key, at));
            }
            timestamps.insert(key.to_string(), times);
        }
        let callback_url = crate::check::callback_url(actor, input.callback_url.as_deref())?;
        let ip = domain::opt_text("ipAddress", input.ip_address.as_deref(), 64)?;
        if let Some(ip) = &ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(ServiceError::invalid(
                "ipAddress",
                format!("{ip} is not an IPv4 or IPv6 address"),
            ));
        }
        let ua = domain::opt_text("userAgent", input.user_agent.as_deref(), 500)?;
        let mut cand_input = input.candidate.clone();
        cand_input.zip = Some(form.zipcode.clone());
        if cand_input.state.is_none() {
            cand_input.state = form.state.clone();
        }
        let txn = db::begin_write(&self.db).await?;
        let cand = match self
            .create_candidate_unless_same_ssn(&txn, actor, &cand_input)
            .await?
        {
            NewCandidate::Created(cand) => cand,
            NewCandidate::SameSsn(existing) if input.bypass_dupe => {
                // A returning candidate: one person, one profile, screened again with what
                // they just gave and signed for, unless a check of theirs is still running.
                if !actor.role.may_see_sensitive() {
                    return Err(ServiceError::Forbidden(
                        "bypassDupe updates the profile of the candidate with this SSN, date \
                         of birth included, which limited team members cannot change"
                            .into(),
                    ));
                }
                crate::check::may_start_a_check(&txn, &actor.partner_id, &existing.id).await?;
                let existing =
                    crate::candidate::find(&txn, &actor.partner_id, &existing.id).await?;
                // The form is the candidate's whole current story: what it leaves out of their
                // name and address is cleared, not kept from before (the licence, and the
                // partner's referenceId for them, are kept unless given).
                let mut now_given = cand_input.clone();
                if input.no_middle_name {
                    now_given.middle_name.get_or_insert_with(String::new);
                }
                for slot in [
                    &mut now_given.address,
                    &mut now_given.city,
                    &mut now_given.state,
                ] {
                    slot.get_or_insert_with(String::new);
                }
                let update = crate::candidate::parse_update(&now_given)?;
                self.update_candidate_in(&txn, actor, existing, update)
                    .await?
            }
            NewCandidate::SameSsn(_) if !actor.role.may_see_sensitive() => {
                // Naming the candidate would tell a role that may not see SSNs whose SSN was
                // typed: a form submitted with one person's email and guessed numbers would
                // find theirs. Only that some candidate has it is said.
                return Err(ServiceError::Conflict {
                    field: Some("ssn".into()),
                    message: "a candidate of yours already has this SSN; a team member can \
                              see which, and screen them again with bypassDupe"
                        .into(),
                    existing_id: None,
                });
            }
            NewCandidate::SameSsn(existing) => {
                self.commit(txn).await?;
                return Ok(HostedConsentResult::CandidateExists {
                    candidate: existing,
                });
            }
        };
        let c = self
            .insert_check(
                &txn,
                actor,
                &cand,
                &partner,
                &package.id,
                &searches,
                callback_url,
                cand.reference_id.clone(),
                // Turn: with `do_checks` false the check waits at `initiated` (no communication,
                // no charge) until it is run.
                if input.do_checks {
                    CheckStatus::Consent
                } else {
                    CheckStatus::Initiated
                },
                true,
            )
            .await?;
        consent::ActiveModel {
            id: Set(ids::uuid()),
            partner_id: Set(actor.partner_id.clone()),
            check_id: Set(c.id.clone()),
            method: Set(HOSTED_FORM.into()),
            section_timestamps: Set(
                serde_json::to_string(&timestamps).map_err(anyhow::Error::from)?
            ),
            signature: Set(consent_document),
            ip_address: Set(ip),
            user_agent: Set(ua),
            signed_at: Set(now),
        }
        .insert(&txn)
        .await?;
        let used = form_session::Entity::update_many()
            .col_expr(form_session::Column::UsedAt, Expr::value(now))
            .filter(form_session::Column::Id.eq(&form.id))
            .filter(form_session::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if used.rows_affected != 1 {
            return Err(ServiceError::invalid(
                "formId",
                "this form was already submitted",
            ));
        }
        let c = if input.do_checks {
            self.start_searches(&txn, c, (&cand, &partner)).await?
        } else {
            c
        };
        self.commit(txn).await?;
        Ok(HostedConsentResult::Started {
            candidate: cand,
            check: c,
        })
    }

    /// The provider's view of a candidate (sensitive fields opened).
    pub(crate) fn subject_of(&self, cand: &candidate::Model) -> ServiceResult<Subject> {
        let dob = cand
            .date_of_birth_enc
            .as_deref()
            .map(|s| -> anyhow::Result<NaiveDate> {
                Ok(NaiveDate::parse_from_str(
                    &self.crypto.open(s)?,
                    "%Y-%m-%d",
                )?)
            })
            .transpose()?;
        let ssn = cand
            .ssn_enc
            .as_deref()
            .map(|s| self.crypto.open(s))
            .transpose()?;
        Ok(Subject {
            candidate_id: cand.id.clone(),
            turn_id: cand.turn_id.clone(),
            first_name: cand.first_name.clone(),
            middle_name: cand.middle_name.clone(),
            last_name: cand.last_name.clone(),
            email: cand.email.clone(),
            date_of_birth: dob,
            ssn,
            zip: cand.zip.clone(),
            city: cand.city.clone(),
            state: cand.state.clone(),
            address: cand.address.clone(),
            drivers_license_number: cand.drivers_license_number.clone(),
            drivers_license_state: cand.drivers_license_state.clone(),
        })
    }

    /// Task: run a `processing` check's searches through the provider; when the results are in,
    /// keep the report, adjudicate with the partner's rules, and move the check to the decided
    /// status. Does nothing for a check that is no longer processing.
    pub(crate) async fn run_screening(
        &self,
        partner_id: &str,
        check_id: &str,
        payload: &Value,
    ) -> ServiceResult<TaskOutcome> {
        let Some((c, cand, partner)) = crate::tasks::unless_gone(
            crate::check::find_with_owner(&self.db, partner_id, check_id).await,
        )?
        else {
            return Ok(TaskOutcome::Done);
        };
        if c.status != CheckStatus::Processing {
            return Ok(TaskOutcome::Done);
        }
        let now = self.clock.now();
        // A task written without its request time (none is, but a row may be damaged) takes
        // the check's last change, the move to `processing`: taking `now` would put the
        // provider's answer always a latency away, and the task would never finish.
        let requested_at = payload["requested_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or(c.updated_at);
        let identity_override = payload["identity_override"].as_bool().unwrap_or(false);
        let req = SearchRequest {
            subject: self.subject_of(&cand)?,
            searches: crate::package::searches_of_check(&self.db, &c).await?,
            requested_at,
            now,
            identity_override,
        };
        let report = match self.provider.search(&req).await? {
            SearchOutcome::NotReady { eta } => return Ok(TaskOutcome::RunAgainAt(eta)),
            SearchOutcome::Ready(r) => r,
        };
        // Resumed: the team member vouched for what held the check, the last identity hold's
        // reasons; and the screening goes on as what it was (a recheck held for identity
        // stays a recheck).
        let held = if identity_override {
            check_report::Entity::find()
                .filter(check_report::Column::PartnerId.eq(partner_id))
                .filter(check_report::Column::CheckId.eq(check_id))
                .filter(check_report::Column::Decision.eq(CheckStatus::ReviewIdentity.as_api_str()))
                .order_by_desc(check_report::Column::Id)
                .one(&self.db)
                .await?
        } else {
            None
        };
        let confirmed: Vec<String> = held
            .as_ref()
            .and_then(|r| serde_json::from_str(&r.reasons).ok())
            .unwrap_or_default();
        let decision = adjudication::adjudicate(
            &report,
            &self.adjudication_rules(&partner)?,
            now.date_naive(),
            &confirmed,
        );
        let kind = held.map_or_else(
            || payload["kind"].as_str().unwrap_or("initial").to_string(),
            |r| r.kind,
        );
        let txn = db::begin_write(&self.db).await?;
        // Read again with the candidate and the partner as they are now: the event reports them.
        let (c, cand, partner) = crate::check::find_with_owner(&txn, partner_id, check_id).await?;
        if c.status != CheckStatus::Processing {
            return Ok(TaskOutcome::Done);
        }
        let sealed = self
            .keep_report(
                &txn,
                &c,
                &kind,
                &report,
                Some(decision.status),
                &decision.reasons,
            )
            .await?;
        self.apply_transition_of(
            &txn,
            &Actor::system(partner_id),
            c,
            (&cand, &partner),
            decision.status,
            Some(&decision.reasons.join("; ")),
            StatusExtras {
                report_enc: Some(sealed),
                ..Default::default()
            },
        )
        .await?;
        self.commit(txn).await?;
        Ok(TaskOutcome::Done)
    }

    /// Seals a report and keeps it beside the check's earlier ones; returns the sealed text.
    pub(crate) async fn keep_report(
        &self,
        txn: &DatabaseTransaction,
        c: &check::Model,
        kind: &str,
        report: &Report,
        decision: Option<CheckStatus>,
        reasons: &[String],
    ) -> ServiceResult<String> {
        let sealed = self.crypto.seal(&report.to_json().to_string())?;
        check_report::ActiveModel {
            partner_id: Set(c.partner_id.clone()),
            check_id: Set(c.id.clone()),
            kind: Set(kind.to_string()),
            report_enc: Set(sealed.clone()),
            decision: Set(decision.map(|d| d.as_api_str().to_string())),
            reasons: Set(serde_json::to_string(reasons).map_err(anyhow::Error::from)?),
            created_at: Set(self.clock.now()),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        Ok(sealed)
    }

    /// Refuses a role that may not see a check's sensitive evidence (`what` names it), and a
    /// check that is not the partner's.
    async fn may_see_evidence_of(
        &self,
        actor: &Actor,
        check_id: &str,
        what: &str,
    ) -> ServiceResult<()> {
        if !actor.role.may_see_sensitive() {
            return Err(ServiceError::Forbidden(format!(
                "your role may not see {what}"
            )));
        }
        crate::check::find(&self.db, &actor.partner_id, check_id).await?;
        Ok(())
    }

    /// Every report of a check, oldest first, for roles that may see reports.
    pub async fn check_reports(
        &self,
        actor: &Actor,
        check_id: &str,
    ) -> ServiceResult<Vec<ReportEntry>> {
        self.may_see_evidence_of(actor, check_id, "report contents")
            .await?;
        self.reports_of(&self.db, &actor.partner_id, check_id).await
    }

    /// The consents signed for a check, oldest first: the first (the consent page or your form),
    /// then any for a recheck or a monitoring recheck. They hold the signature, IP address and
    /// user agent: team members and above.
    pub async fn check_consents(
        &self,
        actor: &Actor,
        check_id: &str,
    ) -> ServiceResult<Vec<ConsentRecord>> {
        self.may_see_evidence_of(
            actor,
            check_id,
            "consent evidence (signatures, IP addresses)",
        )
        .await?;
        Ok(consent::Entity::find()
            .filter(consent::Column::PartnerId.eq(&actor.partner_id))
            .filter(consent::Column::CheckId.eq(check_id))
            .order_by_asc(consent::Column::SignedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Reports of a check on `conn` (inside a write transaction, pass the transaction: another
    /// pooled connection could wait on the very lock that transaction holds).
    pub(crate) async fn reports_of<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        partner_id: &str,
        check_id: &str,
    ) -> ServiceResult<Vec<ReportEntry>> {
        let rows = check_report::Entity::find()
            .filter(check_report::Column::PartnerId.eq(partner_id))
            .filter(check_report::Column::CheckId.eq(check_id))
            .order_by_asc(check_report::Column::Id)
            .all(conn)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ReportEntry {
                    id: r.id,
                    kind: r.kind,
                    decision: r.decision,
                    reasons: serde_json::from_str(&r.reasons).unwrap_or_default(),
                    report: serde_json::from_str(&self.crypto.open(&r.report_enc)?)
                        .map_err(anyhow::Error::from)?,
                    created_at: r.created_at,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(ServiceError::Internal)
    }

    /// A new background check on an already screened candidate (approved, consider or
    /// rejected): same turnId, back to `processing`, no new consent; the new report is kept
    /// beside the old one. California requires consent to every background check (Turn's "CA
    /// Recheck"): for a candidate whose ZIP code is there, the check keeps its status and the
    /// candidate is emailed a link to the consent page; the recheck starts when they sign.
    pub async fn recheck(
        &self,
        actor: &Actor,
        check_id: &str,
        reason: Option<&str>,
    ) -> ServiceResult<check::Model> {
        actor.require(Role::TeamMember)?;
        let reason = domain::opt_prose("reason", reason, 2000)?;
        let txn = db::begin_write(&self.db).await?;
        let (c, cand, partner) =
            crate::check::find_with_owner(&txn, &actor.partner_id, check_id).await?;
        if !RECHECKABLE.contains(&c.status) {
            return Err(ServiceError::invalid(
                "checkId",
                format!(
                    "only approved, consider (pending) or rejected checks can be rechecked; this one is {}",
                    c.status
                ),
            ));
        }
        if crate::monitoring::needs_fresh_consent(&cand) {
            let writes = self.recheck_consent_request(&c, &cand, &partner, self.clock.now());
            db::write_all(&txn, writes).await?;
            self.commit(txn).await?;
            return Ok(c);
        }
        let updated = self
            .apply_transition_of(
                &txn,
                actor,
                c,
                (&cand, &partner),
                CheckStatus::Processing,
                Some(reason.as_deref().unwrap_or("recheck")),
                StatusExtras::default(),
            )
            .await?;
        self.commit(txn).await?;
        Ok(updated)
    }

    /// The email asking a candidate for consent to a recheck, with a new single-use link to the
    /// consent page (earlier such links stop working).
    fn recheck_consent_request(
        &self,
        c: &check::Model,
        cand: &candidate::Model,
        partner: &partner::Model,
        now: DateTime<Utc>,
    ) -> Vec<SubQueryStatement> {
        let (url, link) = self.link(c, LINK_RECHECK_CONSENT, Duration::days(CONSENT_LINK_DAYS));
        let expires = mail::link_expiry(now + Duration::days(CONSENT_LINK_DAYS));
        let body = format!(
            "Hello {first},\n\n{partner} has asked {agency} to run a new background check on \
             you, an update of your earlier one. California law asks for your consent to each \
             background check: please read the disclosures and sign at\n\n  {url}\n\nThe \
             link works once and expires on {expires}. Without your consent nothing is \
             searched.\n",
            first = cand.first_name,
            partner = partner.name,
            agency = self.settings.agency.name,
        );
        let subject = format!(
            "{}: your consent is needed for a new background check",
            partner.name
        );
        let mut writes: Vec<SubQueryStatement> = vec![
            revoking_links(&c.id, &[LINK_RECHECK_CONSENT], now).into(),
            link.into(),
        ];
        writes.extend(mail::sending(
            cand,
            &c.id,
            mail::kind::RECHECK_CONSENT,
            &subject,
            body,
            now,
        ));
        writes.extend(reminders(c, TaskKind::RecheckConsentReminder, now));
        writes
    }

    /// Turn's "Resume Checks": continues the searches of a check held for identity verification
    /// (`review__identity` → `processing`) with the information the candidate gave.
    pub async fn resume_checks(
        &self,
        actor: &Actor,
        check_id: &str,
        reason: Option<&str>,
    ) -> ServiceResult<check::Model> {
        self.back_to_processing(
            actor,
            check_id,
            &[CheckStatus::ReviewIdentity],
            "only checks held for identity verification (review__identity) resume",
            reason,
            "checks resumed with the candidate's information",
        )
        .await
    }

    /// A team member sends a check in one of `from` back to `processing` (the searches run
    /// again); any other status is refused with `refusal`, naming `checkId`. A blank `reason`
    /// records `default_reason`.
    async fn back_to_processing(
        &self,
        actor: &Actor,
        check_id: &str,
        from: &[CheckStatus],
        refusal: &str,
        reason: Option<&str>,
        default_reason: &str,
    ) -> ServiceResult<check::Model> {
        actor.require(Role::TeamMember)?;
        let reason = domain::opt_prose("reason", reason, 2000)?
            .unwrap_or_else(|| default_reason.to_string());
        let txn = db::begin_write(&self.db).await?;
        let c = crate::check::find(&txn, &actor.partner_id, check_id).await?;
        if !from.contains(&c.status) {
            return Err(ServiceError::invalid(
                "checkId",
                format!("{refusal}; this one is {}", c.status),
            ));
        }
        let updated = self
            .apply_transition(
                &txn,
                actor,
                c,
                CheckStatus::Processing,
                Some(&reason),
                StatusExtras::default(),
            )
            .await?;
        self.commit(txn).await?;
        Ok(updated)
    }

    /// Task: the partner's recheck interval has passed for an approved check (in California,
    /// the candidate is asked to consent first, as [`Self::recheck`] does).
    pub(crate) async fn scheduled_recheck(
        &self,
        partner_id: &str,
        check_id: &str,
    ) -> ServiceResult<TaskOutcome> {
        let txn = db::begin_write(&self.db).await?;
        let Some((c, cand, partner)) = crate::tasks::unless_gone(
            crate::check::find_with_owner(&txn, partner_id, check_id).await,
        )?
        else {
            return Ok(TaskOutcome::Done);
        };
        // Only while the partner still rechecks on an interval, and not before the check's date
        // (the interval may have been turned off, or the date moved, since this was scheduled).
        let today = self
            .clock
            .now()
            .with_timezone(&crate::screening::calendar::zone())
            .date_naive();
        if c.status != CheckStatus::Approved
            || partner.recheck_interval_days.is_none()
            || c.recheck_date.is_none_or(|d| d > today)
        {
            if c.status == CheckStatus::Approved
                && partner.recheck_interval_days.is_none()
                && c.recheck_date.is_some()
            {
                // The partner turned the interval off (before turning it off cleared the
                // dates of its approved checks at once).
                crate::check::recheck_dates_cleared()
                    .filter(check::Column::Id.eq(&c.id))
                    .exec(&txn)
                    .await?;
                self.commit(txn).await?;
            }
            // Early for its date (a task scheduled at the date's start in UTC, before dates were
            // kept in the calendar's zone): it waits for the date.
            if c.status == CheckStatus::Approved
                && partner.recheck_interval_days.is_some()
                && let Some(at) = c
                    .recheck_date
                    .filter(|d| *d > today)
                    .and_then(recheck_start)
            {
                return Ok(TaskOutcome::RunAgainAt(at));
            }
            return Ok(TaskOutcome::Done);
        }
        if crate::monitoring::needs_fresh_consent(&cand) {
            // Asked once for this date: a run of this task after one that committed its request
            // (its end not recorded: the process stopped, the lease ran out) sends no second
            // request, whose link would replace the one the candidate may be signing.
            if let Some(since) = c.recheck_date.and_then(recheck_start)
                && candidate_link::Entity::find()
                    .filter(candidate_link::Column::CheckId.eq(&c.id))
                    .filter(candidate_link::Column::Purpose.eq(LINK_RECHECK_CONSENT))
                    .filter(candidate_link::Column::CreatedAt.gte(since))
                    .one(&txn)
                    .await?
                    .is_some()
            {
                return Ok(TaskOutcome::Done);
            }
            let writes = self.recheck_consent_request(&c, &cand, &partner, self.clock.now());
            db::write_all(&txn, writes).await?;
        } else {
            let rechecked = self
                .apply_transition_of(
                    &txn,
                    &Actor::system(partner_id),
                    c,
                    (&cand, &partner),
                    CheckStatus::Processing,
                    Some("scheduled recheck"),
                    StatusExtras::default(),
                )
                .await;
            match rechecked {
                // The candidate has a newer check in progress, which screens them afresh: this
                // recheck is not run.
                Err(ServiceError::Conflict {
                    existing_id: Some(newer),
                    ..
                }) => {
                    tracing::info!(check = %check_id, newer = %newer, "scheduled recheck skipped: a newer check is in progress");
                    return Ok(TaskOutcome::Done);
                }
                other => {
                    other?;
                }
            }
        }
        self.commit(txn).await?;
        Ok(TaskOutcome::Done)
    }

    /// A candidate's own copy of their latest report, by the link mailed to them.
    pub async fn report_by_token(
        &self,
        token: &str,
    ) -> Result<
        (
            check::Model,
            candidate::Model,
            partner::Model,
            Option<ReportEntry>,
        ),
        LinkProblem,
    > {
        let (_, c) = self.link_by_token(&self.db, token, &[LINK_REPORT]).await?;
        let cand = crate::candidate::find(&self.db, &c.partner_id, &c.candidate_id).await?;
        let partner = crate::partner::load(&self.db, &c.partner_id).await?;
        let latest = self.reports_of(&self.db, &c.partner_id, &c.id).await?.pop();
        Ok((c, cand, partner, latest))
    }
}

/// The start of a recheck date on the business calendar's clock (UTC−11), which is that date in
/// every US time zone.
fn recheck_start(date: NaiveDate) -> Option<DateTime<Utc>> {
    date.and_hms_opt(0, 0, 0)
        .and_then(|d| {
            d.and_local_timezone(crate::screening::calendar::zone())
                .single()
        })
        .map(|d| d.with_timezone(&Utc))
}

/// The partner's interval recheck of a check approved `now`, replacing an earlier one: as its
/// `recheck_date` begins, and not before the interval (`days`) is over (the date the interval
/// ends on, in UTC−11, began up to a day before it ended: a one-day interval was rechecked
/// within hours); none without a date.
fn recheck_scheduling(
    c: &check::Model,
    days: Option<i32>,
    now: DateTime<Utc>,
) -> Vec<SubQueryStatement> {
    let cancel = tasks::cancelling(&c.id, &[TaskKind::ScheduledRecheck], now).into();
    let Some(date) = c.recheck_date else {
        return vec![cancel];
    };
    let over = now + Duration::days(i64::from(days.unwrap_or(0).max(0)));
    let at = recheck_start(date).map_or(over, |start| start.max(over));
    vec![
        cancel,
        tasks::scheduling(
            &c.partner_id,
            Some(&c.id),
            TaskKind::ScheduledRecheck,
            json!({}),
            at,
            now,
        )
        .into(),
    ]
}

/// The reminders (`kind`, one of the reminder task kinds) of a request for consent, replacing
/// earlier ones of that kind: each kind of request has its own, so a check waiting for a
/// recheck's consent and a monitoring hit's at once is reminded of both.
pub(crate) fn reminders(
    c: &check::Model,
    kind: TaskKind,
    now: DateTime<Utc>,
) -> Vec<SubQueryStatement> {
    let mut writes: Vec<SubQueryStatement> = vec![tasks::cancelling(&c.id, &[kind], now).into()];
    for hours in REMINDER_HOURS {
        writes.push(
            tasks::scheduling(
                &c.partner_id,
                Some(&c.id),
                kind,
                json!({"after_hours": hours}),
                now + Duration::hours(hours),
                now,
            )
            .into(),
        );
    }
    writes
}

/// The sections the holder of `link` has acknowledged, each with its times (RFC 3339).
fn progress_of(link: &candidate_link::Model) -> BTreeMap<String, Vec<String>> {
    serde_json::from_str(&link.progress).unwrap_or_default()
}

/// `link` with its acknowledged sections replaced by `progress`, to update.
fn with_progress(
    link: candidate_link::Model,
    progress: &BTreeMap<String, Vec<String>>,
) -> candidate_link::ActiveModel {
    let mut am: candidate_link::ActiveModel = link.into();
    am.progress = Set(serde_json::to_string(progress).unwrap_or_else(|_| "{}".into()));
    am
}

/// Whether a status change was refused for good, not for the moment: another check of the
/// candidate's is in progress, or the check's status no longer allows the move.
fn refused_for_good(e: &ServiceError) -> bool {
    matches!(
        e,
        ServiceError::Conflict {
            existing_id: Some(_),
            ..
        }
    ) || matches!(e, ServiceError::Invalid { field, .. } if field == "status")
}

/// The answer to asking a candidate who signed a hosted form (held with `doChecks: false`)
/// for consent again.
fn already_signed() -> ServiceError {
    ServiceError::invalid(
        "checkId",
        "the candidate signed your consent form for this check: start it with runCheck",
    )
}

/// Whether a check waits at `initiated` with its consent already given: a hosted form submitted
/// with `doChecks: false`, the one way an `initiated` check has a consent date.
fn signed_and_held(c: &check::Model) -> bool {
    c.status == CheckStatus::Initiated && c.consent_date.is_some()
}

/// The consent a candidate signed on the page with `link`: the sections' acknowledgement times
/// and the signature's, the signature, IP address and user agent.
fn consent_evidence(
    c: &check::Model,
    link: &candidate_link::Model,
    method: &str,
    signature: &str,
    details: &ConsentDetails,
    now: DateTime<Utc>,
) -> ServiceResult<consent::ActiveModel> {
    let mut sections = progress_of(link);
    sections.insert("signature".into(), vec![now.to_rfc3339()]);
    Ok(consent::ActiveModel {
        id: Set(ids::uuid()),
        partner_id: Set(c.partner_id.clone()),
        check_id: Set(c.id.clone()),
        method: Set(method.into()),
        section_timestamps: Set(serde_json::to_string(&sections).map_err(anyhow::Error::from)?),
        signature: Set(signature.to_string()),
        ip_address: Set(details.ip_address.clone()),
        user_agent: Set(details.user_agent.clone()),
        signed_at: Set(now),
    })
}

/// Marks a single-use link used, unless it already is (or was revoked): then nothing matches.
fn using_link(link_id: &str, now: DateTime<Utc>) -> sea_orm::UpdateMany<candidate_link::Entity> {
    candidate_link::Entity::update_many()
        .col_expr(candidate_link::Column::UsedAt, Expr::value(now))
        .filter(candidate_link::Column::Id.eq(link_id))
        .filter(candidate_link::Column::UsedAt.is_null())
        .filter(candidate_link::Column::RevokedAt.is_null())
}

fn revoking_consent_links(check_id: &str, now: DateTime<Utc>) -> UpdateStatement {
    revoking_links(check_id, &[LINK_CONSENT], now)
}

/// Stops a check's links for `purposes` from working.
pub(crate) fn revoking_links(
    check_id: &str,
    purposes: &[&str],
    now: DateTime<Utc>,
) -> UpdateStatement {
    candidate_link::Entity::update_many()
        .col_expr(candidate_link::Column::RevokedAt, Expr::value(now))
        .filter(candidate_link::Column::CheckId.eq(check_id))
        .filter(candidate_link::Column::Purpose.is_in(purposes.iter().copied()))
        .filter(candidate_link::Column::RevokedAt.is_null())
        .into_query()
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(f) => {
            let mut out: String = f.to_uppercase().collect();
            out.push_str(chars.as_str());
            if !out.ends_with('.') {
                out.push('.');
            }
            out
        }
        None => String::new(),
    }
}

/// Checkbox labels may carry links; messages show their text.
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for ch in s.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    // The label's text as plain text (the page escapes it again): the entities
    // `escape_html` writes, `&amp;` last so that `&amp;lt;` stays `&lt;`.
    [
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(out, |text, (entity, c)| text.replace(entity, c))
}

/// Whether two state codes name the same state (case and spaces aside); two unknowns are the
/// same (no state's law applies to either).
fn same_state(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::strip_tags;
    use crate::screening::disclosures::escape_html;

    #[test]
    fn a_checkbox_label_is_named_as_plain_text() {
        let label = format!(
            "I agree to {}’s <a href=\"/terms\">Terms</a>",
            escape_html("Smith & Sons <Ltd> \"O'Neil\"")
        );
        assert_eq!(
            strip_tags(&label),
            "I agree to Smith & Sons <Ltd> \"O'Neil\"’s Terms"
        );
        assert_eq!(strip_tags("&amp;lt;"), "&lt;");
    }
}
