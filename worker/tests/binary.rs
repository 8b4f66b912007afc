//! The `worker` binary on its own, as a scale-out deployment runs it: it takes the api's
//! configuration, delivers the events it finds in the outbox as signed webhooks (directly, not
//! through a proxy the environment names), and stops
//! gracefully on SIGTERM: on the embedded SQLite store, and with `CLEARHIRE_TEST_PG_URL` and
//! `CLEARHIRE_TEST_REDIS_URL` set on a fresh PostgreSQL database and Redis key prefix. (The
//! delivery paths themselves are tested through the api, whose `api worker` runs the same
//! `worker::setup::run_worker`.)
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use clap::Parser;
use entity::CheckStatus;
use service::candidate::CandidateInput;
use service::check::NewCheck;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use worker::config::Config;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

/// One request the receiver got: its head (request line and headers) and body.
#[derive(Debug, Clone)]
struct Received {
    head: String,
    body: serde_json::Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A webhook receiver on 127.0.0.1 that answers 204 to every POST and keeps what it got.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let head = text[..end].to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length").then(|| v.trim())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let body = serde_json::from_slice(&buf[end + 4..end + 4 + len])
                        .unwrap_or(serde_json::Value::Null);
                    keep.lock().expect("lock").push(Received { head, body });
                    let _ = sock
                        .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
            });
        }
    });
    (url, got)
}

/// A name no other run uses (`.ci/run` drops databases and keys of its run id afterwards).
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_nanos();
    format!("{:x}{nanos:x}", std::process::id())
}

/// Where the worker keeps its state: variables for the worker process, each also given to this
/// test's own configuration as the matching flag.
async fn deployment(dir: &std::path::Path) -> Vec<(&'static str, &'static str, String)> {
    let mut vars = vec![(
        "CLEARHIRE_DATA_DIR",
        "--data-dir",
        dir.to_str().expect("utf-8").to_string(),
    )];
    let Some(admin) = std::env::var("CLEARHIRE_TEST_PG_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        return vars;
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
    vars.push(("DATABASE_URL", "--database-url", url.to_string()));
    vars.push((
        "CLEARHIRE_JWT_SECRET",
        "--jwt-secret",
        service::crypto::Crypto::generate_key(),
    ));
    vars.push((
        "CLEARHIRE_ENCRYPTION_KEY",
        "--encryption-key",
        service::crypto::Crypto::generate_key(),
    ));
    if let Some(redis) = std::env::var("CLEARHIRE_TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
    {
        vars.push(("REDIS_URL", "--redis-url", redis));
        vars.push((
            "CLEARHIRE_REDIS_PREFIX",
            "--redis-prefix",
            format!("clearhire-test-{run}-{}", unique()),
        ));
    }
    vars
}

#[tokio::test]
async fn the_worker_binary_delivers_the_outbox_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("clearhire-worker-bin-{}", unique()));
    std::fs::create_dir_all(&dir).expect("data dir");
    let vars = deployment(&dir).await;
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
    let mut args = vec!["test".to_string()];
    for (_, flag, value) in &vars {
        args.extend([flag.to_string(), value.clone()]);
    }
    let config = Cli::parse_from(args).config;
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
            },
        )
        .await
        .expect("check");
    svc.transition_check(&actor, &check.id, CheckStatus::Processing, None)
        .await
        .expect("transition");
    svc.db().clone().close().await.expect("close");

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_worker"))
        .env_clear()
        .envs(vars.iter().map(|(var, _, value)| (var, value)))
        .env("CLEARHIRE_WEBHOOK_ALLOWLIST", "127.0.0.1")
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
        .env("CLEARHIRE_POLL_INTERVAL_MS", "20")
        .env("RUST_LOG", "info")
        .env("CLEARHIRE_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the worker binary");

    // Two events: the check created (`initiated`) and moved to `processing`.
    let mut hooks = Vec::new();
    for _ in 0..300 {
        hooks = got.lock().expect("lock").clone();
        if hooks.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        proxied.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "connections to the proxy in the environment"
    );

    let hooks_now = got.lock().expect("lock").clone();
    let mut states: Vec<(String, String)> = hooks_now
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
    for hook in &hooks_now {
        assert!(hook.head.starts_with("POST /hooks "), "{}", hook.head);
        assert_eq!(hook.body["worker_id"], cand.id.as_str());
        assert_eq!(
            hook.header("webhook-id"),
            hook.body["event_id"].as_str(),
            "webhook-id is the event id"
        );
        let signature = hook.header("webhook-signature").expect("signed");
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
    let scaled_out = vars.iter().any(|(var, _, _)| *var == "REDIS_URL");
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
    ] {
        assert!(!help.contains(hidden), "{hidden} listed in\n{help}");
    }
}
