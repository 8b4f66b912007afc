//! The event bus subscriptions read from. In-process: a bounded broadcast channel. With Redis:
//! events are published to one channel and each process keeps ONE subscribe connection that
//! feeds its own bounded broadcast, so subscribers never open connections of their own. A slow
//! subscriber lags (and is told how many events it missed); it never blocks the others.
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// An event as subscribers see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BusEvent {
    pub event_id: String,
    pub partner_id: String,
    pub event_type: String,
    pub aggregate_id: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl From<entity::outbox::Model> for BusEvent {
    fn from(o: entity::outbox::Model) -> Self {
        Self {
            event_id: o.event_id,
            partner_id: o.partner_id,
            event_type: o.event_type,
            aggregate_id: o.aggregate_id,
            payload: o.payload,
            created_at: o.created_at,
        }
    }
}

/// The `event_type` of the marker a process's bus sends its subscribers when its Redis
/// subscription came back after a break: events published meanwhile never reached this process.
pub const GAP_EVENT: &str = "bus.gap";

impl BusEvent {
    /// The marker of a break in the bus (see [`GAP_EVENT`]); it belongs to no partner.
    pub fn gap() -> Self {
        Self {
            event_id: String::new(),
            partner_id: String::new(),
            event_type: GAP_EVENT.to_string(),
            aggregate_id: String::new(),
            payload: serde_json::Value::Null,
            created_at: Utc::now(),
        }
    }

    pub fn is_gap(&self) -> bool {
        self.event_type == GAP_EVENT
    }
}

/// How many events a subscriber may fall behind before it lags.
pub const BUS_CAPACITY: usize = 4096;

/// How often the subscribe connection is checked with a PING. A connection that went half-open
/// (a NAT's idle timeout, a failover without a reset) never ends by itself: without the check,
/// this process's subscribers would stop hearing other processes' events, silently.
pub const BUS_PING_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Bus {
    local: broadcast::Sender<Arc<BusEvent>>,
    redis: Option<RedisBus>,
}

#[derive(Clone)]
struct RedisBus {
    conn: redis::aio::ConnectionManager,
    channel: String,
}

impl Bus {
    /// In-process only (embedded mode).
    pub fn in_process() -> Self {
        let (local, _) = broadcast::channel(BUS_CAPACITY);
        Self { local, redis: None }
    }

    /// Redis pub/sub on `{prefix}:events`. Spawns the process's one subscriber task, which
    /// reconnects on its own if Redis goes away.
    pub async fn redis(url: &str, prefix: &str) -> anyhow::Result<Self> {
        Self::redis_checked_every(url, prefix, BUS_PING_EVERY).await
    }

    /// [`Self::redis`], its subscribe connection checked with a PING every `ping_every`.
    pub async fn redis_checked_every(
        url: &str,
        prefix: &str,
        ping_every: Duration,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager().await?;
        let channel = format!("{prefix}:events");
        let (local, _) = broadcast::channel(BUS_CAPACITY);
        let bus = Self {
            local: local.clone(),
            redis: Some(RedisBus {
                conn,
                channel: channel.clone(),
            }),
        };
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(redis_subscriber(
            client, channel, local, ready_tx, ping_every,
        ));
        // Subscribed before we return, so nothing published after start-up is missed.
        let _ = tokio::time::timeout(Duration::from_secs(5), ready_rx).await;
        Ok(bus)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>> {
        self.local.subscribe()
    }

    pub async fn publish(&self, events: Vec<BusEvent>) -> anyhow::Result<()> {
        match &self.redis {
            None => {
                for e in events {
                    // No subscribers is not an error.
                    let _ = self.local.send(Arc::new(e));
                }
            }
            Some(r) => {
                let mut conn = r.conn.clone();
                let mut pipe = redis::pipe();
                for e in &events {
                    pipe.cmd("PUBLISH")
                        .arg(&r.channel)
                        .arg(serde_json::to_string(e)?)
                        .ignore();
                }
                pipe.query_async::<()>(&mut conn).await?;
            }
        }
        Ok(())
    }
}

async fn redis_subscriber(
    client: redis::Client,
    channel: String,
    local: broadcast::Sender<Arc<BusEvent>>,
    ready: tokio::sync::oneshot::Sender<()>,
    ping_every: Duration,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    // Start-up's wait for the first subscription may have given up (after 5 s):
                    // then this first one comes late, and what was published before it is lost
                    // as after a break.
                    match ready.take().map(|r| r.send(())) {
                        Some(Ok(())) => {}
                        Some(Err(())) | None => {
                            // Subscribed again after a break: what was published meanwhile is
                            // lost to this process's subscribers, and they are told so.
                            tracing::warn!(
                                "bus: Redis subscription restored; subscribers told of the gap"
                            );
                            let _ = local.send(Arc::new(BusEvent::gap()));
                        }
                    }
                    let (mut sink, mut stream) = pubsub.split();
                    let mut ping = tokio::time::interval(ping_every);
                    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    ping.tick().await;
                    let why = loop {
                        tokio::select! {
                            msg = stream.next() => {
                                let Some(msg) = msg else {
                                    break "the subscription ended".to_string();
                                };
                                // An event this process cannot read (a publisher of another
                                // version, during a rolling upgrade) is one its subscribers
                                // miss: they are told, as after a break.
                                let event = msg
                                    .get_payload::<String>()
                                    .map_err(|e| e.to_string())
                                    .and_then(|text| {
                                        serde_json::from_str::<BusEvent>(&text)
                                            .map_err(|e| e.to_string())
                                    });
                                let event = event.unwrap_or_else(|err| {
                                    tracing::warn!(error = %err, "bus: unreadable message; subscribers told of a gap");
                                    BusEvent::gap()
                                });
                                let _ = local.send(Arc::new(event));
                            }
                            _ = ping.tick() => {
                                // Answered within the interval, or the connection is taken
                                // for broken.
                                match tokio::time::timeout(ping_every, sink.ping::<redis::Value>()).await {
                                    Ok(Ok(_)) => {}
                                    Ok(Err(e)) => break format!("PING failed: {e}"),
                                    Err(_) => break "PING unanswered".to_string(),
                                }
                            }
                        }
                    };
                    // Events published from now until the subscription is back never reach this
                    // process: subscribers are told at once, and again once it is back.
                    tracing::warn!(reason = %why, "bus: Redis subscription lost; reconnecting");
                    let _ = local.send(Arc::new(BusEvent::gap()));
                }
                Err(e) => tracing::warn!(error = %e, "bus: subscribe failed"),
            },
            Err(e) => tracing::warn!(error = %e, "bus: cannot connect to Redis"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
