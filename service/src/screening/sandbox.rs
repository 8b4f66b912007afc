//! The sandbox screening provider: deterministic reports chosen by the candidate's name, so
//! partners (and our tests) can drive every adjudication path without a live provider. Same
//! request, same report: ids come from sha256 of the candidate id, dates from `req.requested_at`, and
//! nothing reads the system clock or a random source.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Months, NaiveDate, TimeDelta, Utc};
use entity::SearchKind;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::screening::provider::{
    ArrestAlert, BoxFut, Provider, SearchOutcome, SearchRequest, Subject,
};
use crate::screening::report::{
    self, Address, Checks, CountyCriminal, CriminalRecord, CurrentAddress, Mvr, MvrAccident,
    MvrDescription, MvrDriver, MvrLicense, MvrSubViolation, MvrViolation, Report,
    SexOffenderRecord, WatchlistAddress, WatchlistName, WatchlistRecord,
};

/// The sandbox's scenarios, for the README. A key of two words is a first and last name; a key
/// `* Name` matches that last name with any first name. Matching ignores case and surrounding
/// spaces, and a full-name key wins over a last-name key.
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "Darth Vader",
        "Turn test identity. Three felonies: aggravated assault ~2 years ago and conspiracy ~6 \
         years ago in the candidate's county, arson ~12 years ago in Other Counties; plus an \
         OFAC SDN watchlist hit.",
    ),
    (
        "Walter White",
        "Turn test identity. Felony 'Manufacture of a controlled substance' convicted ~1 year \
         ago, plus misdemeanors (drug paraphernalia ~3 years ago, driving on a suspended licence \
         ~5 years ago).",
    ),
    (
        "Samwise Gamgee",
        "Turn test identity. Felony burglary ~10 years ago and misdemeanor trespassing ~2 years \
         ago: default rules approve him (felony outside the 7-year lookback, misdemeanors not \
         counted).",
    ),
    (
        "* Mismatch",
        "SSN trace: SSN and name do not match public records (ssn_status, name_status and \
         dob_status 'not_matched', public_provided_name 'No Name Found'); no other search runs \
         (criminal, mvr, sex_offender, watchlist are null). After 'resume checks' (identity_override) the whole report is \
         clear. Needs the SSN trace in the package; without it the report is clear.",
    ),
    (
        "* Speedwell",
        "MVR: 3 moving violations and 1 at-fault accident (matrix: acceptable, borderline).",
    ),
    (
        "* Crash",
        "MVR: 2 moving violations and 3 at-fault accidents (matrix: unacceptable).",
    ),
    (
        "* Reckless",
        "MVR: one major violation, DUI (acd_code A20) (matrix: unacceptable, borderline).",
    ),
    ("* Registry", "Sex-offender registry hit."),
    ("* Wanted", "Watchlist hit, source 'Most Wanted'."),
    (
        "* Slowpoke",
        "Clear, but every search takes 2 minutes longer than the configured latency.",
    ),
    (
        "anyone else",
        "Clear: addresses from the candidate, name/DOB/SSN 'matched', no records; with MVR in \
         the package a valid licence and no violations or accidents. Every search answers \
         'not ready' until requested_at + latency.",
    ),
];

/// The extra time the Slowpoke scenario takes.
const SLOWPOKE_DELAY_SECS: i64 = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Clear,
    DarthVader,
    WalterWhite,
    SamwiseGamgee,
    Mismatch,
    Speedwell,
    Crash,
    Reckless,
    Registry,
    Wanted,
    Slowpoke,
}

/// Same keys as [`SCENARIOS`] (a test keeps them in step).
const KEYED: &[(&str, Scenario)] = &[
    ("Darth Vader", Scenario::DarthVader),
    ("Walter White", Scenario::WalterWhite),
    ("Samwise Gamgee", Scenario::SamwiseGamgee),
    ("* Mismatch", Scenario::Mismatch),
    ("* Speedwell", Scenario::Speedwell),
    ("* Crash", Scenario::Crash),
    ("* Reckless", Scenario::Reckless),
    ("* Registry", Scenario::Registry),
    ("* Wanted", Scenario::Wanted),
    ("* Slowpoke", Scenario::Slowpoke),
];

fn scenario_of(subject: &Subject) -> Scenario {
    let first = subject.first_name.trim().to_lowercase();
    let last = subject.last_name.trim().to_lowercase();
    let full_name_hit = KEYED.iter().find(|(key, _)| {
        !key.starts_with("* ")
            && key
                .split_once(' ')
                .is_some_and(|(f, l)| f.to_lowercase() == first && l.to_lowercase() == last)
    });
    let last_name_hit = || {
        KEYED.iter().find(|(key, _)| {
            key.strip_prefix("* ")
                .is_some_and(|l| l.to_lowercase() == last)
        })
    };
    full_name_hit
        .or_else(last_name_hit)
        .map_or(Scenario::Clear, |(_, s)| *s)
}

pub struct SandboxProvider {
    latency: std::time::Duration,
}

impl SandboxProvider {
    pub fn new(latency: std::time::Duration) -> Self {
        Self { latency }
    }

    /// When the searches of `req` are ready.
    pub fn ready_at(&self, req: &SearchRequest) -> anyhow::Result<DateTime<Utc>> {
        let mut delay = TimeDelta::from_std(self.latency)
            .map_err(|_| anyhow::anyhow!("sandbox latency {:?} is out of range", self.latency))?;
        if scenario_of(&req.subject) == Scenario::Slowpoke {
            delay = delay
                .checked_add(&TimeDelta::seconds(SLOWPOKE_DELAY_SECS))
                .ok_or_else(|| anyhow::anyhow!("sandbox latency is out of range"))?;
        }
        req.requested_at
            .checked_add_signed(delay)
            .ok_or_else(|| anyhow::anyhow!("sandbox ready time is out of range"))
    }

    /// [`Provider::search`] without the future, for callers and tests that are not async.
    pub fn run_search(&self, req: &SearchRequest) -> anyhow::Result<SearchOutcome> {
        let eta = self.ready_at(req)?;
        if req.now < eta {
            return Ok(SearchOutcome::NotReady { eta });
        }
        Ok(SearchOutcome::Ready(build_report(req)))
    }

    /// [`Provider::county_recheck`] without the future.
    pub fn run_county_recheck(
        &self,
        subject: &Subject,
        alert: &ArrestAlert,
    ) -> Vec<CriminalRecord> {
        if !alert.charge_filed {
            return Vec::new();
        }
        let ids = Ids::new(&subject.candidate_id);
        let label = format!(
            "recheck:{}:{}:{}",
            alert.state, alert.county, alert.arrested_on
        );
        let day = report::record_date(alert.arrested_on);
        vec![CriminalRecord {
            id: ids.text(&label, 0),
            case_number: Some(format!("CM-{}", ids.num(&label, 0) % 1_000_000)),
            county: Some(alert.county.clone()),
            suspect_county: Some(alert.county.clone()),
            suspect_state: Some(alert.state.clone()),
            crime_type: Some("Felony".into()),
            offense_description_1: Some("Aggravated assault".into()),
            offense_date: Some(day.clone()),
            arrest_date: Some(day.clone()),
            charges_filed_date: Some(day),
            disposition: Some("Pending".into()),
            ..matched_record(subject)
        }]
    }
}

impl Provider for SandboxProvider {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn search<'a>(&'a self, req: &'a SearchRequest) -> BoxFut<'a, SearchOutcome> {
        Box::pin(async move { self.run_search(req) })
    }

    fn county_recheck<'a>(
        &'a self,
        subject: &'a Subject,
        alert: &'a ArrestAlert,
        _now: DateTime<Utc>,
    ) -> BoxFut<'a, Vec<CriminalRecord>> {
        Box::pin(async move { Ok(self.run_county_recheck(subject, alert)) })
    }
}

/// Stable ids: sha256 of the candidate id, a label (so two kinds of record never share an id)
/// and the record's index.
struct Ids<'a> {
    candidate_id: &'a str,
}

impl<'a> Ids<'a> {
    fn new(candidate_id: &'a str) -> Self {
        Self { candidate_id }
    }

    fn digest(&self, label: &str, index: usize) -> [u8; 32] {
        Sha256::digest(format!("{}:{label}:{index}", self.candidate_id).as_bytes()).into()
    }

    /// 32 base64url characters, like the seed's record ids.
    fn text(&self, label: &str, index: usize) -> String {
        URL_SAFE_NO_PAD.encode(&self.digest(label, index)[..24])
    }

    fn num(&self, label: &str, index: usize) -> i64 {
        let d = self.digest(label, index);
        i64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & 0x7fff_ffff)
    }

    /// The seed's `hash` fields are decimal 64-bit numbers.
    fn hash(&self, label: &str, index: usize) -> String {
        let d = self.digest(label, index);
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]).to_string()
    }
}

fn months_before(day: NaiveDate, months: u32) -> NaiveDate {
    day.checked_sub_months(Months::new(months))
        .unwrap_or(NaiveDate::MIN)
}

fn non_blank(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The sandbox has no county lookup, so the candidate's county is named after their city.
fn home_county(subject: &Subject) -> String {
    non_blank(&subject.city).map_or_else(
        || report::OTHER_COUNTIES.to_owned(),
        |c| report::county_name(&c),
    )
}

fn iso(d: Option<NaiveDate>) -> Option<String> {
    d.map(report::iso_date)
}

/// Every field a name-and-DOB match fills, for a record about this subject.
fn matched_record(subject: &Subject) -> CriminalRecord {
    let matched = || Some(report::EXACT_MATCH.to_owned());
    CriminalRecord {
        first_name_match: matched(),
        last_name_match: matched(),
        middle_name_match: subject.middle_name.as_ref().and_then(|_| matched()),
        date_of_birth_match: subject.date_of_birth.and_then(|_| matched()),
        address_match: non_blank(&subject.address).and_then(|_| matched()),
        suspect_first_name: Some(subject.first_name.clone()),
        suspect_middle_name: non_blank(&subject.middle_name),
        suspect_last_name: Some(subject.last_name.clone()),
        ..CriminalRecord::default()
    }
}

struct Offense {
    felony: bool,
    description: &'static str,
    /// Months before `now` of the offense and of the guilty disposition.
    offense_months_ago: u32,
    disposed_months_ago: u32,
    /// Found in national databases rather than the candidate's county.
    other_county: bool,
}

const fn offense(
    felony: bool,
    description: &'static str,
    offense_months_ago: u32,
    disposed_months_ago: u32,
    other_county: bool,
) -> Offense {
    Offense {
        felony,
        description,
        offense_months_ago,
        disposed_months_ago,
        other_county,
    }
}

const DARTH_VADER: &[Offense] = &[
    offense(
        true,
        "Aggravated assault with a deadly weapon",
        24,
        20,
        false,
    ),
    offense(true, "Conspiracy to commit murder", 74, 72, false),
    offense(true, "Arson of an occupied structure", 146, 144, true),
];
const WALTER_WHITE: &[Offense] = &[
    offense(true, "Manufacture of a controlled substance", 14, 12, false),
    offense(false, "Possession of drug paraphernalia", 37, 36, false),
    offense(false, "Driving while license suspended", 61, 60, false),
];
const SAMWISE_GAMGEE: &[Offense] = &[
    offense(true, "Burglary in the second degree", 122, 120, false),
    offense(false, "Criminal trespass", 24, 23, false),
];

fn offenses(scenario: Scenario) -> &'static [Offense] {
    match scenario {
        Scenario::DarthVader => DARTH_VADER,
        Scenario::WalterWhite => WALTER_WHITE,
        Scenario::SamwiseGamgee => SAMWISE_GAMGEE,
        _ => &[],
    }
}

fn criminal_search(
    subject: &Subject,
    ids: &Ids,
    today: NaiveDate,
    scenario: Scenario,
) -> Vec<CountyCriminal> {
    let home = home_county(subject);
    let mut counties = vec![CountyCriminal {
        county: home.clone(),
        value: Vec::new(),
        status: report::READY.into(),
        clear_eta: None,
        hit_eta: None,
    }];
    for (i, o) in offenses(scenario).iter().enumerate() {
        let (county, state) = if o.other_county {
            (report::OTHER_COUNTIES.to_owned(), Some("NV".to_owned()))
        } else {
            (home.clone(), non_blank(&subject.state))
        };
        let disposed = report::record_date(months_before(today, o.disposed_months_ago));
        let record = CriminalRecord {
            id: ids.text("criminal", i),
            case_number: Some((ids.num("criminal", i) % 100_000).to_string()),
            county: Some(county.clone()),
            suspect_state: state,
            crime_type: Some(if o.felony { "Felony" } else { "Misdemeanor" }.into()),
            offense_description_1: Some(o.description.into()),
            offense_date: Some(report::record_date(months_before(
                today,
                o.offense_months_ago,
            ))),
            disposition: Some("Guilty".into()),
            disposition_date: Some(disposed.clone()),
            conviction_date: Some(disposed),
            ..matched_record(subject)
        };
        match counties.iter_mut().find(|c| c.county == county) {
            Some(c) => c.value.push(record),
            None => counties.push(CountyCriminal {
                county,
                value: vec![record],
                status: report::READY.into(),
                clear_eta: None,
                hit_eta: None,
            }),
        }
    }
    counties
}

struct Violation {
    acd_code: &'static str,
    description: &'static str,
    points: u32,
    months_ago: u32,
}

const fn violation(
    acd_code: &'static str,
    description: &'static str,
    points: u32,
    months_ago: u32,
) -> Violation {
    Violation {
        acd_code,
        description,
        points,
        months_ago,
    }
}

const SPEEDWELL: &[Violation] = &[
    violation(
        "S93",
        "Speeding 11 to 15 miles per hour over the limit",
        2,
        5,
    ),
    violation("M34", "Failure to obey a traffic signal", 2, 11),
    violation("M42", "Following too closely", 2, 19),
];
const CRASH: &[Violation] = &[
    violation(
        "S92",
        "Speeding 6 to 10 miles per hour over the limit",
        1,
        4,
    ),
    violation("M42", "Following too closely", 2, 9),
];
const RECKLESS: &[Violation] = &[violation(
    "A20",
    "Driving or operating a motor vehicle under the influence of alcohol or drugs",
    8,
    10,
)];

/// `(violations, at-fault accidents)` on the driving record.
fn driving_record(scenario: Scenario) -> (&'static [Violation], usize) {
    match scenario {
        Scenario::Speedwell => (SPEEDWELL, 1),
        Scenario::Crash => (CRASH, 3),
        Scenario::Reckless => (RECKLESS, 0),
        _ => (&[], 0),
    }
}

fn description(id: i64, text: &str) -> MvrDescription {
    MvrDescription {
        id,
        short_description: Some(text.to_owned()),
        state_description: Some(text.to_owned()),
        ..MvrDescription::default()
    }
}

fn mvr_search(subject: &Subject, ids: &Ids, today: NaiveDate, scenario: Scenario) -> Mvr {
    let record = ids.num("mvr", 0);
    let state = non_blank(&subject.drivers_license_state).or_else(|| non_blank(&subject.state));
    let (violation_specs, accident_count) = driving_record(scenario);
    let violations: Vec<MvrViolation> = violation_specs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let id = ids.num("mvr-violation", i);
            let sub_id = ids.num("mvr-sub-violation", i);
            let day = report::iso_date(months_before(today, v.months_ago));
            MvrViolation {
                id,
                mvr_record: Some(record),
                viol_type: Some("VIOL".into()),
                incident_date: Some(day.clone()),
                conviction_date: Some(day),
                sub_violations: vec![MvrSubViolation {
                    id: sub_id,
                    key: Some((sub_id % 10_000).to_string()),
                    acd_code: Some(v.acd_code.into()),
                    acd_code_description: Some(v.description.into()),
                    state_points: Some(v.points.to_string()),
                    code_source: Some("ACD".into()),
                    descriptions: vec![MvrDescription {
                        mvr_sub_violations: Some(sub_id),
                        ..description(ids.num("mvr-description", i), v.description)
                    }],
                    incident_num: Some("0".into()),
                    mvr_violation: Some(id),
                    ..MvrSubViolation::default()
                }],
                ..MvrViolation::default()
            }
        })
        .collect();
    let accidents: Vec<MvrAccident> = (0..accident_count)
        .map(|i| MvrAccident {
            id: ids.num("mvr-accident", i),
            mvr_record: Some(record),
            fault: Some(Value::Bool(true)),
            state: state.clone(),
            accident_details: Some("At-fault collision with property damage".into()),
            incident_date: Some(report::iso_date(months_before(
                today,
                7 + 6 * u32::try_from(i).unwrap_or(0),
            ))),
            ..MvrAccident::default()
        })
        .collect();
    let total_state_points = violation_specs.iter().map(|v| i64::from(v.points)).sum();
    let clear = violations.is_empty() && accidents.is_empty();
    Mvr {
        id: record,
        status: if clear { "clear" } else { "consider" }.into(),
        driver: Some(MvrDriver {
            id: record,
            first_name: Some(subject.first_name.clone()),
            middle_name: non_blank(&subject.middle_name),
            last_name: Some(subject.last_name.clone()),
            full_name: Some(subject.full_name()),
            dob: iso(subject.date_of_birth),
            age: subject
                .date_of_birth
                .and_then(|dob| today.years_since(dob))
                .map(i64::from),
            total_state_points,
            ..MvrDriver::default()
        }),
        licenses: vec![MvrLicense {
            id: ids.num("mvr-license", 0),
            mvr_record: Some(record),
            license_number: non_blank(&subject.drivers_license_number),
            state,
            license_type: Some("Personal".into()),
            type_description: Some("Class C: passenger vehicles".into()),
            classes: vec![Value::String("C".into())],
            issue_date: Some(report::iso_date(months_before(today, 60))),
            exp_date: today
                .checked_add_months(Months::new(36))
                .map(report::iso_date),
            original_issue: Some(report::iso_date(months_before(today, 120))),
            is_valid: true,
            has_valid_status: true,
            has_no_surrender_date: true,
            has_valid_exp_date: true,
            ..MvrLicense::default()
        }],
        violations,
        accidents,
        ..Mvr::default()
    }
}

fn watchlist_hit(
    subject: &Subject,
    ids: &Ids,
    source: &str,
    wanted_by: Option<&str>,
    offense: &str,
) -> WatchlistRecord {
    WatchlistRecord {
        id: ids.text("watchlist", 0),
        hash: Some(ids.hash("watchlist", 0)),
        source: Some(source.into()),
        wanted_by: wanted_by.map(str::to_owned),
        offense: Some(offense.into()),
        date_of_birth: iso(subject.date_of_birth),
        report_token: Some(subject.turn_id.clone()),
        dispute_status: Some("not_disputed".into()),
        full_name: Some(subject.full_name()),
        name: Some(WatchlistName {
            id: Some(ids.text("watchlist-name", 0)),
            hash: Some(ids.hash("watchlist-name", 0)),
            first_name: Some(subject.first_name.clone()),
            middle_name: non_blank(&subject.middle_name),
            last_name: Some(subject.last_name.clone()),
            ..WatchlistName::default()
        }),
        address: Some(WatchlistAddress {
            id: Some(ids.text("watchlist-address", 0)),
            hash: Some(ids.hash("watchlist-address", 0)),
            country_name: Some("United States".into()),
            state: non_blank(&subject.state),
            city: non_blank(&subject.city),
            zipcode: non_blank(&subject.zip),
            ..WatchlistAddress::default()
        }),
        ..WatchlistRecord::default()
    }
}

fn watchlist_search(subject: &Subject, ids: &Ids, scenario: Scenario) -> Vec<WatchlistRecord> {
    match scenario {
        Scenario::DarthVader => vec![watchlist_hit(
            subject,
            ids,
            "OFAC SDN",
            None,
            "Specially Designated Nationals list",
        )],
        Scenario::Wanted => vec![watchlist_hit(
            subject,
            ids,
            "Most Wanted",
            Some("FBI"),
            "Unlawful flight to avoid prosecution",
        )],
        _ => Vec::new(),
    }
}

fn sex_offender_search(subject: &Subject, ids: &Ids, scenario: Scenario) -> Vec<SexOffenderRecord> {
    if scenario != Scenario::Registry {
        return Vec::new();
    }
    vec![SexOffenderRecord {
        id: ids.text("sex-offender", 0),
        state: non_blank(&subject.state).or_else(|| Some("TN".into())),
        dispute_status: Some("not_disputed".into()),
        offense_description1: Some("Sexual battery".into()),
    }]
}

fn masked_ssn(ssn: &str) -> Option<String> {
    let digits: String = ssn.chars().filter(char::is_ascii_digit).collect();
    let last4 = digits.get(digits.len().checked_sub(4)?..)?;
    Some(format!("XXX-XX-{last4}"))
}

fn build_report(req: &SearchRequest) -> Report {
    let subject = &req.subject;
    let ids = Ids::new(&subject.candidate_id);
    // Dates are counted from the request, not from when it is polled, so one check's report
    // is the same whenever its searches finish.
    let today = req.requested_at.date_naive();
    let mut scenario = scenario_of(subject);
    let traced = req.runs(SearchKind::SsnTrace);
    // The trace runs before anything else; a mismatch stops the other searches until a team
    // member resumes them, which accepts the candidate's details as they are.
    let identity_failed = traced && scenario == Scenario::Mismatch && !req.identity_override;
    if scenario == Scenario::Mismatch {
        scenario = Scenario::Clear;
    }
    let full_name = subject.full_name();
    let has_address = [
        &subject.address,
        &subject.city,
        &subject.state,
        &subject.zip,
    ]
    .into_iter()
    .any(|f| non_blank(f).is_some());

    let mut checks = Checks {
        candidate_provided_name: Some(full_name.clone()),
        partner_provided_name: Some(full_name.clone()),
        candidate_provided_date_of_birth: iso(subject.date_of_birth),
        candidate_provided_ssn: subject.ssn.as_deref().and_then(masked_ssn),
        ..Checks::default()
    };
    let mut current_address = None;
    if identity_failed {
        checks.ssn_status = Some(report::NOT_MATCHED.into());
        checks.name_status = Some(report::NOT_MATCHED.into());
        checks.public_name_status = Some(report::NOT_MATCHED.into());
        checks.dob_status = Some(report::NOT_MATCHED.into());
        checks.public_provided_name = Some("No Name Found".into());
        checks.public_record_date_of_birth = Some(report::NO_RECORD_DATE_OF_BIRTH.into());
        checks.addresses = Some(Vec::new());
    } else if traced {
        // Nothing given, nothing traced: the seed's `none` for an SSN, and an empty status
        // (as in Turn's examples) for a date of birth.
        let status_of = |provided: bool, otherwise: &str| {
            Some(if provided { report::MATCHED } else { otherwise }.to_owned())
        };
        checks.ssn_status = status_of(subject.ssn.is_some(), report::NONE);
        checks.dob_status = status_of(subject.date_of_birth.is_some(), "");
        checks.name_status = Some(report::MATCHED.into());
        checks.public_name_status = Some(report::MATCHED.into());
        checks.public_provided_name = Some(full_name);
        checks.public_record_date_of_birth = iso(subject.date_of_birth);
        checks.addresses = Some(if has_address {
            vec![Address {
                address1: non_blank(&subject.address),
                // An address's county is a real one: none known without a city.
                county: non_blank(&subject.city).map(|c| report::county_name(&c)),
                state: non_blank(&subject.state),
                zip: non_blank(&subject.zip),
                city: non_blank(&subject.city),
                zip4: None,
            }]
        } else {
            Vec::new()
        });
        if has_address {
            current_address = Some(CurrentAddress {
                address1: non_blank(&subject.address),
                state: non_blank(&subject.state),
                zip: non_blank(&subject.zip),
                city: non_blank(&subject.city),
                last_seen: Some(report::iso_date(today)),
                ..CurrentAddress::default()
            });
        }
    }

    if !identity_failed {
        if req.runs(SearchKind::Criminal) {
            checks.criminal = Some(criminal_search(subject, &ids, today, scenario));
        }
        if req.runs(SearchKind::Mvr) {
            checks.mvr = Some(mvr_search(subject, &ids, today, scenario));
        }
        if req.runs(SearchKind::SexOffender) {
            checks.sex_offender = Some(sex_offender_search(subject, &ids, scenario));
        }
        if req.runs(SearchKind::Watchlist) {
            checks.watchlist = Some(watchlist_search(subject, &ids, scenario));
        }
    }

    Report {
        checks,
        current_address,
        license_number: non_blank(&subject.drivers_license_number),
        license_state: non_blank(&subject.drivers_license_state),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;

    const LATENCY: Duration = Duration::from_secs(30);

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0)
            .single()
            .expect("valid time")
            + TimeDelta::seconds(secs)
    }

    fn subject(first: &str, last: &str) -> Subject {
        Subject {
            candidate_id: format!("cand-{first}-{last}"),
            turn_id: "C1931414576".into(),
            first_name: first.into(),
            middle_name: None,
            last_name: last.into(),
            email: "someone@example.com".into(),
            date_of_birth: NaiveDate::from_ymd_opt(1984, 6, 10),
            ssn: Some("123456789".into()),
            zip: Some("87101".into()),
            city: Some("Albuquerque".into()),
            state: Some("NM".into()),
            address: Some("308 Negra Arroyo Lane".into()),
            drivers_license_number: Some("D1234567".into()),
            drivers_license_state: Some("NM".into()),
        }
    }

    fn request(first: &str, last: &str, searches: &[SearchKind]) -> SearchRequest {
        SearchRequest {
            subject: subject(first, last),
            searches: searches.to_vec(),
            requested_at: at(0),
            now: at(3600),
            identity_override: false,
        }
    }

    fn report_of(req: &SearchRequest) -> Report {
        match SandboxProvider::new(LATENCY).run_search(req) {
            Ok(SearchOutcome::Ready(r)) => r,
            other => panic!("expected a report, got {other:?}"),
        }
    }

    fn full(first: &str, last: &str) -> Report {
        report_of(&request(first, last, &SearchKind::ALL))
    }

    fn criminal(r: &Report) -> Vec<&CriminalRecord> {
        r.checks
            .criminal
            .as_ref()
            .expect("criminal ran")
            .iter()
            .flat_map(|c| &c.value)
            .collect()
    }

    fn count(records: &[&CriminalRecord], crime_type: &str) -> usize {
        records
            .iter()
            .filter(|r| r.crime_type.as_deref() == Some(crime_type))
            .count()
    }

    fn months_ago_of(r: &CriminalRecord, field: Option<&String>, today: NaiveDate) -> u32 {
        let d = report::parse_record_date(field.expect("dated")).expect("MM-DD-YYYY");
        assert!(d <= today, "{r:?}");
        let mut m = 0;
        while months_before(today, m + 1) >= d {
            m += 1;
        }
        m
    }

    #[test]
    fn every_documented_key_has_a_scenario_and_matches_case_insensitively() {
        let keys: Vec<&str> = SCENARIOS.iter().map(|(k, _)| *k).collect();
        let keyed: Vec<&str> = KEYED.iter().map(|(k, _)| *k).collect();
        assert_eq!(&keys[..keys.len() - 1], &keyed[..]);
        assert_eq!(keys.last(), Some(&"anyone else"));
        for (key, want) in KEYED {
            let (first, last) = match key.strip_prefix("* ") {
                Some(last) => ("Pat", last),
                None => key.split_once(' ').expect("first and last"),
            };
            for (f, l) in [
                (first.to_owned(), last.to_owned()),
                (first.to_uppercase(), last.to_lowercase()),
                (format!("  {first} "), format!(" {last}  ")),
            ] {
                assert_eq!(scenario_of(&subject(&f, &l)), *want, "{f} {l}");
            }
        }
        assert_eq!(scenario_of(&subject("Darth", "Maul")), Scenario::Clear);
        assert_eq!(scenario_of(&subject("Luke", "Vader")), Scenario::Clear);
        assert_eq!(scenario_of(&subject("Walter", "Crash")), Scenario::Crash);
    }

    #[test]
    fn not_ready_until_latency_has_passed() {
        let p = SandboxProvider::new(LATENCY);
        let mut req = request("Ada", "Lovelace", &SearchKind::ALL);
        for now in [at(0), at(29)] {
            req.now = now;
            assert_eq!(
                p.run_search(&req).expect("search"),
                SearchOutcome::NotReady { eta: at(30) }
            );
        }
        req.now = at(30);
        assert!(matches!(p.run_search(&req), Ok(SearchOutcome::Ready(_))));
    }

    #[test]
    fn slowpoke_takes_two_more_minutes() {
        let p = SandboxProvider::new(LATENCY);
        let mut req = request("Sam", "Slowpoke", &SearchKind::ALL);
        for now in [at(30), at(149)] {
            req.now = now;
            assert_eq!(
                p.run_search(&req).expect("search"),
                SearchOutcome::NotReady { eta: at(150) }
            );
        }
        req.now = at(150);
        let Ok(SearchOutcome::Ready(r)) = p.run_search(&req) else {
            panic!("ready at latency + 120 s");
        };
        assert_eq!(r, report_of(&request("Sam", "Slowpoke", &SearchKind::ALL)));
        assert!(criminal(&r).is_empty());
    }

    #[test]
    fn zero_latency_is_ready_at_once() {
        let p = SandboxProvider::new(Duration::ZERO);
        let mut req = request("Ada", "Lovelace", &SearchKind::ALL);
        req.now = req.requested_at;
        assert!(matches!(p.run_search(&req), Ok(SearchOutcome::Ready(_))));
    }

    #[test]
    fn a_report_is_the_same_whenever_it_is_polled() {
        let p = SandboxProvider::new(Duration::ZERO);
        let mut req = request("Walter", "White", &SearchKind::ALL);
        req.now = req.requested_at;
        let Ok(SearchOutcome::Ready(at_once)) = p.run_search(&req) else {
            panic!("ready at once");
        };
        // Polled two days later (a backlog, a restart): the dates still count from the request.
        req.now = req.requested_at + chrono::Duration::days(2);
        let Ok(SearchOutcome::Ready(later)) = p.run_search(&req) else {
            panic!("ready later");
        };
        assert_eq!(at_once, later);
    }

    #[test]
    fn anyone_else_is_clear_with_the_subjects_address() {
        let r = full("Ada", "Lovelace");
        let c = &r.checks;
        assert_eq!(c.ssn_status.as_deref(), Some("matched"));
        assert_eq!(c.name_status.as_deref(), Some("matched"));
        assert_eq!(c.dob_status.as_deref(), Some("matched"));
        assert_eq!(c.public_name_status.as_deref(), Some("matched"));
        assert_eq!(c.public_provided_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(c.candidate_provided_ssn.as_deref(), Some("XXX-XX-6789"));
        let addresses = c.addresses.as_ref().expect("traced");
        assert_eq!(addresses.len(), 1);
        assert_eq!(
            addresses[0].address1.as_deref(),
            Some("308 Negra Arroyo Lane")
        );
        assert_eq!(addresses[0].county.as_deref(), Some("Albuquerque County"));
        assert_eq!(addresses[0].zip.as_deref(), Some("87101"));
        let current = r.current_address.as_ref().expect("current address");
        assert_eq!(current.city.as_deref(), Some("Albuquerque"));

        let counties = c.criminal.as_ref().expect("criminal ran");
        assert_eq!(counties.len(), 1);
        assert_eq!(counties[0].county, "Albuquerque County");
        assert_eq!(counties[0].status, "ready");
        assert!(counties[0].value.is_empty());
        assert_eq!(c.sex_offender, Some(Vec::new()));
        assert_eq!(c.watchlist, Some(Vec::new()));

        let mvr = c.mvr.as_ref().expect("mvr ran");
        assert_eq!(mvr.status, "clear");
        assert!(mvr.violations.is_empty() && mvr.accidents.is_empty());
        assert_eq!(mvr.licenses.len(), 1);
        assert!(mvr.licenses[0].is_valid && mvr.licenses[0].has_valid_status);
        assert_eq!(mvr.licenses[0].license_number.as_deref(), Some("D1234567"));
        assert_eq!(r.license_number.as_deref(), Some("D1234567"));
        assert_eq!(r.license_state.as_deref(), Some("NM"));
    }

    #[test]
    fn a_candidate_without_a_city_is_searched_in_other_counties() {
        let mut req = request("Ada", "Lovelace", &[SearchKind::Criminal]);
        req.subject.city = None;
        let r = report_of(&req);
        let counties = r.checks.criminal.expect("criminal ran");
        assert_eq!(counties.len(), 1);
        assert_eq!(counties[0].county, "Other Counties");
        assert!(counties[0].value.is_empty());
    }

    #[test]
    fn searches_not_in_the_package_are_null() {
        let r = report_of(&request("Darth", "Vader", &[SearchKind::Criminal]));
        assert!(r.checks.criminal.is_some());
        assert_eq!(r.checks.mvr, None);
        assert_eq!(r.checks.sex_offender, None);
        assert_eq!(r.checks.watchlist, None);
        assert_eq!(r.checks.addresses, None);
        assert_eq!(r.checks.ssn_status, None);
        assert_eq!(r.current_address, None);
        let json = r.to_json();
        for key in ["mvr", "sex_offender", "watchlist"] {
            assert_eq!(json["checks"].get(key), Some(&Value::Null), "{key}");
        }

        let r = report_of(&request("Pat", "Speedwell", &[SearchKind::Mvr]));
        assert!(r.checks.mvr.is_some());
        assert_eq!(r.checks.criminal, None);
        assert_eq!(r.to_json()["checks"].get("criminal"), Some(&Value::Null));
    }

    #[test]
    fn same_request_same_report() {
        for (first, last) in [
            ("Darth", "Vader"),
            ("Walter", "White"),
            ("Pat", "Crash"),
            ("Pat", "Wanted"),
            ("Ada", "Lovelace"),
        ] {
            let req = request(first, last, &SearchKind::ALL);
            let (a, b) = (report_of(&req), report_of(&req));
            assert_eq!(a, b);
            assert_eq!(a.to_json(), b.to_json());
        }
        // Ids depend on the candidate, not on when the search ran.
        let mut later = request("Darth", "Vader", &SearchKind::ALL);
        later.now = at(86_400);
        let ids = |r: &Report| criminal(r).iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        let first_run = full("Darth", "Vader");
        assert_eq!(ids(&first_run), ids(&report_of(&later)));
        let mut all = ids(&first_run);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 3, "ids are distinct");
        assert!(
            all.iter()
                .all(|id| id.len() == 32 && !id.contains(['+', '/', '=']))
        );
    }

    #[test]
    fn darth_vader_has_felonies_and_a_watchlist_hit() {
        let r = full("Darth", "Vader");
        let today = at(3600).date_naive();
        let records = criminal(&r);
        assert_eq!(count(&records, "Felony"), 3);
        assert_eq!(records.len(), 3);
        let recent = records
            .iter()
            .map(|rec| months_ago_of(rec, rec.offense_date.as_ref(), today))
            .min();
        assert_eq!(recent, Some(24));
        let counties: Vec<&str> = r
            .checks
            .criminal
            .as_ref()
            .expect("criminal")
            .iter()
            .map(|c| c.county.as_str())
            .collect();
        assert_eq!(counties, ["Albuquerque County", "Other Counties"]);
        let watchlist = r.checks.watchlist.as_ref().expect("watchlist ran");
        assert_eq!(watchlist.len(), 1);
        assert_eq!(
            watchlist[0]
                .name
                .as_ref()
                .and_then(|n| n.last_name.as_deref()),
            Some("Vader")
        );
        assert_eq!(r.checks.sex_offender, Some(Vec::new()));
        assert_eq!(
            r.checks.mvr.as_ref().map(|m| m.status.as_str()),
            Some("clear")
        );
    }

    #[test]
    fn walter_white_has_a_recent_drug_felony_and_misdemeanors() {
        let r = full("Walter", "White");
        let today = at(3600).date_naive();
        let records = criminal(&r);
        let felony = records
            .iter()
            .find(|rec| rec.crime_type.as_deref() == Some("Felony"))
            .expect("felony");
        assert_eq!(
            felony.offense_description_1.as_deref(),
            Some("Manufacture of a controlled substance")
        );
        assert_eq!(felony.disposition.as_deref(), Some("Guilty"));
        assert_eq!(
            months_ago_of(felony, felony.conviction_date.as_ref(), today),
            12
        );
        assert_eq!(count(&records, "Felony"), 1);
        assert_eq!(count(&records, "Misdemeanor"), 2);
        assert_eq!(r.checks.watchlist, Some(Vec::new()));
    }

    #[test]
    fn samwise_gamgee_has_an_old_felony_and_a_recent_misdemeanor() {
        let r = full("Samwise", "Gamgee");
        let today = at(3600).date_naive();
        let records = criminal(&r);
        assert_eq!(records.len(), 2);
        for rec in &records {
            let newest = [
                &rec.offense_date,
                &rec.disposition_date,
                &rec.conviction_date,
            ]
            .into_iter()
            .map(|d| months_ago_of(rec, d.as_ref(), today))
            .min();
            match rec.crime_type.as_deref() {
                Some("Felony") => assert_eq!(newest, Some(120)),
                Some("Misdemeanor") => assert_eq!(newest, Some(23)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn mismatch_stops_every_other_search() {
        let r = full("Pat", "Mismatch");
        let c = &r.checks;
        // The seed's statuses for a failed trace.
        assert_eq!(c.ssn_status.as_deref(), Some("not_matched"));
        assert_eq!(c.name_status.as_deref(), Some("not_matched"));
        assert_eq!(c.dob_status.as_deref(), Some("not_matched"));
        assert_eq!(c.public_provided_name.as_deref(), Some("No Name Found"));
        assert_eq!(c.public_record_date_of_birth.as_deref(), Some("1000-01-01"));
        assert_eq!(c.criminal, None);
        assert_eq!(c.mvr, None);
        assert_eq!(c.sex_offender, None);
        assert_eq!(c.watchlist, None);
        assert_eq!(r.current_address, None);
    }

    #[test]
    fn mismatch_resumed_by_a_team_member_is_clear() {
        let mut req = request("Pat", "Mismatch", &SearchKind::ALL);
        req.identity_override = true;
        let r = report_of(&req);
        assert_eq!(r.checks.ssn_status.as_deref(), Some("matched"));
        assert_eq!(r.checks.name_status.as_deref(), Some("matched"));
        assert!(criminal(&r).is_empty());
        assert_eq!(r.checks.watchlist, Some(Vec::new()));
        assert_eq!(r.checks.sex_offender, Some(Vec::new()));
        assert_eq!(
            r.checks.mvr.as_ref().map(|m| m.status.as_str()),
            Some("clear")
        );
        // Resumed, the report is the one an ordinary candidate gets.
        let mut plain = request("Pat", "Mismatch", &SearchKind::ALL);
        plain.subject.last_name = "Matched".into();
        let mut expected = report_of(&plain);
        expected.checks.candidate_provided_name = Some("Pat Mismatch".into());
        expected.checks.partner_provided_name = Some("Pat Mismatch".into());
        expected.checks.public_provided_name = Some("Pat Mismatch".into());
        if let Some(mvr) = expected.checks.mvr.as_mut()
            && let Some(d) = mvr.driver.as_mut()
        {
            d.last_name = Some("Mismatch".into());
            d.full_name = Some("Pat Mismatch".into());
        }
        assert_eq!(r, expected);
    }

    #[test]
    fn mismatch_without_an_ssn_trace_has_nothing_to_mismatch() {
        let r = report_of(&request("Pat", "Mismatch", &[SearchKind::Criminal]));
        assert_eq!(r.checks.ssn_status, None);
        assert!(criminal(&r).is_empty());
    }

    fn mvr_of(last: &str) -> Mvr {
        full("Pat", last).checks.mvr.expect("mvr ran")
    }

    fn acd_codes(m: &Mvr) -> Vec<String> {
        m.violations
            .iter()
            .flat_map(|v| &v.sub_violations)
            .filter_map(|s| s.acd_code.clone())
            .collect()
    }

    #[test]
    fn speedwell_has_three_violations_and_one_accident() {
        let m = mvr_of("Speedwell");
        assert_eq!(m.status, "consider");
        assert_eq!(m.violations.len(), 3);
        assert_eq!(m.accidents.len(), 1);
        assert_eq!(m.accidents[0].fault, Some(Value::Bool(true)));
        assert!(acd_codes(&m).iter().all(|c| !c.starts_with('A')));
        assert_eq!(m.driver.as_ref().map(|d| d.total_state_points), Some(6));
    }

    #[test]
    fn crash_has_two_violations_and_three_accidents() {
        let m = mvr_of("Crash");
        assert_eq!(m.violations.len(), 2);
        assert_eq!(m.accidents.len(), 3);
        assert!(acd_codes(&m).iter().all(|c| !c.starts_with('A')));
        let mut ids: Vec<i64> = m.accidents.iter().map(|a| a.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn reckless_has_one_dui() {
        let m = mvr_of("Reckless");
        assert_eq!(m.violations.len(), 1);
        assert!(m.accidents.is_empty());
        assert_eq!(acd_codes(&m), ["A20"]);
        assert_eq!(
            m.violations[0].sub_violations[0]
                .acd_code_description
                .as_deref(),
            Some("Driving or operating a motor vehicle under the influence of alcohol or drugs")
        );
    }

    #[test]
    fn registry_has_a_sex_offender_hit_and_nothing_else() {
        let r = full("Pat", "Registry");
        let so = r.checks.sex_offender.as_ref().expect("ran");
        assert_eq!(so.len(), 1);
        assert_eq!(so[0].state.as_deref(), Some("NM"));
        assert!(criminal(&r).is_empty());
        assert_eq!(r.checks.watchlist, Some(Vec::new()));
    }

    #[test]
    fn wanted_has_a_most_wanted_hit() {
        let r = full("Pat", "Wanted");
        let w = r.checks.watchlist.as_ref().expect("ran");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].source.as_deref(), Some("Most Wanted"));
        assert_eq!(w[0].report_token.as_deref(), Some("C1931414576"));
        assert_eq!(r.checks.sex_offender, Some(Vec::new()));
        assert!(criminal(&r).is_empty());
    }

    #[test]
    fn county_recheck_finds_the_charge_only_when_filed() {
        let p = SandboxProvider::new(LATENCY);
        let s = subject("Ada", "Lovelace");
        let arrested_on = NaiveDate::from_ymd_opt(2026, 2, 27).expect("date");
        let mut alert = ArrestAlert {
            county: "Bernalillo County".into(),
            state: "NM".into(),
            arrested_on,
            charge_filed: true,
        };
        let found = p.run_county_recheck(&s, &alert);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].county.as_deref(), Some("Bernalillo County"));
        assert_eq!(found[0].suspect_state.as_deref(), Some("NM"));
        assert_eq!(found[0].crime_type.as_deref(), Some("Felony"));
        assert_eq!(found[0].offense_date.as_deref(), Some("02-27-2026"));
        assert_eq!(found[0].arrest_date.as_deref(), Some("02-27-2026"));
        assert_eq!(found, p.run_county_recheck(&s, &alert));
        alert.charge_filed = false;
        assert!(p.run_county_recheck(&s, &alert).is_empty());
    }

    #[tokio::test]
    async fn works_through_the_provider_trait_object() {
        let p: Arc<dyn Provider> = Arc::new(SandboxProvider::new(LATENCY));
        assert_eq!(p.name(), "sandbox");
        let req = request("Walter", "White", &SearchKind::ALL);
        let outcome = p.search(&req).await.expect("search");
        assert_eq!(outcome, SearchOutcome::Ready(report_of(&req)));
        let alert = ArrestAlert {
            county: "Bernalillo County".into(),
            state: "NM".into(),
            arrested_on: NaiveDate::from_ymd_opt(2026, 2, 27).expect("date"),
            charge_filed: true,
        };
        let found = p
            .county_recheck(&req.subject, &alert, at(0))
            .await
            .expect("recheck");
        assert_eq!(found.len(), 1);
    }
}
