use crate::helpers::spawn_app;

#[tokio::test]
async fn health_readiness_metrics_and_graphiql() {
    let app = spawn_app().await;
    let ok = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(ok.status(), 200);
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let n = app.metric("clearhire_db_statements_total").await;
    assert!(n > 0, "migrations and bootstrap ran statements");
    let page = app
        .client
        .get(app.url("/graphql"))
        .send()
        .await
        .expect("graphiql");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("graphiql"));
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.service.db().clone().close().await.expect("close");
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);
}

/// A timed step whose last run fails is given up, and `/metrics` counts it for an operator to
/// look at: here a step of a kind no process knows, on its twentieth run.
#[tokio::test]
async fn a_timed_step_given_up_is_counted_in_the_metrics() {
    use sea_orm::{ActiveModelTrait, Set};
    let app = spawn_app().await;
    assert_eq!(app.metric("clearhire_tasks_failed").await, 0);
    let now = app.service.clock().now();
    entity::task::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        partner_id: Set(app.partner_id.clone()),
        check_id: Set(None),
        kind: Set("no.such.kind".into()),
        payload: Set("{}".into()),
        run_at: Set(now),
        status: Set("pending".into()),
        attempts: Set(service::tasks::MAX_ATTEMPTS - 1),
        lease_until: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(app.service.db())
    .await
    .expect("task");
    crate::webhooks::eventually("the step given up", 10, || async {
        (app.metric("clearhire_tasks_failed").await == 1).then_some(())
    })
    .await;
    let failed = app.dump("tasks").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["status"], "failed", "{}", failed[0]);
    assert!(
        failed[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no.such.kind")),
        "{}",
        failed[0]
    );
}
