use serde_json::json;

use crate::helpers::{insert_past_a_taken_id, spawn_app};

#[tokio::test]
async fn packages_keep_exactly_one_default() {
    let app = spawn_app().await;
    let list = "{ packages(includeArchived: true) { id name searches isDefault archivedAt } me { partner { defaultPackage { id } } } }";
    let p = app
        .gql("mutation { createPackage(input: {name: \"Drivers\", searches: [mvr, criminal, mvr], makeDefault: true}) { id isDefault searches } }", json!({}))
        .await;
    let drivers = p.data()["createPackage"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(drivers.len() == 11 && drivers.starts_with('P'));
    assert_eq!(
        p.data()["createPackage"]["searches"],
        json!(["criminal", "mvr"])
    );
    let l = app.gql(list, json!({})).await;
    let defaults: Vec<_> = l.data()["packages"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|p| p["isDefault"] == true)
        .collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0]["id"], drivers.as_str());
    assert_eq!(
        l.data()["me"]["partner"]["defaultPackage"]["id"],
        drivers.as_str()
    );

    app.gql(
        "mutation($id: ID!) { archivePackage(id: $id) { id } }",
        json!({"id": drivers}),
    )
    .await
    .expect_err("CONFLICT", None);
    app.gql(
        "mutation($id: ID!) { updatePackage(id: $id, input: {makeDefault: false}) { id } }",
        json!({"id": drivers}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("makeDefault"));
    app.gql(
        "mutation { createPackage(input: {name: \"Empty\", searches: []}) { id } }",
        json!({}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("searches"));
    app.gql(
        "mutation { createPackage(input: {name: \"  \", searches: [mvr]}) { id } }",
        json!({}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("name"));

    // Switch the default back, then archive the old one.
    let standard = l.data()["packages"]
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["name"] == "Standard")
        .expect("standard")["id"]
        .as_str()
        .expect("id")
        .to_string();
    // A package that stops being the default says so in its own event.
    let no_longer_default = |events: Vec<(String, serde_json::Value)>| {
        events
            .iter()
            .any(|(t, p)| t == "package.updated" && p["is_default"] == false)
    };
    assert!(no_longer_default(
        crate::checks::outbox_events(&app, &standard).await
    ));
    assert!(!no_longer_default(
        crate::checks::outbox_events(&app, &drivers).await
    ));
    let u = app
        .gql("mutation($id: ID!) { updatePackage(id: $id, input: {makeDefault: true, name: \"Standard v2\"}) { isDefault name } }", json!({"id": standard}))
        .await;
    assert_eq!(u.data()["updatePackage"]["isDefault"], true);
    assert!(no_longer_default(
        crate::checks::outbox_events(&app, &drivers).await
    ));
    let a = app
        .gql(
            "mutation($id: ID!) { archivePackage(id: $id) { archivedAt isDefault } }",
            json!({"id": drivers}),
        )
        .await;
    assert!(a.data()["archivePackage"]["archivedAt"].is_string());
    let active = app.gql("{ packages { id isDefault } }", json!({})).await;
    assert_eq!(
        active.data()["packages"],
        json!([{"id": standard, "isDefault": true}])
    );
}

#[tokio::test]
async fn team_members_are_invited_listed_changed_and_removed() {
    let app = spawn_app().await;
    let m = app
        .gql("mutation { inviteTeamMember(input: {email: \"ops@example.com\", name: \"Ops\", role: team_member}) { id role } }", json!({}))
        .await;
    let id = m.data()["inviteTeamMember"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.gql(
        "mutation { inviteTeamMember(input: {email: \"OPS@example.com\", role: admin}) { id } }",
        json!({}),
    )
    .await
    .expect_err("CONFLICT", Some("email"));
    app.gql(
        "mutation { inviteTeamMember(input: {email: \"nope\", role: admin}) { id } }",
        json!({}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("email"));
    let c = app.gql("mutation($id: ID!) { changeTeamMemberRole(id: $id, role: limited_team_member) { role } }", json!({"id": id})).await;
    assert_eq!(
        c.data()["changeTeamMemberRole"]["role"],
        "limited_team_member"
    );
    let l = app.gql("{ teamMembers { email role } }", json!({})).await;
    assert_eq!(
        l.data()["teamMembers"],
        json!([{"email": "admin@demo.clearhire.dev", "role": "super_admin"}, {"email": "ops@example.com", "role": "limited_team_member"}])
    );
    app.gql(
        "mutation($id: ID!) { removeTeamMember(id: $id) { email } }",
        json!({"id": id}),
    )
    .await
    .data();
    let l = app.gql("{ teamMembers { email } }", json!({})).await;
    assert_eq!(l.data()["teamMembers"].as_array().expect("list").len(), 1);
}

#[tokio::test]
async fn partner_settings_drive_dashboard_links() {
    let app = spawn_app().await;
    let s = app
        .gql("mutation { updatePartnerSettings(input: {name: \"Acme Staffing\", publicBaseUrl: \"https://dash.acme.example.com/\"}) { name publicBaseUrl } }", json!({}))
        .await;
    assert_eq!(
        s.data()["updatePartnerSettings"]["publicBaseUrl"],
        "https://dash.acme.example.com"
    );
    app.gql("mutation { updatePartnerSettings(input: {publicBaseUrl: \"javascript:alert(1)\"}) { name } }", json!({}))
        .await
        .expect_err("BAD_USER_INPUT", Some("publicBaseUrl"));
    let cand = app.candidate("link@example.com").await;
    let check = app.start_check(&cand, true).await;
    let dump = serde_json::to_string(&app.dump("outbox").await).expect("json");
    assert!(
        dump.contains(&format!("https://dash.acme.example.com/workers/{cand}")),
        "{check}: {dump}"
    );
}

/// Package ids are ten random digits too: a taken one is skipped for a fresh one inside the
/// caller's transaction, as for `turnId`.
#[tokio::test]
async fn a_taken_package_id_is_replaced_without_spoiling_the_transaction() {
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
    let app = spawn_app().await;
    let p = app
        .gql(
            "mutation { createPackage(input: {name: \"Taken\", searches: [criminal]}) { id } }",
            json!({}),
        )
        .await;
    let taken = p.data()["createPackage"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let db = app.service.db();
    let existing = entity::package::Entity::find()
        .filter(entity::package::Column::Id.eq(&taken))
        .one(db)
        .await
        .expect("read")
        .expect("package");
    let mut am = existing.into_active_model().reset_all();
    am.name = Set("Second".into());
    am.is_default = Set(false);
    let inserted = insert_past_a_taken_id(
        db,
        am,
        entity::package::Column::Id,
        "P0000000001",
        |am, id| am.id = Set(id),
    )
    .await;
    assert_eq!(inserted.id, "P0000000001");
    let got = app
        .gql(
            "query($t: ID!) { a: package(id: \"P0000000001\") { name } b: package(id: $t) { name } }",
            json!({"t": taken}),
        )
        .await;
    assert_eq!(got.data()["a"]["name"], "Second");
    assert_eq!(got.data()["b"]["name"], "Taken");
}

/// A package archived while it is made the default (PostgreSQL runs the two side by side) ends
/// one way or the other, never both: an archived default would refuse every check started
/// without a package.
#[tokio::test]
async fn a_package_is_never_both_archived_and_the_default() {
    let app = spawn_app().await;
    let truthy = |v: &serde_json::Value| *v == json!(true) || *v == json!(1);
    for round in 0..5 {
        let p = app
            .gql(
                "mutation($n: String!) { createPackage(input: {name: $n, searches: [criminal]}) { id } }",
                json!({"n": format!("Race {round}")}),
            )
            .await;
        let id = p.data()["createPackage"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let (archived, made_default) = tokio::join!(
            app.gql(
                "mutation($id: ID!) { archivePackage(id: $id) { id } }",
                json!({"id": id}),
            ),
            app.gql(
                "mutation($id: ID!) { updatePackage(id: $id, input: {makeDefault: true}) { id } }",
                json!({"id": id}),
            )
        );
        let rows = app.dump("packages").await;
        let defaults: Vec<_> = rows.iter().filter(|r| truthy(&r["is_default"])).collect();
        assert_eq!(defaults.len(), 1, "round {round}: {rows:?}");
        assert!(
            defaults[0]["archived_at"].is_null(),
            "round {round}: the default is archived ({} / {}): {rows:?}",
            archived.0,
            made_default.0
        );
    }
}
