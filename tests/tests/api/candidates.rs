use serde_json::{Value, json};

use crate::helpers::{insert_past_a_taken_id, spawn_app, spawn_app_with};

const CREATE: &str = "mutation($i: CreateCandidateInput!) { createCandidate(input: $i) { id turnId referenceId firstName middleName lastName email phone dateOfBirth ssn zip city state address experience interests transportationMethod createdAt } }";

fn full_profile() -> serde_json::Value {
    json!({
        "firstName": "Samwise", "middleName": "Hamfast", "lastName": "Gamgee",
        "email": "Sam@Shire.example.com", "phone": "(415) 555-0134", "dateOfBirth": "1990-04-06",
        "ssn": "123-45-6789", "zip": "94107", "city": "Hobbiton", "state": "ca",
        "address": "3 Bagshot Row", "experience": "Gardening, 10 years", "interests": "Delivery",
        "transportationMethod": "bike", "referenceId": "ext-42"
    })
}

#[tokio::test]
async fn create_with_every_profile_field_and_read_it_back_by_each_id() {
    let app = spawn_app().await;
    let r = app.gql(CREATE, json!({"i": full_profile()})).await;
    let c = &r.data()["createCandidate"];
    assert_eq!(c["email"], "sam@shire.example.com");
    assert_eq!(c["phone"], "+14155550134");
    assert_eq!(c["state"], "CA");
    assert_eq!(c["ssn"], "***-**-6789");
    assert_eq!(c["dateOfBirth"], "1990-04-06");
    assert_eq!(c["transportationMethod"], "bike");
    let turn = c["turnId"].as_str().expect("turnId");
    assert!(
        turn.len() == 11
            && turn.starts_with('C')
            && turn[1..].chars().all(|ch| ch.is_ascii_digit()),
        "{turn}"
    );
    let id = c["id"].as_str().expect("id");
    uuid::Uuid::parse_str(id).expect("worker id is a UUID");

    for (arg, value) in [
        ("id: $v", id),
        ("turnId: $v", turn),
        ("referenceId: $v", "ext-42"),
    ] {
        let ty = if arg.starts_with("id") {
            "ID!"
        } else {
            "String!"
        };
        let q = format!(
            "query($v: {ty}) {{ candidate({arg}) {{ id middleName city address experience interests zip }} }}"
        );
        let g = app.gql(&q, json!({"v": value})).await;
        assert_eq!(g.data()["candidate"]["id"], id);
        assert_eq!(g.data()["candidate"]["middleName"], "Hamfast");
        assert_eq!(g.data()["candidate"]["address"], "3 Bagshot Row");
        assert_eq!(g.data()["candidate"]["zip"], "94107");
    }
    app.gql("{ candidate { id } }", json!({}))
        .await
        .expect_err("BAD_USER_INPUT", Some("id"));
}

#[tokio::test]
async fn duplicate_email_or_reference_id_is_a_conflict_naming_the_existing_candidate() {
    let app = spawn_app().await;
    let r = app.gql(CREATE, json!({"i": full_profile()})).await;
    let existing = r.data()["createCandidate"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let before = app.count_rows("candidates").await;

    let mut dup_email = full_profile();
    dup_email["email"] = json!("SAM@shire.example.com");
    dup_email["referenceId"] = json!("other");
    let g = app.gql(CREATE, json!({"i": dup_email})).await;
    g.expect_err("CONFLICT", Some("email"));
    assert_eq!(
        g.0["errors"][0]["extensions"]["existingId"],
        existing.as_str()
    );

    let mut dup_ref = full_profile();
    dup_ref["email"] = json!("other@shire.example.com");
    let g = app.gql(CREATE, json!({"i": dup_ref})).await;
    g.expect_err("CONFLICT", Some("referenceId"));
    assert_eq!(
        g.0["errors"][0]["extensions"]["existingId"],
        existing.as_str()
    );
    assert_eq!(app.count_rows("candidates").await, before);

    // Updating another candidate to the taken email conflicts too.
    let other = app.candidate("frodo@shire.example.com").await;
    app.gql("mutation($id: ID!) { updateCandidate(id: $id, input: {email: \"sam@shire.example.com\"}) { id } }", json!({"id": other}))
        .await
        .expect_err("CONFLICT", Some("email"));
}

/// Requests creating the same candidate at once: one is created, every other is a conflict that
/// names it (on PostgreSQL they race past the look to the unique index).
#[tokio::test]
async fn concurrent_duplicates_are_conflicts_naming_the_one_created() {
    let app = spawn_app().await;
    let create = || {
        app.gql(
            "mutation { createCandidate(input: {firstName: \"Ted\", lastName: \"Sandyman\", email: \"ted@mill.example.com\"}) { id } }",
            json!({}),
        )
    };
    let answers = futures_util::future::join_all((0..8).map(|_| create())).await;
    let created: Vec<&str> = answers
        .iter()
        .filter_map(|g| g.0["data"]["createCandidate"]["id"].as_str())
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for g in answers
        .iter()
        .filter(|g| g.0["data"]["createCandidate"].is_null())
    {
        g.expect_err("CONFLICT", Some("email"));
        assert_eq!(
            g.0["errors"][0]["extensions"]["existingId"], created[0],
            "{}",
            g.0
        );
    }
}

/// Updates at once: two candidates moved to one email, one wins and the other's conflict names
/// it; and two updates of one candidate, one of the name and one of the email, both show in
/// its search (each used to write the search text of the row as it had read it).
#[tokio::test]
async fn concurrent_updates_keep_emails_unique_and_the_search_whole() {
    let app = spawn_app().await;
    for round in 0..4 {
        let a = app.candidate(&format!("a{round}@mill.example.com")).await;
        let b = app.candidate(&format!("b{round}@mill.example.com")).await;
        let target = format!("same{round}@mill.example.com");
        let update = |id: String| {
            app.gql(
                "mutation($id: ID!, $e: String!) { updateCandidate(id: $id, input: {email: $e}) { id } }",
                json!({"id": id, "e": target}),
            )
        };
        let answers = futures_util::future::join(update(a.clone()), update(b.clone())).await;
        let [first, second] = [&answers.0, &answers.1];
        let (won, lost) = if first.0["data"]["updateCandidate"].is_null() {
            (second, first)
        } else {
            (first, second)
        };
        let winner = won.data()["updateCandidate"]["id"].clone();
        lost.expect_err("CONFLICT", Some("email"));
        assert_eq!(
            lost.0["errors"][0]["extensions"]["existingId"], winner,
            "{}",
            lost.0
        );

        let c = app.candidate(&format!("c{round}@mill.example.com")).await;
        let rename = app.gql(
            "mutation($id: ID!) { updateCandidate(id: $id, input: {firstName: \"Rosamunda\"}) { id } }",
            json!({"id": c}),
        );
        let new_email = format!("took{round}@mill.example.com");
        let move_email = app.gql(
            "mutation($id: ID!, $e: String!) { updateCandidate(id: $id, input: {email: $e}) { id } }",
            json!({"id": c, "e": new_email}),
        );
        let (r1, r2) = futures_util::future::join(rename, move_email).await;
        r1.data();
        r2.data();
        for term in ["rosamunda", new_email.as_str()] {
            let found = app
                .gql(
                    "query($s: String) { candidates(filter: {search: $s}) { edges { node { id } } } }",
                    json!({"s": term}),
                )
                .await;
            assert!(
                found.data()["candidates"]["edges"]
                    .as_array()
                    .expect("edges")
                    .iter()
                    .any(|e| e["node"]["id"] == c.as_str()),
                "{term} finds the candidate: {}",
                found.0
            );
        }
    }
}

#[tokio::test]
async fn every_bad_input_names_its_field_and_writes_nothing() {
    let app = spawn_app().await;
    let cases = [
        ("email", json!("not-an-email")),
        ("email", json!("a@b")),
        ("phone", json!("555-0134")),
        ("phone", json!("+44 20 7946 0958")),
        ("zip", json!("9410")),
        ("zip", json!("94107-12")),
        ("state", json!("XX")),
        ("dateOfBirth", json!("1990-02-30")),
        ("dateOfBirth", json!("2099-01-01")),
        ("dateOfBirth", json!("1850-01-01")),
        ("ssn", json!("12345678")),
        ("ssn", json!("000-12-3456")),
        ("ssn", json!("123-45-678a")),
        ("firstName", json!("   ")),
        ("lastName", json!("x".repeat(101))),
    ];
    let rows = ["candidates", "outbox"];
    let mut before = Vec::new();
    for t in rows {
        before.push(app.count_rows(t).await);
    }
    for (field, value) in cases {
        let mut input = full_profile();
        input[field] = value.clone();
        let g = app.gql(CREATE, json!({"i": input})).await;
        g.expect_err("BAD_USER_INPUT", Some(field));
        assert!(g.message().starts_with(field), "{field}={value}: {}", g.0);
    }
    for (t, n) in rows.iter().zip(before) {
        assert_eq!(app.count_rows(t).await, n, "{t} changed");
    }
    // URLs: a check's callback.
    let id = app.candidate("url@example.com").await;
    for bad in ["not a url", "ftp://example.com/hook", "http://"] {
        app.gql(
            "mutation($c: ID!, $u: String!) { startCheck(input: {candidateId: $c, callbackUrl: $u}) { id } }",
            json!({"c": id, "u": bad}),
        )
        .await
        .expect_err("BAD_USER_INPUT", Some("callbackUrl"));
    }
    assert_eq!(app.count_rows("checks").await, 0);
    // Type errors are GraphQL validation errors, not panics.
    let g = app
        .gql(
            "mutation { createCandidate(input: {firstName: 1}) { id } }",
            json!({}),
        )
        .await;
    assert!(g.0["errors"].is_array());
}

#[tokio::test]
async fn update_changes_and_clears_fields() {
    let app = spawn_app().await;
    let r = app.gql(CREATE, json!({"i": full_profile()})).await;
    let id = r.data()["createCandidate"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let u = app
        .gql(
            "mutation($id: ID!) { updateCandidate(id: $id, input: {city: \"Bywater\", middleName: \"\", ssn: \"234-56-7890\"}) { city middleName ssn lastName } }",
            json!({"id": id}),
        )
        .await;
    let c = &u.data()["updateCandidate"];
    assert_eq!(c["city"], "Bywater");
    assert!(c["middleName"].is_null());
    assert_eq!(c["ssn"], "***-**-7890");
    assert_eq!(c["lastName"], "Gamgee");
    // Search follows the update.
    let s = app
        .gql(
            "{ candidates(filter: {search: \"gamgee\"}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(s.data()["candidates"]["totalCount"], 1);
}

#[tokio::test]
async fn ssn_and_date_of_birth_are_not_stored_in_plaintext() {
    let app = spawn_app().await;
    app.gql(CREATE, json!({"i": full_profile()})).await.data();
    let rows = app.dump("candidates").await;
    assert_eq!(rows.len(), 1);
    let dump = serde_json::to_string(&rows).expect("json");
    assert!(dump.contains("Gamgee"), "the dump does show the row");
    for secret in ["123456789", "123-45-6789", "1990-04-06"] {
        assert!(
            !dump.contains(secret),
            "plaintext {secret} found in candidates"
        );
    }
    let dump = serde_json::to_string(&app.dump("outbox").await).expect("json");
    assert!(
        !dump.contains("123456789") && !dump.contains("1990-04-06"),
        "sensitive data leaked into events"
    );
}

/// Ten random digits can collide: a taken `turnId` is skipped for a fresh one, and the caller's
/// transaction stays usable (a caught unique violation would have aborted it on PostgreSQL).
#[tokio::test]
async fn a_taken_turn_id_is_replaced_without_spoiling_the_transaction() {
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
    let app = spawn_app().await;
    let first = app.candidate("taken@example.com").await;
    let db = app.service.db();
    let existing = entity::candidate::Entity::find()
        .filter(entity::candidate::Column::Id.eq(first))
        .one(db)
        .await
        .expect("read")
        .expect("candidate");
    let mut am = existing.into_active_model().reset_all();
    am.seq = sea_orm::NotSet;
    am.id = Set(uuid::Uuid::new_v4().to_string());
    am.email = Set("second.taken@example.com".into());
    let inserted = insert_past_a_taken_id(
        db,
        am,
        entity::candidate::Column::TurnId,
        "C0000000001",
        |am, id| am.turn_id = Set(id),
    )
    .await;
    assert_eq!(inserted.turn_id, "C0000000001");
    let again = app
        .gql(
            "query($t: String) { candidate(turnId: $t) { email } }",
            json!({"t": "C0000000001"}),
        )
        .await;
    assert_eq!(
        again.data()["candidate"]["email"],
        "second.taken@example.com"
    );
}

/// The names of the indexes the database has.
async fn index_names(db: &sea_orm::DatabaseConnection) -> Vec<String> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public'"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'index'",
    };
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("indexes")
        .iter()
        .map(|r| r.try_get::<String>("", "name").expect("name"))
        .collect()
}

#[tokio::test]
async fn the_lookup_indexes_migration_rolls_back_and_forward_keeping_the_data() {
    use migration::MigratorTrait;
    let app = spawn_app_with(|c| c.embedded_workers = Some(false)).await;
    let id = app.candidate("kept@example.com").await;
    let db = app.service.db();
    let new = [
        "ux_candidates_email_partner",
        "ux_candidates_reference_partner",
        "ix_candidates_ssn",
        "ix_checks_candidate_created",
    ];
    let old = [
        "ux_candidates_partner_email",
        "ux_candidates_partner_reference",
        "ix_candidates_partner_ssn",
        "ix_checks_partner_candidate",
    ];
    let has = |names: &[String], want: &[&str]| want.iter().all(|w| names.iter().any(|n| n == w));
    let none = |names: &[String], want: &[&str]| !want.iter().any(|w| names.iter().any(|n| n == w));
    let names = index_names(db).await;
    assert!(has(&names, &new) && none(&names, &old), "{names:?}");

    // Down past it (and the two after it: endpoints' last failure, checks' searches), then up
    // again.
    migration::Migrator::down(db, Some(3)).await.expect("down");
    let names = index_names(db).await;
    assert!(has(&names, &old) && none(&names, &new), "{names:?}");

    migration::Migrator::up(db, None).await.expect("up");
    let names = index_names(db).await;
    assert!(has(&names, &new) && none(&names, &old), "{names:?}");
    let r = app
        .gql(
            "query($e: ID!) { candidate(id: $e) { email } }",
            json!({"e": id}),
        )
        .await;
    assert_eq!(r.data()["candidate"]["email"], "kept@example.com");
}

/// Checks and hosted forms made before they kept their searches take their package's.
#[tokio::test]
async fn the_check_searches_migration_gives_older_checks_their_packages_searches() {
    use migration::MigratorTrait;
    use sea_orm::ConnectionTrait;
    let app = spawn_app_with(|c| c.embedded_workers = Some(false)).await;
    let check = app
        .start_check(&app.candidate("ordered@example.com").await, true)
        .await;
    app.gql(
        "mutation { createConsentForm(zipcode: \"94107\") { formId } }",
        json!({}),
    )
    .await
    .data();
    // On a connection of its own: SQLite's other connections keep the schema they read until
    // a statement finds it changed, and a change of columns made on one is not seen by another
    // preparing an ALTER.
    let db = sea_orm::Database::connect(
        sea_orm::ConnectOptions::new(&app.database_url)
            .max_connections(1)
            .to_owned(),
    )
    .await
    .expect("connect");
    migration::Migrator::down(&db, Some(1)).await.expect("down");
    // As after a run stopped part way (as one could before migrations ran in a transaction on
    // SQLite too): the first table has its column, the next run goes on.
    let json = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => "jsonb",
        _ => "text",
    };
    db.execute_unprepared(&format!(
        "ALTER TABLE checks ADD COLUMN searches {json} NOT NULL DEFAULT '[]'"
    ))
    .await
    .expect("a column added");
    migration::Migrator::up(&db, None).await.expect("up");
    let r = app
        .gql(
            "query($c: ID!) { check(id: $c) { searches package { searches } } }",
            json!({"c": check}),
        )
        .await;
    let c = &r.data()["check"];
    assert!(
        !c["searches"].as_array().expect("searches").is_empty(),
        "{c}"
    );
    assert_eq!(c["searches"], c["package"]["searches"]);
    // A JSON column reads as text on SQLite.
    let form = match app.dump("form_sessions").await[0]["searches"].clone() {
        Value::String(s) => serde_json::from_str(&s).expect("json"),
        v => v,
    };
    assert_eq!(form, c["package"]["searches"]);
}

/// Processes starting together on a new PostgreSQL database (api and worker replicas rolled out
/// at once) take turns migrating it, and both start.
#[tokio::test]
async fn processes_starting_together_migrate_the_database_between_them() {
    if crate::helpers::pg_url().is_none() {
        eprintln!("CLEARHIRE_TEST_PG_URL unset: concurrent migrations are PostgreSQL's case");
        return;
    }
    let dir = std::env::temp_dir();
    let url = crate::helpers::fresh_database(&dir).await;
    let connect = || async {
        sea_orm::Database::connect(url.as_str())
            .await
            .expect("connect")
    };
    let (a, b, c) = tokio::join!(connect(), connect(), connect());
    let (ra, rb, rc) = tokio::join!(
        service::db::migrate(&a),
        service::db::migrate(&b),
        service::db::migrate(&c)
    );
    for r in [ra, rb, rc] {
        r.expect("each process starts");
    }
    use migration::MigratorTrait;
    assert!(
        migration::Migrator::get_pending_migrations(&a)
            .await
            .expect("status")
            .is_empty()
    );
}

/// On PostgreSQL every session of the pool ends a transaction left idle for a minute: a process
/// frozen mid-transaction does not hold its locks (the relay's turn, a check's row) until TCP
/// gives up on it.
#[tokio::test]
async fn a_transaction_left_idle_is_ended_by_postgresql() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let app = spawn_app().await;
    let db = app.service.db();
    if db.get_database_backend() != DbBackend::Postgres {
        eprintln!("CLEARHIRE_TEST_PG_URL unset: idle transactions are PostgreSQL's case");
        return;
    }
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_setting('idle_in_transaction_session_timeout') AS t",
        ))
        .await
        .expect("setting")
        .expect("row");
    assert_eq!(row.try_get::<String>("", "t").expect("t"), "1min");
}
