//! The searches a package can run.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchKind {
    /// County and national criminal records.
    Criminal,
    /// Motor vehicle record: licences, violations, accidents, actions.
    Mvr,
    /// Sex-offender registries.
    SexOffender,
    /// Global watchlists (sanctions, most wanted).
    Watchlist,
    /// SSN trace and identity verification (name, date of birth, SSN status, addresses).
    SsnTrace,
}

impl SearchKind {
    pub const ALL: [SearchKind; 5] = [
        SearchKind::Criminal,
        SearchKind::Mvr,
        SearchKind::SexOffender,
        SearchKind::Watchlist,
        SearchKind::SsnTrace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SearchKind::Criminal => "criminal",
            SearchKind::Mvr => "mvr",
            SearchKind::SexOffender => "sex_offender",
            SearchKind::Watchlist => "watchlist",
            SearchKind::SsnTrace => "ssn_trace",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}
