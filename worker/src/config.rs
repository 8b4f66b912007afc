//! The one typed configuration: defaults, overridden by environment variables (or flags).
//! `clearhire --help` lists every variable.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

/// A secret string that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Database URL: `sqlite://PATH?mode=rwc` or `postgres://USER@HOST/DB`. Unset: the embedded
    /// default, the SQLite file `clearhire.db` in DATA_DIR.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Redis URL for scale-out: the job queue and the event bus live there. Unset: jobs in a
    /// SQLite file under DATA_DIR and an in-process bus.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and channel of this deployment.
    #[arg(long, env = "CLEARHIRE_REDIS_PREFIX", default_value = "clearhire")]
    pub redis_prefix: String,

    /// Run the relay and job workers inside the api process. Default: yes without REDIS_URL,
    /// no with it (run `worker` processes instead).
    #[arg(long, env = "CLEARHIRE_EMBEDDED_WORKERS")]
    pub embedded_workers: Option<bool>,

    /// Concurrent webhook deliveries per worker process.
    #[arg(long, env = "CLEARHIRE_WORKER_CONCURRENCY", default_value_t = 32, value_parser = at_least_one_usize)]
    pub worker_concurrency: usize,

    /// Milliseconds between polls of idle job queues and the outbox (1 to 60000).
    #[arg(long, env = "CLEARHIRE_POLL_INTERVAL_MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub poll_interval_ms: u64,

    /// Comma-separated non-public IP addresses webhooks may still be delivered to (e.g. 127.0.0.1).
    #[arg(long, env = "CLEARHIRE_WEBHOOK_ALLOWLIST", default_value = "")]
    pub webhook_allowlist: String,

    /// Comma-separated addresses or networks of reverse proxies in front of the api (e.g.
    /// 127.0.0.1 for a proxy on the same host, 10.0.0.0/8 for a load balancer's subnet). A request from one of them is taken to come from the nearest
    /// address in its `X-Forwarded-For` that is not itself such a proxy (the candidate's address
    /// in consent evidence); from any other peer the header is not believed.
    #[arg(long, env = "CLEARHIRE_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,

    /// SMTP server for candidate mail, e.g. `smtps://user:pass@mail.example.com` or
    /// `smtp://127.0.0.1:25`; unset: mail is only kept (GraphQL `emails`) and logged.
    #[arg(long, env = "CLEARHIRE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,

    /// Sender of candidate mail.
    #[arg(
        long,
        env = "CLEARHIRE_MAIL_FROM",
        default_value = "clearhire <no-reply@clearhire.invalid>"
    )]
    pub mail_from: String,

    /// Milliseconds the built-in sandbox screening provider takes to return results.
    #[arg(long, env = "CLEARHIRE_SANDBOX_LATENCY_MS", default_value_t = 2000)]
    pub sandbox_latency_ms: u64,

    /// Address the HTTP server listens on.
    #[arg(long, env = "CLEARHIRE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Public base URL of this deployment, used in links (`dashboard_url`); default `http://LISTEN`.
    #[arg(long, env = "CLEARHIRE_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,

    /// Name of the consumer reporting agency (whoever operates this deployment) that consent
    /// forms and candidates' notices name.
    #[arg(long, env = "CLEARHIRE_AGENCY_NAME", default_value = "clearhire")]
    pub agency_name: String,

    /// The agency's postal address for the adverse-action notices (FCRA §615) and California's
    /// disclosure; `\n` or a newline between lines.
    #[arg(long, env = "CLEARHIRE_AGENCY_ADDRESS")]
    pub agency_address: Option<String>,

    /// The agency's telephone number (toll-free for a nationwide agency), for the same notices.
    #[arg(long, env = "CLEARHIRE_AGENCY_PHONE")]
    pub agency_phone: Option<String>,

    /// Directory for the embedded database (unless DATABASE_URL names another), the embedded job
    /// queue and generated secrets.
    #[arg(long, env = "CLEARHIRE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// HS256 secret for API tokens (at least 32 bytes). Generated into DATA_DIR on SQLite when unset;
    /// required on PostgreSQL.
    #[arg(long, env = "CLEARHIRE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// AES-256-GCM key for SSN, date of birth and reports: 32 bytes, base64. Generated into DATA_DIR
    /// on SQLite when unset; required on PostgreSQL.
    #[arg(long, env = "CLEARHIRE_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<Secret>,

    /// Database connection pool size [default: 4 on SQLite (one writer at a time; each
    /// connection is a thread and a page cache), 16 on PostgreSQL].
    #[arg(long, env = "CLEARHIRE_DB_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: Option<u32>,

    /// Largest `first`/`last` a list accepts.
    #[arg(long, env = "CLEARHIRE_MAX_PAGE_SIZE", default_value_t = 100)]
    pub max_page_size: u64,

    /// Deepest GraphQL query accepted.
    #[arg(long, env = "CLEARHIRE_MAX_QUERY_DEPTH", default_value_t = 10)]
    pub max_query_depth: usize,

    /// Largest GraphQL query complexity accepted (each field counts 1, lists count `first`×child).
    #[arg(long, env = "CLEARHIRE_MAX_QUERY_COMPLEXITY", default_value_t = 5000)]
    pub max_query_complexity: usize,

    /// Milliseconds batch loaders wait to collect keys before querying (nested lists).
    #[arg(long, env = "CLEARHIRE_BATCH_WINDOW_MS", default_value_t = 1)]
    pub batch_window_ms: u64,

    /// Seconds a token's validity (revocation, role) is cached per process.
    #[arg(long, env = "CLEARHIRE_TOKEN_CACHE_SECS", default_value_t = 5)]
    pub token_cache_secs: u64,

    /// Seconds between a running subscription's checks that its connection's token still holds
    /// (not revoked or expired, same role); when it no longer does, the subscription ends with
    /// an error.
    #[arg(long, env = "CLEARHIRE_LIVE_TOKEN_CHECK_SECS", default_value_t = 30)]
    pub live_token_check_secs: u64,

    /// Seconds a WebSocket may stay open without a successful `connection_init`; then it is
    /// closed with 4408 (graphql-transport-ws's "Connection initialisation timeout").
    #[arg(long, env = "CLEARHIRE_LIVE_INIT_TIMEOUT_SECS", default_value_t = 10)]
    pub live_init_timeout_secs: u64,

    /// Seconds between pings of an initialised WebSocket; one from which nothing (not even the
    /// pong) was heard over a whole interval after a ping is dropped. 0: no pings.
    #[arg(long, env = "CLEARHIRE_LIVE_KEEPALIVE_SECS", default_value_t = 30)]
    pub live_keepalive_secs: u64,

    /// Log every SQL statement.
    #[arg(long, env = "CLEARHIRE_LOG_SQL", default_value_t = false)]
    pub log_sql: bool,

    /// Log format: `text` or `json`.
    #[arg(long, env = "CLEARHIRE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Seconds in-flight requests get to finish on shutdown.
    #[arg(long, env = "CLEARHIRE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
}

impl Config {
    /// Defaults, as if no variable were set (tests start from this).
    pub fn defaults() -> Self {
        use clap::{FromArgMatches, Parser};
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            c: Config,
        }
        let matches = <Only as clap::CommandFactory>::command()
            .no_binary_name(true)
            .get_matches_from(Vec::<String>::new());
        match Only::from_arg_matches(&matches) {
            Ok(o) => o.c,
            Err(e) => panic!("defaults must parse: {e}"),
        }
    }

    pub fn runs_embedded_workers(&self) -> bool {
        self.embedded_workers.unwrap_or(self.redis_url.is_none())
    }

    /// The pool size: as configured, or the backend's default.
    pub fn db_pool_size(&self) -> u32 {
        self.db_max_connections
            .unwrap_or(if self.is_sqlite() { 4 } else { 16 })
    }

    /// The database: DATABASE_URL, or the SQLite file `clearhire.db` in DATA_DIR.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("clearhire.db").display()
            )
        })
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url
            .as_deref()
            .is_none_or(|u| u.starts_with("sqlite:"))
    }

    /// The agency the candidate-facing texts name, its website this deployment's public URL.
    pub fn agency(&self) -> service::screening::disclosures::Agency {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(|s| s.trim().replace("\\n", "\n"))
                .filter(|s| !s.is_empty())
        };
        service::screening::disclosures::Agency {
            name: self.agency_name.trim().to_string(),
            address: given(&self.agency_address),
            phone: given(&self.agency_phone),
            website: self.public_base_url(),
        }
    }

    pub fn public_base_url(&self) -> String {
        self.public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .into()
    }

    /// The JWT secret and encryption key: configured, or on SQLite generated once into DATA_DIR.
    pub fn secrets(&self) -> anyhow::Result<(Vec<u8>, [u8; 32])> {
        let jwt = match &self.jwt_secret {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => self
                .generated("jwt_secret", "CLEARHIRE_JWT_SECRET", || {
                    service::crypto::Crypto::generate_key()
                })?
                .into_bytes(),
        };
        if jwt.len() < 32 {
            anyhow::bail!("CLEARHIRE_JWT_SECRET must be at least 32 bytes");
        }
        let key = match &self.encryption_key {
            Some(s) => s.expose().to_string(),
            None => self.generated(
                "encryption_key",
                "CLEARHIRE_ENCRYPTION_KEY",
                service::crypto::Crypto::generate_key,
            )?,
        };
        let key = service::crypto::Crypto::parse_key(&key).context("CLEARHIRE_ENCRYPTION_KEY")?;
        Ok((jwt, key))
    }

    fn generated(
        &self,
        file: &str,
        var: &str,
        make: impl FnOnce() -> String,
    ) -> anyhow::Result<String> {
        if !self.is_sqlite() {
            anyhow::bail!("{var} is required when DATABASE_URL is not SQLite");
        }
        let path = self.data_dir.join(file);
        if let Ok(existing) = std::fs::read_to_string(&path) {
            return Ok(existing.trim().to_string());
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating {}", self.data_dir.display()))?;
        let value = make();
        write_private(&path, &value)?;
        tracing::warn!(path = %path.display(), "{var} is not set: generated one and stored it (set {var} to choose your own)");
        Ok(value)
    }
}

fn write_private(path: &Path, value: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(value.as_bytes())?;
    Ok(())
}

/// A count that must be at least 1 (0 workers would run nothing, silently).
fn at_least_one_usize(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Config;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Config {
        Cli::try_parse_from(std::iter::once("clearhire").chain(args.iter().copied()))
            .expect("arguments")
            .config
    }

    #[test]
    fn settings_that_make_no_sense_are_refused() {
        for args in [
            ["--poll-interval-ms", "0"],
            ["--poll-interval-ms", "60001"],
            ["--worker-concurrency", "0"],
            ["--db-max-connections", "0"],
            ["--log-format", "JSN"],
        ] {
            let refused = Cli::try_parse_from(std::iter::once("clearhire").chain(args));
            assert!(refused.is_err(), "{args:?}");
        }
        let c = parse(&["--poll-interval-ms", "1", "--worker-concurrency", "1"]);
        assert_eq!((c.poll_interval_ms, c.worker_concurrency), (1, 1));
    }

    #[test]
    fn the_embedded_database_lives_in_the_data_dir_unless_a_url_is_given() {
        let mut c = parse(&["--data-dir", "/srv/clearhire"]);
        // As without DATABASE_URL, whatever this process's environment holds.
        c.database_url = None;
        assert_eq!(
            c.database_url(),
            "sqlite:///srv/clearhire/clearhire.db?mode=rwc"
        );
        assert!(c.is_sqlite());
        let c = parse(&["--database-url", "postgres://app@db.internal/clearhire"]);
        assert_eq!(c.database_url(), "postgres://app@db.internal/clearhire");
        assert!(!c.is_sqlite());
    }
}
