//! Domain events, written to the outbox in the transaction of the change they describe. The
//! event relay (worker) delivers them; nothing here does I/O beyond the insert.
use sea_orm::sea_query::{InsertStatement, WithClause};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryTrait, Set};
use serde_json::Value;

use crate::{ServiceResult, ids};

/// Event types, as they appear in the outbox and to subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    PartnerUpdated,
    TeamMemberInvited,
    TeamMemberUpdated,
    TeamMemberRemoved,
    ApiTokenCreated,
    ApiTokenRevoked,
    PackageCreated,
    PackageUpdated,
    PackageArchived,
    CandidateCreated,
    CandidateUpdated,
    CheckCreated,
    CheckStatusChanged,
    AdverseActionDisputed,
    AdverseActionResumed,
    MonitoringEnrolled,
    MonitoringUnenrolled,
    WebhookEndpointCreated,
    WebhookEndpointUpdated,
    WebhookEndpointDeleted,
    WebhookEndpointDisabled,
}

/// The least role that sees an event of `event_type` on the `events` subscription: the role the
/// queries of the same data require (tokens and webhook endpoints: super_admin; the team:
/// admin; adverse actions, whose reasons come from reports: team_member; the rest: everyone).
pub fn min_role(event_type: &str) -> entity::Role {
    use entity::Role;
    match event_type.split('.').next() {
        Some("api_token" | "webhook_endpoint") => Role::SuperAdmin,
        Some("team_member") => Role::Admin,
        Some("adverse_action") => Role::TeamMember,
        _ => Role::LimitedTeamMember,
    }
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PartnerUpdated => "partner.updated",
            Self::TeamMemberInvited => "team_member.invited",
            Self::TeamMemberUpdated => "team_member.updated",
            Self::TeamMemberRemoved => "team_member.removed",
            Self::ApiTokenCreated => "api_token.created",
            Self::ApiTokenRevoked => "api_token.revoked",
            Self::PackageCreated => "package.created",
            Self::PackageUpdated => "package.updated",
            Self::PackageArchived => "package.archived",
            Self::CandidateCreated => "candidate.created",
            Self::CandidateUpdated => "candidate.updated",
            Self::CheckCreated => "check.created",
            Self::CheckStatusChanged => "check.status_changed",
            Self::AdverseActionDisputed => "adverse_action.disputed",
            Self::AdverseActionResumed => "adverse_action.resumed",
            Self::MonitoringEnrolled => "monitoring.enrolled",
            Self::MonitoringUnenrolled => "monitoring.unenrolled",
            Self::WebhookEndpointCreated => "webhook_endpoint.created",
            Self::WebhookEndpointUpdated => "webhook_endpoint.updated",
            Self::WebhookEndpointDeleted => "webhook_endpoint.deleted",
            Self::WebhookEndpointDisabled => "webhook_endpoint.disabled",
        }
    }
}

/// Appends one event to the outbox on `conn` (the caller's transaction). Returns the event id.
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    event_type: EventType,
    aggregate_id: &str,
    data: Value,
) -> ServiceResult<String> {
    let (event_id, event) = outbox_insert(partner_id, event_type, aggregate_id, data);
    conn.execute(&event).await?;
    Ok(event_id)
}

/// Runs `first` (an insert of the change the event describes) and appends the event, on `conn`:
/// one statement on PostgreSQL (`first` in a `WITH` clause), two on SQLite, which has no
/// `INSERT` in a `WITH`. Returns the event id.
pub(crate) async fn record_with<C: ConnectionTrait>(
    conn: &C,
    first: InsertStatement,
    partner_id: &str,
    event_type: EventType,
    aggregate_id: &str,
    data: Value,
) -> ServiceResult<String> {
    let (event_id, event) = outbox_insert(partner_id, event_type, aggregate_id, data);
    if conn.get_database_backend() == DbBackend::Postgres {
        let with = WithClause::new()
            .cte(crate::db::cte("first", first))
            .to_owned();
        conn.execute(&with.query(event)).await?;
    } else {
        conn.execute(&first).await?;
        conn.execute(&event).await?;
    }
    Ok(event_id)
}

/// `first` (an insert of the change the event describes) and the event's insert as the `WITH`
/// clauses of a statement that follows them (PostgreSQL, which runs data-modifying `WITH`
/// clauses whatever the statement reads of them).
pub(crate) fn with_event(
    first: InsertStatement,
    partner_id: &str,
    event_type: EventType,
    aggregate_id: &str,
    data: Value,
) -> WithClause {
    with_events(first, partner_id, vec![(event_type, aggregate_id, data)])
}

/// As [`with_event`], with several events in one insert: the outbox numbers them in the order
/// given, which is the order the relay delivers them in.
pub(crate) fn with_events(
    first: InsertStatement,
    partner_id: &str,
    events: Vec<(EventType, &str, Value)>,
) -> WithClause {
    let rows = events.into_iter().map(|(event_type, aggregate_id, data)| {
        outbox_row(partner_id, event_type, aggregate_id, data).1
    });
    WithClause::new()
        .cte(crate::db::cte("first", first))
        .cte(crate::db::cte(
            "event",
            entity::outbox::Entity::insert_many(rows).into_query(),
        ))
        .to_owned()
}

/// The event's insert, writing it only if the `WITH` clause `from` returned a row (PostgreSQL;
/// see [`crate::db::insert_selecting`]).
pub(crate) fn insert_if_returned(
    from: &str,
    partner_id: &str,
    event_type: EventType,
    aggregate_id: &str,
    data: Value,
) -> InsertStatement {
    crate::db::insert_selecting(
        outbox_row(partner_id, event_type, aggregate_id, data).1,
        from,
    )
}

/// A new event's id and the statement that appends it to the outbox.
fn outbox_insert(
    partner_id: &str,
    event_type: EventType,
    aggregate_id: &str,
    data: Value,
) -> (String, InsertStatement) {
    let (event_id, row) = outbox_row(partner_id, event_type, aggregate_id, data);
    (event_id, entity::outbox::Entity::insert(row).into_query())
}

/// A new event's id and its outbox row.
fn outbox_row(
    partner_id: &str,
    event_type: EventType,
    aggregate_id: &str,
    data: Value,
) -> (String, entity::outbox::ActiveModel) {
    let event_id = ids::uuid();
    let row = entity::outbox::ActiveModel {
        event_id: Set(event_id.clone()),
        partner_id: Set(partner_id.to_string()),
        event_type: Set(event_type.as_str().to_string()),
        aggregate_id: Set(aggregate_id.to_string()),
        payload: Set(data),
        created_at: Set(crate::now()),
        published_at: Set(None),
        ..Default::default()
    };
    (event_id, row)
}
