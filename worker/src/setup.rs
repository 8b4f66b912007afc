//! Building the back half from the one configuration, shared by the `worker` binary and the api
//! (which runs the same workers inside its process in the embedded mode, and `api worker`).
use std::time::Duration;

use anyhow::Context;
use service::crypto::Crypto;
use service::db::{self, DbOptions};
use service::{Service, ServiceSettings, auth::TokenAuthority};
use tracing_subscriber::EnvFilter;

use crate::bus::Bus;
use crate::config::Config;
use crate::queue::JobQueue;
use crate::runtime::WorkerConfig;
use crate::ssrf::Allowlist;

/// Logs to stderr, filtered by `RUST_LOG` (default: info, SQL statements off), as text or JSON
/// (`CLEARHIRE_LOG_FORMAT`).
pub fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,poem=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The service layer built from configuration, with migrations applied.
pub async fn service_from(config: &Config) -> anyhow::Result<Service> {
    let (jwt, key) = config.secrets()?;
    let (conn, counter) = db::connect(&DbOptions {
        url: config.database_url(),
        max_connections: config.db_pool_size(),
        log_statements: config.log_sql,
    })
    .await
    .context("connecting to the database")?;
    db::migrate(&conn).await.context("applying migrations")?;
    let service = Service::new(
        (conn, counter),
        Crypto::new(&key),
        TokenAuthority::new(&jwt),
        ServiceSettings {
            max_page_size: config.max_page_size,
            public_base_url: config.public_base_url(),
            token_cache_ttl: Duration::from_secs(config.token_cache_secs),
            agency: config.agency(),
        },
    )
    .with_provider(std::sync::Arc::new(
        service::screening::sandbox::SandboxProvider::new(Duration::from_millis(
            config.sandbox_latency_ms,
        )),
    ));
    Ok(match &config.smtp_url {
        Some(url) => service.with_mailer(std::sync::Arc::new(crate::smtp::SmtpMailer::new(
            url.expose(),
            &config.mail_from,
        )?)),
        None => service,
    })
}

/// The bus and job queue this configuration asks for: Redis when `REDIS_URL` is set, else an
/// in-process bus and a SQLite job store under DATA_DIR.
pub async fn back_half(config: &Config) -> anyhow::Result<(Bus, JobQueue)> {
    match &config.redis_url {
        Some(url) => Ok((
            Bus::redis(url, &config.redis_prefix)
                .await
                .context("connecting the event bus to Redis")?,
            JobQueue::redis(url, &config.redis_prefix)
                .await
                .context("connecting the job queue to Redis")?,
        )),
        None => {
            std::fs::create_dir_all(&config.data_dir)?;
            let (queue, _) = JobQueue::sqlite(&config.data_dir.join("jobs.db"))
                .await
                .context("opening the job store")?;
            Ok((Bus::in_process(), queue))
        }
    }
}

pub fn worker_config(config: &Config, relay: bool) -> anyhow::Result<WorkerConfig> {
    Ok(WorkerConfig {
        concurrency: config.worker_concurrency,
        poll_interval: Duration::from_millis(config.poll_interval_ms),
        allowlist: Allowlist::parse(&config.webhook_allowlist)
            .context("CLEARHIRE_WEBHOOK_ALLOWLIST must be comma-separated IP addresses")?,
        relay,
        name: "clearhire".into(),
    })
}

/// Runs the relay (when `relay`) and the job workers until SIGTERM or Ctrl-C, then lets the jobs
/// in flight finish: a worker process.
pub async fn run_worker(config: &Config, relay: bool) -> anyhow::Result<()> {
    if relay && config.redis_url.is_none() {
        tracing::warn!(
            "no REDIS_URL: this worker's relay publishes events on a bus of its own, which no api \
             process's live subscriptions hear, and its jobs wait in its own DATA_DIR/jobs.db; \
             set REDIS_URL here and in the api processes to scale out"
        );
    }
    let svc = service_from(config).await?;
    let (bus, queue) = back_half(config).await?;
    let handle = crate::start(svc.clone(), bus, queue, worker_config(config, relay)?).await?;
    tracing::info!(relay, redis = config.redis_url.is_some(), "worker running");
    shutdown_signal().await;
    handle.shutdown().await;
    svc.db().clone().close().await.ok();
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing work in flight");
}
