//! Sending one delivery: sign it, POST it with a 15 s timeout to a vetted address, record the
//! attempt, and schedule the retry the delivery's schedule asks for.
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use apalis::prelude::*;
use service::Service;
use service::webhook::{AttemptResult, NextStep};

use crate::queue::{DeliverWebhook, JobQueue};
use crate::sign;
use crate::ssrf::{Allowlist, GuardedResolver, check_literal};

/// What the dispatch job needs.
#[derive(Clone)]
pub struct Dispatcher {
    pub service: Service,
    pub queue: JobQueue,
    pub http: reqwest::Client,
    pub allow: Arc<Allowlist>,
}

/// Response bodies kept per attempt.
const BODY_CAP: usize = 4096;

impl Dispatcher {
    pub fn new(service: Service, queue: JobQueue, allow: Allowlist) -> anyhow::Result<Self> {
        let allow = Arc::new(allow);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve and connect to the endpoint itself,
            // past the address guard.
            .no_proxy()
            .user_agent("clearhire-webhooks/1")
            .dns_resolver(Arc::new(GuardedResolver {
                allow: allow.clone(),
            }))
            .pool_max_idle_per_host(32)
            .build()?;
        Ok(Self {
            service,
            queue,
            http,
            allow,
        })
    }

    /// Sends the delivery if it is still due; returns what happened next.
    pub async fn deliver(&self, delivery_id: &str) -> anyhow::Result<Option<NextStep>> {
        let Some(spec) = self.service.delivery_to_send(delivery_id).await? else {
            return Ok(None);
        };
        let d = &spec.delivery;
        let timestamp = chrono::Utc::now().timestamp();
        let started = Instant::now();
        // A secret that cannot sign (it does not decrypt, or is no whsec_ key: the service has
        // checked both) is the attempt's error: the attempt is logged and retried, not the job
        // aborted.
        let signature = match &spec.cannot_sign {
            Some(why) => Err(why.clone()),
            None if spec.secrets.is_empty() => Ok(None),
            None => sign::header(&spec.secrets, &d.event_id, timestamp, &d.body)
                .map(Some)
                // The decoder's message could name a character of the secret: not repeated.
                .map_err(|_| "the signing secret could not sign".to_string()),
        };
        let vetted = signature.and_then(|sig| {
            url::Url::parse(&d.url)
                .map_err(|e| e.to_string())
                .and_then(|u| check_literal(&u, &self.allow))
                .map(|()| sig)
        });
        let outcome = match vetted {
            Err(e) => AttemptResult {
                status_code: None,
                response_body: None,
                error: Some(e),
                duration_ms: 0,
                retry_after: None,
            },
            Ok(signature) => {
                let mut req = self
                    .http
                    .post(&d.url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &d.event_id)
                    .header("webhook-timestamp", timestamp.to_string());
                if let Some(signature) = signature {
                    req = req.header("webhook-signature", signature);
                }
                match req.body(d.body.clone()).send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let retry_after = resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| retry_after(v, chrono::Utc::now()));
                        let (body, read_error) = capped_body(resp).await;
                        AttemptResult {
                            status_code: Some(status),
                            response_body: body,
                            // The status decides the outcome; a body that could not be read
                            // (the timeout, a reset) is said in the log all the same.
                            error: read_error,
                            duration_ms: started.elapsed().as_millis() as i64,
                            retry_after,
                        }
                    }
                    Err(e) => AttemptResult {
                        status_code: None,
                        response_body: None,
                        error: Some(error_chain(&e)),
                        duration_ms: started.elapsed().as_millis() as i64,
                        retry_after: None,
                    },
                }
            }
        };
        let next = self.service.record_attempt(&spec, outcome).await?;
        if let NextStep::RetryAt(at) = &next {
            self.queue
                .enqueue(&d.id, Some(SystemTime::from(*at)))
                .await?;
        }
        Ok(Some(next))
    }
}

/// A `Retry-After` value: delay-seconds (a number too large for a `u64` reads as the longest
/// wait), or an HTTP-date in any of the three forms RFC 9110 has recipients read (IMF-fixdate,
/// RFC 850, asctime) as the time left until then.
fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let at = chrono::DateTime::<chrono::Utc>::from(httpdate::parse_http_date(value).ok()?);
    Some((at - now).to_std().unwrap_or_default())
}

/// The first `BODY_CAP` bytes of the response body: read until then and no further, so a large
/// body is neither held in memory nor waited for. The body is `None` if reading failed before
/// any byte; the error, if reading failed.
async fn capped_body(mut resp: reqwest::Response) -> (Option<String>, Option<String>) {
    let mut kept = Vec::new();
    let mut failed = None;
    while kept.len() < BODY_CAP {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                kept.extend_from_slice(&chunk[..chunk.len().min(BODY_CAP - kept.len())])
            }
            Ok(None) => break,
            Err(e) => {
                failed = Some(format!("reading the response body: {}", error_chain(&e)));
                break;
            }
        }
    }
    let body =
        (failed.is_none() || !kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned());
    (body, failed)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The apalis job handler.
pub async fn deliver_job(
    job: DeliverWebhook,
    dispatcher: Data<Dispatcher>,
) -> Result<(), BoxDynError> {
    match dispatcher.deliver(&job.delivery_id).await {
        Ok(_) => Ok(()),
        Err(e) => {
            // The delivery stays pending; the sweeper re-queues it.
            tracing::error!(delivery = %job.delivery_id, error = ?e, "webhook dispatch failed");
            Err(AbortError::new(std::io::Error::other(e.to_string())).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .expect("date")
            .with_timezone(&chrono::Utc);
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Fri, 04 Dec 2026 10:05:00 GMT", now),
            Some(Duration::from_secs(300))
        );
        // The two obsolete forms recipients must read too.
        assert_eq!(
            retry_after("Friday, 04-Dec-26 10:05:00 GMT", now),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            retry_after("Fri Dec  4 10:05:00 2026", now),
            Some(Duration::from_secs(300))
        );
        // A date already past: retry now.
        assert_eq!(
            retry_after("Fri, 04 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        // More seconds than fit: as long as can be (the sender caps it at a day).
        assert_eq!(
            retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
        assert_eq!(retry_after("", now), None);
    }
}
