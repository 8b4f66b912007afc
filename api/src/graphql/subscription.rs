//! Live subscriptions over the event bus; a subscriber only ever sees its own partner's events.
use std::sync::Arc;

use async_graphql::{Context, ID, Json, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast::error::RecvError;
use worker::{Bus, BusEvent};

use super::error::{GqlResult, actor, events_missed, lagged};
use super::types::CheckStatus;

/// A check changed status.
#[derive(SimpleObject, Clone)]
pub struct CheckStatusEvent {
    /// Stable event id (the same as the status webhook's `event_id`).
    pub event_id: String,
    /// The check.
    pub check_id: ID,
    /// Worker id of the candidate.
    pub candidate_id: ID,
    /// Turn id of the candidate.
    pub turn_id: String,
    /// Status before the change; null when the check was just created.
    pub original_state: Option<CheckStatus>,
    /// Status after the change.
    pub state: CheckStatus,
    /// Dashboard label of the new status.
    pub state_label: String,
    /// Email of the team member who made the change, if one did.
    pub team_member_email: Option<String>,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// Any domain event of the partner (candidate, check, package, team, token, webhook changes).
#[derive(SimpleObject, Clone)]
pub struct PartnerEvent {
    /// Stable event id.
    pub event_id: String,
    /// e.g. `check.status_changed`, `candidate.created`.
    pub event_type: String,
    /// Id of the thing that changed.
    pub aggregate_id: String,
    /// The event's data (never SSN or date of birth).
    pub payload: Json<serde_json::Value>,
    /// When it happened.
    pub at: DateTime<Utc>,
}

fn status_event(e: &BusEvent) -> Option<CheckStatusEvent> {
    let p = &e.payload;
    let parse = |v: &serde_json::Value| v.as_str().and_then(entity::CheckStatus::from_api_str);
    let state = parse(&p["state"])?;
    Some(CheckStatusEvent {
        event_id: e.event_id.clone(),
        check_id: ID(p["check_id"].as_str()?.to_string()),
        candidate_id: ID(p["worker_id"].as_str()?.to_string()),
        turn_id: p["turn_id"].as_str().unwrap_or_default().to_string(),
        original_state: parse(&p["original_state"]).map(Into::into),
        state: state.into(),
        state_label: state.dashboard_label().to_string(),
        team_member_email: p["team_member_email"].as_str().map(str::to_string),
        at: e.created_at,
    })
}

/// The partner's bus events that `pick` maps to an item. A subscriber that falls too far behind
/// gets an error item saying how many events it missed, then continues; after a break in the
/// bus (Redis went away and came back) it gets an error item saying events may be missing.
fn partner_stream<T: Send + 'static>(
    bus: &Bus,
    partner_id: String,
    pick: impl Fn(&BusEvent) -> Option<T> + Send + Sync + 'static,
) -> BoxStream<'static, GqlResult<T>> {
    let rx = bus.subscribe();
    let pick = Arc::new(pick);
    futures_util::stream::unfold(rx, move |mut rx| {
        let partner_id = partner_id.clone();
        let pick = pick.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(e) if e.is_gap() => return Some((Err(events_missed()), rx)),
                    Ok(e) if e.partner_id == partner_id => {
                        if let Some(item) = pick(&e) {
                            return Some((Ok(item), rx));
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        return Some((Err(lagged(n)), rx));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
    .boxed()
}

#[derive(Default)]
pub struct Subscription;

/// Live events over WebSocket (graphql-transport-ws or graphql-ws) at /graphql; send the token in
/// the `connection_init` payload as `{"Authorization": "Bearer <token>"}`.
#[Subscription]
impl Subscription {
    /// Status changes of your checks, of one candidate (worker id) if given.
    async fn check_status_changed(
        &self,
        ctx: &Context<'_>,
        candidate_id: Option<ID>,
    ) -> BoxStream<'static, GqlResult<CheckStatusEvent>> {
        let actor = match actor(ctx) {
            Ok(a) => a,
            Err(e) => return futures_util::stream::once(async move { Err(e) }).boxed(),
        };
        let bus = ctx.data_unchecked::<Bus>();
        partner_stream(bus, actor.partner_id.clone(), move |e| {
            if e.event_type != "check.status_changed" {
                return None;
            }
            let ev = status_event(e)?;
            match &candidate_id {
                Some(c) if c.0 != ev.candidate_id.0 => None,
                _ => Some(ev),
            }
        })
    }

    /// Every event of your partner that your role may see, of the given types if any: API token
    /// and webhook endpoint events need super_admin, team member events admin, adverse action
    /// events team_member; a limited team member's status changes come without their reason.
    async fn events(
        &self,
        ctx: &Context<'_>,
        types: Option<Vec<String>>,
    ) -> BoxStream<'static, GqlResult<PartnerEvent>> {
        let actor = match actor(ctx) {
            Ok(a) => a,
            Err(e) => return futures_util::stream::once(async move { Err(e) }).boxed(),
        };
        let bus = ctx.data_unchecked::<Bus>();
        let role = actor.role;
        partner_stream(bus, actor.partner_id.clone(), move |e| {
            if types.as_ref().is_some_and(|t| !t.contains(&e.event_type))
                || !role.at_least(service::events::min_role(&e.event_type))
            {
                return None;
            }
            let mut payload = e.payload.clone();
            if !super::check::sees_reasons(role)
                && let Some(p) = payload.as_object_mut()
            {
                p.remove("reason");
            }
            Some(PartnerEvent {
                event_id: e.event_id.clone(),
                event_type: e.event_type.clone(),
                aggregate_id: e.aggregate_id.clone(),
                payload: Json(payload),
                at: e.created_at,
            })
        })
    }
}
