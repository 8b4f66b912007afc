//! The Redis bus's subscribe connection against a connection that goes half-open: a proxy
//! between the bus and Redis stops passing bytes without closing anything, as a NAT that timed
//! the connection out would. Runs when `CLEARHIRE_TEST_REDIS_URL` is set (`.ci/run` sets it).
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use worker::bus::{Bus, BusEvent};

/// Forwards 127.0.0.1:<port> to `upstream`. Connections accepted before [`Proxy::blackhole`]
/// stop passing bytes either way (and stay open); later ones pass as usual.
struct Proxy {
    port: u16,
    blackholed_below: Arc<AtomicU64>,
    next_conn: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let blackholed_below = Arc::new(AtomicU64::new(0));
        let next_conn = Arc::new(AtomicU64::new(0));
        let (below, next) = (blackholed_below.clone(), next_conn.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pass(cr, sw, n, below.clone()));
                tokio::spawn(pass(sr, cw, n, below.clone()));
            }
        });
        Self {
            port,
            blackholed_below,
            next_conn,
        }
    }

    fn blackhole(&self) {
        self.blackholed_below
            .store(self.next_conn.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    conn: u64,
    blackholed_below: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        if conn < blackholed_below.load(Ordering::SeqCst) {
            // Swallowed: the peer waits for an answer that never comes.
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn event(id: &str) -> BusEvent {
    BusEvent {
        event_id: id.into(),
        partner_id: "P1".into(),
        event_type: "check.status_changed".into(),
        aggregate_id: "C1".into(),
        payload: serde_json::json!({}),
        created_at: chrono::Utc::now(),
    }
}

async fn next_event(
    rx: &mut tokio::sync::broadcast::Receiver<Arc<BusEvent>>,
    within: Duration,
) -> Arc<BusEvent> {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("an event in time")
        .expect("the bus is open")
}

#[tokio::test]
async fn a_half_open_subscribe_connection_is_noticed_and_replaced() {
    let Ok(redis_url) = std::env::var("CLEARHIRE_TEST_REDIS_URL") else {
        eprintln!("CLEARHIRE_TEST_REDIS_URL unset: the Redis bus is not tested");
        return;
    };
    let upstream = {
        let u = url::Url::parse(&redis_url).expect("redis url");
        format!(
            "{}:{}",
            u.host_str().expect("host"),
            u.port().unwrap_or(6379)
        )
    };
    let run = std::env::var("CLEARHIRE_TEST_RUN_ID").unwrap_or_else(|_| "local".into());
    let prefix = format!(
        "clearhire-test-{run}-bus-{}",
        std::process::id() ^ rand_suffix()
    );
    let proxy = Proxy::start(upstream).await;
    let bus = Bus::redis_checked_every(
        &format!("redis://127.0.0.1:{}", proxy.port),
        &prefix,
        Duration::from_millis(300),
    )
    .await
    .expect("bus");
    let mut rx = bus.subscribe();
    // Published straight to Redis, as another process's relay would.
    let direct = redis::Client::open(redis_url.as_str()).expect("client");
    let conn = direct
        .get_multiplexed_async_connection()
        .await
        .expect("direct connection");
    let publish = |e: BusEvent| {
        let mut conn = conn.clone();
        let channel = format!("{prefix}:events");
        async move {
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(serde_json::to_string(&e).expect("json"))
                .query_async::<i64>(&mut conn)
                .await
                .expect("publish")
        }
    };
    assert_eq!(publish(event("before")).await, 1, "one subscriber");
    assert_eq!(
        next_event(&mut rx, Duration::from_secs(5)).await.event_id,
        "before"
    );

    // A message this process cannot read (another version's event) is a gap its subscribers
    // are told of, and the events after it flow.
    let unreadable: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}:events"))
        .arg(r#"{"event_id":"x","shape":"of another version"}"#)
        .query_async(&mut conn.clone())
        .await
        .expect("publish");
    assert_eq!(unreadable, 1);
    let gap = next_event(&mut rx, Duration::from_secs(5)).await;
    assert!(gap.is_gap(), "{gap:?}");

    // A healthy connection answers its PINGs: several periods pass without a gap.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        matches!(
            rx.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Empty)
        ),
        "no gap while Redis answers"
    );
    assert_eq!(publish(event("still")).await, 1);
    assert_eq!(
        next_event(&mut rx, Duration::from_secs(5)).await.event_id,
        "still"
    );

    proxy.blackhole();
    // The subscription still looks open to Redis, which keeps sending into the void; the bus
    // notices the unanswered PING and tells its subscribers.
    let gap = next_event(&mut rx, Duration::from_secs(5)).await;
    assert!(gap.is_gap(), "{gap:?}");
    // Subscribed again through a new connection: told once more, then events flow.
    let restored = next_event(&mut rx, Duration::from_secs(10)).await;
    assert!(restored.is_gap(), "{restored:?}");
    let heard = async {
        loop {
            publish(event("after")).await;
            if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await
                && e.event_id == "after"
            {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), heard)
        .await
        .expect("events after the new subscription");
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}
