//! clearhire end to end: the real server on a random port, driven over HTTP as a client would.
//! Runs on SQLite by default and on PostgreSQL when `CLEARHIRE_TEST_PG_URL` is set.
mod auth;
mod browser;
mod candidates;
mod checks;
mod helpers;
mod limits;
mod mail;
mod ops;
mod pagination;
mod redis_restart;
mod roles;
mod schema;
mod screening;
mod team_packages;
mod tenancy;
mod webhooks;
