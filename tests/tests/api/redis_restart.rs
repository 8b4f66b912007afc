//! Redis going away and coming back mid-run: the bus and the job queue live there, the outbox
//! and the deliveries in the database, so every change made meanwhile is still delivered. Runs a
//! private `redis-server` on its own port (never the shared one other tests use) in the
//! PostgreSQL + Redis suite.
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, pg_url, spawn_app_with};
use crate::webhooks::{Receiver, endpoint, next_json, subscribe};

fn start_redis(port: u16) -> tokio::process::Child {
    tokio::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server starts (it is installed with the Redis the suite uses)")
}

async fn wait_redis(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server on {port} did not come up");
}

/// The check id of a `checkStatusChanged` message.
fn id_of(m: &serde_json::Value) -> String {
    m["payload"]["data"]["checkStatusChanged"]["checkId"]
        .as_str()
        .unwrap_or_else(|| panic!("a status change: {m}"))
        .to_string()
}

async fn withdraw(app: &TestApp, check: &str) {
    let r = app
        .gql(
            "mutation($c: ID!) { transitionCheck(input: {checkId: $c, status: withdrawn}) { status } }",
            json!({"c": check}),
        )
        .await;
    assert_eq!(r.data()["transitionCheck"]["status"], "withdrawn");
}

#[tokio::test]
async fn a_redis_restart_mid_run_loses_no_webhook() {
    if pg_url().is_none() || std::env::var("CLEARHIRE_TEST_REDIS_URL").is_err() {
        eprintln!("scale-out suite only (set CLEARHIRE_TEST_PG_URL and CLEARHIRE_TEST_REDIS_URL)");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut redis = start_redis(port);
    wait_redis(port).await;
    let app = spawn_app_with(|c| {
        c.redis_url = Some(format!("redis://127.0.0.1:{port}"));
        c.redis_prefix = "restart".into();
        c.embedded_workers = Some(true);
    })
    .await;
    let rx = Receiver::start().await;
    let mut checks = Vec::new();
    for n in 0..12 {
        let cand = app.candidate(&format!("restart{n}@example.com")).await;
        checks.push((cand.clone(), app.start_check(&cand, false).await));
    }
    // Only the withdrawals are delivered to the endpoint.
    tokio::time::sleep(Duration::from_millis(500)).await;
    endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    let delivered = |rx: &Receiver| -> BTreeSet<String> {
        rx.received()
            .iter()
            .filter(|r| r.json["state"] == "withdrawn")
            .filter_map(|r| r.json["worker_id"].as_str().map(str::to_string))
            .collect()
    };

    let mut live = subscribe(
        &app,
        &app.token,
        "subscription { checkStatusChanged { checkId state } }",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (_, check) in &checks[..4] {
        withdraw(&app, check).await;
    }
    rx.wait_for("the first deliveries", 10, |_| delivered(&rx).len() == 4)
        .await;

    // Redis dies. Changes keep being accepted: they are in the database with their events.
    redis.start_kill().expect("kill redis");
    let _ = redis.wait().await;
    for (_, check) in &checks[4..8] {
        withdraw(&app, check).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // It comes back empty (no persistence): queued jobs are gone, the rows are not.
    let _redis = start_redis(port);
    wait_redis(port).await;
    // The live subscriber saw the first four, then is told of the gap (changes made meanwhile
    // may never reach it) when the bus loses Redis and again once it is subscribed again, then
    // sees the changes made after.
    let mut before_gap = BTreeSet::new();
    loop {
        let m = next_json(&mut live).await;
        assert_eq!(m["type"], "next", "{m}");
        match m["payload"]["errors"][0]["extensions"]["code"].as_str() {
            Some("EVENTS_MISSED") => break,
            Some(other) => panic!("unexpected error {other}: {m}"),
            None => {
                before_gap.insert(id_of(&m));
            }
        }
    }
    let first: BTreeSet<String> = checks[..4].iter().map(|(_, c)| c.clone()).collect();
    assert_eq!(before_gap, first);
    // Told again once the bus is subscribed again; what is changed from then on reaches it.
    loop {
        let m = next_json(&mut live).await;
        if m["payload"]["errors"][0]["extensions"]["code"] == "EVENTS_MISSED" {
            break;
        }
        assert!(m["payload"].get("errors").is_none(), "{m}");
    }
    for (_, check) in &checks[8..] {
        withdraw(&app, check).await;
    }
    let last: BTreeSet<String> = checks[8..].iter().map(|(_, c)| c.clone()).collect();
    let mut after_gap = BTreeSet::new();
    while !last.is_subset(&after_gap) {
        let m = next_json(&mut live).await;
        assert!(m["payload"].get("errors").is_none(), "{m}");
        after_gap.insert(id_of(&m));
    }
    let want: BTreeSet<String> = checks.iter().map(|(c, _)| c.clone()).collect();
    rx.wait_for("every withdrawal, after the restart", 40, |_| {
        delivered(&rx) == want
    })
    .await;
    // At least once, and never as two different events: one webhook-id per change.
    let ids: BTreeSet<String> = rx
        .received()
        .iter()
        .filter(|r| r.json["state"] == "withdrawn")
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(ids.len(), 12);
}
