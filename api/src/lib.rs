//! clearhire's HTTP face: GraphQL over the service layer, health, readiness and metrics.
#![forbid(unsafe_code)]

pub mod app;
pub mod client_ip;
pub mod graphql;
pub mod http;
pub mod live;
pub mod pages;
pub mod parsed;

pub use app::Application;
pub use worker::config::{self, Config};
