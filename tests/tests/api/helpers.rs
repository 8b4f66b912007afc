//! `spawn_app()`: the real server on 127.0.0.1:0 with a fresh database: a temporary SQLite file,
//! or, when `CLEARHIRE_TEST_PG_URL` is set, a fresh PostgreSQL database on that server.
use std::net::SocketAddr;

use api::{Application, Config};
use base64::Engine;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use service::Service;
use tokio::sync::oneshot;

pub struct TestApp {
    pub addr: SocketAddr,
    /// A super_admin token of the app's first partner.
    pub token: String,
    pub partner_id: String,
    pub service: Service,
    pub client: reqwest::Client,
    pub jwt_secret: String,
    /// The key the app encrypts with (to seal values as it would).
    pub encryption_key: [u8; 32],
    /// The app's database.
    pub database_url: String,
    /// The Redis URL and key prefix of the app's job queue in scale-out, `None` embedded.
    pub redis: Option<(String, String)>,
    _shutdown: oneshot::Sender<()>,
    _dir: TempDir,
}

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn random_hex(n: usize) -> String {
    uuid::Uuid::new_v4().simple().to_string()[..n].to_string()
}

/// The PostgreSQL server tests run against, if any.
pub fn pg_url() -> Option<String> {
    std::env::var("CLEARHIRE_TEST_PG_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

pub(crate) async fn fresh_database(dir: &std::path::Path) -> String {
    match pg_url() {
        None => format!("sqlite://{}/clearhire.db?mode=rwc", dir.display()),
        Some(admin) => {
            let run = std::env::var("CLEARHIRE_TEST_RUN_ID").unwrap_or_else(|_| "local".into());
            let name = format!("clearhire_test_{run}_{}", random_hex(12));
            let conn = Database::connect(&admin)
                .await
                .expect("PostgreSQL reachable at CLEARHIRE_TEST_PG_URL");
            conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create database");
            conn.close().await.ok();
            // Replace the database name (the path) of the admin URL.
            let (base, query) = admin
                .split_once('?')
                .map(|(b, q)| (b, Some(q)))
                .unwrap_or((&admin, None));
            let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
            match query {
                Some(q) => format!("{base}/{name}?{q}"),
                None => format!("{base}/{name}"),
            }
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = std::env::temp_dir().join(format!("clearhire-test-{}", random_hex(16)));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let jwt_secret = format!("{}{}", random_hex(32), random_hex(32));
    let mut key = [0u8; 32];
    key.iter_mut()
        .zip(
            uuid::Uuid::new_v4()
                .as_bytes()
                .iter()
                .chain(uuid::Uuid::new_v4().as_bytes()),
        )
        .for_each(|(k, r)| *k = *r);
    let mut config = Config::defaults();
    let database_url = fresh_database(&dir).await;
    config.database_url = Some(database_url.clone());
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.data_dir = dir.clone();
    config.db_max_connections = Some(5);
    config.jwt_secret = Some(jwt_secret.parse().expect("secret"));
    config.encryption_key = Some(
        base64::engine::general_purpose::STANDARD
            .encode(key)
            .parse()
            .expect("key"),
    );
    config.shutdown_grace_secs = 1;
    config.webhook_allowlist = "127.0.0.1".into();
    config.poll_interval_ms = 20;
    // Searches stay pending unless a test asks for the sandbox to answer (or moves the clock):
    // tests that walk statuses by hand are not overtaken by screening results.
    config.sandbox_latency_ms = 3_600_000;
    if pg_url().is_some()
        && let Ok(redis) = std::env::var("CLEARHIRE_TEST_REDIS_URL")
    {
        // The scale-out path for real: bus and job queue on Redis, under this app's own prefix.
        config.redis_url = Some(redis);
        let run = std::env::var("CLEARHIRE_TEST_RUN_ID").unwrap_or_else(|_| "local".into());
        config.redis_prefix = format!("clearhire-test-{run}-{}", random_hex(12));
        config.embedded_workers = Some(true);
    }
    adjust(&mut config);
    let redis = config
        .redis_url
        .clone()
        .map(|url| (url, config.redis_prefix.clone()));
    let app = Application::build(config).await.expect("app builds");
    let boot = app
        .bootstrapped
        .as_ref()
        .expect("fresh database bootstraps the demo partner");
    let (token, partner_id) = (boot.token.clone(), boot.partner_id.clone());
    let (addr, service) = (app.addr, app.service.clone());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = app
            .run_until(async {
                let _ = rx.await;
            })
            .await;
    });
    TestApp {
        addr,
        token,
        partner_id,
        encryption_key: key,
        database_url,
        service,
        client: reqwest::Client::new(),
        jwt_secret,
        redis,
        _shutdown: tx,
        _dir: TempDir(dir),
    }
}

/// A GraphQL response, with helpers to read it as a client would.
#[derive(Debug, Clone)]
pub struct Gql(pub Value);

impl Gql {
    pub fn data(&self) -> &Value {
        assert!(
            self.0.get("errors").is_none(),
            "unexpected errors: {}",
            self.0
        );
        &self.0["data"]
    }
    /// The first error's `extensions.code`.
    pub fn code(&self) -> &str {
        self.0["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error: {}", self.0))
    }
    pub fn field(&self) -> &str {
        self.0["errors"][0]["extensions"]["field"]
            .as_str()
            .unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.0["errors"][0]["message"].as_str().unwrap_or("")
    }
    /// Asserts an error with this code (and, if given, field).
    pub fn expect_err(&self, code: &str, field: Option<&str>) {
        assert_eq!(self.code(), code, "{}", self.0);
        if let Some(f) = field {
            assert_eq!(self.field(), f, "{}", self.0);
        }
    }
}

impl TestApp {
    /// One value from `GET /metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The embedded job store's file.
    pub fn jobs_db(&self) -> std::path::PathBuf {
        self._dir.0.join("jobs.db")
    }

    /// A second handle on the app's job store: its `jobs.db` embedded, its Redis keys in
    /// scale-out.
    pub async fn job_queue(&self) -> worker::queue::JobQueue {
        match &self.redis {
            Some((url, prefix)) => worker::queue::JobQueue::redis(url, prefix).await,
            None => worker::queue::JobQueue::sqlite(&self.jobs_db())
                .await
                .map(|(q, _)| q),
        }
        .expect("job queue opens")
    }

    pub async fn gql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), 200);
        Gql(resp.json().await.expect("json body"))
    }

    /// As the app's super_admin.
    pub async fn gql(&self, query: &str, variables: Value) -> Gql {
        self.gql_as(Some(&self.token), query, variables).await
    }

    /// A fresh token with `role` for this app's first partner, minted through GraphQL.
    pub async fn token_with_role(&self, role: &str) -> String {
        let r = self
            .gql(
                "mutation($r: Role!) { createApiToken(input: {name: \"test\", role: $r}) { token } }",
                json!({"r": role}),
            )
            .await;
        r.data()["createApiToken"]["token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// A second partner with its own super_admin token.
    pub async fn other_partner(&self) -> (String, String) {
        let p = self
            .service
            .provision_partner(
                "Other Partner",
                &format!("admin-{}@other.example.com", random_hex(6)),
                1,
            )
            .await
            .expect("provision");
        (p.partner_id, p.token)
    }

    /// Creates a candidate with the given email (and a valid minimal profile); returns its id.
    pub async fn candidate(&self, email: &str) -> String {
        self.candidate_as(&self.token, email).await
    }

    pub async fn candidate_as(&self, token: &str, email: &str) -> String {
        let r = self
            .gql_as(
                Some(token),
                "mutation($e: String!) { createCandidate(input: {firstName: \"Test\", lastName: \"Person\", email: $e}) { id } }",
                json!({"e": email}),
            )
            .await;
        r.data()["createCandidate"]["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Creates a candidate from a `CreateCandidateInput` object; returns its id.
    pub async fn candidate_with(&self, input: Value) -> String {
        let r = self
            .gql(
                "mutation($i: CreateCandidateInput!) { createCandidate(input: $i) { id } }",
                json!({"i": input}),
            )
            .await;
        r.data()["createCandidate"]["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Invites a team member with `role`; returns their id.
    pub async fn team_member(&self, email: &str, role: &str) -> String {
        let r = self
            .gql(
                "mutation($e: String!, $r: Role!) { inviteTeamMember(input: {email: $e, role: $r}) { id } }",
                json!({"e": email, "r": role}),
            )
            .await;
        r.data()["inviteTeamMember"]["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Mints an API token named `name` for team member `user_id` at `role`; returns it.
    pub async fn member_token(&self, user_id: &str, name: &str, role: &str) -> String {
        let r = self
            .gql(
                "mutation($u: ID!, $n: String!, $r: Role!) { createApiToken(input: {name: $n, role: $r, userId: $u}) { token } }",
                json!({"u": user_id, "n": name, "r": role}),
            )
            .await;
        r.data()["createApiToken"]["token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// Starts a check (default package) for a candidate; returns its id.
    pub async fn start_check(&self, candidate_id: &str, do_checks: bool) -> String {
        let r = self
            .gql(
                "mutation($c: ID!, $d: Boolean!) { startCheck(input: {candidateId: $c, doChecks: $d}) { id status } }",
                json!({"c": candidate_id, "d": do_checks}),
            )
            .await;
        r.data()["startCheck"]["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// A check's status, as a client reads it.
    pub async fn check_status(&self, check_id: &str) -> String {
        let r = self
            .gql(
                "query($id: ID!) { check(id: $id) { status } }",
                json!({"id": check_id}),
            )
            .await;
        r.data()["check"]["status"]
            .as_str()
            .expect("status")
            .to_string()
    }

    /// Waits (up to about 10 s) until a check is in `want`.
    pub async fn wait_check_status(&self, check_id: &str, want: &str) {
        let mut last = String::new();
        for _ in 0..300 {
            last = self.check_status(check_id).await;
            if last == want {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
        panic!("check {check_id} never reached {want}; it is {last}");
    }

    /// A check's timed steps of `kind`, with their status and attempts, as a partner reads
    /// them.
    pub async fn tasks_of_kind(&self, check_id: &str, kind: &str) -> Vec<Value> {
        let r = self
            .gql(
                "query($c: ID!) { check(id: $c) { tasks { kind status attempts } } }",
                json!({"c": check_id}),
            )
            .await;
        r.data()["check"]["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .filter(|t| t["kind"] == kind)
            .cloned()
            .collect()
    }

    pub async fn transition(&self, check_id: &str, status: &str) -> Gql {
        self.gql(
            "mutation($c: ID!, $s: CheckStatus!) { transitionCheck(input: {checkId: $c, status: $s, reason: \"test\"}) { id status } }",
            json!({"c": check_id, "s": status}),
        )
        .await
    }

    /// A move the system makes (consent arriving, searches finishing), made through the service
    /// as the workers make it, for tests that walk a check by hand without the sandbox.
    pub async fn system_moves(&self, check_id: &str, status: &str) {
        let to = entity::CheckStatus::from_api_str(status).expect("status");
        self.service
            .transition_check(
                &service::Actor::system(&self.partner_id),
                check_id,
                to,
                Some("test"),
            )
            .await
            .expect("system move");
    }

    /// Every row of a table (all partners, every column) as JSON, as an attacker with the
    /// database file would read it.
    pub async fn dump(&self, table: &str) -> Vec<Value> {
        use sea_orm::FromQueryResult;
        let db = self.service.db();
        sea_orm::JsonValue::find_by_statement(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT * FROM {table}"),
        ))
        .all(db)
        .await
        .expect("dump")
    }

    /// Number of rows in a table (all partners).
    pub async fn count_rows(&self, table: &str) -> i64 {
        let db = self.service.db();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count")
            .expect("row");
        row.try_get::<i64>("", "n").expect("n")
    }
}

/// Inserts `am`, whose id in `column` is already taken, through
/// `service::db::insert_with_fresh_id` inside a transaction, with `fresh` as the one redraw (`set`
/// puts it on `am`). Checks that the transaction is still usable afterwards (a caught unique
/// violation would have aborted it on PostgreSQL) and holds exactly one row more; commits and
/// returns the inserted row.
pub async fn insert_past_a_taken_id<A>(
    db: &sea_orm::DatabaseConnection,
    am: A,
    column: <A::Entity as sea_orm::EntityTrait>::Column,
    fresh: &str,
    set: impl Fn(&mut A, String),
) -> <A::Entity as sea_orm::EntityTrait>::Model
where
    A: sea_orm::ActiveModelTrait + Clone + Send,
    <A::Entity as sea_orm::EntityTrait>::Model: sea_orm::IntoActiveModel<A> + Send + Sync,
{
    use sea_orm::{EntityTrait, PaginatorTrait, TransactionTrait};
    let before = A::Entity::find().count(db).await.expect("count");
    let txn = db.begin().await.expect("begin");
    let mut fresh = Some(fresh.to_string());
    let inserted = service::db::insert_with_fresh_id(&txn, am, column, |am| {
        set(am, fresh.take().expect("one fresh id is enough"))
    })
    .await
    .expect("inserted under a fresh id");
    let after = A::Entity::find()
        .count(&txn)
        .await
        .expect("the transaction is still usable");
    txn.commit().await.expect("commit");
    assert_eq!(after, before + 1);
    inserted
}
