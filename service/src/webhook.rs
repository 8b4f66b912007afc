//! Webhooks: partner endpoints (URL, event types, `whsec_` signing secrets with rotation), the
//! deliveries the relay creates from outbox events, and the record of every attempt. The
//! payloads are seed 003's, field for field.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use entity::{
    CheckStatus, Role, check, outbox, webhook_attempt as attempt, webhook_delivery as delivery,
    webhook_endpoint as endpoint,
};
use rand::{Rng, RngCore};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    IdenStatic, IntoActiveModel, Iterable, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, UpdateMany, sqlx,
};
use serde_json::{Value, json};

use crate::batch::Batcher;
use crate::db::{PlannedEachTime, SelectUnique};
use crate::events::{self, EventType};
use crate::{Actor, Service, ServiceError, ServiceResult, db, domain, ids};

/// Event types an endpoint can subscribe to.
pub const ENDPOINT_EVENT_TYPES: [&str; 5] = [
    "check.status_changed",
    "check.consent_confirmed",
    "adverse_action.disputed",
    "adverse_action.resumed",
    "webhook_endpoint.disabled",
];

/// The event type of the results sent to a check's `callback_url`.
const RESULTS_EVENT_TYPE: &str = "check.results";

/// The event types of deliveries: an endpoint's, and the results.
const DELIVERY_EVENT_TYPES: [&str; 6] = [
    ENDPOINT_EVENT_TYPES[0],
    ENDPOINT_EVENT_TYPES[1],
    ENDPOINT_EVENT_TYPES[2],
    ENDPOINT_EVENT_TYPES[3],
    ENDPOINT_EVENT_TYPES[4],
    RESULTS_EVENT_TYPE,
];

/// Retry delays after each failed attempt (then jittered by ±20%): about 5 s, 5 min, 30 min,
/// 2 h, 5 h, 10 h, 10 h. After the last, the delivery has failed.
pub const RETRY_SCHEDULE_SECS: [i64; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];

/// An endpoint failing without a success for this long is disabled.
pub const DISABLE_AFTER_FAILING: Duration = Duration::days(5);

/// A run of failures ends when this long passes without a failed attempt (the longest wait
/// between two attempts is a `Retry-After` of 24 h, the schedule's 10 h and jitter less, so an
/// endpoint failing everything all along fails more often than this): an endpoint with nothing
/// to send for days is not "failing" meanwhile.
pub const FAILING_STREAK_GAP: Duration = Duration::hours(36);

/// How long a delivery being sent is reserved for its sender: the 15 s request timeout plus
/// margin. A sender that dies mid-request leaves it to be sent again after this.
pub const DELIVERY_LEASE: Duration = Duration::seconds(20);

/// How long relayed outbox events are kept before the sweeper deletes them.
pub const OUTBOX_RETENTION: Duration = Duration::days(7);

/// Deliveries inserted per statement by the relay (16 columns each).
const DELIVERY_INSERT_CHUNK: usize = 500;

/// How long a rotated-out secret keeps signing beside the new one.
pub const PREVIOUS_SECRET_GRACE: Duration = Duration::hours(24);

#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// What happened when a delivery was attempted.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub status_code: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// From a `Retry-After` header on 429/503.
    pub retry_after: Option<std::time::Duration>,
}

/// What the dispatcher should do next with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    Done,
    RetryAt(DateTime<Utc>),
    GiveUp,
}

/// The PostgreSQL advisory lock a relay holds while it relays a batch ("relay" in ASCII).
const RELAY_LOCK_KEY: i64 = 0x72_656c_6179;

/// A delivery ready to send: where, what, and the secrets to sign it with.
#[derive(Debug, Clone)]
pub struct SendSpec {
    pub delivery: delivery::Model,
    /// `whsec_…` secrets (current first); empty for `callback_url` deliveries of a partner without
    /// endpoints, which are then sent unsigned.
    pub secrets: Vec<String>,
    /// The endpoint as it was when the delivery was leased (`None` for `callback_url`).
    pub endpoint: Option<endpoint::Model>,
    /// Why the delivery cannot be signed (a secret that does not decrypt, as after a change of
    /// the encryption key): it is then not sent, and the attempt records this as its error.
    pub cannot_sign: Option<String>,
}

/// Why an endpoint's secrets cannot sign.
enum SecretProblem {
    /// Sealed with another key (as after `CLEARHIRE_ENCRYPTION_KEY` changed).
    DoesNotDecrypt(anyhow::Error),
    /// It opens, but is not a `whsec_` key: its key part is not base64.
    NotAKey,
}

/// Where the endpoint's columns are found in the row of `lease_with_signer_sql`.
const SIGNER_PREFIX: &str = "signer_";

/// PostgreSQL: leases the due pending deliveries of a batch (`$1` the lease's end, `$2` their
/// ids as a JSON array, `$3` due by) and returns each with the endpoint that signs it, its
/// columns prefixed `SIGNER_PREFIX`: its own endpoint, or for a `callback_url` delivery the
/// partner's oldest enabled one (the oldest of all if none is enabled). An id without a row: nothing to send. The rows are found by their key
/// alone: `IS TRUE` keeps the planner off the (status, next_attempt_at) index, which, with
/// statistics that call pending rows rare, it took, scanning the whole overdue backlog in each
/// batch exactly when there was a backlog.
fn lease_with_signer_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let signer: Vec<String> = endpoint::Column::iter()
            .map(|c| {
                let c = c.as_str();
                format!(r#"e."{c}" AS "{SIGNER_PREFIX}{c}""#)
            })
            .collect();
        format!(
            r#"WITH d AS (
    UPDATE webhook_deliveries SET next_attempt_at = $1
    WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text(($2::text)::jsonb)))
      AND (status = 'pending' AND next_attempt_at <= $3) IS TRUE
    RETURNING *
)
SELECT d.*, {} FROM d LEFT JOIN LATERAL (
    SELECT * FROM webhook_endpoints x WHERE x.id = d.endpoint_id
    UNION ALL
    (SELECT * FROM webhook_endpoints y
     WHERE d.endpoint_id IS NULL AND y.partner_id = d.partner_id
     ORDER BY y.enabled DESC, y.created_at LIMIT 1)
) e ON true"#,
            signer.join(", ")
        )
    })
}

/// PostgreSQL's group commit of the worker's two statements per delivery: the lease and the
/// record of an attempt that needs no look at the endpoint's failing streak.
pub(crate) struct Batches {
    lease: Batcher<String, Option<(delivery::Model, Option<endpoint::Model>)>>,
    attempts: Batcher<AttemptRecord, ()>,
}

impl Batches {
    pub(crate) fn spawn(pg: PlannedEachTime) -> Self {
        Self {
            lease: Batcher::with_context(pg.clone(), lease_batch),
            attempts: Batcher::with_context(pg, attempts_batch),
        }
    }
}

/// Leases the due deliveries among `ids`, answering each id's delivery and signer, or `None`.
/// An id named twice in one batch is leased once: its second caller gets `None`.
async fn lease_batch(
    pg: PlannedEachTime,
    ids: Vec<String>,
) -> ServiceResult<Vec<Option<(delivery::Model, Option<endpoint::Model>)>>> {
    let (lease_until, due_by) = lease_window();
    let json = serde_json::to_string(&ids).map_err(anyhow::Error::from)?;
    let query = sqlx::query(lease_with_signer_sql())
        .bind(lease_until)
        .bind(json)
        .bind(due_by);
    let rows = pg.run(query).await?;
    let mut leased = HashMap::with_capacity(rows.len());
    for row in rows {
        let d = delivery::Model::from_query_result(&row, "")?;
        let signer = endpoint::Model::from_query_result_optional(&row, SIGNER_PREFIX)?;
        leased.insert(d.id.clone(), (d, signer));
    }
    Ok(crate::batch::each_once(&ids, leased))
}

/// A lease taken now: when it ends, and how soon a delivery must be due to be leased.
fn lease_window() -> (DateTime<Utc>, DateTime<Utc>) {
    let now = crate::now();
    (now + DELIVERY_LEASE, now + Duration::seconds(2))
}

/// One attempt and what it makes of its delivery: the attempt row and the delivery's update,
/// batched by `attempts_batch` or written one by one.
#[derive(Clone, serde::Serialize)]
struct AttemptRecord {
    partner_id: String,
    delivery_id: String,
    url: String,
    status_code: Option<i32>,
    response_body: Option<String>,
    duration_ms: i64,
    error: Option<String>,
    attempted_at: DateTime<Utc>,
    attempts: i32,
    status: &'static str,
    delivered_at: Option<DateTime<Utc>>,
    next_attempt_at: Option<DateTime<Utc>>,
    /// The endpoint whose failing streak the success clears (if it is still at `url`); none
    /// for any other outcome.
    endpoint_id: Option<String>,
    /// The lease the attempt was made under (the delivery's `next_attempt_at` as leased): the
    /// delivery takes the attempt's outcome only while it still holds it. A resend or a
    /// recovery during the attempt, or a sender that leased it again after the lease ran out,
    /// has moved it, and the delivery keeps their schedule; the attempt is still logged.
    leased_until: Option<DateTime<Utc>>,
}

impl AttemptRecord {
    fn row(&self) -> attempt::ActiveModel {
        attempt::ActiveModel {
            partner_id: Set(self.partner_id.clone()),
            delivery_id: Set(self.delivery_id.clone()),
            url: Set(self.url.clone()),
            status_code: Set(self.status_code),
            response_body: Set(self.response_body.clone()),
            duration_ms: Set(self.duration_ms),
            error: Set(self.error.clone()),
            attempted_at: Set(self.attempted_at),
            ..Default::default()
        }
    }

    fn delivery_update(&self) -> UpdateMany<delivery::Entity> {
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Attempts, Expr::value(self.attempts))
            .col_expr(
                delivery::Column::LastStatusCode,
                Expr::value(self.status_code),
            )
            .col_expr(delivery::Column::LastError, Expr::value(self.error.clone()))
            .col_expr(delivery::Column::UpdatedAt, Expr::value(self.attempted_at))
            .col_expr(delivery::Column::Status, Expr::value(self.status))
            .col_expr(
                delivery::Column::DeliveredAt,
                Expr::value(self.delivered_at),
            )
            .col_expr(
                delivery::Column::NextAttemptAt,
                Expr::value(self.next_attempt_at),
            )
            .filter(delivery::Column::Id.eq(&self.delivery_id))
            .filter(match self.leased_until {
                Some(at) => delivery::Column::NextAttemptAt.eq(at),
                None => delivery::Column::NextAttemptAt.is_null(),
            })
    }
}

/// PostgreSQL: a batch of `AttemptRecord`s (`$1`, a JSON array) in one statement: the attempt
/// rows, their deliveries' new state, and the endpoints' health. `= ANY(ARRAY(…))` looks the
/// deliveries up by key whatever the planner guesses of the JSON's row count.
const ATTEMPTS_BATCH_SQL: &str = r#"WITH v AS (
    SELECT * FROM jsonb_to_recordset(($1::text)::jsonb) AS v(
        partner_id text, delivery_id text, url text, status_code int, response_body text,
        duration_ms bigint, error text, attempted_at timestamptz, attempts int, status text,
        delivered_at timestamptz, next_attempt_at timestamptz, endpoint_id text,
        leased_until timestamptz)
), attempt AS (
    INSERT INTO webhook_attempts
        (partner_id, delivery_id, url, status_code, response_body, duration_ms, error, attempted_at)
    SELECT partner_id, delivery_id, url, status_code, response_body, duration_ms, error, attempted_at
    FROM v
), delivery AS (
    UPDATE webhook_deliveries d SET attempts = v.attempts, last_status_code = v.status_code,
        last_error = v.error, updated_at = v.attempted_at, status = v.status,
        delivered_at = v.delivered_at, next_attempt_at = v.next_attempt_at
    FROM v WHERE d.id = v.delivery_id AND d.id = ANY(ARRAY(SELECT delivery_id FROM v))
        AND d.next_attempt_at IS NOT DISTINCT FROM v.leased_until
)
UPDATE webhook_endpoints SET failing_since = NULL
WHERE id = ANY(ARRAY(SELECT endpoint_id FROM v WHERE endpoint_id IS NOT NULL))
  AND (id, url) IN (SELECT endpoint_id, url FROM v WHERE endpoint_id IS NOT NULL)
  AND failing_since IS NOT NULL"#;

async fn attempts_batch(
    pg: PlannedEachTime,
    records: Vec<AttemptRecord>,
) -> ServiceResult<Vec<()>> {
    pg.run_json(ATTEMPTS_BATCH_SQL, &records).await?;
    Ok(vec![(); records.len()])
}

/// Clears an endpoint's failing streak after a success at `url`, unless the endpoint has moved
/// to another URL since: one statement that changes nothing while it is healthy.
fn endpoint_healthy(endpoint_id: &str, url: &str) -> UpdateMany<endpoint::Entity> {
    endpoint::Entity::update_many()
        .col_expr(
            endpoint::Column::FailingSince,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(endpoint::Column::Id.eq(endpoint_id))
        .filter(endpoint::Column::Url.eq(url))
        .filter(endpoint::Column::FailingSince.is_not_null())
}

/// The most webhook endpoints one partner has.
pub const MAX_ENDPOINTS_PER_PARTNER: u64 = 50;

fn new_secret() -> String {
    use base64::Engine;
    let mut key = [0u8; 24];
    rand::rng().fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

fn validate_event_types(types: &[String]) -> ServiceResult<Value> {
    for t in types {
        if !ENDPOINT_EVENT_TYPES.contains(&t.as_str()) {
            return Err(ServiceError::invalid(
                "eventTypes",
                format!(
                    "unknown event type {t}; known: {}",
                    ENDPOINT_EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    let mut v = types.to_vec();
    v.sort();
    v.dedup();
    Ok(json!(v))
}

pub fn event_types_of(e: &endpoint::Model) -> Vec<String> {
    e.event_types
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Service {
    pub async fn webhook_endpoints(&self, actor: &Actor) -> ServiceResult<Vec<endpoint::Model>> {
        actor.require(Role::SuperAdmin)?;
        Ok(endpoint::Entity::find()
            .filter(endpoint::Column::PartnerId.eq(&actor.partner_id))
            .order_by_asc(endpoint::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    pub async fn webhook_endpoint(
        &self,
        actor: &Actor,
        id: &str,
    ) -> ServiceResult<endpoint::Model> {
        actor.require(Role::SuperAdmin)?;
        find_endpoint(&self.db, &actor.partner_id, id).await
    }

    /// The endpoint's current signing secret. Super admins only.
    pub fn webhook_secret(&self, actor: &Actor, e: &endpoint::Model) -> ServiceResult<String> {
        actor.require(Role::SuperAdmin)?;
        self.crypto
            .open(&e.secret_enc)
            .map_err(ServiceError::Internal)
    }

    pub async fn create_webhook_endpoint(
        &self,
        actor: &Actor,
        url: &str,
        description: Option<&str>,
        event_types: &[String],
    ) -> ServiceResult<endpoint::Model> {
        actor.require(Role::SuperAdmin)?;
        let url = domain::http_url("url", url)?;
        let description = domain::opt_prose("description", description, 500)?;
        let types = validate_event_types(event_types)?;
        let now = crate::now();
        let txn = db::begin_write(&self.db).await?;
        // Every event goes to every enabled endpoint in the relay's transaction: a partner's
        // endpoints are few. The partner's row is taken first, so two creations at once count
        // one after the other.
        db::lock_row(&txn, "partners", &actor.partner_id, &actor.partner_id).await?;
        let existing = endpoint::Entity::find()
            .filter(endpoint::Column::PartnerId.eq(&actor.partner_id))
            .count(&txn)
            .await?;
        if existing >= MAX_ENDPOINTS_PER_PARTNER {
            return Err(ServiceError::Conflict {
                field: None,
                message: format!(
                    "a partner has at most {MAX_ENDPOINTS_PER_PARTNER} webhook endpoints; \
                     delete one first"
                ),
                existing_id: None,
            });
        }
        let e = endpoint::ActiveModel {
            id: Set(ids::uuid()),
            partner_id: Set(actor.partner_id.clone()),
            url: Set(url),
            description: Set(description),
            event_types: Set(types),
            enabled: Set(true),
            secret_enc: Set(self.crypto.seal(&new_secret())?),
            previous_secret_enc: Set(None),
            previous_secret_expires_at: Set(None),
            disabled_reason: Set(None),
            failing_since: Set(None),
            last_failure_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        events::record(
            &txn,
            &actor.partner_id,
            EventType::WebhookEndpointCreated,
            &e.id,
            endpoint_event(&e, actor),
        )
        .await?;
        self.commit(txn).await?;
        Ok(e)
    }

    pub async fn update_webhook_endpoint(
        &self,
        actor: &Actor,
        id: &str,
        patch: EndpointPatch,
    ) -> ServiceResult<endpoint::Model> {
        actor.require(Role::SuperAdmin)?;
        let url = patch
            .url
            .as_deref()
            .map(|u| domain::http_url("url", u))
            .transpose()?;
        let types = patch
            .event_types
            .as_deref()
            .map(validate_event_types)
            .transpose()?;
        let description = patch
            .description
            .as_deref()
            .map(|d| domain::opt_prose("description", Some(d), 500))
            .transpose()?;
        let txn = db::begin_write(&self.db).await?;
        // Read for update: an attempt disabling the endpoint at the same time takes its turn
        // before or after this change, never between its read and write.
        let before = find_endpoint_for_update(&txn, &actor.partner_id, id).await?;
        let now = crate::now();
        let moved_to = url.as_ref().filter(|u| **u != before.url);
        let moved = moved_to.is_some();
        if let Some(u) = moved_to {
            // Deliveries not yet delivered go to the new URL: a retry, a resend or a recovery
            // after the URL was fixed must not go to the old one. Delivered ones keep the URL
            // they went to.
            delivery::Entity::update_many()
                .col_expr(delivery::Column::Url, Expr::value(u.clone()))
                .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
                .filter(delivery::Column::EndpointId.eq(&before.id))
                .filter(delivery::Column::Status.ne("delivered"))
                .exec(&txn)
                .await?;
        }
        if patch.enabled == Some(false) && before.enabled {
            cancel_pending_of_endpoint(&txn, &before.id, now).await?;
        }
        let was_enabled = before.enabled;
        let mut am = before.into_active_model();
        if let Some(u) = url {
            am.url = Set(u);
        }
        if let Some(t) = types {
            am.event_types = Set(t);
        }
        if let Some(d) = description {
            am.description = Set(d);
        }
        if let Some(enabled) = patch.enabled {
            am.enabled = Set(enabled);
            // Enabling a disabled endpoint gives it a fresh start; `enabled: true` sent again
            // for an enabled one (a form that sends every field) leaves its failing streak be.
            if enabled && !was_enabled {
                am.disabled_reason = Set(None);
                am.failing_since = Set(None);
            }
        }
        if moved {
            // The failures were the old address's.
            am.failing_since = Set(None);
        }
        am.updated_at = Set(now);
        let e = am.update(&txn).await?;
        events::record(
            &txn,
            &actor.partner_id,
            EventType::WebhookEndpointUpdated,
            &e.id,
            endpoint_event(&e, actor),
        )
        .await?;
        self.commit(txn).await?;
        Ok(e)
    }

    /// New signing secret; the old one keeps signing beside it for 24 hours, or, `immediately`
    /// (a secret that leaked), stops now with any earlier one. A rotation while the secret before
    /// is still in its 24 hours is refused, as it would cut them short for receivers not yet
    /// moved to the current one; `immediately` may still be asked for.
    pub async fn rotate_webhook_secret(
        &self,
        actor: &Actor,
        id: &str,
        immediately: bool,
    ) -> ServiceResult<endpoint::Model> {
        actor.require(Role::SuperAdmin)?;
        let txn = db::begin_write(&self.db).await?;
        let current = find_endpoint_for_update(&txn, &actor.partner_id, id).await?;
        let now = crate::now();
        if let Some(until) = current.previous_secret_expires_at
            && until > now
            && current.previous_secret_enc.is_some()
            && !immediately
        {
            return Err(ServiceError::conflict(format!(
                "the secret before the current one signs until {}; rotating again now would stop \
                 it early. Rotate after then, or with `immediately: true` to stop both old \
                 secrets now",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )));
        }
        let old = current.secret_enc.clone();
        let mut am = current.into_active_model();
        if immediately {
            am.previous_secret_enc = Set(None);
            am.previous_secret_expires_at = Set(None);
        } else {
            am.previous_secret_enc = Set(Some(old));
            am.previous_secret_expires_at = Set(Some(now + PREVIOUS_SECRET_GRACE));
        }
        am.secret_enc = Set(self.crypto.seal(&new_secret())?);
        am.updated_at = Set(now);
        let e = am.update(&txn).await?;
        events::record(
            &txn,
            &actor.partner_id,
            EventType::WebhookEndpointUpdated,
            &e.id,
            endpoint_event(&e, actor),
        )
        .await?;
        self.commit(txn).await?;
        Ok(e)
    }

    pub async fn delete_webhook_endpoint(
        &self,
        actor: &Actor,
        id: &str,
    ) -> ServiceResult<endpoint::Model> {
        actor.require(Role::SuperAdmin)?;
        let txn = db::begin_write(&self.db).await?;
        let e = find_endpoint(&txn, &actor.partner_id, id).await?;
        endpoint::Entity::delete_by_id(e.id.clone())
            .exec(&txn)
            .await?;
        cancel_pending_of_endpoint(&txn, &e.id, crate::now()).await?;
        events::record(
            &txn,
            &actor.partner_id,
            EventType::WebhookEndpointDeleted,
            &e.id,
            endpoint_event(&e, actor),
        )
        .await?;
        self.commit(txn).await?;
        Ok(e)
    }

    /// Claims up to `limit` unpublished outbox events in id order, creates their deliveries (one
    /// per event and destination, whatever happened before), calls `publish` with the events and
    /// marks them published, all in one transaction. A crash before the commit leaves the events
    /// to be claimed again; concurrent relays take turns (a PostgreSQL advisory lock, so batches
    /// are published in order; SQLite serialises writers). Returns the events and the ids of new
    /// deliveries.
    ///
    /// `after`: only events with a greater id (the relay's window; `None` scans the whole
    /// outbox). Published rows stay in the unpublished index as dead entries until the table
    /// is vacuumed, so a scan from the start slows as the outbox grows; the window keeps each
    /// poll to recent rows, and the relay still scans everything now and then for events that
    /// committed long after their id was drawn.
    pub async fn relay_batch<F, Fut>(
        &self,
        after: Option<i64>,
        limit: u64,
        publish: F,
    ) -> ServiceResult<(Vec<outbox::Model>, Vec<String>)>
    where
        F: FnOnce(Vec<outbox::Model>) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        let txn = db::begin_write(&self.db).await?;
        if self.db.get_database_backend() == DbBackend::Postgres {
            // One relay at a time (per database): two relays claiming batches side by side
            // would publish them in either order, so a subscriber could see a check's later
            // change before its earlier one. The others find the lock taken and wait their turn.
            let taken = txn
                .query_one_raw(sea_orm::Statement::from_string(
                    DbBackend::Postgres,
                    format!("SELECT pg_try_advisory_xact_lock({RELAY_LOCK_KEY})"),
                ))
                .await?
                .map(|row| row.try_get_by_index::<bool>(0))
                .transpose()?
                .unwrap_or(false);
            if !taken {
                txn.rollback().await?;
                return Ok((Vec::new(), Vec::new()));
            }
        }
        let mut q = outbox::Entity::find().filter(outbox::Column::PublishedAt.is_null());
        if let Some(after) = after {
            q = q.filter(outbox::Column::Id.gt(after));
        }
        let mut q = q.order_by_asc(outbox::Column::Id).limit(limit);
        if self.db.get_database_backend() == DbBackend::Postgres {
            q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = q.all(&txn).await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok((rows, Vec::new()));
        }
        // Each partner's enabled endpoints, read once per batch.
        let mut endpoints: HashMap<String, Vec<endpoint::Model>> = HashMap::new();
        let partners: HashSet<&str> = rows.iter().map(|r| r.partner_id.as_str()).collect();
        for e in endpoint::Entity::find()
            .filter(endpoint::Column::PartnerId.is_in(partners))
            .filter(endpoint::Column::Enabled.eq(true))
            .all(&txn)
            .await?
        {
            endpoints.entry(e.partner_id.clone()).or_default().push(e);
        }
        let mut new = Vec::new();
        for ev in &rows {
            let eps = endpoints.get(&ev.partner_id).map_or(&[][..], Vec::as_slice);
            new.extend(self.deliveries_for(&txn, ev, eps).await?);
        }
        // One statement per `DELIVERY_INSERT_CHUNK` deliveries (bound parameters are limited:
        // 32,766 on SQLite, 65,535 on PostgreSQL); a delivery that exists (same event, type and
        // destination, from a batch claimed before a crash) is kept, not doubled.
        let mut new_deliveries = Vec::new();
        let mut rest = new;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(DELIVERY_INSERT_CHUNK));
            new_deliveries.extend(
                delivery::Entity::insert_many(rest)
                    .on_conflict(
                        OnConflict::column(delivery::Column::DedupeKey)
                            .do_nothing()
                            .to_owned(),
                    )
                    .exec_with_returning_keys(&txn)
                    .await?,
            );
            rest = tail;
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        outbox::Entity::update_many()
            .col_expr(outbox::Column::PublishedAt, Expr::value(self.clock.now()))
            .filter(outbox::Column::Id.is_in(ids))
            .exec(&txn)
            .await?;
        publish(rows.clone())
            .await
            .map_err(ServiceError::Internal)?;
        txn.commit().await?;
        Ok((rows, new_deliveries))
    }

    /// The deliveries an event causes: the partner's subscribed endpoints (`endpoints`, its
    /// enabled ones), and the check's `callback_url` for results.
    async fn deliveries_for<C: ConnectionTrait>(
        &self,
        conn: &C,
        ev: &outbox::Model,
        endpoints: &[endpoint::Model],
    ) -> ServiceResult<Vec<delivery::ActiveModel>> {
        let mut bodies: Vec<(&'static str, Value)> = Vec::new();
        let mut callback: Option<(String, Value)> = None;
        match ev.event_type.as_str() {
            "check.status_changed" => {
                bodies.push(("check.status_changed", status_update_body(ev)));
                let state = ev.payload["state"]
                    .as_str()
                    .and_then(CheckStatus::from_api_str);
                // The consent is confirmed by the change that first dates it (events written
                // before the flag: the move to `consent`).
                if ev.payload["consent_confirmed"]
                    .as_bool()
                    .unwrap_or(state == Some(CheckStatus::Consent))
                {
                    bodies.push(("check.consent_confirmed", consent_body(ev)));
                }
                // Every time the check reaches `approved` or `pending`: its callback URL may be
                // all a partner listens to, so a decision changed later (Consider approved)
                // is sent as results too.
                if matches!(state, Some(CheckStatus::Approved | CheckStatus::Pending))
                    && let Some(check_id) = ev.payload["check_id"].as_str()
                    && let Some(c) = check::Entity::find_by_id(check_id.to_string())
                        .unique(conn)
                        .await?
                    && let Some(url) = c.callback_url.clone()
                {
                    // A body that cannot be built (a report sealed with another encryption
                    // key) must not hold up the outbox: every later event of every partner
                    // waits behind this one. The results are not sent; the error says why.
                    // A database error is the moment's, not the event's: the batch fails
                    // and is relayed again (SQLite would otherwise commit the batch without
                    // these results, its transaction going on after a failed statement).
                    match self.results_body(conn, &c, ev).await {
                        Ok(body) => callback = Some((url, body)),
                        Err(e) if e.is_database_error() => return Err(e),
                        Err(e) => tracing::error!(
                            check = %c.id,
                            event = %ev.event_id,
                            error = %e,
                            "the results webhook could not be built and is not sent"
                        ),
                    }
                }
            }
            "adverse_action.disputed" => bodies.push((
                "adverse_action.disputed",
                dispute_body(ev, "ADVERSE_ACTION_DISPUTED"),
            )),
            "adverse_action.resumed" => bodies.push((
                "adverse_action.resumed",
                dispute_body(ev, "ADVERSE_ACTION_RESUMED"),
            )),
            "webhook_endpoint.disabled" => {
                bodies.push(("webhook_endpoint.disabled", ev.payload.clone()))
            }
            _ => {}
        }
        let now = crate::now();
        let make = |endpoint_id: Option<String>, url: String, event_type: &str, body: &Value| {
            delivery::ActiveModel {
                id: Set(ids::uuid()),
                partner_id: Set(ev.partner_id.clone()),
                dedupe_key: Set(format!(
                    "{}:{}:{}",
                    ev.event_id,
                    event_type,
                    endpoint_id.as_deref().unwrap_or("callback")
                )),
                endpoint_id: Set(endpoint_id),
                url: Set(url),
                event_id: Set(message_id(&ev.event_id, event_type)),
                event_type: Set(event_type.to_string()),
                body: Set(body.to_string()),
                status: Set("pending".into()),
                attempts: Set(0),
                next_attempt_at: Set(Some(now)),
                last_status_code: Set(None),
                last_error: Set(None),
                delivered_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
        };
        let mut out = Vec::new();
        for (event_type, body) in &bodies {
            for e in endpoints {
                let types = event_types_of(e);
                if types.is_empty() || types.iter().any(|t| t == event_type) {
                    out.push(make(Some(e.id.clone()), e.url.clone(), event_type, body));
                }
            }
        }
        if let Some((url, body)) = callback {
            out.push(make(None, url, RESULTS_EVENT_TYPE, &body));
        }
        Ok(out)
    }

    /// Seed 003's "Background Check Results" body.
    async fn results_body<C: ConnectionTrait>(
        &self,
        conn: &C,
        c: &check::Model,
        ev: &outbox::Model,
    ) -> ServiceResult<Value> {
        let cand = crate::candidate::find(conn, &c.partner_id, &c.candidate_id).await?;
        let report: Option<Value> = c
            .report_enc
            .as_deref()
            .map(|s| -> anyhow::Result<Value> { Ok(serde_json::from_str(&self.crypto.open(s)?)?) })
            .transpose()?;
        let dob = cand
            .date_of_birth_enc
            .as_deref()
            .map(|s| self.crypto.open(s))
            .transpose()?;
        let name = crate::candidate::full_name(&cand);
        let report = report.unwrap_or(Value::Null);
        Ok(json!({
            "checks": report.get("checks").cloned().unwrap_or(Value::Null),
            "current_address": report.get("current_address").cloned().unwrap_or(Value::Null),
            "date_of_birth": dob,
            "name": name,
            "license_number": report.get("license_number").cloned().unwrap_or(Value::Null),
            "license_state": report.get("license_state").cloned().unwrap_or(Value::Null),
            "email": cand.email,
            "partner_worker_status": ev.payload["state"],
            "dashboard_url": ev.payload["dashboard_url"],
            "turn_id": cand.turn_id,
            "reference_id": c.reference_id.as_ref().or(cand.reference_id.as_ref()),
            "callback_uuid": c.id,
            "worker_uuid": cand.id,
            // As the event has them, which the status update of the same change sends: the
            // check may have moved on by the time the event is relayed.
            "consent_date": ev.payload["consent_date"],
            "recheck_date": ev.payload["recheck_date"],
            "cm_criminal_enroll": ev.payload["cm_criminal_enroll"],
            "criminal_monitoring_triggered": ev.payload["criminal_monitoring_triggered"],
        }))
    }

    /// A pending delivery with the secrets to sign it, or `None` if there is nothing to send
    /// (already delivered, cancelled, leased by another sender, or its endpoint is gone or
    /// disabled). On PostgreSQL, leasing the delivery and reading the endpoint that signs it are
    /// one statement; on SQLite (no `UPDATE` in a `WITH`), two.
    pub async fn delivery_to_send(&self, delivery_id: &str) -> ServiceResult<Option<SendSpec>> {
        // Lease it: of several jobs for one delivery (a sweeper re-queue, a resend), one sends.
        let (mut d, signer) = if let Some(batches) = self.pg_batches().map(|b| &b.webhook) {
            // Concurrent senders lease in one statement (group commit).
            let Some(leased) = batches.lease.call(delivery_id.to_string()).await? else {
                return Ok(None);
            };
            leased
        } else {
            let (lease_until, due_by) = lease_window();
            let Some(d) = delivery::Entity::update_many()
                .col_expr(delivery::Column::NextAttemptAt, Expr::value(lease_until))
                .filter(delivery::Column::Id.eq(delivery_id))
                .filter(delivery::Column::Status.eq("pending"))
                .filter(delivery::Column::NextAttemptAt.lte(due_by))
                .exec_with_returning(&self.db)
                .await?
                .into_iter()
                .next()
            else {
                return Ok(None);
            };
            let signer = match &d.endpoint_id {
                Some(eid) => {
                    endpoint::Entity::find_by_id(eid.clone())
                        .unique(&self.db)
                        .await?
                }
                None => {
                    endpoint::Entity::find()
                        .filter(endpoint::Column::PartnerId.eq(&d.partner_id))
                        .order_by_desc(endpoint::Column::Enabled)
                        .order_by_asc(endpoint::Column::CreatedAt)
                        .one(&self.db)
                        .await?
                }
            };
            (d, signer)
        };
        let mut secrets = Ok(Vec::new());
        let leased_endpoint = if d.endpoint_id.is_some() {
            let Some(e) = signer.filter(|e| e.enabled) else {
                // Queued before its endpoint was disabled or deleted: nothing will send it, so
                // it is cancelled (recoverable once the endpoint is enabled), not left pending
                // for the sweeper to queue again and again.
                cancel_pending(crate::now())
                    .filter(delivery::Column::Id.eq(&d.id))
                    .exec(&self.db)
                    .await?;
                return Ok(None);
            };
            if d.url != e.url {
                // Made by a relay that read the endpoint just before its URL changed (the move
                // rewrote the deliveries committed by then, not this one): it goes where the
                // endpoint is now.
                delivery::Entity::update_many()
                    .col_expr(delivery::Column::Url, Expr::value(e.url.clone()))
                    .filter(delivery::Column::Id.eq(&d.id))
                    .filter(delivery::Column::Status.eq("pending"))
                    .exec(&self.db)
                    .await?;
                d.url.clone_from(&e.url);
            }
            secrets = self.signing_secrets(&e);
            Some(e)
        } else {
            // Results to a callback_url are signed with the secrets of the partner's oldest
            // enabled endpoint (both during a rotation), so a partner verifies them the same
            // way; a disabled one signs only when no endpoint is enabled; without endpoints
            // they go unsigned.
            if let Some(e) = signer {
                secrets = self.signing_secrets(&e);
            }
            None
        };
        let (secrets, cannot_sign) = match secrets {
            Ok(secrets) => (secrets, None),
            Err(SecretProblem::DoesNotDecrypt(e)) => {
                tracing::error!(delivery = %d.id, error = %e, "webhook signing secret does not decrypt");
                (
                    Vec::new(),
                    Some(format!(
                        "the signing secret could not be decrypted (was CLEARHIRE_ENCRYPTION_KEY changed?): {e}"
                    )),
                )
            }
            Err(SecretProblem::NotAKey) => {
                // The decoder's message names a character of the secret: neither the log nor
                // the attempt (which the partner reads) repeats it.
                tracing::error!(delivery = %d.id, "webhook signing secret is not a whsec_ key (base64)");
                (
                    Vec::new(),
                    Some(
                        "the signing secret could not sign: it is not a whsec_ key (base64)"
                            .to_string(),
                    ),
                )
            }
        };
        Ok(Some(SendSpec {
            delivery: d,
            secrets,
            endpoint: leased_endpoint,
            cannot_sign,
        }))
    }

    /// The secrets that sign for an endpoint: its current one and, for 24 h after a rotation,
    /// the one before; each a `whsec_` key whose base64 part decodes.
    fn signing_secrets(&self, e: &endpoint::Model) -> Result<Vec<String>, SecretProblem> {
        let mut sealed = vec![&e.secret_enc];
        if let (Some(prev), Some(until)) = (&e.previous_secret_enc, e.previous_secret_expires_at)
            && until > Utc::now()
        {
            sealed.push(prev);
        }
        sealed
            .into_iter()
            .map(|s| {
                let secret = self.crypto.open(s).map_err(SecretProblem::DoesNotDecrypt)?;
                let key = secret.strip_prefix("whsec_").unwrap_or(&secret);
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key)
                    .map_err(|_| SecretProblem::NotAKey)?;
                Ok(secret)
            })
            .collect()
    }

    /// Records one attempt of a leased delivery and decides what follows: done, a retry at a
    /// time, or giving up.
    pub async fn record_attempt(
        &self,
        spec: &SendSpec,
        r: AttemptResult,
    ) -> ServiceResult<NextStep> {
        let now = crate::now();
        let d = &spec.delivery;
        // The lease keeps other senders off this delivery, so its attempt count is ours.
        let attempts = d.attempts + 1;
        let success = r.status_code.is_some_and(|c| (200..300).contains(&c));
        let gone = r.status_code == Some(410);
        // The schedule's delay after this attempt, if it has one left.
        let scheduled = RETRY_SCHEDULE_SECS.get((attempts - 1) as usize);
        let mut next = if success {
            NextStep::Done
        } else if gone {
            NextStep::GiveUp
        } else {
            match scheduled {
                None => NextStep::GiveUp,
                Some(base) => {
                    let jitter = rand::rng().random_range(0.8..1.2);
                    let mut delay = Duration::milliseconds((*base as f64 * 1000.0 * jitter) as i64);
                    // A longer `Retry-After` is waited for (up to a day); a shorter one does not
                    // bring the retry forward, or a receiver answering "retry in 1 s" would spend
                    // every attempt of the schedule within seconds.
                    if let Some(ra) = r.retry_after
                        && matches!(r.status_code, Some(429 | 503))
                    {
                        delay = Duration::from_std(ra)
                            .unwrap_or(Duration::hours(24))
                            .min(Duration::hours(24))
                            .max(delay);
                    }
                    NextStep::RetryAt(now + delay)
                }
            }
        };
        let (status, delivered_at, next_attempt_at) = match &next {
            NextStep::Done => ("delivered", Some(now), None),
            NextStep::RetryAt(at) => ("pending", None, Some(*at)),
            NextStep::GiveUp => ("failed", None, None),
        };
        let mut record = AttemptRecord {
            partner_id: d.partner_id.clone(),
            delivery_id: d.id.clone(),
            url: d.url.clone(),
            status_code: r.status_code.map(i32::from),
            response_body: r.response_body.as_deref().map(db::without_nul),
            duration_ms: r.duration_ms,
            error: r.error.as_deref().map(db::without_nul),
            attempted_at: now,
            attempts,
            status,
            delivered_at,
            next_attempt_at,
            endpoint_id: spec
                .endpoint
                .as_ref()
                .filter(|_| success)
                .map(|e| e.id.clone()),
            leased_until: d.next_attempt_at,
        };
        // A delivery we could not sign was never sent: that failure is ours, not the
        // endpoint's, and does not count toward disabling it.
        let counts_for_endpoint = spec.cannot_sign.is_none();
        let reads_endpoint = spec.endpoint.is_some() && !success && counts_for_endpoint;
        if !reads_endpoint && let Some(batches) = self.pg_batches().map(|b| &b.webhook) {
            // The usual case, a success (or a callback's attempt): concurrent senders record
            // theirs in one statement (group commit).
            batches.attempts.call(record).await?;
            return Ok(next);
        }
        let txn = db::begin_write(&self.db).await?;
        // The failed endpoint, while it is still at the attempt's URL.
        let mut failed_endpoint = None;
        if let Some(e) = &spec.endpoint
            && reads_endpoint
        {
            // The endpoint first, as a change of the endpoint takes it (and then its
            // deliveries): taken after the delivery, the two could each wait for the other. On
            // PostgreSQL concurrent failed attempts at it take turns, so it is disabled (and its
            // event recorded) once.
            let mut q = endpoint::Entity::find_by_id(e.id.clone());
            if txn.get_database_backend() == DbBackend::Postgres {
                q = q.lock_exclusive();
            }
            match q.unique(&txn).await? {
                Some(now_at) if now_at.url == d.url => failed_endpoint = Some(now_at),
                // Moved while this attempt was in flight: the answer was the old URL's, and
                // says nothing of the endpoint or of the delivery at the new one, which it goes
                // to at once (the attempt is logged, and counts as one of the schedule's).
                Some(_) if scheduled.is_some() => {
                    next = NextStep::RetryAt(now);
                    record.status = "pending";
                    record.next_attempt_at = Some(now);
                }
                _ => {}
            }
        }
        record.row().insert(&txn).await?;
        record.delivery_update().exec(&txn).await?;
        if success
            && counts_for_endpoint
            && let Some(e) = &spec.endpoint
        {
            endpoint_healthy(&e.id, &d.url).exec(&txn).await?;
        }
        if let Some(e) = failed_endpoint {
            // Health is measured on the service clock (which tests move over days); retries
            // stay on the wall clock the job queue schedules by. In production they agree.
            self.track_endpoint_failure(&txn, e, gone, self.clock.now())
                .await?;
        }
        // Through `commit`: an endpoint disabled here has an event for the relay to send now.
        self.commit(txn).await?;
        Ok(next)
    }

    /// A failed attempt at endpoint `e` (read, and on PostgreSQL locked, in `conn`'s
    /// transaction): when it started failing, and whether it is now disabled (410 Gone, or
    /// failing for `DISABLE_AFTER_FAILING`).
    async fn track_endpoint_failure<C: ConnectionTrait>(
        &self,
        conn: &C,
        e: endpoint::Model,
        gone: bool,
        now: DateTime<Utc>,
    ) -> ServiceResult<()> {
        // No last failure known (a streak begun before the column was added): a fresh start.
        let quiet = e
            .last_failure_at
            .is_none_or(|t| now - t > FAILING_STREAK_GAP);
        let failing_since = e.failing_since.filter(|_| !quiet).unwrap_or(now);
        let reason = if !e.enabled {
            // Already disabled (by hand, or by an attempt that finished first).
            None
        } else if gone {
            Some("the endpoint answered 410 Gone".to_string())
        } else if now - failing_since >= DISABLE_AFTER_FAILING {
            Some("every delivery failed for 5 days".to_string())
        } else {
            None
        };
        let (partner_id, id, url) = (e.partner_id.clone(), e.id.clone(), e.url.clone());
        let mut am = e.into_active_model();
        am.failing_since = Set(Some(failing_since));
        am.last_failure_at = Set(Some(now));
        if let Some(reason) = &reason {
            am.enabled = Set(false);
            am.disabled_reason = Set(Some(reason.clone()));
            am.updated_at = Set(now);
        }
        am.update(conn).await?;
        if let Some(reason) = reason {
            cancel_pending_of_endpoint(conn, &id, now).await?;
            events::record(
                conn,
                &partner_id,
                EventType::WebhookEndpointDisabled,
                &id,
                json!({"endpoint_id": id, "url": url, "reason": reason, "timestamp": now.timestamp()}),
            )
            .await?;
        }
        Ok(())
    }

    /// Deletes up to `limit` outbox events relayed more than `OUTBOX_RETENTION` ago (by the
    /// service clock), oldest first, in one statement. Once relayed, nothing reads them: each
    /// delivery keeps its own body and event id. Returns how many went.
    pub async fn prune_outbox(&self, limit: u64) -> ServiceResult<u64> {
        let cutoff = self.clock.now() - OUTBOX_RETENTION;
        let oldest = sea_orm::sea_query::Query::select()
            .column(outbox::Column::Id)
            .from(outbox::Entity)
            .and_where(outbox::Column::PublishedAt.lt(cutoff))
            .order_by(outbox::Column::Id, sea_orm::Order::Asc)
            .limit(limit)
            .to_owned();
        let res = outbox::Entity::delete_many()
            .filter(outbox::Column::Id.in_subquery(oldest))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected)
    }

    /// Outbox events not yet relayed (how far behind the relay is; for metrics and benchmarks).
    pub async fn outbox_backlog(&self) -> ServiceResult<u64> {
        use sea_orm::PaginatorTrait;
        Ok(outbox::Entity::find()
            .filter(outbox::Column::PublishedAt.is_null())
            .count(&self.db)
            .await?)
    }

    /// How many pending deliveries are due by `before`.
    pub async fn count_due_deliveries(&self, before: DateTime<Utc>) -> ServiceResult<u64> {
        use sea_orm::PaginatorTrait;
        Ok(due_by(before).count(&self.db).await?)
    }

    /// Pending deliveries due by `before` (for re-enqueueing after a crash or restart).
    pub async fn due_deliveries(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> ServiceResult<Vec<delivery::Model>> {
        Ok(due_by(before)
            .order_by_asc(delivery::Column::NextAttemptAt)
            .limit(limit)
            .all(&self.db)
            .await?)
    }
}

/// Makes deliveries due again at `now` with the whole retry schedule ahead of them (a resend, a
/// recovery); what their earlier attempts came to stays in the attempts' log. The caller says
/// which deliveries. An endpoint's delivery goes to the endpoint's URL as it is now: one
/// delivered before the URL changed kept the URL it went to, which may be a host given up since.
fn due_again(now: DateTime<Utc>) -> sea_orm::sea_query::UpdateStatement {
    let mut up = sea_orm::sea_query::Query::update();
    up.table(delivery::Entity)
        .value(
            delivery::Column::Url,
            Expr::cust(
                "COALESCE((SELECT e.url FROM webhook_endpoints e \
                 WHERE e.id = webhook_deliveries.endpoint_id), url)",
            ),
        )
        .value(delivery::Column::Status, "pending")
        .value(delivery::Column::Attempts, 0)
        .value(delivery::Column::LastStatusCode, Option::<i32>::None)
        .value(delivery::Column::LastError, Option::<String>::None)
        .value(delivery::Column::DeliveredAt, Option::<DateTime<Utc>>::None)
        .value(delivery::Column::NextAttemptAt, now)
        .value(delivery::Column::UpdatedAt, now);
    up
}

/// Pending deliveries due by `before`.
fn due_by(before: DateTime<Utc>) -> sea_orm::Select<delivery::Entity> {
    delivery::Entity::find()
        .filter(delivery::Column::Status.eq("pending"))
        .filter(delivery::Column::NextAttemptAt.lte(before))
}

/// Filters for listing deliveries.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<String>,
    pub status: Option<String>,
    pub event_type: Option<String>,
    /// The last delivery of the page before: the list goes on with those older than it.
    pub after: Option<String>,
}

pub const DELIVERY_STATUSES: [&str; 4] = ["pending", "delivered", "failed", "cancelled"];

impl Service {
    /// Deliveries of the partner, newest first. Super admins only.
    pub async fn webhook_deliveries(
        &self,
        actor: &Actor,
        filter: &DeliveryFilter,
        limit: u64,
    ) -> ServiceResult<Vec<delivery::Model>> {
        actor.require(Role::SuperAdmin)?;
        if limit > self.settings.max_page_size {
            return Err(ServiceError::invalid(
                "first",
                format!("must be at most {}", self.settings.max_page_size),
            ));
        }
        let mut q =
            delivery::Entity::find().filter(delivery::Column::PartnerId.eq(&actor.partner_id));
        if let Some(e) = &filter.endpoint_id {
            q = q.filter(delivery::Column::EndpointId.eq(e));
        }
        if let Some(st) = &filter.status {
            if !DELIVERY_STATUSES.contains(&st.as_str()) {
                return Err(ServiceError::invalid(
                    "status",
                    format!("one of {}", DELIVERY_STATUSES.join(", ")),
                ));
            }
            q = q.filter(delivery::Column::Status.eq(st));
        }
        if let Some(t) = &filter.event_type {
            // A misspelt type would list nothing, as if nothing had been sent.
            if !DELIVERY_EVENT_TYPES.contains(&t.as_str()) {
                return Err(ServiceError::invalid(
                    "eventType",
                    format!("one of {}", DELIVERY_EVENT_TYPES.join(", ")),
                ));
            }
            q = q.filter(delivery::Column::EventType.eq(t));
        }
        if let Some(after) = &filter.after {
            let last = delivery::Entity::find_by_id(after.clone())
                .owned_by(&self.db, delivery::Column::PartnerId, &actor.partner_id)
                .await?
                .ok_or_else(|| ServiceError::invalid("after", "no such delivery"))?;
            // Newest first: after (created_at, id) in that order comes what is below it.
            q = q.filter(
                sea_orm::Condition::any()
                    .add(delivery::Column::CreatedAt.lt(last.created_at))
                    .add(
                        sea_orm::Condition::all()
                            .add(delivery::Column::CreatedAt.eq(last.created_at))
                            .add(delivery::Column::Id.lt(last.id)),
                    ),
            );
        }
        Ok(q.order_by_desc(delivery::Column::CreatedAt)
            .order_by_desc(delivery::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    pub async fn webhook_delivery(
        &self,
        actor: &Actor,
        id: &str,
    ) -> ServiceResult<delivery::Model> {
        actor.require(Role::SuperAdmin)?;
        delivery::Entity::find_by_id(id.to_string())
            .owned_by(&self.db, delivery::Column::PartnerId, &actor.partner_id)
            .await?
            .ok_or(ServiceError::not_found("delivery"))
    }

    /// Every attempt of a delivery, oldest first.
    pub async fn delivery_attempts(
        &self,
        actor: &Actor,
        delivery_id: &str,
    ) -> ServiceResult<Vec<attempt::Model>> {
        actor.require(Role::SuperAdmin)?;
        Ok(attempt::Entity::find()
            .filter(attempt::Column::PartnerId.eq(&actor.partner_id))
            .filter(attempt::Column::DeliveryId.eq(delivery_id))
            .order_by_asc(attempt::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Makes a delivery due again now (same event id, same body), with the whole retry schedule
    /// ahead of it. The caller queues it. Refused while its endpoint is disabled or deleted
    /// (nothing would send it).
    pub async fn resend_delivery(&self, actor: &Actor, id: &str) -> ServiceResult<delivery::Model> {
        let d = self.webhook_delivery(actor, id).await?;
        if let Some(eid) = &d.endpoint_id {
            let enabled = endpoint::Entity::find_by_id(eid.clone())
                .owned_by(&self.db, endpoint::Column::PartnerId, &actor.partner_id)
                .await?
                .is_some_and(|e| e.enabled);
            if !enabled {
                return Err(ServiceError::conflict(
                    "the delivery's endpoint is disabled or deleted: enable it before resending",
                ));
            }
        }
        let mut up = due_again(crate::now());
        up.and_where(delivery::Column::Id.eq(&d.id))
            .returning(sea_orm::sea_query::Query::returning().all());
        let row = self
            .db
            .query_one(&up)
            .await?
            .ok_or(ServiceError::not_found("webhook delivery"))?;
        Ok(delivery::Model::from_query_result(&row, "")?)
    }

    /// Makes every failed or cancelled delivery of an endpoint created since `since` due again,
    /// with the whole retry schedule ahead of it, in one statement (however many there are).
    /// Returns their ids, oldest first (only the ids: their bodies may add up to gigabytes).
    pub async fn recover_deliveries(
        &self,
        actor: &Actor,
        endpoint_id: &str,
        since: DateTime<Utc>,
    ) -> ServiceResult<Vec<String>> {
        let e = self.webhook_endpoint(actor, endpoint_id).await?;
        if !e.enabled {
            return Err(ServiceError::conflict(
                "enable the endpoint before recovering its deliveries",
            ));
        }
        let mut up = due_again(crate::now());
        up.and_where(delivery::Column::EndpointId.eq(&e.id))
            .and_where(delivery::Column::Status.is_in(["failed", "cancelled"]))
            .and_where(delivery::Column::CreatedAt.gte(since))
            .returning(
                sea_orm::sea_query::Query::returning()
                    .columns([delivery::Column::CreatedAt, delivery::Column::Id]),
            );
        let mut recovered = Vec::new();
        for row in self.db.query_all(&up).await? {
            let created: DateTime<Utc> = row.try_get("", delivery::Column::CreatedAt.as_str())?;
            let id: String = row.try_get("", delivery::Column::Id.as_str())?;
            recovered.push((created, id));
        }
        recovered.sort();
        Ok(recovered.into_iter().map(|(_, id)| id).collect())
    }
}

/// The `webhook-id` of the message an event sends as `event_type`: the event id itself for the
/// status update (whose body carries it as `event_id`), the event id with the type's suffix for
/// the other messages one event causes (a move to `consent` sends both a status update and a
/// consent confirmation), so that each message has its own id, as Standard Webhooks asks:
/// receivers drop a repeated id as a retry.
fn message_id(event_id: &str, event_type: &str) -> String {
    match event_type {
        "check.consent_confirmed" => format!("{event_id}-consent"),
        RESULTS_EVENT_TYPE => format!("{event_id}-results"),
        _ => event_id.to_string(),
    }
}

/// Seed 003's "Candidate status update" body.
fn status_update_body(ev: &outbox::Model) -> Value {
    let p = &ev.payload;
    json!({
        "team_member_email": p["team_member_email"],
        "original_state": p["original_state"],
        "dashboard_url": p["dashboard_url"],
        "event_id": ev.event_id,
        "state": p["state"],
        "timestamp": p["timestamp"],
        "worker_email": p["worker_email"],
        "worker_id": p["worker_id"],
        "consent_date": p["consent_date"],
        "recheck_date": p["recheck_date"],
        "cm_criminal_enroll": p["cm_criminal_enroll"],
        "criminal_monitoring_triggered": p["criminal_monitoring_triggered"],
    })
}

/// Seed 003's "Consent Confirmation" body.
fn consent_body(ev: &outbox::Model) -> Value {
    let p = &ev.payload;
    json!({
        "hook_type": "CONSENT_CONFIRMATION",
        "turn_id": p["turn_id"],
        "reference_id": p["reference_id"],
        "worker_id": p["worker_id"],
        "consent_date": p["consent_timestamp"],
    })
}

/// A candidate's dispute during an adverse action's waiting period (the clock stops), or its
/// end with the report upheld (the clock runs again until `due_at`). Turn documents no such
/// webhook; without it a partner that only listens to webhooks would not know why the final
/// notice is late. A dispute settled in the candidate's favour is the check's move to
/// `approved`, which the status webhook reports.
fn dispute_body(ev: &outbox::Model, hook_type: &str) -> Value {
    let p = &ev.payload;
    let mut body = json!({
        "hook_type": hook_type,
        "event_id": ev.event_id,
        "timestamp": ev.created_at.timestamp(),
        "worker_id": p["worker_id"],
        "check_id": p["check_id"],
    });
    for key in ["reason", "remaining_business_days", "resolution", "due_at"] {
        if let Some(v) = p.get(key) {
            body[key] = v.clone();
        }
    }
    body
}

/// Cancels pending deliveries, those the caller's filter picks (an endpoint's, or one), whose
/// endpoint was disabled or deleted: nothing would send them, and `recoverWebhookDeliveries`
/// makes them due again once it is enabled.
fn cancel_pending(now: DateTime<Utc>) -> UpdateMany<delivery::Entity> {
    // Clearing `next_attempt_at` ends a lease too: an attempt in flight is logged when it ends
    // but leaves the delivery cancelled.
    delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value("cancelled"))
        .col_expr(
            delivery::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
        .filter(delivery::Column::Status.eq("pending"))
}

/// Cancels an endpoint's pending deliveries (it was disabled or deleted). On PostgreSQL a
/// delivery another transaction holds (its attempt being recorded, its lease being taken) is
/// skipped, not waited for: that transaction may be waiting for the endpoint row this one holds
/// (a success clearing its failing streak, a failure taking its turn), and waiting would
/// deadlock. A skipped delivery is cancelled when it is next sent, as its endpoint is then found
/// disabled or gone. SQLite runs one writer at a time.
async fn cancel_pending_of_endpoint<C: ConnectionTrait>(
    conn: &C,
    endpoint_id: &str,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    let mut cancel = cancel_pending(now);
    if conn.get_database_backend() == DbBackend::Postgres {
        let free = sea_orm::sea_query::Query::select()
            .column(delivery::Column::Id)
            .from(delivery::Entity)
            .and_where(delivery::Column::EndpointId.eq(endpoint_id))
            .and_where(delivery::Column::Status.eq("pending"))
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        cancel = cancel.filter(delivery::Column::Id.in_subquery(free));
    } else {
        cancel = cancel.filter(delivery::Column::EndpointId.eq(endpoint_id));
    }
    cancel.exec(conn).await?;
    Ok(())
}

fn endpoint_event(e: &endpoint::Model, actor: &Actor) -> Value {
    json!({"url": e.url, "event_types": e.event_types, "enabled": e.enabled, "actor": actor.subject})
}

async fn find_endpoint<C: ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    id: &str,
) -> ServiceResult<endpoint::Model> {
    endpoint::Entity::find_by_id(id.to_string())
        .owned_by(conn, endpoint::Column::PartnerId, partner_id)
        .await?
        .ok_or(ServiceError::not_found("webhook endpoint"))
}

/// As [`find_endpoint`], the row locked until the transaction ends (on PostgreSQL; SQLite's
/// writes take turns anyway).
async fn find_endpoint_for_update(
    txn: &sea_orm::DatabaseTransaction,
    partner_id: &str,
    id: &str,
) -> ServiceResult<endpoint::Model> {
    let mut q = endpoint::Entity::find_by_id(id.to_string());
    if txn.get_database_backend() == DbBackend::Postgres {
        q = q.lock_exclusive();
    }
    q.owned_by(txn, endpoint::Column::PartnerId, partner_id)
        .await?
        .ok_or(ServiceError::not_found("webhook endpoint"))
}
