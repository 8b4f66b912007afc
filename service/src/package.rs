//! Packages: named sets of searches. Exactly one non-archived package per partner is the default.
use entity::{Role, SearchKind, package, partner};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set,
};
use serde_json::json;

use crate::db::SelectUnique;

use crate::events::{self, EventType};
use crate::{Actor, Service, ServiceError, ServiceResult, db, domain, ids};

#[derive(Debug, Clone, Default)]
pub struct PackagePatch {
    pub name: Option<String>,
    pub searches: Option<Vec<SearchKind>>,
    /// `Some(true)` makes this the partner's default.
    pub make_default: Option<bool>,
}

/// The searches in a JSON column of them: a package's, or a check's (the ones it was ordered
/// with).
pub fn searches_of(searches: &serde_json::Value) -> Vec<SearchKind> {
    searches
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().and_then(SearchKind::parse))
                .collect()
        })
        .unwrap_or_default()
}

/// The searches recorded on a check or a hosted form (the ones it was ordered with), or `None`
/// when none are: a row written by a process older than the column (during a rolling upgrade),
/// which runs its package's, as such a process would have.
pub fn recorded_searches(recorded: &serde_json::Value) -> Option<Vec<SearchKind>> {
    let searches = searches_of(recorded);
    (!searches.is_empty()).then_some(searches)
}

/// The JSON column of `searches`, in their order.
pub(crate) fn searches_json(searches: &[SearchKind]) -> serde_json::Value {
    json!(searches.iter().map(|k| k.as_str()).collect::<Vec<_>>())
}

/// The searches a check runs ([`recorded_searches`], else its package's).
pub(crate) async fn searches_of_check<C: ConnectionTrait>(
    conn: &C,
    c: &entity::check::Model,
) -> ServiceResult<Vec<SearchKind>> {
    match recorded_searches(&c.searches) {
        Some(searches) => Ok(searches),
        None => Ok(searches_of(
            &find(conn, &c.partner_id, &c.package_id).await?.searches,
        )),
    }
}

fn validate_searches(searches: &[SearchKind]) -> ServiceResult<serde_json::Value> {
    if searches.is_empty() {
        return Err(ServiceError::invalid(
            "searches",
            "a package needs at least one search",
        ));
    }
    let mut s = searches.to_vec();
    s.sort();
    s.dedup();
    Ok(searches_json(&s))
}

impl Service {
    pub async fn packages(
        &self,
        actor: &Actor,
        include_archived: bool,
    ) -> ServiceResult<Vec<package::Model>> {
        let mut q =
            package::Entity::find().filter(package::Column::PartnerId.eq(&actor.partner_id));
        if !include_archived {
            q = q.filter(package::Column::ArchivedAt.is_null());
        }
        Ok(q.order_by_asc(package::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    /// Packages by id, for batch loading.
    pub async fn packages_by_ids(
        &self,
        actor: &Actor,
        ids: &[String],
    ) -> ServiceResult<Vec<package::Model>> {
        Ok(package::Entity::find()
            .filter(package::Column::PartnerId.eq(&actor.partner_id))
            .filter(package::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await?)
    }

    pub async fn package(&self, actor: &Actor, id: &str) -> ServiceResult<package::Model> {
        find(&self.db, &actor.partner_id, id).await
    }

    pub async fn create_package(
        &self,
        actor: &Actor,
        name: &str,
        searches: &[SearchKind],
        make_default: bool,
    ) -> ServiceResult<package::Model> {
        actor.require(Role::Admin)?;
        let name = domain::text("name", name, 200)?;
        let searches = validate_searches(searches)?;
        let txn = db::begin_write(&self.db).await?;
        let partner = crate::partner::load(&txn, &actor.partner_id).await?;
        let now = crate::now();
        // The first package becomes the default whatever was asked.
        let is_default = make_default || partner.default_package_id.is_none();
        let am = package::ActiveModel {
            id: Set(ids::package_id()),
            partner_id: Set(actor.partner_id.clone()),
            name: Set(name),
            searches: Set(searches),
            is_default: Set(false),
            archived_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let p = db::insert_with_fresh_id(&txn, am, package::Column::Id, |am| {
            am.id = Set(ids::package_id())
        })
        .await?;
        let p = if is_default {
            set_default(&txn, actor, &p.id).await?
        } else {
            p
        };
        events::record(
            &txn,
            &actor.partner_id,
            EventType::PackageCreated,
            &p.id,
            package_event(&p, actor),
        )
        .await?;
        self.commit(txn).await?;
        Ok(p)
    }

    /// Changes a package. A change of its searches applies to checks started after it: a check
    /// keeps the searches it was started with (`checks.searches`).
    pub async fn update_package(
        &self,
        actor: &Actor,
        id: &str,
        patch: PackagePatch,
    ) -> ServiceResult<package::Model> {
        actor.require(Role::Admin)?;
        let name = patch
            .name
            .as_deref()
            .map(|n| domain::text("name", n, 200))
            .transpose()?;
        let searches = patch
            .searches
            .as_deref()
            .map(validate_searches)
            .transpose()?;
        let txn = db::begin_write(&self.db).await?;
        // The partner's row first, as making a default and archiving take it: otherwise a
        // package archived while it was made the default ends both (and every check started
        // without a package is refused).
        db::lock_row(&txn, "partners", &actor.partner_id, &actor.partner_id).await?;
        let current = find(&txn, &actor.partner_id, id).await?;
        if current.archived_at.is_some() {
            return Err(ServiceError::conflict(
                "an archived package cannot be changed",
            ));
        }
        if patch.make_default == Some(false) && current.is_default {
            return Err(ServiceError::invalid(
                "makeDefault",
                "make another package the default instead; a partner always has one",
            ));
        }
        let mut am = current.into_active_model();
        if let Some(n) = name {
            am.name = Set(n);
        }
        if let Some(s) = searches {
            am.searches = Set(s);
        }
        am.updated_at = Set(crate::now());
        let mut p = am.update(&txn).await?;
        if patch.make_default == Some(true) {
            p = set_default(&txn, actor, &p.id).await?;
        }
        events::record(
            &txn,
            &actor.partner_id,
            EventType::PackageUpdated,
            &p.id,
            package_event(&p, actor),
        )
        .await?;
        self.commit(txn).await?;
        Ok(p)
    }

    pub async fn archive_package(&self, actor: &Actor, id: &str) -> ServiceResult<package::Model> {
        actor.require(Role::Admin)?;
        let txn = db::begin_write(&self.db).await?;
        // See `update_package`: the partner's row orders this after a change of the default.
        db::lock_row(&txn, "partners", &actor.partner_id, &actor.partner_id).await?;
        let current = find(&txn, &actor.partner_id, id).await?;
        if current.is_default {
            return Err(ServiceError::conflict(
                "the default package cannot be archived; make another the default first",
            ));
        }
        if current.archived_at.is_some() {
            self.commit(txn).await?;
            return Ok(current);
        }
        let mut am = current.into_active_model();
        am.archived_at = Set(Some(crate::now()));
        am.updated_at = Set(crate::now());
        let p = am.update(&txn).await?;
        events::record(
            &txn,
            &actor.partner_id,
            EventType::PackageArchived,
            &p.id,
            package_event(&p, actor),
        )
        .await?;
        self.commit(txn).await?;
        Ok(p)
    }
}

fn package_event(p: &package::Model, actor: &Actor) -> serde_json::Value {
    json!({"name": p.name, "searches": p.searches, "is_default": p.is_default, "actor": actor.subject})
}

pub(crate) async fn find<C: ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    id: &str,
) -> ServiceResult<package::Model> {
    package::Entity::find_by_id(id.to_string())
        .owned_by(conn, package::Column::PartnerId, partner_id)
        .await?
        .ok_or(ServiceError::not_found("package"))
}

/// Makes package `id` the partner's default. The package that was the default stops being it,
/// and its event says so (the caller records the new default's).
async fn set_default<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    id: &str,
) -> ServiceResult<package::Model> {
    let partner_id = actor.partner_id.as_str();
    // Two packages made the default at once take turns: the second clears the first.
    crate::db::lock_row(conn, "partners", partner_id, partner_id).await?;
    let previous = package::Entity::update_many()
        .col_expr(package::Column::IsDefault, Expr::value(false))
        .col_expr(package::Column::UpdatedAt, Expr::value(crate::now()))
        .filter(package::Column::PartnerId.eq(partner_id))
        .filter(package::Column::IsDefault.eq(true))
        .filter(package::Column::Id.ne(id))
        .exec_with_returning(conn)
        .await?;
    for p in &previous {
        events::record(
            conn,
            partner_id,
            EventType::PackageUpdated,
            &p.id,
            package_event(p, actor),
        )
        .await?;
    }
    package::Entity::update_many()
        .col_expr(package::Column::IsDefault, Expr::value(true))
        .filter(package::Column::Id.eq(id))
        .exec(conn)
        .await?;
    partner::Entity::update_many()
        .col_expr(partner::Column::DefaultPackageId, Expr::value(id))
        .col_expr(partner::Column::UpdatedAt, Expr::value(crate::now()))
        .filter(partner::Column::Id.eq(partner_id))
        .exec(conn)
        .await?;
    find(conn, partner_id, id).await
}

/// The package a check will run: the one named, or the partner's default; it must exist for the
/// partner and not be archived. Errors name `packageId`.
pub(crate) async fn usable<C: ConnectionTrait>(
    conn: &C,
    partner: &entity::partner::Model,
    package_id: Option<&str>,
) -> ServiceResult<package::Model> {
    let package_id = match package_id.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => id.to_string(),
        None => partner.default_package_id.clone().ok_or_else(|| {
            ServiceError::invalid("packageId", "the partner has no default package; name one")
        })?,
    };
    let package = find(conn, &partner.id, &package_id).await.map_err(|e| {
        e.missing_as_invalid("packageId", format!("package {package_id} does not exist"))
    })?;
    if package.archived_at.is_some() {
        return Err(ServiceError::invalid(
            "packageId",
            format!("package {package_id} is archived"),
        ));
    }
    Ok(package)
}
