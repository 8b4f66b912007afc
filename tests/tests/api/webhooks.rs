//! Events out: signed webhooks to a local receiver that checks every request, retries, disabling,
//! the address guard, and live subscriptions over WebSocket.
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Request, Response, Route, handler, post};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    pub signature: Option<String>,
    pub body: String,
    pub json: Value,
}

/// A status to answer, with a `Retry-After` in seconds.
type Answer = (u16, Option<u64>);

#[derive(Clone, Default)]
struct ReceiverState {
    got: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer, in order (with a `Retry-After` in seconds if given); 200 once used up.
    script: Arc<Mutex<Vec<Answer>>>,
    /// The body of every answer; "thanks" unless set.
    reply: Arc<Mutex<Option<String>>>,
    /// How long to take over each answer, in order, in milliseconds; at once once used up.
    delays: Arc<Mutex<Vec<u64>>>,
}

#[handler]
async fn receive(req: &Request, body: String, state: Data<&ReceiverState>) -> Response {
    let h = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(h("content-type").as_deref(), Some("application/json"));
    let id = h("webhook-id").expect("webhook-id header");
    let timestamp: i64 = h("webhook-timestamp")
        .and_then(|t| t.parse().ok())
        .expect("webhook-timestamp header");
    assert!(
        (chrono::Utc::now().timestamp() - timestamp).abs() < 60,
        "timestamp is now"
    );
    let json: Value = serde_json::from_str(&body).expect("JSON body");
    let (status, retry_after) = {
        let mut script = state.script.lock().expect("lock");
        if script.is_empty() {
            (200, None)
        } else {
            script.remove(0)
        }
    };
    state.got.lock().expect("lock").push(Received {
        id,
        timestamp,
        signature: h("webhook-signature"),
        body,
        json,
    });
    let delay = {
        let mut delays = state.delays.lock().expect("lock");
        if delays.is_empty() {
            0
        } else {
            delays.remove(0)
        }
    };
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let mut resp = Response::builder().status(StatusCode::from_u16(status).expect("status"));
    if let Some(s) = retry_after {
        resp = resp.header("retry-after", s.to_string());
    }
    let reply = state.reply.lock().expect("lock").clone();
    resp.body(reply.unwrap_or_else(|| "thanks".into()))
}

pub struct Receiver {
    pub url: String,
    state: ReceiverState,
}

impl Receiver {
    pub async fn start() -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind");
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .expect("addr");
        let state = ReceiverState::default();
        let app = Route::new().at("/hook", post(receive)).data(state.clone());
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        Self {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    pub fn answer(&self, statuses: &[u16]) {
        *self.state.script.lock().expect("lock") = statuses.iter().map(|s| (*s, None)).collect();
    }

    /// Takes `ms` over each of the next answers, in order.
    pub fn answer_slowly(&self, ms: &[u64]) {
        *self.state.delays.lock().expect("lock") = ms.to_vec();
    }

    pub fn answer_with_retry_after(&self, status: u16, secs: u64) {
        *self.state.script.lock().expect("lock") = vec![(status, Some(secs))];
    }

    /// Answers every request with `body` from now on.
    pub fn reply_with(&self, body: String) {
        *self.state.reply.lock().expect("lock") = Some(body);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().expect("lock").clone()
    }

    /// Waits until `pred` holds for what was received.
    pub async fn wait_for(
        &self,
        what: &str,
        secs: u64,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.received();
            if pred(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; got {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

pub(crate) async fn endpoint(app: &TestApp, url: &str, types: Value) -> (String, String) {
    let r = app
        .gql(
            "mutation($u: String!, $t: [String!]!) { createWebhookEndpoint(input: {url: $u, eventTypes: $t}) { id secret enabled } }",
            json!({"u": url, "t": types}),
        )
        .await;
    let e = &r.data()["createWebhookEndpoint"];
    let secret = e["secret"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("whsec_"));
    (e["id"].as_str().expect("id").to_string(), secret)
}

/// Applies `input` (an `UpdateWebhookEndpointInput`) to the endpoint.
async fn update_endpoint(app: &TestApp, endpoint_id: &str, input: Value) {
    app.gql(
        "mutation($id: ID!, $i: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $i) { url enabled } }",
        json!({"id": endpoint_id, "i": input}),
    )
    .await
    .data();
}

/// Starts a check for a new candidate with its results going to `url`; returns the check's id.
async fn check_with_callback(app: &TestApp, email: &str, url: &str) -> String {
    app.gql(
        "mutation($c: ID!, $u: String!) { startCheck(input: {candidateId: $c, callbackUrl: $u}) { id } }",
        json!({"c": app.candidate(email).await, "u": url}),
    )
    .await
    .data()["startCheck"]["id"]
    .as_str()
    .expect("id")
    .to_string()
}

/// The results webhook of a check (with its own receiver as `callbackUrl`) moved to approved.
async fn approved_results(app: &TestApp, email: &str) -> Received {
    let results = Receiver::start().await;
    let check = check_with_callback(app, email, &results.url).await;
    for s in ["consent", "processing", "approved"] {
        app.system_moves(&check, s).await;
    }
    results
        .wait_for("the results webhook", 10, |g| !g.is_empty())
        .await
        .remove(0)
}

/// The id of the newest delivery once its first attempt has failed and it waits, pending, for
/// its retry.
async fn failed_once(app: &TestApp) -> String {
    eventually("the failed first attempt recorded", 5, || async {
        let d = app
            .gql(
                "{ webhookDeliveries { id status attemptCount } }",
                json!({}),
            )
            .await;
        let row = d.data()["webhookDeliveries"][0].clone();
        (row["attemptCount"] == 1 && row["status"] == "pending")
            .then(|| row["id"].as_str().expect("id").to_string())
    })
    .await
}

/// The id of the newest delivery.
async fn newest_delivery(app: &TestApp) -> String {
    app.gql("{ webhookDeliveries { id } }", json!({}))
        .await
        .data()["webhookDeliveries"][0]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

pub(crate) fn verified(r: &Received, secret: &str) -> bool {
    worker::sign::verify(
        secret,
        &r.id,
        r.timestamp,
        &r.body,
        r.signature.as_deref().unwrap_or(""),
    )
}

const STATUS_KEYS: [&str; 12] = [
    "team_member_email",
    "original_state",
    "dashboard_url",
    "event_id",
    "state",
    "timestamp",
    "worker_email",
    "worker_id",
    "consent_date",
    "recheck_date",
    "cm_criminal_enroll",
    "criminal_monitoring_triggered",
];

#[tokio::test]
async fn status_and_consent_webhooks_are_signed_and_shaped_as_the_seed() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (_, secret) = endpoint(&app, &rx.url, json!([])).await;
    let cand = app.candidate("hooks@example.com").await;
    let check = app.start_check(&cand, true).await;
    app.system_moves(&check, "consent").await;
    let got = rx
        .wait_for("2 status updates and a consent confirmation", 10, |g| {
            g.len() >= 3
        })
        .await;
    for r in &got {
        assert!(verified(r, &secret), "signature of {}", r.body);
    }
    // The consent confirmation comes from the same event as the consent status update, but is a
    // message of its own: receivers drop a repeated webhook-id as a retry.
    let ids: BTreeSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids.len(),
        got.len(),
        "each message has its own webhook-id: {got:#?}"
    );
    let status: Vec<&Received> = got
        .iter()
        .filter(|r| r.json.get("state").is_some())
        .collect();
    let consent: Vec<&Received> = got
        .iter()
        .filter(|r| r.json.get("hook_type").is_some())
        .collect();
    assert_eq!(status.len(), 2);
    assert_eq!(consent.len(), 1);
    let states: BTreeSet<String> = status
        .iter()
        .map(|r| format!("{}->{}", r.json["original_state"], r.json["state"]))
        .collect();
    assert_eq!(
        states,
        BTreeSet::from([
            "null->\"emailed\"".to_string(),
            "\"emailed\"->\"consent\"".to_string()
        ])
    );
    for r in &status {
        assert_eq!(
            keys(&r.json),
            STATUS_KEYS.iter().map(|s| s.to_string()).collect()
        );
        assert_eq!(
            r.json["event_id"],
            r.id.as_str(),
            "webhook-id is the event id"
        );
        assert!(r.json["timestamp"].is_i64());
        assert_eq!(r.json["worker_id"], cand.as_str());
        assert_eq!(r.json["worker_email"], "hooks@example.com");
        // The team member who started the check; consent is the candidate's, no team member's.
        let team_member = if r.json["state"] == "emailed" {
            json!("admin@demo.clearhire.dev")
        } else {
            Value::Null
        };
        assert_eq!(r.json["team_member_email"], team_member);
        assert_eq!(
            r.json["dashboard_url"],
            format!("http://{}/workers/{cand}", app.addr)
        );
        assert_eq!(r.json["criminal_monitoring_triggered"], false);
        assert!(r.json["recheck_date"].is_null() && r.json["cm_criminal_enroll"].is_null());
    }
    let after = status
        .iter()
        .find(|r| r.json["state"] == "consent")
        .expect("consent update");
    let date = after.json["consent_date"].as_str().expect("consent_date");
    assert!(
        date.len() == 10 && chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
        "{date}"
    );
    let c = &consent[0].json;
    assert_eq!(
        keys(c),
        [
            "hook_type",
            "turn_id",
            "reference_id",
            "worker_id",
            "consent_date"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    );
    assert_eq!(c["hook_type"], "CONSENT_CONFIRMATION");
    assert_eq!(c["worker_id"], cand.as_str());
    assert!(
        c["turn_id"]
            .as_str()
            .is_some_and(|t| t.starts_with('C') && t.len() == 11)
    );
    let ts = c["consent_date"].as_str().expect("consent timestamp");
    assert!(
        chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S%.6f").is_ok(),
        "{ts}"
    );

    // The delivery log shows each with its attempt (recorded just after the receiver answered).
    let rows = eventually("3 deliveries recorded as delivered", 5, || async {
        let log = app
            .gql("{ webhookDeliveries(first: 10) { eventId eventType status attemptCount attempts { statusCode durationMs } } }", json!({}))
            .await;
        let rows = log.data()["webhookDeliveries"].as_array().expect("rows").clone();
        let done = rows.len() == 3 && rows.iter().all(|d| d["status"] == "delivered");
        done.then_some(rows)
    })
    .await;
    assert!(
        rows.iter()
            .all(|d| d["attemptCount"] == 1 && d["attempts"][0]["statusCode"] == 200)
    );
    // Paged: two, then the rest after the second, the same three in the same order.
    let page = |after: Value| {
        let app = &app;
        async move {
            let r = app
                .gql(
                    "query($a: ID) { webhookDeliveries(first: 2, after: $a) { id eventId } }",
                    json!({"a": after}),
                )
                .await;
            r.data()["webhookDeliveries"]
                .as_array()
                .expect("page")
                .clone()
        }
    };
    let first = page(Value::Null).await;
    assert_eq!(first.len(), 2);
    let rest = page(first[1]["id"].clone()).await;
    assert_eq!(rest.len(), 1);
    let paged: Vec<&Value> = first.iter().chain(&rest).map(|d| &d["eventId"]).collect();
    let whole: Vec<&Value> = rows.iter().map(|d| &d["eventId"]).collect();
    assert_eq!(paged, whole);
    assert!(page(rest[0]["id"].clone()).await.is_empty());
}

/// Polls `check` for up to `secs` seconds until it returns a value.
pub(crate) async fn eventually<T, F, Fut>(what: &str, secs: u64, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn results_go_to_the_checks_callback_url_when_it_reaches_pending() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let r = app
        .gql(
            "mutation { createCandidate(input: {firstName: \"Walter\", middleName: \"Hartwell\", lastName: \"White\", email: \"ww@example.com\", dateOfBirth: \"1958-09-07\", referenceId: \"ww-1\"}) { id turnId } }",
            json!({}),
        )
        .await;
    let cand = r.data()["createCandidate"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let start = app
        .gql("mutation($c: ID!, $u: String!) { startCheck(input: {candidateId: $c, callbackUrl: $u, referenceId: \"ww-check-7\"}) { id } }", json!({"c": cand, "u": rx.url}))
        .await;
    let check = start.data()["startCheck"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    for s in ["consent", "processing", "pending"] {
        app.system_moves(&check, s).await;
    }
    let got = rx
        .wait_for("the results webhook", 10, |g| !g.is_empty())
        .await;
    assert_eq!(
        got.len(),
        1,
        "only results go to the callback (no endpoints configured)"
    );
    let b = &got[0].json;
    let seed_keys = [
        "checks",
        "current_address",
        "date_of_birth",
        "name",
        "license_number",
        "license_state",
        "email",
        "partner_worker_status",
        "dashboard_url",
        "turn_id",
        "reference_id",
        "callback_uuid",
        "worker_uuid",
        "consent_date",
        "recheck_date",
        "cm_criminal_enroll",
        "criminal_monitoring_triggered",
    ];
    assert_eq!(keys(b), seed_keys.iter().map(|s| s.to_string()).collect());
    assert_eq!(b["partner_worker_status"], "pending");
    assert_eq!(b["callback_uuid"], check.as_str());
    assert_eq!(b["worker_uuid"], cand.as_str());
    assert_eq!(b["name"], "Walter Hartwell White");
    assert_eq!(b["date_of_birth"], "1958-09-07");
    assert_eq!(
        b["reference_id"], "ww-check-7",
        "the check's own reference id before the candidate's"
    );
    assert!(
        got[0].signature.is_none(),
        "a partner without endpoints has no secret to sign with"
    );
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_event_again_then_410_disables_the_endpoint() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.answer(&[503]);
    let (endpoint_id, secret) = endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    let cand = app.candidate("retry@example.com").await;
    app.start_check(&cand, true).await;
    // ~5 s (±20%) after the 503 the same event comes again.
    let got = rx.wait_for("the retry", 15, |g| g.len() >= 2).await;
    assert_eq!(got[0].id, got[1].id, "same webhook-id on retry");
    assert_eq!(got[0].body, got[1].body);
    assert!(verified(&got[1], &secret));
    let gap = got[1].timestamp - got[0].timestamp;
    assert!((3..=8).contains(&gap), "retry after about 5 s, was {gap} s");
    // The receiver has it before the dispatcher records the answer: wait for the log.
    let row = eventually("the retry recorded as delivered", 5, || async {
        let d = app
            .gql(
                "{ webhookDeliveries { status attemptCount attempts { statusCode } } }",
                json!({}),
            )
            .await;
        let row = d.data()["webhookDeliveries"][0].clone();
        (row["status"] == "delivered").then_some(row)
    })
    .await;
    assert_eq!(
        row["attempts"],
        json!([{"statusCode": 503}, {"statusCode": 200}])
    );

    // 410 Gone: the endpoint is disabled and receives nothing more.
    rx.answer(&[410]);
    let check = app
        .gql(
            "query($c: ID!) { candidate(id: $c) { checks { id } } }",
            json!({"c": cand}),
        )
        .await;
    let check_id = check.data()["candidate"]["checks"][0]["id"]
        .as_str()
        .expect("check")
        .to_string();
    app.system_moves(&check_id, "consent").await;
    rx.wait_for("the 410", 10, |g| g.len() >= 3).await;
    let ep = eventually("the endpoint disabled", 5, || async {
        let e = app
            .gql(
                "{ webhookEndpoints { id enabled disabledReason } }",
                json!({}),
            )
            .await;
        let ep = e.data()["webhookEndpoints"][0].clone();
        (ep["enabled"] == false).then_some(ep)
    })
    .await;
    assert_eq!(ep["id"], endpoint_id.as_str());
    assert!(
        ep["disabledReason"]
            .as_str()
            .is_some_and(|r| r.contains("410")),
        "{ep}"
    );
    app.system_moves(&check_id, "processing").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rx.received().len(),
        3,
        "a disabled endpoint receives nothing"
    );
}

/// Deliveries failing at one endpoint at once disable it once: one `webhook_endpoint.disabled`
/// event, however many 410s arrive together.
#[tokio::test]
async fn concurrent_410s_disable_the_endpoint_once() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.answer(&[410; 40]);
    let (endpoint_id, _) = endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    let starts = (0..12).map(|i| {
        let app = &app;
        async move {
            let cand = app.candidate(&format!("gone{i}@example.com")).await;
            app.start_check(&cand, true).await
        }
    });
    futures_util::future::join_all(starts).await;
    eventually("the endpoint disabled", 10, || async {
        let e = app.gql("{ webhookEndpoints { enabled } }", json!({})).await;
        (e.data()["webhookEndpoints"][0]["enabled"] == false).then_some(())
    })
    .await;
    // Let every attempt in flight finish and record itself.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let disabled: Vec<_> = crate::checks::outbox_events(&app, &endpoint_id)
        .await
        .into_iter()
        .filter(|(t, _)| t == "webhook_endpoint.disabled")
        .collect();
    assert_eq!(
        disabled.len(),
        1,
        "{disabled:?}; {} answered",
        rx.received().len()
    );
}

/// Seconds between the first attempt of a status webhook and its retry, the receiver having
/// answered the first with `status` and a `Retry-After` of `secs`; both carry one webhook id.
async fn retry_gap(status: u16, secs: u64, email: &str) -> i64 {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.answer_with_retry_after(status, secs);
    endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    let cand = app.candidate(email).await;
    app.start_check(&cand, true).await;
    let got = rx.wait_for("the retry", 20, |g| g.len() >= 2).await;
    assert_eq!(got[0].id, got[1].id);
    got[1].timestamp - got[0].timestamp
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    // Far longer than the first scheduled retry (about 5 s): the header decides.
    let gap = retry_gap(429, 9, "slow-down@example.com").await;
    assert!((8..=11).contains(&gap), "waited {gap} s, asked for 9");
}

#[tokio::test]
async fn a_shorter_retry_after_does_not_bring_the_retry_forward() {
    // Asks for 1 s; the schedule's first retry is about 5 s (±20%) and stands.
    let gap = retry_gap(503, 1, "busy@example.com").await;
    assert!(
        (3..=7).contains(&gap),
        "waited {gap} s, the schedule says about 5"
    );
}

#[tokio::test]
async fn every_delivery_arrives_within_two_seconds_many_times_over() {
    // The workers' poll strategy must never stall (an idle worker that stops waking up would
    // leave a job until its 30 s heartbeat).
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    let mut expected = 0;
    for round in 0..15 {
        // Idle a moment now and then so the workers go back to polling an empty queue.
        tokio::time::sleep(Duration::from_millis(if round % 3 == 0 { 300 } else { 20 })).await;
        let cand = app.candidate(&format!("steady{round}@example.com")).await;
        let check = app.start_check(&cand, true).await;
        expected += 1;
        rx.wait_for("a delivery within 2 s", 2, |g| g.len() == expected)
            .await;
        app.transition(&check, "withdrawn").await.data();
        expected += 1;
        rx.wait_for("a delivery within 2 s", 2, |g| g.len() == expected)
            .await;
    }
}

#[tokio::test]
async fn non_public_addresses_are_refused_unless_allowlisted() {
    let app = spawn_app().await;
    // 127.0.0.2 is loopback but not allowlisted (the tests allowlist 127.0.0.1 only).
    let rx = Receiver::start().await;
    let blocked = rx.url.replace("127.0.0.1", "127.0.0.2");
    endpoint(&app, &blocked, json!([])).await;
    let cand = app.candidate("ssrf@example.com").await;
    app.start_check(&cand, true).await;
    let a = first_attempt(&app, "statusCode error").await;
    assert!(a["statusCode"].is_null());
    assert!(
        a["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a public address")),
        "{a}"
    );
    assert!(rx.received().is_empty());
}

/// The first attempt of the first delivery listed (its `fields`), once there is one.
async fn first_attempt(app: &TestApp, fields: &str) -> Value {
    let q = format!("{{ webhookDeliveries {{ attempts {{ {fields} }} }} }}");
    eventually("an attempt recorded", 10, || async {
        let d = app.gql(&q, json!({})).await;
        d.data()["webhookDeliveries"][0]["attempts"]
            .as_array()
            .and_then(|a| a.first().cloned())
    })
    .await
}

/// An attempt keeps the first 4 KB of what the endpoint answered, however much it sends.
#[tokio::test]
async fn an_attempts_response_body_is_capped() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let big: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    rx.reply_with(big.clone());
    rx.answer(&[500]);
    endpoint(&app, &rx.url, json!([])).await;
    let cand = app.candidate("capped@example.com").await;
    app.start_check(&cand, true).await;
    let a = first_attempt(&app, "statusCode responseBody").await;
    assert_eq!(a["statusCode"], 500);
    let kept = a["responseBody"].as_str().expect("a body");
    assert_eq!(kept.len(), 4096);
    assert_eq!(kept, &big[..4096]);
}

/// An endpoint that answers a status and then breaks off its body (it promised 100 bytes and
/// closed after 7): the attempt keeps the status and what came, and says the body was cut.
#[tokio::test]
async fn an_attempt_whose_body_breaks_off_says_so() {
    let app = spawn_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            // The whole request first (headers, then content-length bytes of body), so the
            // early close cannot reset it.
            let mut request = Vec::new();
            let mut chunk = [0u8; 8192];
            while let Ok(n) = socket.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let _ = socket
                .write_all(
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 100\r\n\r\npartial",
                )
                .await;
            let _ = socket.shutdown().await;
        }
    });
    endpoint(&app, &url, json!([])).await;
    let cand = app.candidate("cut@example.com").await;
    app.start_check(&cand, true).await;
    let a = first_attempt(&app, "statusCode responseBody error").await;
    assert_eq!(a["statusCode"], 500, "{a}");
    assert_eq!(a["responseBody"], "partial", "{a}");
    assert!(
        a["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("reading the response body")),
        "{a}"
    );
}

#[tokio::test]
async fn endpoints_and_delivery_logs_are_per_partner_and_super_admin_only() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (endpoint_id, _) = endpoint(&app, &rx.url, json!([])).await;
    let cand = app.candidate("iso@example.com").await;
    app.start_check(&cand, true).await;
    rx.wait_for("a delivery", 10, |g| !g.is_empty()).await;
    let delivery = newest_delivery(&app).await;

    let (_, other) = app.other_partner().await;
    let o = app
        .gql_as(
            Some(&other),
            "{ webhookEndpoints { id } webhookDeliveries { id } }",
            json!({}),
        )
        .await;
    assert_eq!(o.data()["webhookEndpoints"], json!([]));
    assert_eq!(o.data()["webhookDeliveries"], json!([]));
    // Every webhook operation on one id, with the id it is given.
    let on_an_id = [
        (
            "query($id: ID!) { webhookDelivery(id: $id) { id } }",
            delivery.as_str(),
        ),
        (
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {url: \"https://y.example.com\", enabled: false}) { id } }",
            endpoint_id.as_str(),
        ),
        (
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { id } }",
            endpoint_id.as_str(),
        ),
        (
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id } }",
            endpoint_id.as_str(),
        ),
        (
            "mutation($id: ID!) { resendWebhookDelivery(id: $id) { id } }",
            delivery.as_str(),
        ),
        (
            "mutation($id: ID!) { recoverWebhookDeliveries(endpointId: $id, since: \"2020-01-01T00:00:00Z\") { count } }",
            endpoint_id.as_str(),
        ),
    ];
    // Nothing of another partner's can be read, changed, resent, recovered or deleted, and a
    // refusal reads exactly as for an id that does not exist.
    for (query, id) in on_an_id {
        let theirs = app.gql_as(Some(&other), query, json!({"id": id})).await;
        let missing = app
            .gql_as(
                Some(&other),
                query,
                json!({"id": uuid::Uuid::new_v4().to_string()}),
            )
            .await;
        theirs.expect_err("NOT_FOUND", None);
        assert_eq!(theirs.0, missing.0, "{query}");
    }
    let by_endpoint = "query($id: ID!) { webhookDeliveries(endpointId: $id) { id } }";
    let theirs = app
        .gql_as(Some(&other), by_endpoint, json!({"id": endpoint_id}))
        .await;
    let missing = app
        .gql_as(
            Some(&other),
            by_endpoint,
            json!({"id": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(
        theirs.0, missing.0,
        "another partner's endpoint reads as missing"
    );
    assert!(!theirs.0.to_string().contains(&delivery), "{}", theirs.0);
    let own = app
        .gql(
            "{ webhookEndpoints { id url enabled } webhookDeliveries { id attemptCount status } }",
            json!({}),
        )
        .await;
    assert_eq!(
        own.data()["webhookEndpoints"],
        json!([{"id": endpoint_id, "url": rx.url, "enabled": true}]),
        "the owner's endpoint is untouched"
    );
    assert!(
        own.data()["webhookDeliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .all(|d| d["status"] == "delivered" && d["attemptCount"] == 1),
        "nothing was sent again: {}",
        own.data()
    );

    // A partner's admin (below super_admin) can neither read nor change its webhooks.
    let admin = app.token_with_role("admin").await;
    let lists = [
        "{ webhookEndpoints { id } }",
        "{ webhookDeliveries { id } }",
        "mutation { createWebhookEndpoint(input: {url: \"https://z.example.com\", eventTypes: []}) { id } }",
    ];
    let admin_ops = lists
        .into_iter()
        .map(|q| (q, json!({})))
        .chain(on_an_id.iter().map(|(q, id)| (*q, json!({"id": id}))));
    for (query, vars) in admin_ops {
        app.gql_as(Some(&admin), query, vars)
            .await
            .expect_err("FORBIDDEN", None);
    }
    let after = app
        .gql(
            "{ webhookEndpoints { id enabled previousSecretExpiresAt } }",
            json!({}),
        )
        .await;
    assert_eq!(
        after.data()["webhookEndpoints"],
        json!([{"id": endpoint_id, "enabled": true, "previousSecretExpiresAt": null}]),
        "nothing the admin tried took effect"
    );
    assert_eq!(rx.received().len(), 1, "nothing was sent again");
    app.gql("mutation { createWebhookEndpoint(input: {url: \"https://x.example.com\", eventTypes: [\"nope\"]}) { id } }", json!({}))
        .await
        .expect_err("BAD_USER_INPUT", Some("eventTypes"));
}

/// Deleting an endpoint cancels what it had pending (a failed first attempt waiting for its
/// retry), its deliveries cannot be resent or recovered, later events make no delivery for it,
/// and an event records the deletion.
#[tokio::test]
async fn a_deleted_endpoint_gets_nothing_more() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.answer(&[503]);
    let (endpoint_id, _) = endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    app.start_check(&app.candidate("deleted@example.com").await, true)
        .await;
    // The 503 leaves the delivery pending, its retry about 5 s away.
    let pending = failed_once(&app).await;
    let deleted = app
        .gql(
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id url } }",
            json!({"id": endpoint_id}),
        )
        .await;
    assert_eq!(
        deleted.data()["deleteWebhookEndpoint"],
        json!({"id": endpoint_id, "url": rx.url})
    );
    let after = app
        .gql(
            "query($id: ID!) { webhookEndpoints { id } webhookDelivery(id: $id) { status nextAttemptAt } }",
            json!({"id": pending}),
        )
        .await;
    assert_eq!(after.data()["webhookEndpoints"], json!([]));
    assert_eq!(
        after.data()["webhookDelivery"],
        json!({"status": "cancelled", "nextAttemptAt": null}),
        "its pending delivery is cancelled"
    );
    app.gql(
        "mutation($id: ID!) { resendWebhookDelivery(id: $id) { id } }",
        json!({"id": pending}),
    )
    .await
    .expect_err("CONFLICT", None);
    app.gql(
        "mutation($id: ID!) { recoverWebhookDeliveries(endpointId: $id, since: \"2020-01-01T00:00:00Z\") { count } }",
        json!({"id": endpoint_id}),
    )
    .await
    .expect_err("NOT_FOUND", None);
    app.gql(
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id } }",
        json!({"id": endpoint_id}),
    )
    .await
    .expect_err("NOT_FOUND", None);

    // A later status change makes no delivery; the deletion itself is an event.
    app.start_check(&app.candidate("after@example.com").await, true)
        .await;
    let recorded: Vec<String> = crate::checks::outbox_events(&app, &endpoint_id)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        recorded,
        ["webhook_endpoint.created", "webhook_endpoint.deleted"]
    );
    // Past the cancelled delivery's retry time (about 5 s after its 503), nothing came.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let ids: Vec<Value> = app
        .gql("{ webhookDeliveries { id } }", json!({}))
        .await
        .data()["webhookDeliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| d["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(pending)], "no delivery after the deletion");
    assert_eq!(rx.received().len(), 1, "only the first attempt was sent");
}

#[tokio::test]
async fn rotated_secrets_sign_side_by_side_and_resend_keeps_the_webhook_id() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (endpoint_id, old) = endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    let r = app.gql("mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret previousSecretExpiresAt } }", json!({"id": endpoint_id})).await;
    let new = r.data()["rotateWebhookSecret"]["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    assert_ne!(new, old);
    let cand = app.candidate("rotate@example.com").await;
    app.start_check(&cand, true).await;
    let got = rx.wait_for("a delivery", 10, |g| !g.is_empty()).await;
    assert!(
        verified(&got[0], &old) && verified(&got[0], &new),
        "both secrets sign during the grace period"
    );
    let id = newest_delivery(&app).await;
    app.gql(
        "mutation($id: ID!) { resendWebhookDelivery(id: $id) { status } }",
        json!({"id": id}),
    )
    .await
    .data();
    let got = rx.wait_for("the resend", 10, |g| g.len() >= 2).await;
    assert_eq!(got[0].id, got[1].id);
    // Results to a check's callback_url are signed with the same two secrets.
    let got = approved_results(&app, "rotate.results@example.com").await;
    assert!(
        verified(&got, &old) && verified(&got, &new),
        "both secrets sign the results during the grace period"
    );
    // Rotating again while the first old secret is in its 24 hours would cut them short.
    let rotate = "mutation($id: ID!, $now: Boolean!) { rotateWebhookSecret(id: $id, immediately: $now) { secret previousSecretExpiresAt } }";
    let r = app
        .gql(rotate, json!({"id": endpoint_id, "now": false}))
        .await;
    r.expect_err("CONFLICT", None);
    assert!(r.message().contains("immediately"), "{}", r.message());
    // 24 hours on, the old secret no longer signs, and rotating is allowed again.
    {
        use entity::webhook_endpoint as ep;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        ep::Entity::update_many()
            .col_expr(
                ep::Column::PreviousSecretExpiresAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)),
            )
            .filter(ep::Column::Id.eq(&endpoint_id))
            .exec(app.service.db())
            .await
            .expect("the 24 hours over");
    }
    let got = approved_results(&app, "rotate.expired@example.com").await;
    assert!(
        verified(&got, &new) && !verified(&got, &old),
        "the old secret stops signing after its 24 hours"
    );
    let r = app
        .gql(rotate, json!({"id": endpoint_id, "now": false}))
        .await;
    assert!(
        r.data()["rotateWebhookSecret"]["previousSecretExpiresAt"].is_string(),
        "a rotation after the 24 hours starts another grace period"
    );
    // A leaked secret: the new one alone signs from now on.
    let r = app
        .gql(rotate, json!({"id": endpoint_id, "now": true}))
        .await;
    let newest = r.data()["rotateWebhookSecret"]["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    assert!(r.data()["rotateWebhookSecret"]["previousSecretExpiresAt"].is_null());
    let got = approved_results(&app, "rotate.leaked@example.com").await;
    assert!(verified(&got, &newest), "the new secret signs");
    assert!(
        !verified(&got, &old) && !verified(&got, &new),
        "neither old secret signs"
    );
}

#[tokio::test]
async fn a_secret_that_does_not_decrypt_is_an_attempt_with_its_error() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    // A failing streak under way (a 503), which what follows must neither end nor extend.
    rx.answer(&[503]);
    app.start_check(&app.candidate("streak@example.com").await, false)
        .await;
    let streak = eventually("the failing streak", 10, || async {
        let e = app.dump("webhook_endpoints").await[0].clone();
        (!e["failing_since"].is_null()).then_some(e)
    })
    .await;
    let set_secret = |sealed: String| {
        let app = &app;
        async move {
            app.service
                .db()
                // Base64 and `v1:`, or plain words: nothing to quote.
                .execute_unprepared(&format!(
                    "UPDATE webhook_endpoints SET secret_enc = '{sealed}'"
                ))
                .await
                .expect("update");
        }
    };
    // As after the encryption key was changed: the stored secret no longer opens.
    set_secret("sealed-with-another-key".into()).await;
    app.start_check(&app.candidate("unsignable@example.com").await, true)
        .await;
    let row = eventually("the attempt recorded", 10, || async {
        let log = app
            .gql(
                "{ webhookDeliveries { id status attemptCount attempts { statusCode error } } }",
                json!({}),
            )
            .await;
        // The change's delivery (the streak's is the one whose first attempt was sent).
        log.data()["webhookDeliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .find(|r| r["attemptCount"] == 1 && r["attempts"][0]["statusCode"].is_null())
            .cloned()
    })
    .await;
    assert_eq!(row["status"], "pending", "retried on the schedule: {row}");
    let error = row["attempts"][0]["error"].as_str().expect("error");
    assert!(error.contains("could not be decrypted"), "{error}");
    assert_eq!(rx.received().len(), 1, "nothing is sent unsigned");

    // A secret that opens but is no key (not base64): an attempt with its error too, not a job
    // that fails before anything is logged (and is queued again for ever).
    set_secret(
        service::crypto::Crypto::new(&app.encryption_key)
            .seal("whsec_not*base64")
            .expect("seal"),
    )
    .await;
    app.gql(
        "mutation($id: ID!) { resendWebhookDelivery(id: $id) { id } }",
        json!({"id": row["id"]}),
    )
    .await
    .data();
    // The resend starts its count again: its attempt is the log's second.
    let row = eventually("the resend's attempt recorded", 10, || async {
        let log = app
            .gql(
                "query($id: ID!) { webhookDelivery(id: $id) { attempts { statusCode error } } }",
                json!({"id": row["id"]}),
            )
            .await;
        let row = log.data()["webhookDelivery"].clone();
        (row["attempts"].as_array().map_or(0, Vec::len) >= 2).then_some(row)
    })
    .await;
    let errors: Vec<&str> = row["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["error"].as_str())
        .collect();
    assert!(errors.iter().any(|e| e.contains("could not sign")), "{row}");
    assert_eq!(rx.received().len(), 1, "nothing is sent unsigned");
    // Those failures were ours, not the endpoint's: the streak is as it was, neither longer
    // nor ended (an unsent attempt is no success either).
    let endpoints = app.dump("webhook_endpoints").await;
    assert_eq!(
        (
            &endpoints[0]["failing_since"],
            &endpoints[0]["last_failure_at"]
        ),
        (&streak["failing_since"], &streak["last_failure_at"]),
        "{endpoints:?}"
    );
    assert_ne!(endpoints[0]["enabled"], json!(false), "{endpoints:?}");
}

/// Results whose report does not open (sealed with another key) are not sent, and do not
/// hold up the events after them (before, the relay retried that event for ever and nothing
/// after it was relayed).
#[tokio::test]
async fn results_that_cannot_be_built_do_not_stop_the_relay() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    let results = Receiver::start().await;
    let check = check_with_callback(&app, "unreadable@example.com", &results.url).await;
    for s in ["consent", "processing"] {
        app.system_moves(&check, s).await;
    }
    app.service
        .db()
        .execute_unprepared("UPDATE checks SET report_enc = 'sealed-with-another-key'")
        .await
        .expect("update");
    app.system_moves(&check, "approved").await;
    // A later change of another check still arrives.
    let later = app.candidate("after@example.com").await;
    app.start_check(&later, true).await;
    rx.wait_for("the approval and the later change", 10, |g| {
        g.iter().any(|r| r.json["state"] == "approved")
            && g.iter().any(|r| r.json["worker_id"] == later.as_str())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(results.received().is_empty());
}

/// Deliveries waiting behind a slow receiver have their jobs queued: the sweeper, which
/// re-queues deliveries whose job was lost, does not queue them again every round (before, each
/// round added a job for every delivery due for more than 5 s, up to 500).
#[tokio::test]
async fn the_sweeper_does_not_queue_a_backlog_again() {
    let app = spawn_app_with(|c| c.worker_concurrency = 1).await;
    let rx = Receiver::start().await;
    // Longer than the 15 s timeout: the first delivery holds the one worker for the whole test.
    rx.answer_slowly(&[20_000; 25]);
    endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    for i in 0..25 {
        let cand = app.candidate(&format!("backlog{i}@example.com")).await;
        app.start_check(&cand, false).await;
    }
    // Two or three sweeps (every 5 s) find 24 deliveries due for more than 5 s.
    tokio::time::sleep(Duration::from_secs(14)).await;
    let (stored, _) = app.job_queue().await.stored_jobs().await.expect("count");
    // 25 jobs, and on Redis up to a worker's fetch (10) that the count cannot see as queued.
    assert!(
        (25..40).contains(&stored),
        "{stored} delivery jobs for 25 deliveries"
    );
}

#[tokio::test]
async fn results_are_signed_by_the_oldest_enabled_endpoint() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (first, first_secret) = endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    let (_, second_secret) = endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    update_endpoint(&app, &first, json!({"enabled": false})).await;
    let got = approved_results(&app, "signer@example.com").await;
    assert!(
        verified(&got, &second_secret) && !verified(&got, &first_secret),
        "the enabled endpoint signs, not the older disabled one"
    );
}

/// PostgreSQL: the attempt that disables an endpoint cancels its pending deliveries without
/// waiting for one another transaction holds (as an attempt being recorded does, which may in
/// turn wait for the endpoint row), and that delivery is cancelled when it is next sent.
#[tokio::test]
async fn disabling_an_endpoint_does_not_wait_for_a_delivery_in_flight() {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let app = spawn_app().await;
    let db = app.service.db();
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return;
    }
    let rx = Receiver::start().await;
    rx.answer(&[503, 410]);
    let (endpoint_id, _) = endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    app.start_check(&app.candidate("held@example.com").await, true)
        .await;
    // The first delivery failed (503) and waits for its retry, about 5 s away.
    let held = failed_once(&app).await;
    let txn = db.begin().await.expect("begin");
    txn.query_one_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT id FROM webhook_deliveries WHERE id = $1 FOR UPDATE",
        [held.clone().into()],
    ))
    .await
    .expect("lock the pending delivery");
    // The second check's webhook is answered 410 Gone: the endpoint is disabled while the
    // other delivery is still held.
    app.start_check(&app.candidate("gone@example.com").await, true)
        .await;
    rx.wait_for("the 410", 5, |g| g.len() >= 2).await;
    eventually("the endpoint disabled", 5, || async {
        let r = app
            .gql("{ webhookEndpoints { id enabled } }", json!({}))
            .await;
        (r.data()["webhookEndpoints"][0]["id"] == endpoint_id.as_str()
            && r.data()["webhookEndpoints"][0]["enabled"] == false)
            .then_some(())
    })
    .await;
    txn.rollback().await.expect("release");
    // Its retry finds the endpoint disabled and cancels it, unsent.
    eventually("the held delivery cancelled", 15, || async {
        let d = app
            .gql("{ webhookDeliveries { id status } }", json!({}))
            .await;
        d.data()["webhookDeliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .any(|r| r["id"] == held.as_str() && r["status"] == "cancelled")
            .then_some(())
    })
    .await;
    assert_eq!(rx.received().len(), 2, "nothing sent after the 410");
}

/// Recovery makes the failed and cancelled deliveries of an endpoint created since a time due
/// again: they are returned as they now are (pending, no attempts) and sent with their ids.
#[tokio::test]
async fn recovery_sends_again_what_failed_since_a_time() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.answer(&[503; 3]);
    let (endpoint_id, _) = endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    app.start_check(&app.candidate("before@example.com").await, true)
        .await;
    rx.wait_for("the first 503", 10, |g| !g.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let since = chrono::Utc::now();
    for n in 0..2 {
        app.start_check(&app.candidate(&format!("after{n}@example.com")).await, true)
            .await;
    }
    let got = rx.wait_for("three 503s", 10, |g| g.len() >= 3).await;
    eventually("the three 503s recorded", 10, || async {
        let d = app
            .gql("{ webhookDeliveries { attemptCount } }", json!({}))
            .await;
        d.data()["webhookDeliveries"]
            .as_array()
            .is_some_and(|a| a.len() == 3 && a.iter().all(|r| r["attemptCount"] == 1))
            .then_some(())
    })
    .await;
    let set_enabled =
        |enabled: bool| update_endpoint(&app, &endpoint_id, json!({"enabled": enabled}));
    // Disabling cancels the three (waiting for their retries); recovery needs it enabled.
    set_enabled(false).await;
    app.gql(
        "mutation($id: ID!, $s: DateTime!) { recoverWebhookDeliveries(endpointId: $id, since: $s) { count } }",
        json!({"id": endpoint_id, "s": since.to_rfc3339()}),
    )
    .await
    .expect_err("CONFLICT", None);
    set_enabled(true).await;
    let r = app
        .gql(
            "mutation($id: ID!, $s: DateTime!) { recoverWebhookDeliveries(endpointId: $id, since: $s) { count deliveryIds } }",
            json!({"id": endpoint_id, "s": since.to_rfc3339()}),
        )
        .await;
    let recovered = r.data()["recoverWebhookDeliveries"].clone();
    assert_eq!(
        recovered["count"], 2,
        "only those created since: {recovered}"
    );
    let ids = recovered["deliveryIds"].as_array().expect("ids").clone();
    let mut rows = Vec::new();
    for id in &ids {
        let d = app
            .gql(
                "query($id: ID!) { webhookDelivery(id: $id) { eventId createdAt } }",
                json!({"id": id}),
            )
            .await;
        rows.push(d.data()["webhookDelivery"].clone());
    }
    assert!(
        rows[0]["createdAt"].as_str() <= rows[1]["createdAt"].as_str(),
        "oldest first: {rows:?}"
    );
    assert_eq!(rows.len(), 2, "only those created since: {rows:?}");
    let again = rx.wait_for("the two recovered", 10, |g| g.len() >= 5).await;
    let mut sent: Vec<&str> = again[3..].iter().map(|g| g.id.as_str()).collect();
    let mut want: Vec<&str> = rows
        .iter()
        .map(|r| r["eventId"].as_str().expect("eventId"))
        .collect();
    sent.sort();
    want.sort();
    assert_eq!(sent, want);
    assert!(
        got[1..].iter().all(|g| want.contains(&g.id.as_str())),
        "the same webhook-ids as their first attempts"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rx.received().len(),
        5,
        "the one from before `since` stays cancelled"
    );
}

/// An attempt that ends after its delivery was resent does not undo the resend: the delivery
/// keeps the outcome of the resend's attempt (here delivered, not the slow attempt's 503 with a
/// retry to come), and both attempts are logged.
#[tokio::test]
async fn a_slow_attempt_does_not_undo_a_resend_made_meanwhile() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.answer(&[503]);
    rx.answer_slowly(&[2000]);
    endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    app.start_check(&app.candidate("slow@example.com").await, true)
        .await;
    rx.wait_for("the slow attempt", 10, |g| !g.is_empty()).await;
    let id = newest_delivery(&app).await;
    app.gql(
        "mutation($id: ID!) { resendWebhookDelivery(id: $id) { status } }",
        json!({"id": id}),
    )
    .await
    .data();
    rx.wait_for("the resend", 5, |g| g.len() >= 2).await;
    let row = eventually("both attempts logged", 10, || async {
        let d = app
            .gql(
                "query($id: ID!) { webhookDelivery(id: $id) { status attempts { statusCode } } }",
                json!({"id": id}),
            )
            .await;
        let row = d.data()["webhookDelivery"].clone();
        (row["attempts"].as_array().map_or(0, Vec::len) == 2).then_some(row)
    })
    .await;
    assert_eq!(row["status"], "delivered", "{row}");
    // No retry of the slow attempt's 503 follows (it would come about 5 s later).
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(rx.received().len(), 2);
}

/// Deliveries not yet delivered follow their endpoint: a fixed URL gets the retries, disabling
/// cancels what is pending, a resend waits for the endpoint to be enabled and then has the whole
/// retry schedule ahead of it.
#[tokio::test]
async fn undelivered_deliveries_follow_their_endpoints_url_and_state() {
    let app = spawn_app().await;
    let broken = Receiver::start().await;
    broken.answer(&[503; 10]);
    let fixed = Receiver::start().await;
    let (endpoint_id, _) = endpoint(&app, &broken.url, json!(["check.status_changed"])).await;
    let cand = app.candidate("moved@example.com").await;
    let check = app.start_check(&cand, true).await;
    let first = broken
        .wait_for("the first attempt", 10, |g| !g.is_empty())
        .await;
    let set = |input: Value| update_endpoint(&app, &endpoint_id, input);
    set(json!({"url": fixed.url})).await;
    // The retry (about 5 s later) goes to the new URL, with the same webhook-id.
    let got = fixed
        .wait_for("the retry at the fixed URL", 15, |g| !g.is_empty())
        .await;
    assert_eq!(got[0].id, first[0].id);
    assert_eq!(broken.received().len(), 1, "the old URL got nothing more");
    let log = eventually("the retry recorded", 5, || async {
        let d = app
            .gql(
                "{ webhookDeliveries { url status attempts { url statusCode } } }",
                json!({}),
            )
            .await;
        let row = d.data()["webhookDeliveries"][0].clone();
        (row["status"] == "delivered").then_some(row)
    })
    .await;
    assert_eq!(log["url"], fixed.url.as_str());
    assert_eq!(
        log["attempts"],
        json!([{"url": broken.url, "statusCode": 503}, {"url": fixed.url, "statusCode": 200}])
    );
    // Moved again, a resend of that delivered delivery goes to where the endpoint is now, not
    // to the URL it was delivered to.
    let moved = Receiver::start().await;
    set(json!({"url": moved.url})).await;
    let delivered_id = app
        .gql("{ webhookDeliveries { id } }", json!({}))
        .await
        .data()["webhookDeliveries"][0]["id"]
        .clone();
    app.gql(
        "mutation($id: ID!) { resendWebhookDelivery(id: $id) { id } }",
        json!({"id": delivered_id}),
    )
    .await
    .data();
    let got = moved
        .wait_for("the resend at the endpoint's URL", 10, |g| !g.is_empty())
        .await;
    assert_eq!(got[0].id, first[0].id);
    set(json!({"url": fixed.url})).await;
    // A misspelt event type is refused, not answered with an empty list.
    app.gql(
        "{ webhookDeliveries(eventType: \"check.status_change\") { id } }",
        json!({}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("eventType"));

    // Disabled while a delivery waits for its retry: it is cancelled, not left pending.
    fixed.answer(&[503]);
    app.system_moves(&check, "consent").await;
    fixed
        .wait_for("the failed attempt", 10, |g| g.len() >= 2)
        .await;
    let pending = eventually("the failure recorded", 5, || async {
        let d = app
            .gql(
                "{ webhookDeliveries(status: \"pending\") { id attemptCount } }",
                json!({}),
            )
            .await;
        let row = d.data()["webhookDeliveries"][0].clone();
        (row["attemptCount"] == 1).then_some(row)
    })
    .await;
    let delivery_id = pending["id"].as_str().expect("id").to_string();
    set(json!({"enabled": false})).await;
    let d = app
        .gql(
            "query($id: ID!) { webhookDelivery(id: $id) { status } }",
            json!({"id": delivery_id}),
        )
        .await;
    assert_eq!(d.data()["webhookDelivery"]["status"], "cancelled");
    let resend = "mutation($id: ID!) { resendWebhookDelivery(id: $id) { status attemptCount } }";
    app.gql(resend, json!({"id": delivery_id}))
        .await
        .expect_err("CONFLICT", None);
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        fixed.received().len(),
        2,
        "nothing goes to a disabled endpoint"
    );

    // Enabled again, the resend starts the retry schedule afresh.
    set(json!({"enabled": true})).await;
    let r = app.gql(resend, json!({"id": delivery_id})).await;
    assert_eq!(
        r.data()["resendWebhookDelivery"],
        json!({"status": "pending", "attemptCount": 0})
    );
    let got = fixed.wait_for("the resend", 10, |g| g.len() >= 3).await;
    assert_eq!(got[1].id, got[2].id);
}

/// The payload of the next `events` item about a withdrawal.
async fn withdrawn(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Value {
    loop {
        let m = next_json(ws).await;
        let p = m["payload"]["data"]["events"]["payload"].clone();
        if p["state"] == "withdrawn" {
            return p;
        }
    }
}

/// The `events` subscription shows each role only the events of data it may read.
#[tokio::test]
async fn the_event_stream_shows_each_role_what_it_may_read() {
    let app = spawn_app().await;
    let limited = app.token_with_role("limited_team_member").await;
    let q = "subscription { events { eventType } }";
    let mut admin_ws = subscribe(&app, &app.token, q).await;
    let mut limited_ws = subscribe(&app, &limited, q).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rx = Receiver::start().await;
    endpoint(&app, &rx.url, json!([])).await;
    app.token_with_role("team_member").await;
    app.candidate("stream@example.com").await;
    let types = |msgs: Vec<Value>| -> Vec<String> {
        msgs.iter()
            .map(|m| {
                m["payload"]["data"]["events"]["eventType"]
                    .as_str()
                    .unwrap_or_else(|| panic!("an event: {m}"))
                    .to_string()
            })
            .collect()
    };
    // The super_admin sees everything up to the candidate (the limited token's own creation
    // may come first: the relay may publish it after the subscription started).
    let mut seen = Vec::new();
    while seen.last().is_none_or(|t| t != "candidate.created") {
        seen.extend(types(vec![next_json(&mut admin_ws).await]));
    }
    let tail = &seen[seen.len() - 3..];
    assert_eq!(
        tail,
        [
            "webhook_endpoint.created",
            "api_token.created",
            "candidate.created"
        ],
        "{seen:?}"
    );
    let first = next_json(&mut limited_ws).await;
    assert_eq!(types(vec![first]), ["candidate.created"]);
    let nothing = tokio::time::timeout(Duration::from_millis(300), limited_ws.next()).await;
    assert!(nothing.is_err(), "limited_team_member received {nothing:?}");

    // A status change's reason can quote the report: a limited team member's events lack it.
    let q = "subscription { events(types: [\"check.status_changed\"]) { payload } }";
    let tm = app.token_with_role("team_member").await;
    let mut tm_ws = subscribe(&app, &tm, q).await;
    let mut limited_ws = subscribe(&app, &limited, q).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let check = app
        .start_check(&app.candidate("reason@example.com").await, false)
        .await;
    app.gql(
        "mutation($c: ID!) { transitionCheck(input: {checkId: $c, status: withdrawn, reason: \"felony found\"}) { status } }",
        json!({"c": check}),
    )
    .await
    .data();
    assert_eq!(withdrawn(&mut tm_ws).await["reason"], "felony found");
    let p = withdrawn(&mut limited_ws).await;
    assert!(p.get("reason").is_none(), "{p}");
    assert!(p["worker_id"].is_string(), "{p}");
}

/// A subscription the schema refuses says why with a code over WebSocket, as over HTTP: on
/// graphql-transport-ws as the protocol's `error` message (a list of errors) and no `complete`;
/// on the legacy protocol as its `data` and `complete`. The same refused twice at once is
/// refused twice (a refusal is not shared). A named subscription sent without `operationName`
/// runs (graphql-ws clients send none).
#[tokio::test]
async fn a_refused_subscription_carries_a_code() {
    let app = spawn_app().await;
    let bad = "subscription { checkStatusChanged { nope } }";
    let mut ws = subscribe(&app, &app.token, bad).await;
    ws.send(operation("2", bad)).await.expect("subscribe");
    ws.send(operation("3", "{ me { role } }"))
        .await
        .expect("query");
    let mut seen = Vec::new();
    read_until(&mut ws, &mut seen, "both refusals and the query", |s| {
        error_of(s, "1").is_some()
            && error_of(s, "2").is_some()
            && s.iter().any(|m| m["id"] == "3" && m["type"] == "complete")
    })
    .await;
    for id in ["1", "2"] {
        let errors = error_of(&seen, id).expect("error");
        assert_eq!(
            errors[0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
            "{errors}"
        );
        assert!(errors.as_array().is_some_and(|e| e.len() == 1), "{errors}");
    }
    assert!(
        !seen.iter().any(
            |m| ["1", "2"].contains(&m["id"].as_str().unwrap_or_default()) && m["type"] != "error"
        ),
        "an error alone, without next or complete: {seen:?}"
    );
    let names = seen
        .iter()
        .flat_map(|m| m["payload"].as_object().into_iter().flat_map(|p| p.keys()))
        .filter(|k| k.contains("clearhire"))
        .count();
    assert_eq!(names, 0, "no mark of ours goes out: {seen:?}");
    // The ids are free again.
    ws.send(operation(
        "1",
        "subscription Watch { checkStatusChanged { checkId state } }",
    ))
    .await
    .expect("subscribe");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let check = app
        .start_check(&app.candidate("named@example.com").await, false)
        .await;
    read_until(&mut ws, &mut seen, "the named subscription's event", |s| {
        next_of(s, "1").is_some()
    })
    .await;
    assert_eq!(
        next_of(&seen, "1").expect("next")["data"]["checkStatusChanged"]["checkId"],
        check.as_str()
    );

    let mut legacy = legacy_subscribe(&app, &app.token, bad).await;
    let msg = next_json(&mut legacy).await;
    assert_eq!(msg["type"], "data", "{msg}");
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{msg}"
    );
    assert!(msg["payload"].get("extensions").is_none(), "{msg}");
    assert_eq!(next_json(&mut legacy).await["type"], "complete");
}

/// A client on the legacy graphql-ws protocol (subscriptions-transport-ws: `start`, `data`,
/// `stop`): the token in `connection_init`, its own partner's changes live, none of another's,
/// a bad token refused, and `stop` ends the stream.
#[tokio::test]
async fn the_legacy_graphql_ws_protocol_works() {
    let app = spawn_app().await;
    let (_, other) = app.other_partner().await;
    let q = "subscription { checkStatusChanged { checkId originalState state } }";
    let mut mine = legacy_subscribe(&app, &app.token, q).await;
    let mut theirs = legacy_subscribe(&app, &other, q).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cand = app.candidate("legacy.ws@example.com").await;
    let check = app.start_check(&cand, true).await;
    app.system_moves(&check, "consent").await;

    let mut states = Vec::new();
    while states.len() < 2 {
        let msg = next_json(&mut mine).await;
        if msg["type"] == "ka" {
            continue;
        }
        assert_eq!(
            (msg["type"].as_str(), msg["id"].as_str()),
            (Some("data"), Some("1")),
            "{msg}"
        );
        let e = &msg["payload"]["data"]["checkStatusChanged"];
        assert_eq!(e["checkId"], check.as_str(), "{msg}");
        states.push((e["originalState"].clone(), e["state"].clone()));
    }
    assert_eq!(
        states,
        vec![
            (Value::Null, json!("emailed")),
            (json!("emailed"), json!("consent"))
        ]
    );
    let nothing = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            let msg = next_json(&mut theirs).await;
            if msg["type"] != "ka" {
                return msg;
            }
        }
    })
    .await;
    assert!(
        nothing.is_err(),
        "another partner's subscriber received {nothing:?}"
    );

    // `stop` ends the subscription: the server answers `complete` and sends no more data.
    mine.send(Message::text(
        json!({"id": "1", "type": "stop"}).to_string(),
    ))
    .await
    .expect("stop");
    app.transition(&check, "withdrawn").await.data();
    let after_stop = tokio::time::timeout(Duration::from_millis(700), async {
        loop {
            let msg = next_json(&mut mine).await;
            if msg["type"] == "data" {
                return msg;
            }
        }
    })
    .await;
    assert!(after_stop.is_err(), "data after stop: {after_stop:?}");

    // A bad token: no acknowledgement.
    let mut ws = legacy_connect(&app).await;
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}).to_string(),
    ))
    .await
    .expect("init");
    let answer = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("answer in time");
    assert!(
        !matches!(answer, Some(Ok(Message::Text(ref t))) if t.contains("connection_ack")),
        "{answer:?}"
    );
}

async fn legacy_connect(
    app: &TestApp,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-ws".parse().expect("header"),
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("graphql-ws")
    );
    ws
}

/// A subscriptions-transport-ws client: connects, authenticates, starts operation "1".
async fn legacy_subscribe(
    app: &TestApp,
    token: &str,
    query: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut ws = legacy_connect(app).await;
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})
            .to_string(),
    ))
    .await
    .expect("init");
    let ack = next_json(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws.send(Message::text(
        json!({"id": "1", "type": "start", "payload": {"query": query}}).to_string(),
    ))
    .await
    .expect("start");
    ws
}
/// A graphql-transport-ws client: connects, authenticates, subscribes.
pub(crate) async fn subscribe(
    app: &TestApp,
    token: &str,
    query: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    subscribe_with(app, token, json!({"query": query})).await
}

/// As `subscribe`, with the whole subscribe payload (query, variables, operation name).
async fn subscribe_with(
    app: &TestApp,
    token: &str,
    payload: Value,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut ws = transport_ws_init(app, token).await;
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": payload}).to_string(),
    ))
    .await
    .expect("subscribe");
    ws
}

/// A graphql-transport-ws connection, not yet initialised.
async fn transport_ws_connect(
    app: &TestApp,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    ws
}

/// A graphql-transport-ws connection, initialised and acknowledged.
async fn transport_ws_init(
    app: &TestApp,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut ws = transport_ws_connect(app).await;
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})
            .to_string(),
    ))
    .await
    .expect("init");
    let ack = next_json(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

/// The code and reason the server closed the connection with (text messages before it are
/// skipped), within 5 s.
async fn close_frame(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> (u16, String) {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("closed in time");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// graphql-transport-ws's rules for a connection's life, as the graphql-ws client library
/// expects them: an unknown message closes with 4400, `subscribe` before the acknowledgement
/// with 4401, a rejected `connection_init` with 4403, and `subscribe` with the id of a running
/// operation with 4409 (the running one is not silently replaced); an id completed by either side
/// may be used again.
#[tokio::test]
async fn graphql_transport_ws_close_codes_and_operation_ids() {
    let app = spawn_app().await;
    let q = "subscription { checkStatusChanged { checkId state } }";

    let mut ws = transport_ws_connect(&app).await;
    ws.send(operation("1", q)).await.expect("subscribe");
    assert_eq!(close_frame(&mut ws).await, (4401, "Unauthorized".into()));

    let mut ws = transport_ws_init(&app, &app.token).await;
    ws.send(Message::text(r#"{"type":"subscribe","id":"1"}"#))
        .await
        .expect("send");
    assert_eq!(
        close_frame(&mut ws).await,
        (4400, "Invalid message received".into())
    );

    let mut ws = transport_ws_connect(&app).await;
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}).to_string(),
    ))
    .await
    .expect("init");
    let (code, reason) = close_frame(&mut ws).await;
    assert_eq!(code, 4403, "{reason}");

    // Ids: "1" runs; a query as "q" completes by itself and frees its id; "1" completed by the
    // client is free again; a second "1" while it runs closes the connection.
    let mut ws = transport_ws_init(&app, &app.token).await;
    ws.send(operation("1", q)).await.expect("subscribe");
    for round in 0..2 {
        ws.send(operation("q", "{ __typename }"))
            .await
            .expect("query");
        let mut seen = Vec::new();
        read_until(&mut ws, &mut seen, "the query's completion", |s| {
            s.iter().any(|m| m["id"] == "q" && m["type"] == "complete")
        })
        .await;
        assert_eq!(
            next_of(&seen, "q").map(|p| p["data"]["__typename"].clone()),
            Some(json!("Query")),
            "round {round}: {seen:?}"
        );
    }
    ws.send(Message::text(r#"{"type":"complete","id":"1"}"#))
        .await
        .expect("complete");
    ws.send(operation("1", q)).await.expect("subscribe again");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let candidate = app.candidate("ids@example.com").await;
    app.start_check(&candidate, false).await;
    let mut seen = Vec::new();
    read_until(&mut ws, &mut seen, "the change on the reused id", |s| {
        next_of(s, "1").is_some()
    })
    .await;
    assert_eq!(
        next_of(&seen, "1").expect("next")["data"]["checkStatusChanged"]["state"],
        "initiated"
    );
    ws.send(operation("1", q)).await.expect("subscribe twice");
    assert_eq!(
        close_frame(&mut ws).await,
        (4409, "Subscriber for 1 already exists".into())
    );
}

pub(crate) async fn next_json(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("message in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).expect("json");
        }
    }
}

/// Reads messages into `seen` until `pred` holds for them (10 s at most).
async fn read_until(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
    seen: &mut Vec<Value>,
    what: &str,
    pred: impl Fn(&[Value]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !pred(seen) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; got {seen:#?}"))
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = msg {
            seen.push(serde_json::from_str(t.as_str()).expect("json"));
        }
    }
}

/// The errors of operation `id`'s `error` message (graphql-transport-ws: it was refused).
fn error_of<'a>(seen: &'a [Value], id: &str) -> Option<&'a Value> {
    seen.iter()
        .find(|m| m["id"] == id && m["type"] == "error")
        .map(|m| &m["payload"])
}

/// The payload of operation `id`'s first `next` message.
fn next_of<'a>(seen: &'a [Value], id: &str) -> Option<&'a Value> {
    seen.iter()
        .find(|m| m["id"] == id && m["type"] == "next")
        .map(|m| &m["payload"])
}

/// A graphql-transport-ws `subscribe` message: operation `id` runs `query`.
fn operation(id: &str, query: &str) -> Message {
    Message::text(json!({"id": id, "type": "subscribe", "payload": {"query": query}}).to_string())
}

/// A socket is only as good as its token: queries and mutations over it run for the caller
/// alone (two identical mutations make two tokens; nested lists load), every operation checks
/// the token again, and a running subscription ends with UNAUTHENTICATED once it is revoked.
#[tokio::test]
async fn a_socket_follows_its_token() {
    let app = spawn_app_with(|c| c.live_token_check_secs = 1).await;
    let minted = app
        .gql(
            "mutation { createApiToken(input: {name: \"dashboard\", role: super_admin}) { token apiToken { id } } }",
            json!({}),
        )
        .await;
    let token = minted.data()["createApiToken"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let token_id = minted.data()["createApiToken"]["apiToken"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.start_check(&app.candidate("socket@example.com").await, false)
        .await;
    let mut ws = subscribe(
        &app,
        &token,
        "subscription { checkStatusChanged { checkId state } }",
    )
    .await;
    ws.send(operation(
        "q",
        "{ me { tokenId } candidates(first: 5) { nodes { email checks { status } } } }",
    ))
    .await
    .expect("send");
    let mint = "mutation { createApiToken(input: {name: \"twin\", role: team_member}) { token } }";
    ws.send(operation("m1", mint)).await.expect("send");
    ws.send(operation("m2", mint)).await.expect("send");
    let mut seen = Vec::new();
    read_until(&mut ws, &mut seen, "the query and both mutations", |s| {
        ["q", "m1", "m2"].iter().all(|id| next_of(s, id).is_some())
    })
    .await;
    let q = next_of(&seen, "q").expect("q");
    assert!(q.get("errors").is_none(), "{q}");
    assert_eq!(q["data"]["me"]["tokenId"], token_id.as_str());
    assert_eq!(
        q["data"]["candidates"]["nodes"][0]["checks"][0]["status"], "initiated",
        "{q}"
    );
    let twin = |id: &str| {
        next_of(&seen, id).expect("mutation")["data"]["createApiToken"]["token"]
            .as_str()
            .expect("token")
            .to_string()
    };
    assert_ne!(twin("m1"), twin("m2"), "each mutation ran");

    // Revoked (over HTTP): the next operation on the socket is refused, and the running
    // subscription ends with the same error.
    app.gql(
        "mutation($id: ID!) { revokeApiToken(id: $id) { id } }",
        json!({"id": token_id}),
    )
    .await
    .data();
    ws.send(operation("after", mint)).await.expect("send");
    read_until(
        &mut ws,
        &mut seen,
        "the refusal and the subscription's end",
        |s| {
            // The mutation is refused before it runs (`error`); the subscription that was
            // running ends with an error item and `complete`.
            error_of(s, "after").is_some_and(|e| e[0]["extensions"]["code"] == "UNAUTHENTICATED")
                && s.iter().any(|m| {
                    m["id"] == "1"
                        && m["type"] == "next"
                        && m["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
                })
                && s.iter().any(|m| m["id"] == "1" && m["type"] == "complete")
        },
    )
    .await;
    assert!(
        next_of(&seen, "after").is_none(),
        "nothing minted after the revocation"
    );
}

/// One connection runs at most 100 operations at once: the next is refused with a code, and
/// once one ends another may start.
#[tokio::test]
async fn a_connection_runs_at_most_a_hundred_operations() {
    let app = spawn_app().await;
    let mut ws = subscribe(
        &app,
        &app.token,
        "subscription { checkStatusChanged(candidateId: \"c0\") { state } }",
    )
    .await;
    for n in 1..=100 {
        let query =
            format!("subscription {{ checkStatusChanged(candidateId: \"c{n}\") {{ state }} }}");
        ws.send(operation(&format!("s{n}"), &query))
            .await
            .expect("send");
    }
    let mut seen = Vec::new();
    read_until(&mut ws, &mut seen, "the 101st refused", |s| {
        error_of(s, "s100").is_some_and(|e| e[0]["extensions"]["code"] == "TOO_MANY_OPERATIONS")
    })
    .await;
    assert!(
        seen.iter().all(|m| m["id"] == "s100"),
        "only the 101st answered: {seen:?}"
    );
    // One stops; a new one runs.
    ws.send(Message::text(
        json!({"id": "s1", "type": "complete"}).to_string(),
    ))
    .await
    .expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws.send(operation("again", "{ me { role } }"))
        .await
        .expect("send");
    read_until(&mut ws, &mut seen, "the new operation's answer", |s| {
        next_of(s, "again").is_some()
    })
    .await;
    assert_eq!(
        next_of(&seen, "again").expect("again")["data"]["me"]["role"],
        "super_admin"
    );
}

/// The server reads with a small WebSocket buffer that grows for a larger message, and refuses
/// a message over its 1 MiB cap by closing the connection.
#[tokio::test]
async fn subscribe_messages_beyond_the_read_buffer_work_and_oversized_ones_close() {
    let app = spawn_app().await;
    let padding = format!("# {}\n", "x".repeat(20_000));
    let q = format!("{padding}subscription {{ checkStatusChanged {{ checkId state }} }}");
    let mut ws = subscribe(&app, &app.token, &q).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cand = app.candidate("big.message@example.com").await;
    let check = app.start_check(&cand, false).await;
    let first = next_json(&mut ws).await;
    assert_eq!(first["type"], "next", "{first}");
    assert_eq!(
        first["payload"]["data"]["checkStatusChanged"]["checkId"],
        check.as_str()
    );

    let mut big = subscribe(
        &app,
        &app.token,
        "subscription { checkStatusChanged { checkId } }",
    )
    .await;
    let huge = json!({"id": "2", "type": "subscribe", "payload": {"query": "#".repeat(2 << 20)}});
    let _ = big.send(Message::text(huge.to_string())).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match big.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(
        closed,
        Ok(true),
        "the connection stayed open after a 2 MiB message"
    );
}

#[tokio::test]
async fn subscribers_see_their_own_partners_status_changes_live() {
    let app = spawn_app().await;
    let (_, other) = app.other_partner().await;
    let q = "subscription { checkStatusChanged { eventId checkId candidateId originalState state stateLabel teamMemberEmail } }";
    let mut mine = subscribe(&app, &app.token, q).await;
    let mut theirs = subscribe(&app, &other, q).await;
    let mut their_events = subscribe(&app, &other, "subscription { events { eventType } }").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cand = app.candidate("live@example.com").await;
    let check = app.start_check(&cand, true).await;
    app.system_moves(&check, "consent").await;
    let first = next_json(&mut mine).await;
    assert_eq!(first["type"], "next", "{first}");
    let e = &first["payload"]["data"]["checkStatusChanged"];
    assert_eq!(e["checkId"], check.as_str());
    assert_eq!(e["state"], "emailed");
    assert!(e["originalState"].is_null());
    assert_eq!(e["teamMemberEmail"], "admin@demo.clearhire.dev");
    let second = next_json(&mut mine).await;
    let e = &second["payload"]["data"]["checkStatusChanged"];
    assert_eq!(
        (
            e["originalState"].as_str(),
            e["state"].as_str(),
            e["stateLabel"].as_str()
        ),
        (Some("emailed"), Some("consent"), Some("Consent"))
    );
    assert!(
        e["teamMemberEmail"].is_null(),
        "consent is no team member's: {e}"
    );
    // The other partner's subscriber saw none of it.
    let nothing = tokio::time::timeout(Duration::from_millis(500), theirs.next()).await;
    assert!(
        nothing.is_err(),
        "another partner's subscriber received {nothing:?}"
    );
    // Their event stream may carry their own token's creation, and nothing of this partner's.
    let mut got = Vec::new();
    while let Ok(Some(Ok(m))) =
        tokio::time::timeout(Duration::from_millis(300), their_events.next()).await
    {
        got.push(m.to_text().unwrap_or_default().to_string());
    }
    assert!(
        got.iter()
            .all(|m| !m.contains("candidate.created") && !m.contains("check.status_changed")),
        "another partner's event stream received {got:?}"
    );

    // Without a valid token the connection is refused (4403, graphql-transport-ws's Forbidden).
    let mut ws = transport_ws_connect(&app).await;
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}).to_string(),
    ))
    .await
    .expect("init");
    let (code, reason) = close_frame(&mut ws).await;
    assert_eq!(code, 4403, "{reason}");
}

/// A socket that has not authenticated within CLEARHIRE_LIVE_INIT_TIMEOUT_SECS is closed with
/// 4408, in either protocol; one that has stays open past it.
#[tokio::test]
async fn a_socket_without_connection_init_is_closed_in_time() {
    let app = spawn_app_with(|c| c.live_init_timeout_secs = 1).await;
    let mut silent = transport_ws_connect(&app).await;
    let mut legacy = legacy_connect(&app).await;
    let mut live = subscribe(
        &app,
        &app.token,
        "subscription { checkStatusChanged { checkId state } }",
    )
    .await;
    for ws in [&mut silent, &mut legacy] {
        let (code, reason) = close_frame(ws).await;
        assert_eq!(code, 4408, "{reason}");
    }
    // The authenticated socket is still served after the timeout.
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.start_check(&app.candidate("late@example.com").await, false)
        .await;
    let got = next_json(&mut live).await;
    assert_eq!(got["type"], "next", "{got}");
}

/// An initialised socket is pinged every `CLEARHIRE_LIVE_KEEPALIVE_SECS`: one whose client
/// answers (tungstenite answers pings as it reads) is kept, one whose client has stopped reading
/// is dropped, and so does not hold its subscription for ever. A legacy-protocol socket is sent
/// the protocol's `ka` with each ping, which its clients watch to notice a dead server.
#[tokio::test]
async fn a_socket_whose_peer_stops_answering_pings_is_dropped() {
    let app = spawn_app_with(|c| {
        c.live_init_timeout_secs = 1;
        c.live_keepalive_secs = 2;
    })
    .await;
    let q = "subscription { checkStatusChanged { checkId state } }";
    let mut answering = subscribe(&app, &app.token, q).await;
    let mut silent = subscribe(&app, &app.token, q).await;
    let mut legacy = legacy_subscribe(&app, &app.token, q).await;
    let legacy_reader = tokio::spawn(async move {
        let mut kas = 0;
        loop {
            match legacy.next().await {
                Some(Ok(Message::Text(t))) => {
                    let got: Value = serde_json::from_str(t.as_str()).expect("json");
                    if got["type"] == "ka" {
                        kas += 1;
                    } else {
                        return (kas, got);
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("the legacy socket ended: {other:?}"),
            }
        }
    });
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        loop {
            match answering.next().await {
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(Ok(Message::Text(t))) => {
                    let got: Value = serde_json::from_str(t.as_str()).expect("json");
                    return (pings, got);
                }
                Some(Ok(_)) => {}
                other => panic!("the answering socket ended: {other:?}"),
            }
        }
    });
    // Pings at about 3 and 5 s; the silent socket is dropped at about 5 s.
    tokio::time::sleep(Duration::from_millis(6500)).await;
    app.start_check(&app.candidate("pinged@example.com").await, false)
        .await;
    let (pings, got) = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("the event in time")
        .expect("reader");
    assert_eq!(got["type"], "next", "{got}");
    assert!(pings >= 2, "pinged {pings} times");
    let (kas, got) = tokio::time::timeout(Duration::from_secs(10), legacy_reader)
        .await
        .expect("the legacy event in time")
        .expect("legacy reader");
    assert_eq!(got["type"], "data", "{got}");
    assert!(kas >= 2, "sent `ka` {kas} times");
    let mut texts = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match silent.next().await {
                Some(Ok(Message::Text(t))) => texts.push(t.to_string()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the silent socket was dropped");
    assert!(
        texts.is_empty(),
        "no event reached the dropped socket: {texts:?}"
    );
}

/// Identical subscriptions of one partner share one execution, and each subscriber still gets
/// every event; one leaving does not end the others'. Other variables, or another partner, run
/// their own; the last subscriber leaving stops an execution.
#[tokio::test]
async fn identical_subscriptions_share_one_execution() {
    let app = spawn_app().await;
    let (_, other) = app.other_partner().await;
    let cand = app.candidate("shared@example.com").await;
    let q = "subscription { checkStatusChanged { checkId state } }";
    let mut a = subscribe(&app, &app.token, q).await;
    let mut b = subscribe(&app, &app.token, q).await;
    let mut leaving = subscribe(&app, &app.token, q).await;
    let mut theirs = subscribe(&app, &other, q).await;
    let mut one = subscribe_with(
        &app,
        &app.token,
        json!({
            "query": "subscription($c: ID) { checkStatusChanged(candidateId: $c) { checkId state } }",
            "variables": {"c": cand},
        }),
    )
    .await;
    eventually("three executions", 10, || async {
        (app.metric("clearhire_subscription_executions").await == 3).then_some(())
    })
    .await;

    let check = app.start_check(&cand, false).await;
    for ws in [&mut a, &mut b, &mut leaving, &mut one] {
        let e = next_json(ws).await;
        assert_eq!(
            e["payload"]["data"]["checkStatusChanged"]["checkId"],
            check.as_str(),
            "{e}"
        );
    }
    leaving.close(None).await.expect("close");
    drop(leaving);
    app.transition(&check, "withdrawn").await.data();
    for ws in [&mut a, &mut b, &mut one] {
        let e = next_json(ws).await;
        let e = &e["payload"]["data"]["checkStatusChanged"];
        assert_eq!(
            (e["checkId"].as_str(), e["state"].as_str()),
            (Some(check.as_str()), Some("withdrawn"))
        );
    }
    let nothing = tokio::time::timeout(Duration::from_millis(300), theirs.next()).await;
    assert!(
        nothing.is_err(),
        "another partner's subscriber received {nothing:?}"
    );

    drop((a, b, one, theirs));
    eventually("no executions left", 10, || async {
        (app.metric("clearhire_subscription_executions").await == 0).then_some(())
    })
    .await;
}

/// A commit wakes the relay: with its poll a minute apart, a status change still reaches a
/// subscriber within seconds.
#[tokio::test]
async fn a_commit_wakes_the_relay_without_waiting_for_its_poll() {
    let app = spawn_app_with(|c| c.poll_interval_ms = 60_000).await;
    let mut ws = subscribe(
        &app,
        &app.token,
        "subscription { checkStatusChanged { checkId state } }",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cand = app.candidate("woken@example.com").await;
    let check = app.start_check(&cand, false).await;
    for state in ["initiated", "withdrawn"] {
        if state == "withdrawn" {
            app.transition(&check, state).await.data();
        }
        let event = tokio::time::timeout(Duration::from_secs(5), next_json(&mut ws))
            .await
            .unwrap_or_else(|_| panic!("{state}: no event within 5 s of the commit"));
        let e = &event["payload"]["data"]["checkStatusChanged"];
        assert_eq!(
            (e["checkId"].as_str(), e["state"].as_str()),
            (Some(check.as_str()), Some(state))
        );
    }
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_and_an_event_says_so() {
    let app = spawn_app().await;
    let failing = Receiver::start().await;
    failing.answer(&[500; 200]);
    let (failing_id, _) = endpoint(&app, &failing.url, json!(["check.status_changed"])).await;
    let watcher = Receiver::start().await;
    endpoint(&app, &watcher.url, json!(["webhook_endpoint.disabled"])).await;
    let enabled = || async {
        let r = app
            .gql(
                "{ webhookEndpoints { id enabled disabledReason } }",
                json!({}),
            )
            .await;
        r.data()["webhookEndpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .find(|e| e["id"] == failing_id.as_str())
            .cloned()
            .expect("the failing endpoint")
    };
    let change = |n: u32| {
        let app = &app;
        async move {
            let cand = app.candidate(&format!("failing{n}@example.com")).await;
            app.start_check(&cand, false).await;
        }
    };
    // Attempts recorded against the failing endpoint (the receiver sees a request before its
    // outcome is committed; the clock may only move once it is).
    let recorded = |n: usize| {
        let app = &app;
        let failing_id = failing_id.clone();
        async move {
            eventually("recorded attempts", 10, || async {
                let r = app
                    .gql(
                        "query($e: ID) { webhookDeliveries(endpointId: $e) { attempts { statusCode } } }",
                        json!({"e": failing_id}),
                    )
                    .await;
                let attempts: usize = r.data()["webhookDeliveries"]
                    .as_array()
                    .expect("deliveries")
                    .iter()
                    .map(|d| d["attempts"].as_array().map_or(0, Vec::len))
                    .sum();
                (attempts >= n).then_some(())
            })
            .await
        }
    };
    change(1).await;
    recorded(1).await;
    // A failure, then six days with nothing to send, then another: not five days of failing.
    app.service.clock().advance(chrono::Duration::days(6));
    change(2).await;
    recorded(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(enabled().await["enabled"], true);
    // Failures every 23 hours from there: still enabled after 115 hours.
    for n in 3..=7 {
        app.service.clock().advance(chrono::Duration::hours(23));
        change(n).await;
        recorded(n as usize).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(enabled().await["enabled"], true);
    // Past five days straight: the next failure disables it, and an event says why.
    app.service.clock().advance(chrono::Duration::hours(23));
    change(8).await;
    let got = watcher
        .wait_for("webhook_endpoint.disabled", 10, |g| !g.is_empty())
        .await;
    assert_eq!(got[0].json["endpoint_id"], failing_id.as_str());
    assert_eq!(got[0].json["reason"], "every delivery failed for 5 days");
    let e = enabled().await;
    assert_eq!(e["enabled"], false);
    assert_eq!(e["disabledReason"], "every delivery failed for 5 days");
}

/// A success ends an endpoint's failing streak: failures days later start a new one rather than
/// adding up to the five days that disable it.
#[tokio::test]
async fn a_success_ends_an_endpoints_failing_streak() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    // The first attempt fails, its retry (about 5 s later) succeeds, then everything fails.
    let mut script = vec![500, 200];
    script.extend([500; 50]);
    rx.answer(&script);
    let (endpoint_id, _) = endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    let outcomes = || async {
        let r = app
            .gql(
                "query($e: ID) { webhookDeliveries(endpointId: $e) { attempts { statusCode } } webhookEndpoints { id enabled } }",
                json!({"e": endpoint_id}),
            )
            .await;
        let codes: Vec<i64> = r.data()["webhookDeliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .flat_map(|d| d["attempts"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["statusCode"].as_i64())
            .collect();
        let enabled = r.data()["webhookEndpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .any(|e| e["id"] == endpoint_id.as_str() && e["enabled"] == true);
        (codes, enabled)
    };
    let cand = app.candidate("streak1@example.com").await;
    app.start_check(&cand, false).await;
    eventually("a failure, then a success", 15, || async {
        let (mut codes, _) = outcomes().await;
        codes.sort();
        (codes == [200, 500]).then_some(())
    })
    .await;
    // Six days on, a failure: five days have not passed since the streak began again.
    app.service.clock().advance(chrono::Duration::days(6));
    let cand = app.candidate("streak2@example.com").await;
    app.start_check(&cand, false).await;
    let (codes, enabled) = eventually("the next failure recorded", 10, || async {
        let (codes, enabled) = outcomes().await;
        (codes.len() >= 3).then_some((codes, enabled))
    })
    .await;
    assert_eq!(codes.iter().filter(|c| **c == 500).count(), 2, "{codes:?}");
    assert!(
        enabled,
        "one failure after a success must not disable the endpoint"
    );
}

/// The relay reads a window of recent outbox ids; an event whose id was drawn long before it
/// committed (far behind that window) is still relayed, by the relay's periodic full scan.
#[tokio::test]
async fn an_event_behind_the_relays_window_is_still_relayed() {
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let app = spawn_app().await;
    let db = app.service.db();
    let insert = |id: i64| entity::outbox::ActiveModel {
        id: Set(id),
        event_id: Set(uuid::Uuid::new_v4().to_string()),
        partner_id: Set(app.partner_id.clone()),
        event_type: Set("test.relay_window".into()),
        aggregate_id: Set(format!("agg-{id}")),
        payload: Set(json!({})),
        created_at: Set(chrono::Utc::now()),
        published_at: Set(None),
    };
    let published = |id: i64| async move {
        for _ in 0..100 {
            let row = entity::outbox::Entity::find_by_id(id)
                .one(db)
                .await
                .expect("read outbox")
                .expect("row exists");
            if row.published_at.is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    // Moves the relay's window far ahead.
    insert(1_000_000).insert(db).await.expect("insert ahead");
    assert!(
        published(1_000_000).await,
        "the event ahead was not relayed"
    );
    // Committed now with an id 999,000 behind the window.
    insert(1_000).insert(db).await.expect("insert behind");
    assert!(
        published(1_000).await,
        "an event behind the window was never relayed"
    );
}

/// One relay batch can cause more deliveries than one INSERT may bind parameters for (SQLite
/// allows 32,766, 2,047 deliveries): 200 status changes to 11 endpoints are 2,200 deliveries,
/// all created.
#[tokio::test]
async fn a_batch_with_more_deliveries_than_one_statement_binds_is_relayed_whole() {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait};
    let app = spawn_app().await;
    for _ in 0..11 {
        // A closed port: the deliveries are created; their attempts fail and wait to retry.
        endpoint(
            &app,
            "http://127.0.0.1:9/hook",
            json!(["check.status_changed"]),
        )
        .await;
    }
    let db = app.service.db();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let txn = db.begin().await.expect("begin");
    let rows: Vec<entity::outbox::ActiveModel> = (0..200)
        .map(|n| {
            use sea_orm::Set;
            entity::outbox::ActiveModel {
                event_id: Set(format!("{tag}-{n}")),
                partner_id: Set(app.partner_id.clone()),
                event_type: Set("check.status_changed".into()),
                aggregate_id: Set(format!("check-{n}")),
                payload: Set(json!({"check_id": format!("check-{n}"), "state": "withdrawn", "original_state": "initiated"})),
                created_at: Set(chrono::Utc::now()),
                published_at: Set(None),
                ..Default::default()
            }
        })
        .collect();
    entity::outbox::Entity::insert_many(rows)
        .exec(&txn)
        .await
        .expect("insert events");
    txn.commit().await.expect("commit");
    let mut count = 0;
    for _ in 0..100 {
        count = entity::webhook_delivery::Entity::find()
            .filter(entity::webhook_delivery::Column::EventId.starts_with(&tag))
            .count(db)
            .await
            .expect("count");
        if count == 2200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count, 2200);
}

/// Relayed outbox events are deleted once older than the retention; newer ones stay.
#[tokio::test]
async fn relayed_outbox_events_are_pruned_after_the_retention() {
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let app = spawn_app().await;
    let db = app.service.db();
    let row =
        |event_id: &str, published: chrono::DateTime<chrono::Utc>| entity::outbox::ActiveModel {
            event_id: Set(event_id.to_string()),
            partner_id: Set(app.partner_id.clone()),
            event_type: Set("test.prune".into()),
            aggregate_id: Set("agg".into()),
            payload: Set(json!({})),
            created_at: Set(published),
            published_at: Set(Some(published)),
            ..Default::default()
        };
    let old = row("prune-old", app.service.clock().now())
        .insert(db)
        .await
        .expect("insert old");
    app.service
        .clock()
        .advance(service::webhook::OUTBOX_RETENTION + chrono::Duration::hours(1));
    let recent = row("prune-recent", app.service.clock().now())
        .insert(db)
        .await
        .expect("insert recent");
    let pruned = app.service.prune_outbox(1000).await.expect("prune");
    assert!(pruned >= 1, "nothing pruned");
    let find = |id: i64| async move {
        entity::outbox::Entity::find_by_id(id)
            .one(db)
            .await
            .expect("read")
    };
    assert!(find(old.id).await.is_none(), "the old event is still there");
    assert!(
        find(recent.id).await.is_some(),
        "the recent event was pruned"
    );
}

#[tokio::test]
async fn finished_delivery_jobs_are_deleted_from_the_job_store_after_their_retention() {
    // apalis keeps every finished job (a row in jobs.db, a payload, a metadata key and a set
    // member on Redis); the sweeper deletes them once they are older than the retention.
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    let cand = app.candidate("pruned@example.com").await;
    let check = app.start_check(&cand, false).await;
    app.transition(&check, "withdrawn").await.data();
    let got = rx
        .wait_for("two status webhooks", 10, |g| g.len() == 2)
        .await
        .len();
    if app.redis.is_none() {
        // A finished job no longer holds its worker's lock, so apalis's acknowledgements,
        // which walk the jobs a worker holds, do not grow with the jobs finished before them.
        // Read directly, not through `JobQueue::sqlite`, whose set-up would let go of the locks.
        let pool =
            sea_orm::sqlx::SqlitePool::connect(&format!("sqlite://{}", app.jobs_db().display()))
                .await
                .expect("job store");
        let held: Vec<(String, Option<String>)> = eventually("the jobs acknowledged", 10, || {
            let pool = pool.clone();
            async move {
                let rows: Vec<(String, Option<String>)> =
                    sea_orm::sqlx::query_as("SELECT status, lock_by FROM Jobs WHERE job_type = ?1")
                        .bind(worker::queue::DELIVERY_QUEUE)
                        .fetch_all(&pool)
                        .await
                        .expect("jobs");
                (rows.len() >= 2 && rows.iter().all(|(s, _)| s == "Done")).then_some(rows)
            }
        })
        .await;
        assert!(held.iter().all(|(_, lock)| lock.is_none()), "{held:?}");
    }
    let queue = app.job_queue().await;
    let (stored, _) = queue.stored_jobs().await.expect("count");
    assert!(stored >= 2, "the two delivery jobs are stored: {stored}");
    // Within the retention nothing goes, however often the sweep runs.
    for _ in 0..3 {
        let n = queue
            .prune_finished(Duration::from_secs(3600), 1)
            .await
            .expect("prune");
        assert_eq!(n, 0, "a job finished within the retention was deleted");
    }
    assert_eq!(queue.stored_jobs().await.expect("count").0, stored);
    // Past it (zero here), every finished delivery job goes, a batch of one at a time; a job
    // still being acknowledged goes at the next sweep.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut pruned = 0;
    loop {
        pruned += queue
            .prune_finished(Duration::ZERO, 1)
            .await
            .expect("prune");
        if queue.stored_jobs().await.expect("count").0 == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery jobs left after pruning: {:?}",
            queue.stored_jobs().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        pruned >= stored,
        "pruned {pruned} of {stored} delivery jobs"
    );
    // The deliveries themselves are untouched and nothing is sent again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.received().len(), got);
    let logs = app.gql("{ webhookDeliveries { status } }", json!({})).await;
    let statuses: Vec<&str> = logs.data()["webhookDeliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter_map(|d| d["status"].as_str())
        .collect();
    assert_eq!(statuses, ["delivered", "delivered"]);
}

/// Of several senders leasing one delivery at once (a sweeper's re-queue beside the relay's
/// job, a resend), exactly one gets it, and each delivery goes to a caller that asked for it,
/// however the leases are batched together.
#[tokio::test]
async fn concurrent_leases_of_a_delivery_hand_it_to_exactly_one_sender() {
    use sea_orm::{ActiveModelTrait, Set};
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (endpoint_id, _) = endpoint(&app, &rx.url, json!(["webhook_endpoint.disabled"])).await;
    let now = chrono::Utc::now();
    let mut ids = Vec::new();
    for i in 0..4 {
        let id = format!("lease-test-{i}-{}", uuid::Uuid::new_v4().simple());
        entity::webhook_delivery::ActiveModel {
            id: Set(id.clone()),
            partner_id: Set(app.partner_id.clone()),
            endpoint_id: Set(Some(endpoint_id.clone())),
            dedupe_key: Set(format!("{id}:{endpoint_id}")),
            url: Set(rx.url.clone()),
            event_id: Set(uuid::Uuid::new_v4().to_string()),
            event_type: Set("webhook_endpoint.disabled".into()),
            body: Set("{}".into()),
            status: Set("pending".into()),
            attempts: Set(0),
            next_attempt_at: Set(Some(now)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(app.service.db())
        .await
        .expect("insert delivery");
        ids.push(id);
    }
    // Each id asked for four times, all at once.
    let asks: Vec<String> = (0..4).flat_map(|_| ids.clone()).collect();
    let leased =
        futures_util::future::join_all(asks.iter().map(|id| app.service.delivery_to_send(id)))
            .await;
    for id in &ids {
        let got: Vec<_> = asks
            .iter()
            .zip(&leased)
            .filter(|(asked, _)| *asked == id)
            .map(|(_, r)| r.as_ref().expect("lease"))
            .collect();
        let handed: Vec<_> = got.iter().filter_map(|s| s.as_ref()).collect();
        assert_eq!(
            handed.len(),
            1,
            "{id} was handed to {} senders",
            handed.len()
        );
        assert_eq!(&handed[0].delivery.id, id);
        assert_eq!(
            handed[0].secrets.len(),
            1,
            "signed with the endpoint's secret"
        );
    }
    // Leased: nobody gets it again until the lease runs out.
    for id in &ids {
        assert!(
            app.service
                .delivery_to_send(id)
                .await
                .expect("lease")
                .is_none()
        );
    }
}

/// Every event goes to every enabled endpoint of the partner: a partner has at most 50, and
/// one deleted makes room for another.
#[tokio::test]
async fn a_partner_has_at_most_fifty_endpoints() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for n in 0..50 {
        let (id, _) = endpoint(
            &app,
            &format!("https://hooks{n}.example.com/turn"),
            json!(["check.status_changed"]),
        )
        .await;
        ids.push(id);
    }
    let create =
        "mutation($u: String!) { createWebhookEndpoint(input: {url: $u, eventTypes: []}) { id } }";
    let one_more = app
        .gql(create, json!({"u": "https://one-more.example.com/turn"}))
        .await;
    one_more.expect_err("CONFLICT", None);
    assert!(one_more.message().contains("at most 50"), "{}", one_more.0);
    app.gql(
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id } }",
        json!({"id": ids[0]}),
    )
    .await
    .data();
    app.gql(create, json!({"u": "https://one-more.example.com/turn"}))
        .await
        .data();
}

/// An attempt still in flight when its endpoint moves says nothing of the endpoint at its new
/// URL: the old receiver's 410 is logged, but neither disables the endpoint nor gives the
/// delivery up, which goes to the new URL at once (same webhook-id); the next change reaches
/// the new URL too.
#[tokio::test]
async fn an_answer_from_the_url_an_endpoint_left_neither_disables_it_nor_ends_the_delivery() {
    let app = spawn_app().await;
    let old = Receiver::start().await;
    old.answer(&[410]);
    old.answer_slowly(&[1500]);
    let new = Receiver::start().await;
    let (id, _) = endpoint(&app, &old.url, json!(["check.status_changed"])).await;
    let check = app
        .start_check(&app.candidate("moving.on@example.com").await, false)
        .await;
    old.wait_for("the attempt in flight", 10, |g| !g.is_empty())
        .await;
    update_endpoint(&app, &id, json!({"url": new.url})).await;
    let attempt = eventually("the old URL's answer logged", 10, || async {
        let d = app
            .gql(
                "{ webhookDeliveries { attempts { url statusCode } } }",
                json!({}),
            )
            .await;
        let a = d.data()["webhookDeliveries"][0]["attempts"][0].clone();
        (!a.is_null()).then_some(a)
    })
    .await;
    assert_eq!(attempt, json!({"url": old.url, "statusCode": 410}));
    let e = app
        .gql("{ webhookEndpoints { enabled disabledReason } }", json!({}))
        .await;
    assert_eq!(
        e.data()["webhookEndpoints"][0],
        json!({"enabled": true, "disabledReason": null}),
        "{}",
        e.0
    );
    let got = new
        .wait_for("the delivery at the new URL", 10, |g| !g.is_empty())
        .await;
    assert_eq!(got[0].json["state"], "initiated");
    assert_eq!(got[0].id, old.received()[0].id, "the same webhook-id");
    app.system_moves(&check, "consent").await;
    let got = new
        .wait_for("the next change at the new URL", 10, |g| g.len() >= 2)
        .await;
    assert_eq!(got[1].json["state"], "consent");
    assert_eq!(old.received().len(), 1);
}
