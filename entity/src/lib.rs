//! sea-orm entities of clearhire and the domain value types they carry (check statuses with
//! their transition table, roles, search kinds). No I/O lives here.
#![forbid(unsafe_code)]

pub mod adverse_action;
pub mod api_token;
pub mod candidate;
pub mod candidate_link;
pub mod check;
pub mod check_report;
pub mod check_status_history;
pub mod consent;
pub mod email;
pub mod form_session;
pub mod monitoring_alert;
pub mod outbox;
pub mod package;
pub mod partner;
pub mod role;
pub mod search;
pub mod status;
pub mod task;
pub mod user;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;

pub use role::Role;
pub use search::SearchKind;
pub use status::CheckStatus;
