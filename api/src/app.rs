//! Start-up: connect, migrate, bootstrap, bind, serve until shut down.
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use poem::Server;
use poem::listener::{Acceptor, AcceptorExt, Listener, TcpListener};
use service::bootstrap::NewPartner;
use service::crypto::Crypto;
use service::db::{self, DbOptions};
use service::{Service, ServiceSettings, auth::TokenAuthority};

use crate::config::Config;
use crate::graphql::{self, Limits};

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
        Some(url) => service.with_mailer(std::sync::Arc::new(worker::smtp::SmtpMailer::new(
            url.expose(),
            &config.mail_from,
        )?)),
        None => service,
    })
}

/// The bus and job queue this configuration asks for: Redis when `REDIS_URL` is set, else an
/// in-process bus and a SQLite job store under DATA_DIR.
pub async fn back_half(config: &Config) -> anyhow::Result<(worker::Bus, worker::queue::JobQueue)> {
    match &config.redis_url {
        Some(url) => Ok((
            worker::Bus::redis(url, &config.redis_prefix)
                .await
                .context("connecting the event bus to Redis")?,
            worker::queue::JobQueue::redis(url, &config.redis_prefix)
                .await
                .context("connecting the job queue to Redis")?,
        )),
        None => {
            std::fs::create_dir_all(&config.data_dir)?;
            let (queue, _) = worker::queue::JobQueue::sqlite(&config.data_dir.join("jobs.db"))
                .await
                .context("opening the job store")?;
            Ok((worker::Bus::in_process(), queue))
        }
    }
}

pub fn worker_config(config: &Config, relay: bool) -> anyhow::Result<worker::WorkerConfig> {
    Ok(worker::WorkerConfig {
        concurrency: config.worker_concurrency,
        poll_interval: Duration::from_millis(config.poll_interval_ms),
        allowlist: worker::ssrf::Allowlist::parse(&config.webhook_allowlist)
            .context("CLEARHIRE_WEBHOOK_ALLOWLIST must be comma-separated IP addresses")?,
        relay,
        name: "clearhire".into(),
    })
}

/// A server bound to its address, ready to run.
pub struct Application {
    pub addr: SocketAddr,
    pub service: Service,
    pub bus: worker::Bus,
    pub queue: worker::queue::JobQueue,
    /// Set when this start provisioned the demo partner on an empty database.
    pub bootstrapped: Option<NewPartner>,
    acceptor: poem::listener::BoxAcceptor,
    config: Config,
}

impl Application {
    pub async fn build(mut config: Config) -> anyhow::Result<Self> {
        let started = Instant::now();
        // Bind first so "address in use" fails the start, and so links use the real port.
        let acceptor = TcpListener::bind(config.listen)
            .into_acceptor()
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("listener has no socket address")?;
        if config.public_base_url.is_none() {
            config.public_base_url = Some(format!("http://{addr}"));
        }
        let service = service_from(&config).await?;
        let bootstrapped = service
            .bootstrap_if_empty()
            .await
            .map_err(|e| anyhow::anyhow!("bootstrap: {e}"))?;
        let (bus, queue) = back_half(&config).await?;
        tracing::info!(%addr, elapsed_ms = started.elapsed().as_millis() as u64, "ready");
        Ok(Self {
            addr,
            service,
            bus,
            queue,
            bootstrapped,
            acceptor: acceptor.boxed(),
            config,
        })
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish (bounded by the
    /// configured grace period).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let limits = Limits {
            depth: self.config.max_query_depth,
            complexity: self.config.max_query_complexity,
        };
        let workers = if self.config.runs_embedded_workers() {
            Some(
                worker::start(
                    self.service.clone(),
                    self.bus.clone(),
                    self.queue.clone(),
                    worker_config(&self.config, true)?,
                )
                .await?,
            )
        } else {
            None
        };
        let schema = graphql::build_schema(
            self.service.clone(),
            self.bus.clone(),
            self.queue.clone(),
            &limits,
        );
        let window = graphql::BatchWindow(Duration::from_millis(self.config.batch_window_ms));
        let app = crate::http::routes(schema, self.service.clone(), window);
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(
                app,
                shutdown,
                Some(Duration::from_secs(self.config.shutdown_grace_secs)),
            )
            .await?;
        if let Some(w) = workers {
            w.shutdown().await;
        }
        self.service.db().clone().close().await.ok();
        tracing::info!("stopped");
        Ok(())
    }
}
