//! What each role may do (DESIGN.md): super_admin tokens; admin packages, team, settings;
//! team_member candidates, checks, reports; limited_team_member candidates and statuses only.
use serde_json::json;

use crate::helpers::spawn_app;

const FULL_CANDIDATE: &str = "mutation { createCandidate(input: {firstName: \"Sam\", lastName: \"Gamgee\", email: \"sam@shire.example.com\", ssn: \"123-45-6789\", dateOfBirth: \"1990-04-06\"}) { id } }";

#[tokio::test]
async fn limited_team_member_sees_candidates_and_statuses_but_no_ssn_dob_or_report() {
    let app = spawn_app().await;
    let id = app.gql(FULL_CANDIDATE, json!({})).await.data()["createCandidate"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let check = app.start_check(&id, true).await;
    let limited = app.token_with_role("limited_team_member").await;

    let r = app
        .gql_as(
            Some(&limited),
            "query($id: ID!) { candidate(id: $id) { firstName checks { status statusLabel } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.data()["candidate"]["checks"][0]["status"], "emailed");
    assert_eq!(r.data()["candidate"]["checks"][0]["statusLabel"], "Emailed");

    // Timed steps name monitoring's county rechecks and quote provider errors: kept too.
    for field in [
        "ssn",
        "dateOfBirth",
        "checks { report }",
        "checks { tasks { kind } }",
        // A dispute's reason and resolution speak of the report's records.
        "checks { adverseAction { disputeReason } }",
    ] {
        let q = format!("query($id: ID!) {{ candidate(id: $id) {{ firstName {field} }} }}");
        let r = app.gql_as(Some(&limited), &q, json!({"id": id})).await;
        r.expect_err("FORBIDDEN", None);
        let text = r.0.to_string();
        assert!(
            !text.contains("6789") && !text.contains("1990-04-06"),
            "{text}"
        );
    }
    // A status change's reason can quote the report: kept from limited team members.
    app.gql(
        "mutation($c: ID!) { transitionCheck(input: {checkId: $c, status: withdrawn, reason: \"felony found in Travis County\"}) { status } }",
        json!({"c": check}),
    )
    .await
    .data();
    let history = |token: String| {
        let app = &app;
        let check = check.clone();
        async move {
            app.gql_as(
                Some(&token),
                "query($c: ID!) { check(id: $c) { history { toStatus reason } } }",
                json!({"c": check}),
            )
            .await
            .data()["check"]["history"]
                .clone()
        }
    };
    let seen = history(limited.clone()).await;
    assert_eq!(seen[1]["toStatus"], "withdrawn");
    assert!(seen[1]["reason"].is_null(), "{seen}");
    let tm = app.token_with_role("team_member").await;
    assert_eq!(
        history(tm.clone()).await[1]["reason"],
        "felony found in Travis County"
    );
    // May create candidates and start checks, not adjudicate.
    app.candidate_as(&limited, "limited-made@example.com").await;
    // Nor may they name a callbackUrl, which would receive the results; a check without one
    // they may start.
    let start = "mutation($c: ID!, $u: String) { startCheck(input: {candidateId: $c, doChecks: false, callbackUrl: $u}) { id } }";
    app.gql_as(
        Some(&limited),
        start,
        json!({"c": id, "u": "https://results.example.com/hook"}),
    )
    .await
    .expect_err("FORBIDDEN", None);
    app.gql_as(Some(&limited), start, json!({"c": id, "u": null}))
        .await
        .data();
    for adjudicate in [
        "mutation($c: ID!) { transitionCheck(input: {checkId: $c, status: withdrawn}) { status } }",
        // Refused as a role, whatever state the check is in.
        "mutation($c: ID!) { cancelAdverseAction(checkId: $c) { status } }",
    ] {
        app.gql_as(Some(&limited), adjudicate, json!({"c": check}))
            .await
            .expect_err("FORBIDDEN", None);
    }
    // May not change what they cannot see.
    app.gql_as(
        Some(&limited),
        "mutation($id: ID!) { updateCandidate(id: $id, input: {ssn: \"123-45-6780\"}) { id } }",
        json!({"id": id}),
    )
    .await
    .expect_err("FORBIDDEN", None);
    // Nor move a screened candidate's email, where the candidate's copy of the report goes.
    let move_email = "mutation($id: ID!, $e: String!) { updateCandidate(id: $id, input: {email: $e}) { email } }";
    let moved = app
        .gql_as(
            Some(&limited),
            move_email,
            json!({"id": id, "e": "limited.inbox@example.com"}),
        )
        .await;
    moved.expect_err("FORBIDDEN", None);
    assert!(moved.message().contains("email"), "{}", moved.0);
    let kept = app
        .gql(
            "query($id: ID!) { candidate(id: $id) { email } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(kept.data()["candidate"]["email"], "sam@shire.example.com");
    // The same address again is no change; a team member may move it; and a candidate without
    // a check is the limited member's to correct.
    app.gql_as(
        Some(&limited),
        move_email,
        json!({"id": id, "e": "sam@shire.example.com"}),
    )
    .await
    .data();
    app.gql_as(
        Some(&tm),
        move_email,
        json!({"id": id, "e": "samwise@shire.example.com"}),
    )
    .await
    .data();
    let unscreened = app.candidate("typo@exmaple.com").await;
    let fixed = app
        .gql_as(
            Some(&limited),
            move_email,
            json!({"id": unscreened, "e": "typo@example.com"}),
        )
        .await;
    assert_eq!(fixed.data()["updateCandidate"]["email"], "typo@example.com");
    // One with an SSN on file and no check yet is as good as screened: a check started after the
    // move would run on that SSN, its consent link and report going to the new address.
    let on_file = app
        .candidate_with(json!({"firstName": "Lotho", "lastName": "Sackville", "email": "lotho@example.com", "ssn": "234-56-7891"}))
        .await;
    app.gql_as(
        Some(&limited),
        move_email,
        json!({"id": on_file, "e": "limited.inbox@example.com"}),
    )
    .await
    .expect_err("FORBIDDEN", None);
}

#[tokio::test]
async fn team_member_sees_masked_and_unmasked_ssn_and_dob() {
    let app = spawn_app().await;
    let id = app.gql(FULL_CANDIDATE, json!({})).await.data()["createCandidate"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let tm = app.token_with_role("team_member").await;
    let r = app
        .gql_as(
            Some(&tm),
            "query($id: ID!) { candidate(id: $id) { ssn full: ssn(unmasked: true) dateOfBirth } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.data()["candidate"]["ssn"], "***-**-6789");
    assert_eq!(r.data()["candidate"]["full"], "123456789");
    assert_eq!(r.data()["candidate"]["dateOfBirth"], "1990-04-06");
}

#[tokio::test]
async fn each_role_is_refused_what_it_may_not_do() {
    let app = spawn_app().await;
    let tm = app.token_with_role("team_member").await;
    let admin = app.token_with_role("admin").await;
    let limited = app.token_with_role("limited_team_member").await;

    let create_package =
        "mutation { createPackage(input: {name: \"MVR\", searches: [mvr]}) { id } }";
    let invite = "mutation { inviteTeamMember(input: {email: \"x@example.com\", role: team_member}) { id } }";
    let settings = "mutation { updatePartnerSettings(input: {name: \"Renamed\"}) { name } }";
    let mint = "mutation { createApiToken(input: {name: \"t\", role: team_member}) { token } }";
    let team = "{ teamMembers { id } }";
    let tokens = "{ apiTokens { id } }";

    for (token, allowed, refused) in [
        (
            &limited,
            vec![],
            vec![create_package, invite, settings, mint, team, tokens],
        ),
        (
            &tm,
            vec![],
            vec![create_package, invite, settings, mint, team, tokens],
        ),
        (
            &admin,
            vec![create_package, invite, settings, team],
            vec![mint, tokens],
        ),
    ] {
        for q in refused {
            app.gql_as(Some(token), q, json!({}))
                .await
                .expect_err("FORBIDDEN", None);
        }
        for q in allowed {
            app.gql_as(Some(token), q, json!({})).await.data();
        }
    }
    // Admins can't grant super_admin.
    app.gql_as(Some(&admin), "mutation { inviteTeamMember(input: {email: \"boss@example.com\", role: super_admin}) { id } }", json!({}))
        .await
        .expect_err("FORBIDDEN", None);
    // Super admin may do all of it.
    app.gql(mint, json!({})).await.data();
    app.gql(tokens, json!({})).await.data();
}

#[tokio::test]
async fn a_partner_keeps_a_super_admin_and_nobody_removes_themselves() {
    let app = spawn_app().await;
    let me = app
        .gql("{ me { subject } teamMembers { id role } }", json!({}))
        .await;
    let my_id = me.data()["me"]["subject"]
        .as_str()
        .expect("subject")
        .to_string();
    app.gql(
        "mutation($id: ID!) { removeTeamMember(id: $id) { id } }",
        json!({"id": my_id}),
    )
    .await
    .expect_err("CONFLICT", None);
    app.gql(
        "mutation($id: ID!) { changeTeamMemberRole(id: $id, role: admin) { id } }",
        json!({"id": my_id}),
    )
    .await
    .expect_err("CONFLICT", None);
}
