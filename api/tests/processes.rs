//! Process-level behaviour, with the real `api` binary: a worker killed with SIGKILL in the middle
//! of a delivery delivers it after restart; and, on PostgreSQL + Redis, a change made through one
//! api process reaches a subscriber connected to another while a separate worker process sends
//! the webhooks.
use std::io::{BufRead, BufReader};
use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Request, Route, handler, post};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn random_hex() -> String {
    format!("{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Starts `api` with `args` and `env`; returns it and, if it printed one, the bootstrap token.
fn start(args: &[&str], env: &[(&str, String)], wait_token: bool) -> (Proc, Option<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_api"));
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn api");
    let mut token = None;
    if wait_token {
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        while let Some(Ok(line)) = lines.next() {
            let t = line.trim();
            if t.starts_with("eyJ") {
                token = Some(t.to_string());
                break;
            }
        }
        // Keep draining so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
    }
    (Proc(child), token)
}

async fn wait_ready(port: u16) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("api on {port} never became ready");
}

async fn gql(port: u16, token: &str, query: &str, vars: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .expect("request");
    let v: Value = r.json().await.expect("json");
    assert!(v.get("errors").is_none(), "{v}");
    v["data"].clone()
}

#[derive(Clone, Default)]
struct Hooks {
    ids: Arc<Mutex<Vec<String>>>,
    /// Hold the first request this long (the worker is killed meanwhile).
    stall_first: Arc<Mutex<Option<Duration>>>,
}

#[handler]
async fn hook(req: &Request, hooks: Data<&Hooks>) -> &'static str {
    let id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    hooks.ids.lock().expect("lock").push(id);
    let stall = hooks.stall_first.lock().expect("lock").take();
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    "ok"
}

async fn receiver(hooks: Hooks) -> String {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("addr");
    tokio::spawn(
        poem::Server::new_with_acceptor(acceptor)
            .run(Route::new().at("/hook", post(hook)).data(hooks)),
    );
    format!("http://{addr}/hook")
}

async fn setup_partner(port: u16, token: &str, hook_url: &str) -> String {
    gql(port, token, "mutation($u: String!) { createWebhookEndpoint(input: {url: $u, eventTypes: [\"check.status_changed\"]}) { id } }", json!({"u": hook_url})).await;
    let c = gql(port, token, "mutation { createCandidate(input: {firstName: \"Kill\", lastName: \"Nine\", email: \"k9@example.com\"}) { id } }", json!({})).await;
    c["createCandidate"]["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn a_delivery_interrupted_by_sigkill_is_delivered_after_restart() {
    let dir = std::env::temp_dir().join(format!("clearhire-kill-{}", random_hex()));
    let hooks = Hooks::default();
    *hooks.stall_first.lock().expect("lock") = Some(Duration::from_secs(30));
    let hook_url = receiver(hooks.clone()).await;
    let port = free_port();
    let env = vec![
        (
            "DATABASE_URL",
            format!("sqlite://{}/clearhire.db?mode=rwc", dir.display()),
        ),
        ("CLEARHIRE_DATA_DIR", dir.display().to_string()),
        ("CLEARHIRE_LISTEN", format!("127.0.0.1:{port}")),
        ("CLEARHIRE_WEBHOOK_ALLOWLIST", "127.0.0.1".into()),
        ("CLEARHIRE_POLL_INTERVAL_MS", "20".into()),
    ];
    let (first, token) = start(&[], &env, true);
    let token = token.expect("bootstrap token printed");
    wait_ready(port).await;
    let cand = setup_partner(port, &token, &hook_url).await;
    let started = gql(
        port,
        &token,
        "mutation($c: ID!) { startCheck(input: {candidateId: $c}) { id } }",
        json!({"c": cand}),
    )
    .await;
    let check = started["startCheck"]["id"]
        .as_str()
        .expect("check id")
        .to_string();

    // The first request arrives and hangs; kill the process in the middle of it.
    for _ in 0..200 {
        if !hooks.ids.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let first_id = hooks
        .ids
        .lock()
        .expect("lock")
        .first()
        .cloned()
        .expect("first attempt arrived");
    let pid = first.0.id();
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    drop(first);

    let (_second, _) = start(&[], &env, false);
    wait_ready(port).await;
    // The lease (20 s) runs out, the sweeper re-queues it, and it arrives again with the same id.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        let ids = hooks.ids.lock().expect("lock").clone();
        if ids.len() >= 2 {
            assert_eq!(ids[1], first_id, "same webhook-id after restart");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not redelivered after restart: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = gql(
        port,
        &token,
        "{ webhookDeliveries { status eventId } }",
        json!({}),
    )
    .await;
    assert_eq!(log["webhookDeliveries"][0]["status"], "delivered");

    // The agency's dispute commands reach the same database: none open, and this check has none
    // to resolve.
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_api"));
        cmd.args(args).env("RUST_LOG", "warn");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd.output().expect("run api")
    };
    let list = run(&["dispute", "list"]);
    assert!(list.status.success(), "{list:?}");
    assert!(list.stdout.is_empty(), "{list:?}");
    let resolve = run(&[
        "dispute",
        "resolve",
        &check,
        "--outcome",
        "upheld",
        "--resolution",
        "verified",
    ]);
    assert!(!resolve.status.success(), "{resolve:?}");
    let err = String::from_utf8_lossy(&resolve.stderr);
    assert!(err.contains("no open dispute"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_change_through_one_api_process_reaches_a_subscriber_on_another() {
    let (Ok(pg), Ok(redis)) = (
        std::env::var("CLEARHIRE_TEST_PG_URL"),
        std::env::var("CLEARHIRE_TEST_REDIS_URL"),
    ) else {
        eprintln!("skipped: set CLEARHIRE_TEST_PG_URL and CLEARHIRE_TEST_REDIS_URL");
        return;
    };
    let run = std::env::var("CLEARHIRE_TEST_RUN_ID").unwrap_or_else(|_| "local".into());
    let db = format!("clearhire_test_{run}_{}", random_hex());
    let status = Command::new("psql")
        .args([pg.as_str(), "-qc", &format!("CREATE DATABASE \"{db}\"")])
        .status()
        .expect("psql");
    assert!(status.success(), "create database");
    let base = pg
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(&pg)
        .to_string();
    let dir = std::env::temp_dir().join(format!("clearhire-multi-{}", random_hex()));
    let common = vec![
        ("DATABASE_URL", format!("{base}/{db}")),
        ("REDIS_URL", redis),
        (
            "CLEARHIRE_REDIS_PREFIX",
            format!("clearhire-test-{run}-{}", random_hex()),
        ),
        (
            "CLEARHIRE_JWT_SECRET",
            format!("{}{}{}", random_hex(), random_hex(), random_hex()),
        ),
        (
            "CLEARHIRE_ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        ),
        ("CLEARHIRE_DATA_DIR", dir.display().to_string()),
        ("CLEARHIRE_WEBHOOK_ALLOWLIST", "127.0.0.1".into()),
        ("CLEARHIRE_POLL_INTERVAL_MS", "20".into()),
    ];
    let (port_a, port_b) = (free_port(), free_port());
    let with = |port: u16| {
        let mut e = common.clone();
        e.push(("CLEARHIRE_LISTEN", format!("127.0.0.1:{port}")));
        e
    };
    let (_a, token) = start(&[], &with(port_a), true);
    let token = token.expect("token");
    wait_ready(port_a).await;
    let (_b, _) = start(&[], &with(port_b), false);
    wait_ready(port_b).await;
    let (_w, _) = start(&["worker"], &with(free_port()), false);

    let hooks = Hooks::default();
    let hook_url = receiver(hooks.clone()).await;
    let cand = setup_partner(port_a, &token, &hook_url).await;

    // Subscribe on B.
    let mut req = format!("ws://127.0.0.1:{port_b}/graphql")
        .into_client_request()
        .expect("req");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("h"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})
            .to_string(),
    ))
    .await
    .expect("init");
    ws.send(Message::text(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { checkStatusChanged { checkId state } }"}}).to_string())).await.expect("sub");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Change on A.
    let c = gql(
        port_a,
        &token,
        "mutation($c: ID!) { startCheck(input: {candidateId: $c}) { id } }",
        json!({"c": cand}),
    )
    .await;
    let check = c["startCheck"]["id"].as_str().expect("id").to_string();
    let got = loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("event in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            if v["type"] == "next" {
                break v;
            }
        }
    };
    assert_eq!(
        got["payload"]["data"]["checkStatusChanged"]["checkId"],
        check.as_str()
    );
    assert_eq!(
        got["payload"]["data"]["checkStatusChanged"]["state"],
        "emailed"
    );
    // And the worker process delivered the webhook.
    for _ in 0..200 {
        if !hooks.ids.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        hooks.ids.lock().expect("lock").len(),
        1,
        "exactly one delivery by the worker process"
    );
    drop(ws);
    let _ = Command::new("psql")
        .args([
            pg.as_str(),
            "-qc",
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        ])
        .status();
    let _ = std::fs::remove_dir_all(&dir);
}
