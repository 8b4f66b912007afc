use chrono::Utc;
use entity::Role;
use sea_orm::ConnectionTrait;
use serde_json::json;
use service::auth::{Claims, TokenAuthority};

use crate::helpers::spawn_app;

const ME: &str = "{ me { role subject partner { name } } }";

#[tokio::test]
async fn no_token_bad_token_and_wrong_scheme_are_unauthenticated() {
    let app = spawn_app().await;
    app.gql_as(None, ME, json!({}))
        .await
        .expect_err("UNAUTHENTICATED", None);
    app.gql_as(Some("not-a-jwt"), ME, json!({}))
        .await
        .expect_err("UNAUTHENTICATED", None);
    // Even the queries of static data answer only with a token.
    for q in [
        "{ checkStatuses { status } }",
        "{ sandboxScenarios { key } }",
    ] {
        app.gql_as(None, q, json!({}))
            .await
            .expect_err("UNAUTHENTICATED", None);
    }
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header("authorization", format!("Basic {}", app.token))
        .json(&json!({"query": ME}))
        .send()
        .await
        .expect("send");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let me = app.gql(ME, json!({})).await;
    assert_eq!(me.data()["me"]["role"], "super_admin");
}

#[tokio::test]
async fn tokens_signed_with_another_secret_or_expired_are_refused() {
    let app = spawn_app().await;
    let now = Utc::now().timestamp();
    let claims = |exp: i64| Claims {
        partner: app.partner_id.clone(),
        sub: "someone".into(),
        role: Role::SuperAdmin,
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now - 100,
        exp,
    };
    let forged = TokenAuthority::new(&[9u8; 48])
        .sign(&claims(now + 3600))
        .expect("sign");
    app.gql_as(Some(&forged), ME, json!({}))
        .await
        .expect_err("UNAUTHENTICATED", None);
    let ours = TokenAuthority::new(app.jwt_secret.as_bytes());
    let expired = ours.sign(&claims(now - 60)).expect("sign");
    let r = app.gql_as(Some(&expired), ME, json!({})).await;
    r.expect_err("UNAUTHENTICATED", None);
    assert!(r.message().contains("expired"), "{}", r.0);
    // Correctly signed but never issued (no token row): refused too.
    let unissued = ours.sign(&claims(now + 3600)).expect("sign");
    app.gql_as(Some(&unissued), ME, json!({}))
        .await
        .expect_err("UNAUTHENTICATED", None);
}

#[tokio::test]
async fn super_admin_mints_and_revokes_tokens() {
    let app = spawn_app().await;
    let r = app
        .gql(
            "mutation { createApiToken(input: {name: \"ATS sync\", role: team_member, expiresInDays: 7}) { token apiToken { id name role revokedAt } } }",
            json!({}),
        )
        .await;
    let token = r.data()["createApiToken"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let id = r.data()["createApiToken"]["apiToken"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        app.gql_as(Some(&token), ME, json!({})).await.data()["me"]["role"],
        "team_member"
    );

    let list = app
        .gql("{ apiTokens { id name revokedAt } }", json!({}))
        .await;
    assert!(
        list.data()["apiTokens"]
            .as_array()
            .expect("list")
            .iter()
            .any(|t| t["id"] == id.as_str())
    );

    let revoked = app
        .gql(
            "mutation($id: ID!) { revokeApiToken(id: $id) { revokedAt } }",
            json!({"id": id}),
        )
        .await;
    assert!(revoked.data()["revokeApiToken"]["revokedAt"].is_string());
    app.gql_as(Some(&token), ME, json!({}))
        .await
        .expect_err("UNAUTHENTICATED", None);
}

#[tokio::test]
async fn operator_commands_mint_and_revoke() {
    // What `api token create` and `api token revoke` call.
    let app = spawn_app().await;
    let minted = app
        .service
        .operator_mint_token(&app.partner_id, "cli", Role::Admin, 1)
        .await
        .expect("mint");
    assert_eq!(
        app.gql_as(Some(&minted.token), ME, json!({})).await.data()["me"]["role"],
        "admin"
    );
    app.service
        .operator_revoke_token(&minted.record.id)
        .await
        .expect("revoke");
    app.gql_as(Some(&minted.token), ME, json!({}))
        .await
        .expect_err("UNAUTHENTICATED", None);
    assert!(
        app.service
            .operator_mint_token("no-such-partner", "cli", Role::Admin, 1)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn token_for_a_team_member_carries_their_email_and_follows_their_role() {
    let app = spawn_app().await;
    let m = app
        .gql("mutation { inviteTeamMember(input: {email: \"Ops@Example.com\", role: admin}) { id email } }", json!({}))
        .await;
    let uid = m.data()["inviteTeamMember"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(m.data()["inviteTeamMember"]["email"], "ops@example.com");
    // A token may not exceed the member's role.
    app.gql(
        "mutation($u: ID!) { createApiToken(input: {name: \"x\", role: super_admin, userId: $u}) { token } }",
        json!({"u": uid}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("role"));
    let token = app.member_token(&uid, "x", "admin").await;
    let me = app
        .gql_as(Some(&token), "{ me { email role subject } }", json!({}))
        .await;
    assert_eq!(me.data()["me"]["email"], "ops@example.com");
    assert_eq!(me.data()["me"]["subject"], uid.as_str());
    // Demoted: the same token now acts as team_member.
    app.gql(
        "mutation($u: ID!) { changeTeamMemberRole(id: $u, role: team_member) { role } }",
        json!({"u": uid}),
    )
    .await
    .data();
    let me = app.gql_as(Some(&token), "{ me { role } }", json!({})).await;
    assert_eq!(me.data()["me"]["role"], "team_member");
    // Promoted again: the member's token comes back to the role it was made with, and a token
    // made narrower on purpose keeps its own.
    let narrow = app.member_token(&uid, "bi", "limited_team_member").await;
    app.gql(
        "mutation($u: ID!) { changeTeamMemberRole(id: $u, role: admin) { role } }",
        json!({"u": uid}),
    )
    .await
    .data();
    let role_of = |t: String| {
        let app = &app;
        async move {
            app.gql_as(Some(&t), "{ me { role } }", json!({}))
                .await
                .data()["me"]["role"]
                .clone()
        }
    };
    assert_eq!(role_of(token.clone()).await, "admin");
    assert_eq!(role_of(narrow.clone()).await, "limited_team_member");
    // Demoted to the narrow token's own role and promoted again: the narrow token stays as it
    // was made, however the two roles met on the way; the list shows each token as it acts.
    let listed = || async {
        let listed = app
            .gql("{ apiTokens { name role } }", json!({}))
            .await
            .data()["apiTokens"]
            .clone();
        let mut roles: Vec<(String, String)> = listed
            .as_array()
            .expect("tokens")
            .iter()
            .filter(|t| t["name"] == "x" || t["name"] == "bi")
            .map(|t| {
                (
                    t["name"].as_str().unwrap_or("").into(),
                    t["role"].as_str().unwrap_or("").into(),
                )
            })
            .collect();
        roles.sort();
        roles
    };
    for role in ["limited_team_member", "admin"] {
        app.gql(
            "mutation($u: ID!, $r: Role!) { changeTeamMemberRole(id: $u, role: $r) { role } }",
            json!({"u": uid, "r": role}),
        )
        .await
        .data();
        assert_eq!(role_of(token.clone()).await, role);
        assert_eq!(role_of(narrow.clone()).await, "limited_team_member");
        assert_eq!(
            listed().await,
            [
                ("bi".to_string(), "limited_team_member".to_string()),
                ("x".to_string(), role.to_string())
            ]
        );
    }
    // Removed: the token is revoked.
    app.gql(
        "mutation($u: ID!) { removeTeamMember(id: $u) { id } }",
        json!({"u": uid}),
    )
    .await
    .data();
    app.gql_as(Some(&token), "{ me { role } }", json!({}))
        .await
        .expect_err("UNAUTHENTICATED", None);
}

/// A member's token holds only while the member does, and never above their role now, even
/// one the removal or the demotion did not reach (minted at that same moment): here the member's
/// row is changed under the token directly, as such a race leaves it.
#[tokio::test]
async fn a_members_token_never_outlives_or_outranks_the_member() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let member = |email: &'static str| {
        let app = &app;
        async move {
            let uid = app.team_member(email, "admin").await;
            let token = app.member_token(&uid, "x", "admin").await;
            (uid, token)
        }
    };
    let sql = |q: String| {
        let app = &app;
        async move {
            app.service
                .db()
                .execute_unprepared(&q)
                .await
                .expect("statement");
        }
    };
    let (gone, gone_token) = member("gone@example.com").await;
    sql(format!("DELETE FROM users WHERE id = '{gone}'")).await;
    app.gql_as(Some(&gone_token), "{ me { role } }", json!({}))
        .await
        .expect_err("UNAUTHENTICATED", None);
    let (lowered, lowered_token) = member("lowered@example.com").await;
    sql(format!(
        "UPDATE users SET role = 'limited_team_member' WHERE id = '{lowered}'"
    ))
    .await;
    let me = app
        .gql_as(Some(&lowered_token), "{ me { role } }", json!({}))
        .await;
    assert_eq!(me.data()["me"]["role"], "limited_team_member");
}

/// An admin's change of a member made while a super_admin's promotion of that member to
/// super_admin is being committed is judged on the member as promoted: refused, since only a
/// super_admin changes a super_admin. (Judged on the member as read before, the demotion went
/// through on PostgreSQL once the promotion committed; SQLite serialises the two.)
#[tokio::test]
async fn an_admin_cannot_demote_a_member_promoted_at_that_moment() {
    use sea_orm::TransactionTrait;
    let app = spawn_app().await;
    let uid = app.team_member("rising@example.com", "admin").await;
    let admin = app.token_with_role("admin").await;
    // The promotion, written and not yet committed: it holds the member's row.
    let promotion = app.service.db().begin().await.expect("begin");
    promotion
        .execute_unprepared(&format!(
            "UPDATE users SET role = 'super_admin' WHERE id = '{uid}'"
        ))
        .await
        .expect("promote");
    let demote = app.gql_as(
        Some(&admin),
        "mutation($u: ID!) { changeTeamMemberRole(id: $u, role: team_member) { role } }",
        json!({"u": uid}),
    );
    let commit = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        promotion.commit().await.expect("commit");
    };
    let (demoted, ()) = tokio::join!(demote, commit);
    demoted.expect_err("FORBIDDEN", None);
    let r = app
        .gql("{ teamMembers { id role } }", json!({}))
        .await
        .data()["teamMembers"]
        .clone();
    let role = r
        .as_array()
        .expect("members")
        .iter()
        .find(|u| u["id"] == uid.as_str())
        .map(|u| u["role"].clone());
    assert_eq!(role, Some(json!("super_admin")));
}

/// Two super_admins demoted at once (PostgreSQL runs both side by side): one goes through and
/// the other is refused, so the partner keeps a super_admin.
#[tokio::test]
async fn demoting_both_super_admins_at_once_keeps_one() {
    let app = spawn_app().await;
    app.gql(
        "mutation { inviteTeamMember(input: {email: \"second@example.com\", role: super_admin}) { id } }",
        json!({}),
    )
    .await
    .data();
    let members = app
        .gql("{ teamMembers { id role } }", json!({}))
        .await
        .data()["teamMembers"]
        .as_array()
        .expect("members")
        .clone();
    let supers: Vec<String> = members
        .iter()
        .filter(|m| m["role"] == "super_admin")
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(supers.len(), 2, "{members:?}");
    let demote = |id: &String| {
        app.gql(
            "mutation($u: ID!) { changeTeamMemberRole(id: $u, role: admin) { role } }",
            json!({"u": id}),
        )
    };
    let answers = futures_util::future::join_all(supers.iter().map(demote)).await;
    let refused: Vec<_> = answers
        .iter()
        .filter(|a| a.0.get("errors").is_some())
        .collect();
    assert_eq!(refused.len(), 1, "{answers:?}");
    // CONFLICT when the other demotion came first; FORBIDDEN when it was the acting
    // super_admin's own, committed before this request read their role.
    assert!(
        ["CONFLICT", "FORBIDDEN"].contains(&refused[0].code()),
        "{answers:?}"
    );
    let left = app
        .service
        .db()
        .query_one_raw(sea_orm::Statement::from_string(
            app.service.db().get_database_backend(),
            "SELECT COUNT(*) AS n FROM users WHERE role = 'super_admin'",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(left, 1);
}
