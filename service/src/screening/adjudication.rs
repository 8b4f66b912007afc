//! Adjudication: the partner's rules (lookbacks, what each kind of hit does, Turn's MVR matrix)
//! and the status a finished report earns under them, with a reason a person can read for every
//! record that counted, was ignored, or fell outside the rules.
use chrono::{Months, NaiveDate};
use entity::CheckStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::screening::report::{
    self, CriminalRecord, Mvr, MvrAccident, MvrAction, MvrViolation, Report, SexOffenderRecord,
    WatchlistRecord,
};

/// A key naming no rule (a typo, `felonyLookbackYears`) is refused rather than dropped, which
/// would leave that rule at its default without a word.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdjudicationRules {
    /// Felonies count when dated within this many years (7 by default, the FCRA horizon many
    /// states use).
    pub felony_lookback_years: u32,
    /// Misdemeanors count when dated within this many years; 0 means they never count.
    pub misdemeanor_lookback_years: u32,
    pub sex_offender: HitAction,
    pub watchlist: HitAction,
    /// Whether the MVR is graded by the matrix of docs-mvr-matrix.md.
    pub mvr_matrix: bool,
    /// The matrix counts violations and accidents dated within this many years (3 by default,
    /// the span most motor-vehicle matrices read); 0 counts the whole record. An undated entry
    /// counts.
    pub mvr_lookback_years: u32,
    /// What a counting criminal record does.
    pub criminal: HitAction,
}

impl Default for AdjudicationRules {
    fn default() -> Self {
        Self {
            felony_lookback_years: 7,
            misdemeanor_lookback_years: 0,
            sex_offender: HitAction::ComplianceReview,
            watchlist: HitAction::Review,
            mvr_matrix: true,
            mvr_lookback_years: 3,
            criminal: HitAction::Consider,
        }
    }
}

/// The longest lookback a rule takes, in years: a record older than that is as good as any age.
pub const MAX_LOOKBACK_YEARS: u32 = 99;

impl AdjudicationRules {
    /// The first rule whose value makes no sense, named with why. A felony lookback of 0 would
    /// count no felony (and no unclassified record) at all: a partner that wants that sets
    /// `criminal` to `ignore` instead.
    pub fn problem(&self) -> Option<String> {
        let max = MAX_LOOKBACK_YEARS;
        if !(1..=max).contains(&self.felony_lookback_years) {
            return Some(format!("felony_lookback_years must be 1 to {max}"));
        }
        [
            (
                "misdemeanor_lookback_years",
                self.misdemeanor_lookback_years,
            ),
            ("mvr_lookback_years", self.mvr_lookback_years),
        ]
        .into_iter()
        .find(|(_, years)| *years > max)
        .map(|(rule, _)| format!("{rule} must be 0 to {max}"))
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HitAction {
    /// `pending`: the partner considers the candidate (the road to adverse action).
    Consider,
    /// `review`: the partner's own reviewers look first.
    Review,
    /// The search's compliance queue: `review__so` for sex offender, `review__qa` for watchlist
    /// and criminal, `review__mvr` for MVR.
    ComplianceReview,
    Ignore,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MvrGrade {
    Acceptable,
    AcceptableBorderline,
    UnacceptableBorderline,
    Unacceptable,
}

impl MvrGrade {
    pub fn label(self) -> &'static str {
        match self {
            MvrGrade::Acceptable => "acceptable",
            MvrGrade::AcceptableBorderline => "acceptable (borderline)",
            MvrGrade::UnacceptableBorderline => "unacceptable (borderline)",
            MvrGrade::Unacceptable => "unacceptable",
        }
    }
}

/// The matrix of docs-mvr-matrix.md: rows are moving violations 0, 1, 2, 3, 4 and "5 or any
/// major"; columns are at-fault accidents 0, 1, 2 and "3 or more".
pub fn mvr_grade(moving_violations: u32, at_fault_accidents: u32, has_major: bool) -> MvrGrade {
    use MvrGrade::{
        Acceptable as A, AcceptableBorderline as AB, Unacceptable as U,
        UnacceptableBorderline as UB,
    };
    const MATRIX: [[MvrGrade; 4]; 6] = [
        [A, A, A, UB],
        [A, A, AB, UB],
        [A, A, AB, U],
        [A, AB, UB, U],
        [AB, UB, U, U],
        [UB, U, U, U],
    ];
    let row = if has_major {
        5
    } else {
        moving_violations.min(5)
    };
    let col = at_fault_accidents.min(3);
    // Both indices are clamped to the matrix above, so the lookup always succeeds.
    MATRIX
        .get(row as usize)
        .and_then(|r| r.get(col as usize))
        .copied()
        .unwrap_or(U)
}

/// What the matrix reads from an MVR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MvrSummary {
    pub moving_violations: u32,
    pub at_fault_accidents: u32,
    /// The ACD A-codes found (offences of alcohol and drugs: DUI, DWI, ...); any one is a
    /// major violation.
    pub major_codes: Vec<String>,
}

impl MvrSummary {
    pub fn has_major(&self) -> bool {
        !self.major_codes.is_empty()
    }

    pub fn grade(&self) -> MvrGrade {
        mvr_grade(
            self.moving_violations,
            self.at_fault_accidents,
            self.has_major(),
        )
    }
}

/// An accident counts as at fault unless the record says otherwise: the seed never shows a
/// `fault` value, and a matrix that silently passes unknown accidents would approve drivers it
/// should not.
fn at_fault(a: &MvrAccident) -> bool {
    match &a.fault {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "n" | "no" | "false" | "0" | "not at fault" | "not_at_fault" | "no fault"
        ),
        _ => true,
    }
}

/// Whether an MVR entry dated by `dates` (the first readable one is taken) falls in the
/// lookback of `years` before `today` (0: any age). An entry with no readable date counts.
fn mvr_entry_counts(dates: &[&Option<String>], years: u32, today: NaiveDate) -> bool {
    let date = dates.iter().find_map(|d| {
        d.as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d.trim(), report::ISO_DATE_FORMAT).ok())
    });
    years == 0 || date.is_none_or(|d| within_years(d, years, today))
}

/// ACD code families that are not moving violations: equipment and vehicle defects (`E`, `F`)
/// and licence withdrawals (`W`, an action recorded as a conviction line).
const NON_MOVING_ACD_FAMILIES: [char; 3] = ['E', 'F', 'W'];

/// Whether a violation is a moving one, as the matrix's rows count: any violation but one whose
/// every ACD code is of a non-moving family. A violation without an ACD code counts, so that a
/// state's uncoded entry is not passed over.
fn is_moving(v: &MvrViolation) -> bool {
    let mut codes = v
        .sub_violations
        .iter()
        .filter_map(|s| s.acd_code.as_deref())
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .peekable();
    codes.peek().is_none()
        || codes.any(|c| {
            !c.chars()
                .next()
                .is_some_and(|f| NON_MOVING_ACD_FAMILIES.contains(&f.to_ascii_uppercase()))
        })
}

/// What the matrix counts on `mvr`: the violations and at-fault accidents of the last
/// `lookback_years` years before `today` (0: the whole record).
pub fn summarize_mvr(mvr: &Mvr, lookback_years: u32, today: NaiveDate) -> MvrSummary {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let violations: Vec<&MvrViolation> = mvr
        .violations
        .iter()
        .filter(|v| is_moving(v))
        .filter(|v| {
            mvr_entry_counts(
                &[&v.conviction_date, &v.incident_date],
                lookback_years,
                today,
            )
        })
        .collect();
    // The matrix's "any Major" has no window: a major violation counts over the whole record
    // the state reports.
    let major_codes = mvr
        .violations
        .iter()
        .flat_map(|v| &v.sub_violations)
        .filter_map(|s| s.acd_code.as_deref())
        .map(str::trim)
        .filter(|c| c.starts_with(['A', 'a']))
        .map(str::to_owned)
        .collect();
    let accidents = mvr
        .accidents
        .iter()
        .filter(|a| at_fault(a) && mvr_entry_counts(&[&a.incident_date], lookback_years, today));
    MvrSummary {
        moving_violations: count(violations.len()),
        at_fault_accidents: count(accidents.count()),
        major_codes,
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Decision {
    pub status: CheckStatus,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Search {
    Criminal,
    SexOffender,
    Watchlist,
    Mvr,
}

/// The status a hit leads to, `None` when the rules ignore it.
fn status_for(action: HitAction, search: Search) -> Option<CheckStatus> {
    match action {
        HitAction::Consider => Some(CheckStatus::Pending),
        HitAction::Review => Some(CheckStatus::Review),
        HitAction::ComplianceReview => Some(match search {
            Search::SexOffender => CheckStatus::ReviewSo,
            Search::Criminal | Search::Watchlist => CheckStatus::ReviewQa,
            Search::Mvr => CheckStatus::ReviewMvr,
        }),
        HitAction::Ignore => None,
    }
}

/// `pending` beats every review, which beats `approved`. Between reviews, a compliance queue
/// beats the partner's own `review` (compliance has to clear a record before the partner acts on
/// it) and the queues rank by how sensitive their records are. Every finding keeps its reason,
/// so the ranking decides only which queue sees the check first.
fn severity(status: CheckStatus) -> u8 {
    match status {
        CheckStatus::Pending => 6,
        CheckStatus::ReviewSo => 5,
        CheckStatus::ReviewQa => 4,
        CheckStatus::ReviewMvr => 3,
        CheckStatus::ReviewCm => 2,
        CheckStatus::Review => 1,
        _ => 0,
    }
}

fn years(n: u32) -> String {
    if n == 1 {
        "1 year".into()
    } else {
        format!("{n} years")
    }
}

/// Whether `date` falls within `years` years before `today` (the boundary day counts; dates
/// after `today` count too).
fn within_years(date: NaiveDate, years: u32, today: NaiveDate) -> bool {
    today
        .checked_sub_months(Months::new(years.saturating_mul(12)))
        .is_none_or(|cutoff| date >= cutoff)
}

/// The date a lookback measures from: the latest of the record's events (offense, arrest,
/// filing, conviction, disposition), since a record is as recent as its last court event: an
/// old offense filed last year and still open is a recent case.
fn record_reference_date(r: &CriminalRecord) -> Option<NaiveDate> {
    [
        &r.offense_date,
        &r.arrest_date,
        &r.charges_filed_date,
        &r.conviction_date,
        &r.disposition_date,
    ]
    .into_iter()
    .filter_map(|d| d.as_deref().and_then(report::parse_record_date))
    .max()
}

/// Words of a disposition that ended a case without a conviction (dismissed, acquitted, not
/// prosecuted). Such a record is shown in the report but not counted against the candidate:
/// an arrest or a charge alone is not evidence of conduct. A pending case, a conviction or a
/// disposition not recognised here counts.
const NON_CONVICTION_DISPOSITIONS: [&str; 8] = [
    "dismiss",
    "not guilty",
    "acquit",
    "nolle",
    "no bill",
    "not prosecuted",
    "no information filed",
    "dropped",
];

/// Words of a disposition whose conviction was undone ("Conviction vacated", "Expunged -
/// conviction set aside"): not counted, whatever else the disposition says.
const CONVICTION_UNDONE: [&str; 6] = [
    "vacated",
    "expunge",
    "set aside",
    "overturned",
    "reversed",
    "annul",
];

/// Words of a disposition that convicted on some count ("guilty" other than "not guilty", a
/// plea, a sentence). A mixed disposition ("Guilty - counts 2-3 dismissed") is a conviction.
const CONVICTION_DISPOSITIONS: [&str; 6] = ["guilty", "convict", "plea", "pled", "sentenc", "nolo"];

/// A plea of not guilty, in the ways dispositions write it: neither a plea that convicts nor a
/// verdict of not guilty ("Plea of not guilty" alone is a case still open).
const NOT_GUILTY_PLEAS: [&str; 4] = [
    "pleaded not guilty",
    "plea of not guilty",
    "not guilty plea",
    "pled not guilty",
];

fn not_a_conviction(disposition: &str) -> bool {
    let d = disposition.to_ascii_lowercase();
    if CONVICTION_UNDONE.iter().any(|w| d.contains(w)) {
        return true;
    }
    let d = NOT_GUILTY_PLEAS
        .iter()
        .fold(d, |rest, plea| rest.replace(plea, ""));
    let convicted_on_some_count = {
        let rest = d.replace("not guilty", "");
        CONVICTION_DISPOSITIONS.iter().any(|w| rest.contains(w))
    };
    !convicted_on_some_count && NON_CONVICTION_DISPOSITIONS.iter().any(|w| d.contains(w))
}

struct Collector<'a> {
    rules: &'a AdjudicationRules,
    status: CheckStatus,
    findings: Vec<String>,
    notes: Vec<String>,
}

impl Collector<'_> {
    fn finding(&mut self, search: Search, action: HitAction, reason: String) {
        match status_for(action, search) {
            Some(status) => {
                if severity(status) > severity(self.status) {
                    self.status = status;
                }
                self.findings.push(reason);
            }
            None => self
                .findings
                .push(format!("{reason}; ignored by the rules")),
        }
    }

    fn criminal(&mut self, county: &str, r: &CriminalRecord, today: NaiveDate) {
        let crime_type = r.crime_type.as_deref().map(str::trim).unwrap_or_default();
        let kind = crime_type.to_ascii_lowercase();
        let description = r
            .offense_description_1
            .as_deref()
            .unwrap_or("unknown offense");
        let county = r
            .county
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or(county);
        let date = record_reference_date(r);
        let on = date.map_or_else(
            || "undated".to_owned(),
            |d| format!("on {}", report::iso_date(d)),
        );
        let label = if kind.is_empty() {
            "unclassified record".to_owned()
        } else {
            kind.clone()
        };
        let what = format!("{label} '{description}' {on} in {county}");
        if let Some(d) = r.disposition.as_deref().filter(|d| not_a_conviction(d)) {
            self.notes.push(format!(
                "{what}: disposition '{}' is not a conviction: not counted",
                d.trim()
            ));
            return;
        }
        // Providers name the class in their own words ("Gross Misdemeanor", "Misdemeanor -
        // Class A", "Felony 3rd Degree"): the word decides, a felony's first.
        let class = ["felony", "misdemeanor", "infraction"]
            .into_iter()
            .find(|c| kind.contains(c))
            .unwrap_or_default();
        let lookback = match class {
            "infraction" => {
                self.notes
                    .push(format!("{what}: infractions are not counted"));
                return;
            }
            "misdemeanor" if self.rules.misdemeanor_lookback_years == 0 => {
                self.notes
                    .push(format!("{what}: misdemeanors are not counted"));
                return;
            }
            "misdemeanor" => self.rules.misdemeanor_lookback_years,
            // Felonies, and records the provider did not classify: an unknown type must not
            // pass unseen, so it is held to the felony rule.
            _ => self.rules.felony_lookback_years,
        };
        match date {
            Some(d) if !within_years(d, lookback, today) => self.notes.push(format!(
                "{what}, outside the {}-year lookback: not counted",
                lookback
            )),
            Some(_) => self.finding(
                Search::Criminal,
                self.rules.criminal,
                format!("{what}, within {}", years(lookback)),
            ),
            None => self.finding(
                Search::Criminal,
                self.rules.criminal,
                format!("{what}: no date to measure the {lookback}-year lookback from"),
            ),
        }
    }

    fn sex_offender(&mut self, r: &SexOffenderRecord) {
        let reason = format!(
            "sex-offender registry hit in {} ({}), record {}",
            r.state.as_deref().unwrap_or("an unknown state"),
            r.offense_description1
                .as_deref()
                .unwrap_or("no offense listed"),
            r.id
        );
        self.finding(Search::SexOffender, self.rules.sex_offender, reason);
    }

    fn watchlist(&mut self, r: &WatchlistRecord) {
        let name = r
            .full_name
            .clone()
            .or_else(|| {
                r.name.as_ref().map(|n| {
                    [&n.first_name, &n.middle_name, &n.last_name]
                        .into_iter()
                        .flatten()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
            })
            .unwrap_or_else(|| "an unnamed person".into());
        let reason = format!(
            "watchlist hit on '{}' for {name} ({}), record {}",
            r.source.as_deref().unwrap_or("an unknown list"),
            r.offense.as_deref().unwrap_or("no offense listed"),
            r.id
        );
        self.finding(Search::Watchlist, self.rules.watchlist, reason);
    }

    fn mvr(&mut self, mvr: &Mvr, today: NaiveDate) {
        let s = summarize_mvr(mvr, self.rules.mvr_lookback_years, today);
        let plural =
            |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let major = if s.has_major() {
            format!("major violation {}", s.major_codes.join(", "))
        } else {
            "no major violation".into()
        };
        let grade = s.grade();
        let reason = format!(
            "MVR: {}, {}, {major}: {}",
            plural(s.moving_violations, "moving violation", "moving violations"),
            plural(
                s.at_fault_accidents,
                "at-fault accident",
                "at-fault accidents"
            ),
            grade.label()
        );
        match grade {
            MvrGrade::Acceptable => {
                if s.moving_violations > 0 || s.at_fault_accidents > 0 || !mvr.accidents.is_empty()
                {
                    self.notes.push(reason);
                }
            }
            MvrGrade::AcceptableBorderline | MvrGrade::UnacceptableBorderline => {
                self.finding(Search::Mvr, HitAction::ComplianceReview, reason)
            }
            MvrGrade::Unacceptable => self.finding(Search::Mvr, HitAction::Consider, reason),
        }
    }

    fn mvr_licence(&mut self, mvr: &Mvr, today: NaiveDate) {
        for l in &mvr.licenses {
            if !l.is_valid || !l.has_valid_status {
                self.finding(
                    Search::Mvr,
                    HitAction::ComplianceReview,
                    format!(
                        "MVR: the {} licence is not valid (is_valid {}, has_valid_status {})",
                        l.state.as_deref().unwrap_or("driver's"),
                        l.is_valid,
                        l.has_valid_status
                    ),
                );
            }
        }
        for a in mvr.actions.iter().filter(|a| action_in_force(a, today)) {
            let what = a
                .action_type
                .as_deref()
                .or(a
                    .descriptions
                    .first()
                    .and_then(|d| d.short_description.as_deref()))
                .unwrap_or("an action");
            self.finding(
                Search::Mvr,
                HitAction::ComplianceReview,
                format!(
                    "MVR: {what} ({}) on the licence since {}, still in force",
                    a.action_code.as_deref().unwrap_or("no code"),
                    a.start_date.as_deref().unwrap_or("an unknown date")
                ),
            );
        }
    }
}

/// Words of an MVR action that restricts the licence.
const RESTRICTIVE_ACTIONS: [&str; 6] =
    ["suspen", "revo", "cancel", "disqual", "denial", "withdraw"];
/// Words of an MVR action that lifts or merely warns rather than restricts.
const NON_RESTRICTIVE_ACTIONS: [&str; 4] = ["reinstat", "restor", "warning", "cleared"];

/// What an MVR action's own words say it is: the first of its type, its code and its
/// descriptions that names a kind decides, and within one text the word that comes first
/// ("Suspended until reinstatement fee paid" restricts, "Reinstatement after suspension"
/// lifts). `None` when none names one.
fn action_restricts(a: &MvrAction) -> Option<bool> {
    let first_at = |text: &str, words: &[&str]| words.iter().filter_map(|w| text.find(w)).min();
    a.action_type
        .iter()
        .chain(&a.action_code)
        .chain(
            a.descriptions
                .iter()
                .filter_map(|d| d.short_description.as_ref()),
        )
        .map(|t| t.to_ascii_lowercase())
        .find_map(|t| {
            match (
                first_at(&t, &RESTRICTIVE_ACTIONS),
                first_at(&t, &NON_RESTRICTIVE_ACTIONS),
            ) {
                (Some(r), Some(n)) => Some(r < n),
                (Some(_), None) => Some(true),
                (None, Some(_)) => Some(false),
                (None, None) => None,
            }
        })
}

/// Whether an MVR action (a suspension, a revocation, a cancellation) still holds on `today`:
/// it has no end date, or it ends today or later. Its end is the actual end when the state
/// gives one, else the scheduled end or the through date. A reinstatement, a restoration or a
/// warning letter restricts nothing. Any other action (state codes vary) counts, so that
/// compliance looks at what it cannot name.
fn action_in_force(a: &MvrAction, today: NaiveDate) -> bool {
    if action_restricts(a) == Some(false) {
        return false;
    }
    let end = [&a.actual_end_date, &a.end_date, &a.thru_date]
        .into_iter()
        .find_map(|d| d.as_deref().map(str::trim).filter(|d| !d.is_empty()));
    match end {
        None => true,
        // An end date that cannot be read is not taken as a lifted action.
        Some(d) => NaiveDate::parse_from_str(d, report::ISO_DATE_FORMAT)
            .ok()
            .is_none_or(|d| d >= today),
    }
}

/// Identity comes first: the SSN trace runs before every other search, and a mismatch means
/// the other results (if any) may be someone else's. The trace counts as run when the report
/// carries its `ssn` object or an `ssn_status` other than `none` (Turn's own example reports a
/// trace with `ssn_status` `none`). Besides a mismatch, an SSN the SSA never issued
/// (`ssn.status` `invalid`: Turn says such a candidate "should not be approved") or one in the
/// Death Master File (`ssn.is_deceased`) stops the check. Statuses are compared without regard
/// to case.
fn identity_reasons(report: &Report) -> Vec<String> {
    let c = &report.checks;
    let status_of = |v: Option<&str>| v.map(|s| s.trim().to_ascii_lowercase());
    let ssn_status = status_of(c.ssn_status.as_deref());
    let ssn = c.ssn.as_ref().and_then(Value::as_object);
    let trace_run = ssn.is_some() || ssn_status.as_deref().is_some_and(|s| s != report::NONE);
    let mut reasons = Vec::new();
    if let Some(s @ (report::MISMATCH | report::NOT_MATCHED)) = ssn_status.as_deref() {
        reasons.push(format!(
            "identity: the SSN does not match public records (ssn_status '{s}')"
        ));
    }
    let ssn_field = |k: &str| ssn.and_then(|o| o.get(k));
    if status_of(ssn_field("status").and_then(Value::as_str)).as_deref() == Some("invalid") {
        reasons.push("identity: the SSN was never issued by the SSA (ssn.status 'invalid')".into());
    }
    if ssn_field("is_deceased").and_then(Value::as_bool) == Some(true) {
        reasons.push("identity: the SSN belongs to a deceased person (Death Master File)".into());
    }
    if trace_run {
        let not_matched = |v: Option<&str>| status_of(v).as_deref() == Some(report::NOT_MATCHED);
        if not_matched(c.name_status.as_deref()) {
            reasons.push(format!(
                "identity: the name does not match public records (name_status 'not_matched', public records: '{}')",
                c.public_provided_name.as_deref().unwrap_or("no name")
            ));
        }
        if not_matched(c.dob_status.as_deref()) {
            reasons.push(format!(
                "identity: the date of birth does not match public records (dob_status 'not_matched', public records: '{}')",
                c.public_record_date_of_birth.as_deref().unwrap_or("none")
            ));
        }
    }
    reasons
}

/// What an identity reason is about (the SSN's match, its issue, a death record, the name, the
/// date of birth), without the values it quotes.
fn identity_kind(reason: &str) -> &str {
    reason.split(" (").next().unwrap_or(reason)
}

/// Decides a report under `rules`. `confirmed` are the identity reasons of the hold a team
/// member resumed (`review__identity`), their word that the candidate is who they say: those
/// findings are then kept as notes and the rest of the report decides. An identity finding of
/// another kind (the resumed searches found a death record where the hold was for the name)
/// holds the check again.
pub fn adjudicate(
    report: &Report,
    rules: &AdjudicationRules,
    today: NaiveDate,
    confirmed: &[String],
) -> Decision {
    let (confirmed_now, unconfirmed): (Vec<String>, Vec<String>) =
        identity_reasons(report).into_iter().partition(|r| {
            confirmed
                .iter()
                .any(|c| identity_kind(c) == identity_kind(r))
        });
    if !unconfirmed.is_empty() {
        return Decision {
            status: CheckStatus::ReviewIdentity,
            reasons: unconfirmed,
        };
    }
    let identity = confirmed_now;
    let mut c = Collector {
        rules,
        status: CheckStatus::Approved,
        findings: Vec::new(),
        notes: identity
            .into_iter()
            .map(|r| format!("{r}; confirmed by a team member, who resumed the checks"))
            .collect(),
    };
    let checks = &report.checks;
    for county in checks.criminal.iter().flatten() {
        for record in &county.value {
            c.criminal(&county.county, record, today);
        }
    }
    for record in checks.sex_offender.iter().flatten() {
        c.sex_offender(record);
    }
    for record in checks.watchlist.iter().flatten() {
        c.watchlist(record);
    }
    if let Some(mvr) = &checks.mvr {
        if rules.mvr_matrix {
            c.mvr(mvr, today);
        }
        // Whatever the driving record, a licence that is not valid or under an action
        // (a suspension, a revocation) is not one to drive on: compliance looks first.
        c.mvr_licence(mvr, today);
    }
    let mut reasons = c.findings;
    if reasons.is_empty() {
        reasons.push("no reportable records".into());
    }
    reasons.extend(c.notes);
    Decision {
        status: c.status,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{DateTime, TimeZone, Utc};
    use entity::SearchKind;

    use super::*;
    use crate::screening::provider::{SearchOutcome, SearchRequest, Subject};
    use crate::screening::report::{CountyCriminal, MvrSubViolation};
    use crate::screening::sandbox::SandboxProvider;

    use CheckStatus::*;
    use MvrGrade::{
        Acceptable as A, AcceptableBorderline as AB, Unacceptable as U,
        UnacceptableBorderline as UB,
    };

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0)
            .single()
            .expect("valid time")
    }

    fn today() -> NaiveDate {
        now().date_naive()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn sandbox_request(first: &str, last: &str) -> SearchRequest {
        SearchRequest {
            subject: Subject {
                candidate_id: format!("cand-{first}-{last}"),
                turn_id: "C1931414576".into(),
                first_name: first.into(),
                last_name: last.into(),
                email: "someone@example.com".into(),
                date_of_birth: Some(date(1984, 6, 10)),
                ssn: Some("123456789".into()),
                city: Some("Albuquerque".into()),
                state: Some("NM".into()),
                zip: Some("87101".into()),
                address: Some("308 Negra Arroyo Lane".into()),
                drivers_license_number: Some("D1234567".into()),
                drivers_license_state: Some("NM".into()),
                ..Subject::default()
            },
            searches: SearchKind::ALL.to_vec(),
            requested_at: now() - chrono::TimeDelta::minutes(10),
            now: now(),
            identity_override: false,
        }
    }

    fn run(req: &SearchRequest) -> Report {
        match SandboxProvider::new(Duration::from_secs(5)).run_search(req) {
            Ok(SearchOutcome::Ready(r)) => r,
            other => panic!("expected a report, got {other:?}"),
        }
    }

    fn sandbox(first: &str, last: &str) -> Report {
        run(&sandbox_request(first, last))
    }

    fn decide(r: &Report, rules: &AdjudicationRules) -> Decision {
        adjudicate(r, rules, today(), &[])
    }

    fn status(first: &str, last: &str, rules: &AdjudicationRules) -> CheckStatus {
        decide(&sandbox(first, last), rules).status
    }

    fn defaults() -> AdjudicationRules {
        AdjudicationRules::default()
    }

    // --- the MVR matrix -------------------------------------------------------------------

    /// docs-mvr-matrix.md, row by row: violations 0..=4 and "5 or any major"; accidents 0, 1,
    /// 2, 3+.
    const DOC_MATRIX: [[MvrGrade; 4]; 6] = [
        [A, A, A, UB],
        [A, A, AB, UB],
        [A, A, AB, U],
        [A, AB, UB, U],
        [AB, UB, U, U],
        [UB, U, U, U],
    ];

    #[test]
    fn matrix_every_cell() {
        let mut cells = 0;
        for (violations, row) in DOC_MATRIX.iter().enumerate() {
            for (accidents, want) in row.iter().enumerate() {
                let (v, a) = (violations as u32, accidents as u32);
                assert_eq!(
                    mvr_grade(v, a, false),
                    *want,
                    "{v} violations, {a} accidents"
                );
                cells += 1;
            }
        }
        assert_eq!(cells, 24);
    }

    #[test]
    fn matrix_spelled_out() {
        // The same 24 cells, literally, so a wrong shared table cannot hide a wrong grade.
        let cells: [((u32, u32), MvrGrade); 24] = [
            ((0, 0), A),
            ((0, 1), A),
            ((0, 2), A),
            ((0, 3), UB),
            ((1, 0), A),
            ((1, 1), A),
            ((1, 2), AB),
            ((1, 3), UB),
            ((2, 0), A),
            ((2, 1), A),
            ((2, 2), AB),
            ((2, 3), U),
            ((3, 0), A),
            ((3, 1), AB),
            ((3, 2), UB),
            ((3, 3), U),
            ((4, 0), AB),
            ((4, 1), UB),
            ((4, 2), U),
            ((4, 3), U),
            ((5, 0), UB),
            ((5, 1), U),
            ((5, 2), U),
            ((5, 3), U),
        ];
        for ((v, a), want) in cells {
            assert_eq!(
                mvr_grade(v, a, false),
                want,
                "{v} violations, {a} accidents"
            );
        }
    }

    #[test]
    fn matrix_last_row_and_column_are_open_ended() {
        for v in 0..=12 {
            for a in 0..=9 {
                let row = DOC_MATRIX[v.min(5) as usize];
                assert_eq!(mvr_grade(v, a, false), row[a.min(3) as usize], "{v}/{a}");
                // Any major violation reads the last row, whatever the count.
                assert_eq!(mvr_grade(v, a, true), DOC_MATRIX[5][a.min(3) as usize]);
            }
        }
        assert_eq!(mvr_grade(u32::MAX, u32::MAX, false), U);
    }

    fn accident(fault: Option<Value>) -> MvrAccident {
        MvrAccident {
            fault,
            ..MvrAccident::default()
        }
    }

    fn violation(acd: &str) -> MvrViolation {
        MvrViolation {
            sub_violations: vec![MvrSubViolation {
                acd_code: Some(acd.into()),
                ..MvrSubViolation::default()
            }],
            ..MvrViolation::default()
        }
    }

    #[test]
    fn summary_counts_accidents_at_fault_unless_the_record_says_otherwise() {
        let mvr = Mvr {
            accidents: vec![
                accident(None),
                accident(Some(Value::Null)),
                accident(Some(Value::Bool(true))),
                accident(Some(Value::Bool(false))),
                accident(Some(Value::String("Not at fault".into()))),
                accident(Some(Value::String("N".into()))),
                accident(Some(Value::String("At Fault".into()))),
            ],
            violations: vec![violation("S92"), violation("M42"), violation(" a20")],
            ..Mvr::default()
        };
        let s = summarize_mvr(&mvr, 3, today());
        assert_eq!(s.moving_violations, 3);
        assert_eq!(s.at_fault_accidents, 4);
        assert_eq!(s.major_codes, ["a20"]);
        assert_eq!(s.grade(), U);
    }

    #[test]
    fn equipment_and_withdrawal_lines_are_not_moving_violations() {
        let uncoded = MvrViolation::default();
        let mixed = MvrViolation {
            sub_violations: vec![
                violation("E31").sub_violations[0].clone(),
                violation("S92").sub_violations[0].clone(),
            ],
            ..MvrViolation::default()
        };
        let mvr = Mvr {
            violations: vec![
                violation("E31"),
                violation("e01"),
                violation("F02"),
                violation("W05"),
                violation("M42"),
                mixed,
                uncoded,
            ],
            ..Mvr::default()
        };
        let s = summarize_mvr(&mvr, 3, today());
        assert_eq!(
            s.moving_violations, 3,
            "the maneuver, the line with a speeding code beside an equipment one, the uncoded one"
        );
        assert_eq!(s.grade(), A);
    }

    #[test]
    fn the_matrix_reads_the_lookback_and_counts_undated_entries() {
        let today = today();
        let dated = |acd: &str, date: &str| MvrViolation {
            conviction_date: Some(date.into()),
            ..violation(acd)
        };
        let crash = |date: Option<&str>| MvrAccident {
            incident_date: date.map(str::to_owned),
            ..accident(None)
        };
        let three_years_ago = today - chrono::Duration::days(3 * 365 - 2);
        let mvr = Mvr {
            violations: vec![
                dated("S92", "2012-04-01"),
                dated("A20", "2011-01-01"),
                dated("M42", &report::iso_date(three_years_ago)),
                violation("S93"),
            ],
            accidents: vec![crash(Some("2010-06-01")), crash(None)],
            ..Mvr::default()
        };
        let s = summarize_mvr(&mvr, 3, today);
        assert_eq!(s.moving_violations, 2, "the recent one and the undated one");
        assert_eq!(s.at_fault_accidents, 1);
        assert!(s.has_major(), "a major violation counts whatever its age");
        let whole = summarize_mvr(&mvr, 0, today);
        assert_eq!((whole.moving_violations, whole.at_fault_accidents), (4, 2));
        assert!(whole.has_major());
    }

    // --- defaults ---------------------------------------------------------------------------

    #[test]
    fn lookbacks_out_of_range_are_named() {
        assert_eq!(defaults().problem(), None);
        let with = |f: fn(&mut AdjudicationRules)| {
            let mut r = defaults();
            f(&mut r);
            r.problem()
        };
        assert_eq!(
            with(|r| r.felony_lookback_years = 0).as_deref(),
            Some("felony_lookback_years must be 1 to 99")
        );
        assert_eq!(
            with(|r| r.felony_lookback_years = 100).as_deref(),
            Some("felony_lookback_years must be 1 to 99")
        );
        assert_eq!(
            with(|r| r.mvr_lookback_years = 4_000_000_000).as_deref(),
            Some("mvr_lookback_years must be 0 to 99")
        );
        assert_eq!(
            with(|r| r.misdemeanor_lookback_years = 100).as_deref(),
            Some("misdemeanor_lookback_years must be 0 to 99")
        );
        assert_eq!(
            with(|r| {
                r.felony_lookback_years = 99;
                r.misdemeanor_lookback_years = 99;
                r.mvr_lookback_years = 0;
            }),
            None
        );
    }

    #[test]
    fn default_rules() {
        let r = defaults();
        assert_eq!(r.felony_lookback_years, 7);
        assert_eq!(r.misdemeanor_lookback_years, 0);
        assert_eq!(r.sex_offender, HitAction::ComplianceReview);
        assert_eq!(r.watchlist, HitAction::Review);
        assert!(r.mvr_matrix);
        assert_eq!(r.criminal, HitAction::Consider);
    }

    #[test]
    fn rules_json_fills_missing_fields_with_defaults() {
        let empty: AdjudicationRules = serde_json::from_str("{}").expect("rules");
        assert_eq!(empty, defaults());
        let partial: AdjudicationRules = serde_json::from_str(
            r#"{"felony_lookback_years": 10, "watchlist": "compliance_review"}"#,
        )
        .expect("rules");
        assert_eq!(
            partial,
            AdjudicationRules {
                felony_lookback_years: 10,
                watchlist: HitAction::ComplianceReview,
                ..defaults()
            }
        );
        let json = serde_json::to_value(defaults()).expect("json");
        assert_eq!(json["sex_offender"], "compliance_review");
        assert_eq!(json["criminal"], "consider");
        for (action, text) in [
            (HitAction::Consider, "consider"),
            (HitAction::Review, "review"),
            (HitAction::ComplianceReview, "compliance_review"),
            (HitAction::Ignore, "ignore"),
        ] {
            assert_eq!(serde_json::to_value(action).expect("json"), text);
        }
    }

    #[test]
    fn default_rules_against_every_sandbox_scenario() {
        let d = defaults();
        for (first, last, want) in [
            ("Ada", "Lovelace", Approved),
            ("Darth", "Vader", Pending),
            ("Walter", "White", Pending),
            ("Samwise", "Gamgee", Approved),
            ("Pat", "Mismatch", ReviewIdentity),
            ("Pat", "Speedwell", ReviewMvr),
            ("Pat", "Crash", Pending),
            ("Pat", "Reckless", ReviewMvr),
            ("Pat", "Registry", ReviewSo),
            ("Pat", "Wanted", Review),
            ("Pat", "Slowpoke", Approved),
        ] {
            assert_eq!(status(first, last, &d), want, "{first} {last}");
        }
    }

    #[test]
    fn a_clear_report_is_approved_with_no_reportable_records() {
        let d = decide(&sandbox("Ada", "Lovelace"), &defaults());
        assert_eq!(d.status, Approved);
        assert_eq!(d.reasons, ["no reportable records"]);
        let d = decide(&Report::default(), &defaults());
        assert_eq!(d.status, Approved);
        assert_eq!(d.reasons, ["no reportable records"]);
    }

    #[test]
    fn walter_whites_reasons_name_the_felony_and_skip_the_misdemeanors() {
        let report = sandbox("Walter", "White");
        let felony = report
            .checks
            .criminal
            .iter()
            .flatten()
            .flat_map(|c| &c.value)
            .find(|r| r.crime_type.as_deref() == Some("Felony"))
            .expect("felony");
        let convicted = report::parse_record_date(felony.conviction_date.as_deref().expect("date"))
            .expect("date");
        let d = decide(&report, &defaults());
        assert_eq!(d.status, Pending);
        assert_eq!(
            d.reasons[0],
            format!(
                "felony 'Manufacture of a controlled substance' on {} in Albuquerque County, within 7 years",
                report::iso_date(convicted)
            )
        );
        assert_eq!(d.reasons.len(), 3);
        assert!(
            d.reasons[1..].iter().all(
                |r| r.starts_with("misdemeanor") && r.ends_with("misdemeanors are not counted")
            ),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn samwise_is_approved_and_the_old_felony_is_explained() {
        let d = decide(&sandbox("Samwise", "Gamgee"), &defaults());
        assert_eq!(d.status, Approved);
        assert_eq!(d.reasons[0], "no reportable records");
        assert!(d.reasons.iter().any(|r| r.starts_with("felony 'Burglary")
            && r.ends_with("outside the 7-year lookback: not counted")));
    }

    #[test]
    fn darth_vader_counts_two_felonies_and_the_watchlist() {
        let d = decide(&sandbox("Darth", "Vader"), &defaults());
        assert_eq!(d.status, Pending);
        let within = d
            .reasons
            .iter()
            .filter(|r| r.ends_with("within 7 years"))
            .count();
        assert_eq!(within, 2, "{:?}", d.reasons);
        assert!(
            d.reasons
                .iter()
                .any(|r| r.starts_with("watchlist hit on 'OFAC SDN' for Darth Vader"))
        );
        assert!(d.reasons.iter().any(|r| r.contains("'Arson")
            && r.contains("in Other Counties")
            && r.ends_with("not counted")));
    }

    // --- each rule --------------------------------------------------------------------------

    #[test]
    fn felony_lookback_is_configurable() {
        let eleven = AdjudicationRules {
            felony_lookback_years: 11,
            ..defaults()
        };
        assert_eq!(status("Samwise", "Gamgee", &eleven), Pending);
        // Darth's newest felony was disposed of ~20 months ago: inside 2 years, outside 1, and
        // with no counting felony his watchlist hit decides.
        let two = AdjudicationRules {
            felony_lookback_years: 2,
            ..defaults()
        };
        assert_eq!(status("Darth", "Vader", &two), Pending);
        let one = AdjudicationRules {
            felony_lookback_years: 1,
            ..defaults()
        };
        assert_eq!(status("Darth", "Vader", &one), Review);
    }

    #[test]
    fn misdemeanor_lookback_is_configurable() {
        let three = AdjudicationRules {
            misdemeanor_lookback_years: 3,
            ..defaults()
        };
        assert_eq!(status("Samwise", "Gamgee", &three), Pending);
        let d = decide(&sandbox("Samwise", "Gamgee"), &three);
        assert!(d.reasons[0].starts_with("misdemeanor 'Criminal trespass'"));
        assert!(d.reasons[0].ends_with("within 3 years"));
        let one = AdjudicationRules {
            misdemeanor_lookback_years: 1,
            ..defaults()
        };
        assert_eq!(status("Samwise", "Gamgee", &one), Approved);
    }

    #[test]
    fn criminal_action_is_configurable() {
        for (action, want) in [
            (HitAction::Consider, Pending),
            (HitAction::Review, Review),
            (HitAction::ComplianceReview, ReviewQa),
            (HitAction::Ignore, Approved),
        ] {
            let rules = AdjudicationRules {
                criminal: action,
                ..defaults()
            };
            assert_eq!(status("Walter", "White", &rules), want, "{action:?}");
        }
        let ignore = AdjudicationRules {
            criminal: HitAction::Ignore,
            ..defaults()
        };
        let d = decide(&sandbox("Walter", "White"), &ignore);
        assert!(d.reasons[0].ends_with("within 7 years; ignored by the rules"));
        assert!(!d.reasons.iter().any(|r| r == "no reportable records"));
    }

    #[test]
    fn sex_offender_action_is_configurable() {
        for (action, want) in [
            (HitAction::Consider, Pending),
            (HitAction::Review, Review),
            (HitAction::ComplianceReview, ReviewSo),
            (HitAction::Ignore, Approved),
        ] {
            let rules = AdjudicationRules {
                sex_offender: action,
                ..defaults()
            };
            assert_eq!(status("Pat", "Registry", &rules), want, "{action:?}");
        }
        let d = decide(&sandbox("Pat", "Registry"), &defaults());
        assert_eq!(d.reasons.len(), 1);
        assert!(
            d.reasons[0].starts_with("sex-offender registry hit in NM (Sexual battery), record ")
        );
    }

    #[test]
    fn watchlist_action_is_configurable() {
        for (action, want) in [
            (HitAction::Consider, Pending),
            (HitAction::Review, Review),
            (HitAction::ComplianceReview, ReviewQa),
            (HitAction::Ignore, Approved),
        ] {
            let rules = AdjudicationRules {
                watchlist: action,
                ..defaults()
            };
            assert_eq!(status("Pat", "Wanted", &rules), want, "{action:?}");
        }
        let d = decide(&sandbox("Pat", "Wanted"), &defaults());
        assert!(d.reasons[0].starts_with("watchlist hit on 'Most Wanted' for Pat Wanted"));
    }

    #[test]
    fn the_mvr_matrix_can_be_switched_off() {
        let off = AdjudicationRules {
            mvr_matrix: false,
            ..defaults()
        };
        for last in ["Speedwell", "Crash", "Reckless"] {
            assert_eq!(status("Pat", last, &off), Approved, "{last}");
        }
    }

    #[test]
    fn mvr_reasons_read_the_matrix() {
        let d = decide(&sandbox("Pat", "Speedwell"), &defaults());
        assert_eq!(
            d.reasons,
            [
                "MVR: 3 moving violations, 1 at-fault accident, no major violation: acceptable (borderline)"
            ]
        );
        let d = decide(&sandbox("Pat", "Crash"), &defaults());
        assert_eq!(
            d.reasons,
            ["MVR: 2 moving violations, 3 at-fault accidents, no major violation: unacceptable"]
        );
        let d = decide(&sandbox("Pat", "Reckless"), &defaults());
        assert_eq!(
            d.reasons,
            [
                "MVR: 1 moving violation, 0 at-fault accidents, major violation A20: unacceptable (borderline)"
            ]
        );
    }

    #[test]
    fn an_invalid_licence_or_an_action_in_force_goes_to_mvr_review() {
        let today = today();
        let clear = sandbox("Ada", "Lovelace");
        assert_eq!(decide(&clear, &defaults()).status, Approved);
        let mut invalid = clear.clone();
        if let Some(m) = invalid.checks.mvr.as_mut() {
            m.licenses[0].has_valid_status = false;
        }
        let d = decide(&invalid, &defaults());
        assert_eq!(d.status, ReviewMvr);
        assert!(
            d.reasons[0].contains("licence is not valid"),
            "{:?}",
            d.reasons
        );
        // A suspension: in force without an end, or with one still to come; not once ended.
        let suspension = |end: Option<NaiveDate>| {
            let mut r = clear.clone();
            if let Some(m) = r.checks.mvr.as_mut() {
                m.actions.push(MvrAction {
                    action_type: Some("Suspension".into()),
                    action_code: Some("OSWI".into()),
                    start_date: Some(report::iso_date(today - chrono::Duration::days(100))),
                    end_date: end.map(report::iso_date),
                    ..MvrAction::default()
                });
            }
            decide(&r, &defaults())
        };
        let open = suspension(None);
        assert_eq!(open.status, ReviewMvr);
        assert!(
            open.reasons[0].starts_with("MVR: Suspension (OSWI) on the licence since"),
            "{:?}",
            open.reasons
        );
        assert_eq!(
            suspension(Some(today + chrono::Duration::days(30))).status,
            ReviewMvr
        );
        assert_eq!(
            suspension(Some(today - chrono::Duration::days(1))).status,
            Approved
        );
        // A reinstatement or a warning letter has no end date and restricts nothing.
        for kind in ["Reinstatement", "Warning letter"] {
            let mut r = clear.clone();
            if let Some(m) = r.checks.mvr.as_mut() {
                m.actions.push(MvrAction {
                    action_type: Some(kind.into()),
                    start_date: Some(report::iso_date(today - chrono::Duration::days(10))),
                    ..MvrAction::default()
                });
            }
            assert_eq!(decide(&r, &defaults()).status, Approved, "{kind}");
        }
        // The action's own words decide, the first text naming a kind, and within it the first
        // word: a suspension whose description mentions its reinstatement still restricts.
        let described = |kind: Option<&str>, description: &str| {
            let mut r = clear.clone();
            if let Some(m) = r.checks.mvr.as_mut() {
                m.actions.push(MvrAction {
                    action_type: kind.map(Into::into),
                    descriptions: vec![report::MvrDescription {
                        short_description: Some(description.into()),
                        ..report::MvrDescription::default()
                    }],
                    ..MvrAction::default()
                });
            }
            decide(&r, &defaults()).status
        };
        assert_eq!(
            described(None, "Suspended until reinstatement fee paid"),
            ReviewMvr
        );
        assert_eq!(
            described(Some("SUSPENSION"), "Failure to clear citation"),
            ReviewMvr
        );
        assert_eq!(described(Some("Warning"), "Suspension avoided"), Approved);
        assert_eq!(described(None, "Reinstatement after suspension"), Approved);
        assert_eq!(
            described(Some("Points assessed"), "No further action"),
            ReviewMvr,
            "an action it cannot name is looked at"
        );
        // Not graded by the matrix, the licence still counts.
        let rules = AdjudicationRules {
            mvr_matrix: false,
            ..defaults()
        };
        assert_eq!(decide(&invalid, &rules).status, ReviewMvr);
    }

    #[test]
    fn an_acceptable_mvr_with_a_violation_is_noted_not_counted() {
        let mut report = sandbox("Ada", "Lovelace");
        if let Some(m) = report.checks.mvr.as_mut() {
            m.violations.push(violation("S92"));
        }
        let d = decide(&report, &defaults());
        assert_eq!(d.status, Approved);
        assert_eq!(
            d.reasons,
            [
                "no reportable records",
                "MVR: 1 moving violation, 0 at-fault accidents, no major violation: acceptable"
            ]
        );
    }

    // --- identity ---------------------------------------------------------------------------

    #[test]
    fn identity_mismatch_comes_first() {
        let d = decide(&sandbox("Pat", "Mismatch"), &defaults());
        assert_eq!(d.status, ReviewIdentity);
        assert_eq!(d.reasons.len(), 3);
        assert!(d.reasons[0].contains("ssn_status 'not_matched'"));
        assert!(d.reasons[1].contains("name_status 'not_matched'"));
        assert!(d.reasons[2].contains("dob_status 'not_matched'"));

        // Even with hits elsewhere in the report, identity wins.
        let mut report = sandbox("Darth", "Vader");
        report.checks.ssn_status = Some("mismatch".into());
        assert_eq!(decide(&report, &defaults()).status, ReviewIdentity);
    }

    #[test]
    fn a_resumed_mismatch_is_adjudicated_normally() {
        let mut req = sandbox_request("Pat", "Mismatch");
        req.identity_override = true;
        assert_eq!(decide(&run(&req), &defaults()).status, Approved);
    }

    #[test]
    fn an_invalid_or_deceased_ssn_or_an_unmatched_birth_date_is_an_identity_question() {
        let clear = || sandbox("Ada", "Lovelace");
        let mut invalid = clear();
        invalid.checks.ssn = Some(serde_json::json!({"status": "Invalid", "is_deceased": false}));
        let d = decide(&invalid, &defaults());
        assert_eq!(d.status, ReviewIdentity);
        assert_eq!(d.reasons.len(), 1, "{:?}", d.reasons);
        assert!(d.reasons[0].contains("never issued"), "{:?}", d.reasons);
        let mut deceased = clear();
        deceased.checks.ssn = Some(serde_json::json!({"status": "valid", "is_deceased": true}));
        assert_eq!(decide(&deceased, &defaults()).status, ReviewIdentity);
        let mut valid = clear();
        valid.checks.ssn = Some(serde_json::json!({"status": "valid", "is_deceased": false}));
        assert_eq!(decide(&valid, &defaults()).status, Approved);
        let mut dob = clear();
        dob.checks.dob_status = Some("NOT_MATCHED".into());
        assert_eq!(decide(&dob, &defaults()).status, ReviewIdentity);
        let mut upper = clear();
        upper.checks.ssn_status = Some("Mismatch".into());
        assert_eq!(decide(&upper, &defaults()).status, ReviewIdentity);
    }

    #[test]
    fn a_confirmed_identity_is_noted_and_the_rest_decides() {
        // A provider that reports the mismatch again after "resume checks": the team member's
        // word stands, the other findings decide, and the mismatch stays among the reasons.
        let held = [
            "identity: the SSN does not match public records (ssn_status 'mismatch')".to_string(),
        ];
        let mut report = sandbox("Walter", "White");
        report.checks.ssn_status = Some("not_matched".into());
        let d = adjudicate(&report, &defaults(), today(), &held);
        assert_eq!(d.status, Pending);
        assert!(
            d.reasons.iter().any(|r| r.contains("felony")),
            "{:?}",
            d.reasons
        );
        assert!(
            d.reasons
                .iter()
                .any(|r| r.contains("ssn_status 'not_matched'") && r.contains("confirmed")),
            "{:?}",
            d.reasons
        );
        let mut clear = sandbox("Ada", "Lovelace");
        clear.checks.ssn_status = Some("mismatch".into());
        let d = adjudicate(&clear, &defaults(), today(), &held);
        assert_eq!(d.status, Approved);
        assert_eq!(d.reasons[0], "no reportable records");
        // The word given was about the SSN's match: a death record the resumed searches found
        // holds the check again, for that alone.
        clear.checks.ssn = Some(serde_json::json!({"status": "valid", "is_deceased": true}));
        let d = adjudicate(&clear, &defaults(), today(), &held);
        assert_eq!(d.status, ReviewIdentity);
        assert_eq!(d.reasons.len(), 1, "{:?}", d.reasons);
        assert!(d.reasons[0].contains("deceased"), "{:?}", d.reasons);
    }

    #[test]
    fn name_not_matched_needs_an_ssn_trace() {
        let mut report = sandbox("Ada", "Lovelace");
        report.checks.name_status = Some("not_matched".into());
        assert_eq!(decide(&report, &defaults()).status, ReviewIdentity);
        // Turn's own example reports a trace (an `ssn` object) with `ssn_status` "none": the
        // trace ran, so the name's mismatch holds.
        report.checks.ssn_status = Some("none".into());
        report.checks.ssn = Some(serde_json::json!({"number": "*****6789", "status": "valid"}));
        assert_eq!(decide(&report, &defaults()).status, ReviewIdentity);
        // The seed's example: no SSN traced ("none", no `ssn`), so the name status alone
        // decides nothing, and neither does a report without a trace at all.
        report.checks.ssn = None;
        assert_eq!(decide(&report, &defaults()).status, Approved);
        report.checks.ssn_status = None;
        assert_eq!(decide(&report, &defaults()).status, Approved);
    }

    // --- severity ---------------------------------------------------------------------------

    #[test]
    fn severity_orders_pending_then_reviews_then_approved() {
        let order = [
            Pending, ReviewSo, ReviewQa, ReviewMvr, ReviewCm, Review, Approved,
        ];
        for pair in order.windows(2) {
            assert!(severity(pair[0]) > severity(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn the_most_severe_finding_wins_and_every_reason_is_kept() {
        let mut report = sandbox("Pat", "Speedwell"); // review__mvr
        let wanted = sandbox("Pat", "Wanted"); // review
        let registry = sandbox("Pat", "Registry"); // review__so
        report.checks.watchlist = wanted.checks.watchlist.clone();
        let d = decide(&report, &defaults());
        assert_eq!(
            d.status, ReviewMvr,
            "compliance queue over the partner's review"
        );
        assert_eq!(d.reasons.len(), 2);

        report.checks.sex_offender = registry.checks.sex_offender.clone();
        let d = decide(&report, &defaults());
        assert_eq!(d.status, ReviewSo);
        assert_eq!(d.reasons.len(), 3);

        report.checks.criminal = sandbox("Walter", "White").checks.criminal;
        let d = decide(&report, &defaults());
        assert_eq!(d.status, Pending);
        assert_eq!(d.reasons.len(), 6, "{:?}", d.reasons);

        // A watchlist hit under compliance review outranks a borderline MVR too.
        let mut report = sandbox("Pat", "Speedwell");
        report.checks.watchlist = wanted.checks.watchlist;
        let rules = AdjudicationRules {
            watchlist: HitAction::ComplianceReview,
            ..defaults()
        };
        assert_eq!(decide(&report, &rules).status, ReviewQa);
    }

    // --- lookback boundaries ------------------------------------------------------------------

    fn record(crime_type: &str, offense: Option<NaiveDate>) -> CriminalRecord {
        CriminalRecord {
            id: "rec".into(),
            crime_type: Some(crime_type.into()),
            offense_description_1: Some("Test offense".into()),
            offense_date: offense.map(report::record_date),
            ..CriminalRecord::default()
        }
    }

    fn with_records(records: Vec<CriminalRecord>) -> Report {
        Report {
            checks: report::Checks {
                criminal: Some(vec![CountyCriminal {
                    county: "Test County".into(),
                    value: records,
                    status: "ready".into(),
                    clear_eta: None,
                    hit_eta: None,
                }]),
                ..report::Checks::default()
            },
            ..Report::default()
        }
    }

    fn decide_on(
        records: Vec<CriminalRecord>,
        rules: &AdjudicationRules,
        today: NaiveDate,
    ) -> Decision {
        adjudicate(&with_records(records), rules, today, &[])
    }

    #[test]
    fn felony_lookback_boundary_day_counts_and_the_day_before_does_not() {
        let today = date(2026, 3, 14);
        let rules = defaults();
        let on_boundary = decide_on(
            vec![record("Felony", Some(date(2019, 3, 14)))],
            &rules,
            today,
        );
        assert_eq!(on_boundary.status, Pending);
        assert_eq!(
            on_boundary.reasons,
            ["felony 'Test offense' on 2019-03-14 in Test County, within 7 years"]
        );
        let day_before = decide_on(
            vec![record("Felony", Some(date(2019, 3, 13)))],
            &rules,
            today,
        );
        assert_eq!(day_before.status, Approved);
        assert_eq!(
            day_before.reasons,
            [
                "no reportable records",
                "felony 'Test offense' on 2019-03-13 in Test County, outside the 7-year lookback: not counted"
            ]
        );
    }

    #[test]
    fn lookback_from_a_leap_day() {
        let today = date(2028, 2, 29);
        let rules = AdjudicationRules {
            felony_lookback_years: 1,
            ..defaults()
        };
        assert_eq!(
            decide_on(
                vec![record("Felony", Some(date(2027, 2, 28)))],
                &rules,
                today
            )
            .status,
            Pending
        );
        assert_eq!(
            decide_on(
                vec![record("Felony", Some(date(2027, 2, 27)))],
                &rules,
                today
            )
            .status,
            Approved
        );
    }

    #[test]
    fn misdemeanor_lookback_boundary() {
        let today = date(2026, 3, 14);
        let rules = AdjudicationRules {
            misdemeanor_lookback_years: 2,
            ..defaults()
        };
        let d = decide_on(
            vec![record("Misdemeanor", Some(date(2024, 3, 14)))],
            &rules,
            today,
        );
        assert_eq!(d.status, Pending);
        assert_eq!(
            d.reasons,
            ["misdemeanor 'Test offense' on 2024-03-14 in Test County, within 2 years"]
        );
        let d = decide_on(
            vec![record("Misdemeanor", Some(date(2024, 3, 13)))],
            &rules,
            today,
        );
        assert_eq!(d.status, Approved);
        // 0 years: never, not even yesterday's.
        let d = decide_on(
            vec![record("Misdemeanor", Some(date(2026, 3, 13)))],
            &defaults(),
            today,
        );
        assert_eq!(d.status, Approved);
    }

    #[test]
    fn infractions_never_count() {
        let today = date(2026, 3, 14);
        let rules = AdjudicationRules {
            misdemeanor_lookback_years: 50,
            felony_lookback_years: 50,
            ..defaults()
        };
        let d = decide_on(vec![record("Infraction", Some(today))], &rules, today);
        assert_eq!(d.status, Approved);
        assert!(d.reasons[1].ends_with("infractions are not counted"));
    }

    #[test]
    fn the_latest_court_date_is_measured() {
        let today = date(2026, 3, 14);
        let mut r = record("Felony", Some(date(2010, 1, 1)));
        r.disposition_date = Some(report::record_date(date(2020, 6, 1)));
        let d = decide_on(vec![r], &defaults(), today);
        assert_eq!(d.status, Pending);
        assert_eq!(
            d.reasons,
            ["felony 'Test offense' on 2020-06-01 in Test County, within 7 years"]
        );
    }

    #[test]
    fn a_recent_filing_or_arrest_makes_an_old_offense_recent() {
        let today = date(2026, 3, 14);
        let mut filed = record("Felony", Some(date(2018, 1, 15)));
        filed.disposition = Some("Pending".into());
        filed.charges_filed_date = Some(report::record_date(date(2025, 6, 1)));
        let d = decide_on(vec![filed], &defaults(), today);
        assert_eq!(d.status, Pending);
        assert_eq!(
            d.reasons,
            ["felony 'Test offense' on 2025-06-01 in Test County, within 7 years"]
        );
        let mut arrested = record("Felony", Some(date(2018, 1, 15)));
        arrested.arrest_date = Some(report::record_date(date(2024, 2, 1)));
        assert_eq!(
            decide_on(vec![arrested], &defaults(), today).status,
            Pending
        );
    }

    #[test]
    fn a_crime_type_in_the_providers_words_is_classed_by_its_word() {
        let today = date(2026, 3, 14);
        // Two years old: counted as a felony (7 years), not as a misdemeanor (off by default).
        for (crime_type, status) in [
            ("Gross Misdemeanor", Approved),
            ("Misdemeanor - Class A", Approved),
            ("Traffic Infraction", Approved),
            ("Felony 3rd Degree", Pending),
            ("Felony reduced to misdemeanor", Pending),
            ("Unknown", Pending),
        ] {
            let d = decide_on(
                vec![record(crime_type, Some(date(2024, 3, 1)))],
                &defaults(),
                today,
            );
            assert_eq!(d.status, status, "{crime_type}: {:?}", d.reasons);
        }
    }

    #[test]
    fn a_case_ended_without_a_conviction_is_noted_not_counted() {
        let today = date(2026, 3, 14);
        for disposition in [
            "Dismissed",
            "NOT GUILTY",
            "Nolle Prosequi",
            "Acquitted by jury",
            "Conviction vacated",
            "Expunged - conviction set aside",
            "Pled not guilty - acquitted",
            "Plea of not guilty; case dismissed",
            "Guilty - reversed on appeal",
        ] {
            let mut r = record("Felony", Some(date(2025, 1, 1)));
            r.disposition = Some(disposition.into());
            let d = decide_on(vec![r], &defaults(), today);
            assert_eq!(d.status, Approved, "{disposition}");
            assert!(
                d.reasons.iter().any(|n| n.ends_with(&format!(
                    "disposition '{disposition}' is not a conviction: not counted"
                ))),
                "{:?}",
                d.reasons
            );
        }
        for disposition in [
            "Guilty",
            "Pending",
            "Convicted - plea",
            "Guilty - counts 2-3 dismissed",
            "Pled guilty to count 1; count 2 nolle prosequi",
            "Pled not guilty; found guilty by jury",
            "Plea of not guilty",
        ] {
            let mut r = record("Felony", Some(date(2025, 1, 1)));
            r.disposition = Some(disposition.into());
            assert_eq!(
                decide_on(vec![r], &defaults(), today).status,
                Pending,
                "{disposition}"
            );
        }
    }

    #[test]
    fn undated_and_unclassified_records_are_not_waved_through() {
        let today = date(2026, 3, 14);
        let d = decide_on(vec![record("Felony", None)], &defaults(), today);
        assert_eq!(d.status, Pending);
        assert!(d.reasons[0].contains("undated"));
        let mut unclassified = record("Felony", Some(date(2024, 1, 1)));
        unclassified.crime_type = None;
        let d = decide_on(vec![unclassified], &defaults(), today);
        assert_eq!(d.status, Pending);
        assert!(d.reasons[0].starts_with("unclassified record 'Test offense'"));
        // A record's own county wins over the search's.
        let mut r = record("FELONY", Some(date(2025, 1, 1)));
        r.county = Some("Cook County".into());
        let d = decide_on(vec![r], &defaults(), today);
        assert_eq!(
            d.reasons,
            ["felony 'Test offense' on 2025-01-01 in Cook County, within 7 years"]
        );
    }

    #[test]
    fn a_county_recheck_hit_counts_under_default_rules() {
        let p = SandboxProvider::new(Duration::ZERO);
        let req = sandbox_request("Ada", "Lovelace");
        let alert = crate::screening::provider::ArrestAlert {
            county: "Bernalillo County".into(),
            state: "NM".into(),
            arrested_on: date(2026, 3, 1),
            charge_filed: true,
        };
        let records = p.run_county_recheck(&req.subject, &alert);
        let d = decide_on(records, &defaults(), today());
        assert_eq!(d.status, Pending);
        assert_eq!(
            d.reasons,
            ["felony 'Aggravated assault' on 2026-03-01 in Bernalillo County, within 7 years"]
        );
    }
}
