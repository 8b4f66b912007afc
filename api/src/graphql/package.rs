//! Packages: which searches a check runs.
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use entity::package;
use service::package::{PackagePatch, searches_of};

use super::error::{GqlResult, actor, gql, svc};
use super::types::SearchKind;

/// A named set of searches. Ids are `P` + 10 digits, as Turn's.
pub struct Package(pub package::Model);

/// A named set of searches. Ids are `P` + 10 digits, as Turn's.
#[Object]
impl Package {
    /// `P` + 10 digits.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The searches a check started with this package runs (a check keeps the ones it was
    /// started with: a change applies to checks started after it).
    async fn searches(&self) -> Vec<SearchKind> {
        searches_of(&self.0.searches)
            .into_iter()
            .map(Into::into)
            .collect()
    }
    /// Whether checks started without a package use this one. Exactly one package is the default.
    async fn is_default(&self) -> bool {
        self.0.is_default
    }
    /// Archived packages can't start new checks.
    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.0.archived_at
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A package to create.
#[derive(InputObject)]
pub struct CreatePackageInput {
    /// Display name.
    pub name: String,
    /// The searches to run; duplicates are ignored.
    pub searches: Vec<SearchKind>,
    /// Make it the default (the partner's first package always is).
    #[graphql(default)]
    pub make_default: bool,
}

/// Changes to a package; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdatePackageInput {
    /// New display name.
    pub name: Option<String>,
    /// New set of searches.
    pub searches: Option<Vec<SearchKind>>,
    /// `true` makes it the default.
    pub make_default: Option<bool>,
}

#[derive(Default)]
pub struct PackageQuery;

#[Object]
impl PackageQuery {
    /// The partner's packages, oldest first.
    async fn packages(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] include_archived: bool,
    ) -> GqlResult<Vec<Package>> {
        Ok(svc(ctx)
            .packages(actor(ctx)?, include_archived)
            .await
            .map_err(gql)?
            .into_iter()
            .map(Package)
            .collect())
    }
    /// One package.
    async fn package(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Package> {
        Ok(Package(
            svc(ctx).package(actor(ctx)?, &id).await.map_err(gql)?,
        ))
    }
}

#[derive(Default)]
pub struct PackageMutation;

#[Object]
impl PackageMutation {
    /// Creates a package. Admins and above.
    async fn create_package(
        &self,
        ctx: &Context<'_>,
        input: CreatePackageInput,
    ) -> GqlResult<Package> {
        let searches: Vec<entity::SearchKind> =
            input.searches.into_iter().map(Into::into).collect();
        let p = svc(ctx)
            .create_package(actor(ctx)?, &input.name, &searches, input.make_default)
            .await
            .map_err(gql)?;
        Ok(Package(p))
    }
    /// Renames a package, changes its searches, or makes it the default.
    async fn update_package(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePackageInput,
    ) -> GqlResult<Package> {
        let patch = PackagePatch {
            name: input.name,
            searches: input
                .searches
                .map(|s| s.into_iter().map(Into::into).collect()),
            make_default: input.make_default,
        };
        Ok(Package(
            svc(ctx)
                .update_package(actor(ctx)?, &id, patch)
                .await
                .map_err(gql)?,
        ))
    }
    /// Archives a package (not the default). Existing checks keep it.
    async fn archive_package(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Package> {
        Ok(Package(
            svc(ctx)
                .archive_package(actor(ctx)?, &id)
                .await
                .map_err(gql)?,
        ))
    }
}
