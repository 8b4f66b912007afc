use serde_json::{Value, json};

use crate::helpers::spawn_app;

const PAGE: &str = "query($f: Int, $a: String, $l: Int, $b: String, $filter: CandidateFilterInput) { candidates(first: $f, after: $a, last: $l, before: $b, filter: $filter) { totalCount edges { cursor node { email } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";

fn emails(v: &Value) -> Vec<String> {
    v["candidates"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["email"].as_str().expect("email").to_string())
        .collect()
}

#[tokio::test]
async fn forward_and_backward_pages_with_edges() {
    let app = spawn_app().await;
    for i in 0..7 {
        app.candidate(&format!("c{i}@example.com")).await;
    }
    // Newest first.
    let p1 = app.gql(PAGE, json!({"f": 3})).await;
    let d1 = p1.data();
    assert_eq!(
        emails(d1),
        ["c6@example.com", "c5@example.com", "c4@example.com"]
    );
    assert_eq!(d1["candidates"]["totalCount"], 7);
    assert_eq!(d1["candidates"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(d1["candidates"]["pageInfo"]["hasPreviousPage"], false);

    let p2 = app
        .gql(
            PAGE,
            json!({"f": 3, "a": d1["candidates"]["pageInfo"]["endCursor"]}),
        )
        .await;
    let d2 = p2.data();
    assert_eq!(
        emails(d2),
        ["c3@example.com", "c2@example.com", "c1@example.com"]
    );
    assert_eq!(d2["candidates"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(d2["candidates"]["pageInfo"]["hasPreviousPage"], true);

    let p3 = app
        .gql(
            PAGE,
            json!({"f": 3, "a": d2["candidates"]["pageInfo"]["endCursor"]}),
        )
        .await;
    let d3 = p3.data();
    assert_eq!(emails(d3), ["c0@example.com"]);
    assert_eq!(d3["candidates"]["pageInfo"]["hasNextPage"], false);

    // Exactly a page's worth left: no next page.
    let exact = app
        .gql(
            PAGE,
            json!({"f": 4, "a": d1["candidates"]["pageInfo"]["endCursor"]}),
        )
        .await;
    assert_eq!(exact.data()["candidates"]["pageInfo"]["hasNextPage"], false);

    // Backward from the start of page 3: the 2 just before it, in list order.
    let back = app
        .gql(
            PAGE,
            json!({"l": 2, "b": d3["candidates"]["pageInfo"]["startCursor"]}),
        )
        .await;
    let db = back.data();
    assert_eq!(emails(db), ["c2@example.com", "c1@example.com"]);
    assert_eq!(db["candidates"]["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(db["candidates"]["pageInfo"]["hasNextPage"], true);
    // The last 2 overall.
    let tail = app.gql(PAGE, json!({"l": 2})).await;
    assert_eq!(emails(tail.data()), ["c1@example.com", "c0@example.com"]);
    assert_eq!(
        tail.data()["candidates"]["pageInfo"]["hasPreviousPage"],
        true
    );

    // Edges: empty page and zero.
    let none = app.gql(PAGE, json!({"f": 0})).await;
    assert!(emails(none.data()).is_empty());
    let past = app
        .gql(
            PAGE,
            json!({"f": 5, "a": d3["candidates"]["pageInfo"]["endCursor"]}),
        )
        .await;
    assert!(emails(past.data()).is_empty());
    assert_eq!(past.data()["candidates"]["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn bad_page_arguments_are_refused() {
    let app = spawn_app_limited().await;
    app.gql(PAGE, json!({"f": -1}))
        .await
        .expect_err("BAD_USER_INPUT", Some("first"));
    app.gql(PAGE, json!({"f": 101}))
        .await
        .expect_err("BAD_USER_INPUT", Some("first"));
    app.gql(PAGE, json!({"f": 1, "l": 1}))
        .await
        .expect_err("BAD_USER_INPUT", Some("last"));
    app.gql(PAGE, json!({"f": 1, "a": "garbage"}))
        .await
        .expect_err("BAD_USER_INPUT", Some("after"));
    app.gql(PAGE, json!({"l": 1, "b": "Y2FuZGlkYXRlOng"}))
        .await
        .expect_err("BAD_USER_INPUT", Some("before"));
}

async fn spawn_app_limited() -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(|c| c.max_page_size = 100).await
}

#[tokio::test]
async fn filters_by_text_status_and_creation_time() {
    let app = spawn_app().await;
    let a = app
        .gql("mutation { createCandidate(input: {firstName: \"Walter\", lastName: \"White\", email: \"heisenberg@example.com\"}) { id createdAt } }", json!({}))
        .await;
    let walter = a.data()["createCandidate"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let walter_at = a.data()["createCandidate"]["createdAt"]
        .as_str()
        .expect("at")
        .to_string();
    let darth = app.candidate("vader@empire.example.com").await;
    app.candidate("samwise@shire.example.com").await;
    let check = app.start_check(&walter, true).await;
    app.start_check(&darth, false).await;
    app.transition(&check, "withdrawn").await.data();

    let count = |f: Value| {
        let app = &app;
        async move {
            app.gql(PAGE, json!({"f": 10, "filter": f})).await.data()["candidates"]["totalCount"]
                .as_i64()
                .expect("n")
        }
    };
    assert_eq!(count(json!({"search": "WHITE"})).await, 1);
    assert_eq!(count(json!({"search": "empire"})).await, 1);
    assert_eq!(
        count(json!({"search": "%"})).await,
        0,
        "LIKE wildcards are literal"
    );
    assert_eq!(count(json!({"status": "withdrawn"})).await, 1);
    assert_eq!(count(json!({"status": "initiated"})).await, 1);
    assert_eq!(count(json!({"status": "approved"})).await, 0);
    assert_eq!(count(json!({"createdAfter": walter_at})).await, 3);
    assert_eq!(count(json!({"createdBefore": walter_at})).await, 0);
    assert_eq!(
        count(
            json!({"createdAfter": "2000-01-01T00:00:00Z", "createdBefore": "2100-01-01T00:00:00Z"})
        )
        .await,
        3
    );
    let listed = app
        .gql(PAGE, json!({"f": 10, "filter": {"status": "withdrawn"}}))
        .await;
    assert_eq!(emails(listed.data()), ["heisenberg@example.com"]);
    app.gql(PAGE, json!({"f": 10, "filter": {"createdAfter": "2100-01-01T00:00:00Z", "createdBefore": "2000-01-01T00:00:00Z"}}))
        .await
        .expect_err("BAD_USER_INPUT", Some("createdBefore"));
}
