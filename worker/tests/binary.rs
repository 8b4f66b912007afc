//! The `worker` binary on its own, as a scale-out deployment runs it: it takes the api's
//! configuration, delivers the events it finds in the outbox as signed webhooks (directly, not
//! through a proxy the environment names), and stops gracefully on SIGTERM: on the embedded SQLite store, and with `CLEARHIRE_TEST_PG_URL` and
//! `CLEARHIRE_TEST_REDIS_URL` set on a fresh PostgreSQL database and Redis key prefix. (The
//! delivery paths themselves are tested through the api, whose `api worker` runs the same
//! `worker::setup::run_worker`.)
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use clap::Parser;
use entity::CheckStatus;
use poem::web::Data;
use poem::{EndpointExt, Request, Route, handler, http::StatusCode, post};
use service::candidate::CandidateInput;
use service::check::NewCheck;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use worker::config::Config;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

/// One webhook the receiver got.
#[derive(Debug, Clone)]
struct Received {
    webhook_id: Option<String>,
    signature: Option<String>,
    body: serde_json::Value,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

#[handler]
fn receive(req: &Request, body: String, inbox: Data<&Inbox>) -> StatusCode {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    inbox.lock().expect("lock").push(Received {
        webhook_id: header("webhook-id"),
        signature: header("webhook-signature"),
        body: serde_json::from_str(&body).unwrap_or_default(),
    });
    StatusCode::NO_CONTENT
}

/// A webhook receiver on 127.0.0.1 at `/hooks`, keeping what it got.
async fn receiver() -> (String, Inbox) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let inbox = Inbox::default();
    let app = Route::new().at("/hooks", post(receive)).data(inbox.clone());
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).expect("acceptor");
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    (url, inbox)
}

/// A name no other run uses (`.ci/run` drops databases and keys of its run id afterwards).
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_nanos();
    format!("{:x}{nanos:x}", std::process::id())
}

/// Where the worker keeps its state, as flags given both to the worker process and to this
/// test's own configuration.
async fn deployment(dir: &std::path::Path) -> Vec<String> {
    let mut flags = vec!["--data-dir".into(), dir.to_str().expect("utf-8").into()];
    let Some(admin) = std::env::var("CLEARHIRE_TEST_PG_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        return flags;
    };
    let run = std::env::var("CLEARHIRE_TEST_RUN_ID").unwrap_or_else(|_| "local".into());
    let name = format!("clearhire_test_{run}_{}", unique());
    let conn = sea_orm::Database::connect(&admin)
        .await
        .expect("PostgreSQL reachable at CLEARHIRE_TEST_PG_URL");
    sea_orm::ConnectionTrait::execute_unprepared(&conn, &format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create database");
    conn.close().await.ok();
    let mut url = url::Url::parse(&admin).expect("CLEARHIRE_TEST_PG_URL");
    url.set_path(&name);
    flags.extend([
        "--database-url".into(),
        url.to_string(),
        "--jwt-secret".into(),
        service::crypto::Crypto::generate_key(),
        "--encryption-key".into(),
        service::crypto::Crypto::generate_key(),
    ]);
    if let Some(redis) = std::env::var("CLEARHIRE_TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
    {
        flags.extend([
            "--redis-url".into(),
            redis,
            "--redis-prefix".into(),
            format!("clearhire-test-{run}-{}", unique()),
        ]);
    }
    flags
}

#[tokio::test]
async fn the_worker_binary_delivers_the_outbox_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("clearhire-worker-bin-{}", unique()));
    std::fs::create_dir_all(&dir).expect("data dir");
    let flags = deployment(&dir).await;
    let (url, got) = receiver().await;
    // A proxy named in the environment must not be used: it would resolve and connect to the
    // endpoint itself, past the address guard.
    let proxy = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy_url = format!("http://{}", proxy.local_addr().expect("addr"));
    let proxied = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = proxied.clone();
    tokio::spawn(async move {
        while proxy.accept().await.is_ok() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    // State written by another process (here: this test, through the service layer) into the
    // embedded database: a partner with an endpoint, and a check moved to processing.
    let config = Cli::parse_from(std::iter::once(&"test".to_string()).chain(&flags)).config;
    let svc = worker::setup::service_from(&config).await.expect("service");
    let partner = svc
        .provision_partner("Worker Binary", "admin@example.com", 1)
        .await
        .expect("partner");
    let actor = svc.authenticate(&partner.token).await.expect("actor");
    svc.create_webhook_endpoint(&actor, &url, None, &["check.status_changed".into()])
        .await
        .expect("endpoint");
    let cand = svc
        .create_candidate(
            &actor,
            CandidateInput {
                first_name: Some("Ada".into()),
                last_name: Some("Worker".into()),
                email: Some("ada.worker@example.com".into()),
                ..Default::default()
            },
        )
        .await
        .expect("candidate");
    let check = svc
        .start_check(
            &actor,
            &cand.id,
            NewCheck {
                package_id: None,
                callback_url: None,
                reference_id: None,
                do_checks: false,
                email_candidate: true,
            },
        )
        .await
        .expect("check");
    // Consent given and searches under way: the system's move, not a team member's.
    let system = service::Actor::system(&actor.partner_id);
    svc.transition_check(&system, &check.id, CheckStatus::Processing, None)
        .await
        .expect("transition");
    svc.db().clone().close().await.expect("close");

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(&flags)
        .args([
            "--webhook-allowlist",
            "127.0.0.1",
            "--poll-interval-ms",
            "20",
            "--log-format",
            "json",
        ])
        .env_clear()
        .env("RUST_LOG", "info")
        .envs(
            [
                "HTTP_PROXY",
                "http_proxy",
                "HTTPS_PROXY",
                "https_proxy",
                "ALL_PROXY",
                "all_proxy",
            ]
            .map(|var| (var, proxy_url.as_str())),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the worker binary");

    // Two events: the check created (`initiated`) and moved to `processing`.
    for _ in 0..300 {
        if got.lock().expect("lock").len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for a duplicate to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        proxied.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "connections to the proxy in the environment"
    );
    let hooks = got.lock().expect("lock").clone();
    let mut states: Vec<(String, String)> = hooks
        .iter()
        .map(|r| {
            (
                r.body["original_state"].to_string(),
                r.body["state"].to_string(),
            )
        })
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("\"initiated\"".to_string(), "\"processing\"".to_string()),
            ("null".to_string(), "\"initiated\"".to_string()),
        ],
        "each event delivered once: {hooks:?}"
    );
    for hook in &hooks {
        assert_eq!(hook.body["worker_id"], cand.id.as_str());
        assert_eq!(
            hook.webhook_id.as_deref(),
            hook.body["event_id"].as_str(),
            "webhook-id is the event id"
        );
        let signature = hook.signature.as_deref().expect("signed");
        let mac = signature.strip_prefix("v1,").expect("v1 signature");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(mac)
                .expect("base64")
                .len(),
            32,
            "an HMAC-SHA256"
        );
    }

    let pid = child.id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the worker stops within 20 s of SIGTERM")
        .expect("wait");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .await
        .expect("logs");
    assert!(exit.success(), "exit {exit:?}\n{logs}");
    assert!(logs.contains("worker running"), "{logs}");
    let scaled_out = flags.iter().any(|f| f == "--redis-url");
    assert!(
        logs.contains(&format!(r#""redis":{scaled_out}"#)),
        "the job queue and bus it was given: {logs}"
    );
    assert!(logs.contains("stopped"), "{logs}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `worker --help` lists what a worker reads (the queue, the database, delivery settings) and
/// not the settings only api processes read.
#[test]
fn worker_help_lists_the_settings_a_worker_reads() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_worker"))
        .arg("--help")
        .output()
        .expect("run worker --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for listed in [
        "REDIS_URL",
        "DATABASE_URL",
        "CLEARHIRE_WORKER_CONCURRENCY",
        "CLEARHIRE_WEBHOOK_ALLOWLIST",
        "CLEARHIRE_PUBLIC_BASE_URL",
        "--relay",
    ] {
        assert!(help.contains(listed), "{listed} missing from\n{help}");
    }
    for hidden in [
        "--max-query-depth",
        "--max-query-complexity",
        "--batch-window-ms",
        "--embedded-workers",
        "--shutdown-grace-secs",
        "--trusted-proxies",
        "--live-keepalive-secs",
    ] {
        assert!(!help.contains(hidden), "{hidden} listed in\n{help}");
    }
}
