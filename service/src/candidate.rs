//! Candidates: create, update, look up, list; reveal of sensitive fields by role.
use chrono::{DateTime, NaiveDate, Utc};
use entity::{CheckStatus, Role, candidate, check};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, Query, UnionType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult,
    IntoActiveModel, JoinType, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Select, Set,
};
use serde_json::json;

use crate::db::SelectUnique;
use crate::events::{self, EventType};
use crate::page::{Direction, Page, PageRequest};
use crate::rows::Columns;
use crate::{Actor, Service, ServiceError, ServiceResult, db, domain, ids};

/// Profile fields of a candidate as given by a caller. On create, first/last name and email are
/// required; on update `None` keeps a field and `Some("")` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct CandidateInput {
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    pub ssn: Option<String>,
    pub zip: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub address: Option<String>,
    pub experience: Option<String>,
    pub interests: Option<String>,
    pub transportation_method: Option<String>,
    pub drivers_license_number: Option<String>,
    /// Two-letter state that issued the licence.
    pub drivers_license_state: Option<String>,
    pub reference_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CandidateFilter {
    /// Candidates with at least one check in this status.
    pub status: Option<CheckStatus>,
    /// Case-insensitive substring of first, middle or last name or email.
    pub search: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// A field update: keep, clear, or set.
enum Change<T> {
    Keep,
    Clear,
    Set(T),
}

fn change<T>(
    v: &Option<String>,
    parse: impl FnOnce(&str) -> ServiceResult<T>,
) -> ServiceResult<Change<T>> {
    match v.as_deref().map(str::trim) {
        None => Ok(Change::Keep),
        Some("") => Ok(Change::Clear),
        Some(s) => parse(s).map(Change::Set),
    }
}

fn apply<T>(slot: &mut sea_orm::ActiveValue<Option<T>>, c: Change<T>)
where
    T: Into<sea_orm::Value>,
    Option<T>: Into<sea_orm::Value>,
{
    match c {
        Change::Keep => {}
        Change::Clear => *slot = Set(None),
        Change::Set(v) => *slot = Set(Some(v)),
    }
}

/// Every optional field, parsed.
struct Parsed {
    middle_name: Change<String>,
    phone: Change<String>,
    date_of_birth: Change<NaiveDate>,
    ssn: Change<String>,
    zip: Change<String>,
    city: Change<String>,
    state: Change<String>,
    address: Change<String>,
    experience: Change<String>,
    interests: Change<String>,
    transportation_method: Change<String>,
    drivers_license_number: Change<String>,
    drivers_license_state: Change<String>,
    reference_id: Change<String>,
}

/// A profile change, validated: the names and email it sets, and the optional fields.
pub(crate) struct CandidateUpdate {
    first: Option<String>,
    last: Option<String>,
    email: Option<String>,
    optional: Parsed,
}

/// Validates a profile change (every field it gives).
pub(crate) fn parse_update(input: &CandidateInput) -> ServiceResult<CandidateUpdate> {
    Ok(CandidateUpdate {
        first: input
            .first_name
            .as_deref()
            .map(|s| domain::text("firstName", s, 100))
            .transpose()?,
        last: input
            .last_name
            .as_deref()
            .map(|s| domain::text("lastName", s, 100))
            .transpose()?,
        email: input
            .email
            .as_deref()
            .map(|s| domain::email("email", s))
            .transpose()?,
        optional: parse_optional(input)?,
    })
}

fn parse_optional(i: &CandidateInput) -> ServiceResult<Parsed> {
    Ok(Parsed {
        middle_name: change(&i.middle_name, |s| domain::text("middleName", s, 100))?,
        phone: change(&i.phone, |s| domain::us_phone("phone", s))?,
        date_of_birth: change(&i.date_of_birth, |s| {
            domain::date_of_birth("dateOfBirth", s)
        })?,
        ssn: change(&i.ssn, |s| domain::ssn("ssn", s))?,
        zip: change(&i.zip, |s| domain::zip("zip", s))?,
        city: change(&i.city, |s| domain::text("city", s, 100))?,
        state: change(&i.state, |s| domain::us_state("state", s))?,
        address: change(&i.address, |s| domain::text("address", s, 300))?,
        experience: change(&i.experience, |s| domain::prose("experience", s, 5000))?,
        interests: change(&i.interests, |s| domain::prose("interests", s, 5000))?,
        transportation_method: change(&i.transportation_method, |s| {
            domain::text("transportationMethod", s, 50)
        })?,
        drivers_license_number: change(&i.drivers_license_number, |s| {
            domain::drivers_license("driversLicenseNumber", s)
        })?,
        drivers_license_state: change(&i.drivers_license_state, |s| {
            domain::us_state("driversLicenseState", s)
        })?,
        reference_id: change(&i.reference_id, |s| domain::text("referenceId", s, 200))?,
    })
}

/// First, middle and last name joined, as reports and webhooks show a candidate's name.
pub(crate) fn full_name(c: &candidate::Model) -> String {
    [
        Some(c.first_name.as_str()),
        c.middle_name.as_deref(),
        Some(c.last_name.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

fn search_text(first: &str, middle: Option<&str>, last: &str, email: &str) -> String {
    [Some(first), middle, Some(last), Some(email)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The class of PostgreSQL's two-key advisory locks taken per SSN fingerprint ("ssn\0"); the
/// two-key space is apart from the relay's one-key lock.
const SSN_LOCK_CLASS: i32 = 0x7373_6e00;

/// A fingerprint's lock key: its first four bytes (two fingerprints sharing them only wait for
/// each other).
fn ssn_lock_key(fingerprint: &str) -> i32 {
    let b = fingerprint.as_bytes();
    let mut key = [0u8; 4];
    for (k, v) in key.iter_mut().zip(b.iter()) {
        *k = *v;
    }
    i32::from_le_bytes(key)
}

/// What [`Service::create_candidate_unless_same_ssn`] came to.
pub(crate) enum NewCandidate {
    Created(candidate::Model),
    /// The partner's earliest candidate with the same SSN; nothing was written.
    SameSsn(candidate::Model),
}

impl Service {
    pub async fn create_candidate(
        &self,
        actor: &Actor,
        input: CandidateInput,
    ) -> ServiceResult<candidate::Model> {
        actor.require(Role::LimitedTeamMember)?;
        let first = domain::text("firstName", input.first_name.as_deref().unwrap_or(""), 100)?;
        let last = domain::text("lastName", input.last_name.as_deref().unwrap_or(""), 100)?;
        let email = domain::email("email", input.email.as_deref().unwrap_or(""))?;
        let p = parse_optional(&input)?;
        let now = crate::now();

        let reference_id = opt_ref(&p.reference_id).map(str::to_string);
        // The e-mail and reference id, looked up before the insert (and after a refused one).
        let keys = (Some(email.as_str()), reference_id.as_deref());
        let created = async {
            let txn = db::begin_write(&self.db).await?;
            self.ensure_unique(&txn, actor, None, keys.0, keys.1, None)
                .await?;
            let c = self
                .insert_candidate(&txn, actor, first, last, email.clone(), p, now)
                .await?;
            self.commit(txn).await?;
            Ok(c)
        }
        .await;
        self.naming_a_raced_conflict(created, actor, None, keys.0, keys.1)
            .await
    }

    /// `written` as it is, unless it is the unique index's conflict (no candidate named):
    /// another request wrote the same e-mail or reference id between this one's look and its
    /// write (PostgreSQL runs both at once). Then the look is made again, to name that
    /// candidate as it would have.
    async fn naming_a_raced_conflict(
        &self,
        written: ServiceResult<candidate::Model>,
        actor: &Actor,
        except: Option<&str>,
        email: Option<&str>,
        reference_id: Option<&str>,
    ) -> ServiceResult<candidate::Model> {
        match written {
            Err(ServiceError::Conflict {
                existing_id: None, ..
            }) => {
                self.ensure_unique(&self.db, actor, except, email, reference_id, None)
                    .await?;
                written
            }
            other => other,
        }
    }

    /// Validates and inserts a candidate on the caller's transaction, unless the partner already
    /// has one with the same SSN, which is answered instead (Turn's hosted form). The SSN, the
    /// e-mail and the reference id are looked up in one statement.
    pub(crate) async fn create_candidate_unless_same_ssn(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        actor: &Actor,
        input: &CandidateInput,
    ) -> ServiceResult<NewCandidate> {
        let first = domain::text("firstName", input.first_name.as_deref().unwrap_or(""), 100)?;
        let last = domain::text("lastName", input.last_name.as_deref().unwrap_or(""), 100)?;
        let email = domain::email("email", input.email.as_deref().unwrap_or(""))?;
        let p = parse_optional(input)?;
        let fingerprint = match &p.ssn {
            Change::Set(ssn) => Some(self.crypto.fingerprint(ssn)),
            _ => None,
        };
        if let Some(fp) = &fingerprint
            && txn.get_database_backend() == sea_orm::DbBackend::Postgres
        {
            // Two forms with one SSN submitted at once would each find no candidate and both
            // insert one (PostgreSQL runs them side by side; SQLite's writes take turns). Forms
            // with the same SSN take turns here, until the first commits its candidate.
            txn.execute_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1, $2)",
                [SSN_LOCK_CLASS.into(), ssn_lock_key(fp).into()],
            ))
            .await?;
        }
        if let Some(existing) = self
            .ensure_unique(
                txn,
                actor,
                None,
                Some(&email),
                opt_ref(&p.reference_id),
                fingerprint.as_deref(),
            )
            .await?
        {
            return Ok(NewCandidate::SameSsn(existing));
        }
        let c = self
            .insert_candidate(txn, actor, first, last, email, p, self.clock.now())
            .await?;
        Ok(NewCandidate::Created(c))
    }

    /// Sets the optional profile fields given in `input` (what a candidate completes on the
    /// consent page) on the caller's transaction, with the update event.
    pub(crate) async fn complete_candidate_in(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        actor: &Actor,
        current: candidate::Model,
        input: &CandidateInput,
    ) -> ServiceResult<candidate::Model> {
        let p = parse_optional(input)?;
        let mut am = current.into_active_model();
        self.apply_parsed(&mut am, p)?;
        am.updated_at = Set(self.clock.now());
        let c = am.update(txn).await?;
        events::record(
            txn,
            &c.partner_id,
            EventType::CandidateUpdated,
            &c.id,
            candidate_event(&c, actor),
        )
        .await?;
        Ok(c)
    }

    /// Inserts a validated candidate with its event on `txn`; the caller has run
    /// [`Self::ensure_unique`].
    #[allow(clippy::too_many_arguments)]
    async fn insert_candidate(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        actor: &Actor,
        first: String,
        last: String,
        email: String,
        p: Parsed,
        now: DateTime<Utc>,
    ) -> ServiceResult<candidate::Model> {
        let mut am = candidate::ActiveModel {
            id: Set(ids::uuid()),
            turn_id: Set(ids::turn_id()),
            partner_id: Set(actor.partner_id.clone()),
            first_name: Set(first),
            last_name: Set(last),
            email: Set(email),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        for slot in [
            &mut am.reference_id,
            &mut am.middle_name,
            &mut am.phone,
            &mut am.date_of_birth_enc,
            &mut am.ssn_enc,
            &mut am.ssn_last4,
            &mut am.ssn_fingerprint,
            &mut am.zip,
            &mut am.city,
            &mut am.state,
            &mut am.address,
            &mut am.experience,
            &mut am.interests,
            &mut am.transportation_method,
            &mut am.drivers_license_number,
            &mut am.drivers_license_state,
        ] {
            *slot = Set(None);
        }
        self.apply_parsed(&mut am, p)?;
        am.search_text = Set(search_text(
            am.first_name.as_ref(),
            am.middle_name.as_ref().as_deref(),
            am.last_name.as_ref(),
            am.email.as_ref(),
        ));
        let c = db::insert_with_fresh_id(txn, am, candidate::Column::TurnId, |am| {
            am.turn_id = Set(ids::turn_id())
        })
        .await?;
        events::record(
            txn,
            &actor.partner_id,
            EventType::CandidateCreated,
            &c.id,
            candidate_event(&c, actor),
        )
        .await?;
        Ok(c)
    }

    pub async fn update_candidate(
        &self,
        actor: &Actor,
        id: &str,
        input: CandidateInput,
    ) -> ServiceResult<candidate::Model> {
        actor.require(Role::LimitedTeamMember)?;
        let update = parse_update(&input)?;
        if !actor.role.may_see_sensitive() && (input.ssn.is_some() || input.date_of_birth.is_some())
        {
            // Writing them blind is allowed on create; changing what one cannot see is not.
            return Err(ServiceError::Forbidden(
                "limited team members cannot change SSN or date of birth".into(),
            ));
        }
        // The row is taken before it is read: two updates at once on PostgreSQL would each
        // write the search text made from the names and email they read, the second losing
        // the first's; and a check started meanwhile (which takes it too) waits for the
        // email rule below.
        let keys = (
            update.email.clone(),
            opt_ref(&update.optional.reference_id).map(str::to_string),
        );
        let txn = db::begin_write(&self.db).await?;
        db::lock_row(&txn, "candidates", &actor.partner_id, id).await?;
        let current = find(&txn, &actor.partner_id, id).await?;
        if !actor.role.may_see_sensitive()
            && update.email.as_ref().is_some_and(|e| *e != current.email)
            && (current.ssn_enc.is_some()
                || current.date_of_birth_enc.is_some()
                || check::Entity::find()
                    .filter(check::Column::CandidateId.eq(&current.id))
                    .one(&txn)
                    .await?
                    .is_some())
        {
            // Their consent link, the adverse-action notices and their copy of the report go
            // to this address: moving it would hand the report to whoever chose the new one. A
            // candidate with no check yet but an SSN or date of birth on file is as good as
            // screened: a check started after the move would run on them, the consent page
            // asking the new address for neither.
            return Err(ServiceError::Forbidden(
                "limited team members cannot change the email of a candidate who has a check, an \
                 SSN or a date of birth on file: the candidate's links and copy of their report \
                 go there"
                    .into(),
            ));
        }
        let updated = async {
            let c = self
                .update_candidate_in(&txn, actor, current, update)
                .await?;
            self.commit(txn).await?;
            Ok(c)
        }
        .await;
        self.naming_a_raced_conflict(
            updated,
            actor,
            Some(id),
            keys.0.as_deref(),
            keys.1.as_deref(),
        )
        .await
    }

    /// Sets the fields of `update` on `current` (names and email too, each still unique where
    /// it must be), with the update event, on the caller's transaction.
    pub(crate) async fn update_candidate_in(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        actor: &Actor,
        current: candidate::Model,
        update: CandidateUpdate,
    ) -> ServiceResult<candidate::Model> {
        let CandidateUpdate {
            first,
            last,
            email,
            optional: p,
        } = update;
        self.ensure_unique(
            txn,
            actor,
            Some(&current.id),
            email.as_deref(),
            opt_ref(&p.reference_id),
            None,
        )
        .await?;
        let mut am = current.into_active_model();
        if let Some(v) = first {
            am.first_name = Set(v);
        }
        if let Some(v) = last {
            am.last_name = Set(v);
        }
        if let Some(v) = email {
            am.email = Set(v);
        }
        self.apply_parsed(&mut am, p)?;
        am.search_text = Set(search_text(
            am.first_name.as_ref(),
            am.middle_name.as_ref().as_deref(),
            am.last_name.as_ref(),
            am.email.as_ref(),
        ));
        am.updated_at = Set(crate::now());
        let c = am.update(txn).await?;
        events::record(
            txn,
            &actor.partner_id,
            EventType::CandidateUpdated,
            &c.id,
            candidate_event(&c, actor),
        )
        .await?;
        Ok(c)
    }

    fn apply_parsed(&self, am: &mut candidate::ActiveModel, p: Parsed) -> ServiceResult<()> {
        apply(&mut am.middle_name, p.middle_name);
        apply(&mut am.phone, p.phone);
        apply(&mut am.zip, p.zip);
        apply(&mut am.city, p.city);
        apply(&mut am.state, p.state);
        apply(&mut am.address, p.address);
        apply(&mut am.experience, p.experience);
        apply(&mut am.interests, p.interests);
        apply(&mut am.transportation_method, p.transportation_method);
        apply(&mut am.drivers_license_number, p.drivers_license_number);
        apply(&mut am.drivers_license_state, p.drivers_license_state);
        apply(&mut am.reference_id, p.reference_id);
        match p.date_of_birth {
            Change::Keep => {}
            Change::Clear => am.date_of_birth_enc = Set(None),
            Change::Set(d) => {
                am.date_of_birth_enc =
                    Set(Some(self.crypto.seal(&d.format("%Y-%m-%d").to_string())?))
            }
        }
        match p.ssn {
            Change::Keep => {}
            Change::Clear => {
                am.ssn_enc = Set(None);
                am.ssn_last4 = Set(None);
                am.ssn_fingerprint = Set(None);
            }
            Change::Set(s) => {
                am.ssn_enc = Set(Some(self.crypto.seal(&s)?));
                am.ssn_last4 = Set(Some(s[5..].to_string()));
                am.ssn_fingerprint = Set(Some(self.crypto.fingerprint(&s)));
            }
        }
        Ok(())
    }

    /// Refuses an email or reference id another candidate of the partner (other than `except`)
    /// already has, naming it. Given an SSN fingerprint, first answers the partner's earliest
    /// candidate with that SSN, if any. One statement for all three keys.
    async fn ensure_unique<C: ConnectionTrait>(
        &self,
        conn: &C,
        actor: &Actor,
        except: Option<&str>,
        email: Option<&str>,
        reference_id: Option<&str>,
        ssn_fingerprint: Option<&str>,
    ) -> ServiceResult<Option<candidate::Model>> {
        type Key = fn(&candidate::Model) -> Option<&str>;
        let keys: [(&str, candidate::Column, Option<&str>, Key); 3] = [
            (
                "ssn",
                candidate::Column::SsnFingerprint,
                ssn_fingerprint,
                |c| c.ssn_fingerprint.as_deref(),
            ),
            ("email", candidate::Column::Email, email, |c| {
                Some(c.email.as_str())
            }),
            (
                "referenceId",
                candidate::Column::ReferenceId,
                reference_id,
                |c| c.reference_id.as_deref(),
            ),
        ];
        // One branch per key, each a lookup on its own index whatever the planner guesses of
        // the table's size (an `OR` of the keys was planned as a scan of every candidate).
        let mut lookups = keys.iter().filter_map(|(_, column, value, _)| {
            value.map(|v| candidate::Entity::find().filter(column.eq(v)).into_query())
        });
        let Some(mut union) = lookups.next() else {
            return Ok(None);
        };
        for q in lookups {
            union.union(UnionType::All, q);
        }
        let mut found =
            candidate::Model::find_by_statement(conn.get_database_backend().build(&union))
                .all(conn)
                .await?;
        found.retain(|c| c.partner_id == actor.partner_id);
        if let Some(fp) = ssn_fingerprint
            && let Some(existing) = found
                .iter()
                .filter(|c| c.ssn_fingerprint.as_deref() == Some(fp))
                .min_by_key(|c| c.seq)
        {
            return Ok(Some(existing.clone()));
        }
        for (field, _, value, key) in &keys[1..] {
            let Some(value) = value else { continue };
            if let Some(existing) = found
                .iter()
                .find(|c| except != Some(c.id.as_str()) && key(c) == Some(value))
            {
                return Err(ServiceError::Conflict {
                    field: Some((*field).into()),
                    message: format!(
                        "candidate {} ({}) already has this {field}",
                        existing.id, existing.turn_id
                    ),
                    existing_id: Some(existing.id.clone()),
                });
            }
        }
        Ok(None)
    }

    /// A candidate by worker id (UUID), turn id (`C` + 10 digits) or the partner's reference id.
    pub async fn candidate(&self, actor: &Actor, any_id: &str) -> ServiceResult<candidate::Model> {
        let col = if ids::is_turn_id(any_id) {
            candidate::Column::TurnId
        } else if uuid::Uuid::parse_str(any_id).is_ok() {
            candidate::Column::Id
        } else {
            candidate::Column::ReferenceId
        };
        self.candidate_by(actor, col, any_id).await
    }

    pub async fn candidate_by(
        &self,
        actor: &Actor,
        column: candidate::Column,
        value: &str,
    ) -> ServiceResult<candidate::Model> {
        // Looked up by the key alone, the partner checked on the rows (see `SelectUnique`): an
        // id selects one row at most, an e-mail or reference id one per partner.
        let rows = crate::rows::all(
            &self.db,
            candidate::Entity::find().filter(column.eq(value)),
            |row, at| crate::rows::candidate::decode(row, at, Columns::all()),
        )
        .await?;
        let found = rows.into_iter().find(|c| c.partner_id == actor.partner_id);
        found.ok_or(ServiceError::not_found("candidate"))
    }

    /// [`Service::candidate_by`] with the candidate's checks, newest first, in one statement (a
    /// `LEFT JOIN`, so a candidate without checks is found too): the candidate's columns `only`
    /// and the checks' columns `checks_only` (see [`Columns`]), besides the keys.
    pub async fn candidate_with_checks(
        &self,
        actor: &Actor,
        column: candidate::Column,
        value: &str,
        only: Columns<candidate::Entity>,
        checks_only: Columns<check::Entity>,
    ) -> ServiceResult<(candidate::Model, Vec<check::Model>)> {
        use sea_orm::IdenStatic;
        let only = only.with_all(&[candidate::Column::Id, candidate::Column::PartnerId]);
        let checks_only = crate::check::with_keys(checks_only);
        let mut q = Query::select();
        db::select_prefixed_only::<candidate::Entity>(&mut q, "a_", only);
        db::select_prefixed_only::<check::Entity>(&mut q, "b_", checks_only);
        // The key alone in SQL, the partner checked on the rows (see `SelectUnique::owned_by`):
        // an e-mail or reference id may be another partner's too.
        q.from(candidate::Entity)
            .left_join(
                check::Entity,
                Expr::col((check::Entity, check::Column::CandidateId))
                    .equals((candidate::Entity, candidate::Column::Id)),
            )
            .and_where(Expr::col((candidate::Entity, column)).eq(value));
        let mut found: Option<(candidate::Model, Vec<check::Model>)> = None;
        let checks_at = crate::rows::width(only);
        for row in self.db.query_all(&q).await? {
            let owner: String = row.try_get("a_", candidate::Column::PartnerId.as_str())?;
            if owner != actor.partner_id {
                continue;
            }
            let (_, checks) = match &mut found {
                Some(f) => f,
                None => found.insert((crate::rows::candidate::decode(&row, 0, only)?, vec![])),
            };
            checks.extend(joined_check(&row, checks_at, checks_only)?);
        }
        let (c, mut checks) = found.ok_or(ServiceError::not_found("candidate"))?;
        // Sorted here rather than in SQL, for the reason `checks_for_candidates` gives.
        crate::check::newest_first(&mut checks);
        Ok((c, checks))
    }

    /// Candidates by worker id, for batch loading.
    pub async fn candidates_by_ids(
        &self,
        actor: &Actor,
        ids: &[String],
    ) -> ServiceResult<Vec<candidate::Model>> {
        // By the unique id alone, the partner checked on each row (see `SelectUnique::owned_by`).
        let mut rows = candidate::Entity::find()
            .filter(candidate::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await?;
        rows.retain(|c| c.partner_id == actor.partner_id);
        Ok(rows)
    }

    /// A page of the candidates `filter` matches, newest first: their columns `only` (see
    /// [`Columns`]) and the keys.
    pub async fn list_candidates(
        &self,
        actor: &Actor,
        filter: &CandidateFilter,
        page: &PageRequest,
        only: Columns<candidate::Entity>,
    ) -> ServiceResult<Page<candidate::Model>> {
        let (select, p) = self.page_select(actor, filter, page)?;
        if p.limit == 0 {
            return Ok(p.finish(Vec::new()));
        }
        let only = only.with_all(&[candidate::Column::Seq, candidate::Column::Id]);
        let select = only.select(select.limit(p.limit + 1));
        let items = crate::rows::all(&self.db, select, |row, at| {
            crate::rows::candidate::decode(row, at, only)
        })
        .await?;
        Ok(p.finish(items))
    }

    /// [`Service::list_candidates`] with each candidate's checks, newest first, in one statement:
    /// the page as a subquery, its checks `LEFT JOIN`ed (so a candidate without checks is on the
    /// page too). The candidates' columns `only` and the checks' columns `checks_only` (see
    /// [`Columns`]), besides the keys.
    pub async fn list_candidates_with_checks(
        &self,
        actor: &Actor,
        filter: &CandidateFilter,
        page: &PageRequest,
        only: Columns<candidate::Entity>,
        checks_only: Columns<check::Entity>,
    ) -> ServiceResult<Page<(candidate::Model, Vec<check::Model>)>> {
        use std::collections::btree_map::{BTreeMap, Entry};
        let (select, p) = self.page_select(actor, filter, page)?;
        if p.limit == 0 {
            return Ok(p.finish(Vec::new()));
        }
        // The sequence number first (the entity's first column), the check id first of the
        // check's columns: both are read by position.
        let only = only.with_all(&[candidate::Column::Seq, candidate::Column::Id]);
        let checks_only = crate::check::with_keys(checks_only);
        let page_rows = sea_orm::QueryTrait::into_query(only.select(select.limit(p.limit + 1)));
        let on_page = sea_orm::sea_query::Alias::new("page");
        let mut q = Query::select();
        for col in only.selected() {
            q.expr(Expr::col((on_page.clone(), col)));
        }
        db::select_prefixed_only::<check::Entity>(&mut q, "b_", checks_only);
        // The partner in the join too, as every read of checks checks it.
        q.from_subquery(page_rows, on_page.clone()).left_join(
            check::Entity,
            Condition::all()
                .add(
                    Expr::col((check::Entity, check::Column::CandidateId))
                        .equals((on_page, candidate::Column::Id)),
                )
                .add(Expr::col((check::Entity, check::Column::PartnerId)).eq(&actor.partner_id)),
        );
        let checks_at = crate::rows::width(only);
        // By sequence number: the join's rows come in no promised order.
        let mut found: BTreeMap<i64, (candidate::Model, Vec<check::Model>)> = BTreeMap::new();
        for row in self.db.query_all(&q).await? {
            let seq: i64 = row.try_get_by_index(0)?;
            let (_, checks) = match found.entry(seq) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => {
                    v.insert((crate::rows::candidate::decode(&row, 0, only)?, vec![]))
                }
            };
            checks.extend(joined_check(&row, checks_at, checks_only)?);
        }
        for (_, checks) in found.values_mut() {
            // Sorted here rather than in SQL, for the reason `checks_for_candidates` gives.
            crate::check::newest_first(checks);
        }
        // In the page query's order: newest first, or oldest first when paging backward.
        let items = if p.backward {
            found.into_values().collect()
        } else {
            found.into_values().rev().collect()
        };
        Ok(p.finish(items))
    }

    /// The page query of `list_candidates` (the filter, the cursors and the order, not yet
    /// limited) and the page's shape.
    fn page_select(
        &self,
        actor: &Actor,
        filter: &CandidateFilter,
        page: &PageRequest,
    ) -> ServiceResult<(Select<candidate::Entity>, PageShape)> {
        let dir = page.validate(
            self.settings.max_page_size,
            std::cmp::Ord::min(20, self.settings.max_page_size),
        )?;
        let (limit, after, before, backward) = match dir {
            Direction::Forward {
                limit,
                after,
                before,
            } => (limit, after, before, false),
            Direction::Backward {
                limit,
                after,
                before,
            } => (limit, after, before, true),
        };
        let mut q = filtered(actor, filter)?;
        if let Some(a) = after {
            q = q.filter(candidate::Column::Seq.lt(a));
        }
        if let Some(b) = before {
            q = q.filter(candidate::Column::Seq.gt(b));
        }
        let select = if backward {
            q.order_by_asc(candidate::Column::Seq)
        } else {
            q.order_by_desc(candidate::Column::Seq)
        };
        Ok((
            select,
            PageShape {
                limit,
                after,
                before,
                backward,
            },
        ))
    }

    pub async fn count_candidates(
        &self,
        actor: &Actor,
        filter: &CandidateFilter,
    ) -> ServiceResult<u64> {
        Ok(filtered(actor, filter)?.count(&self.db).await?)
    }

    /// The SSN: masked (`***-**-6789`) unless `unmasked` is asked for. Never for
    /// limited team members.
    pub fn reveal_ssn(
        &self,
        actor: &Actor,
        c: &candidate::Model,
        unmasked: bool,
    ) -> ServiceResult<Option<String>> {
        if !actor.role.may_see_sensitive() {
            return Err(ServiceError::Forbidden("your role may not see SSNs".into()));
        }
        if !unmasked {
            return Ok(c.ssn_last4.as_deref().map(domain::mask_ssn));
        }
        c.ssn_enc
            .as_deref()
            .map(|s| self.crypto.open(s).map_err(ServiceError::Internal))
            .transpose()
    }

    pub fn reveal_date_of_birth(
        &self,
        actor: &Actor,
        c: &candidate::Model,
    ) -> ServiceResult<Option<NaiveDate>> {
        if !actor.role.may_see_sensitive() {
            return Err(ServiceError::Forbidden(
                "your role may not see dates of birth".into(),
            ));
        }
        c.date_of_birth_enc
            .as_deref()
            .map(|s| {
                let plain = self.crypto.open(s)?;
                Ok(NaiveDate::parse_from_str(&plain, "%Y-%m-%d")?)
            })
            .transpose()
            .map_err(ServiceError::Internal)
    }
}

fn opt_ref(c: &Change<String>) -> Option<&str> {
    match c {
        Change::Set(s) => Some(s.as_str()),
        _ => None,
    }
}

/// The check `LEFT JOIN`ed into `row` at position `at` (its columns `only`, the id first), if
/// there is one: a candidate without checks has one row whose check columns are all NULL.
fn joined_check(
    row: &sea_orm::QueryResult,
    at: usize,
    only: Columns<check::Entity>,
) -> Result<Option<check::Model>, sea_orm::DbErr> {
    let id: Option<String> = row.try_get_by_index(at)?;
    id.map(|_| crate::rows::check::decode(row, at, only))
        .transpose()
}

/// Where a page of candidates sits: its size and cursors, and its direction.
struct PageShape {
    limit: u64,
    after: Option<i64>,
    before: Option<i64>,
    backward: bool,
}

impl PageShape {
    /// The page of `items`, read in the page query's order, one more than `limit` when more
    /// follow.
    fn finish<T>(&self, mut items: Vec<T>) -> Page<T> {
        let more = items.len() as u64 > self.limit;
        items.truncate(self.limit as usize);
        if self.backward {
            items.reverse();
            Page {
                items,
                has_next_page: self.before.is_some(),
                has_previous_page: more,
            }
        } else {
            Page {
                items,
                has_next_page: more,
                has_previous_page: self.after.is_some(),
            }
        }
    }
}

fn filtered(actor: &Actor, f: &CandidateFilter) -> ServiceResult<Select<candidate::Entity>> {
    let mut cond = Condition::all().add(candidate::Column::PartnerId.eq(&actor.partner_id));
    if let Some(st) = f.status {
        cond = cond.add(
            Expr::col(candidate::Column::Id).in_subquery(
                Query::select()
                    .column(check::Column::CandidateId)
                    .from(check::Entity)
                    .and_where(check::Column::PartnerId.eq(&actor.partner_id))
                    .and_where(check::Column::Status.eq(st))
                    .to_owned(),
            ),
        );
    }
    if let Some(s) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if s.chars().count() > 100 {
            return Err(ServiceError::invalid(
                "search",
                "must be at most 100 characters",
            ));
        }
        let escaped = s
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        cond = cond.add(
            Expr::col(candidate::Column::SearchText)
                .like(LikeExpr::new(format!("%{escaped}%")).escape('\\')),
        );
    }
    if let (Some(a), Some(b)) = (f.created_after, f.created_before)
        && a >= b
    {
        return Err(ServiceError::invalid(
            "createdBefore",
            "must be later than createdAfter",
        ));
    }
    if let Some(a) = f.created_after {
        cond = cond.add(candidate::Column::CreatedAt.gte(a));
    }
    if let Some(b) = f.created_before {
        cond = cond.add(candidate::Column::CreatedAt.lt(b));
    }
    Ok(candidate::Entity::find().filter(cond))
}

pub(crate) async fn find<C: ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    id: &str,
) -> ServiceResult<candidate::Model> {
    candidate::Entity::find()
        .filter(candidate::Column::Id.eq(id))
        .owned_by(conn, candidate::Column::PartnerId, partner_id)
        .await?
        .ok_or(ServiceError::not_found("candidate"))
}

/// A candidate of `partner_id` with its partner, in one statement (a status change needs both).
pub(crate) async fn find_with_partner<C: ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    id: &str,
) -> ServiceResult<(candidate::Model, entity::partner::Model)> {
    let owner = candidate::Entity::belongs_to(entity::partner::Entity)
        .from(candidate::Column::PartnerId)
        .to(entity::partner::Column::Id)
        .into();
    let row = candidate::Entity::find()
        .filter(candidate::Column::Id.eq(id))
        .join(JoinType::InnerJoin, owner)
        .select_also(entity::partner::Entity)
        .all(conn)
        .await?
        .into_iter()
        .next();
    match row {
        // Another partner's candidate answers as a missing one.
        Some((c, Some(p))) if c.partner_id == partner_id => Ok((c, p)),
        _ => Err(ServiceError::not_found("candidate")),
    }
}

/// What subscribers and webhooks learn of a candidate: never SSN or date of birth.
fn candidate_event(c: &candidate::Model, actor: &Actor) -> serde_json::Value {
    json!({
        "worker_id": c.id,
        "turn_id": c.turn_id,
        "reference_id": c.reference_id,
        "email": c.email,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "actor": actor.subject,
        "actor_email": actor.email,
    })
}
