//! The background-check status machine of seed 003: the sixteen API statuses, their dashboard
//! labels, and the table of legal transitions. The table is data so tests can walk it.
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A check's status. The string value is Turn's API status, exactly as the seed spells it. The
/// default is `initiated`, where the status machine starts.
#[derive(
    Debug,
    Default,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    #[sea_orm(string_value = "initiated")]
    #[default]
    Initiated,
    #[sea_orm(string_value = "emailed")]
    Emailed,
    #[sea_orm(string_value = "consent")]
    Consent,
    #[sea_orm(string_value = "processing")]
    Processing,
    #[sea_orm(string_value = "review")]
    Review,
    #[sea_orm(string_value = "review__identity")]
    #[serde(rename = "review__identity")]
    ReviewIdentity,
    #[sea_orm(string_value = "review__so")]
    #[serde(rename = "review__so")]
    ReviewSo,
    #[sea_orm(string_value = "review__qa")]
    #[serde(rename = "review__qa")]
    ReviewQa,
    #[sea_orm(string_value = "review__mvr")]
    #[serde(rename = "review__mvr")]
    ReviewMvr,
    #[sea_orm(string_value = "review__cm")]
    #[serde(rename = "review__cm")]
    ReviewCm,
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "pending__first_notice")]
    #[serde(rename = "pending__first_notice")]
    PendingFirstNotice,
    #[sea_orm(string_value = "pending__second_notice")]
    #[serde(rename = "pending__second_notice")]
    PendingSecondNotice,
    #[sea_orm(string_value = "approved")]
    Approved,
    #[sea_orm(string_value = "rejected")]
    Rejected,
    #[sea_orm(string_value = "withdrawn")]
    Withdrawn,
}

use CheckStatus::*;

/// The statuses in which a check is over; a candidate has at most one check in any other.
pub const FINISHED: [CheckStatus; 3] = [Approved, Rejected, Withdrawn];

/// Every status, in the lifecycle order a dashboard shows them.
pub const ALL_STATUSES: [CheckStatus; 16] = [
    Initiated,
    Emailed,
    Consent,
    Processing,
    Review,
    ReviewIdentity,
    ReviewSo,
    ReviewQa,
    ReviewMvr,
    ReviewCm,
    Pending,
    PendingFirstNotice,
    PendingSecondNotice,
    Approved,
    Rejected,
    Withdrawn,
];

const REVIEWS: [CheckStatus; 6] = [
    Review,
    ReviewIdentity,
    ReviewSo,
    ReviewQa,
    ReviewMvr,
    ReviewCm,
];

/// The legal transitions: `(from, allowed next statuses)`.
///
/// - `initiated` is a check stored with `doChecks: false`; running it invites the candidate
///   (`emailed`) or, with partner-supplied consent, goes straight to `processing`.
/// - searches finish into a review queue, `pending` (Consider) or `approved`.
/// - adverse action runs in FCRA order: `pending` → first notice → second notice → `rejected`;
///   the partner may cancel it (→ `approved`) at either notice.
/// - `approved`, `pending` and `rejected` may be rechecked (→ `processing`); an approved worker
///   whose criminal monitoring finds a charge goes to `review__cm`.
/// - `withdrawn` is reachable from every status except `approved`, `rejected` and itself, and
///   leads nowhere.
pub const TRANSITIONS: &[(CheckStatus, &[CheckStatus])] = &[
    // `consent`: signed on a consent link the partner sent itself (no invitation email).
    (Initiated, &[Emailed, Consent, Processing, Withdrawn]),
    (Emailed, &[Consent, Withdrawn]),
    (Consent, &[Processing, Withdrawn]),
    (
        Processing,
        &[
            Review,
            ReviewIdentity,
            ReviewSo,
            ReviewQa,
            ReviewMvr,
            ReviewCm,
            Pending,
            Approved,
            Withdrawn,
        ],
    ),
    (
        Review,
        &[
            ReviewIdentity,
            ReviewSo,
            ReviewQa,
            ReviewMvr,
            ReviewCm,
            Pending,
            Approved,
            Withdrawn,
        ],
    ),
    (
        ReviewIdentity,
        &[Processing, Review, Pending, Approved, Withdrawn],
    ),
    (ReviewSo, &[Review, Pending, Approved, Withdrawn]),
    (ReviewQa, &[Review, Pending, Approved, Withdrawn]),
    (ReviewMvr, &[Review, Pending, Approved, Withdrawn]),
    (ReviewCm, &[Review, Pending, Approved, Withdrawn]),
    (
        Pending,
        &[PendingFirstNotice, Approved, Processing, Withdrawn],
    ),
    (
        PendingFirstNotice,
        &[PendingSecondNotice, Approved, Withdrawn],
    ),
    (PendingSecondNotice, &[Rejected, Approved, Withdrawn]),
    (Approved, &[Processing, ReviewCm]),
    (Rejected, &[Processing]),
    (Withdrawn, &[]),
];

impl CheckStatus {
    /// Turn's API value, e.g. `review__identity`.
    pub fn as_api_str(self) -> &'static str {
        match self {
            Initiated => "initiated",
            Emailed => "emailed",
            Consent => "consent",
            Processing => "processing",
            Review => "review",
            ReviewIdentity => "review__identity",
            ReviewSo => "review__so",
            ReviewQa => "review__qa",
            ReviewMvr => "review__mvr",
            ReviewCm => "review__cm",
            Pending => "pending",
            PendingFirstNotice => "pending__first_notice",
            PendingSecondNotice => "pending__second_notice",
            Approved => "approved",
            Rejected => "rejected",
            Withdrawn => "withdrawn",
        }
    }

    /// Parses Turn's API value.
    pub fn from_api_str(s: &str) -> Option<Self> {
        ALL_STATUSES.into_iter().find(|st| st.as_api_str() == s)
    }

    /// The dashboard label of seed 003 (several review statuses share "Compliance Review").
    pub fn dashboard_label(self) -> &'static str {
        match self {
            Emailed => "Emailed",
            Processing => "Processing",
            Review => "Reviewing",
            ReviewIdentity => "Verifying",
            Consent => "Consent",
            Pending => "Consider",
            Approved => "Approved",
            ReviewSo | ReviewQa | ReviewMvr | ReviewCm => "Compliance Review",
            Rejected => "Rejected",
            PendingFirstNotice => "First Notice",
            PendingSecondNotice => "Second Notice",
            Withdrawn => "Withdrawn",
            Initiated => "Initiated",
        }
    }

    /// The statuses this one may move to.
    pub fn next_statuses(self) -> &'static [CheckStatus] {
        TRANSITIONS
            .iter()
            .find(|(from, _)| *from == self)
            .map(|(_, to)| *to)
            .unwrap_or(&[])
    }

    pub fn can_transition_to(self, to: CheckStatus) -> bool {
        self.next_statuses().contains(&to)
    }

    /// Whether the check is still being worked on (a new check for the same candidate would
    /// compete with it): not one of [`FINISHED`].
    pub fn is_active(self) -> bool {
        !FINISHED.contains(&self)
    }

    pub fn is_review(self) -> bool {
        REVIEWS.contains(&self)
    }

    /// Whether a person (a team member's `transitionCheck`) may move a check from this status
    /// to `to`: a decision on a review queue or on Consider, the start of adverse action, its
    /// cancellation, the rejection after the final notice, a withdrawal. The rest of the table
    /// is the system's: consent comes from the candidate, the searches decide a check in
    /// `processing`, the waiting period's end brings the final notice, and rechecks and resumed
    /// searches have their own mutations. `review__identity` may not be approved by hand: its
    /// searches stopped at the identity, so nothing else was searched.
    pub fn person_may(self, to: CheckStatus) -> bool {
        if !self.can_transition_to(to) {
            return false;
        }
        match to {
            Withdrawn => true,
            Approved => {
                (self.is_review() && self != ReviewIdentity)
                    || matches!(self, Pending | PendingFirstNotice | PendingSecondNotice)
            }
            Pending => self.is_review(),
            PendingFirstNotice => self == Pending,
            Rejected => self == PendingSecondNotice,
            to if to.is_review() => self.is_review() && self != ReviewIdentity,
            _ => false,
        }
    }

    /// The statuses a person may move a check in this status to ([`Self::person_may`]).
    pub fn person_choices(self) -> Vec<CheckStatus> {
        self.next_statuses()
            .iter()
            .copied()
            .filter(|to| self.person_may(*to))
            .collect()
    }
}

impl std::fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_api_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_one_row_in_the_table() {
        for st in ALL_STATUSES {
            assert_eq!(
                TRANSITIONS.iter().filter(|(f, _)| *f == st).count(),
                1,
                "{st}"
            );
        }
    }

    #[test]
    fn api_values_round_trip() {
        for st in ALL_STATUSES {
            assert_eq!(CheckStatus::from_api_str(st.as_api_str()), Some(st));
            let json = serde_json::to_string(&st).expect("serialize");
            assert_eq!(json, format!("\"{}\"", st.as_api_str()));
        }
    }

    #[test]
    fn a_person_decides_reviews_and_consider_but_not_what_the_system_does() {
        assert_eq!(Processing.person_choices(), [Withdrawn]);
        assert_eq!(Emailed.person_choices(), [Withdrawn]);
        assert_eq!(Initiated.person_choices(), [Withdrawn]);
        assert!(!ReviewIdentity.person_may(Approved));
        assert!(ReviewIdentity.person_may(Pending));
        assert!(ReviewSo.person_may(Approved) && ReviewSo.person_may(Pending));
        assert!(Pending.person_may(Approved) && Pending.person_may(PendingFirstNotice));
        assert!(
            !Pending.person_may(Processing),
            "a recheck has its own mutation"
        );
        assert!(!PendingFirstNotice.person_may(PendingSecondNotice));
        assert!(PendingSecondNotice.person_may(Rejected));
        assert!(Approved.person_choices().is_empty());
        for st in ALL_STATUSES {
            for to in st.person_choices() {
                assert!(st.can_transition_to(to), "{st} → {to}");
            }
        }
    }

    #[test]
    fn withdrawn_reaches_nothing_and_every_open_status_can_be_withdrawn() {
        assert!(Withdrawn.next_statuses().is_empty());
        for st in ALL_STATUSES {
            assert_eq!(
                st.can_transition_to(Withdrawn),
                st.is_active() && st != Withdrawn,
                "{st}"
            );
        }
    }
}
