//! The screening-provider interface: what the engine asks a provider (run a check's searches,
//! recheck a county after an arrest alert) and what it gets back. Implementations: the
//! deterministic [`crate::screening::sandbox::SandboxProvider`]; a live provider plugs in here.
use chrono::{DateTime, NaiveDate, Utc};
use entity::SearchKind;

use crate::screening::report::{CriminalRecord, Report};

/// The person being screened, as the partner and the candidate described them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    pub candidate_id: String,
    pub turn_id: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub last_name: String,
    pub email: String,
    pub date_of_birth: Option<NaiveDate>,
    /// 9 digits, no dashes.
    pub ssn: Option<String>,
    pub zip: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub address: Option<String>,
    pub drivers_license_number: Option<String>,
    pub drivers_license_state: Option<String>,
}

impl Subject {
    /// First, middle and last name, single-spaced.
    pub fn full_name(&self) -> String {
        [
            Some(self.first_name.as_str()),
            self.middle_name.as_deref(),
            Some(self.last_name.as_str()),
        ]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub subject: Subject,
    pub searches: Vec<SearchKind>,
    pub requested_at: DateTime<Utc>,
    /// The caller's clock, passed in so providers (and their tests) never read the system clock.
    pub now: DateTime<Utc>,
    /// True after a team member chose "resume checks" on an identity mismatch.
    pub identity_override: bool,
}

impl SearchRequest {
    pub fn runs(&self, kind: SearchKind) -> bool {
        self.searches.contains(&kind)
    }
}

// One outcome per poll, moved once or twice: boxing the report would buy nothing but an extra
// `*` at every match on the interface.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum SearchOutcome {
    Ready(Report),
    NotReady { eta: DateTime<Utc> },
}

/// An arrest event from continuous monitoring. The county is only rechecked once the charge
/// can be discoverable at the courthouse (Turn waits 7 business days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrestAlert {
    pub county: String,
    pub state: String,
    pub arrested_on: NaiveDate,
    /// Sandbox only: whether the courthouse will show a charge.
    pub charge_filed: bool,
}

pub type BoxFut<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<T>> + Send + 'a>>;

pub trait Provider: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Runs the check's searches (only those), or says when to ask again.
    fn search<'a>(&'a self, req: &'a SearchRequest) -> BoxFut<'a, SearchOutcome>;

    /// Continuous monitoring: the county recheck after an arrest alert; the records found there.
    fn county_recheck<'a>(
        &'a self,
        subject: &'a Subject,
        alert: &'a ArrestAlert,
        now: DateTime<Utc>,
    ) -> BoxFut<'a, Vec<CriminalRecord>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_name_skips_a_missing_or_blank_middle_name() {
        let mut s = Subject {
            first_name: "Chelsea".into(),
            last_name: "Stewart".into(),
            ..Subject::default()
        };
        assert_eq!(s.full_name(), "Chelsea Stewart");
        s.middle_name = Some(" ".into());
        assert_eq!(s.full_name(), "Chelsea Stewart");
        s.middle_name = Some("Derek".into());
        assert_eq!(s.full_name(), "Chelsea Derek Stewart");
    }
}
