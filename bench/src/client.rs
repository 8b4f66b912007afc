//! A small GraphQL-over-HTTP client: one keep-alive connection pool, a checked request path
//! for set-up work that returns `data`, and a lean path for the measured loop that only
//! verifies the envelope.
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::Target;

#[derive(Clone)]
pub struct Gql {
    http: reqwest::Client,
    graphql_url: String,
    metrics_url: String,
    auth: HeaderValue,
}

/// The top level of a GraphQL response, without building its tree.
#[derive(Deserialize)]
struct Envelope {
    data: Option<IgnoredAny>,
    errors: Option<IgnoredAny>,
}

impl Gql {
    /// A client keeping up to `pool` idle HTTP/1.1 connections open to the server.
    pub fn new(target: &Target, pool: usize) -> anyhow::Result<Self> {
        let base = target.url.trim_end_matches('/');
        let base = base.strip_suffix("/graphql").unwrap_or(base);
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", target.token.trim()))
            .context("the token is not a header value")?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            graphql_url: format!("{base}/graphql"),
            metrics_url: format!("{base}/metrics"),
            auth,
        })
    }

    async fn send(&self, body: String) -> anyhow::Result<reqwest::Response> {
        self.http
            .post(&self.graphql_url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .context("sending the request")
    }

    /// Runs a query and returns its `data`; any HTTP status but 200 or any GraphQL error fails.
    pub async fn query(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let body = serde_json::json!({ "query": query, "variables": variables }).to_string();
        let resp = self.send(body).await?;
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the response body")?;
        let v: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("HTTP {status}: response is not JSON: {}", snippet(&bytes)))?;
        if let Some(errors) = v.get("errors") {
            bail!("HTTP {status}: GraphQL errors: {errors}");
        }
        if status != reqwest::StatusCode::OK {
            bail!("HTTP {status}: {}", snippet(&bytes));
        }
        match v.get("data") {
            Some(d) if !d.is_null() => Ok(d.clone()),
            _ => bail!("HTTP {status}: response has no data: {}", snippet(&bytes)),
        }
    }

    /// The measured path: POSTs a prepared body and succeeds only on HTTP 200 with non-null
    /// `data` and no `errors`. Returns the response size in bytes.
    pub async fn probe(&self, body: String) -> anyhow::Result<usize> {
        let resp = self.send(body).await?;
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the response body")?;
        let env: Envelope = serde_json::from_slice(&bytes)
            .with_context(|| format!("HTTP {status}: response is not JSON: {}", snippet(&bytes)))?;
        if status != reqwest::StatusCode::OK || env.errors.is_some() || env.data.is_none() {
            bail!("HTTP {status}: {}", snippet(&bytes));
        }
        Ok(bytes.len())
    }

    /// Statements per second the server runs on its own (outbox relay, sweepers) over `over`
    /// while this client sends nothing.
    pub async fn background_rate(&self, over: Duration) -> anyhow::Result<f64> {
        let before = self.statements_total().await?;
        let started = std::time::Instant::now();
        tokio::time::sleep(over).await;
        let after = self.statements_total().await?;
        Ok(after.saturating_sub(before) as f64 / started.elapsed().as_secs_f64())
    }

    /// `clearhire_db_statements_total` from `GET /metrics`.
    pub async fn statements_total(&self) -> anyhow::Result<u64> {
        self.metric("clearhire_db_statements_total").await
    }

    /// One value from `GET /metrics`.
    pub async fn metric(&self, name: &str) -> anyhow::Result<u64> {
        let text = self
            .http
            .get(&self.metrics_url)
            .send()
            .await
            .context("GET /metrics")?
            .error_for_status()
            .context("GET /metrics")?
            .text()
            .await
            .context("reading /metrics")?;
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .with_context(|| format!("/metrics has no {name}"))?
            .trim()
            .parse()
            .with_context(|| format!("{name} is not a number"))
    }
}

/// The first 300 characters of a body, for error messages.
fn snippet(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out: String = s.chars().take(300).collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out
}
