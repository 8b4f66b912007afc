//! Webhook endpoints, their deliveries and attempts. Super admins only.
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{webhook_attempt, webhook_delivery, webhook_endpoint};
use service::webhook::{DeliveryFilter, EndpointPatch, event_types_of};
use worker::queue::JobQueue;

use super::error::{GqlResult, actor, gql, svc};

/// Where your events are delivered, signed per Standard Webhooks.
pub struct WebhookEndpoint(pub webhook_endpoint::Model);

/// A partner's webhook endpoint.
#[Object]
impl WebhookEndpoint {
    /// Endpoint id (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Where deliveries are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// Your note about it.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Subscribed event types; empty means all (`check.status_changed`,
    /// `check.consent_confirmed`, `adverse_action.disputed`, `adverse_action.resumed`,
    /// `webhook_endpoint.disabled`).
    async fn event_types(&self) -> Vec<String> {
        event_types_of(&self.0)
    }
    /// Disabled endpoints receive nothing.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Why it was disabled automatically (410 Gone, or failing for 5 days), if it was.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }
    /// The `whsec_…` signing secret. Verify `webhook-signature` with it. Null, with an error
    /// naming this endpoint, when it cannot be read (it was sealed with another
    /// `CLEARHIRE_ENCRYPTION_KEY`): the other endpoints are still listed, and
    /// `rotateWebhookSecret(id, immediately: true)` gives this one a new secret.
    async fn secret(&self, ctx: &Context<'_>) -> GqlResult<Option<String>> {
        svc(ctx)
            .webhook_secret(actor(ctx)?, &self.0)
            .map(Some)
            .map_err(gql)
    }
    /// Until when the secret replaced by the last rotation still signs alongside.
    async fn previous_secret_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.previous_secret_expires_at
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// One event for one destination.
pub struct WebhookDelivery(pub webhook_delivery::Model);

pub struct WebhookRecovery(Vec<String>);

/// The deliveries a recovery made due again (their ids only: a recovery after a long outage
/// may cover many thousands, whose bodies are not loaded for the answer).
#[Object]
impl WebhookRecovery {
    /// How many deliveries are due again.
    async fn count(&self) -> usize {
        self.0.len()
    }
    /// Their ids, oldest first.
    async fn delivery_ids(&self) -> Vec<ID> {
        self.0.iter().map(|id| ID(id.clone())).collect()
    }
}

/// A webhook delivery and its attempts.
#[Object]
impl WebhookDelivery {
    /// Delivery id.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The endpoint; null for results sent to a check's `callbackUrl`.
    async fn endpoint_id(&self) -> Option<ID> {
        self.0.endpoint_id.clone().map(ID)
    }
    /// Destination URL.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// The `webhook-id` header, the same on every attempt and resend: the event id for a status
    /// update; `<event id>-consent` and `<event id>-results` for the consent confirmation and the
    /// results webhook the same status change causes.
    async fn event_id(&self) -> &str {
        &self.0.event_id
    }
    /// `check.status_changed`, `check.consent_confirmed`, `check.results`,
    /// `adverse_action.disputed`, `adverse_action.resumed` or `webhook_endpoint.disabled`.
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// `pending`, `delivered`, `failed` (gave up) or `cancelled` (endpoint disabled or deleted).
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// The JSON body sent.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// Attempts since the delivery was created, resent or recovered (each of which starts the
    /// retry schedule afresh); `attempts` lists every attempt ever made.
    async fn attempt_count(&self) -> i32 {
        self.0.attempts
    }
    /// When the next attempt is due, while pending.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }
    /// HTTP status of the last attempt.
    async fn last_status_code(&self) -> Option<i32> {
        self.0.last_status_code
    }
    /// When it was delivered.
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Every attempt, oldest first.
    async fn attempts(&self, ctx: &Context<'_>) -> GqlResult<Vec<WebhookAttempt>> {
        let rows = svc(ctx)
            .delivery_attempts(actor(ctx)?, &self.0.id)
            .await
            .map_err(gql)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

/// One HTTP attempt of a delivery.
#[derive(SimpleObject)]
pub struct WebhookAttempt {
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The URL called.
    pub url: String,
    /// HTTP status, if the receiver answered.
    pub status_code: Option<i32>,
    /// The first 4 KB of the response body.
    pub response_body: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
    /// Connection error, timeout or refusal by the address guard.
    pub error: Option<String>,
}

impl From<webhook_attempt::Model> for WebhookAttempt {
    fn from(a: webhook_attempt::Model) -> Self {
        Self {
            at: a.attempted_at,
            url: a.url,
            status_code: a.status_code,
            response_body: a.response_body,
            duration_ms: a.duration_ms,
            error: a.error,
        }
    }
}

/// A webhook endpoint to create.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// Where to POST events.
    pub url: String,
    /// Your note about it.
    pub description: Option<String>,
    /// Event types to receive; empty or omitted for all.
    #[graphql(default)]
    pub event_types: Vec<String>,
}

/// Changes to an endpoint; omitted fields stay.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// New URL.
    pub url: Option<String>,
    /// New note.
    pub description: Option<String>,
    /// New event types.
    pub event_types: Option<Vec<String>>,
    /// Enable or disable; enabling clears an automatic disable.
    pub enabled: Option<bool>,
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// Your webhook endpoints.
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> GqlResult<Vec<WebhookEndpoint>> {
        Ok(svc(ctx)
            .webhook_endpoints(actor(ctx)?)
            .await
            .map_err(gql)?
            .into_iter()
            .map(WebhookEndpoint)
            .collect())
    }
    /// Deliveries, newest first, filtered by endpoint, status and event type (an endpoint event
    /// type or `check.results`); `first` of them after the delivery `after` (the last one of the
    /// page before).
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint_id: Option<ID>,
        status: Option<String>,
        event_type: Option<String>,
        #[graphql(default = 20)] first: u64,
        after: Option<ID>,
    ) -> GqlResult<Vec<WebhookDelivery>> {
        let filter = DeliveryFilter {
            endpoint_id: endpoint_id.map(|i| i.0),
            status,
            event_type,
            after: after.map(|i| i.0),
        };
        let rows = svc(ctx)
            .webhook_deliveries(actor(ctx)?, &filter, first)
            .await
            .map_err(gql)?;
        Ok(rows.into_iter().map(WebhookDelivery).collect())
    }
    /// One delivery.
    async fn webhook_delivery(&self, ctx: &Context<'_>, id: ID) -> GqlResult<WebhookDelivery> {
        Ok(WebhookDelivery(
            svc(ctx)
                .webhook_delivery(actor(ctx)?, &id)
                .await
                .map_err(gql)?,
        ))
    }
}

#[derive(Default)]
pub struct WebhookMutation;

/// Recovered deliveries queued per call.
const RECOVER_ENQUEUE_CHUNK: usize = 1000;

async fn queue_now(ctx: &Context<'_>, delivery_id: &str) -> GqlResult<()> {
    let queue = ctx.data_unchecked::<JobQueue>();
    queue
        .enqueue(delivery_id, None)
        .await
        .map_err(|e| gql(service::ServiceError::Internal(e)))
}

#[Object]
impl WebhookMutation {
    /// Adds an endpoint with a fresh `whsec_` secret.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> GqlResult<WebhookEndpoint> {
        let e = svc(ctx)
            .create_webhook_endpoint(
                actor(ctx)?,
                &input.url,
                input.description.as_deref(),
                &input.event_types,
            )
            .await
            .map_err(gql)?;
        Ok(WebhookEndpoint(e))
    }
    /// Changes an endpoint. A new URL applies to its deliveries not yet delivered (their retries,
    /// resends and recoveries); disabling it cancels its pending deliveries.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookEndpointInput,
    ) -> GqlResult<WebhookEndpoint> {
        let patch = EndpointPatch {
            url: input.url,
            description: input.description,
            event_types: input.event_types,
            enabled: input.enabled,
        };
        Ok(WebhookEndpoint(
            svc(ctx)
                .update_webhook_endpoint(actor(ctx)?, &id, patch)
                .await
                .map_err(gql)?,
        ))
    }
    /// New signing secret; the old one keeps signing alongside for 24 hours. CONFLICT while the
    /// secret before it is still in its 24 hours (rotating would cut them short). `immediately`
    /// (for a secret that leaked): the old secrets stop signing now.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = false)] immediately: bool,
    ) -> GqlResult<WebhookEndpoint> {
        Ok(WebhookEndpoint(
            svc(ctx)
                .rotate_webhook_secret(actor(ctx)?, &id, immediately)
                .await
                .map_err(gql)?,
        ))
    }
    /// Deletes an endpoint; its pending deliveries are cancelled.
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> GqlResult<WebhookEndpoint> {
        Ok(WebhookEndpoint(
            svc(ctx)
                .delete_webhook_endpoint(actor(ctx)?, &id)
                .await
                .map_err(gql)?,
        ))
    }
    /// Sends a delivery again now, with the same `webhook-id` and the whole retry schedule ahead
    /// of it. CONFLICT while its endpoint is disabled or deleted.
    async fn resend_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> GqlResult<WebhookDelivery> {
        let d = svc(ctx)
            .resend_delivery(actor(ctx)?, &id)
            .await
            .map_err(gql)?;
        queue_now(ctx, &d.id).await?;
        Ok(WebhookDelivery(d))
    }
    /// Sends again every failed or cancelled delivery of an endpoint created since `since`, each
    /// with the whole retry schedule ahead of it. Answers how many and their ids (oldest first):
    /// `webhookDeliveries(endpointId, status: "pending")` shows them.
    async fn recover_webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
        since: DateTime<Utc>,
    ) -> GqlResult<WebhookRecovery> {
        let ids = svc(ctx)
            .recover_deliveries(actor(ctx)?, &endpoint_id, since)
            .await
            .map_err(gql)?;
        let queue = ctx.data_unchecked::<JobQueue>();
        for chunk in ids.chunks(RECOVER_ENQUEUE_CHUNK) {
            if let Err(e) = queue.enqueue_many(chunk).await {
                // They are pending and due: the sweeper queues them.
                tracing::warn!(deliveries = chunk.len(), error = %e, "recovery: enqueue failed");
            }
        }
        Ok(WebhookRecovery(ids))
    }
}
