//! Per-request batch loaders, so nested lists cost one query per level, whatever the page size.
use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use entity::{check, check_status_history, package};
use service::{Actor, Service};

use super::error::gql;

/// Checks of a candidate, by candidate (worker) id.
pub struct ChecksByCandidate {
    pub svc: Service,
    pub actor: Actor,
}

impl Loader<String> for ChecksByCandidate {
    type Value = Vec<check::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        self.svc
            .checks_for_candidates(&self.actor, keys)
            .await
            .map_err(gql)
    }
}

/// Status history of a check, by check id.
pub struct HistoryByCheck {
    pub svc: Service,
    pub actor: Actor,
}

impl Loader<String> for HistoryByCheck {
    type Value = Vec<check_status_history::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        self.svc.histories(&self.actor, keys).await.map_err(gql)
    }
}

/// Packages by id (the partner's only).
pub struct PackageById {
    pub svc: Service,
    pub actor: Actor,
}

impl Loader<String> for PackageById {
    type Value = package::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = self
            .svc
            .packages_by_ids(&self.actor, keys)
            .await
            .map_err(gql)?;
        Ok(rows.into_iter().map(|p| (p.id.clone(), p)).collect())
    }
}

/// Candidates by worker id (for `Check.candidate`).
pub struct CandidateById {
    pub svc: Service,
    pub actor: Actor,
}

impl Loader<String> for CandidateById {
    type Value = entity::candidate::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = self
            .svc
            .candidates_by_ids(&self.actor, keys)
            .await
            .map_err(gql)?;
        Ok(rows.into_iter().map(|c| (c.id.clone(), c)).collect())
    }
}
