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
