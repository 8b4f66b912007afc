//! The screening engine over GraphQL: invitations, the partner-hosted consent form (Turn's
//! two-step `/fcra_check/form`), reports, review decisions, adverse action with disputes,
//! rechecks, continuous monitoring, and the mail sent to candidates.
use std::collections::BTreeMap;

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{adverse_action, email, monitoring_alert, task};
use service::candidate::CandidateInput;
use service::screen::{ConsentRecord, HostedConsent, HostedConsentResult, ReportEntry};

use super::candidate::Candidate;
use super::check::Check;
use super::error::{GqlResult, actor, gql, svc};
use super::types::CheckStatus;

/// One report a check produced. Reruns keep earlier reports beside the new one.
#[derive(SimpleObject)]
pub struct ScreeningReport {
    /// Order of the reports of a check.
    pub id: i64,
    /// `initial`, `recheck` or `monitoring`.
    pub kind: String,
    /// The status adjudication decided from this report.
    pub decision: Option<CheckStatus>,
    /// Why: each finding that counted under the partner's rules, or "no reportable records".
    pub reasons: Vec<String>,
    /// The report in the shape of Turn's background check results (`checks`,
    /// `current_address`, `license_number`, `license_state`).
    pub report: Json<serde_json::Value>,
    /// When the searches finished.
    pub created_at: DateTime<Utc>,
}

impl From<ReportEntry> for ScreeningReport {
    fn from(r: ReportEntry) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            decision: r
                .decision
                .as_deref()
                .and_then(entity::CheckStatus::from_api_str)
                .map(Into::into),
            reasons: r.reasons,
            report: Json(r.report),
            created_at: r.created_at,
        }
    }
}

/// A message sent to a candidate. Without a mail server configured, this is where they are read.
#[derive(SimpleObject)]
pub struct Email {
    /// Message id.
    pub id: ID,
    /// The check it is about.
    pub check_id: Option<ID>,
    /// Recipient.
    pub to: String,
    /// `invitation`, `reminder`, `report_copy`, `pre_adverse_notice`, `final_adverse_notice`,
    /// `dispute_received`, `dispute_resolved`, `adverse_action_cancelled`, `recheck_consent`,
    /// `monitoring_consent`.
    pub kind: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When the mail server accepted it; null while queued or when no server is configured.
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<email::Model> for Email {
    fn from(m: email::Model) -> Self {
        Self {
            id: ID(m.id),
            check_id: m.check_id.map(ID),
            to: m.to_address,
            kind: m.kind,
            subject: m.subject,
            body: m.body,
            created_at: m.created_at,
            sent_at: m.sent_at,
        }
    }
}

/// An adverse action in the FCRA order.
#[derive(SimpleObject)]
pub struct AdverseAction {
    /// `waiting` (pre-adverse notice sent, clock running), `disputed` (clock paused),
    /// `final_notice`, `completed` (rejected) or `cancelled`.
    pub state: String,
    /// Length of the waiting period in business days.
    pub waiting_business_days: i32,
    /// When the pre-adverse notice went out.
    pub started_at: DateTime<Utc>,
    /// When the waiting period ends; null while disputed.
    pub due_at: Option<DateTime<Utc>>,
    /// Business days left when a dispute paused the clock.
    pub remaining_business_days: Option<i32>,
    /// What the candidate disputed.
    pub dispute_reason: Option<String>,
    /// When the dispute came in.
    pub disputed_at: Option<DateTime<Utc>>,
    /// How the dispute was resolved.
    pub resolution: Option<String>,
    /// When the final notice went out.
    pub final_notice_at: Option<DateTime<Utc>>,
    /// When it was completed or cancelled.
    pub ended_at: Option<DateTime<Utc>>,
}

impl From<adverse_action::Model> for AdverseAction {
    fn from(a: adverse_action::Model) -> Self {
        Self {
            state: a.state,
            waiting_business_days: a.waiting_days,
            started_at: a.started_at,
            due_at: a.due_at,
            remaining_business_days: a.remaining_days,
            dispute_reason: a.dispute_reason,
            disputed_at: a.disputed_at,
            resolution: a.resolution,
            final_notice_at: a.final_notice_at,
            ended_at: a.ended_at,
        }
    }
}

/// A consent the candidate signed for a check, with its evidence.
#[derive(SimpleObject)]
pub struct ConsentEvidence {
    /// `consent_page` (our page), `hosted_form` (your form), `recheck_consent_page` or
    /// `monitoring_consent_page`.
    pub method: String,
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
    /// When each section was acknowledged, in reading order, ending with `signature`. A section
    /// read again (the state's summary, once the candidate gave another state) has each time.
    pub sections: Vec<ConsentSectionTimes>,
    /// Whether the candidate ticked "I want to receive a copy of my Background Report" on our
    /// page (offered with the summaries of states whose law asks for it; every candidate is
    /// sent a copy). Null for your own form, whose answer to that box is not passed to us.
    pub copy_of_report_requested: Option<bool>,
    /// The typed name, or the drawn signature as a `data:image/png;base64,` URL.
    pub signature: String,
    /// The candidate's IP address.
    pub ip_address: Option<String>,
    /// The candidate's browser or app.
    pub user_agent: Option<String>,
}

/// When one section of the disclosures was acknowledged.
#[derive(SimpleObject)]
pub struct ConsentSectionTimes {
    /// The section's key (`welcome`, `summary_of_rights`, `disclosure`,
    /// `summary_of_state_rights`, `authorization_of_background_investigation`, `signature`).
    pub section: String,
    /// Each time, earliest first.
    pub acknowledged_at: Vec<DateTime<Utc>>,
}

impl From<ConsentRecord> for ConsentEvidence {
    fn from(c: ConsentRecord) -> Self {
        Self {
            method: c.method,
            signed_at: c.signed_at,
            sections: c
                .sections
                .into_iter()
                .map(|(section, acknowledged_at)| ConsentSectionTimes {
                    section,
                    acknowledged_at,
                })
                .collect(),
            copy_of_report_requested: c.copy_of_report_requested,
            signature: c.signature,
            ip_address: c.ip_address,
            user_agent: c.user_agent,
        }
    }
}

/// A timed step of a check (screening run, reminder, end of a waiting period, recheck).
#[derive(SimpleObject)]
pub struct ScheduledTask {
    /// Task id.
    pub id: ID,
    /// e.g. `screening.run`, `invite.reminder`, `recheck.consent_reminder`, `adverse.final_notice`.
    pub kind: String,
    /// When it runs (or ran).
    pub run_at: DateTime<Utc>,
    /// `pending`, `queued`, `running`, `done`, `failed` or `cancelled`.
    pub status: String,
    /// Runs so far.
    pub attempts: i32,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

impl From<task::Model> for ScheduledTask {
    fn from(t: task::Model) -> Self {
        Self {
            id: ID(t.id),
            kind: t.kind,
            run_at: t.run_at,
            status: t.status,
            attempts: t.attempts,
            last_error: t.last_error,
        }
    }
}

/// An arrest alert of continuous monitoring and its county rechecks.
#[derive(SimpleObject)]
pub struct MonitoringAlert {
    /// Alert id.
    pub id: ID,
    /// County of the booking.
    pub county: String,
    /// State of the booking.
    pub state: String,
    /// Day of the arrest.
    pub arrested_on: NaiveDate,
    /// `waiting` (recheck scheduled), `awaiting_consent` (the candidate lives in a state that
    /// is not evergreen and was asked for fresh consent; the recheck runs once given),
    /// `no_consent` (the link expired unsigned; no recheck ran), `charged`, `no_charge` or
    /// `cancelled` (unenrolled first).
    pub status: String,
    /// County rechecks run so far.
    pub rechecks: i32,
    /// When the alert came in.
    pub created_at: DateTime<Utc>,
}

impl From<monitoring_alert::Model> for MonitoringAlert {
    fn from(a: monitoring_alert::Model) -> Self {
        Self {
            id: ID(a.id),
            county: a.county,
            state: a.state,
            arrested_on: a.arrested_on,
            status: a.status,
            rechecks: a.rechecks,
            created_at: a.created_at,
        }
    }
}

/// A link to the consent page, made for the partner to hand the candidate.
#[derive(SimpleObject)]
pub struct ConsentLink {
    /// The consent page for this check; works once.
    pub url: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

/// A field the hosted form must collect (Turn's `data`).
#[derive(SimpleObject)]
pub struct FormField {
    /// Turn's field name, e.g. `date_of_birth`.
    pub field: String,
    /// Whether it must be given.
    pub required: bool,
}

/// A legal section the hosted form must show and have acknowledged (Turn's `disclosures`).
#[derive(SimpleObject)]
pub struct Disclosure {
    /// Display order.
    pub order: u32,
    /// The key its acknowledgement times go under in `timestamps`.
    pub key: String,
    /// Section title.
    pub title: String,
    /// The legal text, as HTML.
    pub copy_html: String,
    /// Checkboxes to show.
    pub checkboxes: Vec<String>,
    /// Checkboxes the candidate must tick to continue.
    pub required_checkboxes: Vec<String>,
}

/// Step one of a hosted consent form.
#[derive(SimpleObject)]
pub struct ConsentForm {
    /// Pass to `submitConsentForm` (Turn's `check_id` of step one).
    pub form_id: ID,
    /// The package the check will run.
    pub package_id: ID,
    /// The state whose disclosures apply (from the zip code unless given).
    pub state: Option<String>,
    /// Fields to collect.
    pub data: Vec<FormField>,
    /// Sections to show, in order.
    pub disclosures: Vec<Disclosure>,
}

/// What step two came to.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ConsentFormOutcome {
    /// Check created, and the candidate unless `bypassDupe` found them on file; the check is
    /// processing (or, with `doChecks: false`, `initiated` until `runCheck`). Turn's code 9200.
    Started,
    /// A candidate with this SSN already exists; nothing was started (`bypassDupe: true`
    /// screens them again instead). Turn's code 9400.
    CandidateExists,
}

/// The answer to `submitConsentForm`.
#[derive(SimpleObject)]
pub struct ConsentFormResult {
    /// What happened.
    pub outcome: ConsentFormOutcome,
    /// Turn's message code: 9200 success, 9400 candidate already exists.
    pub code: i32,
    /// Turn's message.
    pub message: String,
    /// The candidate (new, or the existing one).
    pub candidate: Candidate,
    /// The new check, when one was started.
    pub check: Option<Check>,
}

/// Turn's `timestamps` object: when each section was acknowledged (RFC 3339).
#[derive(InputObject, Default)]
pub struct ConsentTimestampsInput {
    /// Welcome section.
    pub welcome: Vec<String>,
    /// A Summary of Your Rights Under the FCRA.
    pub summary_of_rights: Vec<String>,
    /// Disclosure Regarding Background Investigation.
    pub disclosure: Vec<String>,
    /// A Summary of Your State Rights (when the form showed one).
    #[graphql(default)]
    pub summary_of_state_rights: Vec<String>,
    /// Authorization of Background Investigation.
    pub authorization_of_background_investigation: Vec<String>,
    /// Signature.
    pub signature: Vec<String>,
}

/// Step two: the candidate's data and the consent evidence your form gathered.
#[derive(InputObject)]
pub struct SubmitConsentFormInput {
    /// From `createConsentForm`.
    pub form_id: ID,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Middle name; required unless `noMiddleName`.
    pub middle_name: Option<String>,
    /// The candidate ticked "I do not have a middle name".
    #[graphql(default)]
    pub no_middle_name: bool,
    /// Email address.
    pub email: String,
    /// US phone number.
    pub phone: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// Nine digits, dashes allowed.
    pub ssn: String,
    /// Street address. Optional, as in Turn's form; it speeds up Pennsylvania MVRs.
    pub address: Option<String>,
    /// City. Optional, as in Turn's form; it speeds up Pennsylvania MVRs.
    pub city: Option<String>,
    /// Two-letter state; defaults to the form's.
    pub state: Option<String>,
    /// The candidate's zip code; if given, it must be the form's (Turn: "Zipcodes do not
    /// match").
    pub zipcode: Option<String>,
    /// Required when the package has an MVR search.
    pub drivers_license_number: Option<String>,
    /// Required when the package has an MVR search.
    pub drivers_license_state: Option<String>,
    /// The candidate's drawn signature: a PNG image as a data URL (`data:image/png;base64,…`),
    /// up to 2 MB. Anything else is refused with this field named.
    pub consent_document: String,
    /// Where the results webhook goes. FORBIDDEN for limited team members (the results hold
    /// the report and the date of birth).
    pub callback_url: Option<String>,
    /// Your own id for the candidate.
    pub reference_id: Option<String>,
    /// `false` stores the consented check at `initiated` without running it (nothing is sent
    /// to the candidate) until `runCheck`.
    #[graphql(default = true)]
    pub do_checks: bool,
    /// Turn's `bypass_dupe`. `true` screens a returning candidate: when a candidate with this
    /// SSN is on file, their profile takes this form's details and a new check starts for them
    /// (same `turnId`; CONFLICT while a check of theirs is still in progress, FORBIDDEN for
    /// limited team members) instead of the answer `CANDIDATE_EXISTS`.
    #[graphql(default)]
    pub bypass_dupe: bool,
    /// When each section was acknowledged.
    pub timestamps: ConsentTimestampsInput,
    /// The candidate's IP address.
    pub ip_address: Option<String>,
    /// The candidate's browser or app.
    pub user_agent: Option<String>,
}

/// A page of checks enrolled in continuous monitoring.
#[derive(SimpleObject)]
pub struct MonitoringEnrollments {
    /// Enrolled checks, newest enrollment first.
    pub nodes: Vec<Check>,
    /// How many match the filters.
    pub total_count: u64,
    /// Whether there is a next page.
    pub has_next_page: bool,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// A sandbox scenario: what the built-in provider returns for which candidate.
#[derive(SimpleObject)]
pub struct SandboxScenario {
    /// Candidate name that selects it.
    pub key: String,
    /// What the searches find.
    pub outcome: String,
}

#[derive(Default)]
pub struct ScreeningQuery;

#[Object]
impl ScreeningQuery {
    /// Mail sent to candidates, newest first (of one check if given). Team members and above.
    async fn emails(&self, ctx: &Context<'_>, check_id: Option<ID>) -> GqlResult<Vec<Email>> {
        Ok(svc(ctx)
            .emails(actor(ctx)?, check_id.as_ref().map(|c| c.as_str()))
            .await
            .map_err(gql)?
            .into_iter()
            .map(Into::into)
            .collect())
    }
    /// Checks enrolled in continuous criminal monitoring, newest enrollment date first;
    /// `enrolledFrom` and `enrolledTo` (UTC dates, as `cmCriminalEnroll`) are both included.
    async fn monitoring_enrollments(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: u64,
        after: Option<String>,
        enrolled_from: Option<NaiveDate>,
        enrolled_to: Option<NaiveDate>,
    ) -> GqlResult<MonitoringEnrollments> {
        let page = svc(ctx)
            .monitoring_enrollments(
                actor(ctx)?,
                first,
                after.as_deref(),
                enrolled_from,
                enrolled_to,
            )
            .await
            .map_err(gql)?;
        Ok(MonitoringEnrollments {
            nodes: page.items.into_iter().map(Check).collect(),
            total_count: page.total,
            has_next_page: page.has_next_page,
            end_cursor: page.end_cursor,
        })
    }
    /// The sandbox provider's scenarios.
    async fn sandbox_scenarios(&self, ctx: &Context<'_>) -> GqlResult<Vec<SandboxScenario>> {
        actor(ctx)?;
        Ok(service::screening::sandbox::SCENARIOS
            .iter()
            .map(|(k, o)| SandboxScenario {
                key: (*k).to_string(),
                outcome: (*o).to_string(),
            })
            .collect())
    }
}

#[derive(Default)]
pub struct ScreeningMutation;

#[Object]
impl ScreeningMutation {
    /// Invites the candidate of an `initiated` check (→ `emailed`), or sends an `emailed`
    /// check's invitation again with a new link (the old one stops working).
    async fn send_invitation(&self, ctx: &Context<'_>, check_id: ID) -> GqlResult<Check> {
        Ok(Check(
            svc(ctx)
                .send_invitation(actor(ctx)?, &check_id)
                .await
                .map_err(gql)?,
        ))
    }
    /// Starts a check submitted with `submitConsentForm(doChecks: false)` (Turn's
    /// `/fcra_check/form/{check_id}/run`) with the consent the form gave: `initiated` →
    /// `consent` → `processing`. A check already run is refused (`CONFLICT`).
    async fn run_check(&self, ctx: &Context<'_>, check_id: ID) -> GqlResult<Check> {
        Ok(Check(
            svc(ctx)
                .run_check(actor(ctx)?, &check_id)
                .await
                .map_err(gql)?,
        ))
    }
    /// A single-use link to the consent page for a check waiting for consent (`initiated` or
    /// `emailed`), for you to send the candidate yourself or embed in your app (Turn's
    /// `candidate_consent_url`, with `emailCandidate: false` on `startCheck`). Nothing is
    /// mailed; earlier links stop working. The URL is shown this once.
    async fn issue_consent_link(&self, ctx: &Context<'_>, check_id: ID) -> GqlResult<ConsentLink> {
        let (url, expires_at) = svc(ctx)
            .issue_consent_link(actor(ctx)?, &check_id)
            .await
            .map_err(gql)?;
        Ok(ConsentLink { url, expires_at })
    }
    /// Step one of a consent form you host (Turn's `POST /fcra_check/form`): the fields to
    /// collect and the disclosures to show for a package (default if omitted) and zip code.
    async fn create_consent_form(
        &self,
        ctx: &Context<'_>,
        zipcode: String,
        package_id: Option<ID>,
        state: Option<String>,
    ) -> GqlResult<ConsentForm> {
        let f = svc(ctx)
            .consent_form(
                actor(ctx)?,
                package_id.as_ref().map(|p| p.as_str()),
                &zipcode,
                state.as_deref(),
            )
            .await
            .map_err(gql)?;
        Ok(ConsentForm {
            form_id: ID(f.form_id),
            package_id: ID(f.package_id),
            state: f.state,
            data: f
                .data
                .into_iter()
                .map(|d| FormField {
                    field: d.field.to_string(),
                    required: d.required,
                })
                .collect(),
            disclosures: f
                .disclosures
                .into_iter()
                .map(|s| Disclosure {
                    order: s.order,
                    key: s.key.to_string(),
                    title: s.title,
                    copy_html: s.copy_html,
                    checkboxes: s.checkboxes,
                    required_checkboxes: s.required_checkboxes,
                })
                .collect(),
        })
    }
    /// Step two (Turn's `POST /fcra_check/form/:check_id`): the candidate's data and consent
    /// evidence. The check starts processing at once; a candidate whose SSN you already have
    /// is answered with that candidate (CANDIDATE_EXISTS) and nothing is started (a limited
    /// team member, who may not see SSNs, gets CONFLICT on `ssn` without the candidate).
    async fn submit_consent_form(
        &self,
        ctx: &Context<'_>,
        input: SubmitConsentFormInput,
    ) -> GqlResult<ConsentFormResult> {
        let t = input.timestamps;
        let mut timestamps = BTreeMap::new();
        for (k, v) in [
            ("welcome", t.welcome),
            ("summary_of_rights", t.summary_of_rights),
            ("disclosure", t.disclosure),
            ("summary_of_state_rights", t.summary_of_state_rights),
            (
                "authorization_of_background_investigation",
                t.authorization_of_background_investigation,
            ),
            ("signature", t.signature),
        ] {
            if !v.is_empty() {
                timestamps.insert(k.to_string(), v);
            }
        }
        let hosted = HostedConsent {
            candidate: CandidateInput {
                first_name: Some(input.first_name),
                middle_name: input.middle_name,
                last_name: Some(input.last_name),
                email: Some(input.email),
                phone: Some(input.phone),
                date_of_birth: Some(input.date_of_birth),
                ssn: Some(input.ssn),
                city: input.city.filter(|c| !c.trim().is_empty()),
                state: input.state,
                zip: input.zipcode,
                address: input.address.filter(|a| !a.trim().is_empty()),
                drivers_license_number: input.drivers_license_number,
                drivers_license_state: input.drivers_license_state,
                reference_id: input.reference_id,
                ..Default::default()
            },
            no_middle_name: input.no_middle_name,
            consent_document: input.consent_document,
            callback_url: input.callback_url,
            do_checks: input.do_checks,
            bypass_dupe: input.bypass_dupe,
            timestamps,
            ip_address: input.ip_address,
            user_agent: input.user_agent,
        };
        let r = svc(ctx)
            .submit_consent_form(actor(ctx)?, &input.form_id, hosted)
            .await
            .map_err(gql)?;
        Ok(match r {
            HostedConsentResult::Started { candidate, check } => ConsentFormResult {
                outcome: ConsentFormOutcome::Started,
                code: 9200,
                message: "The operation completed successfully.".into(),
                candidate: Candidate::from(candidate),
                check: Some(Check(check)),
            },
            HostedConsentResult::CandidateExists { candidate } => ConsentFormResult {
                outcome: ConsentFormOutcome::CandidateExists,
                code: 9400,
                message: "Candidate with this ssn already exists.".into(),
                candidate: Candidate::from(candidate),
                check: None,
            },
        })
    }
    /// Resumes the searches of a check held for identity verification (`review__identity` →
    /// `processing`) with the information the candidate gave: Turn's "Resume Checks".
    async fn resume_checks(
        &self,
        ctx: &Context<'_>,
        check_id: ID,
        reason: Option<String>,
    ) -> GqlResult<Check> {
        Ok(Check(
            svc(ctx)
                .resume_checks(actor(ctx)?, &check_id, reason.as_deref())
                .await
                .map_err(gql)?,
        ))
    }
    /// Runs a completed check (approved, consider or rejected) again: same turnId, back to
    /// `processing`, no new consent; the new report is kept beside the old one. For a candidate
    /// whose ZIP code is in California (consent to every check) the check keeps its status and
    /// the candidate is emailed a consent link; the recheck starts when they sign.
    async fn recheck_check(
        &self,
        ctx: &Context<'_>,
        check_id: ID,
        reason: Option<String>,
    ) -> GqlResult<Check> {
        Ok(Check(
            svc(ctx)
                .recheck(actor(ctx)?, &check_id, reason.as_deref())
                .await
                .map_err(gql)?,
        ))
    }
    /// Starts adverse action on a `pending` (Consider) check: the pre-adverse notice goes to the
    /// candidate with their report and the summary of rights, and the waiting period starts.
    async fn start_adverse_action(
        &self,
        ctx: &Context<'_>,
        check_id: ID,
        reason: Option<String>,
    ) -> GqlResult<Check> {
        Ok(Check(
            svc(ctx)
                .start_adverse_action(actor(ctx)?, &check_id, reason.as_deref())
                .await
                .map_err(gql)?,
        ))
    }
    /// Cancels adverse action: the check is approved.
    async fn cancel_adverse_action(
        &self,
        ctx: &Context<'_>,
        check_id: ID,
        reason: Option<String>,
    ) -> GqlResult<Check> {
        Ok(Check(
            svc(ctx)
                .cancel_adverse_action(actor(ctx)?, &check_id, reason.as_deref())
                .await
                .map_err(gql)?,
        ))
    }
    /// Records a dispute the candidate raised: the waiting period pauses until the reporting
    /// agency, having reinvestigated, resolves it (the operator's `api dispute resolve`).
    async fn dispute_adverse_action(
        &self,
        ctx: &Context<'_>,
        check_id: ID,
        reason: String,
    ) -> GqlResult<AdverseAction> {
        Ok(svc(ctx)
            .dispute_adverse_action(actor(ctx)?, &check_id, &reason)
            .await
            .map_err(gql)?
            .into())
    }
    /// Enrolls an approved check in continuous criminal monitoring (sets `cmCriminalEnroll`).
    async fn enroll_monitoring(&self, ctx: &Context<'_>, check_id: ID) -> GqlResult<Check> {
        Ok(Check(
            svc(ctx)
                .enroll_monitoring(actor(ctx)?, &check_id)
                .await
                .map_err(gql)?,
        ))
    }
    /// Ends continuous criminal monitoring of a check.
    async fn unenroll_monitoring(&self, ctx: &Context<'_>, check_id: ID) -> GqlResult<Check> {
        Ok(Check(
            svc(ctx)
                .unenroll_monitoring(actor(ctx)?, &check_id)
                .await
                .map_err(gql)?,
        ))
    }
    /// Sandbox only: simulates an arrest alert for an enrolled check. After 7 business days a
    /// county recheck runs; with `chargeFiled` it finds the charge and the check goes to
    /// `review__cm` with `criminal_monitoring_triggered: true`; without, nothing is sent. A
    /// candidate in California is first emailed for fresh consent (`awaiting_consent`), and
    /// the recheck waits for it.
    async fn sandbox_arrest_alert(
        &self,
        ctx: &Context<'_>,
        check_id: ID,
        county: String,
        state: String,
        #[graphql(default = true)] charge_filed: bool,
    ) -> GqlResult<MonitoringAlert> {
        Ok(svc(ctx)
            .sandbox_arrest_alert(actor(ctx)?, &check_id, &county, &state, charge_filed)
            .await
            .map_err(gql)?
            .into())
    }
}

/// Fields of a check that belong to the screening engine.
pub(crate) mod check_fields {
    use super::*;

    pub async fn reports(ctx: &Context<'_>, check_id: &str) -> GqlResult<Vec<ScreeningReport>> {
        Ok(svc(ctx)
            .check_reports(actor(ctx)?, check_id)
            .await
            .map_err(gql)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub async fn adverse_action(
        ctx: &Context<'_>,
        check_id: &str,
    ) -> GqlResult<Option<AdverseAction>> {
        Ok(svc(ctx)
            .adverse_action_of(actor(ctx)?, check_id)
            .await
            .map_err(gql)?
            .map(Into::into))
    }

    pub async fn consents(ctx: &Context<'_>, check_id: &str) -> GqlResult<Vec<ConsentEvidence>> {
        Ok(svc(ctx)
            .check_consents(actor(ctx)?, check_id)
            .await
            .map_err(gql)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub async fn tasks(ctx: &Context<'_>, check_id: &str) -> GqlResult<Vec<ScheduledTask>> {
        Ok(svc(ctx)
            .tasks_of_check(actor(ctx)?, check_id)
            .await
            .map_err(gql)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub async fn monitoring_alerts(
        ctx: &Context<'_>,
        check_id: &str,
    ) -> GqlResult<Vec<MonitoringAlert>> {
        Ok(svc(ctx)
            .monitoring_alerts(actor(ctx)?, check_id)
            .await
            .map_err(gql)?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}
