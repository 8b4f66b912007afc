//! The screening engine's pure parts: the report shape of seed 003, the provider interface and
//! its deterministic sandbox, adjudication rules, the business-day calendar and the consent
//! disclosures. Nothing here touches the database; the flows in `crate::screen` use them.
pub mod adjudication;
pub mod calendar;
pub mod disclosures;
pub mod provider;
pub mod report;
pub mod sandbox;
pub mod zipstate;
