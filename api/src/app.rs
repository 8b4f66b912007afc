//! Start-up: connect, migrate, bootstrap, bind, serve until shut down.
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use poem::Server;
use poem::listener::{Acceptor, AcceptorExt, Listener, TcpListener};
use service::Service;
use service::bootstrap::NewPartner;
use worker::config::Config;
use worker::setup::{back_half, service_from, worker_config};

use crate::client_ip::TrustedProxies;
use crate::graphql::{self, Limits};

/// A server bound to its address, ready to run.
pub struct Application {
    pub addr: SocketAddr,
    pub service: Service,
    pub bus: worker::Bus,
    pub queue: worker::queue::JobQueue,
    /// Set when this start provisioned the demo partner on an empty database.
    pub bootstrapped: Option<NewPartner>,
    acceptor: poem::listener::BoxAcceptor,
    proxies: TrustedProxies,
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
        let proxies = TrustedProxies::parse(&config.trusted_proxies)?;
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
            proxies,
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
        if !self.config.is_sqlite() && self.config.redis_url.is_none() {
            tracing::warn!(
                "PostgreSQL without REDIS_URL: this process's relay publishes events to its own \
                 subscribers only; with several api processes, set REDIS_URL so that live \
                 subscriptions see every change"
            );
        }
        if !self.config.runs_embedded_workers() && self.config.redis_url.is_none() {
            tracing::warn!(
                "CLEARHIRE_EMBEDDED_WORKERS=false without REDIS_URL: this process runs no relay \
                 and has no shared bus, so its live subscriptions see no events; run the workers \
                 inside it, or set REDIS_URL here and in the worker processes"
            );
        }
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
        let live = crate::live::SharedSubscriptions::new(
            schema.clone(),
            self.service.clone(),
            window,
            Duration::from_secs(self.config.live_token_check_secs.max(1)),
            crate::live::SocketTimes {
                init_timeout: Duration::from_secs(self.config.live_init_timeout_secs.max(1)),
                keepalive: (self.config.live_keepalive_secs > 0)
                    .then(|| Duration::from_secs(self.config.live_keepalive_secs)),
            },
        );
        let app = crate::http::routes(schema, self.service.clone(), window, live, self.proxies);
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(
                app,
                shutdown,
                Some(Duration::from_secs(self.config.shutdown_grace_secs)),
            )
            .await;
        // The in-process workers finish their jobs in flight however the server ended (an
        // error of the listener too), before the database closes under them.
        if let Some(w) = workers {
            w.shutdown().await;
        }
        self.service.db().clone().close().await.ok();
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}
