//! Abusive queries are refused; nested lists load in batches, so SQL statements per request do
//! not grow with page size.
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn depth_and_complexity_limits_refuse_abusive_queries() {
    let app = spawn_app_with(|c| {
        c.max_query_depth = 5;
        c.max_query_complexity = 200;
    })
    .await;
    let deep = "{ candidates { edges { node { checks { candidate { checks { id } } } } } } }";
    let r = app.gql(deep, json!({})).await;
    assert!(
        r.message().to_lowercase().contains("nested too deep"),
        "{}",
        r.0
    );
    r.expect_err("QUERY_TOO_COMPLEX", None);
    let complex = "{ candidates(first: 100) { edges { node { id email firstName lastName } } } }";
    let r = app.gql(complex, json!({})).await;
    assert!(r.message().to_lowercase().contains("complex"), "{}", r.0);
    r.expect_err("QUERY_TOO_COMPLEX", None);
    app.gql(
        "{ candidates(first: 10) { edges { node { id } } } }",
        json!({}),
    )
    .await
    .data();
}

async fn statements_for(
    app: &crate::helpers::TestApp,
    query: &str,
    vars: serde_json::Value,
) -> u64 {
    let before = app.service.statements_executed();
    app.gql(query, vars).await.data();
    app.service.statements_executed() - before
}

#[tokio::test]
async fn sql_statements_per_request_do_not_grow_with_page_size() {
    // A wide batch window so a slow debug build under parallel tests still collects every key of
    // a level into one batch; the release benchmark measures the default window under load.
    // No embedded relay: its polling would share the pool whose statements are counted.
    let app = spawn_app_with(|c| {
        c.batch_window_ms = 50;
        c.embedded_workers = Some(false);
    })
    .await;
    for i in 0..60 {
        let c = app.candidate(&format!("n{i}@example.com")).await;
        let check = app.start_check(&c, true).await;
        if i % 2 == 0 {
            app.transition(&check, "withdrawn").await.data();
            app.start_check(&c, false).await;
        }
    }
    let q = "query($n: Int!) { candidates(first: $n) { edges { node { id email checks { id status package { name } history { toStatus } } } } } }";
    // Warm the token cache.
    app.gql("{ me { role } }", json!({})).await.data();
    let small = statements_for(&app, q, json!({"n": 2})).await;
    let large = statements_for(&app, q, json!({"n": 50})).await;
    assert_eq!(small, large, "statements grew with page size");
    // candidates with their checks, then packages, then history
    assert_eq!(large, 3, "{large} statements");

    let list = "{ candidates(first: 50) { edges { node { id checks { id status } } } } }";
    // The page with its checks in one join.
    assert_eq!(statements_for(&app, list, json!({})).await, 1);
    let id = app.candidate("single@example.com").await;
    let first = app.start_check(&id, true).await;
    app.transition(&first, "withdrawn").await.data();
    app.start_check(&id, false).await;
    let one =
        "query($id: ID!) { candidate(id: $id) { id firstName checks { id status statusLabel } } }";
    // The candidate and its checks in one join.
    assert_eq!(statements_for(&app, one, json!({"id": id})).await, 1);
    let d = app.gql(one, json!({"id": id})).await;
    let statuses: Vec<&str> = d.data()["candidate"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["status"].as_str().expect("status"))
        .collect();
    // Newest first.
    assert_eq!(statuses, ["initiated", "withdrawn"]);
}

#[tokio::test]
async fn complexity_counts_page_size() {
    let app = spawn_app().await;
    // Default limits: a full page of candidates with checks is fine.
    app.gql("{ candidates(first: 100) { edges { node { id checks { id status history { toStatus } } } } } }", json!({}))
        .await
        .data();
}

#[tokio::test]
async fn a_page_of_candidates_with_checks_costs_one_statement_even_under_concurrency() {
    // The default batch window, many requests at once: the page's checks are loaded with the page,
    // not left to a timer that busy servers overrun.
    let app = spawn_app_with(|c| c.embedded_workers = Some(false)).await;
    for i in 0..30 {
        let c = app.candidate(&format!("busy{i}@example.com")).await;
        app.start_check(&c, i % 3 != 0).await;
    }
    app.gql("{ me { role } }", json!({})).await.data();
    let q = "{ candidates(first: 30) { edges { node { id checks { id status } } } } }";
    let before = app.service.statements_executed();
    let requests = (0..16).map(|_| app.gql(q, json!({})));
    for r in futures_util::future::join_all(requests).await {
        let edges = r.data()["candidates"]["edges"]
            .as_array()
            .expect("edges")
            .len();
        assert_eq!(edges, 30);
    }
    let per_request = (app.service.statements_executed() - before) as f64 / 16.0;
    assert_eq!(
        per_request, 1.0,
        "candidates with their checks, in one join"
    );
}

#[tokio::test]
async fn a_withdrawal_reads_and_writes_in_two_statements_on_postgresql() {
    // No embedded relay or scheduler: their polling would share the pool whose statements are
    // counted.
    let app = spawn_app_with(|c| c.embedded_workers = Some(false)).await;
    let c = app.candidate("withdrawn@example.com").await;
    let check = app.start_check(&c, true).await;
    app.gql("{ me { role } }", json!({})).await.data();
    let before = app.service.statements_executed();
    app.transition(&check, "withdrawn").await.data();
    let n = app.service.statements_executed() - before;
    // The check with its candidate and partner, then the status update with its history, its
    // event, closing adverse actions, cancelling monitoring alerts and timed steps and revoking
    // consent links: on PostgreSQL one statement, outside a transaction (no BEGIN or COMMIT,
    // which the count would not show); on SQLite seven, in a transaction, as it has no `INSERT`
    // or `UPDATE` in a `WITH`.
    let expected = if crate::helpers::pg_url().is_some() {
        2
    } else {
        8
    };
    assert_eq!(n, expected, "statements for one withdrawal");
}

/// Errors async-graphql raises itself (before any resolver runs) carry a code too, and a bad
/// argument value names its field, as the service's own validation errors do.
#[tokio::test]
async fn schema_level_errors_carry_a_code_and_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            "mutation { createCandidate(input: {firstName: \"Ann\", lastName: \"Lee\"}) { id } }",
            json!({}),
            "BAD_USER_INPUT",
            Some("email"),
        ),
        (
            "mutation($i: CreateCandidateInput!) { createCandidate(input: $i) { id } }",
            json!({"i": {"firstName": "Ann", "lastName": "Lee"}}),
            "BAD_USER_INPUT",
            Some("email"),
        ),
        (
            "mutation { transitionCheck(input: {checkId: \"x\", status: nonsense}) { id } }",
            json!({}),
            "BAD_USER_INPUT",
            Some("status"),
        ),
        (
            "{ candidates { nope } }",
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
            None,
        ),
        ("{ candidates { ", json!({}), "GRAPHQL_PARSE_FAILED", None),
    ];
    for (query, vars, code, field) in cases {
        app.gql(query, vars).await.expect_err(code, field);
    }
}

/// A request body over 1 MiB is refused before it is read, with or without a token.
#[tokio::test]
async fn oversized_request_bodies_are_refused() {
    let app = spawn_app().await;
    let padding = "#".repeat(2 << 20);
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"query": format!("{padding}\n{{ me {{ role }} }}")}).to_string())
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status(), 413);
    // Under the limit, the same padding's smaller sibling is fine.
    let r = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"query": format!("{}\n{{ me {{ role }} }}", "#".repeat(100_000))})
                .to_string(),
        )
        .send()
        .await
        .expect("response");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["data"]["me"]["role"], "super_admin", "{body}");
    // The candidate pages' forms too, link or no link (before, read whole into memory).
    for path in [
        "/consent/no-such-link/sign",
        "/consent/no-such-link/sections/disclosure",
        "/report/no-such-link/dispute",
    ] {
        let resp = app
            .client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("signature={}", "a".repeat(4 << 20)))
            .send()
            .await
            .expect("response");
        assert_eq!(resp.status(), 413, "{path}");
    }
}

/// The embedded job store keeps `synchronous = NORMAL` on its one connection (apalis's set-up
/// sets OFF, with which a power loss could corrupt jobs.db).
#[tokio::test]
async fn the_embedded_job_store_syncs_at_checkpoints() {
    let dir = std::env::temp_dir().join(format!(
        "clearhire-jobs-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let (_queue, pool) = worker::queue::JobQueue::sqlite(&dir.join("jobs.db"))
        .await
        .expect("job store");
    let (mode,): (i64,) = sea_orm::sqlx::query_as("PRAGMA synchronous")
        .fetch_one(&pool)
        .await
        .expect("pragma");
    assert_eq!(mode, 1, "NORMAL");
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The NUL character is refused in any text of a request, naming the variable (or the query,
/// for a literal), with the same answer on SQLite and PostgreSQL (which refuses NUL in a text
/// parameter: a lookup or a search holding one was an internal error there).
#[tokio::test]
async fn text_with_a_nul_character_is_refused_on_every_backend() {
    let app = spawn_app().await;
    for (query, vars, field) in [
        (
            "query($s: String) { candidates(filter: {search: $s}) { totalCount } }",
            json!({"s": "a\u{0}"}),
            "s",
        ),
        (
            "query($id: ID!) { check(id: $id) { id } }",
            json!({"id": "\u{0}"}),
            "id",
        ),
        (
            "mutation($i: UpdateCandidateInput!) { updateCandidate(id: \"x\", input: $i) { id } }",
            json!({"i": {"firstName": "A\u{0}"}}),
            "i",
        ),
        (
            r#"{ candidate(referenceId: "ref\u0000") { id } }"#,
            json!({}),
            "query",
        ),
    ] {
        let r = app.gql(query, vars).await;
        r.expect_err("BAD_USER_INPUT", Some(field));
        assert!(r.message().contains("NUL"), "{}", r.0);
    }
    // Other escapes still work.
    let r = app
        .gql(
            r#"{ candidates(filter: {search: "caf\u00e9"}) { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(r.data()["candidates"]["totalCount"], 0);
}
